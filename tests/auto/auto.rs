//! `Auto`, the backend chooser: its cost model and environment on the CPU, its choices with a
//! GPU backend present: `cargo test --test auto cuda::` runs the CUDA part.

#[path = "../common/mod.rs"]
mod common;

mod cpu;
#[cfg(feature = "cuda")]
mod cuda;
#[cfg(feature = "wgpu")]
mod wgpu;

#[cfg(any(feature = "cuda", feature = "wgpu"))]
mod info_paths {
    use megabatch::{Auto, Backend, BackendKind, BatchedEigh, EighSpec, Real, Residency};

    /// The per-matrix status through `Auto`, whatever path a call takes: a plan on `gpu` given
    /// that GPU's buffers returns `Ok` with NaN outputs for the bad matrix, a CPU plan given
    /// the same buffers (through `Auto`'s host copies) returns `NonFinite` with the outputs
    /// untouched, and `eigh_info` marks exactly the bad matrix on both.
    pub(crate) fn eigh_info_reports_the_bad_matrix_on_every_path<T: Real>(
        auto: &Auto,
        gpu: BackendKind,
        bad: T,
    ) {
        let (n, batch) = (6, 5);
        let mut a_host: Vec<T> = (0..n * n * batch)
            .map(|i| T::of(((i * 7919 % 1013) as f64 / 506.5) - 1.0))
            .collect();
        a_host[3 * n * n + 5 * n + 1] = bad;
        let spec = EighSpec::uniform(n, batch).with_vectors(true);
        let on_gpu = Residency::Device(gpu);
        let mut a = auto.alloc_on::<T>(gpu, a_host.len()).unwrap();
        auto.upload(&a_host, &mut a).unwrap();
        let expected = [0, 0, 0, megabatch::EIGH_NON_FINITE, 0];
        let untouched = T::of(-7.0);
        for kind in [gpu, BackendKind::Cpu] {
            let forced = auto.clone().force(kind).unwrap();
            let mut plan = forced.plan_eigh_for::<T>(&spec, on_gpu).unwrap();
            let mut w = forced.alloc_on::<T>(gpu, n * batch).unwrap();
            let mut v = forced.alloc_on::<T>(gpu, a_host.len()).unwrap();
            forced.upload(&vec![untouched; n * batch], &mut w).unwrap();
            let result = forced.eigh(&mut plan, &a, &mut w, Some(&mut v));
            let mut info = vec![-1; batch];
            forced.eigh_info(&mut plan, &mut info).unwrap();
            assert_eq!(info, expected, "{kind:?}");
            let mut w_host = vec![T::zero(); n * batch];
            forced.download(&w, &mut w_host).unwrap();
            let bad_w = &w_host[3 * n..4 * n];
            if kind == gpu {
                result.unwrap();
                assert!(bad_w.iter().all(|x| x.is_nan()), "{bad_w:?}");
                assert!(w_host[..3 * n].iter().all(|x| x.is_finite()));
            } else {
                assert_eq!(
                    result.unwrap_err(),
                    megabatch::Error::NonFinite { matrix: 3 }
                );
                assert!(
                    w_host.iter().all(|&x| x == untouched),
                    "outputs were written"
                );
            }
        }
    }
}
