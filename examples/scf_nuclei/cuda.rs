//! The CUDA runner (feature `cuda`): the whole iteration stays on the GPU. Every step is a CUDA
//! C kernel of `kernels/` (one file per step, ports of the bodies of `steps/`, compiled once by
//! NVRTC as one translation unit), the diagonalisation is the crate's ragged `eigh_on`, the
//! convergence scalar the crate's `reduce_scalar_on` (`ReduceOp::MaxAbsDiff`): all on ONE
//! `CudaQueue`, and that scalar is the only device-to-host read of an iteration.
//!
//! | step | kernel | one thread's work | launch |
//! |---|---|---|---|
//! | start (once) | `scf_woods_saxon` (woods_saxon.cu) | (nucleus, q), both species | nuclei * grid threads, blocks of 128 |
//! | fields | `scf_coulomb` (coulomb.cu), then `scf_fields` (fields.cu) | (nucleus, q) | nuclei * grid, 128 |
//! | build H | `scf_hamiltonian` (hamiltonian.cu) | one lower-triangle element, written to both triangles | nuclei * 2 * (lower elements per species), 128 |
//! | eigh | `Cuda::eigh_on`, `EighSpec::ragged(block sizes).with_vectors(true)` | - | the crate's size classes |
//! | BCS | `scf_bcs` (bcs.cu) | a WARP per (nucleus, species) | nuclei * 2 * 32, 64 |
//! | densities | `scf_densities` (densities.cu) | (nucleus, species, q) | nuclei * 2 * grid, 128 |
//! | max-diff | `Cuda::reduce_scalar_on` (`reduce_on` into a 1-element buffer in a graph) | - | the crate's |
//! | mixing | `scf_mix` (mixing.cu) | one element of the six arrays | nuclei * 2 * grid, 256 |
//!
//! Every buffer, plan and kernel is made in [`CudaRunner::new`]; the plan-time tables (basis
//! functions, quadrature, integration matrix, index tables) are uploaded there once; no step
//! allocates (`Cuda::device_allocations()` stays put; tests_cuda.rs checks it).
//!
//! Schedules ([`Schedule`], `--step-times`, `--graph`): `Eager` queues every step and returns
//! (the scalar read waits for the chain); `StepTimes` synchronises the queue at the end of each
//! step so the driver's per-step times are the steps' own; `Graph` runs the first iteration
//! eagerly (every kernel and plan then has run once, and `mix(first)` is behind), captures the
//! next one, from the Coulomb potential to the mixing (the reduction into a 1-element buffer
//! by `reduce_on`, as `reduce_scalar_on` synchronises and cannot be captured), with
//! `Cuda::capture`, and from then on an iteration is one `graph.launch` (in `build_fields`)
//! plus one `Backend::read_scalar` (in `mix`); the other steps return at once.
//!
//! `results` (after the loop) downloads the last densities, energies, occupations, gaps and
//! Fermi levels and computes the Coulomb potential and the energies with the CPU code of
//! `steps/` (coulomb.rs, energy.rs), the same code as the CPU runner's.

use std::time::Instant;

use megabatch::backends::cuda::{
    Cuda, CudaBuffer, CudaEighPlan, CudaGraph, CudaKernel, CudaQueue, CudaReducePlan, KernelArg,
    LaunchDims,
};
use megabatch::{Backend, BatchedEigh, EighSpec, Element, Error, ReduceOp, ReduceSpec, Reducer};

use crate::layout::{Layout, SPECIES};
use crate::runner::{Problem, Results, Runner, Schedule};
use crate::skyrme::{Coefficients, HBAR2_2M};
use crate::steps::{bcs, coulomb, energy, Densities};

/// The kernel sources, joined in this order after [`kernel_header`] into one translation unit.
pub const KERNEL_FILES: [(&str, &str); 8] = [
    ("common.cuh", include_str!("kernels/common.cuh")),
    ("woods_saxon.cu", include_str!("kernels/woods_saxon.cu")),
    ("coulomb.cu", include_str!("kernels/coulomb.cu")),
    ("fields.cu", include_str!("kernels/fields.cu")),
    ("hamiltonian.cu", include_str!("kernels/hamiltonian.cu")),
    ("bcs.cu", include_str!("kernels/bcs.cu")),
    ("densities.cu", include_str!("kernels/densities.cu")),
    ("mixing.cu", include_str!("kernels/mixing.cu")),
];

