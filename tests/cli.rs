//! The `megabatch` command-line tool on small `.npy` inputs, compared against the library
//! (and, for eigh, against the defining property A V = V diag(w)).
#![cfg(feature = "cli")]

use std::path::{Path, PathBuf};

use assert_cmd::cargo::cargo_bin_cmd;
use megabatch::backends::cpu::Cpu;
use megabatch::{
    AttentionSpec, BatchedEigh, BlockMask, BlockMaskParts, EighSpec, MaskPredicate, SparseAttention,
};
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

/// An `.npz` of int32 mask tensors (name, shape, data) and an optional int64 `block_size`.
fn write_npz(path: &Path, arrays: &[(&str, &[u64], &[i32])], block: Option<[i64; 2]>) {
    let mut npz = npyz::npz::NpzWriter::create(path).unwrap();
    for (name, shape, data) in arrays {
        let mut w = npz
            .array::<i32>(name, Default::default())
            .unwrap()
            .default_dtype()
            .shape(shape)
            .begin_nd()
            .unwrap();
        w.extend(data.iter().copied()).unwrap();
        w.finish().unwrap();
    }
    if let Some(block) = block {
        let mut w = npz
            .array::<i64>("block_size", Default::default())
            .unwrap()
            .default_dtype()
            .shape(&[2])
            .begin_nd()
            .unwrap();
        w.extend(block).unwrap();
        w.finish().unwrap();
    }
}

