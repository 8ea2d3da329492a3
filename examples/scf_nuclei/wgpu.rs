//! The wgpu runner: the whole iteration on the GPU (feature `wgpu`), in f64.
//!
//! Every step is a WGSL compute shader of `shaders/` (one per step, with `shaders/common.wgsl`
//! in front: the parameter block and the f64 helpers), compiled with `Wgpu::compile_kernel`,
//! bound to its buffers once at setup and dispatched on megabatch's device, so the kernels,
//! the crate's ragged eigh and its reduction run in submission order on the device's one queue
//! without any host synchronisation in between:
//!
//! | step | where | shader (entry) | dispatch (workgroups) | one invocation |
//! |---|---|---|---|---|
//! | start | host once (setup: Woods-Saxon needs exp), then device | `mixing.wgsl` (`copy`) | grid-stride | element |
//! | build fields | device | `coulomb.wgsl`, then `fields.wgsl` (`fields_point`) | (ceil(grid/64), nuclei) each | (nucleus, q) |
//! | build H | device | `hamiltonian.wgsl` | (ceil(tasks/64), nuclei * 2) | lower-triangle element of one l, both j |
//! | eigh | device | megabatch `BatchedEigh` (ragged, with vectors) | the crate's | - |
//! | BCS | device | `bcs.wgsl` | (nuclei * 2) of WG = 32..256 ([`bcs_shape`]) | workgroup per (nucleus, species) |
//! | densities | device | `densities.wgsl` | (ceil(grid/64), nuclei * 2) | (nucleus, species, q) |
//! | max-diff | device, 8 bytes back | megabatch `Reducer` (`MaxAbsDiff`) + `read_scalar` | the crate's | - |
//! | mixing | device | `mixing.wgsl` (`mix`) for rho, then the other five | grid-stride, at most 1024 | element |
//! | energy (after the loop) | device | `coulomb.wgsl` on the new rho, `energy.wgsl` | (ceil(nuclei/64)) | nucleus |
//!
//! The energy is computed on the device (the nine terms of `EnergyParts` per nucleus, pairing
//! included) and read back with the other results; only `results` reads more than the one
//! scalar per iteration. The arrays keep layout.rs's layouts; the tables the shaders need
//! besides are packed as `shaders/common.wgsl` describes (`blk`, `nuc`, `basis`, `rest`,
//! `fields`, `pair`), every buffer is allocated and every constant table uploaded in
//! [`WgpuRunner::new`], and the loop allocates no device memory (the tests check both).
//!
//! Two schedules (runner.rs's `Schedule`): the default is the production loop, every step
//! queued and only the scalar read waiting, so the per-step times of the report are enqueue
//! times and the wait for the whole iteration lands in "mixing + max-diff"; `--step-times`
//! waits for the queue after every step (`WgpuQueue::synchronize`), so each step's time is its
//! device time plus a submission and a wait. wgpu has no graphs: `--graph` is refused.
//!
//! f64 only: an adapter without `SHADER_F64` is refused (no f32 fallback). Limits: at most
//! `max_workgroups_per_dim / 2` nuclei (32,767 on common adapters), blocks of order <= 255.

use ::wgpu as wgpu_api;
use megabatch::backends::wgpu::{Wgpu, WgpuArg, WgpuBinding, WgpuBindingKind, WgpuBuffer};
use megabatch::{Backend, BackendKind, BatchedEigh, EighSpec, Element, Error};
use megabatch::{ReduceOp, ReduceSpec, Reducer};

use crate::layout::{Layout, SPECIES};
use crate::runner::{Problem, Results, Runner, Schedule};
use crate::steps::densities::QUANTITIES;
use crate::steps::energy::EnergyParts;
use crate::steps::{woods_saxon, Fields};

use WgpuBindingKind::{ReadOnly as R, ReadWrite as W, Uniform as U};

/// The prelude of every shader: the parameter block and the f64 helpers.
pub const COMMON: &str = include_str!("shaders/common.wgsl");
/// Hamiltonian blocks (steps/hamiltonian.rs).
pub const HAMILTONIAN: &str = include_str!("shaders/hamiltonian.wgsl");
/// BCS per (nucleus, species), one workgroup each (steps/bcs.rs).
pub const BCS: &str = include_str!("shaders/bcs.wgsl");
/// Densities (steps/densities.rs).
pub const DENSITIES: &str = include_str!("shaders/densities.wgsl");
/// Direct Coulomb potential (steps/coulomb.rs).
pub const COULOMB: &str = include_str!("shaders/coulomb.wgsl");
/// Mean fields (steps/fields.rs).
pub const FIELDS: &str = include_str!("shaders/fields.wgsl");
/// Mixing and copies (steps/mixing.rs).
pub const MIXING: &str = include_str!("shaders/mixing.wgsl");
/// Energy per nucleus (steps/energy.rs).
pub const ENERGY: &str = include_str!("shaders/energy.wgsl");

/// Invocations per workgroup of the per-element shaders (fixed in their WGSL).
const LINEAR_WG: u32 = 64;
/// Invocations per workgroup of `mixing.wgsl`, and its most workgroups per dispatch.
const MIX_WG: u32 = 256;
const MIX_MAX_GROUPS: u32 = 1024;
/// States each BCS invocation holds at most: the workgroup is sized so that SLOTS <= this.
const BCS_SLOTS: usize = 4;