/// Every kernel of the translation unit, in the order of [`Kernels`]' fields.
pub const KERNEL_NAMES: [&str; 7] = [
    "scf_woods_saxon",
    "scf_coulomb",
    "scf_fields",
    "scf_hamiltonian",
    "scf_bcs",
    "scf_densities",
    "scf_mix",
];

/// Threads per block of the per-point kernels (woods_saxon, coulomb, fields, densities) and of
/// the Hamiltonian.
pub const POINT_BLOCK: u32 = 128;
/// Threads per block of the BCS kernel: two warps, two (nucleus, species).
pub const BCS_BLOCK: u32 = 64;
/// Threads per block of the mixing kernel.
pub const MIX_BLOCK: u32 = 256;
/// Lanes per (nucleus, species) in the BCS kernel.
pub const WARP: usize = 32;

/// States of one (nucleus, species) each BCS lane holds: ceil(states / 32), at least 1.
pub fn bcs_per_lane(states_per_species: usize) -> usize {
    states_per_species.div_ceil(WARP).max(1)
}

/// The `#define`s the kernels take from the Rust side: BCS's constants (steps/bcs.rs) and the
/// states each BCS lane holds. Floats are written with `{:?}`, the shortest text that parses
/// back to the same f64.
pub fn kernel_header(states_per_species: usize) -> String {
    assert!(
        states_per_species <= bcs::MAX_STATES,
        "more states than the BCS step's arrays"
    );
    let mut h = String::from("// generated by examples/scf_nuclei/cuda.rs\n");
    let per_lane = bcs_per_lane(states_per_species);
    h.push_str(&format!("#define BCS_PER_LANE {per_lane}\n"));
    for (name, value) in [
        ("BCS_DELTA_MIN", bcs::DELTA_MIN),
        ("BCS_DELTA_REF", bcs::DELTA_REF),
        ("BCS_WARM", bcs::WARM),
        ("BCS_RAMP", bcs::RAMP),
        ("BCS_LAMBDA_TOL", bcs::LAMBDA_TOL),
        ("BCS_GAP_TOL", bcs::GAP_TOL),
    ] {
        h.push_str(&format!("#define {name} ({value:?})\n"));
    }
    h.push_str(&format!("#define BCS_MAX_STEPS {}\n", bcs::MAX_STEPS));
    h
}

/// The translation unit for a batch whose (nucleus, species) have `states_per_species` states.
pub fn kernel_source(states_per_species: usize) -> String {
    let mut source = kernel_header(states_per_species);
    for (name, text) in KERNEL_FILES {
        source.push_str(&format!("// ---- {name}\n{text}\n"));
    }
    source
}

/// The lower-triangle elements of one (nucleus, species), the same for all (layout.rs): for
/// element e, the block's index among the (nucleus, species)'s blocks, and `r << 16 | c`
/// (r >= c). In block order, then row-major.
pub fn lower_triangle(lay: &Layout) -> (Vec<u32>, Vec<u32>) {
    let (mut block, mut rc) = (Vec::new(), Vec::new());
    if lay.nuclei_count() == 0 {
        return (block, rc);
    }
    let (b0, b1) = (lay.ns_block_off[0], lay.ns_block_off[1]);
    for blk in b0..b1 {
        let dim = lay.block_dim[blk as usize];
        assert!(dim < 1 << 16, "block order beyond 16 bits");
        for r in 0..dim {
            for c in 0..=r {
                block.push(blk - b0);
                rc.push(r << 16 | c);
            }
        }
    }
    (block, rc)
}

/// The coefficients as the kernels read them (`ScfCoefficients` in kernels/common.cuh): the
/// fields of [`Coefficients`] in declaration order.
pub fn coefficient_words(c: &Coefficients) -> [f64; 17] {
    [
        c.c0a, c.c0b, c.c3a, c.c3b, c.alpha, c.b0, c.b1, c.d0, c.d1, c.e0a, c.e0b, c.e3a, c.e3b,
        c.w0_half, c.hb, c.e2, c.slater,
    ]
}
const _: () = assert!(std::mem::size_of::<Coefficients>() == 17 * 8);

fn upload<T: Element>(cuda: &Cuda, host: &[T]) -> Result<CudaBuffer<T>, Error> {
    // A zero-length buffer is fine for the allocator; the kernels never read past the counts.
    let mut buf = cuda.alloc::<T>(host.len())?;
    cuda.upload(host, &mut buf)?;
    Ok(buf)
}

