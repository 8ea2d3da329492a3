//! The divide-and-conquer class's launches exactly as `backends/cuda/eigh_classes` plans them
//! (entry points, grids, blocks, shared memory, `nmax`, `team`, `phase`, `layout`, workspace
//! bytes), run under the CPU emulation of `scripts/cuda_emu` (its `plan:` kind) and checked as
//! `emulated.rs` checks the hand-written launches: dsyt21 ratios, a long-double reference,
//! per-matrix status, NaN input. A device with little memory makes the workspace's slots
//! few, so the batch runs in several waves; `CudaEighAlgorithm::DivideConquerGlobal` plans the
//! layout of the large orders (every per-order vector in the slots) at small ones. Needs the
//! `cuda` feature (the registry) and g++, no GPU.

use std::process::Command;

use megabatch::backends::cuda::{
    eigh_bucket_launches, CudaEighAlgorithm, DeviceInfo, EighClass, EighKernel,
};

/// The emulator's batch for `orders`: (matrices, largest order, elements of A).
fn batch(bin: &std::path::Path, orders: &[&str]) -> (usize, usize, usize) {
    let out = Command::new(bin)
        .arg("batch")
        .args(orders)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let words: Vec<&str> = text.split_whitespace().collect();
    assert_eq!(words.len(), 6, "{text}");
    let num = |i: usize| words[i].parse::<usize>().unwrap();
    (num(1), num(3), num(5))
}

#[test]
fn dc_launches_planned_by_the_registry_pass_under_emulation() {
    let Some(bin) = super::emulated::emulator_tagged("plans-") else {
        return;
    };
    // (dtype, orders, device memory, algorithm): 4 MiB gives f64 n = 70 six slots (a slot
    // holds 76.7 KB with vectors or without; the workspace takes an eighth of the memory), so
    // the 28 matrices run in five waves; 1 GiB, one wave; the forced global layout at n = 71,
    // five slots of 88.6 KB in 3.5 MiB, so its 28 matrices run in six waves.
    let dc = CudaEighAlgorithm::DivideConquer;
    let cases: [(&str, &[&str], usize, CudaEighAlgorithm); 3] = [
        ("f64", &["33", "70"], 4 << 20, dc),
        ("f32", &["1", "40", "65"], 1 << 30, dc),
        (
            "f64",
            &["2", "71"],
            7 << 19,
            CudaEighAlgorithm::DivideConquerGlobal,
        ),
    ];
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|&(dtype, orders, memory, algorithm)| {
                let bin = &bin;
                s.spawn(move || {
                    let (count, nmax, a_len) = batch(bin, orders);
                    let device = DeviceInfo {
                        name: "emulated".into(),
                        compute_capability: (9, 0),
                        multiprocessors: 132,
                        max_shared_per_block: 227 * 1024,
                        total_memory: memory,
                        driver_version: 13000,
                    };
                    let mut text = String::new();
                    let mut waves = Vec::new();
                    for vectors in [true, false] {
                        let kernel = EighKernel {
                            class: EighClass::DivideConquer,
                            dtype,
                            vectors,
                        };
                        let (lines, bytes) =
                            eigh_bucket_launches(&kernel, count, nmax, a_len, algorithm, &device)
                                .unwrap();
                        waves.push(lines.len() / if vectors { 3 } else { 2 });
                        text.push_str(&format!(
                            "vectors {} count {count} nmax {nmax} workspace {bytes}\n",
                            u8::from(vectors)
                        ));
                        for line in lines {
                            text.push_str(&line);
                            text.push('\n');
                        }
                    }
                    let file = std::env::temp_dir().join(format!(
                        "megabatch-dc-plan-{dtype}-{algorithm:?}-{}.txt",
                        std::process::id()
                    ));
                    std::fs::write(&file, &text).unwrap();
                    let out = Command::new(bin)
                        .arg(format!("plan:{}", file.display()))
                        .arg(dtype)
                        .args(orders)
                        .output()
                        .expect("emulator runs");
                    let _ = std::fs::remove_file(&file);
                    (
                        format!("{dtype} {orders:?} {algorithm:?}"),
                        waves,
                        text,
                        out,
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let _ = std::fs::remove_file(&bin);
    for (i, (case, waves, plan, out)) in results.into_iter().enumerate() {
        let text = String::from_utf8_lossy(&out.stdout);
        eprintln!(
            "{case}: waves {waves:?}\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{case}: failures\n{text}");
        assert_eq!(text.matches(", 0 failures").count(), 2, "{case}:\n{text}");
        // Every launch line ends in its layout: 0 at these orders, 3 when forced.
        let layout = if i == 2 { "3" } else { "0" };
        assert!(
            plan.lines()
                .filter(|l| l.starts_with("eigh_dc"))
                .all(|l| l.ends_with(&format!(" {layout}"))),
            "{case}:\n{plan}"
        );
        let want: &[usize] = match i {
            0 => &[5, 5],
            1 => &[1, 1],
            _ => &[6, 6],
        };
        assert_eq!(waves, want, "{case}: the device's slots");
    }
}