/// [`write_npz`] with `block_size` [32, 16] and a packed-bits array `partial_block_bits` of
/// element type `T`.
fn write_npz_with_bits<T: npyz::AutoSerialize + npyz::Serialize + Copy>(
    path: &Path,
    arrays: &[(&str, &[u64], &[i32])],
    bits: (&[u64], &[T]),
) {
    let mut npz = npyz::npz::NpzWriter::create(path).unwrap();
    for (name, shape, data) in arrays {
        let mut w = npz
            .array::<i32>(name, Default::default())
            .unwrap()
            .default_dtype()
            .shape(shape)
            .begin_nd()
            .unwrap();
        w.extend(data.iter().copied()).unwrap();
        w.finish().unwrap();
    }
    let mut w = npz
        .array::<i64>("block_size", Default::default())
        .unwrap()
        .default_dtype()
        .shape(&[2])
        .begin_nd()
        .unwrap();
    w.extend([32, 16]).unwrap();
    w.finish().unwrap();
    let mut w = npz
        .array::<T>("partial_block_bits", Default::default())
        .unwrap()
        .default_dtype()
        .shape(bits.0)
        .begin_nd()
        .unwrap();
    w.extend(bits.1.iter().copied()).unwrap();
    w.finish().unwrap();
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
    let mut plan = cpu.plan_eigh(&spec).unwrap();
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

/// The numbers a successful command printed on stdout, in order.
fn printed_numbers<T: std::str::FromStr>(run: assert_cmd::assert::Assert) -> Vec<T>
where
    T::Err: std::fmt::Debug,
{
    let out = run.success().get_output().stdout.clone();
    String::from_utf8(out)
        .unwrap()
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect()
}

#[test]
fn eigh_prints_values_and_rejects_bad_shapes() {
    let dir = Dir::new("eigh-print");
    let a: Vec<f32> = vec![2.0, 1.0, 1.0, 2.0];
    write_npy(&dir.path("a.npy"), &[2, 2], &a);
    let values: Vec<f32> = printed_numbers(
        megabatch(&dir)
            .args(["eigh", "--input"])
            .arg(dir.path("a.npy"))
            .assert(),
    );
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
    write_npz(
        &dir.path("mask.npz"),
        &[
            ("kv_num_blocks", &[1, 1, 3], &kv_num_blocks),
            ("kv_indices", &[1, 1, 3, 3], &kv_indices),
            ("full_kv_num_blocks", &[1, 1, 3], &full_num),
            ("full_kv_indices", &[1, 1, 3, 3], &full_idx),
        ],
        Some([32, 32]),
    );
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
    let mut plan = cpu.plan_attention(&spec, &mask).unwrap();
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
    assert_eq!(saved["version"], megabatch::cost::MODEL_VERSION);
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

/// Files in `dir` other than the test's own inputs: what a run left behind.
fn left_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Q, K and V of shape [1, 2, 64, 32] (float32) in `folder`.
fn write_qkv(folder: &Path) {
    let shape = [1u64, 2, 64, 32];
    for (i, name) in ["q.npy", "k.npy", "v.npy"].into_iter().enumerate() {
        let data: Vec<f32> = random(2 * 64 * 32, i as u64)
            .iter()
            .map(|&x| x as f32)
            .collect();
        write_npy(&folder.join(name), &shape, &data);
    }
}

/// `megabatch attention` on the Q, K and V of [`write_qkv`] in `dir`'s folder `in`.
fn attention(dir: &Dir) -> assert_cmd::Command {
    let mut cmd = megabatch(dir);
    cmd.args(["attention", "--backend", "cpu", "--q"])
        .arg(dir.path("in/q.npy"))
        .arg("--k")
        .arg(dir.path("in/k.npy"))
        .arg("--v")
        .arg(dir.path("in/v.npy"));
    cmd
}

#[test]
fn a_failed_run_leaves_no_output_and_keeps_old_results_whole() {
    let dir = Dir::new("outputs");
    std::fs::create_dir_all(dir.path("in")).unwrap();
    std::fs::create_dir_all(dir.path("o")).unwrap();
    write_npy(&dir.path("in/a.npy"), &[2, 2], &[2.0f64, 1.0, 1.0, 2.0]);
    let missing = dir.path("missing/v.npy");
    megabatch(&dir)
        .args(["eigh", "--input"])
        .arg(dir.path("in/a.npy"))
        .arg("--values")
        .arg(dir.path("o/w.npy"))
        .arg("--vectors")
        .arg(&missing)
        .assert()
        .failure()
        .stderr(predicates::str::contains("does not exist"));
    assert!(
        left_in(&dir.path("o")).is_empty(),
        "{:?}",
        left_in(&dir.path("o"))
    );

    // An old result stays as it was when a later output cannot be written.
    std::fs::write(dir.path("o/w.npy"), b"old result").unwrap();
    megabatch(&dir)
        .args(["eigh", "--input"])
        .arg(dir.path("in/a.npy"))
        .arg("--values")
        .arg(dir.path("o/w.npy"))
        .arg("--vectors")
        .arg(&missing)
        .assert()
        .failure();
    assert_eq!(std::fs::read(dir.path("o/w.npy")).unwrap(), b"old result");
    assert_eq!(left_in(&dir.path("o")), ["w.npy"]);

    // The same for attention, and for a failure found only after the inputs were read.
    std::fs::remove_file(dir.path("o/w.npy")).unwrap();
    write_qkv(&dir.path("in"));
    attention(&dir)
        .arg("--out")
        .arg(dir.path("o/o.npy"))
        .arg("--lse")
        .arg(dir.path("missing/l.npy"))
        .assert()
        .failure()
        .stderr(predicates::str::contains("--lse"));
    write_npz(
        &dir.path("in/mask.npz"),
        &[
            ("kv_num_blocks", &[1, 1, 2], &[2, 1]),
            ("kv_indices", &[1, 1, 2, 2], &[0, 0, 1, 0]),
        ],
        Some([32, 32]),
    );
    attention(&dir)
        .arg("--mask")
        .arg(dir.path("in/mask.npz"))
        .arg("--out")
        .arg(dir.path("o/o.npy"))
        .arg("--lse")
        .arg(dir.path("o/l.npy"))
        .assert()
        .failure();
    assert!(
        left_in(&dir.path("o")).is_empty(),
        "{:?}",
        left_in(&dir.path("o"))
    );
    attention(&dir)
        .arg("--out")
        .arg(dir.path("o/o.npy"))
        .arg("--lse")
        .arg(dir.path("o/l.npy"))
        .assert()
        .success();
    assert_eq!(left_in(&dir.path("o")), ["l.npy", "o.npy"]);
}

#[test]
fn eigh_prints_values_with_vectors_and_refuses_one_file_for_two_outputs() {
    let dir = Dir::new("eigh-outputs");
    write_npy(&dir.path("a.npy"), &[2, 2], &[2.0f64, 1.0, 1.0, 2.0]);
    let values: Vec<f64> = printed_numbers(
        megabatch(&dir)
            .args(["eigh", "--input"])
            .arg(dir.path("a.npy"))
            .arg("--vectors")
            .arg(dir.path("v.npy"))
            .assert(),
    );
    assert_eq!(values.len(), 2);
    assert!((values[0] - 1.0).abs() < 1e-12 && (values[1] - 3.0).abs() < 1e-12);
    assert_eq!(read_npy::<f64>(&dir.path("v.npy")).0, [2, 2]);

    // Two spellings of one file: an argument error (status 2), nothing written.
    let same = dir.0.join(".").join("x.npy");
    megabatch(&dir)
        .args(["eigh", "--input"])
        .arg(dir.path("a.npy"))
        .arg("--values")
        .arg(dir.path("x.npy"))
        .arg("--vectors")
        .arg(&same)
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "--values and --vectors name the same file",
        ));
    assert!(!dir.path("x.npy").exists());

    std::fs::create_dir_all(dir.path("in")).unwrap();
    write_qkv(&dir.path("in"));
    attention(&dir)
        .arg("--out")
        .arg(dir.path("o.npy"))
        .arg("--lse")
        .arg(dir.0.join(".").join("o.npy"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "--out and --lse name the same file",
        ));
    assert!(!dir.path("o.npy").exists());
}