fn u32_of(n: usize, what: &'static str) -> Result<u32, Error> {
    u32::try_from(n).map_err(|_| Error::TooLarge(what))
}

/// The compiled kernels.
struct Kernels {
    woods_saxon: CudaKernel,
    coulomb: CudaKernel,
    fields: CudaKernel,
    hamiltonian: CudaKernel,
    bcs: CudaKernel,
    densities: CudaKernel,
    mix: CudaKernel,
}

/// The six density arrays on the device, each `(i * 2 + s) * grid + q` (steps/densities.rs).
struct DeviceDensities {
    rho: CudaBuffer<f64>,
    tau: CudaBuffer<f64>,
    sj: CudaBuffer<f64>,
    drho: CudaBuffer<f64>,
    lap_rho: CudaBuffer<f64>,
    div_j: CudaBuffer<f64>,
}

impl DeviceDensities {
    fn zeros(cuda: &Cuda, len: usize) -> Result<Self, Error> {
        Ok(Self {
            rho: cuda.alloc(len)?,
            tau: cuda.alloc(len)?,
            sj: cuda.alloc(len)?,
            drho: cuda.alloc(len)?,
            lap_rho: cuda.alloc(len)?,
            div_j: cuda.alloc(len)?,
        })
    }

    fn download(&self, cuda: &Cuda) -> Result<Densities, Error> {
        let mut d = Densities::zeros(self.rho.len());
        cuda.download(&self.rho, &mut d.rho)?;
        cuda.download(&self.tau, &mut d.tau)?;
        cuda.download(&self.sj, &mut d.sj)?;
        cuda.download(&self.drho, &mut d.drho)?;
        cuda.download(&self.lap_rho, &mut d.lap_rho)?;
        cuda.download(&self.div_j, &mut d.div_j)?;
        Ok(d)
    }
}

/// Everything the iteration touches on the device, and the launches of each step.
struct Device {
    k: Kernels,
    // Plan-time tables (tables.rs): x, w per grid point; u, g, d2u `row * grid + q`; cum
    // `q * grid + p`.
    x: CudaBuffer<f64>,
    w: CudaBuffer<f64>,
    u: CudaBuffer<f64>,
    g: CudaBuffer<f64>,
    d2u: CudaBuffer<f64>,
    cum: CudaBuffer<f64>,
    // Index tables (layout.rs) and the Hamiltonian's lower-triangle list (`lower_triangle`).
    block_nucleus: CudaBuffer<u32>,
    block_species: CudaBuffer<u32>,
    block_l: CudaBuffer<u32>,
    block_j2: CudaBuffer<u32>,
    block_dim: CudaBuffer<u32>,
    block_h_off: CudaBuffer<u32>,
    block_w_off: CudaBuffer<u32>,
    block_row: CudaBuffer<u32>,
    ns_block_off: CudaBuffer<u32>,
    ns_state_off: CudaBuffer<u32>,
    tri_block: CudaBuffer<u32>,
    tri_rc: CudaBuffer<u32>,
    state_deg: CudaBuffer<f64>,
    mass_number: CudaBuffer<f64>,
    osc_length: CudaBuffer<f64>,
    particles: CudaBuffer<f64>,
    /// The 17 coefficients (`coefficient_words`).
    coef: CudaBuffer<f64>,
    // The iteration's arrays.
    f_b: CudaBuffer<f64>,
    f_l: CudaBuffer<f64>,
    f_u: CudaBuffer<f64>,
    f_w: CudaBuffer<f64>,
    v_coul: CudaBuffer<f64>,
    h: CudaBuffer<f64>,
    energies: CudaBuffer<f64>,
    vecs: CudaBuffer<f64>,
    v2: CudaBuffer<f64>,
    delta: CudaBuffer<f64>,
    lambda: CudaBuffer<f64>,
    /// Densities of the last eigenvectors (unmixed).
    new: DeviceDensities,
    /// Mixed densities: the input of the next fields.
    mixed: DeviceDensities,
    /// The graph's max-diff result (one element).
    scalar: CudaBuffer<f64>,
    eigh_plan: CudaEighPlan<f64>,
    reduce_plan: CudaReducePlan<f64>,
    // Sizes and parameters.
    nuclei: u32,
    grid: u32,
    ns_count: u32,
    tri_per_species: u32,
    grid_len: u32,
    e2: f64,
    g0: f64,
    window: f64,
    mixing: f64,
}

