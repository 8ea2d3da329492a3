// Deterministic reductions: a fixed grid per plan, each invocation accumulating a fixed set of
// elements in a fixed order, then a fixed-shape tree in workgroup memory (the two-stage scheme
// of CUB's DeviceReduce, without float atomics); the same structure as kernels/reduce.cu.
// Max/min propagate NaN explicitly: WGSL's max/min leave NaN handling to the implementation.
//
// The host prepends: `alias T` (element) and `alias A` (accumulator: f32 for f16 input);
// constants OP, FIN, SHAPE, WG (invocations per workgroup, a power of two), ROW_LANES
// (row lanes per workgroup in SHAPE_ROWS; WG / ROW_LANES columns), TINY (smallest normal A).

const OP_SUM: u32 = 0u;
const OP_DOT: u32 = 1u;
const OP_MIN: u32 = 2u;
const OP_MAX: u32 = 3u;
const OP_MAXABS: u32 = 4u;
const OP_MAXABSDIFF: u32 = 5u;
// Two accumulators: max |x - y| and max |y|.
const OP_MAXREL: u32 = 6u;
// Rows: sum w_r x_rc, with sum w_r alongside.
const OP_WSUM: u32 = 7u;

const FIN_NONE: u32 = 0u;
const FIN_MEAN: u32 = 1u;
const FIN_REL: u32 = 2u;
const FIN_WMEAN: u32 = 3u;

// Whole array, stage 1: one partial (two for MAXREL) per workgroup.
const SHAPE_FULL: u32 = 0u;
// Whole array, stage 2: one workgroup folds the partials and finishes.
const SHAPE_FINAL: u32 = 1u;
// Rows: one value per column.
const SHAPE_ROWS: u32 = 2u;
// Segments: one workgroup per segment at a time.
const SHAPE_SEGMENTS: u32 = 3u;

const NEEDS_Y: bool = OP == OP_DOT || OP == OP_MAXABSDIFF || OP == OP_MAXREL || OP == OP_WSUM;
const TWO: bool = OP == OP_MAXREL || OP == OP_WSUM;

struct Params {
    // Elements (full), rows (rows), segments (segments).
    len: u32,
    // Columns (rows).
    cols: u32,
    // Stage-1 workgroups (full), the count the mean divides by (rows: rows).
    parts: u32,
    count: u32,
}

@group(0) @binding(0) var<storage, read> x: array<T>;
@group(0) @binding(1) var<storage, read> y: array<T>;
@group(0) @binding(2) var<storage, read_write> out: array<A>;
// Stage-1 partials: [parts] first accumulators, then [parts] second ones.
@group(0) @binding(3) var<storage, read_write> partials: array<A>;
@group(0) @binding(4) var<storage, read> offsets: array<u32>;
@group(0) @binding(5) var<uniform> params: Params;

var<workgroup> sh1: array<A, WG>;
var<workgroup> sh2: array<A, WG>;

// By bits: compilers may fold `v != v` to false (Mesa's NIR does), since WGSL lets them assume
// no NaN. An f64 NaN stays NaN through the conversion to f32.
fn is_nan(v: A) -> bool {
    return (bitcast<u32>(f32(v)) & 0x7fffffffu) > 0x7f800000u;
}

fn max_nan(a: A, b: A) -> A {
    if is_nan(a) || is_nan(b) {
        return a + b;
    }
    return max(a, b);
}

fn min_nan(a: A, b: A) -> A {
    if is_nan(a) || is_nan(b) {
        return a + b;
    }
    return min(a, b);
}

fn inf() -> A {
    // Overflows to +inf in the accumulator type (a constant expression would be rejected).
    var big = A(FINITE_MAX);
    return big * A(2.0);
}

fn identity() -> A {
    if OP == OP_MIN {
        return inf();
    }
    if OP == OP_MAX {
        return -inf();
    }
    return A(0.0);
}

fn combine(a: A, b: A) -> A {
    if OP == OP_SUM || OP == OP_DOT || OP == OP_WSUM {
        return a + b;
    }
    if OP == OP_MIN {
        return min_nan(a, b);
    }
    return max_nan(a, b);
}

// The second accumulator: max |y| (MAXREL) or sum w (WSUM).
fn combine2(a: A, b: A) -> A {
    if OP == OP_WSUM {
        return a + b;
    }
    return max_nan(a, b);
}

// What element (xi, yi) contributes to the first accumulator.
fn term(xi: A, yi: A) -> A {
    if OP == OP_DOT || OP == OP_WSUM {
        return xi * yi;
    }
    if OP == OP_MAXABS {
        return abs(xi);
    }
    if OP == OP_MAXABSDIFF || OP == OP_MAXREL {
        return abs(xi - yi);
    }
    return xi;
}

