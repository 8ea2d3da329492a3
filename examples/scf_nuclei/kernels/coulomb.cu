// Direct Coulomb potential of the proton point density (steps/coulomb.rs's potential_point):
// one thread per (nucleus i, grid point q),
// V_C(r_q) = 4 pi e^2 b [ (1 / (b x_q)) sum_p cum[q, p] rho_p(r_p) r_p^2
//                         + sum_p (w_p - cum[q, p]) rho_p(r_p) r_p ],  r_p = b x_p.
// Reads rho (`(i * 2 + 1) * grid + p`, fm^-3); writes v_coul `i * grid + q` (MeV); e2 in MeV fm.
extern "C" __global__ void scf_coulomb(const double* __restrict__ rho,
                                       const double* __restrict__ osc_length,
                                       const double* __restrict__ x,
                                       const double* __restrict__ w,
                                       const double* __restrict__ cum,
                                       double* __restrict__ v_coul, double e2, unsigned nuclei,
                                       unsigned grid) {
    const unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= nuclei * grid) return;
    const unsigned i = t / grid, q = t % grid;
    const double b = osc_length[i];
    const double* __restrict__ rho_p = rho + (i * SCF_SPECIES + 1) * grid;
    double inner = 0.0, outer = 0.0;
    for (unsigned p = 0; p < grid; ++p) {
        const double r = b * x[p];
        const double s = cum[q * grid + p];
        inner += s * rho_p[p] * r * r;
        outer += (w[p] - s) * rho_p[p] * r;
    }
    // dr = b dx.
    v_coul[t] = 4.0 * SCF_PI * e2 * b * (inner / (b * x[q]) + outer);
}