impl Device {
    fn new(cuda: &Cuda, p: &Problem) -> Result<Self, Error> {
        let (lay, tab) = (&p.layout, &p.tables);
        let source = kernel_source(lay.states_per_species());
        // One NVRTC compilation (or cache hit): the kernels share the source.
        let [woods_saxon, coulomb, fields, hamiltonian, bcs, densities, mix] =
            KERNEL_NAMES.map(|name| cuda.compile_kernel(&source, name));
        let k = Kernels {
            woods_saxon: woods_saxon?,
            coulomb: coulomb?,
            fields: fields?,
            hamiltonian: hamiltonian?,
            bcs: bcs?,
            densities: densities?,
            mix: mix?,
        };
        let (tri_block, tri_rc) = lower_triangle(lay);
        // Every (nucleus, species) has the blocks of the first (what `lower_triangle` needs).
        let per = lay.ns_block_off[1] - lay.ns_block_off[0];
        assert!(
            (0..lay.nuclei_count() * SPECIES).all(|ns| {
                let (b0, b1) = (lay.ns_block_off[ns], lay.ns_block_off[ns + 1]);
                b1 - b0 == per
                    && (0..per)
                        .all(|j| lay.block_dim[(b0 + j) as usize] == lay.block_dim[j as usize])
            }),
            "every (nucleus, species) must have the same blocks"
        );
        let n = lay.grid_len();
        let spec = EighSpec::ragged(lay.block_sizes()).with_vectors(true);
        Ok(Self {
            k,
            x: upload(cuda, &tab.x)?,
            w: upload(cuda, &tab.w)?,
            u: upload(cuda, &tab.u)?,
            g: upload(cuda, &tab.g)?,
            d2u: upload(cuda, &tab.d2u)?,
            cum: upload(cuda, &tab.cum)?,
            block_nucleus: upload(cuda, &lay.block_nucleus)?,
            block_species: upload(cuda, &lay.block_species)?,
            block_l: upload(cuda, &lay.block_l)?,
            block_j2: upload(cuda, &lay.block_j2)?,
            block_dim: upload(cuda, &lay.block_dim)?,
            block_h_off: upload(cuda, &lay.block_h_off)?,
            block_w_off: upload(cuda, &lay.block_w_off)?,
            block_row: upload(cuda, &lay.block_row)?,
            ns_block_off: upload(cuda, &lay.ns_block_off)?,
            ns_state_off: upload(cuda, &lay.ns_state_off)?,
            tri_per_species: u32_of(tri_block.len(), "lower triangle")?,
            tri_block: upload(cuda, &tri_block)?,
            tri_rc: upload(cuda, &tri_rc)?,
            state_deg: upload(cuda, &lay.state_deg)?,
            mass_number: upload(cuda, &lay.mass_number)?,
            osc_length: upload(cuda, &lay.osc_length)?,
            particles: upload(cuda, &lay.particles)?,
            coef: upload(cuda, &coefficient_words(&p.coefficients))?,
            f_b: cuda.alloc(n)?,
            f_l: cuda.alloc(n)?,
            f_u: cuda.alloc(n)?,
            f_w: cuda.alloc(n)?,
            v_coul: cuda.alloc(lay.nuclei_count() * lay.grid())?,
            h: cuda.alloc(lay.h_len)?,
            energies: cuda.alloc(lay.states)?,
            vecs: cuda.alloc(lay.h_len)?,
            v2: cuda.alloc(lay.states)?,
            delta: cuda.alloc(SPECIES * lay.nuclei_count())?,
            lambda: cuda.alloc(SPECIES * lay.nuclei_count())?,
            new: DeviceDensities::zeros(cuda, n)?,
            mixed: DeviceDensities::zeros(cuda, n)?,
            scalar: cuda.alloc(1)?,
            eigh_plan: cuda.plan_eigh(&spec)?,
            reduce_plan: cuda.plan_reduce(&ReduceSpec::Full {
                op: ReduceOp::MaxAbsDiff,
                len: n,
            })?,
            nuclei: u32_of(lay.nuclei_count(), "nuclei")?,
            grid: u32_of(lay.grid(), "grid")?,
            ns_count: u32_of(SPECIES * lay.nuclei_count(), "nuclei")?,
            grid_len: u32_of(n, "grid arrays")?,
            e2: p.coefficients.e2,
            g0: p.pairing.g0,
            window: p.pairing.window,
            mixing: p.mixing,
        })
    }

