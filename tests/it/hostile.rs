//! Hostile input against every command, as a user (or a broken pipeline) would give it. Each
//! case asserts what docs/reliability.md promises: a non-zero exit, a message that names the
//! input and what was expected, no panic, and nothing created or changed where the run was
//! pointed (no output file, no temporary file, no checkpoint folder). Everything is generated
//! here from the shipped files; nothing large is committed.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::common::*;
use tract_onnx::pb::attribute_proto::AttributeType;
use tract_onnx::pb::{AttributeProto, ModelProto, NodeProto, TensorProto};

const FMNIST: &str = "data/fashion-mnist-mini";

/// Every file under `dir` with its size and contents' length-prefixed hash stand-in (the bytes).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                files.insert(p.clone(), Vec::new());
                stack.push(p);
            } else {
                files.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    files
}

/// Runs `args` in `dir` and checks the promise: it fails (exit 1, not a crash), says every one of
/// `expect`, shows no panic, and leaves `dir` exactly as it was.
#[track_caller]
fn refused(dir: &Path, args: &[&str], expect: &[&str]) -> String {
    let before = snapshot(dir);
    let out = infoutil(args, dir);
    let t = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{args:?} should fail with 1:\n{t}"
    );
    for e in expect {
        assert!(t.contains(e), "{args:?}: expected {e:?} in:\n{t}");
    }
    assert!(
        !t.contains("panicked") && !t.contains("internal error"),
        "{args:?} panicked:\n{t}"
    );
    let after = snapshot(dir);
    let changed: Vec<_> = after
        .keys()
        .chain(before.keys())
        .filter(|k| before.get(*k) != after.get(*k))
        .collect();
    assert!(changed.is_empty(), "{args:?} changed {changed:?}:\n{t}");
    t
}

fn gunzip(rel: &str) -> Vec<u8> {
    let mut v = Vec::new();
    let f = std::fs::File::open(repo(rel)).unwrap();
    flate2::read::GzDecoder::new(f).read_to_end(&mut v).unwrap();
    v
}

/// The embedded test pair copied into `dir` (gzip, as shipped); returns the images file.
fn copy_test_pair(dir: &Path) -> PathBuf {
    for name in ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"] {
        std::fs::copy(repo(&format!("{FMNIST}/{name}")), dir.join(name)).unwrap();
    }
    dir.join("t10k-images-idx3-ubyte.gz")
}

#[test]
fn options_out_of_range_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tract = ["--backend", "tract"];
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["attribute", "--indices", "0", "--alpha", "NaN"],
            &["--alpha NaN", "finite"],
        ),
        (
            &["attribute", "--indices", "0", "--alpha", "inf"],
            &["--alpha inf"],
        ),
        (
            &["attribute", "--indices", "0", "--alpha=-1"],
            &["--alpha -1", "≥ 0"],
        ),
        (
            &["distill", "--classes="],
            &["--classes \"\" selects nothing", "0,5,10-19"],
        ),
        (
            &["distill", "--classes", ","],
            &["--classes \",\" selects nothing"],
        ),
        (
            &["distill", "--classes", "abc"],
            &["--classes \"abc\"", "not a number"],
        ),
        (&["distill", "--classes", "3-1"], &["runs backwards"]),
        (
            &["distill", "--classes", "0-10"],
            &["outside the teacher's classes (0 to 9)"],
        ),
        (
            &["attribute", "--indices", "0", "--crop-span", "0"],
            &["--crop-span 0", "between 1 and --grid (4)"],
        ),
        (
            &["attribute", "--indices", "0", "--crop-span", "5"],
            &["--crop-span 5"],
        ),
        (&["distill", "--crop-span", "5"], &["--crop-span 5"]),
        (
            &["attribute", "--indices", "0", "--crops-per-image", "0"],
            &["--crops-per-image 0"],
        ),
        (
            &[
                "attribute",
                "--indices",
                "0",
                "--estimator",
                "permutation",
                "--budget",
                "18446744073709551615",
            ],
            &["--budget 18446744073709551615", "1048576"],
        ),
        (
            &[
                "attribute",
                "--indices",
                "0",
                "--estimator",
                "leverage",
                "--budget",
                "18446744073709551615",
            ],
            &["--budget 18446744073709551615"],
        ),
        (
            &["attribute", "--indices", "0", "--budget", "1"],
            &["--budget 1", "between 2"],
        ),
        (
            &["attribute", "--indices="],
            &["--indices \"\" selects nothing"],
        ),
        (
            &["attribute", "--indices", "0..8"],
            &["--indices \"0..8\"", "not a number", "10-19"],
        ),
        (
            &["attribute", "--indices", "99999"],
            &["outside the dataset's records"],
        ),
        (
            &["attribute", "--per-class", "0"],
            &["--per-class 0", "selects no image"],
        ),
        (
            &["attribute", "--indices", "0", "--grid", "0"],
            &["--grid 0", "between 1 and 4"],
        ),
        (
            &["attribute", "--indices", "0", "--grid", "9"],
            &["--grid 9"],
        ),
        (&["distill", "--ipc", "0"], &["--ipc 0"]),
        (&["distill", "--factor", "0"], &["--factor 0"]),
        (&["distill", "--candidates", "0"], &["--candidates"]),
        (
            &["distill", "--method", "random", "--factor", "2"],
            &["--factor 1"],
        ),
    ];
    for (args, expect) in cases {
        let args: Vec<&str> = args.iter().chain(&tract).copied().collect();
        refused(d, &args, expect);
    }
}