/// One compute shader: its name (the entry point), its full source and the kinds of its
/// bindings 0, 1, ...
#[derive(Debug, Clone)]
pub struct Shader {
    pub entry: &'static str,
    pub source: String,
    pub kinds: Vec<WgpuBindingKind>,
}

fn shader(step: &str, entry: &'static str, header: &str, kinds: &[WgpuBindingKind]) -> Shader {
    Shader {
        entry,
        source: format!("{header}{COMMON}\n{step}"),
        kinds: kinds.to_vec(),
    }
}

/// The BCS workgroup for `states` states per (nucleus, species): (WG, SLOTS), WG a power of
/// two in 32..=256 with WG * SLOTS >= states and SLOTS <= 4 (512 states at most, as
/// steps/bcs.rs's MAX_STATES).
pub fn bcs_shape(states: usize) -> (u32, u32) {
    let wg = states
        .div_ceil(BCS_SLOTS)
        .next_power_of_two()
        .clamp(32, 256);
    (wg as u32, states.div_ceil(wg).max(1) as u32)
}

/// Every shader the runner compiles for `states` states per (nucleus, species).
pub fn shaders(states: usize) -> Vec<Shader> {
    let (wg, slots) = bcs_shape(states);
    let bcs_header = format!("const WG: u32 = {wg}u;\nconst SLOTS: u32 = {slots}u;\n");
    vec![
        shader(HAMILTONIAN, "hamiltonian", "", &[U, R, R, R, R, W]),
        shader(BCS, "bcs", &bcs_header, &[U, R, R, R, W, W]),
        shader(DENSITIES, "densities", "", &[U, R, R, R, R, R, W, W]),
        shader(COULOMB, "coulomb", "", &[U, R, R, R, W]),
        shader(FIELDS, "fields_point", "", &[U, R, R, R, R, R, W]),
        shader(MIXING, "mix", "", &[U, W, R]),
        shader(MIXING, "copy", "", &[U, W, R]),
        shader(ENERGY, "energy", "", &[U, R, R, R, R, R, R, W]),
    ]
}

