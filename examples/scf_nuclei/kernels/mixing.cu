// Linear mixing of the densities (steps/mixing.rs's mix_one), one thread per element of the
// six per-grid arrays: mixed <- mixed + beta (new - mixed); with copy != 0, mixed <- new (the
// first iteration's `mix(first)`).
extern "C" __global__ void scf_mix(const double* __restrict__ n_rho,
                                   const double* __restrict__ n_tau,
                                   const double* __restrict__ n_sj,
                                   const double* __restrict__ n_drho,
                                   const double* __restrict__ n_lap_rho,
                                   const double* __restrict__ n_div_j,
                                   double* __restrict__ m_rho, double* __restrict__ m_tau,
                                   double* __restrict__ m_sj, double* __restrict__ m_drho,
                                   double* __restrict__ m_lap_rho, double* __restrict__ m_div_j,
                                   double beta, unsigned copy, unsigned len) {
    const unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= len) return;
    const double* const src[6] = {n_rho, n_tau, n_sj, n_drho, n_lap_rho, n_div_j};
    double* const dst[6] = {m_rho, m_tau, m_sj, m_drho, m_lap_rho, m_div_j};
#pragma unroll
    for (int k = 0; k < 6; ++k) {
        const double nv = src[k][t];
        dst[k][t] = copy ? nv : dst[k][t] + beta * (nv - dst[k][t]);
    }
}