#[test]
fn mask_tensors_are_checked_against_flex_attention_shapes() {
    let dir = Dir::new("mask-shapes");
    std::fs::create_dir_all(dir.path("in")).unwrap();
    write_qkv(&dir.path("in"));
    // Every mask here has 32 x 32 blocks; the command must fail with `message` on stderr.
    let rejects = |name: &str, arrays: &[(&str, &[u64], &[i32])], message: &str| {
        write_npz(&dir.path(name), arrays, Some([32, 32]));
        attention(&dir)
            .arg("--mask")
            .arg(dir.path(name))
            .arg("--out")
            .arg(dir.path("o.npy"))
            .assert()
            .failure()
            .stderr(predicates::str::contains(message));
    };
    // The element count of [1, 1, 2, 2, 1] is right; its rank is not.
    rejects(
        "rank.npz",
        &[
            ("kv_num_blocks", &[1, 1, 2], &[1, 1]),
            ("kv_indices", &[1, 1, 2, 2, 1], &[0, 0, 1, 0]),
        ],
        "rank.npz: kv_indices: expected rank 4 [B, H, Q_BLOCKS, KV_BLOCKS], got shape [1, 1, 2, 2, 1]",
    );
    // Q_BLOCKS and KV_BLOCKS swapped in shape, same element count.
    rejects(
        "swap.npz",
        &[
            ("kv_num_blocks", &[1, 1, 2], &[1, 1]),
            ("kv_indices", &[1, 1, 1, 4], &[0, 0, 1, 0]),
        ],
        "swap.npz: kv_indices: expected shape [1, 1, 2, 2]",
    );
    // H = 3 is neither Q's 2 heads nor 1.
    rejects(
        "heads.npz",
        &[
            ("kv_num_blocks", &[1, 3, 2], &[1; 6]),
            ("kv_indices", &[1, 3, 2, 2], &[0; 12]),
        ],
        "heads.npz: kv_num_blocks: H = 3 is neither Q's heads 2 nor 1",
    );
    // An entry's error has its position; a whole-mask error has none (no fake [0, 0, 0, 0]).
    rejects(
        "dup.npz",
        &[
            ("kv_num_blocks", &[1, 2, 2], &[1, 1, 2, 1]),
            ("kv_indices", &[1, 2, 2, 2], &[0, 0, 1, 0, 1, 1, 1, 0]),
        ],
        "dup.npz: invalid block mask at batch 0, head 1, query block 0, slot 1: key block listed twice",
    );
    attention(&dir)
        .args(["--block", "7", "--out"])
        .arg(dir.path("o.npy"))
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "invalid block mask: block sizes must be 16, 32, 64 or 128",
        ))
        .stderr(predicates::str::contains("[0, 0, 0, 0]").not());
    assert!(!dir.path("o.npy").exists());
}