/// The uniform block `Params` of `shaders/common.wgsl`, serialised field by field (little
/// endian, natural alignment: 8 u32, then f64 from byte 32; 192 bytes). `fields` records each
/// field's name and byte offset, which a test compares with naga's layout of the WGSL struct.
#[derive(Debug, Default)]
pub struct ParamBlock {
    pub bytes: Vec<u8>,
    pub fields: Vec<(&'static str, usize)>,
}

impl ParamBlock {
    fn u32(&mut self, name: &'static str, v: u32) {
        self.fields.push((name, self.bytes.len()));
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    fn f64(&mut self, name: &'static str, v: f64) {
        assert_eq!(self.bytes.len() % 8, 0, "{name}: f64 misaligned");
        self.fields.push((name, self.bytes.len()));
        self.bytes.extend_from_slice(&v.to_le_bytes());
    }

    /// The parameters of problem `p` (tasks: the Hamiltonian tasks per (nucleus, species)).
    pub fn new(p: &Problem, tasks: usize) -> Self {
        let lay = &p.layout;
        let c = &p.coefficients;
        let mut b = Self::default();
        b.u32("nuclei", lay.nuclei_count() as u32);
        b.u32("grid", lay.grid() as u32);
        b.u32("grid_len", lay.grid_len() as u32);
        b.u32("rows", lay.basis_rows as u32);
        b.u32("blocks_ns", (lay.blocks_per_nucleus() / SPECIES) as u32);
        b.u32("states_ns", lay.states_per_species() as u32);
        b.u32("tasks_ns", tasks as u32);
        b.u32("pad0", 0);
        b.f64("beta", p.mixing);
        b.f64("g0", p.pairing.g0);
        b.f64("window", p.pairing.window);
        for (name, v) in [
            ("c0a", c.c0a),
            ("c0b", c.c0b),
            ("c3a", c.c3a),
            ("c3b", c.c3b),
            ("alpha", c.alpha),
            ("b0", c.b0),
            ("b1", c.b1),
            ("d0", c.d0),
            ("d1", c.d1),
            ("e0a", c.e0a),
            ("e0b", c.e0b),
            ("e3a", c.e3a),
            ("e3b", c.e3b),
            ("w0_half", c.w0_half),
            ("hb", c.hb),
            ("e2", c.e2),
            ("slater", c.slater),
        ] {
            b.f64(name, v);
        }
        debug_assert_eq!(b.bytes.len() % 16, 0);
        b
    }
}

/// The Hamiltonian tasks of one (nucleus, species), the same for every one: per l, the lower
/// triangle (r, c <= r) of its first block, packed as `hamiltonian.wgsl` reads them (c, r,
/// the block's index within the species, and bit 31 when the next block is the same l's
/// j = l - 1/2 partner, computed in the same invocation as steps/hamiltonian.rs's
/// `element_pair` does).
pub fn hamiltonian_tasks(lay: &Layout) -> Vec<u32> {
    let per = lay.blocks_per_nucleus() / SPECIES;
    let mut tasks = Vec::new();
    let mut b = 0;
    while b < per {
        let paired = b + 1 < per && lay.block_l[b] > 0 && lay.block_l[b + 1] == lay.block_l[b];
        let d = lay.block_dim[b];
        assert!(
            d <= 255 && b < 1 << 15,
            "block too large for the task packing"
        );
        for r in 0..d {
            for c in 0..=r {
                tasks.push(c | r << 8 | (b as u32) << 16 | u32::from(paired) << 31);
            }
        }
        b += if paired { 2 } else { 1 };
    }
    tasks
}

fn unsupported(message: String) -> Error {
    Error::Unsupported {
        backend: BackendKind::Wgpu,
        message,
    }
}

fn upload<T: Element>(gpu: &Wgpu, data: &[T]) -> Result<WgpuBuffer<T>, Error> {
    let mut buf = gpu.alloc::<T>(data.len())?;
    gpu.upload(data, &mut buf)?;
    Ok(buf)
}

/// Workgroups of a grid-stride pass over `len` elements (`mixing.wgsl`).
fn mix_groups(len: usize) -> (u32, u32, u32) {
    let groups = len
        .div_ceil(MIX_WG as usize)
        .clamp(1, MIX_MAX_GROUPS as usize);
    (groups as u32, 1, 1)
}

/// Dispatch counts that fit u32 (checked against the adapter's limit by `dispatch`).
fn groups(n: usize, per: u32) -> u32 {
    n.div_ceil(per as usize) as u32
}

/// Everything on the device: the constant tables, the iteration's arrays, the plans and the
/// bound kernels (see the module docs).
pub struct WgpuRunner {
    p: Problem,
    gpu: Wgpu,
    /// Wait for the queue after every step (per-step device times).
    eager: bool,
    eigh_plan: <Wgpu as BatchedEigh<f64>>::EighPlan,
    reduce_plan: <Wgpu as Reducer<f64>>::ReducePlan,
    /// The uniform `Params` block (kept alive: the bindings refer to it).
    _params: wgpu_api::Buffer,
    /// Kept alive for the bindings: constant tables and the Woods-Saxon start.
    _tables: Vec<WgpuBuffer<f64>>,
    _index: Vec<WgpuBuffer<u32>>,
    _fields: WgpuBuffer<f64>,
    _v_coul: WgpuBuffer<f64>,
    _rest_new: WgpuBuffer<f64>,
    _rest_mix: WgpuBuffer<f64>,
    h: WgpuBuffer<f64>,
    energies: WgpuBuffer<f64>,
    vecs: WgpuBuffer<f64>,
    v2: WgpuBuffer<f64>,
    /// delta, lambda at `ns * 2`, `ns * 2 + 1`.
    pair: WgpuBuffer<f64>,
    rho_new: WgpuBuffer<f64>,
    rho_mix: WgpuBuffer<f64>,
    scalar: WgpuBuffer<f64>,
    /// Nine energy terms per nucleus.
    energy_out: WgpuBuffer<f64>,
    k: Kernels,
}

/// The bound kernels and their dispatch shapes.
struct Kernels {
    start: (WgpuBinding, (u32, u32, u32)),
    coulomb: (WgpuBinding, (u32, u32, u32)),
    fields: (WgpuBinding, (u32, u32, u32)),
    hamiltonian: (WgpuBinding, (u32, u32, u32)),
    bcs: (WgpuBinding, (u32, u32, u32)),
    densities: (WgpuBinding, (u32, u32, u32)),
    copy_rho: (WgpuBinding, (u32, u32, u32)),
    copy_rest: (WgpuBinding, (u32, u32, u32)),
    mix_rho: (WgpuBinding, (u32, u32, u32)),
    mix_rest: (WgpuBinding, (u32, u32, u32)),
    coulomb_new: (WgpuBinding, (u32, u32, u32)),
    energy: (WgpuBinding, (u32, u32, u32)),
}

impl WgpuRunner {
    /// Opens megabatch's wgpu device, uploads the tables, allocates every array, compiles and
    /// binds every shader, plans the eigh and the reduction.
    ///
    /// # Errors
    /// [`Error::Unsupported`] for an adapter without f64 shaders or a batch beyond the
    /// dispatch limits; the device's errors (no adapter, compile or allocation failures).
    pub fn new(p: Problem, eager: bool) -> Result<Self, Error> {
        Self::with_device(p, Wgpu::new()?, eager)
    }

