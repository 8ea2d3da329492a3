//! One small call of every CUDA kernel variant (eigh: f32/f64, values/vectors, shared-memory
//! and global-workspace paths, several teams per block; reductions: every operation and dtype,
//! one- and two-stage grids, warp- and block-per-segment), compared with the CPU backend.
//! Small on purpose: this is the binary compute-sanitizer (memcheck, racecheck) runs.
#![cfg(feature = "cuda")]

use crate::common;

use common::reduce_check::run;
use common::{cuda_or_skip, make, rng, to_t, MatrixType};
use half::{bf16, f16};
use megabatch::backends::cpu::Cpu;
use megabatch::backends::cuda::{Cuda, CudaEighAlgorithm};
use megabatch::{
    BatchedEigh, EighSpec, Real, ReduceOp, ReduceSpec, Reducible, RowReduceOp, SegmentReduceOp,
};
use rand::Rng;

fn eigh_both<T: Real>(
    cuda: &Cuda,
    cpu: &Cpu,
    sizes: &[usize],
    vectors: bool,
    algorithm: CudaEighAlgorithm,
) {
    let mut r = rng(sizes.len() as u64);
    let mut a: Vec<T> = Vec::new();
    for &n in sizes {
        a.extend(to_t::<T>(&make::<T>(MatrixType::RandomDense, n, &mut r)));
    }
    let spec = EighSpec::ragged(sizes.to_vec()).with_vectors(vectors);
    let offsets = spec.offsets(std::mem::size_of::<T>()).unwrap();
    let mut w = vec![T::zero(); offsets.w_len()];
    let mut w_cpu = w.clone();
    let mut v = vec![T::zero(); if vectors { offsets.a_len() } else { 0 }];
    let mut v_cpu = v.clone();
    let mut plan = cuda.plan_eigh_with::<T>(&spec, algorithm).unwrap();
    cuda.eigh_host(&mut plan, &a, &mut w, vectors.then_some(&mut v[..]))
        .unwrap();
    let mut plan = cpu.plan_eigh(&spec).unwrap();
    cpu.eigh_host(&mut plan, &a, &mut w_cpu, vectors.then_some(&mut v_cpu[..]))
        .unwrap();
    let tol =
        T::of(1e3) * T::UNIT_ROUNDOFF * T::of(sizes.iter().copied().max().unwrap_or(1) as f64);
    for (g, c) in w.iter().zip(&w_cpu) {
        assert!(
            (*g - *c).abs() <= tol * (T::one() + c.abs()),
            "{} {g:?} vs {c:?}",
            T::DTYPE
        );
    }
}

#[test]
fn every_eigh_variant() {
    let Some(cuda) = cuda_or_skip() else { return };
    let cpu = Cpu::with_threads(1).unwrap();
    // Every size class: the seven warp classes (orders 1-32), the four chains classes (9-32,
    // forced: a batch this small takes the warp classes), the block class (33-64), the split
    // classes (65-128, 129-256 while A fits shared memory; forced at 33-64), the block classes
    // they replaced (forced), divide and conquer above them (f64 200, f32 230, 300 and 600;
    // forced from 33, also with its per-order vectors in the workspace) and Jacobi in the
    // global workspace (forced at 600). compute-sanitizer's racecheck is slow on Jacobi's
    // 512-thread blocks and on large orders: MEGABATCH_SANITIZE_SMALL=1 leaves Jacobi out and
    // keeps divide and conquer to orders 33-70.
    let classes = [
        1, 2, 3, 4, 6, 8, 10, 12, 14, 16, 20, 24, 28, 32, 0, 40, 64, 100, 150,
    ];
    let small = std::env::var("MEGABATCH_SANITIZE_SMALL").is_ok_and(|v| v == "1");
    for vectors in [false, true] {
        let mut f64_sizes = classes.to_vec();
        let mut f32_sizes = classes.to_vec();
        if !small {
            f64_sizes.extend([200, 600]);
            f32_sizes.extend([230, 300, 600]);
        }
        let classes = CudaEighAlgorithm::SizeClasses;
        eigh_both::<f64>(&cuda, &cpu, &f64_sizes, vectors, classes);
        eigh_both::<f32>(&cuda, &cpu, &f32_sizes, vectors, classes);
        // The chains classes, which the size classes take only from `chains_min_batch` matrices.
        let chains = [10, 12, 14, 16, 20, 24, 28, 32, 9];
        let lanes = CudaEighAlgorithm::LaneChains;
        eigh_both::<f64>(&cuda, &cpu, &chains, vectors, lanes);
        eigh_both::<f32>(&cuda, &cpu, &chains, vectors, lanes);
        // The block classes the split classes replaced from order 65, and the split classes
        // forced at 33-64.
        let blocks = [40, 64, 100, 150, 0, 33];
        for algorithm in [
            CudaEighAlgorithm::FusedBlocks,
            CudaEighAlgorithm::SplitBlocks,
        ] {
            eigh_both::<f64>(&cuda, &cpu, &blocks, vectors, algorithm);
            eigh_both::<f32>(&cuda, &cpu, &blocks, vectors, algorithm);
        }
        // Divide and conquer forced from 33: one merge (33), two levels (64, 70), three
        // (100, 150), four (200); values only, a lane per matrix.
        let dc: &[usize] = if small {
            &[33, 70, 0]
        } else {
            &[33, 64, 70, 100, 150, 0, 200]
        };
        let forced = CudaEighAlgorithm::DivideConquer;
        eigh_both::<f64>(&cuda, &cpu, dc, vectors, forced);
        eigh_both::<f32>(&cuda, &cpu, dc, vectors, forced);
        let global = CudaEighAlgorithm::DivideConquerGlobal;
        eigh_both::<f64>(&cuda, &cpu, &[33, 70, 0], vectors, global);
        eigh_both::<f32>(&cuda, &cpu, &[40, 1], vectors, global);
        if !small {
            let jacobi = CudaEighAlgorithm::Jacobi;
            eigh_both::<f64>(&cuda, &cpu, &[600, 40], vectors, jacobi);
            eigh_both::<f32>(&cuda, &cpu, &[600], vectors, jacobi);
        }
    }
}