#[test]
fn corrupt_and_empty_dataset_files_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // 40 flipped bytes in the middle of the gzip stream: only the CRC can tell.
    let images = copy_test_pair(d);
    let mut bytes = std::fs::read(&images).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid..mid + 40].iter_mut().for_each(|b| *b ^= 0x55);
    std::fs::write(&images, &bytes).unwrap();
    let path = images.to_str().unwrap();
    for cmd in [
        &["teacher", "eval", "--backend", "tract", "--data", path][..],
        &["distill", "--backend", "tract", "--data", path],
        &[
            "attribute",
            "--backend",
            "tract",
            "--indices",
            "0",
            "--data",
            path,
        ],
    ] {
        refused(d, cmd, &["t10k-images-idx3-ubyte.gz", "gzip data"]);
    }
    // One flipped bit in the labels file changes a label, which the CRC catches.
    let labels = d.join("t10k-labels-idx1-ubyte.gz");
    std::fs::copy(
        repo(&format!("{FMNIST}/t10k-images-idx3-ubyte.gz")),
        &images,
    )
    .unwrap();
    let mut bytes = std::fs::read(&labels).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&labels, &bytes).unwrap();
    refused(
        d,
        &["teacher", "eval", "--backend", "tract", "--data", path],
        &["t10k-labels-idx1-ubyte.gz", "gzip data"],
    );
    // An empty file, and an idx pair of zero records.
    std::fs::write(d.join("empty-images-idx3-ubyte"), b"").unwrap();
    refused(
        d,
        &[
            "teacher",
            "eval",
            "--backend",
            "tract",
            "--data",
            "empty-images-idx3-ubyte",
        ],
        &["empty-images-idx3-ubyte", "the file is empty"],
    );
    let header = |magic: u32, dims: &[u32]| {
        let mut v = magic.to_be_bytes().to_vec();
        dims.iter().for_each(|d| v.extend(d.to_be_bytes()));
        v
    };
    std::fs::write(d.join("zero-images-idx3-ubyte"), header(2051, &[0, 28, 28])).unwrap();
    std::fs::write(d.join("zero-labels-idx1-ubyte"), header(2049, &[0])).unwrap();
    refused(
        d,
        &[
            "teacher",
            "eval",
            "--backend",
            "tract",
            "--data",
            "zero-images-idx3-ubyte",
        ],
        &["zero-images-idx3-ubyte", "holds no records"],
    );
}

/// A 96×96 RGB JPEG with smooth content, as bytes.
fn jpeg() -> Vec<u8> {
    Pixels::from_fn(96, 96, 3, |x, y| {
        vec![(x + y) as u8, (2 * x) as u8, (3 * y) as u8]
    })
    .jpeg()
}

