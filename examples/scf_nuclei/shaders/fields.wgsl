// Mean fields of both species at one grid point from the densities and the Coulomb potential
// (steps/fields.rs, `fields_point` = `mean_fields` + `weighted`; formulas in skyrme.rs),
// folded with the quadrature weight into f_b, f_l, f_u, f_w (MeV).
//
// Dispatch: (ceil(grid / 64), nuclei, 1); global id x = q, y = nucleus i.

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> nuc: array<f64>;
@group(0) @binding(2) var<storage, read> basis: array<f64>;
@group(0) @binding(3) var<storage, read> rho: array<f64>;
@group(0) @binding(4) var<storage, read> rest: array<f64>;
@group(0) @binding(5) var<storage, read> v_coul: array<f64>;
@group(0) @binding(6) var<storage, read_write> fields: array<f64>;

// Density k (0 rho, 1 tau, 2 J, 3 rho', 4 lap rho, 5 div J) at flat index `at`.
fn dens(k: u32, at: u32) -> f64 {
    if k == 0u {
        return rho[at];
    }
    return rest[(k - 1u) * P.grid_len + at];
}

@compute @workgroup_size(64)
fn fields_point(@builtin(global_invocation_id) gid: vec3<u32>) {
    let q = gid.x;
    let i = gid.y;
    let grid = P.grid;
    if q >= grid || i >= P.nuclei {
        return;
    }
    let gl = P.grid_len;
    let a = nuc[i * 4u];
    let b = nuc[i * 4u + 1u];
    let xo = 3u * P.rows * grid;
    let x = basis[xo + q];
    let w = basis[xo + grid + q];
    let n_at = i * 2u * grid + q;
    let p_at = n_at + grid;
    let rho_t = dens(0u, n_at) + dens(0u, p_at);
    let tau = dens(1u, n_at) + dens(1u, p_at);
    let lap = dens(4u, n_at) + dens(4u, p_at);
    let div_j = dens(5u, n_at) + dens(5u, p_at);
    let drho = dens(3u, n_at) + dens(3u, p_at);
    let rho_alpha = pow_sixth(rho_t);
    let sum_sq = dens(0u, n_at) * dens(0u, n_at) + dens(0u, p_at) * dens(0u, p_at);
    // alpha sum_q rho_q^2 / rho, 0 where the density vanishes.
    var sq_over_rho: f64 = 0.0;
    if rho_t > 0.0 {
        sq_over_rho = sum_sq / rho_t;
    }
    let hb = P.hb * (1.0 - 1.0 / a);
    for (var s = 0u; s < 2u; s++) {
        let at = n_at + s * grid;
        let d0 = dens(0u, at);
        let b_q = hb + P.b0 * rho_t + P.b1 * d0;
        var u_q = P.c0a * rho_t - P.c0b * d0
            + rho_alpha * (P.c3a * rho_t - P.c3b * (2.0 * d0 + P.alpha * sq_over_rho))
            + P.b0 * tau
            + P.b1 * dens(1u, at)
            - 2.0 * P.d0 * lap
            - 2.0 * P.d1 * dens(4u, at)
            - P.w0_half * (div_j + dens(5u, at));
        if s == 1u {
            u_q += v_coul[i * grid + q] - P.slater * cbrt64(d0);
        }
        let w_q = P.w0_half * (drho + dens(3u, at));
        let fb = w * b_q / (b * b);
        fields[at] = fb;
        fields[gl + at] = fb / (x * x);
        fields[2u * gl + at] = w * u_q;
        fields[3u * gl + at] = w * w_q / (b * x);
    }
}
