// The six densities of one species at one grid point (steps/densities.rs, `density_point`,
// one species per invocation): sums over the species' occupied orbitals of (2j+1) v^2 times
// products of u_k = sum_a V_ak u_a, g_k and u_k'' (x units), then back to r.
//
// Dispatch: (ceil(grid / 64), nuclei * 2, 1); global id x = q, y = ns. The invocations of one
// workgroup share ns, so they read the same eigenvectors and occupations.

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> blk: array<u32>;
@group(0) @binding(2) var<storage, read> nuc: array<f64>;
@group(0) @binding(3) var<storage, read> basis: array<f64>;
@group(0) @binding(4) var<storage, read> vecs: array<f64>;
@group(0) @binding(5) var<storage, read> v2: array<f64>;
@group(0) @binding(6) var<storage, read_write> rho: array<f64>;
@group(0) @binding(7) var<storage, read_write> rest: array<f64>;

@compute @workgroup_size(64)
fn densities(@builtin(global_invocation_id) gid: vec3<u32>) {
    let q = gid.x;
    let ns = gid.y;
    let grid = P.grid;
    if q >= grid || ns >= 2u * P.nuclei {
        return;
    }
    let i = ns / 2u;
    let b = nuc[i * 4u + 1u];
    let go = P.rows * grid;
    let x = basis[3u * go + q];
    let r = b * x;
    var uu: f64 = 0.0;
    var gg: f64 = 0.0;
    var ll: f64 = 0.0;
    var so: f64 = 0.0;
    var ug: f64 = 0.0;
    var uu2: f64 = 0.0;
    var sog: f64 = 0.0;
    let b_end = (ns + 1u) * P.blocks_ns;
    for (var bl = ns * P.blocks_ns; bl < b_end; bl++) {
        let l = blk[bl * 8u + 2u];
        let j2 = blk[bl * 8u + 3u];
        let dim = blk[bl * 8u + 4u];
        let h0 = blk[bl * 8u + 5u];
        let w0 = blk[bl * 8u + 6u];
        let row0 = blk[bl * 8u + 7u];
        let ls = l_dot_sigma(l, j2);
        let l_l1 = f64(l * (l + 1u));
        for (var c = 0u; c < dim; c++) {
            let occ = v2[w0 + c];
            if occ == 0.0 {
                continue;
            }
            let weight = f64(j2 + 1u) * occ;
            var pu: f64 = 0.0;
            var pg: f64 = 0.0;
            var p2: f64 = 0.0;
            for (var a = 0u; a < dim; a++) {
                let coef = vecs[h0 + a * dim + c];
                let at = (row0 + a) * grid + q;
                pu += coef * basis[at];
                pg += coef * basis[go + at];
                p2 += coef * basis[2u * go + at];
            }
            uu += weight * pu * pu;
            gg += weight * pg * pg;
            ll += weight * l_l1 * pu * pu;
            so += weight * ls * pu * pu;
            ug += weight * pu * pg;
            uu2 += weight * pu * p2;
            sog += weight * ls * pu * pg;
        }
    }
    // Back to r: u^2 -> u^2 / b, u g and u u'' pick up 1/b^2 and 1/b^3 (x derivatives).
    let b2 = b * b;
    let b3 = b * b * b;
    let r2 = r * r;
    let x2 = x * x;
    let at = ns * grid + q;
    let gl = P.grid_len;
    rho[at] = INV_4PI * uu / (b * r2);
    rest[at] = INV_4PI * (gg / b3 + ll / (b3 * x2)) / r2;
    rest[gl + at] = INV_4PI * so / (b * r2 * r);
    rest[2u * gl + at] = INV_4PI * 2.0 * ug / (b2 * r2);
    rest[3u * gl + at] = INV_4PI * 2.0 * (gg + uu2) / (b3 * r2);
    rest[4u * gl + at] = INV_4PI * (2.0 * sog / (b2 * r2 * r) + so / (b * r2 * r2));
}
