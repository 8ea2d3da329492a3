// Energy of one nucleus from the energy density functional (steps/energy.rs, `nucleus_energy`
// and the pairing term of `per_nucleus`), after the loop, from the last computed densities and
// their Coulomb potential.
//
// Dispatch: (ceil(nuclei / 64), 1, 1); global id x = nucleus i. Writes the nine parts of
// `EnergyParts` (MeV) in its field order at out[i * 9 + 0..9]: kinetic, t0, t3,
// effective_mass, finite_range, spin_orbit, coulomb_direct, coulomb_exchange, pairing.

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read> nuc: array<f64>;
@group(0) @binding(2) var<storage, read> basis: array<f64>;
@group(0) @binding(3) var<storage, read> rho: array<f64>;
@group(0) @binding(4) var<storage, read> rest: array<f64>;
@group(0) @binding(5) var<storage, read> v_coul: array<f64>;
@group(0) @binding(6) var<storage, read> pair: array<f64>;
@group(0) @binding(7) var<storage, read_write> out: array<f64>;

fn dens(k: u32, at: u32) -> f64 {
    if k == 0u {
        return rho[at];
    }
    return rest[(k - 1u) * P.grid_len + at];
}

@compute @workgroup_size(64)
fn energy(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x;
    if i >= P.nuclei {
        return;
    }
    let grid = P.grid;
    let a = nuc[i * 4u];
    let b = nuc[i * 4u + 1u];
    let hb = P.hb * (1.0 - 1.0 / a);
    let xo = 3u * P.rows * grid;
    var kinetic: f64 = 0.0;
    var t0: f64 = 0.0;
    var t3: f64 = 0.0;
    var eff: f64 = 0.0;
    var fin: f64 = 0.0;
    var so: f64 = 0.0;
    var cd: f64 = 0.0;
    var cx: f64 = 0.0;
    for (var q = 0u; q < grid; q++) {
        let r = b * basis[xo + q];
        // d^3 r = 4 pi r^2 b dx.
        let dv = 4.0 * PI * r * r * b * basis[xo + grid + q];
        let n_at = i * 2u * grid + q;
        let p_at = n_at + grid;
        let n0 = dens(0u, n_at);
        let n1 = dens(1u, n_at);
        let n2 = dens(2u, n_at);
        let n3 = dens(3u, n_at);
        let p0 = dens(0u, p_at);
        let p1 = dens(1u, p_at);
        let p2 = dens(2u, p_at);
        let p3 = dens(3u, p_at);
        let rho_t = n0 + p0;
        let tau = n1 + p1;
        let sj = n2 + p2;
        let drho = n3 + p3;
        let sum_sq = n0 * n0 + p0 * p0;
        kinetic += dv * hb * tau;
        t0 += dv * (P.e0a * rho_t * rho_t - P.e0b * sum_sq);
        t3 += dv * pow_sixth(rho_t) * (P.e3a * rho_t * rho_t - P.e3b * sum_sq);
        eff += dv * (P.b0 * tau * rho_t + P.b1 * (n1 * n0 + p1 * p0));
        fin += dv * (P.d0 * drho * drho + P.d1 * (n3 * n3 + p3 * p3));
        so += dv * P.w0_half * (sj * drho + n2 * n3 + p2 * p3);
        cd += dv * 0.5 * p0 * v_coul[i * grid + q];
        cx -= dv * 0.75 * P.slater * p0 * cbrt64(p0);
    }
    let g = P.g0 / a;
    var pairing: f64 = 0.0;
    if g > 0.0 {
        let dn = pair[i * 4u];
        let dp = pair[i * 4u + 2u];
        pairing = -(dn * dn + dp * dp) / g;
    }
    let o = i * 9u;
    out[o] = kinetic;
    out[o + 1u] = t0;
    out[o + 2u] = t3;
    out[o + 3u] = eff;
    out[o + 4u] = fin;
    out[o + 5u] = so;
    out[o + 6u] = cd;
    out[o + 7u] = cx;
    out[o + 8u] = pairing;
}