fn reduce_both<T: Reducible>(cuda: &Cuda, cpu: &Cpu, spec: &ReduceSpec, x: &[T], y: Option<&[T]>) {
    let got = run(cuda, spec, x, y);
    let want = run(cpu, spec, x, y);
    for (g, w) in got.iter().zip(&want) {
        let (gf, wf) = (g.to_f64_lossless(), w.to_f64_lossless());
        assert!(
            gf == wf || (gf.is_nan() && wf.is_nan()) || (gf - wf).abs() <= 1e-3 * (wf.abs() + 1.0),
            "{} {spec:?}: {g:?} vs {w:?}",
            T::DTYPE
        );
    }
}

fn every_reduction<T: Reducible>(cuda: &Cuda, cpu: &Cpu, from: fn(f64) -> T) {
    let mut r = rng(3);
    for len in [37usize, 40_000] {
        let x: Vec<T> = (0..len).map(|_| from(r.random_range(-1.0..1.0))).collect();
        let y: Vec<T> = (0..len).map(|_| from(r.random_range(-1.0..1.0))).collect();
        for op in ReduceOp::ALL {
            let yy = op.takes_y().then_some(&y[..]);
            reduce_both(cuda, cpu, &ReduceSpec::Full { op, len }, &x, yy);
        }
        let (rows, cols) = (len / 5, 5);
        for op in RowReduceOp::ALL {
            let w: Vec<T> = (0..rows).map(|_| from(r.random_range(0.1..1.0))).collect();
            let wy = op.takes_y().then_some(&w[..]);
            reduce_both(
                cuda,
                cpu,
                &ReduceSpec::Rows { op, rows, cols },
                &x[..rows * cols],
                wy,
            );
        }
        let offsets = if len < 100 {
            vec![0, 3, 3, 37]
        } else {
            vec![0, 10, 10, 39_000, 40_000]
        };
        for op in SegmentReduceOp::ALL {
            let yy = op.takes_y().then_some(&y[..]);
            reduce_both(
                cuda,
                cpu,
                &ReduceSpec::Segments {
                    op,
                    offsets: offsets.clone(),
                },
                &x,
                yy,
            );
        }
    }
}

#[test]
fn every_reduction_kernel() {
    let Some(cuda) = cuda_or_skip() else { return };
    let cpu = Cpu::with_threads(1).unwrap();
    every_reduction::<f64>(&cuda, &cpu, |v| v);
    every_reduction::<f32>(&cuda, &cpu, |v| v as f32);
    every_reduction::<f16>(&cuda, &cpu, f16::from_f64);
    every_reduction::<bf16>(&cuda, &cpu, bf16::from_f64);
}