#[test]
fn damaged_jpegs_are_refused_as_pil_refuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good = jpeg();
    let mut zeroed = good.clone();
    let half = zeroed.len() / 2;
    zeroed[half..].iter_mut().for_each(|b| *b = 0);
    let mut header = zeroed.clone();
    header[20..40].iter_mut().for_each(|b| *b ^= 0x5a);
    let cut = good[..good.len() * 2 / 3].to_vec();
    for (name, bytes) in [("zeroed", zeroed), ("header", header), ("cut", cut)] {
        let root = d.join(name);
        std::fs::create_dir_all(root.join("Bag")).unwrap();
        std::fs::write(root.join("Bag/a.jpg"), &bytes).unwrap();
        let root = root.to_str().unwrap().to_string();
        refused(
            d,
            &["teacher", "eval", "--backend", "tract", "--data", &root],
            &["Bag/a.jpg", "record 0", "unreadable image"],
        );
    }
}

/// The embedded test set as an image folder with the folders named by `name_of(class)`.
fn test_set_as_folder(root: &Path, name_of: impl Fn(usize) -> String, skip: Option<usize>) {
    let images = gunzip(&format!("{FMNIST}/t10k-images-idx3-ubyte.gz"));
    let labels = gunzip(&format!("{FMNIST}/t10k-labels-idx1-ubyte.gz"));
    for (k, &label) in labels[8..].iter().enumerate() {
        let c = label as usize;
        if Some(c) == skip {
            continue;
        }
        let folder = root.join(name_of(c));
        std::fs::create_dir_all(&folder).unwrap();
        let pixels = images[16 + k * 784..16 + (k + 1) * 784].to_vec();
        let png = Pixels {
            width: 28,
            height: 28,
            channels: 1,
            data: pixels,
        };
        png.save(&folder.join(format!("{k:05}.png")));
    }
}

fn top1(o: &Output) -> String {
    let t = text(o);
    t.split("top-1 ")
        .nth(1)
        .and_then(|s| s.split('%').next())
        .unwrap_or_else(|| panic!("no top-1 in {t}"))
        .to_string()
}

#[test]
fn image_folders_are_labelled_by_class_name_or_number_never_by_sorted_position() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let eval = |data: &str| {
        let o = infoutil(
            &[
                "teacher",
                "eval",
                "--backend",
                "tract",
                "--data",
                data,
                "--no-grad-norms",
            ],
            d,
        );
        assert!(o.status.success(), "{}", text(&o));
        o
    };
    let idx = top1(&eval(
        repo(&format!("{FMNIST}/t10k-images-idx3-ubyte.gz"))
            .to_str()
            .unwrap(),
    ));
    // The teacher's class names, "/" made "_": sorted, they are in another order than the classes.
    let names = [
        "T-shirt_top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ];
    test_set_as_folder(&d.join("named"), |c| names[c].to_string(), None);
    assert_eq!(top1(&eval("named")), idx, "named folders");
    // Numbers 0–9 with class 2 missing: nothing after it shifts.
    test_set_as_folder(&d.join("numbered"), |c| c.to_string(), Some(2));
    let o = eval("numbered");
    assert!(text(&o).contains("on 900 images"), "{}", text(&o));
    // The output records which folder became which class.
    let o = infoutil(
        &[
            "teacher",
            "eval",
            "--backend",
            "tract",
            "--data",
            "named",
            "--no-grad-norms",
            "--out",
            "e.h5",
        ],
        d,
    );
    assert!(o.status.success(), "{}", text(&o));
    let summary = text(&infoutil(&["inspect", "e.h5"], d));
    assert!(
        summary.contains("\"Ankle boot\"") && summary.contains("class_folders"),
        "{summary}"
    );
    std::fs::remove_file(d.join("e.h5")).unwrap();
    // Folders that are neither names nor numbers are refused, naming them.
    test_set_as_folder(&d.join("other"), |c| format!("kind{c}"), None);
    refused(
        d,
        &["teacher", "eval", "--backend", "tract", "--data", "other"],
        &["other", "kind0", "T-shirt/top", "numbered 0–9"],
    );
}

