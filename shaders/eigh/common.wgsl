// Shared by the eigh shaders (shaders/eigh/*.wgsl), which the host appends to this text: the
// dispatch parameters and bindings every variant has, where a matrix of a uniform or ragged
// batch lives, the input test, the per-matrix status and NaN outputs of a failed matrix, and the
// exponent for the power-of-two scaling. The header in front defines alias R, FINITE_MAX and
// VECTORS. WGSL lets implementations assume no NaN/Inf (Mesa
// folds `x != x` to false), so inputs are tested by comparison for Inf and by the bits of
// their f32 conversion for NaN; nothing later relies on NaN semantics.

struct Params {
    // Matrices in this dispatch.
    count: u32,
    // Where this dispatch's matrix indices start in `tables`; 0xffffffff: matrices 0..count.
    list_at: u32,
    // Order of every matrix when `ragged` is 0.
    uniform_n: u32,
    // 1: per-matrix (a_start, w_start, n) triples at the start of `tables`.
    ragged: u32,
}

@group(0) @binding(0) var<storage, read> a: array<R>;
@group(0) @binding(1) var<storage, read_write> w: array<R>;
@group(0) @binding(2) var<storage, read_write> v: array<R>;
@group(0) @binding(3) var<storage, read> tables: array<u32>;
// [0]: !(first matrix with a non-finite entry), [1]: !(first matrix that did not converge);
// zero (cleared before each dispatch) when none, so atomicMax keeps the first.
@group(0) @binding(5) var<storage, read_write> status: array<atomic<u32>, 2>;
@group(0) @binding(6) var<uniform> params: Params;
// Per matrix of the batch: its status (INFO_*), written for every matrix a dispatch takes.
@group(0) @binding(7) var<storage, read_write> info: array<i32>;

// The codes of `info`: src/eigh/mod.rs's EIGH_SOLVED, EIGH_NON_FINITE, EIGH_NO_CONVERGENCE.
const INFO_SOLVED: i32 = 0;
const INFO_NON_FINITE: i32 = 1;
const INFO_NO_CONVERGENCE: i32 = 2;

// One matrix of the dispatch: its index in the batch (0xffffffff: none), order and the
// element offsets of A (and V) and of w.
struct Matrix {
    idx: u32,
    n: u32,
    a0: u32,
    w0: u32,
}

// The matrix at position `pos` of this dispatch (order 0 past its end).
fn matrix_at(pos: u32) -> Matrix {
    var m = Matrix(0xffffffffu, 0u, 0u, 0u);
    if pos < params.count {
        m.idx = select(tables[params.list_at + pos], pos, params.list_at == 0xffffffffu);
        if params.ragged != 0u {
            m.a0 = tables[3u * m.idx];
            m.w0 = tables[3u * m.idx + 1u];
            m.n = tables[3u * m.idx + 2u];
        } else {
            m.n = params.uniform_n;
            m.a0 = m.idx * m.n * m.n;
            m.w0 = m.idx * m.n;
        }
    }
    return m;
}

// Whether an input entry is NaN or infinite.
fn non_finite(x: R) -> bool {
    return !(abs(x) <= FINITE_MAX) || (bitcast<u32>(f32(x)) & 0x7fffffffu) > 0x7f800000u;
}

// A quiet NaN of R, from its f32 bits (WGSL has no NaN literal; an f32 NaN stays NaN as f64).
fn nan_r() -> R {
    return R(bitcast<f32>(0x7fc00000u));
}

// Invocation r of the team of `team` invocations that ran matrix `m`: records its status and,
// for NaN/Inf input (`is_bad`) or no convergence (`failed`), writes NaN over its eigenvalues
// and eigenvectors, which the caller then leaves alone. Nothing for an empty matrix.
fn finish_matrix(m: Matrix, r: u32, team: u32, is_bad: bool, failed: bool) {
    if m.n == 0u {
        return;
    }
    if r == 0u {
        info[m.idx] = select(select(INFO_SOLVED, INFO_NO_CONVERGENCE, failed), INFO_NON_FINITE, is_bad);
    }
    if is_bad || failed {
        for (var i = r; i < m.n; i += team) {
            w[m.w0 + i] = nan_r();
        }
        if VECTORS {
            for (var e = r; e < m.n * m.n; e += team) {
                v[m.a0 + e] = nan_r();
            }
        }
    }
}

// The e with x = f 2^e, f in [0.5, 1), for finite x > 0: frexp, by exact power-of-two steps
// (naga's f64 frexp needs 64-bit integers, which not every adapter has).
fn exponent(x: R) -> i32 {
    let big = R(18446744073709551616.0); // 2^64
    let small = R(5.42101086242752217e-20); // 2^-64
    var f = x;
    var e = 0i;
    while f >= big {
        f *= small;
        e += 64;
    }
    while f < small {
        f *= big;
        e -= 64;
    }
    while f >= R(1.0) {
        f *= R(0.5);
        e += 1;
    }
    while f < R(0.5) {
        f *= R(2.0);
        e -= 1;
    }
    return e;
}
