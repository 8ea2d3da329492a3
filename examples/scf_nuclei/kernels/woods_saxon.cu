// The starting fields (steps/woods_saxon.rs): the Woods-Saxon mean field of nuclear_shells
// (Bohr & Mottelson, ch. 2) as weighted fields. One thread per (nucleus i, grid point q), both
// species, as start_fields's loop body (start_point + weighted). Run once; exp allowed.
//
// particles[i * 2 + s]: N, then Z; hb = hbar^2/2m (MeV fm^2); e2: the Woods-Saxon Coulomb e^2
// (MeV fm, nuclear_common/woods_saxon.rs's E2). Writes f_b, f_l, f_u, f_w
// `(i * 2 + s) * grid + q` (MeV).
extern "C" __global__ void scf_woods_saxon(const double* __restrict__ particles,
                                           const double* __restrict__ mass_number,
                                           const double* __restrict__ osc_length,
                                           const double* __restrict__ x,
                                           const double* __restrict__ w,
                                           double* __restrict__ f_b, double* __restrict__ f_l,
                                           double* __restrict__ f_u, double* __restrict__ f_w,
                                           double hb0, double e2, unsigned nuclei,
                                           unsigned grid) {
    const unsigned t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= nuclei * grid) return;
    const unsigned i = t / grid, q = t % grid;
    const double b = osc_length[i];
    const double r = b * x[q];
    const double n = particles[i * SCF_SPECIES], z = particles[i * SCF_SPECIES + 1];
    // WoodsSaxon::bohr_mottelson: a = Z + N.
    const double a = n + z;
    const double asym = 33.0 * (n - z) / a;
    const double r0 = 1.27;
    const double radius = r0 * cbrt(a);
    const double diffuseness = 0.67;
    const double coulomb_radius = 1.25 * cbrt(a);
    // start_point: hb (1 - 1/A) with A = mass_number.
    const double hb = hb0 * (1.0 - 1.0 / mass_number[i]);
    for (unsigned s = 0; s < SCF_SPECIES; ++s) {
        const double v0 = s == 0 ? 51.0 - asym : 51.0 + asym;
        // (Z - 1) e^2 for protons (Z >= 2 here), none for neutrons.
        const double charge = s == 0 ? 0.0 : (z - 1.0) * e2;
        // WoodsSaxon::central.
        const double f = 1.0 / (1.0 + exp((r - radius) / diffuseness));
        const double rc = coulomb_radius;
        const double coulomb =
            r >= rc ? charge / r : charge / (2.0 * rc) * (3.0 - r * r / (rc * rc));
        const double central = -v0 * f + coulomb;
        // WoodsSaxon::spin_orbit, halved: W / r multiplies l.sigma = 2 l.s.
        const double e = exp((r - radius) / diffuseness);
        const double df_dr = -e / (diffuseness * (1.0 + e) * (1.0 + e));
        const double spin_orbit = 0.44 * v0 * r0 * r0 * df_dr / r;
        scf_store_weighted(hb, central, 0.5 * r * spin_orbit, b, x[q], w[q],
                           (i * SCF_SPECIES + s) * grid + q, f_b, f_l, f_u, f_w);
    }
}