    /// Threads of the per-(nucleus, q) kernels.
    fn points(&self) -> usize {
        self.nuclei as usize * self.grid as usize
    }

    fn start_fields(&mut self, cuda: &Cuda, q: &CudaQueue) -> Result<(), Error> {
        // SAFETY: scf_woods_saxon reads particles, mass_number, osc_length (nuclei and
        // 2 nuclei values) and x, w (grid) and writes the four fields at
        // (i * 2 + s) * grid + q < nuclei * 2 * grid, their length, for t < nuclei * grid.
        unsafe {
            cuda.launch_kernel(
                q,
                &self.k.woods_saxon,
                LaunchDims::linear(self.points(), POINT_BLOCK)?,
                &[
                    KernelArg::read(&self.particles),
                    KernelArg::read(&self.mass_number),
                    KernelArg::read(&self.osc_length),
                    KernelArg::read(&self.x),
                    KernelArg::read(&self.w),
                    KernelArg::write(&mut self.f_b),
                    KernelArg::write(&mut self.f_l),
                    KernelArg::write(&mut self.f_u),
                    KernelArg::write(&mut self.f_w),
                    HBAR2_2M.into(),
                    crate::woods_saxon::E2.into(),
                    self.nuclei.into(),
                    self.grid.into(),
                ],
            )
        }
    }

    fn build_fields(&mut self, cuda: &Cuda, q: &CudaQueue) -> Result<(), Error> {
        let dims = LaunchDims::linear(self.points(), POINT_BLOCK)?;
        let m = &self.mixed;
        // SAFETY: scf_coulomb reads the proton rho of nucleus i (nuclei * 2 * grid values),
        // osc_length, x, w, cum (grid * grid) and writes v_coul[t], t < nuclei * grid, its
        // length.
        unsafe {
            cuda.launch_kernel(
                q,
                &self.k.coulomb,
                dims,
                &[
                    KernelArg::read(&m.rho),
                    KernelArg::read(&self.osc_length),
                    KernelArg::read(&self.x),
                    KernelArg::read(&self.w),
                    KernelArg::read(&self.cum),
                    KernelArg::write(&mut self.v_coul),
                    self.e2.into(),
                    self.nuclei.into(),
                    self.grid.into(),
                ],
            )?;
        }
        // SAFETY: scf_fields reads 17 coefficients, the densities and v_coul within their
        // layouts, mass_number, osc_length, x, w, and writes the four fields at
        // (i * 2 + s) * grid + q < nuclei * 2 * grid, for t < nuclei * grid.
        unsafe {
            cuda.launch_kernel(
                q,
                &self.k.fields,
                dims,
                &[
                    KernelArg::read(&self.coef),
                    KernelArg::read(&m.rho),
                    KernelArg::read(&m.tau),
                    KernelArg::read(&m.drho),
                    KernelArg::read(&m.lap_rho),
                    KernelArg::read(&m.div_j),
                    KernelArg::read(&self.v_coul),
                    KernelArg::read(&self.mass_number),
                    KernelArg::read(&self.osc_length),
                    KernelArg::read(&self.x),
                    KernelArg::read(&self.w),
                    KernelArg::write(&mut self.f_b),
                    KernelArg::write(&mut self.f_l),
                    KernelArg::write(&mut self.f_u),
                    KernelArg::write(&mut self.f_w),
                    self.nuclei.into(),
                    self.grid.into(),
                ],
            )
        }
    }

