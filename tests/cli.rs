//! The `megabatch` command-line tool on small `.npy` inputs, compared against the library
//! (and, for eigh, against the defining property A V = V diag(w)).
#![cfg(feature = "cli")]

use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use megabatch::attention::AttentionSpec;
use megabatch::attention::{BlockMask, BlockMaskParts, MaskPredicate, SparseAttention};
use megabatch::backends::cpu::Cpu;
use megabatch::{BatchedEigh, EighSpec};
use npyz::WriterBuilder;
use rand::{Rng, SeedableRng};

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("megabatch-cli-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }
    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The tool with its calibration file redirected into the test's directory.
fn megabatch(dir: &Dir) -> assert_cmd::Command {
    let mut cmd = cargo_bin_cmd!("megabatch");
    cmd.env("MEGABATCH_CALIBRATION", dir.path("calibration.json"))
        .env_remove("MEGABATCH_BACKEND");
    cmd
}

fn write_npy<T: npyz::AutoSerialize + Copy>(path: &Path, shape: &[u64], data: &[T]) {
    let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut w = npyz::WriteOptions::new()
        .default_dtype()
        .shape(shape)
        .writer(file)
        .begin_nd()
        .unwrap();
    w.extend(data.iter().copied()).unwrap();
    w.finish().unwrap();
}

fn read_npy<T: npyz::Deserialize>(path: &Path) -> (Vec<u64>, Vec<T>) {
    let bytes = std::fs::read(path).unwrap();
    let npy = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape = npy.shape().to_vec();
    (shape, npy.into_vec().unwrap())
}

fn random(len: usize, seed: u64) -> Vec<f64> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    (0..len).map(|_| rng.random_range(-1.0..1.0)).collect()
}

/// `batch` symmetric `n x n` matrices (both triangles filled, as NumPy users pass them).
fn symmetric(n: usize, batch: usize) -> Vec<f64> {
    let mut a = random(n * n * batch, 11);
    for m in a.chunks_mut(n * n) {
        for i in 0..n {
            for j in 0..i {
                m[j * n + i] = m[i * n + j];
            }
        }
    }
    a
}

#[test]
fn eigh_on_npy_files_matches_the_library_and_diagonalises() {
    let dir = Dir::new("eigh");
    let (n, batch) = (5, 3);
    let a = symmetric(n, batch);
    write_npy(&dir.path("a.npy"), &[batch as u64, n as u64, n as u64], &a);
    megabatch(&dir)
        .args(["eigh", "--backend", "cpu", "--input"])
        .arg(dir.path("a.npy"))
        .arg("--values")
        .arg(dir.path("w.npy"))
        .arg("--vectors")
        .arg(dir.path("v.npy"))
        .assert()
        .success();
    let (w_shape, w) = read_npy::<f64>(&dir.path("w.npy"));
    let (v_shape, v) = read_npy::<f64>(&dir.path("v.npy"));
    assert_eq!(w_shape, [batch as u64, n as u64]);
    assert_eq!(v_shape, [batch as u64, n as u64, n as u64]);

    let cpu = Cpu::with_threads(1).unwrap();
    let spec = EighSpec::uniform(n, batch).with_vectors(true);
    let mut plan = BatchedEigh::<f64>::plan_eigh(&cpu, &spec).unwrap();
    let (mut w_lib, mut v_lib) = (vec![0.0; n * batch], vec![0.0; n * n * batch]);
    cpu.eigh_host(&mut plan, &a, &mut w_lib, Some(&mut v_lib))
        .unwrap();
    assert_eq!(w, w_lib);
    assert_eq!(v, v_lib);
    for m in 0..batch {
        let (am, vm, wm) = (&a[m * n * n..], &v[m * n * n..], &w[m * n..(m + 1) * n]);
        for k in 0..n {
            for i in 0..n {
                let av: f64 = (0..n).map(|j| am[i * n + j] * vm[j * n + k]).sum();
                assert!((av - wm[k] * vm[i * n + k]).abs() < 1e-12, "A v != w v");
            }
        }
        assert!(wm.windows(2).all(|p| p[0] <= p[1]), "eigenvalues ascending");
    }
}

