//! LAPACK-style accuracy of the CPU eigh: `dsyt21` residual and orthogonality ratios under 30,
//! eigenvalues against nalgebra, on LAPACK's matrix types, f32 and f64, one ragged batch each.

use crate::common;

use common::eigh_check::check_eigh_accuracy;
use common::{MatrixType, ALL_TYPES};
use megabatch::backends::cpu::Cpu;
use megabatch::Real;

const THRESHOLD: f64 = 30.0;

fn check<T: Real>(orders: &[usize], types: &[MatrixType], seed: u64) {
    let cpu = Cpu::with_threads(2).unwrap();
    check_eigh_accuracy::<T, _>(&cpu, orders, types, seed, THRESHOLD);
}

#[test]
fn f64_all_types_orders_1_to_64() {
    check::<f64>(&(1..=64).collect::<Vec<_>>(), &ALL_TYPES, 1);
}

#[test]
fn f32_all_types_orders_1_to_64() {
    check::<f32>(&(1..=64).collect::<Vec<_>>(), &ALL_TYPES, 2);
}

const LARGE_TYPES: [MatrixType; 6] = [
    MatrixType::RandomDense,
    MatrixType::Clustered,
    MatrixType::Geometric,
    MatrixType::WilkinsonPlus,
    MatrixType::NearUnderflow,
    MatrixType::NearOverflow,
];

#[test]
fn f64_larger_orders_up_to_512() {
    check::<f64>(&[65, 100, 128, 200, 256], &LARGE_TYPES, 3);
    check::<f64>(&[512], &[MatrixType::RandomDense, MatrixType::Clustered], 4);
}

#[test]
fn f32_larger_orders_up_to_512() {
    check::<f32>(&[65, 100, 128, 200, 256], &LARGE_TYPES, 5);
    check::<f32>(&[512], &[MatrixType::RandomDense, MatrixType::Geometric], 6);
}
