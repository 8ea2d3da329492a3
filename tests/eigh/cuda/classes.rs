//! Which CUDA size class takes which matrices, for every order to 300 (and a few up to 4096;
//! divide and conquer above the block classes to 4096),
//! batches on both sides of every threshold, f32 and f64, values and vectors, every
//! `CudaEighAlgorithm` and three shared-memory sizes: pinned against the thresholds written out
//! here from the README and docs/benchmarks/eigh-{classes,chains,split}-h200.md, not taken from
//! the crate. Needs no device (the selection is a pure function of the spec and the device's
//! limits).

use megabatch::backends::cuda::{
    eigh_launch_groups, CudaEighAlgorithm as Alg, DeviceInfo, EighClass,
};
use megabatch::EighSpec;

const ALGORITHMS: [Alg; 8] = [
    Alg::SizeClasses,
    Alg::GroupChains,
    Alg::LaneChains,
    Alg::FusedBlocks,
    Alg::SplitBlocks,
    Alg::DivideConquer,
    Alg::DivideConquerGlobal,
    Alg::Jacobi,
];

/// Shared memory per block (opt-in) and the largest order whose A fits a block there, f64 and
/// f32: H100/H200 (227 KiB), sm_86/89 (99 KiB), and 48 KiB.
const DEVICES: [(usize, usize, usize); 3] = [
    (227 * 1024, 165, 235),
    (99 * 1024, 107, 154),
    (48 * 1024, 73, 105),
];

/// The largest order of the divide-and-conquer class on a device with `shared` bytes per
/// block: 4096 (the CUDA eigh's limit) wherever a block holds its reduce step's tiles (64 +
/// 64 + 4 x 32 x 33 floats, dc.cu: its per-order vectors go to global memory where they do
/// not fit), else none (32).
fn dc_fit(shared: usize, elem: usize) -> usize {
    if (64 + 64 + 4 * 32 * 33) * elem <= shared {
        4096
    } else {
        32
    }
}

fn device(max_shared: usize) -> DeviceInfo {
    DeviceInfo {
        name: "selection table".into(),
        compute_capability: (9, 0),
        multiprocessors: 132,
        max_shared_per_block: max_shared,
        total_memory: 80 << 30,
        driver_version: 13000,
    }
}

/// Jacobi's buckets: even orders to 16, multiples of 4 to 32, of 8 to 64, of 16 to 128, of 32
/// above; at least 2.
fn padded(n: usize) -> usize {
    let step = [(16, 2), (32, 4), (64, 8), (128, 16)]
        .iter()
        .find(|(top, _)| n <= *top)
        .map_or(32, |(_, step)| *step);
    n.max(2).div_ceil(step) * step
}

/// The class of a launch of `batch` matrices of largest order `n`, and the order its launch is
/// shaped for, on a device where A fits a block up to order `fit`.
fn expected(
    n: usize,
    batch: usize,
    f64: bool,
    vectors: bool,
    alg: Alg,
    (fit, dc): (usize, usize),
) -> (EighClass, usize) {
    // Chains from 8192 f64 / 65536 f32 matrices (eigh-chains-h200.md); split from 4096 / 16384
    // with vectors, 1024 / 2048 values only (eigh-split-h200.md).
    let chains_min = if f64 { 8192 } else { 65536 };
    let split_min = match (f64, vectors) {
        (true, true) => 4096,
        (true, false) => 1024,
        (false, true) => 16384,
        (false, false) => 2048,
    };
    let jacobi = (EighClass::Jacobi, padded(n));
    if alg == Alg::Jacobi {
        return jacobi;
    }
    if n <= 32 {
        let (lanes, row) = match n {
            1..=2 => (2, 2),
            3..=4 => (4, 4),
            5..=8 => (8, 8),
            9..=12 => (16, 12),
            13..=16 => (16, 16),
            17..=24 => (32, 24),
            _ => (32, 32),
        };
        let chains = n >= 9
            && match alg {
                Alg::SizeClasses | Alg::DivideConquer | Alg::DivideConquerGlobal => {
                    batch >= chains_min
                }
                Alg::GroupChains => false,
                _ => true,
            };
        let class = if chains {
            EighClass::Chains { lanes, row }
        } else {
            EighClass::Warp { lanes, row }
        };
        return (class, n);
    }
    // Divide and conquer above the block classes (and from 33 when forced) to 4096.
    let forced_dc = matches!(alg, Alg::DivideConquer | Alg::DivideConquerGlobal);
    if forced_dc || n > fit || n > 256 {
        return if n <= dc {
            (EighClass::DivideConquer, n)
        } else {
            jacobi
        };
    }
    let chunks = match n {
        33..=64 => 2,
        65..=128 => 4,
        _ => 8,
    };
    let split = match alg {
        Alg::SplitBlocks => true,
        Alg::FusedBlocks => false,
        Alg::SizeClasses => n >= 65 && batch >= split_min,
        _ => n >= 65,
    };
    let class = if split {
        EighClass::Split { chunks }
    } else {
        EighClass::Block { chunks }
    };
    (class, n)
}