#[test]
fn calibrate_without_a_gpu_says_so_instead_of_an_empty_table() {
    let dir = Dir::new("calibrate-cpu");
    let info = megabatch(&dir).arg("info").output().unwrap();
    let info = String::from_utf8(info.stdout).unwrap();
    if !info.lines().any(|l| l == "backends usable: cpu") {
        return; // A GPU machine has a crossover table to print.
    }
    megabatch(&dir)
        .args(["calibrate", "--quick"])
        .assert()
        .success()
        .stdout(predicates::str::contains("no GPU backend found"))
        .stdout(predicates::str::contains("gpu_faster_for").not());
    assert!(dir.path("calibration.json").exists());
}

#[test]
fn names_and_numbers_have_one_spelling_and_floats_are_checked() {
    let dir = Dir::new("spelling");
    let csv = megabatch(&dir)
        .args([
            "bench",
            "reduce",
            "--op",
            "max-abs-diff",
            "--len",
            "10,100000",
        ])
        .args(["--backend", "cpu", "--min-time", "0.001", "--format", "csv"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let csv = String::from_utf8(csv).unwrap();
    assert_eq!(
        csv.lines()
            .skip(1)
            .filter(|l| l.contains(",max-abs-diff,"))
            .count(),
        2
    );
    assert!(!csv.contains("MaxAbsDiff"));
    megabatch(&dir)
        .args(["bench", "reduce", "--op", "nope"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("max-abs-diff, max-rel-diff"));

    // One notation per column: sub-microsecond and millisecond times side by side.
    let table = megabatch(&dir)
        .args(["bench", "reduce", "--len", "10,1000000", "--backend", "cpu"])
        .args(["--min-time", "0.001"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let table = String::from_utf8(table).unwrap();
    let seconds: Vec<&str> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(6).unwrap())
        .collect();
    let scientific = seconds.iter().filter(|s| s.contains('e')).count();
    assert!(
        scientific == 0 || scientific == seconds.len(),
        "{seconds:?}"
    );

    let help = megabatch(&dir)
        .args(["bench", "eigh", "--help"])
        .output()
        .unwrap()
        .stdout;
    let help = String::from_utf8(help).unwrap();
    assert!(help.contains("[default: every backend this machine has, then auto]"));
    assert!(!help.contains("(the default)"), "{help}");

    for bad in ["-1", "0", "nan", "inf"] {
        for args in [
            &["bench", "eigh", "--min-time"][..],
            &["bench", "regret", "--min-time"],
            &["plot", "crossover", "--out", "x.svg", "--min-time"],
        ] {
            megabatch(&dir)
                .args(args)
                .arg(bad)
                .assert()
                .code(2)
                .stderr(predicates::str::contains(
                    "must be finite and greater than 0",
                ));
        }
    }
    attention(&dir)
        .args(["--out", "o.npy", "--scale", "nan"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains(
            "must be finite and greater than 0",
        ));
}

/// The header text of an `.npy` file (read by hand: npyz multiplies the dimensions unchecked).
fn header_text(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    let len = usize::from(u16::from_le_bytes([bytes[8], bytes[9]]));
    assert_eq!(bytes.len(), 10 + len, "an empty array has no data");
    String::from_utf8(bytes[10..].to_vec()).unwrap()
}

#[test]
fn empty_arrays_give_empty_results_and_truncation_is_named() {
    let dir = Dir::new("empty");
    let t = 1_000_000_000_000u64;
    // Written through npyz: its product of (0, t, t) does not overflow (it starts at 0).
    write_npy::<f64>(&dir.path("e.npy"), &[0, t, t], &[]);
    megabatch(&dir)
        .args(["eigh", "--input"])
        .arg(dir.path("e.npy"))
        .arg("--values")
        .arg(dir.path("w.npy"))
        .arg("--vectors")
        .arg(dir.path("v.npy"))
        .assert()
        .success();
    assert!(header_text(&dir.path("w.npy")).contains("'shape': (0, 1000000000000)"));
    assert!(header_text(&dir.path("v.npy")).contains("'shape': (0, 1000000000000, 1000000000000)"));
    // Printing an empty stack prints nothing.
    megabatch(&dir)
        .args(["eigh", "--input"])
        .arg(dir.path("e.npy"))
        .assert()
        .success()
        .stdout("");

    let bytes = std::fs::read(dir.path("e.npy")).unwrap();
    std::fs::write(dir.path("cut.npy"), &bytes[..40]).unwrap();
    megabatch(&dir)
        .args(["eigh", "--input"])
        .arg(dir.path("cut.npy"))
        .assert()
        .failure()
        .stderr(predicates::str::contains(format!(
            "cut.npy: truncated .npy header (expected {} bytes, file has 40)",
            bytes.len()
        )));
}

#[test]
fn long_measurements_report_progress_when_stderr_is_not_a_terminal() {
    let dir = Dir::new("progress");
    megabatch(&dir)
        .args(["plot", "crossover", "--n", "2,3,4", "--batch", "2"])
        .args(["--min-time", "0.001", "--out"])
        .arg(dir.path("p.svg"))
        .assert()
        .success()
        .stderr(predicates::str::contains("crossover f64: cpu n = 2 (1/"))
        .stderr(predicates::str::contains("crossover f64: cpu n = 4 (3/"));
    megabatch(&dir)
        .args([
            "bench",
            "eigh",
            "--n",
            "4",
            "--batch",
            "1,2",
            "--backend",
            "cpu",
        ])
        .args(["--min-time", "0.001"])
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "bench eigh: cpu f64 n = 4 batch = 2 (2/2)",
        ));
}

/// An output that names one of the command's inputs is an argument error (status 2) before
/// any work: the same path spelt otherwise, through `..`, a symbolic link or (Unix) a hard
/// link; the input is left as it was and no temporary is left behind. The input here is not
/// even a valid `.npy`: the refusal comes before it is read.
#[test]
fn an_output_that_names_an_input_is_refused_before_any_work() {
    let dir = Dir::new("input-outputs");
    std::fs::create_dir_all(dir.path("sub")).unwrap();
    std::fs::write(dir.path("a.npy"), b"not an array").unwrap();
    let original = std::fs::read(dir.path("a.npy")).unwrap();
    let mut spellings = vec![
        ("--values", dir.path("a.npy")),
        ("--values", dir.0.join(".").join("a.npy")),
        ("--vectors", dir.path("sub").join("..").join("a.npy")),
    ];
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(dir.path("a.npy"), dir.path("link.npy")).unwrap();
        std::fs::hard_link(dir.path("a.npy"), dir.path("hard.npy")).unwrap();
        spellings.push(("--values", dir.path("link.npy")));
        spellings.push(("--vectors", dir.path("hard.npy")));
    }
    for (flag, path) in &spellings {
        megabatch(&dir)
            .args(["eigh", "--input"])
            .arg(dir.path("a.npy"))
            .arg(flag)
            .arg(path)
            .assert()
            .code(2)
            .stderr(predicates::str::contains(format!(
                "{flag} {} is the input --input",
                path.display()
            )));
        assert_eq!(std::fs::read(dir.path("a.npy")).unwrap(), original);
    }
    // The input given through the link, the output by its real name.
    #[cfg(unix)]
    megabatch(&dir)
        .args(["eigh", "--input"])
        .arg(dir.path("link.npy"))
        .arg("--values")
        .arg(dir.path("a.npy"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("is the input --input"));
    let left = left_in(&dir.0);
    assert!(
        left.iter().all(|name| !name.contains("megabatch-tmp")),
        "{left:?}"
    );

    // Attention: every input (Q, K, V, the mask) is protected, for both outputs.
    std::fs::create_dir_all(dir.path("in")).unwrap();
    write_qkv(&dir.path("in"));
    let k = std::fs::read(dir.path("in/k.npy")).unwrap();
    attention(&dir)
        .arg("--out")
        .arg(dir.path("in/k.npy"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("is the input --k"));
    attention(&dir)
        .arg("--out")
        .arg(dir.path("in/o.npy"))
        .arg("--lse")
        .arg(dir.path("in/./q.npy"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("is the input --q"));
    write_npz(
        &dir.path("in/mask.npz"),
        &[
            ("kv_num_blocks", &[1, 1, 2], &[1, 2]),
            ("kv_indices", &[1, 1, 2, 2], &[0, 0, 0, 1]),
        ],
        Some([32, 32]),
    );
    attention(&dir)
        .arg("--mask")
        .arg(dir.path("in/mask.npz"))
        .arg("--out")
        .arg(dir.path("in/mask.npz"))
        .assert()
        .code(2)
        .stderr(predicates::str::contains("is the input --mask"));
    assert_eq!(std::fs::read(dir.path("in/k.npy")).unwrap(), k);
    assert_eq!(
        left_in(&dir.path("in")),
        ["k.npy", "mask.npz", "q.npy", "v.npy"]
    );
    // A different file in the same folder is fine.
    attention(&dir)
        .arg("--out")
        .arg(dir.path("in/o.npy"))
        .assert()
        .success();
}

/// Any `mask_mod` through the tool: a prefix-LM mask (the first 40 keys visible to every
/// query, causal after) written as FlexAttention lists plus `partial_block_bits`, packed here as
/// `numpy.packbits(m, axis=-1, bitorder="little")` bytes (blocks of 32 x 16: two bytes a row,
/// which the tool pads to a word) and as uint32 words; both give the library's output for
/// `BlockMask::from_mask_mod` of the same closure, bit for bit. Wrong shapes and a predicate
/// beside the bits are refused with the archive and array named.
#[test]
fn attention_takes_packed_element_bits_for_any_mask_mod() {
    let dir = Dir::new("attention-bits");
    let (hq, s, d, (bq, bk)) = (2usize, 80usize, 32usize, (32usize, 16usize));
    let prefix_lm = |i: usize, j: usize| j < 40 || j <= i;
    let gen = |seed| -> Vec<f32> { random(hq * s * d, seed).iter().map(|&x| x as f32).collect() };
    let (q, k, v) = (gen(1), gen(2), gen(3));
    let shape = [1, hq as u64, s as u64, d as u64];
    for (name, x) in [("q.npy", &q), ("k.npy", &k), ("v.npy", &v)] {
        write_npy(&dir.path(name), &shape, x);
    }
    // The lists and tiles, classified here from the closure.
    let (qb, kb) = (s.div_ceil(bq), s.div_ceil(bk));
    let (mut pn, mut pi, mut fnum, mut fi) =
        (vec![0; qb], vec![0; qb * kb], vec![0; qb], vec![0; qb * kb]);
    let mut bytes: Vec<u8> = Vec::new();
    for qq in 0..qb {
        for kk in 0..kb {
            let cells: Vec<bool> = (0..bq * bk)
                .map(|e| (qq * bq + e / bk, kk * bk + e % bk))
                .map(|(i, j)| i < s && j < s && prefix_lm(i, j))
                .collect();
            let inside = (0..bq * bk).filter(|e| qq * bq + e / bk < s).count();
            let kept = cells.iter().filter(|&&x| x).count();
            if kept == inside {
                fi[qq * kb + fnum[qq] as usize] = kk as i32;
                fnum[qq] += 1;
            } else if kept > 0 {
                pi[qq * kb + pn[qq] as usize] = kk as i32;
                pn[qq] += 1;
                for row in cells.chunks(bk) {
                    for byte in row.chunks(8) {
                        bytes.push(
                            byte.iter()
                                .enumerate()
                                .map(|(b, &x)| u8::from(x) << b)
                                .sum(),
                        );
                    }
                }
            }
        }
    }
    let nnz = pn.iter().sum::<i32>() as u64;
    assert!(nnz > 0);
    let words: Vec<u32> = bytes
        .chunks(2)
        .map(|p| u32::from(p[0]) | u32::from(p[1]) << 8)
        .collect();
    let lists: [(&str, &[u64], &[i32]); 4] = [
        ("kv_num_blocks", &[1, 1, qb as u64], &pn),
        ("kv_indices", &[1, 1, qb as u64, kb as u64], &pi),
        ("full_kv_num_blocks", &[1, 1, qb as u64], &fnum),
        ("full_kv_indices", &[1, 1, qb as u64, kb as u64], &fi),
    ];
    write_npz_with_bits(
        &dir.path("bytes.npz"),
        &lists,
        (&[nnz, bq as u64, 2], &bytes),
    );
    write_npz_with_bits(
        &dir.path("words.npz"),
        &lists,
        (&[nnz, bq as u64, 1], &words),
    );
    write_npz_with_bits(
        &dir.path("bad.npz"),
        &lists,
        (&[nnz, bq as u64 / 2, 4], &bytes),
    );
    let run = |mask: &str, out: &str, extra: &[&str]| {
        let mut cmd = megabatch(&dir);
        cmd.args(["attention", "--backend", "cpu"]).args(extra);
        for (flag, file) in [
            ("--q", "q.npy"),
            ("--k", "k.npy"),
            ("--v", "v.npy"),
            ("--mask", mask),
            ("--out", out),
        ] {
            cmd.arg(flag).arg(dir.path(file));
        }
        cmd.assert()
    };
    run("bytes.npz", "o_bytes.npy", &[]).success();
    run("words.npz", "o_words.npy", &[]).success();
    let spec = AttentionSpec {
        batch: 1,
        heads_q: hq,
        heads_kv: hq,
        seq_q: s,
        seq_kv: s,
        head_dim: d,
        scale: None,
    };
    let mask = BlockMask::from_mask_mod(s, s, (bq, bk), prefix_lm).unwrap();
    let cpu = Cpu::with_threads(1).unwrap();
    let mut plan = cpu.plan_attention(&spec, &mask).unwrap();
    let mut o_lib = vec![0f32; q.len()];
    cpu.attention_host(&mut plan, &q, &k, &v, &mut o_lib, None)
        .unwrap();
    for out in ["o_bytes.npy", "o_words.npy"] {
        let (_, o) = read_npy::<f32>(&dir.path(out));
        assert_eq!(o, o_lib, "{out}");
    }
    // The prefix really reaches past the causal rule: the output differs from causal's.
    let causal = BlockMask::causal(s, s, (bq, bk)).unwrap();
    let mut plan = cpu.plan_attention(&spec, &causal).unwrap();
    let mut o_causal = vec![0f32; q.len()];
    cpu.attention_host(&mut plan, &q, &k, &v, &mut o_causal, None)
        .unwrap();
    assert_ne!(o_causal, o_lib);

    run("bad.npz", "o_bad.npy", &[]).failure().stderr(predicates::str::contains(
        "bad.npz: partial_block_bits: expected uint8 [NNZ, BQ, ceil(BK/8)] for blocks of 32 x 16, got shape [",
    ));
    run("bytes.npz", "o_pred.npy", &["--predicate", "causal"])
        .failure()
        .stderr(predicates::str::contains(
            "bytes.npz: invalid block mask: element bits replace the predicate",
        ));
    // A padding bit (bit 20 of a BK = 16 row) is the library's error, with the tile's position.
    let mut stray = words.clone();
    stray[0] |= 1 << 20;
    write_npz_with_bits(
        &dir.path("stray.npz"),
        &lists,
        (&[nnz, bq as u64, 1], &stray),
    );
    run("stray.npz", "o_stray.npy", &[]).failure().stderr(predicates::str::contains(
        "stray.npz: invalid block mask at batch 0, head 0, query block 0, slot 0: element bit set past",
    ));
    assert!(!dir.path("o_bad.npy").exists() && !dir.path("o_stray.npy").exists());
}
