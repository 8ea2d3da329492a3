//! The divide-and-conquer class's launches exactly as `backends/cuda/eigh_classes` plans them
//! (entry points, grids, blocks, shared memory, `nmax`, `team`, `phase`, workspace bytes), run
//! under the CPU emulation of `scripts/cuda_emu` (its `plan:` kind) and checked as
//! `emulated.rs` checks the hand-written launches: dsyt21 ratios, a long-double reference,
//! per-matrix status, NaN input. A device with little memory makes the workspace's slots
//! few, so the batch runs in several waves. Needs the `cuda` feature (the registry) and g++,
//! no GPU.

use std::process::Command;

use megabatch::backends::cuda::{eigh_bucket_launches, DeviceInfo, EighClass, EighKernel};

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
    // (dtype, orders, device memory): 4 MiB gives f64 n = 70 four slots with vectors, six
    // without (a slot holds 116 / 77 KB; the workspace takes an eighth of the memory), so the
    // 28 matrices run in seven and five waves; 1 GiB, one wave.
    let cases: [(&str, &[&str], usize); 2] = [
        ("f64", &["33", "70"], 4 << 20),
        ("f32", &["1", "40", "65"], 1 << 30),
    ];
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = cases
            .iter()
            .map(|&(dtype, orders, memory)| {
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
                            eigh_bucket_launches(&kernel, count, nmax, a_len, &device).unwrap();
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
                        "megabatch-dc-plan-{dtype}-{}.txt",
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
                    (format!("{dtype} {orders:?}"), waves, out)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let _ = std::fs::remove_file(&bin);
    for (i, (case, waves, out)) in results.into_iter().enumerate() {
        let text = String::from_utf8_lossy(&out.stdout);
        eprintln!(
            "{case}: waves {waves:?}\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{case}: failures\n{text}");
        assert_eq!(text.matches(", 0 failures").count(), 2, "{case}:\n{text}");
        if i == 0 {
            assert_eq!(waves, [7, 5], "{case}: the small device's slots");
        } else {
            assert_eq!(waves, [1, 1], "{case}");
        }
    }
}