/// `model` with its output `name` multiplied by NaN (a Constant node, not an initializer, so
/// the weights hash in the metadata still holds).
fn poisoned(mut model: ModelProto, name: &str) -> ModelProto {
    let g = model.graph.as_mut().unwrap();
    let raw = format!("{name}_before_nan");
    for node in &mut g.node {
        for o in node.output.iter_mut().filter(|o| *o == name) {
            *o = raw.clone();
        }
    }
    let nan = TensorProto {
        data_type: 1,
        float_data: vec![f32::NAN],
        ..Default::default()
    };
    g.node.push(NodeProto {
        op_type: "Constant".into(),
        output: vec![format!("{name}_nan")],
        attribute: vec![AttributeProto {
            name: "value".into(),
            r#type: AttributeType::Tensor as i32,
            t: Some(nan),
            ..Default::default()
        }],
        ..Default::default()
    });
    g.node.push(NodeProto {
        op_type: "Mul".into(),
        input: vec![raw, format!("{name}_nan")],
        output: vec![name.into()],
        ..Default::default()
    });
    model
}

#[test]
fn non_finite_teacher_outputs_are_errors_naming_teacher_record_and_stage() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (fwd, grad) = (
        decode("models/fmnist-convnet3.onnx"),
        decode("models/fmnist-convnet3.grad.onnx"),
    );
    std::fs::create_dir_all(d.join("nanlogits")).unwrap();
    write(
        &d.join("nanlogits"),
        "t.onnx",
        &poisoned(fwd.clone(), "logits"),
    );
    write(&d.join("nanlogits"), "t.grad.onnx", &grad);
    refused(
        d,
        &[
            "teacher",
            "eval",
            "--backend",
            "tract",
            "--teacher",
            "nanlogits/t.onnx",
        ],
        &[
            "teacher nanlogits/t.onnx",
            "logit NaN is not finite",
            "dataset record 0",
            "teacher eval",
        ],
    );
    refused(
        d,
        &[
            "attribute",
            "--backend",
            "tract",
            "--teacher",
            "nanlogits/t.onnx",
            "--indices",
            "3",
        ],
        &["logit NaN", "dataset record 3", "attribution"],
    );
    std::fs::create_dir_all(d.join("nangrad")).unwrap();
    write(&d.join("nangrad"), "t.onnx", &fwd);
    write(
        &d.join("nangrad"),
        "t.grad.onnx",
        &poisoned(poisoned(grad, "norms"), "sqnorms"),
    );
    refused(
        d,
        &[
            "distill",
            "--backend",
            "tract",
            "--teacher",
            "nangrad/t.onnx",
            "--candidates",
            "2",
            "--budget",
            "48",
        ],
        &["teacher nangrad/t.onnx", "gradient norm NaN", "utility"],
    );
    // It failed in its first class: no empty checkpoint folder either (refused checks the
    // whole folder; said here because it once was left behind).
    assert!(!d.join("distilled.h5.parts").exists());
}

#[test]
fn an_output_that_is_an_input_or_cannot_be_written_is_refused_first() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    copy_test_pair(d);
    std::fs::create_dir_all(d.join("m")).unwrap();
    for f in ["fmnist-convnet3.onnx", "fmnist-convnet3.grad.onnx"] {
        std::fs::copy(repo(&format!("models/{f}")), d.join("m").join(f)).unwrap();
    }
    let data = ["--data", "t10k-images-idx3-ubyte.gz", "--backend", "tract"];
    let with = |args: &[&'static str]| -> Vec<&'static str> {
        args.iter().chain(&data).copied().collect()
    };
    refused(
        d,
        &with(&["teacher", "eval", "--out", "t10k-labels-idx1-ubyte.gz"]),
        &["--out t10k-labels-idx1-ubyte.gz is an input"],
    );
    refused(
        d,
        &with(&["teacher", "eval", "--out", "./t10k-images-idx3-ubyte.gz"]),
        &["is an input"],
    );
    refused(
        d,
        &with(&[
            "distill",
            "--teacher",
            "m/fmnist-convnet3.onnx",
            "--out",
            "m/fmnist-convnet3.grad.onnx",
        ]),
        &["is an input"],
    );
    refused(
        d,
        &with(&[
            "distill",
            "--teacher",
            "m/fmnist-convnet3.onnx",
            "--png",
            "m/fmnist-convnet3.onnx",
        ]),
        &["--png m/fmnist-convnet3.onnx is an input"],
    );
    refused(
        d,
        &with(&[
            "attribute",
            "--indices",
            "0",
            "--out",
            "t10k-labels-idx1-ubyte.gz",
        ]),
        &["is an input"],
    );
    refused(
        d,
        &with(&["distill", "--out", "no/such/folder/x.h5"]),
        &["--out no/such/folder/x.h5", "does not exist"],
    );
    refused(
        d,
        &with(&["distill", "--png", "no/such/x.png"]),
        &["--png no/such/x.png", "does not exist"],
    );
    refused(
        d,
        &with(&["teacher", "eval", "--out", "m"]),
        &["--out m is a folder"],
    );
}

