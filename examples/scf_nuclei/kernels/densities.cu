// Densities from the eigenvectors and BCS occupations (steps/densities.rs's density_point),
// one thread per (nucleus i, species s, grid point q), t = (i * 2 + s) * grid + q (the
// CPU's body computes both species of one point; each species's sums are independent, and
// run here in the same order). Sums over the blocks of (i, s) and their occupied columns c of
// (2j + 1) v^2 times products of the state's u, g = u' - u/x and u'' (x units), with
// u_c(x_q) = sum_a vecs[h0 + a * dim + c] u_a(x_q); then back to r.
// Writes rho (fm^-3), tau (fm^-5), J (fm^-4), rho' (fm^-4), lap rho (fm^-5), div J (fm^-5),
// each `(i * 2 + s) * grid + q`.
extern "C" __global__ void scf_densities(const double* __restrict__ vecs,
                                         const double* __restrict__ v2,
                                         const double* __restrict__ u,
                                         const double* __restrict__ g,
                                         const double* __restrict__ d2u,
                                         const double* __restrict__ x,
                                         const double* __restrict__ osc_length,
                                         const unsigned* __restrict__ ns_block_off,
                                         const unsigned* __restrict__ block_l,
                                         const unsigned* __restrict__ block_j2,
                                         const unsigned* __restrict__ block_dim,
                                         const unsigned* __restrict__ block_h_off,
                                         const unsigned* __restrict__ block_w_off,
                                         const unsigned* __restrict__ block_row,
                                         double* __restrict__ rho, double* __restrict__ tau,
                                         double* __restrict__ sj, double* __restrict__ drho,
                                         double* __restrict__ lap_rho,
                                         double* __restrict__ div_j, unsigned nuclei,
                                         unsigned grid) {
    const unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= nuclei * SCF_SPECIES * grid) return;
    const unsigned ns = t / grid, q = t % grid;
    const unsigned i = ns / SCF_SPECIES;
    const double b = osc_length[i];
    const double xq = x[q];
    const double r = b * xq;
    double uu = 0.0, gg = 0.0, ll = 0.0, so = 0.0, ug = 0.0, uu2 = 0.0, sog = 0.0;
    for (unsigned blk = ns_block_off[ns]; blk < ns_block_off[ns + 1]; ++blk) {
        const unsigned dim = block_dim[blk];
        const unsigned l = block_l[blk];
        const unsigned j2 = block_j2[blk];
        const double ls = scf_l_dot_sigma(l, j2);
        const double l_l1 = (double)(l * (l + 1u));
        const unsigned h0 = block_h_off[blk];
        const unsigned w0 = block_w_off[blk];
        const unsigned row0 = block_row[blk];
        for (unsigned c = 0; c < dim; ++c) {
            const double occ = v2[w0 + c];
            if (occ == 0.0) continue;
            const double weight = (double)(j2 + 1u) * occ;
            double pu = 0.0, pg = 0.0, p2 = 0.0;
            for (unsigned a = 0; a < dim; ++a) {
                const double coef = vecs[h0 + a * dim + c];
                const unsigned at = (row0 + a) * grid + q;
                pu += coef * u[at];
                pg += coef * g[at];
                p2 += coef * d2u[at];
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
    const double b2 = b * b, b3 = b * b * b;
    const double r2 = r * r;
    const double x2 = xq * xq;
    rho[t] = SCF_INV_4PI * uu / (b * r2);
    tau[t] = SCF_INV_4PI * (gg / b3 + ll / (b3 * x2)) / r2;
    sj[t] = SCF_INV_4PI * so / (b * r2 * r);
    drho[t] = SCF_INV_4PI * 2.0 * ug / (b2 * r2);
    lap_rho[t] = SCF_INV_4PI * 2.0 * (gg + uu2) / (b3 * r2);
    div_j[t] = SCF_INV_4PI * (2.0 * sog / (b2 * r2 * r) + so / (b * r2 * r2));
}