#[test]
fn eigh_prints_values_and_rejects_bad_shapes() {
    let dir = Dir::new("eigh-print");
    let a: Vec<f32> = vec![2.0, 1.0, 1.0, 2.0];
    write_npy(&dir.path("a.npy"), &[2, 2], &a);
    let out = megabatch(&dir)
        .args(["eigh", "--input"])
        .arg(dir.path("a.npy"))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let values: Vec<f32> = String::from_utf8(out)
        .unwrap()
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect();
    assert_eq!(values.len(), 2);
    assert!((values[0] - 1.0).abs() < 1e-6 && (values[1] - 3.0).abs() < 1e-6);

    write_npy(&dir.path("bad.npy"), &[2, 3], &[0f64; 6]);
    megabatch(&dir)
        .args(["eigh", "--input"])
        .arg(dir.path("bad.npy"))
        .assert()
        .failure()
        .stderr(predicates::str::contains("not [..., n, n]"));
    write_npy(&dir.path("int.npy"), &[2, 2], &[1i32; 4]);
    megabatch(&dir)
        .args(["eigh", "--input"])
        .arg(dir.path("int.npy"))
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "expected float16, float32 or float64",
        ));
    megabatch(&dir)
        .args(["eigh", "--input"])
        .arg(dir.path("missing.npy"))
        .assert()
        .failure()
        .stderr(predicates::str::contains("missing.npy"));
}

#[test]
fn attention_with_a_flex_mask_archive_matches_the_library() {
    let dir = Dir::new("attention");
    let (b, hq, hkv, s, d) = (1usize, 4usize, 2usize, 80usize, 32usize);
    let q: Vec<f32> = random(b * hq * s * d, 1)
        .iter()
        .map(|&x| x as f32)
        .collect();
    let k: Vec<f32> = random(b * hkv * s * d, 2)
        .iter()
        .map(|&x| x as f32)
        .collect();
    let v: Vec<f32> = random(b * hkv * s * d, 3)
        .iter()
        .map(|&x| x as f32)
        .collect();
    let shape_q = [b as u64, hq as u64, s as u64, d as u64];
    let shape_kv = [b as u64, hkv as u64, s as u64, d as u64];
    write_npy(&dir.path("q.npy"), &shape_q, &q);
    write_npy(&dir.path("k.npy"), &shape_kv, &k);
    write_npy(&dir.path("v.npy"), &shape_kv, &v);
    // Block 32: 3 x 3 blocks; causal partial diagonal blocks, broadcast over batch and heads.
    let kv_num_blocks: Vec<i32> = vec![1, 1, 1];
    let kv_indices: Vec<i32> = vec![0, 0, 0, 1, 0, 0, 2, 0, 0];
    let full_num: Vec<i32> = vec![0, 1, 2];
    let full_idx: Vec<i32> = vec![0, 0, 0, 0, 0, 0, 0, 1, 0];
    {
        let mut npz = npyz::npz::NpzWriter::create(dir.path("mask.npz")).unwrap();
        let mut put = |name: &str, shape: &[u64], data: &[i32]| {
            let mut w = npz
                .array::<i32>(name, Default::default())
                .unwrap()
                .default_dtype()
                .shape(shape)
                .begin_nd()
                .unwrap();
            w.extend(data.iter().copied()).unwrap();
            w.finish().unwrap();
        };
        put("kv_num_blocks", &[1, 1, 3], &kv_num_blocks);
        put("kv_indices", &[1, 1, 3, 3], &kv_indices);
        put("full_kv_num_blocks", &[1, 1, 3], &full_num);
        put("full_kv_indices", &[1, 1, 3, 3], &full_idx);
        let mut w = npz
            .array::<i64>("block_size", Default::default())
            .unwrap()
            .default_dtype()
            .shape(&[2])
            .begin_nd()
            .unwrap();
        w.extend([32i64, 32]).unwrap();
        w.finish().unwrap();
    }
    megabatch(&dir)
        .args([
            "attention",
            "--backend",
            "cpu",
            "--predicate",
            "causal",
            "--q",
        ])
        .arg(dir.path("q.npy"))
        .arg("--k")
        .arg(dir.path("k.npy"))
        .arg("--v")
        .arg(dir.path("v.npy"))
        .arg("--mask")
        .arg(dir.path("mask.npz"))
        .arg("--out")
        .arg(dir.path("o.npy"))
        .arg("--lse")
        .arg(dir.path("lse.npy"))
        .assert()
        .success();
    let (o_shape, o) = read_npy::<f32>(&dir.path("o.npy"));
    let (lse_shape, lse) = read_npy::<f32>(&dir.path("lse.npy"));
    assert_eq!(o_shape, shape_q);
    assert_eq!(lse_shape, [b as u64, hq as u64, s as u64]);

    let spec = AttentionSpec {
        batch: b,
        heads_q: hq,
        heads_kv: hkv,
        seq_q: s,
        seq_kv: s,
        head_dim: d,
        scale: None,
    };
    let mask = BlockMask::from_parts(BlockMaskParts {
        seq_q: s,
        seq_kv: s,
        block: (32, 32),
        batch: 1,
        heads: 1,
        kv_num_blocks,
        kv_indices,
        full: Some((full_num, full_idx)),
        predicate: MaskPredicate::Causal,
    })
    .unwrap();
    // The archive spells out the causal mask the library builds itself.
    assert_eq!(mask, BlockMask::causal(s, s, (32, 32)).unwrap());
    let cpu = Cpu::with_threads(1).unwrap();
    let mut plan = SparseAttention::<f32>::plan_attention(&cpu, &spec, &mask).unwrap();
    let (mut o_lib, mut lse_lib) = (vec![0f32; q.len()], vec![0f32; b * hq * s]);
    cpu.attention_host(&mut plan, &q, &k, &v, &mut o_lib, Some(&mut lse_lib))
        .unwrap();
    assert_eq!(o, o_lib);
    assert_eq!(lse, lse_lib);

    // Mixed dtypes are refused with a message.
    let k16: Vec<half::f16> = k.iter().map(|&x| half::f16::from_f32(x)).collect();
    write_npy(&dir.path("k16.npy"), &shape_kv, &k16);
    megabatch(&dir)
        .args(["attention", "--q"])
        .arg(dir.path("q.npy"))
        .arg("--k")
        .arg(dir.path("k16.npy"))
        .arg("--v")
        .arg(dir.path("v.npy"))
        .arg("--out")
        .arg(dir.path("o2.npy"))
        .assert()
        .failure()
        .stderr(predicates::str::contains("float16 or all float32"));
}

