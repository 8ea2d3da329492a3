// Mean fields of both species (steps/fields.rs's fields_point: mean_fields + weighted), one
// thread per (nucleus i, grid point q): the two species couple through rho, tau, lap rho,
// div J and rho'. Reads the (mixed) densities `(i * 2 + s) * grid + q` (all but J, which
// enters no field), v_coul `i * grid + q`; writes f_b, f_l, f_u, f_w `(i * 2 + s) * grid + q`
// (MeV).
extern "C" __global__ void scf_fields(const ScfCoefficients* __restrict__ c,
                                      const double* __restrict__ rho,
                                      const double* __restrict__ tau,
                                      const double* __restrict__ drho,
                                      const double* __restrict__ lap_rho,
                                      const double* __restrict__ div_j,
                                      const double* __restrict__ v_coul,
                                      const double* __restrict__ mass_number,
                                      const double* __restrict__ osc_length,
                                      const double* __restrict__ x,
                                      const double* __restrict__ w,
                                      double* __restrict__ f_b, double* __restrict__ f_l,
                                      double* __restrict__ f_u, double* __restrict__ f_w,
                                      unsigned nuclei, unsigned grid) {
    const unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= nuclei * grid) return;
    const unsigned i = t / grid, q = t % grid;
    // d[s][quantity]: rho, tau, J, rho', lap rho, div J (J itself enters no field: left 0).
    double d[SCF_SPECIES][6];
    for (unsigned s = 0; s < SCF_SPECIES; ++s) {
        const unsigned at = (i * SCF_SPECIES + s) * grid + q;
        d[s][0] = rho[at];
        d[s][1] = tau[at];
        d[s][2] = 0.0;
        d[s][3] = drho[at];
        d[s][4] = lap_rho[at];
        d[s][5] = div_j[at];
    }
    const double a = mass_number[i];
    // mean_fields.
    const double rho_t = d[0][0] + d[1][0];
    const double tau_t = d[0][1] + d[1][1];
    const double lap = d[0][4] + d[1][4];
    const double div_jt = d[0][5] + d[1][5];
    const double drho_t = d[0][3] + d[1][3];
    const double rho_alpha = scf_pow_sixth(rho_t);
    const double sum_sq = d[0][0] * d[0][0] + d[1][0] * d[1][0];
    // alpha sum_q rho_q^2 / rho, 0 where the density vanishes.
    const double sq_over_rho = rho_t > 0.0 ? sum_sq / rho_t : 0.0;
    const double hb = c->hb * (1.0 - 1.0 / a);
    const double b = osc_length[i];
    for (unsigned s = 0; s < SCF_SPECIES; ++s) {
        const double* dq = d[s];
        const double b_q = hb + c->b0 * rho_t + c->b1 * dq[0];
        double u_q = c->c0a * rho_t - c->c0b * dq[0] +
                     rho_alpha * (c->c3a * rho_t - c->c3b * (2.0 * dq[0] + c->alpha * sq_over_rho)) +
                     c->b0 * tau_t + c->b1 * dq[1] - 2.0 * c->d0 * lap - 2.0 * c->d1 * dq[4] -
                     c->w0_half * (div_jt + dq[5]);
        if (s == 1) u_q += v_coul[i * grid + q] - c->slater * cbrt(dq[0]);
        const double w_q = c->w0_half * (drho_t + dq[3]);
        scf_store_weighted(b_q, u_q, w_q, b, x[q], w[q], (i * SCF_SPECIES + s) * grid + q, f_b,
                           f_l, f_u, f_w);
    }
}