    fn hamiltonian(&mut self, cuda: &Cuda, q: &CudaQueue) -> Result<(), Error> {
        let threads = self.ns_count as usize * self.tri_per_species as usize;
        // SAFETY: thread t < ns_count * tri_per_species reads tri_block/tri_rc[e],
        // e < tri_per_species, the block tables at blk < blocks, the fields of its (i, s) and
        // the basis rows of its block (within basis_rows * grid), and writes two elements of
        // its block inside h (block_h_off + dim^2 <= h_len).
        unsafe {
            cuda.launch_kernel(
                q,
                &self.k.hamiltonian,
                LaunchDims::linear(threads, POINT_BLOCK)?,
                &[
                    KernelArg::read(&self.f_b),
                    KernelArg::read(&self.f_l),
                    KernelArg::read(&self.f_u),
                    KernelArg::read(&self.f_w),
                    KernelArg::read(&self.u),
                    KernelArg::read(&self.g),
                    KernelArg::read(&self.ns_block_off),
                    KernelArg::read(&self.block_nucleus),
                    KernelArg::read(&self.block_species),
                    KernelArg::read(&self.block_l),
                    KernelArg::read(&self.block_j2),
                    KernelArg::read(&self.block_dim),
                    KernelArg::read(&self.block_h_off),
                    KernelArg::read(&self.block_row),
                    KernelArg::read(&self.tri_block),
                    KernelArg::read(&self.tri_rc),
                    KernelArg::write(&mut self.h),
                    self.ns_count.into(),
                    self.tri_per_species.into(),
                    self.grid.into(),
                ],
            )
        }
    }

    fn eigh(&mut self, cuda: &Cuda, q: &CudaQueue) -> Result<(), Error> {
        cuda.eigh_on(
            q,
            &mut self.eigh_plan,
            &self.h,
            &mut self.energies,
            Some(&mut self.vecs),
        )
    }

    fn bcs(&mut self, cuda: &Cuda, q: &CudaQueue) -> Result<(), Error> {
        // SAFETY: warp ns < ns_count reads its states ns_state_off[ns]..ns_state_off[ns + 1]
        // (<= states, the length of energies, state_deg and v2), particles[ns],
        // mass_number[ns / 2], and writes v2 of those states and delta[ns], lambda[ns].
        unsafe {
            cuda.launch_kernel(
                q,
                &self.k.bcs,
                LaunchDims::linear(self.ns_count as usize * WARP, BCS_BLOCK)?,
                &[
                    KernelArg::read(&self.energies),
                    KernelArg::read(&self.state_deg),
                    KernelArg::read(&self.ns_state_off),
                    KernelArg::read(&self.particles),
                    KernelArg::read(&self.mass_number),
                    KernelArg::write(&mut self.v2),
                    KernelArg::write(&mut self.delta),
                    KernelArg::write(&mut self.lambda),
                    self.g0.into(),
                    self.window.into(),
                    self.ns_count.into(),
                ],
            )
        }
    }

    fn densities(&mut self, cuda: &Cuda, q: &CudaQueue) -> Result<(), Error> {
        let n = &mut self.new;
        // SAFETY: thread t < nuclei * 2 * grid reads the blocks of its (i, s) (vecs and v2
        // within their block ranges, basis rows within basis_rows * grid) and writes element t
        // of the six density arrays (length nuclei * 2 * grid).
        unsafe {
            cuda.launch_kernel(
                q,
                &self.k.densities,
                LaunchDims::linear(self.grid_len as usize, POINT_BLOCK)?,
                &[
                    KernelArg::read(&self.vecs),
                    KernelArg::read(&self.v2),
                    KernelArg::read(&self.u),
                    KernelArg::read(&self.g),
                    KernelArg::read(&self.d2u),
                    KernelArg::read(&self.x),
                    KernelArg::read(&self.osc_length),
                    KernelArg::read(&self.ns_block_off),
                    KernelArg::read(&self.block_l),
                    KernelArg::read(&self.block_j2),
                    KernelArg::read(&self.block_dim),
                    KernelArg::read(&self.block_h_off),
                    KernelArg::read(&self.block_w_off),
                    KernelArg::read(&self.block_row),
                    KernelArg::write(&mut n.rho),
                    KernelArg::write(&mut n.tau),
                    KernelArg::write(&mut n.sj),
                    KernelArg::write(&mut n.drho),
                    KernelArg::write(&mut n.lap_rho),
                    KernelArg::write(&mut n.div_j),
                    self.nuclei.into(),
                    self.grid.into(),
                ],
            )
        }
    }