#[test]
fn info_calibrate_bench_and_plot_run() {
    let dir = Dir::new("tools");
    megabatch(&dir)
        .arg("info")
        .assert()
        .success()
        .stdout(predicates::str::contains("backends usable: cpu"));
    megabatch(&dir)
        .args(["calibrate", "--quick"])
        .assert()
        .success()
        .stderr(predicates::str::contains("saved to"));
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path("calibration.json")).unwrap())
            .unwrap();
    assert_eq!(saved["version"], megabatch::MODEL_VERSION);
    assert_eq!(saved["source"], "calibrated");
    megabatch(&dir)
        .arg("info")
        .assert()
        .success()
        .stdout(predicates::str::contains("calibration: "))
        .stdout(predicates::str::contains("defaults").not());

    let csv = megabatch(&dir)
        .args([
            "bench",
            "eigh",
            "--n",
            "4,6",
            "--batch",
            "3",
            "--min-time",
            "0.001",
        ])
        .args(["--backend", "cpu,auto", "--format", "csv"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(csv).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[0],
        "backend,ran_on,data,dtype,n,batch,seconds,matrices_per_s"
    );
    assert_eq!(lines.len(), 1 + 2 * 2);
    assert!(lines[1..].iter().all(|l| l.contains(",cpu,host,f64,")));

    let json = megabatch(&dir)
        .args([
            "bench",
            "reduce",
            "--len",
            "10",
            "--min-time",
            "0.001",
            "--format",
            "json",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    for line in String::from_utf8(json).unwrap().lines() {
        let row: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(row["seconds"].as_f64().unwrap() > 0.0);
    }

    megabatch(&dir)
        .args(["plot", "crossover", "--from-model", "--out"])
        .arg(dir.path("model.svg"))
        .assert()
        .success();
    megabatch(&dir)
        .args([
            "plot",
            "crossover",
            "--n",
            "2,3,4",
            "--batch",
            "2",
            "--min-time",
            "0.001",
        ])
        .arg("--out")
        .arg(dir.path("measured.svg"))
        .assert()
        .success();
    for svg in ["model.svg", "measured.svg"] {
        let text = std::fs::read_to_string(dir.path(svg)).unwrap();
        assert!(text.starts_with("<svg") && text.contains("cpu ("), "{svg}");
    }
}

use predicates::prelude::PredicateBooleanExt;