fn term2(yi: A) -> A {
    if OP == OP_WSUM {
        return yi;
    }
    return abs(yi);
}

fn y_at(i: u32) -> A {
    if NEEDS_Y {
        return A(y[i]);
    }
    return A(0.0);
}

fn finish(r: A, second: A, count: u32) -> A {
    if FIN == FIN_MEAN {
        return r / A(count);
    }
    if FIN == FIN_REL {
        return r / max_nan(second, A(TINY));
    }
    if FIN == FIN_WMEAN {
        return r / second;
    }
    return r;
}

// Folds `width` consecutive slots of sh1/sh2 starting at `base` into slot `base` by a fixed
// binary tree; `lane` is this invocation's index within the group. Every invocation of the
// workgroup must call it (it holds barriers).
fn tree(base: u32, lane: u32, width: u32) {
    for (var s = width / 2u; s > 0u; s = s / 2u) {
        workgroupBarrier();
        if lane < s {
            sh1[base + lane] = combine(sh1[base + lane], sh1[base + lane + s]);
            if TWO {
                sh2[base + lane] = combine2(sh2[base + lane], sh2[base + lane + s]);
            }
        }
    }
    workgroupBarrier();
}

@compute @workgroup_size(WG)
fn main(
    @builtin(local_invocation_index) lid: u32,
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
) {
    if SHAPE == SHAPE_FULL {
        var acc = identity();
        var acc2 = A(0.0);
        let stride = nwg.x * WG;
        for (var i = wid.x * WG + lid; i < params.len; i += stride) {
            let yi = y_at(i);
            acc = combine(acc, term(A(x[i]), yi));
            if TWO {
                acc2 = combine2(acc2, term2(yi));
            }
        }
        sh1[lid] = acc;
        sh2[lid] = acc2;
        tree(0u, lid, WG);
        if lid == 0u {
            if nwg.x == 1u {
                out[0] = finish(sh1[0], sh2[0], params.count);
            } else {
                partials[wid.x] = sh1[0];
                partials[params.parts + wid.x] = sh2[0];
            }
        }
    } else if SHAPE == SHAPE_FINAL {
        var acc = identity();
        var acc2 = A(0.0);
        for (var i = lid; i < params.parts; i += WG) {
            acc = combine(acc, partials[i]);
            if TWO {
                acc2 = combine2(acc2, partials[params.parts + i]);
            }
        }
        sh1[lid] = acc;
        sh2[lid] = acc2;
        tree(0u, lid, WG);
        if lid == 0u {
            out[0] = finish(sh1[0], sh2[0], params.count);
        }
    } else if SHAPE == SHAPE_ROWS {
        // WG / ROW_LANES columns per workgroup, ROW_LANES invocations striding over the rows
        // of each; lanes of one column are consecutive slots, folded by a tree of width
        // ROW_LANES.
        let cols_per = WG / ROW_LANES;
        let col_in = lid / ROW_LANES;
        let lane = lid % ROW_LANES;
        let tiles = (params.cols + cols_per - 1u) / cols_per;
        for (var tile = wid.x; tile < tiles; tile += nwg.x) {
            let c = tile * cols_per + col_in;
            var acc = identity();
            var acc2 = A(0.0);
            if c < params.cols {
                for (var r = lane; r < params.len; r += ROW_LANES) {
                    let wr = y_at(r);
                    acc = combine(acc, term(A(x[r * params.cols + c]), wr));
                    if TWO {
                        acc2 = combine2(acc2, term2(wr));
                    }
                }
            }
            sh1[lid] = acc;
            sh2[lid] = acc2;
            tree(col_in * ROW_LANES, lane, ROW_LANES);
            if lane == 0u && c < params.cols {
                out[c] = finish(sh1[lid], sh2[lid], params.count);
            }
            workgroupBarrier();
        }
    } else {
        for (var s = wid.x; s < params.len; s += nwg.x) {
            let lo = offsets[s];
            let hi = offsets[s + 1u];
            var acc = identity();
            for (var i = lo + lid; i < hi; i += WG) {
                acc = combine(acc, term(A(x[i]), y_at(i)));
            }
            sh1[lid] = acc;
            sh2[lid] = A(0.0);
            tree(0u, lid, WG);
            if lid == 0u {
                out[s] = finish(sh1[0], A(0.0), hi - lo);
            }
            workgroupBarrier();
        }
    }
}
