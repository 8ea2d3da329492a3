// Hamiltonian blocks by quadrature (steps/hamiltonian.rs's `element`): one thread per element
// (r, c), r >= c, of the lower triangle of every block, written to both triangles:
// H_rc = sum_q { f_b g_r g_c + [l(l+1) f_l + f_u + l.sigma f_w] u_r u_c } (MeV).
//
// Every (nucleus, species) has the same blocks (layout.rs), so the lower-triangle elements of
// one (nucleus, species) are listed once: element e (0..tri_per_species) lies in block
// `ns_block_off[ns] + tri_block[e]` at row `tri_rc[e] >> 16`, column `tri_rc[e] & 0xffff`.
// Thread t = ns * tri_per_species + e.
extern "C" __global__ void scf_hamiltonian(const double* __restrict__ f_b,
                                           const double* __restrict__ f_l,
                                           const double* __restrict__ f_u,
                                           const double* __restrict__ f_w,
                                           const double* __restrict__ u,
                                           const double* __restrict__ g,
                                           const unsigned* __restrict__ ns_block_off,
                                           const unsigned* __restrict__ block_nucleus,
                                           const unsigned* __restrict__ block_species,
                                           const unsigned* __restrict__ block_l,
                                           const unsigned* __restrict__ block_j2,
                                           const unsigned* __restrict__ block_dim,
                                           const unsigned* __restrict__ block_h_off,
                                           const unsigned* __restrict__ block_row,
                                           const unsigned* __restrict__ tri_block,
                                           const unsigned* __restrict__ tri_rc,
                                           double* __restrict__ h, unsigned ns_count,
                                           unsigned tri_per_species, unsigned grid) {
    const unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= ns_count * tri_per_species) return;
    const unsigned ns = t / tri_per_species, e = t % tri_per_species;
    const unsigned blk = ns_block_off[ns] + tri_block[e];
    const unsigned r = tri_rc[e] >> 16, c = tri_rc[e] & 0xffffu;
    const unsigned i = block_nucleus[blk];
    const unsigned s = block_species[blk];
    const unsigned l = block_l[blk];
    const double ls = scf_l_dot_sigma(l, block_j2[blk]);
    const double l_l1 = (double)(l * (l + 1u));
    const unsigned row0 = block_row[blk];
    const unsigned ra = (row0 + r) * grid, rb = (row0 + c) * grid;
    const unsigned f0 = (i * SCF_SPECIES + s) * grid;
    double sum = 0.0;
    for (unsigned q = 0; q < grid; ++q) {
        const double local = l_l1 * f_l[f0 + q] + f_u[f0 + q] + ls * f_w[f0 + q];
        sum += f_b[f0 + q] * g[ra + q] * g[rb + q] + local * u[ra + q] * u[rb + q];
    }
    const unsigned dim = block_dim[blk], h0 = block_h_off[blk];
    h[h0 + r * dim + c] = sum;
    h[h0 + c * dim + r] = sum;
}
