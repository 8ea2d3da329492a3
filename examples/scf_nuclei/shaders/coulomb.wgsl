// Direct Coulomb potential of the proton point density (steps/coulomb.rs, `potential_point`):
// V_C(r_q) = 4 pi e^2 b [ (1/r_q) sum_p cum_qp rho_p r_p^2 + sum_p (w_p - cum_qp) rho_p r_p ].
//
// Dispatch: (ceil(grid / 64), nuclei, 1); global id x = q, y = nucleus i. `rho` is the
// mixed densities in the loop, the last computed ones for the energy.

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> nuc: array<f64>;
@group(0) @binding(2) var<storage, read> basis: array<f64>;
@group(0) @binding(3) var<storage, read> rho: array<f64>;
@group(0) @binding(4) var<storage, read_write> v_coul: array<f64>;

@compute @workgroup_size(64)
fn coulomb(@builtin(global_invocation_id) gid: vec3<u32>) {
    let q = gid.x;
    let i = gid.y;
    let grid = P.grid;
    if q >= grid || i >= P.nuclei {
        return;
    }
    let b = nuc[i * 4u + 1u];
    let xo = 3u * P.rows * grid;
    let wo = xo + grid;
    let co = wo + grid + q * grid;
    // Protons: species 1.
    let p0 = (i * 2u + 1u) * grid;
    var inner: f64 = 0.0;
    var outer: f64 = 0.0;
    for (var p = 0u; p < grid; p++) {
        let r = b * basis[xo + p];
        let s = basis[co + p];
        inner += s * rho[p0 + p] * r * r;
        outer += (basis[wo + p] - s) * rho[p0 + p] * r;
    }
    // dr = b dx.
    v_coul[i * grid + q] = 4.0 * PI * P.e2 * b * (inner / (b * basis[xo + q]) + outer);
}