    /// [`WgpuRunner::new`] on a device already open (a clone shares it).
    ///
    /// # Errors
    /// As [`WgpuRunner::new`].
    pub fn with_device(p: Problem, gpu: Wgpu, eager: bool) -> Result<Self, Error> {
        let info = gpu.adapter();
        if !info.f64 {
            return Err(unsupported(format!(
                "scf_nuclei runs in f64 and {} has no SHADER_F64",
                info.name
            )));
        }
        let lay = &p.layout;
        let tab = &p.tables;
        let nuclei = lay.nuclei_count();
        let ns_count = nuclei * SPECIES;
        let (grid, grid_len) = (lay.grid(), lay.grid_len());
        let blocks_ns = lay.blocks_per_nucleus() / SPECIES;
        let states_ns = lay.states_per_species();
        let uniform = (0..=ns_count).all(|ns| {
            lay.ns_block_off[ns] as usize == ns * blocks_ns
                && lay.ns_state_off[ns] as usize == ns * states_ns
        });
        if !uniform || nuclei == 0 {
            return Err(Error::InvalidArgument(
                "the wgpu runner needs the same blocks for every nucleus and species",
            ));
        }
        if ns_count > info.max_workgroups_per_dim as usize {
            return Err(unsupported(format!(
                "{nuclei} nuclei: at most {} in one batch on {}",
                info.max_workgroups_per_dim / 2,
                info.name
            )));
        }

        // Constant tables.
        let tasks = hamiltonian_tasks(lay);
        let params = ParamBlock::new(&p, tasks.len());
        let params_buf = gpu.device().create_buffer(&wgpu_api::BufferDescriptor {
            label: Some("scf_nuclei params"),
            size: params.bytes.len() as u64,
            usage: wgpu_api::BufferUsages::UNIFORM | wgpu_api::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        gpu.queue().write_buffer(&params_buf, 0, &params.bytes);
        let mut blk = Vec::with_capacity(lay.blocks() * 8);
        for b in 0..lay.blocks() {
            blk.extend_from_slice(&[
                lay.block_nucleus[b],
                lay.block_species[b],
                lay.block_l[b],
                lay.block_j2[b],
                lay.block_dim[b],
                lay.block_h_off[b],
                lay.block_w_off[b],
                lay.block_row[b],
            ]);
        }
        let nuc: Vec<f64> = (0..nuclei)
            .flat_map(|i| {
                [
                    lay.mass_number[i],
                    lay.osc_length[i],
                    lay.particles[i * SPECIES],
                    lay.particles[i * SPECIES + 1],
                ]
            })
            .collect();
        let basis: Vec<f64> = [&tab.u, &tab.g, &tab.d2u, &tab.x, &tab.w, &tab.cum]
            .into_iter()
            .flat_map(|v| v.iter().copied())
            .collect();
        let mut start = Fields::zeros(grid_len);
        woods_saxon::start_fields(lay, tab, &mut start);
        let start: Vec<f64> = [&start.f_b, &start.f_l, &start.f_u, &start.f_w]
            .into_iter()
            .flat_map(|v| v.iter().copied())
            .collect();
        let tasks_buf = upload(&gpu, &tasks)?;
        let blk_buf = upload(&gpu, &blk)?;
        let nuc_buf = upload(&gpu, &nuc)?;
        let deg_buf = upload(&gpu, &lay.state_deg)?;
        let basis_buf = upload(&gpu, &basis)?;
        let start_buf = upload(&gpu, &start)?;

        // The iteration's arrays.
        let fields = gpu.alloc::<f64>(4 * grid_len)?;
        let v_coul = gpu.alloc::<f64>(nuclei * grid)?;
        let h = gpu.alloc::<f64>(lay.h_len)?;
        let energies = gpu.alloc::<f64>(lay.states)?;
        let vecs = gpu.alloc::<f64>(lay.h_len)?;
        let v2 = gpu.alloc::<f64>(lay.states)?;
        let pair = gpu.alloc::<f64>(2 * ns_count)?;
        let rest = QUANTITIES - 1;
        let rho_new = gpu.alloc::<f64>(grid_len)?;
        let rho_mix = gpu.alloc::<f64>(grid_len)?;
        let rest_new = gpu.alloc::<f64>(rest * grid_len)?;
        let rest_mix = gpu.alloc::<f64>(rest * grid_len)?;
        let scalar = gpu.alloc::<f64>(1)?;
        let energy_out = gpu.alloc::<f64>(9 * nuclei)?;

        let eigh_plan = gpu.plan_eigh(&EighSpec::ragged(lay.block_sizes()).with_vectors(true))?;
        let reduce_plan = gpu.plan_reduce(&ReduceSpec::Full {
            op: ReduceOp::MaxAbsDiff,
            len: grid_len,
        })?;

        // Compile and bind.
        let compiled: Vec<_> = shaders(states_ns)
            .into_iter()
            .map(|s| gpu.compile_kernel(&s.source, s.entry, &s.kinds))
            .collect::<Result<_, _>>()?;
        let [ham_k, bcs_k, dens_k, coul_k, fields_k, mix_k, copy_k, energy_k] =
            <[_; 8]>::try_from(compiled).expect("eight shaders");
        let pb: WgpuArg = (&params_buf).into();
        let bind = |k, args: &[WgpuArg]| gpu.bind_kernel(k, args);
        let per_point = (groups(grid, LINEAR_WG), nuclei as u32, 1);
        let per_species = (groups(grid, LINEAR_WG), ns_count as u32, 1);
        let (bcs_wg, _) = bcs_shape(states_ns);
        debug_assert!(bcs_wg as usize * BCS_SLOTS >= states_ns);
        let k = Kernels {
            start: (
                bind(&copy_k, &[pb, (&fields).into(), (&start_buf).into()])?,
                mix_groups(4 * grid_len),
            ),
            coulomb: (
                bind(
                    &coul_k,
                    &[
                        pb,
                        (&nuc_buf).into(),
                        (&basis_buf).into(),
                        (&rho_mix).into(),
                        (&v_coul).into(),
                    ],
                )?,
                per_point,
            ),
            fields: (
                bind(
                    &fields_k,
                    &[
                        pb,
                        (&nuc_buf).into(),
                        (&basis_buf).into(),
                        (&rho_mix).into(),
                        (&rest_mix).into(),
                        (&v_coul).into(),
                        (&fields).into(),
                    ],
                )?,
                per_point,
            ),
            hamiltonian: (
                bind(
                    &ham_k,
                    &[
                        pb,
                        (&tasks_buf).into(),
                        (&blk_buf).into(),
                        (&basis_buf).into(),
                        (&fields).into(),
                        (&h).into(),
                    ],
                )?,
                (groups(tasks.len(), LINEAR_WG), ns_count as u32, 1),
            ),
            bcs: (
                bind(
                    &bcs_k,
                    &[
                        pb,
                        (&energies).into(),
                        (&deg_buf).into(),
                        (&nuc_buf).into(),
                        (&v2).into(),
                        (&pair).into(),
                    ],
                )?,
                (ns_count as u32, 1, 1),
            ),
            densities: (
                bind(
                    &dens_k,
                    &[
                        pb,
                        (&blk_buf).into(),
                        (&nuc_buf).into(),
                        (&basis_buf).into(),
                        (&vecs).into(),
                        (&v2).into(),
                        (&rho_new).into(),
                        (&rest_new).into(),
                    ],
                )?,
                per_species,
            ),
            copy_rho: (
                bind(&copy_k, &[pb, (&rho_mix).into(), (&rho_new).into()])?,
                mix_groups(grid_len),
            ),
            copy_rest: (
                bind(&copy_k, &[pb, (&rest_mix).into(), (&rest_new).into()])?,
                mix_groups(rest * grid_len),
            ),
            mix_rho: (
                bind(&mix_k, &[pb, (&rho_mix).into(), (&rho_new).into()])?,
                mix_groups(grid_len),
            ),
            mix_rest: (
                bind(&mix_k, &[pb, (&rest_mix).into(), (&rest_new).into()])?,
                mix_groups(rest * grid_len),
            ),
            coulomb_new: (
                bind(
                    &coul_k,
                    &[
                        pb,
                        (&nuc_buf).into(),
                        (&basis_buf).into(),
                        (&rho_new).into(),
                        (&v_coul).into(),
                    ],
                )?,
                per_point,
            ),
            energy: (
                bind(
                    &energy_k,
                    &[
                        pb,
                        (&nuc_buf).into(),
                        (&basis_buf).into(),
                        (&rho_new).into(),
                        (&rest_new).into(),
                        (&v_coul).into(),
                        (&pair).into(),
                        (&energy_out).into(),
                    ],
                )?,
                (groups(nuclei, LINEAR_WG), 1, 1),
            ),
        };
        // Setup ends with the uploads done, so the loop's first step times no transfer.
        gpu.synchronize()?;
        let info = gpu.adapter();
        println!(
            "wgpu: {} ({}, {}, driver {}); BCS workgroups of {bcs_wg}; {}",
            info.name,
            info.backend,
            info.device_type,
            info.driver,
            if eager {
                "waiting after every step: per-step times are device times"
            } else {
                "steps queued, one wait per iteration at the scalar read: per-step times are \
                 enqueue times (--step-times for device times)"
            }
        );
        Ok(Self {
            eager,
            eigh_plan,
            reduce_plan,
            _params: params_buf,
            _tables: vec![nuc_buf, deg_buf, basis_buf, start_buf],
            _index: vec![tasks_buf, blk_buf],
            _fields: fields,
            _v_coul: v_coul,
            _rest_new: rest_new,
            _rest_mix: rest_mix,
            h,
            energies,
            vecs,
            v2,
            pair,
            rho_new,
            rho_mix,
            scalar,
            energy_out,
            k,
            gpu,
            p,
        })
    }

    /// The production runner (`--backend wgpu`).
    pub fn boxed(p: Problem) -> Result<Box<dyn Runner>, Error> {
        Ok(Box::new(Self::new(p, false)?))
    }

    /// In eager mode, waits until the step just queued has run.
    fn done(&self) -> Result<(), Error> {
        if self.eager {
            self.gpu.queue_handle().synchronize()?;
        }
        Ok(())
    }

    fn run(&self, kernels: &[&(WgpuBinding, (u32, u32, u32))]) -> Result<(), Error> {
        let list: Vec<(&WgpuBinding, (u32, u32, u32))> =
            kernels.iter().map(|(b, shape)| (b, *shape)).collect();
        self.gpu.dispatch(&list)?;
        self.done()
    }
}

impl Runner for WgpuRunner {
    fn name(&self) -> &'static str {
        "wgpu"
    }

    fn set_schedule(&mut self, schedule: Schedule) -> Result<(), Error> {
        match schedule {
            Schedule::Eager => self.eager = false,
            Schedule::StepTimes => self.eager = true,
            Schedule::Graph => {
                return Err(Error::InvalidArgument(
                    "wgpu has no graph replay (--graph needs --backend cuda)",
                ))
            }
        }
        Ok(())
    }

    fn start_fields(&mut self) -> Result<(), Error> {
        self.run(&[&self.k.start])
    }

    fn build_fields(&mut self) -> Result<(), Error> {
        self.run(&[&self.k.coulomb, &self.k.fields])
    }

    fn build_hamiltonian(&mut self) -> Result<(), Error> {
        self.run(&[&self.k.hamiltonian])
    }

    fn eigh(&mut self) -> Result<(), Error> {
        self.gpu.eigh(
            &mut self.eigh_plan,
            &self.h,
            &mut self.energies,
            Some(&mut self.vecs),
        )?;
        self.done()
    }

    fn bcs(&mut self) -> Result<(), Error> {
        self.run(&[&self.k.bcs])
    }

    fn densities(&mut self) -> Result<(), Error> {
        self.run(&[&self.k.densities])
    }

    fn mix(&mut self, first: bool) -> Result<f64, Error> {
        if first {
            self.run(&[&self.k.copy_rho, &self.k.copy_rest])?;
            return Ok(f64::INFINITY);
        }
        // The difference reads the mixed densities before the mixing writes them: both are
        // queued in this order, then the one read-back waits for the iteration.
        self.gpu.reduce(
            &mut self.reduce_plan,
            &self.rho_new,
            Some(&self.rho_mix),
            &mut self.scalar,
        )?;
        self.gpu.dispatch(&[
            (&self.k.mix_rho.0, self.k.mix_rho.1),
            (&self.k.mix_rest.0, self.k.mix_rest.1),
        ])?;
        self.gpu.read_scalar(&self.scalar)
    }

    fn results(&mut self) -> Result<Results, Error> {
        self.run(&[&self.k.coulomb_new, &self.k.energy])?;
        let lay = &self.p.layout;
        let read = |b: &WgpuBuffer<f64>, len: usize| -> Result<Vec<f64>, Error> {
            let mut v = vec![0.0; len];
            self.gpu.download(b, &mut v)?;
            Ok(v)
        };
        let parts = read(&self.energy_out, 9 * lay.nuclei_count())?;
        let pair = read(&self.pair, 2 * SPECIES * lay.nuclei_count())?;
        let energy = parts
            .chunks_exact(9)
            .map(|e| EnergyParts {
                kinetic: e[0],
                t0: e[1],
                t3: e[2],
                effective_mass: e[3],
                finite_range: e[4],
                spin_orbit: e[5],
                coulomb_direct: e[6],
                coulomb_exchange: e[7],
                pairing: e[8],
            })
            .collect();
        let out = Results {
            energies: read(&self.energies, lay.states)?,
            v2: read(&self.v2, lay.states)?,
            delta: pair.iter().step_by(2).copied().collect(),
            lambda: pair.iter().skip(1).step_by(2).copied().collect(),
            energy,
            rho: read(&self.rho_new, lay.grid_len())?,
        };
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    //! The wgpu runner's checks: every shader validates with naga (no adapter needed), the
    //! parameter block matches its WGSL struct, and on an adapter (lavapipe in CI) the runner
    //! agrees with the CPU runner, reads one scalar per iteration and allocates nothing in the
    //! loop. The GPU tests skip with a notice without an adapter unless
    //! `MEGABATCH_REQUIRE_WGPU=1`, and run one at a time (`Wgpu::host_reads` counts for the
    //! whole process).

    use std::sync::Mutex;

    use megabatch::backends::wgpu::{Wgpu, WgpuBindingKind};
    use megabatch::Backend;
    use naga::valid::{Capabilities, ValidationFlags, Validator};

    use super::{bcs_shape, hamiltonian_tasks, shaders, ParamBlock, WgpuRunner};
    use crate::layout::SPECIES;
    use crate::levels::{levels, particle_number};
    use crate::runner::{self, Problem, Runner};
    use crate::scf::{self, Stop};
    use crate::{problem, MAX_ITER, TOL};

    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

    fn parse(entry: &str, source: &str) -> naga::Module {
        naga::front::wgsl::parse_str(source)
            .unwrap_or_else(|e| panic!("{entry}: parse error\n{}", e.emit_to_string(source)))
    }

    #[test]
    fn wgpu_shaders_validate_with_naga() {
        // Every BCS workgroup shape the runner can choose (32..=256 invocations, 1..=4
        // states each) and the other shaders, with what megabatch's device requests.
        let caps = Capabilities::FLOAT64
            | Capabilities::SHADER_FLOAT16
            | Capabilities::SUBGROUP
            | Capabilities::SUBGROUP_BARRIER;
        let mut checked = 0;
        for states in [1, 45, 100, 153, 200, 300, 512] {
            let (wg, slots) = bcs_shape(states);
            assert!(wg.is_power_of_two() && (32..=256).contains(&wg));
            assert!((1..=4).contains(&slots) && (wg * slots) as usize >= states);
            for s in shaders(states) {
                let module = parse(s.entry, &s.source);
                Validator::new(ValidationFlags::all(), caps)
                    .validate(&module)
                    .unwrap_or_else(|e| {
                        panic!(
                            "{}: validation error\n{}",
                            s.entry,
                            e.emit_to_string(&s.source)
                        )
                    });
                assert!(
                    module.entry_points.iter().any(|e| e.name == s.entry),
                    "{}: no such entry point",
                    s.entry
                );
                // Each declared binding has the kind the runner binds it as.
                let mut seen = vec![false; s.kinds.len()];
                for (_, var) in module.global_variables.iter() {
                    let Some(rb) = &var.binding else { continue };
                    assert_eq!(rb.group, 0);
                    let i = rb.binding as usize;
                    assert!(
                        i < s.kinds.len(),
                        "{}: binding {i} beyond the layout",
                        s.entry
                    );
                    let kind = match var.space {
                        naga::AddressSpace::Uniform => WgpuBindingKind::Uniform,
                        naga::AddressSpace::Storage { access }
                            if access.contains(naga::StorageAccess::STORE) =>
                        {
                            WgpuBindingKind::ReadWrite
                        }
                        naga::AddressSpace::Storage { .. } => WgpuBindingKind::ReadOnly,
                        other => panic!("{}: binding {i} in {other:?}", s.entry),
                    };
                    assert_eq!(kind, s.kinds[i], "{}: binding {i}", s.entry);
                    seen[i] = true;
                }
                assert!(seen.iter().all(|&x| x), "{}: {seen:?}", s.entry);
                checked += 1;
            }
        }
        assert_eq!(checked, 7 * 8);
    }

    #[test]
    fn wgpu_parameter_block_matches_the_wgsl_struct() {
        let p = problem(&[(8, 8), (82, 126)], 8);
        let tasks = hamiltonian_tasks(&p.layout);
        let block = ParamBlock::new(&p, tasks.len());
        let s = &shaders(p.layout.states_per_species())[0];
        let module = parse(s.entry, &s.source);
        let (members, span) = module
            .types
            .iter()
            .find_map(|(_, t)| match (&t.name, &t.inner) {
                (Some(n), naga::TypeInner::Struct { members, span }) if n == "Params" => {
                    Some((members.clone(), *span))
                }
                _ => None,
            })
            .expect("struct Params");
        let wgsl: Vec<(String, usize)> = members
            .iter()
            .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
            .collect();
        let rust: Vec<(String, usize)> = block
            .fields
            .iter()
            .map(|&(n, o)| (n.to_string(), o))
            .collect();
        assert_eq!(wgsl, rust);
        assert_eq!(span as usize, block.bytes.len());
        // Tasks: one per lower-triangle element of each l's first block.
        let lay = &p.layout;
        let per = lay.blocks_per_nucleus() / SPECIES;
        let mut want = 0;
        for l in 0..=8usize {
            let d = crate::layout::dim(8, l);
            want += d * (d + 1) / 2;
        }
        assert_eq!(tasks.len(), want);
        assert!(tasks.iter().all(|&t| ((t >> 16) & 0x7fff) < per as u32));
    }

    /// The device, or None (with a notice) when there is none and none is required.
    fn device() -> Option<Wgpu> {
        match Wgpu::new() {
            Ok(w) if w.adapter().f64 => Some(w),
            other => {
                let why = match other {
                    Ok(w) => format!("{} has no SHADER_F64", w.adapter().name),
                    Err(e) => e.to_string(),
                };
                let required = std::env::var("MEGABATCH_REQUIRE_WGPU").is_ok_and(|v| v == "1");
                assert!(
                    !required,
                    "MEGABATCH_REQUIRE_WGPU=1 but no f64 wgpu adapter: {why}"
                );
                eprintln!("skipping: no f64 wgpu adapter ({why})");
                None
            }
        }
    }

    /// 16O, 40Ca, 48Ca and 208Pb (closed shells) and 120Sn (open neutron shell).
    const NUCLEI: [(u32, u32); 5] = [(8, 8), (20, 20), (20, 28), (82, 126), (50, 70)];
    /// A small basis keeps lavapipe's time low.
    const N_MAX: usize = 8;

    #[test]
    fn wgpu_runner_agrees_with_the_cpu_runner() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let Some(gpu) = device() else { return };
        eprintln!("adapter: {}", gpu.adapter().name);
        let p = problem(&NUCLEI, N_MAX);
        let stop = Stop {
            max_iter: MAX_ITER,
            tol: TOL,
        };
        let mut cpu = runner::make("cpu", p.clone()).unwrap();
        let want = scf::run(cpu.as_mut(), stop).unwrap();
        let mut gpu_runner = WgpuRunner::with_device(p.clone(), gpu, false).unwrap();
        let got = scf::run(&mut gpu_runner, stop).unwrap();
        assert!(got.converged && want.converged);
        eprintln!(
            "iterations: cpu {}, wgpu {}; loop {:.3} s (cpu) {:.3} s (wgpu)",
            want.iterations, got.iterations, want.loop_seconds, got.loop_seconds
        );
        let lay = &p.layout;
        for (i, zn) in NUCLEI.iter().enumerate() {
            let (e_gpu, e_cpu) = (
                got.results.energy[i].total(),
                want.results.energy[i].total(),
            );
            let rel = (e_gpu - e_cpu).abs() / e_cpu.abs();
            eprintln!(
                "{zn:?}: E wgpu {e_gpu:.10} cpu {e_cpu:.10} MeV (rel {rel:.1e}); delta_n {:.6} \
                 {:.6}",
                got.results.delta[2 * i],
                want.results.delta[2 * i]
            );
            assert!(rel < 1e-8, "{zn:?}: {e_gpu} vs {e_cpu}");
            for s in 0..SPECIES {
                let ns = i * SPECIES + s;
                assert!(
                    (got.results.delta[ns] - want.results.delta[ns]).abs() < 1e-6,
                    "{zn:?} species {s}: delta {} vs {}",
                    got.results.delta[ns],
                    want.results.delta[ns]
                );
                let n = particle_number(&levels(lay, &got.results, i, s));
                let target = lay.particles[ns];
                assert!((n - target).abs() < 1e-10, "{zn:?} species {s}: N = {n}");
            }
        }
        // 120Sn pairs, the doubly magic ones do not.
        assert!(got.results.delta[2 * 4] > 0.5);
        assert_eq!(got.results.delta[2 * 3], 0.0);
        let worst = got
            .results
            .energies
            .iter()
            .zip(&want.results.energies)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        eprintln!("largest single-particle energy difference {worst:.1e} MeV");
        assert!(worst < 1e-6, "{worst}");
    }

    #[test]
    #[ignore = "the whole table at the default basis: about 5 minutes on lavapipe, run it on GPU hosts"]
    fn wgpu_whole_table_agrees_with_the_cpu_runner() {
        // Every even-even nucleus of AME2012 at DEFAULT_N_MAX (SCF_N_MAX overrides it): the
        // same iterations and every total energy within 1e-8 relative.
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let Some(gpu) = device() else { return };
        let n_max = std::env::var("SCF_N_MAX")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(crate::DEFAULT_N_MAX);
        let nuclei = crate::even_even(&crate::ame::MassTable::ame2012());
        let p = problem(&nuclei, n_max);
        let stop = Stop {
            max_iter: MAX_ITER,
            tol: TOL,
        };
        let mut cpu = runner::make("cpu", p.clone()).unwrap();
        let want = scf::run(cpu.as_mut(), stop).unwrap();
        let mut gpu_runner = WgpuRunner::with_device(p.clone(), gpu, false).unwrap();
        let got = scf::run(&mut gpu_runner, stop).unwrap();
        eprintln!(
            "N_max {n_max}: {} / {} iterations; loop {:.3} s (cpu), {:.3} s (wgpu)",
            want.iterations, got.iterations, want.loop_seconds, got.loop_seconds
        );
        assert!(got.converged && want.converged);
        let (mut worst, mut at) = (0.0f64, 0);
        for i in 0..nuclei.len() {
            let (a, b) = (
                got.results.energy[i].total(),
                want.results.energy[i].total(),
            );
            let rel = (a - b).abs() / b.abs();
            if rel > worst {
                (worst, at) = (rel, i);
            }
        }
        eprintln!(
            "largest relative energy difference {worst:.1e} ({:?})",
            nuclei[at]
        );
        assert!(worst < 1e-8, "{:?}: {worst:e}", nuclei[at]);
        for (i, zn) in nuclei.iter().enumerate() {
            for s in 0..SPECIES {
                let n = particle_number(&levels(&p.layout, &got.results, i, s));
                let target = p.layout.particles[i * SPECIES + s];
                assert!((n - target).abs() < 1e-10, "{zn:?} species {s}: {n}");
            }
        }
    }

    #[test]
    fn wgpu_iterations_read_back_one_scalar_and_allocate_nothing() {
        let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let Some(gpu) = device() else { return };
        for eager in [false, true] {
            let p: Problem = problem(&NUCLEI[..2], 6);
            let mut r = WgpuRunner::with_device(p, gpu.clone(), eager).unwrap();
            // Live device allocations (name, bytes), sorted; None where wgpu has no report.
            let memory = || {
                gpu.device().generate_allocator_report().map(|r| {
                    let mut v: Vec<(String, u64)> = r
                        .allocations
                        .into_iter()
                        .map(|a| (a.name, a.size))
                        .collect();
                    v.sort();
                    v
                })
            };
            let (reads, before) = (Wgpu::host_reads(), memory());
            r.start_fields().unwrap();
            r.build_hamiltonian().unwrap();
            r.eigh().unwrap();
            r.bcs().unwrap();
            r.densities().unwrap();
            r.mix(true).unwrap();
            for _ in 0..10 {
                r.build_fields().unwrap();
                r.build_hamiltonian().unwrap();
                r.eigh().unwrap();
                r.bcs().unwrap();
                r.densities().unwrap();
                let diff = r.mix(false).unwrap();
                assert!(diff.is_finite() && diff > 0.0, "{diff}");
            }
            assert_eq!(Wgpu::host_reads() - reads, 10, "eager {eager}");
            gpu.synchronize().unwrap();
            // Every allocation alive after the loop was alive when setup ended (wgpu frees
            // the uploads' staging memory during the loop, so there may be fewer).
            match (before, memory()) {
                (Some(mut pool), Some(after)) => {
                    for a in &after {
                        let at = pool.iter().position(|b| b == a);
                        let at = at.unwrap_or_else(|| {
                            panic!("new device allocation {a:?} in the loop, eager {eager}")
                        });
                        pool.swap_remove(at);
                    }
                }
                _ => eprintln!("no allocator report on this adapter: allocations unchecked"),
            }
        }
    }
}
