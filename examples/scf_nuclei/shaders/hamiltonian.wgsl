// Every Hamiltonian block by quadrature (steps/hamiltonian.rs): one invocation per lower-
// triangle element (r, c <= r) of one l of one (nucleus, species), writing both triangles of
// both j blocks of that l (`element_pair`), or of the one l = 0 block (`element`).
//
// Dispatch: (ceil(tasks_ns / 64), nuclei * 2, 1); global id x = task, y = ns.
// tasks[t] (the same list for every ns): bits 0-7 c, 8-15 r, 16-30 the block's index within
// the ns, bit 31 set when the block (j = l + 1/2) is followed by its j = l - 1/2 partner.

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> tasks: array<u32>;
@group(0) @binding(2) var<storage, read> blk: array<u32>;
@group(0) @binding(3) var<storage, read> basis: array<f64>;
@group(0) @binding(4) var<storage, read> fields: array<f64>;
@group(0) @binding(5) var<storage, read_write> h: array<f64>;

@compute @workgroup_size(64)
fn hamiltonian(@builtin(global_invocation_id) gid: vec3<u32>) {
    let t = gid.x;
    let ns = gid.y;
    if t >= P.tasks_ns || ns >= 2u * P.nuclei {
        return;
    }
    let task = tasks[t];
    let c = task & 0xffu;
    let r = (task >> 8u) & 0xffu;
    let b = ns * P.blocks_ns + ((task >> 16u) & 0x7fffu);
    let paired = (task >> 31u) != 0u;
    let l = blk[b * 8u + 2u];
    let dim = blk[b * 8u + 4u];
    let h0 = blk[b * 8u + 5u];
    let row0 = blk[b * 8u + 7u];
    let grid = P.grid;
    let gl = P.grid_len;
    let f0 = ns * grid;
    let ra = (row0 + r) * grid;
    let rb = (row0 + c) * grid;
    let go = P.rows * grid;
    let l_l1 = f64(l * (l + 1u));
    if paired {
        var shared_sum: f64 = 0.0;
        var so: f64 = 0.0;
        for (var q = 0u; q < grid; q++) {
            let uu = basis[ra + q] * basis[rb + q];
            let fb = fields[f0 + q];
            let fl = fields[gl + f0 + q];
            let fu = fields[2u * gl + f0 + q];
            let fw = fields[3u * gl + f0 + q];
            shared_sum += fb * basis[go + ra + q] * basis[go + rb + q] + (l_l1 * fl + fu) * uu;
            so += fw * uu;
        }
        // l.sigma = l for j = l + 1/2, -(l + 1) for j = l - 1/2.
        let lf = f64(l);
        let v1 = shared_sum + lf * so;
        let v2 = shared_sum - (lf + 1.0) * so;
        let h1 = blk[(b + 1u) * 8u + 5u];
        h[h0 + r * dim + c] = v1;
        h[h0 + c * dim + r] = v1;
        h[h1 + r * dim + c] = v2;
        h[h1 + c * dim + r] = v2;
    } else {
        let ls = l_dot_sigma(l, blk[b * 8u + 3u]);
        var sum: f64 = 0.0;
        for (var q = 0u; q < grid; q++) {
            let fb = fields[f0 + q];
            let fl = fields[gl + f0 + q];
            let fu = fields[2u * gl + f0 + q];
            let fw = fields[3u * gl + f0 + q];
            let local = l_l1 * fl + fu + ls * fw;
            sum += fb * basis[go + ra + q] * basis[go + rb + q] + local * basis[ra + q] * basis[rb + q];
        }
        h[h0 + r * dim + c] = sum;
        h[h0 + c * dim + r] = sum;
    }
}