    /// mixed <- mixed + beta (new - mixed), or mixed <- new with `copy`.
    fn mix(&mut self, cuda: &Cuda, q: &CudaQueue, copy: bool) -> Result<(), Error> {
        let (n, m) = (&self.new, &mut self.mixed);
        // SAFETY: thread t < grid_len reads element t of the six new arrays and reads and
        // writes element t of the six mixed ones, all of length grid_len.
        unsafe {
            cuda.launch_kernel(
                q,
                &self.k.mix,
                LaunchDims::linear(self.grid_len as usize, MIX_BLOCK)?,
                &[
                    KernelArg::read(&n.rho),
                    KernelArg::read(&n.tau),
                    KernelArg::read(&n.sj),
                    KernelArg::read(&n.drho),
                    KernelArg::read(&n.lap_rho),
                    KernelArg::read(&n.div_j),
                    KernelArg::write(&mut m.rho),
                    KernelArg::write(&mut m.tau),
                    KernelArg::write(&mut m.sj),
                    KernelArg::write(&mut m.drho),
                    KernelArg::write(&mut m.lap_rho),
                    KernelArg::write(&mut m.div_j),
                    self.mixing.into(),
                    u32::from(copy).into(),
                    self.grid_len.into(),
                ],
            )
        }
    }

    /// max |rho_new - rho_mixed| into `scalar`, on the device.
    fn max_diff_on_device(&mut self, cuda: &Cuda, q: &CudaQueue) -> Result<(), Error> {
        cuda.reduce_on(
            q,
            &mut self.reduce_plan,
            &self.new.rho,
            Some(&self.mixed.rho),
            &mut self.scalar,
        )
    }

    /// One whole iteration after the first, as the graph holds it: fields, H, eigh, BCS,
    /// densities, max-diff into `scalar`, mixing.
    fn iteration(&mut self, cuda: &Cuda, q: &CudaQueue) -> Result<(), Error> {
        self.build_fields(cuda, q)?;
        self.hamiltonian(cuda, q)?;
        self.eigh(cuda, q)?;
        self.bcs(cuda, q)?;
        self.densities(cuda, q)?;
        self.max_diff_on_device(cuda, q)?;
        self.mix(cuda, q, false)
    }
}

/// The CUDA runner: device 0, one queue, every array on the device.
pub struct CudaRunner {
    p: Problem,
    cuda: Cuda,
    queue: CudaQueue,
    dev: Device,
    schedule: Schedule,
    /// The captured iteration (`Schedule::Graph`, from the second iteration on).
    graph: Option<CudaGraph>,
    /// Iterations (`mix(false)` calls) run eagerly.
    eager_iterations: usize,
    /// Seconds spent making the runner (NVRTC or its cache, uploads, plans).
    setup_seconds: f64,
    /// Seconds spent capturing and instantiating the graph (inside the second iteration).
    capture_seconds: Option<f64>,
}

impl CudaRunner {
    /// Compiles the kernels, uploads the tables, allocates every buffer and plans the eigh and
    /// the reduction, on CUDA device 0.
    ///
    /// # Errors
    /// [`Error::Device`] without a CUDA device, with NVRTC's log if a kernel does not compile,
    /// or when an allocation fails.
    pub fn new(p: Problem) -> Result<Self, Error> {
        let t = Instant::now();
        let cuda = Cuda::new()?;
        let queue = cuda.new_queue()?;
        let dev = Device::new(&cuda, &p)?;
        Ok(Self {
            p,
            cuda,
            queue,
            dev,
            schedule: Schedule::Eager,
            graph: None,
            eager_iterations: 0,
            setup_seconds: t.elapsed().as_secs_f64(),
            capture_seconds: None,
        })
    }

    pub fn boxed(p: Problem) -> Result<Box<dyn Runner>, Error> {
        Ok(Box::new(Self::new(p)?))
    }

    /// Runs one step eagerly (nothing once the graph replays whole iterations), finishing it
    /// first under `Schedule::StepTimes`.
    fn step(
        &mut self,
        f: impl FnOnce(&mut Device, &Cuda, &CudaQueue) -> Result<(), Error>,
    ) -> Result<(), Error> {
        if self.graph.is_some() {
            return Ok(());
        }
        f(&mut self.dev, &self.cuda, &self.queue)?;
        if self.schedule == Schedule::StepTimes {
            self.queue.synchronize()?;
        }
        Ok(())
    }
}

