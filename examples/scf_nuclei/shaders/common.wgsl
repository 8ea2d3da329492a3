// What every scf_nuclei shader starts with (wgpu.rs prepends it): the parameter block, the
// constants and the f64 helpers. Layouts of every array: layout.rs; the packed tables: wgpu.rs.
//
// Packed tables the shaders bind (wgpu.rs builds them from Layout and Tables):
// - `blk: array<u32>`, 8 per block b: [b * 8 + 0..8] = nucleus, species, l, 2j, dim, h_off,
//   w_off, row (the first basis row of the block's l);
// - `nuc: array<f64>`, 4 per nucleus i: [i * 4 + 0..4] = A, b (fm), N, Z;
// - `basis: array<f64>`: u, g, d2u (`row * grid + q` each, rows * grid long), then x, w
//   (grid each), then cum (`q * grid + p`): offsets from `rows` and `grid` below;
// - densities: `rho` (grid_len: `(i * 2 + s) * grid + q`) and `rest` (5 * grid_len: tau, J,
//   rho', lap rho, div J at `(k - 1) * grid_len + (i * 2 + s) * grid + q`);
// - `fields`: f_b, f_l, f_u, f_w at `k * grid_len + (i * 2 + s) * grid + q`;
// - `pair`: delta, lambda at `ns * 2 + 0`, `ns * 2 + 1` (ns = i * 2 + s).
// Every (nucleus, species) has the same blocks and states (layout.rs), so the blocks of ns
// are `ns * blocks_ns ..` and its states `ns * states_ns ..`.
//
// WGSL lacks reliable f64 pow/exp/log (SPIR-V's GLSL.std.450 has them for 16/32-bit floats
// only): cbrt is Newton's iteration from an f32 seed; sqrt, abs, min, max, clamp are exact or
// correctly rounded in f64.

// Mirrors `Params` in wgpu.rs (`#[repr(C)]`, 192 bytes; a test checks naga's offsets).
struct Params {
    nuclei: u32,
    grid: u32,
    // nuclei * 2 * grid.
    grid_len: u32,
    // Basis-table rows.
    rows: u32,
    // Blocks and states of one (nucleus, species).
    blocks_ns: u32,
    states_ns: u32,
    // Hamiltonian tasks of one (nucleus, species) (wgpu.rs: `hamiltonian_tasks`).
    tasks_ns: u32,
    pad0: u32,
    // Mixing factor, pairing G0 (G = G0 / A, MeV) and window half-width (MeV).
    beta: f64,
    g0: f64,
    window: f64,
    // skyrme.rs `Coefficients`, in its order and units.
    c0a: f64,
    c0b: f64,
    c3a: f64,
    c3b: f64,
    alpha: f64,
    b0: f64,
    b1: f64,
    d0: f64,
    d1: f64,
    e0a: f64,
    e0b: f64,
    e3a: f64,
    e3b: f64,
    w0_half: f64,
    hb: f64,
    e2: f64,
    slater: f64,
}

// Untyped (abstract) constants: naga folds abstract floats in f64 precision but cannot fold
// f64 arithmetic, and an abstract constant becomes f64 where an f64 meets it.
const PI = 3.141592653589793;
// 1 / (4 pi), as steps/mod.rs's INV_4PI.
const INV_4PI = 0.25 / PI;

// Real cube root in f64 (0 for 0). The argument is brought into [2^-96, 2^96] by exact powers
// of 2^96 (f32's normal range holds it there), an f32 seed (about 1e-7 relative) is refined by
// three Newton steps on y^3 = m (quadratic: 1e-14, then f64 rounding).
fn cbrt64(x: f64) -> f64 {
    let a = abs(x);
    if a == 0.0 {
        return 0.0;
    }
    var m = a;
    var scale: f64 = 1.0;
    // At most 12 trips each over f64's exponent range.
    for (var k = 0u; k < 12u && m < 1.2621774483536189e-29; k++) {
        m *= 7.922816251426434e+28;
        scale *= 2.3283064365386963e-10;
    }
    for (var k = 0u; k < 12u && m > 7.922816251426434e+28; k++) {
        m *= 1.2621774483536189e-29;
        scale *= 4294967296.0;
    }
    var y = f64(pow(f32(m), 1.0 / 3.0));
    y -= (y * y * y - m) / (3.0 * y * y);
    y -= (y * y * y - m) / (3.0 * y * y);
    y -= (y * y * y - m) / (3.0 * y * y);
    if x < 0.0 {
        return -scale * y;
    }
    return scale * y;
}

// rho^(1/6) = sqrt(cbrt(rho)), as skyrme.rs's pow_sixth.
fn pow_sixth(rho: f64) -> f64 {
    return sqrt(cbrt64(rho));
}

// l.sigma in units of hbar: l for j = l + 1/2, -(l + 1) for j = l - 1/2 (layout.rs).
fn l_dot_sigma(l: u32, j2: u32) -> f64 {
    if j2 > 2u * l {
        return f64(l);
    }
    return -f64(l + 1u);
}
