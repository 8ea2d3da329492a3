// Linear mixing of the densities (steps/mixing.rs, `mix_one`): old <- old + beta (new - old),
// elementwise; and a plain copy (the first iteration's "mixed = new", the starting fields).
// Bound once per array pair (rho; the five others; the fields), lengths from the buffers.
//
// Dispatch: (min(ceil(len / 256), 1024), 1, 1); a grid-stride loop covers the rest (at most
// len / 2^18 trips per invocation).

@group(0) @binding(0) var<uniform> P: Params;
@group(0) @binding(1) var<storage, read_write> dst: array<f64>;
@group(0) @binding(2) var<storage, read> src: array<f64>;

@compute @workgroup_size(256)
fn mix(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = arrayLength(&dst);
    let stride = nwg.x * 256u;
    for (var k = gid.x; k < n; k += stride) {
        let old = dst[k];
        dst[k] = old + P.beta * (src[k] - old);
    }
}

@compute @workgroup_size(256)
fn copy(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let n = arrayLength(&dst);
    let stride = nwg.x * 256u;
    for (var k = gid.x; k < n; k += stride) {
        dst[k] = src[k];
    }
}