impl Runner for CudaRunner {
    fn name(&self) -> &'static str {
        "cuda"
    }

    fn set_schedule(&mut self, schedule: Schedule) -> Result<(), Error> {
        if self.eager_iterations > 0 || self.graph.is_some() {
            return Err(Error::InvalidArgument(
                "the schedule is chosen before the first iteration",
            ));
        }
        self.schedule = schedule;
        Ok(())
    }

    fn start_fields(&mut self) -> Result<(), Error> {
        self.step(|d, c, q| d.start_fields(c, q))
    }

    fn build_fields(&mut self) -> Result<(), Error> {
        if self.schedule == Schedule::Graph && self.eager_iterations > 0 {
            if self.graph.is_none() {
                // Every kernel and plan has run once: capture the rest of the loop's body.
                let t = Instant::now();
                let (cuda, dev) = (&self.cuda, &mut self.dev);
                let graph = cuda.capture(&self.queue, |q| dev.iteration(cuda, q))?;
                self.graph = Some(graph);
                self.capture_seconds = Some(t.elapsed().as_secs_f64());
            }
            if let Some(graph) = self.graph.as_mut() {
                return graph.launch(&self.queue);
            }
        }
        self.step(|d, c, q| d.build_fields(c, q))
    }

    fn build_hamiltonian(&mut self) -> Result<(), Error> {
        self.step(|d, c, q| d.hamiltonian(c, q))
    }

    fn eigh(&mut self) -> Result<(), Error> {
        self.step(|d, c, q| d.eigh(c, q))
    }

    fn bcs(&mut self) -> Result<(), Error> {
        self.step(|d, c, q| d.bcs(c, q))
    }

    fn densities(&mut self) -> Result<(), Error> {
        self.step(|d, c, q| d.densities(c, q))
    }

    fn mix(&mut self, first: bool) -> Result<f64, Error> {
        if self.graph.is_some() {
            // The replay computed the difference into `scalar` and mixed: read the one value.
            return self.cuda.read_scalar(&self.dev.scalar);
        }
        if first {
            self.step(|d, c, q| d.mix(c, q, true))?;
            return Ok(f64::INFINITY);
        }
        let dev = &mut self.dev;
        let diff = self.cuda.reduce_scalar_on(
            &self.queue,
            &mut dev.reduce_plan,
            &dev.new.rho,
            Some(&dev.mixed.rho),
        )?;
        self.step(|d, c, q| d.mix(c, q, false))?;
        self.eager_iterations += 1;
        Ok(diff)
    }

    fn results(&mut self) -> Result<Results, Error> {
        let (lay, tab, c) = (&self.p.layout, &self.p.tables, &self.p.coefficients);
        let (cuda, dev) = (&self.cuda, &self.dev);
        let new = dev.new.download(cuda)?;
        let download = |buf: &CudaBuffer<f64>| -> Result<Vec<f64>, Error> {
            let mut v = vec![0.0; buf.len()];
            cuda.download(buf, &mut v)?;
            Ok(v)
        };
        let delta = download(&dev.delta)?;
        let mut v_coul = vec![0.0; lay.nuclei_count() * lay.grid()];
        coulomb::potential(lay, tab, &new.rho, c.e2, &mut v_coul);
        let energy = energy::per_nucleus(c, lay, tab, &new, &v_coul, &delta, self.p.pairing.g0);
        Ok(Results {
            energies: download(&dev.energies)?,
            v2: download(&dev.v2)?,
            lambda: download(&dev.lambda)?,
            delta,
            energy,
            rho: new.rho,
        })
    }

    fn notes(&self) -> Vec<String> {
        let info = self.cuda.info();
        let mut notes = vec![format!(
            "CUDA: {} (sm_{}{}), setup {:.3} s (NVRTC or its cache, uploads, plans)",
            info.name, info.compute_capability.0, info.compute_capability.1, self.setup_seconds
        )];
        notes.push(match self.schedule {
            Schedule::Eager => "schedule: eager, one queue, no synchronisation but the scalar \
                                read (step times are queueing times; the wait lands on mixing)"
                .to_owned(),
            Schedule::StepTimes => {
                "schedule: eager, the queue synchronised after every step (step times are the \
                 steps' own, plus a launch latency each)"
                    .to_owned()
            }
            Schedule::Graph => match self.capture_seconds {
                Some(s) => format!(
                    "schedule: graph, captured after {} eager iteration(s) in {:.3} ms; each \
                     later iteration is one replay (counted as build fields) and one scalar \
                     read (mixing); the other steps show ~0",
                    self.eager_iterations,
                    s * 1e3
                ),
                None => "schedule: graph, never captured (the loop ended after one iteration)"
                    .to_owned(),
            },
        });
        notes
    }
}
