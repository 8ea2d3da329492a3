//! The chunked host path of the CUDA eigh (backends/cuda/eigh_chunks.rs), the default below
//! 16 MiB of input: this module runs alone in a child process, which sets
//! `MEGABATCH_CUDA_STAGING=chunked` so that a caller's environment cannot turn it off.

use crate::common;

use common::{cuda_or_skip, MatrixType};
use megabatch::backends::cuda::STAGING_ENV;
use megabatch::{Backend, BatchedEigh, EighSpec, Error};

/// Host calls of uniform batches of several chunks (backends/cuda/eigh_chunks.rs: a stream
/// per chunk, outputs copied as each chunk lands) give the device-buffer call's results bit
/// for bit, with and without vectors; a NaN in the last chunk's lower triangle is named and
/// nothing is written; NaN in upper triangles only (never read) changes nothing.
#[test]
fn chunked_host_calls_match_the_device_call_and_keep_the_non_finite_contract() {
    if common::child::ran_alone() {
        return;
    }
    std::env::set_var(STAGING_ENV, "chunked");
    let Some(cuda) = cuda_or_skip() else { return };
    for &(n, batch) in &[(12, 1582), (4, 4096), (32, 600), (2, 50_000)] {
        let mut r = common::rng(n as u64);
        let mut a = Vec::with_capacity(n * n * batch);
        for _ in 0..batch {
            a.extend(common::make::<f64>(MatrixType::RandomDense, n, &mut r));
        }
        for vectors in [true, false] {
            let spec = EighSpec::uniform(n, batch).with_vectors(vectors);
            let mut plan = cuda.plan_eigh(&spec).unwrap();
            assert!(plan.host_chunks() >= 2, "n {n} batch {batch}: one pass");
            let v_len = if vectors { n * n * batch } else { 0 };
            let (mut w, mut v) = (vec![0.0; n * batch], vec![0.0; v_len]);
            cuda.eigh_host(&mut plan, &a, &mut w, vectors.then_some(&mut v[..]))
                .unwrap();

            let a_dev = {
                let mut d = cuda.alloc::<f64>(a.len()).unwrap();
                cuda.upload(&a, &mut d).unwrap();
                d
            };
            let mut w_dev = cuda.alloc::<f64>(n * batch).unwrap();
            let mut v_dev = cuda.alloc::<f64>(v_len).unwrap();
            cuda.eigh(&mut plan, &a_dev, &mut w_dev, vectors.then_some(&mut v_dev))
                .unwrap();
            let (mut w_d, mut v_d) = (vec![0.0; n * batch], vec![0.0; v_len]);
            cuda.download(&w_dev, &mut w_d).unwrap();
            cuda.download(&v_dev, &mut v_d).unwrap();
            let label = format!("n {n} batch {batch} vectors {vectors}");
            assert!(
                w.iter().zip(&w_d).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{label}: w"
            );
            assert!(
                v.iter().zip(&v_d).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{label}: v"
            );

            let mut bad = a.clone();
            bad[(batch - 1) * n * n + (n - 1) * n] = f64::NAN;
            let (mut w_bad, mut v_bad) = (vec![-7.0; n * batch], vec![-7.0; v_len]);
            let err = cuda
                .eigh_host(
                    &mut plan,
                    &bad,
                    &mut w_bad,
                    vectors.then_some(&mut v_bad[..]),
                )
                .unwrap_err();
            assert!(
                matches!(err, Error::NonFinite { matrix } if matrix == batch - 1),
                "{label}: {err:?}"
            );
            assert!(
                w_bad.iter().chain(&v_bad).all(|&x| x == -7.0),
                "{label}: written"
            );

            if n > 1 {
                let mut upper = a.clone();
                for m in (0..batch).step_by(97) {
                    upper[m * n * n + 1] = f64::NAN;
                }
                let (mut w_u, mut v_u) = (vec![0.0; n * batch], vec![0.0; v_len]);
                cuda.eigh_host(&mut plan, &upper, &mut w_u, vectors.then_some(&mut v_u[..]))
                    .unwrap();
                assert!(
                    w_u.iter().zip(&w).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{label}"
                );
                assert!(
                    v_u.iter().zip(&v).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{label}"
                );
            }
        }
    }
}
