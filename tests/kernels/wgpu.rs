//! naga parses and validates every WGSL shader variant the wgpu backend can build, with the
//! capabilities the backend requests (f64, f16, subgroups), so WGSL errors fail
//! `cargo test --features wgpu` on any machine, without an adapter (CI runs it).
#![cfg(feature = "wgpu")]

use megabatch::backends::wgpu::{
    AttentionShader, EighGlobalShader, EighShader, EighSubgroupShader, EighTridiagShader,
    ReduceShader, SubgroupSizes, WgslFloat, GLOBAL_MAX_ORDER, SUBGROUP_MAX_ORDER,
    SUBGROUP_MAX_ROWS_PER_LANE,
};
use megabatch::{ReduceOp, ReduceSpec, RowReduceOp, SegmentReduceOp, HEAD_DIMS};
use naga::valid::{Capabilities, ShaderStages, SubgroupOperationSet, ValidationFlags, Validator};

fn validate(key: &str, source: &str) {
    let module = naga::front::wgsl::parse_str(source)
        .unwrap_or_else(|e| panic!("{key}: parse error\n{}", e.emit_to_string(source)));
    // What the backend requests when the adapter has it: no int64.
    let caps = Capabilities::FLOAT64
        | Capabilities::SHADER_FLOAT16
        | Capabilities::SUBGROUP
        | Capabilities::SUBGROUP_BARRIER;
    // Subgroup operations in compute shaders, as wgpu-core allows with Features::SUBGROUP.
    Validator::new(ValidationFlags::all(), caps)
        .subgroup_stages(ShaderStages::COMPUTE)
        .subgroup_operations(SubgroupOperationSet::all())
        .validate(&module)
        .unwrap_or_else(|e| panic!("{key}: validation error\n{}", e.emit_to_string(source)));
}

#[test]
fn eigh_variants_validate() {
    let mut seen = std::collections::HashSet::new();
    for dtype in [WgslFloat::F32, WgslFloat::F64] {
        for vectors in [false, true] {
            for n in [1, 2, 3, 4, 7, 12, 16, 33, 64, 128, 256, 1024] {
                // A generous and a tiny workgroup memory: the second forces the storage path.
                for limit in [49_152, 16_384, 0] {
                    let s = EighShader::for_order(dtype, n, vectors, limit);
                    assert!(!s.in_workgroup || s.workgroup_bytes() <= limit);
                    assert!(s.teams == 1 || s.storage_slot_len() == 0);
                    assert!(s.workgroup_size() <= 256);
                    if seen.insert(s) {
                        validate(&s.key(), &s.source());
                    }
                }
            }
        }
    }
    assert!(seen.len() > 20);
}

#[test]
fn eigh_tridiag_variants_validate() {
    let mut seen = std::collections::HashSet::new();
    for dtype in [WgslFloat::F32, WgslFloat::F64] {
        for (vectors, rows) in [(false, false), (true, false), (false, true), (true, true)] {
            for n in [1, 2, 3, 4, 7, 12, 16, 33, 64, 72, 96, 128] {
                for limit in [49_152, 16_384] {
                    let Some(s) = EighTridiagShader::for_order(dtype, n, vectors, rows, limit, 256)
                    else {
                        // Only a matrix too large for the limit has no variant.
                        assert!(!rows, "{dtype:?} n {n}");
                        assert!(n * (n | 1) * dtype.size() > limit / 2, "{dtype:?} n {n}");
                        continue;
                    };
                    assert!(s.workgroup_bytes() <= limit);
                    assert!(s.team >= s.nmax && s.nmax >= n);
                    if seen.insert(s) {
                        validate(&s.key(), &s.source());
                    }
                }
            }
        }
    }
    assert!(seen.len() > 60, "{}", seen.len());
}