#[test]
fn resume_after_the_data_changed_in_place_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let images = copy_test_pair(d);
    let args = [
        "distill",
        "--backend",
        "tract",
        "--data",
        "t10k-images-idx3-ubyte.gz",
        "--candidates",
        "4",
        "--budget",
        "48",
        "--ipc",
        "1",
        "--resume",
        "--out",
        "x.h5",
    ];
    // A run stopped after its first class: kill it once the first class file is saved.
    let mut child = Command::new(env!("CARGO_BIN_EXE_infoutil"))
        .args(args)
        .current_dir(d)
        .env_remove("ORT_DYLIB_PATH")
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let first = d.join("x.h5.parts/class-00000.h5");
    let started = std::time::Instant::now();
    while !first.exists() && started.elapsed().as_secs() < 120 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(first.exists(), "the first class was never saved");
    // The same path, other content: images of the training subset instead.
    std::fs::copy(
        repo(&format!("{FMNIST}/train-images-idx3-ubyte.gz")),
        &images,
    )
    .unwrap();
    std::fs::copy(
        repo(&format!("{FMNIST}/train-labels-idx1-ubyte.gz")),
        d.join("t10k-labels-idx1-ubyte.gz"),
    )
    .unwrap();
    refused(
        d,
        &args,
        &["class-00000.h5", "other options, teacher or data"],
    );
}

/// `teacher eval --out NAME` in `dir`, which must succeed.
fn eval_to(dir: &Path, name: &str) {
    let args = [
        "teacher",
        "eval",
        "--backend",
        "tract",
        "--no-grad-norms",
        "--out",
        name,
    ];
    let o = infoutil(&args, dir);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn inspect_never_follows_links_out_of_the_file_or_round_in_a_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    eval_to(d, "e.h5");
    {
        let f = hdf5::File::open_rw(d.join("e.h5")).unwrap();
        let g = f.create_group("g").unwrap();
        g.link_soft("/g", "s").unwrap();
        g.link_hard("/", "h").unwrap();
        f.link_external("other.h5", "/x", "ext").unwrap();
        drop(g);
        // Closed here, not when the library gets round to it: inspect must find it unlocked.
        f.close().unwrap();
    }
    let started = std::time::Instant::now();
    let o = infoutil(&["inspect", "e.h5"], d);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        started.elapsed().as_secs() < 20,
        "inspect took {:?}",
        started.elapsed()
    );
    assert!(t.contains("s  (soft link, not followed)"), "{t}");
    assert!(t.contains("h/  (hard link to a group shown above)"), "{t}");
    assert!(
        t.contains("ext  (external link to another file, not followed)"),
        "{t}"
    );
}