fn orders() -> Vec<usize> {
    (1..=300)
        .chain([383, 384, 511, 512, 513, 1000, 2048, 4096])
        .collect()
}

#[test]
fn uniform_batches_take_the_documented_class() {
    let batches = [
        1, 1023, 1024, 2047, 2048, 4095, 4096, 8191, 8192, 16383, 16384, 65535, 65536,
    ];
    for (shared, fit64, fit32) in DEVICES {
        let info = device(shared);
        for (elem, fit) in [(8, fit64), (4, fit32)] {
            let fit = (fit, dc_fit(shared, elem));
            for vectors in [true, false] {
                for alg in ALGORITHMS {
                    for n in orders() {
                        for batch in batches {
                            let spec = EighSpec::uniform(n, batch).with_vectors(vectors);
                            let got = eigh_launch_groups(&spec, elem, alg, &info).unwrap();
                            let (class, shaped) = expected(n, batch, elem == 8, vectors, alg, fit);
                            assert_eq!(
                                got,
                                [(class, batch, shaped)],
                                "n {n} batch {batch} elem {elem} vectors {vectors} {alg:?} \
                                 shared {shared}"
                            );
                        }
                    }
                }
            }
        }
    }
    // Empty matrices or an empty batch launch nothing.
    let info = device(DEVICES[0].0);
    for spec in [EighSpec::uniform(0, 5), EighSpec::uniform(5, 0)] {
        assert!(eigh_launch_groups(&spec, 8, Alg::SizeClasses, &info)
            .unwrap()
            .is_empty());
    }
}

/// A ragged batch: the matrices a large batch would give one class share a launch (Jacobi's
/// per padded order), and that launch's matrix count decides chains and split as a uniform
/// batch's does; its shape is its largest order (Jacobi: the padded order).
#[test]
fn ragged_batches_group_by_class_then_settle_by_count() {
    let base = [
        0, 1, 2, 3, 5, 8, 9, 12, 13, 20, 24, 25, 32, 33, 40, 64, 65, 70, 100, 128, 129, 150, 165,
        166, 170, 190, 200, 236, 256, 300, 1000,
    ];
    let extras: [&[(usize, usize)]; 4] = [
        &[],
        // 8192 matrices of orders 9-12 together (chains for f64), 4096 of 65-128 (split, f64
        // with vectors).
        &[(10, 8000), (11, 189), (70, 4000), (96, 94)],
        // One short of each.
        &[(10, 8000), (11, 188), (70, 4000), (96, 93)],
        &[(30, 65536), (200, 20000), (160, 2047)],
    ];
    for (shared, fit64, fit32) in DEVICES {
        let info = device(shared);
        for extra in extras {
            let mut sizes = base.to_vec();
            for &(n, count) in extra {
                sizes.extend(std::iter::repeat_n(n, count));
            }
            for (elem, fit) in [(8, fit64), (4, fit32)] {
                let fit = (fit, dc_fit(shared, elem));
                for vectors in [true, false] {
                    for alg in ALGORITHMS {
                        let spec = EighSpec::ragged(sizes.clone()).with_vectors(vectors);
                        let mut got = eigh_launch_groups(&spec, elem, alg, &info).unwrap();
                        // Group by the class an unlimited batch would take.
                        let mut groups: Vec<((EighClass, usize), Vec<usize>)> = Vec::new();
                        for &n in sizes.iter().filter(|&&n| n > 0) {
                            let key = expected(n, usize::MAX, elem == 8, vectors, alg, fit);
                            let key = (key.0, if key.0 == EighClass::Jacobi { key.1 } else { 0 });
                            match groups.iter_mut().find(|(k, _)| *k == key) {
                                Some((_, members)) => members.push(n),
                                None => groups.push((key, vec![n])),
                            }
                        }
                        let mut want: Vec<(EighClass, usize, usize)> = groups
                            .into_iter()
                            .map(|(_, members)| {
                                let nmax = *members.iter().max().unwrap();
                                let (class, shaped) =
                                    expected(nmax, members.len(), elem == 8, vectors, alg, fit);
                                (class, members.len(), shaped)
                            })
                            .collect();
                        got.sort();
                        want.sort();
                        assert_eq!(
                            got, want,
                            "elem {elem} vectors {vectors} {alg:?} shared {shared} extra {extra:?}"
                        );
                    }
                }
            }
        }
    }
}
