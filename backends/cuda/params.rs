//! Kernel parameters: every kernel takes one `#[repr(C)]` struct by value, mirrored field for
//! field by a struct in its CUDA source (cudarc's typed-argument idea, without its per-launch
//! argument vector). [`kernel_params_layout_checks`] states each mirror's size and field
//! offsets as C++ `static_assert`s, which the NVRTC test compiles against the kernel sources,
//! so a field added or reordered on one side only fails CI instead of shifting every field
//! after it at launch.

/// Defines a parameter struct and the list of its fields' offsets, for the layout checks.
macro_rules! kernel_params {
    (
        $(#[$meta:meta])*
        struct $name:ident mirrors $c_name:literal {
            $($(#[$field_meta:meta])* $field:ident: $ty:ty,)*
        }
    ) => {
        $(#[$meta])*
        #[repr(C)]
        #[derive(Debug, Clone, Copy, Default)]
        pub(crate) struct $name {
            $($(#[$field_meta])* pub(crate) $field: $ty,)*
        }

        impl $name {
            /// The CUDA struct this mirrors.
            const C_NAME: &'static str = $c_name;

            /// `(field, byte offset)` of every field, in declaration order.
            fn offsets() -> &'static [(&'static str, usize)] {
                &[$((stringify!($field), std::mem::offset_of!($name, $field)),)*]
            }
        }
    };
}

kernel_params! {
    /// The parameters of every eigh kernel: `MbEighArgs` in `kernels/eigh/common.cuh`.
    struct EighArgs mirrors "MbEighArgs" {
        /// Input matrices (device address of `T`), row-major, lower triangles read.
        a: u64,
        /// Eigenvalues (`T`).
        w: u64,
        /// Eigenvectors (`T`), 0 for values only.
        v: u64,
        /// Ragged: element offset of each matrix (u64 each), 0 for a uniform batch.
        a_start: u64,
        /// Ragged: element offset of each matrix's eigenvalues (u64 each).
        w_start: u64,
        /// Ragged: order of each matrix (i32 each).
        order: u64,
        /// The matrix indices (i32) this launch takes; 0: 0..count in order.
        list: u64,
        /// Jacobi's global workspace (0: shared memory); chains: the rotation lists (one
        /// element per element of A); split: split.cu's workspace.
        gwork: u64,
        /// Two i32: first non-finite matrix, first unconverged matrix (atomicMin).
        status: u64,
        /// Per-matrix status (i32 per matrix of the batch, `EIGH_*` codes), written by every
        /// launch for its matrices.
        info: u64,
        /// Matrices in this launch.
        count: i32,
        /// Order of a uniform batch.
        uniform_n: i32,
        /// Largest (Jacobi: padded) order in this launch.
        nmax: i32,
        /// Jacobi: threads per matrix; chains: matrices per block.
        team: i32,
        /// Jacobi: 1 with eigenvectors.
        vectors: i32,
        /// Split replay: 1 on the last round (the blocks finish chains still paused);
        /// divide and conquer: the wave.
        phase: i32,
        /// Divide and conquer: the steps whose per-order vectors live in the workspace's slots
        /// instead of shared memory (`MB_DC_REDUCE_GLOBAL` 1, `MB_DC_SOLVE_GLOBAL` 2).
        layout: i32,
    }
}

kernel_params! {
    /// The parameters of every reduction kernel (both stages of every shape): `MbReduceArgs`
    /// in `kernels/reduce.cu`. Fields a kernel does not read are 0.
    struct ReduceArgs mirrors "MbReduceArgs" {
        /// First operand (`T`).
        x: u64,
        /// Second operand (`T`) of two-operand reductions, or the row weights of a weighted
        /// mean; 0 when unused.
        y: u64,
        /// Segments: `segments + 1` element offsets (u64).
        offsets: u64,
        /// Per-block partial accumulators (`T::Acc`) of a two-stage reduction.
        partials: u64,
        /// Rows: the per-block weight sums, after `partials`.
        wpartials: u64,
        /// Results (`T::Acc`).
        out: u64,
        /// Full: elements of `x`.
        len: u64,
        /// Rows: rows of `x`.
        rows: u64,
        /// Rows: columns of `x` (and results).
        cols: u64,
        /// Rows: rows each block of the first stage takes.
        rows_per_block: u64,
        /// Segments: number of segments (and results).
        segments: u64,
        /// Second stages: first-stage blocks whose partials are combined.
        blocks: i32,
        /// Segments: threads per segment (32: a warp, else a block).
        group: i32,
        /// How the accumulator is finished (sum, mean, ...), as `reduce.cu`'s `mb_finish`.
        fin: i32,
        /// Keeps the size a multiple of 8 on both sides.
        pad: i32,
    }
}

kernel_params! {
    /// The parameters of the attention kernel: `MbAttParams` in `kernels/attention.cu`.
    struct AttentionParams mirrors "MbAttParams" {
        /// Queries `[B, Hq, Sq, D]`.
        q: u64,
        /// Keys `[B, Hkv, Skv, D]`.
        k: u64,
        /// Values `[B, Hkv, Skv, D]`.
        v: u64,
        /// Output `[B, Hq, Sq, D]`.
        o: u64,
        /// Log-sum-exp `[B, Hq, Sq]` (f32), or 0.
        lse: u64,
        /// u32 `[mask rows + 1]`: start of each mask row in `entries`.
        rows: u64,
        /// u32 key-block index, `| 0x80000000` for a full block.
        entries: u64,
        /// The aux table (`KernelRule::aux`): u32 `[Sq]` document ids (document predicates),
        /// or the tile starts and element bits (predicate 5), else 0.
        ids: u64,
        /// u32 `[items]`: CTA to work item (longest first), or 0 for the identity.
        work: u64,
        /// Query heads.
        heads_q: i32,
        /// Key/value heads (GQA groups `heads_q / heads_kv` query heads on one).
        heads_kv: i32,
        /// Query length.
        seq_q: i32,
        /// Key/value length.
        seq_kv: i32,
        /// Query block size of the mask.
        bq: i32,
        /// Key block size of the mask.
        bk: i32,
        /// Query blocks per mask row set.
        qb_count: i32,
        /// Heads in the mask (1 when broadcast).
        mask_heads: i32,
        /// 1 when the mask's batch dimension is broadcast.
        mask_b_bcast: i32,
        /// 1 when the mask's head dimension is broadcast.
        mask_h_bcast: i32,
        /// Element rule inside partial blocks (`MaskPredicate` as an integer).
        predicate: i32,
        /// Sliding-window width, for the window predicate.
        window: i32,
        /// Query tiles per (b, h).
        tiles: i32,
        /// `B * Hq * tiles`.
        items: i32,
        /// Softmax scale times log2(e): scores live in base 2.
        scale_log2: f32,
        /// Predicate 5: index of the first element-bits word in `ids` (after the mask rows'
        /// tile starts); else 0. Also keeps the size a multiple of 8 on both sides.
        bits_at: i32,
    }
}

/// The layout of every kernel parameter struct as C++ `static_assert`s, one string per
/// struct: `(CUDA struct name, asserts)`. The asserts check `sizeof`, `alignof` and
/// `offsetof` of every field against the Rust mirror; they compile (with NVRTC) after the
/// source that defines the struct: `MbEighArgs` and `MbReduceArgs` in the shared translation
/// unit of [`super::KERNEL_SOURCES`], `MbAttParams` in [`super::AttentionKernel::source`].
/// The NVRTC test does exactly that.
pub fn kernel_params_layout_checks() -> Vec<(&'static str, String)> {
    fn checks(
        c_name: &'static str,
        size: usize,
        align: usize,
        offsets: &[(&str, usize)],
    ) -> (&'static str, String) {
        // NVRTC has no <cstddef> and no `offsetof` builtin, but it constant-folds the distance
        // between two pointers to the field's type; every field is naturally aligned, so the
        // offset is that distance times the field's size.
        let mut text = format!(
            "#ifndef MB_PARAM_OFFSET\n\
             #define MB_PARAM_OFFSET(S, f) \
             ((&(((S*)0)->f) - (decltype(((S*)0)->f)*)0) * sizeof(((S*)0)->f))\n\
             #endif\n\
             static_assert(sizeof({c_name}) == {size}, \"{c_name}: size differs from Rust\");\n\
             static_assert(alignof({c_name}) == {align}, \"{c_name}: alignment differs\");\n"
        );
        for (field, offset) in offsets {
            text.push_str(&format!(
                "static_assert(MB_PARAM_OFFSET({c_name}, {field}) == {offset}, \
                 \"{c_name}.{field}: offset differs from Rust\");\n"
            ));
        }
        (c_name, text)
    }
    macro_rules! of {
        ($t:ty) => {
            checks(
                <$t>::C_NAME,
                std::mem::size_of::<$t>(),
                std::mem::align_of::<$t>(),
                <$t>::offsets(),
            )
        };
    }
    vec![of!(EighArgs), of!(ReduceArgs), of!(AttentionParams)]
}