#[test]
fn outputs_are_ordinary_files_and_stale_temporaries_are_removed() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    eval_to(d, "e.h5");
    let mode = std::fs::metadata(d.join("e.h5"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    let umask_probe = {
        std::fs::write(d.join("probe"), b"").unwrap();
        std::fs::metadata(d.join("probe"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode, umask_probe, "an .h5 gets the mode of any new file");
    std::fs::remove_file(d.join("probe")).unwrap();
    // A stale temporary file of a killed run is removed by the next run writing that output.
    let stale = d.join(".e.h5.abc123.tmp");
    std::fs::write(&stale, b"left by kill -9").unwrap();
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .unwrap()
        .set_modified(old)
        .unwrap();
    let o = infoutil(
        &[
            "teacher",
            "eval",
            "--backend",
            "tract",
            "--no-grad-norms",
            "--out",
            "e.h5",
        ],
        d,
    );
    assert!(o.status.success() && !stale.exists(), "{}", text(&o));
}

#[test]
fn a_full_disk_is_one_line_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("full");
    std::fs::create_dir_all(&full).unwrap();
    // A 200 kB file system: needs root and permission to mount; elsewhere the case says SKIP.
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=200k", "tmpfs"])
        .arg(&full)
        .output()
        .is_ok_and(|o| o.status.success());
    if !mounted {
        eprintln!("SKIP a_full_disk_is_one_line_and_leaves_no_temporary_file: cannot mount a small tmpfs here (needs root)");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(&full);
    let out = full.join("x.h5");
    let o = infoutil(
        &[
            "distill",
            "--backend",
            "tract",
            "--method",
            "random",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(
        t.contains("no space left on the device; nothing was written or replaced"),
        "{t}"
    );
    assert!(
        !t.contains("H5C_") && !t.contains("panicked"),
        "a raw HDF5 stack: {t}"
    );
    let left: Vec<_> = snapshot(&full).into_keys().collect();
    assert!(!out.exists(), "no output under its final name");
    assert!(
        left.iter()
            .all(|f| f.extension().is_none_or(|e| e != "tmp")),
        "temporary files left: {left:?}"
    );
}

#[test]
fn too_few_crops_for_the_factor_names_the_options_to_change() {
    let dir = tempfile::tempdir().unwrap();
    refused(
        dir.path(),
        &[
            "distill",
            "--backend",
            "tract",
            "--factor",
            "2",
            "--ipc",
            "1",
            "--candidates",
            "1",
            "--crops-per-image",
            "2",
            "--budget",
            "48",
        ],
        &[
            "class 0 offers",
            "--ipc 1 × --factor 2² needs 4",
            "raise --crops-per-image (now 2)",
            "--candidates (now 1",
        ],
    );
}

#[test]
fn the_default_crops_per_image_is_enough_for_the_factor() {
    // the refusal above with --crops-per-image left to its default: derived from IPC × factor²
    // and the candidates (4 × ⌈4 / 1⌉ = 16), enough where the fixed default of 5 gave 3 distinct
    // crops for class 1
    let dir = tempfile::tempdir().unwrap();
    let out = infoutil(
        &[
            "distill",
            "--backend",
            "tract",
            "--factor",
            "2",
            "--ipc",
            "1",
            "--candidates",
            "1",
            "--classes",
            "0,1",
            "--budget",
            "48",
            "--out",
            "f2.h5",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(dir.path().join("f2.h5").exists());
}

#[test]
fn data_with_some_of_the_teachers_classes_distils_those_and_records_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("two");
    test_set_as_folder(&root, |c| format!("{c}"), None);
    for c in 2..10 {
        std::fs::remove_dir_all(root.join(format!("{c}"))).unwrap();
    }
    let root_arg = root.to_str().unwrap();
    let out = infoutil(
        &[
            "distill",
            "--backend",
            "tract",
            "--data",
            root_arg,
            "--ipc",
            "1",
            "--candidates",
            "1",
            "--budget",
            "48",
            "--out",
            "sub.h5",
        ],
        dir.path(),
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("the data holds 2 of the teacher's 10 classes") && t.contains("3 (Dress)"),
        "{t}"
    );
    let f = infoutil::store::open(&dir.path().join("sub.h5")).unwrap();
    let config: serde_json::Value =
        serde_json::from_str(&infoutil::store::read_attr(&f, "config").unwrap()).unwrap();
    assert_eq!(
        config["absent_classes"],
        serde_json::json!([2, 3, 4, 5, 6, 7, 8, 9])
    );
    let labels: Vec<i64> = f.dataset("labels").unwrap().read_raw().unwrap();
    assert_eq!(labels, vec![0, 1]);
    // a list that names the absent class is still refused, naming it
    refused(
        dir.path(),
        &[
            "distill",
            "--backend",
            "tract",
            "--data",
            root_arg,
            "--classes",
            "3",
            "--out",
            "x.h5",
        ],
        &["class 3 (Dress) has no images"],
    );
}