#[test]
fn eigh_global_variants_validate() {
    let mut seen = std::collections::HashSet::new();
    for dtype in [WgslFloat::F32, WgslFloat::F64] {
        for vectors in [false, true] {
            for n in [1, 5, 31, 32, 33, 64, 65, 96, 200, 256, 257, 600, 1024, 1025] {
                // NVIDIA's 48 KiB and 1,024 invocations, WebGPU's minimum 16 KiB and 256, and
                // an adapter of 64 invocations.
                for (limit, invocations) in [(49_152, 1024), (16_384, 256), (49_152, 64)] {
                    let Some(s) =
                        EighGlobalShader::for_order(dtype, n, vectors, limit, invocations)
                    else {
                        // Past the layout's orders, or vectors (6 n reals) past the limit.
                        assert!(
                            n > GLOBAL_MAX_ORDER || 6 * n * dtype.size() > limit - 4096,
                            "{dtype:?} n {n} {limit}"
                        );
                        continue;
                    };
                    assert!(s.workgroup_bytes() <= limit && s.nmax >= n);
                    let wg = s.workgroup_size();
                    assert!(wg.is_power_of_two() && (32..=invocations.min(256)).contains(&wg));
                    if seen.insert(s) {
                        validate(&s.key(), &s.source());
                    }
                }
            }
        }
    }
    assert!(seen.len() > 40, "{}", seen.len());
}

#[test]
fn eigh_subgroup_variants_validate() {
    let mut seen = std::collections::HashSet::new();
    // NVIDIA (32), lavapipe with 256-bit vectors (8), AMD GCN (64), a varying Intel range, and
    // 4-wide subgroups (WARP), which leave the larger orders to the workgroup layouts.
    let adapters = [(32, 32), (8, 8), (64, 64), (8, 32), (4, 4), (4, 128)];
    for dtype in [WgslFloat::F32, WgslFloat::F64] {
        for vectors in [false, true] {
            for n in [1, 2, 4, 5, 12, 16, 17, 31, 32, 33, 48, 63, 64, 65] {
                for (min, max) in adapters {
                    let sizes = SubgroupSizes { min, max };
                    let got = EighSubgroupShader::for_order(dtype, n, vectors, sizes, 1024);
                    let rows = n.max(2).div_ceil(min);
                    let Some(s) = got else {
                        assert!(n > SUBGROUP_MAX_ORDER || rows > SUBGROUP_MAX_ROWS_PER_LANE);
                        continue;
                    };
                    assert!(n <= SUBGROUP_MAX_ORDER, "{n}");
                    // Every row of the largest matrix has a lane in the smallest subgroup.
                    assert!(s.rows_per_lane * min >= s.nmax && s.nmax >= n);
                    assert_eq!(s.rows_per_lane, rows);
                    assert!(s.workgroup_size() % max == 0 && s.teams >= 1);
                    if seen.insert(s) {
                        validate(&s.key(), &s.source());
                    }
                }
            }
        }
    }
    assert!(seen.len() > 100, "{}", seen.len());
    // 256 invocations a workgroup at most: a 128-wide subgroup still fits; 64 does not.
    let wide = SubgroupSizes { min: 128, max: 128 };
    assert!(EighSubgroupShader::for_order(WgslFloat::F32, 64, true, wide, 64).is_none());
    assert!(EighSubgroupShader::for_order(WgslFloat::F32, 64, true, wide, 256).is_some());
}

#[test]
fn reduce_variants_validate() {
    let mut specs = Vec::new();
    for op in ReduceOp::ALL {
        specs.push(ReduceSpec::Full { op, len: 10 });
    }
    for op in RowReduceOp::ALL {
        specs.push(ReduceSpec::Rows {
            op,
            rows: 3,
            cols: 4,
        });
    }
    for op in SegmentReduceOp::ALL {
        specs.push(ReduceSpec::Segments {
            op,
            offsets: vec![0, 2],
        });
    }
    let mut count = 0;
    for elem in [WgslFloat::F16, WgslFloat::F32, WgslFloat::F64] {
        for spec in &specs {
            for shader in ReduceShader::for_spec(spec, elem) {
                validate(&shader.key(), &shader.source());
                count += 1;
            }
        }
    }
    assert_eq!(count, 3 * (2 * 8 + 4 + 5));
}

#[test]
fn attention_variants_validate() {
    for elem in [WgslFloat::F16, WgslFloat::F32] {
        for head_dim in HEAD_DIMS {
            let shader = AttentionShader { elem, head_dim };
            validate(&shader.key(), &shader.source());
        }
    }
}
