//! The `infoutil` binary as a user runs it: defaults, errors a person can act on, --skip-bad.

use std::path::Path;
use std::process::Command;

use crate::common::*;

/// An idx pair of the first `n` embedded test images with `label` at record `bad`.
fn idx_with_bad_label(dir: &Path, n: usize, bad: usize, label: u8) -> std::path::PathBuf {
    use std::io::Read;
    let read = |name: &str| {
        let mut v = Vec::new();
        let f = std::fs::File::open(repo(&format!("data/fashion-mnist-mini/{name}"))).unwrap();
        flate2::read::GzDecoder::new(f).read_to_end(&mut v).unwrap();
        v
    };
    let (images, labels) = (
        read("t10k-images-idx3-ubyte.gz"),
        read("t10k-labels-idx1-ubyte.gz"),
    );
    let mut img = images[..16 + n * 784].to_vec();
    img[4..8].copy_from_slice(&(n as u32).to_be_bytes());
    let mut lab = labels[..8 + n].to_vec();
    lab[4..8].copy_from_slice(&(n as u32).to_be_bytes());
    lab[8 + bad] = label;
    std::fs::write(dir.join("bad-labels-idx1-ubyte"), lab).unwrap();
    let path = dir.join("bad-images-idx3-ubyte");
    std::fs::write(&path, img).unwrap();
    path
}

#[test]
fn teacher_eval_runs_on_the_defaults_and_writes_a_readable_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = infoutil(
        &["teacher", "eval", "--backend", "tract", "--out", "e.h5"],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("on 1000 images") && t.contains("top-1") && t.contains("tract"),
        "{t}"
    );
    let inspect = infoutil(&["inspect", "e.h5"], dir.path());
    let t = text(&inspect);
    assert!(
        inspect.status.success()
            && t.contains("logits")
            && t.contains("grad_norms")
            && t.contains("[1000, 10]"),
        "{t}"
    );
}

#[test]
fn a_bad_record_stops_the_run_with_file_and_record_unless_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let data = idx_with_bad_label(dir.path(), 20, 3, 12);
    let data = data.to_str().unwrap();
    let args = [
        "teacher",
        "eval",
        "--backend",
        "tract",
        "--no-grad-norms",
        "--data",
        data,
    ];
    let out = infoutil(&args, dir.path());
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("bad-images-idx3-ubyte") && t.contains("record 3") && t.contains("label 12"),
        "{t}"
    );

    let mut skip = args.to_vec();
    skip.push("--skip-bad");
    let out = infoutil(&skip, dir.path());
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("on 19 images") && t.contains("skipped 1 bad record"),
        "{t}"
    );
}

#[test]
fn a_missing_teacher_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = infoutil(
        &["teacher", "eval", "--teacher", "nowhere/t.onnx"],
        dir.path(),
    );
    let t = text(&out);
    assert!(!out.status.success() && t.contains("nowhere/t.onnx"), "{t}");
}

#[test]
fn auto_says_it_fell_back_to_tract() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_infoutil"))
        .args([
            "teacher",
            "eval",
            "--no-grad-norms",
            "--ort-lib",
            "/nonexistent/libonnxruntime.so",
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("using tract because ONNX Runtime is unavailable")
            && t.contains("/nonexistent/libonnxruntime.so"),
        "{t}"
    );
}

/// `--version` tells whether the CUDA provider is compiled in and whether the ONNX Runtime
/// library found has it; `--device cuda` where CUDA cannot run is an error (exit 1, not the
/// panic's 2, no CPU fallback) naming the package to install. With the suite's ONNX Runtime (the
/// CPU package); the GPU package without a GPU is tests/wheel/check.py's.
#[test]
fn the_cuda_provider_is_reported_and_refused_clearly_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_infoutil"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let version = text(&run(&["--version"]));
    let have_ort = version.contains("ONNX Runtime: loads from");
    if cfg!(feature = "cuda") && have_ort {
        assert!(
            version.contains("ONNX Runtime CUDA provider: compiled in; not in this ONNX Runtime library (a CPU build: pip install \"infoutil[gpu]\""),
            "{version}"
        );
    } else if cfg!(feature = "cuda") {
        assert!(version.contains("CUDA provider: compiled in"), "{version}");
    } else {
        assert!(
            version.contains("CUDA provider: not compiled in"),
            "{version}"
        );
    }
    if !have_ort {
        assert!(
            std::env::var_os("INFOUTIL_REQUIRE_ORT").is_none(),
            "{version}"
        );
        eprintln!("SKIP the_cuda_provider_is_reported…: no ONNX Runtime library");
        return;
    }
    let out = run(&[
        "teacher",
        "eval",
        "--backend",
        "ort",
        "--device",
        "cuda",
        "--no-grad-norms",
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    let expected = if cfg!(feature = "cuda") {
        "has no CUDA execution provider (it is a CPU build); install onnxruntime-gpu: pip install \"infoutil[gpu]\""
    } else {
        "built without the cargo feature `cuda`"
    };
    assert!(t.contains(expected) && !t.contains("top-1"), "{t}");
}

#[test]
fn attribute_writes_maps_crops_and_pictures() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "attribute",
        "--backend",
        "tract",
        "--indices",
        "0-2",
        "--budget",
        "64",
        "--png",
        "pics",
        "--out",
        "a.h5",
    ];
    let out = infoutil(&args, dir.path());
    assert!(out.status.success(), "{}", text(&out));
    let f = infoutil::store::open(&dir.path().join("a.h5")).unwrap();
    assert_eq!(
        f.dataset("attribution/shapley").unwrap().shape(),
        vec![3, 4, 4]
    );
    assert_eq!(
        f.dataset("attribution/crop_box").unwrap().shape(),
        vec![3, 5, 4]
    );
    assert_eq!(
        f.dataset("attribution/source_index")
            .unwrap()
            .read_1d::<i64>()
            .unwrap()
            .to_vec(),
        vec![0, 1, 2]
    );
    for png in ["pics/contact-sheet.png", "pics/000000-class9.png"] {
        assert!(dir.path().join(png).exists(), "{png}");
    }
}

/// The "top-1 X%" of a `teacher eval` run.
fn top1(t: &str) -> String {
    let at = t
        .find("top-1 ")
        .unwrap_or_else(|| panic!("no top-1 in: {t}"));
    t[at..].split_whitespace().nth(1).unwrap().to_string()
}

/// A channels-last teacher (Keras-style input name and layout, declared in its metadata) runs
/// through `teacher eval`, gradient graph included, with the shipped teacher's accuracy.
#[test]
fn teacher_eval_runs_a_channels_last_teacher() {
    let dir = tempfile::tempdir().unwrap();
    nhwc_teacher(dir.path(), "keras", "conv2d_input", "input_1");
    let out = infoutil(
        &[
            "teacher",
            "eval",
            "--backend",
            "tract",
            "--teacher",
            "keras.onnx",
        ],
        dir.path(),
    );
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    assert!(
        t.contains("keras.onnx")
            && t.contains("fed to the graph as NHWC")
            && t.contains("on 1000 images")
            && t.contains("gradient norm"),
        "{t}"
    );
    let shipped = repo(TEACHER);
    let args = [
        "teacher",
        "eval",
        "--backend",
        "tract",
        "--no-grad-norms",
        "--teacher",
        shipped.to_str().unwrap(),
    ];
    let original = infoutil(&args, dir.path());
    let o = text(&original);
    assert!(original.status.success(), "{o}");
    assert_eq!(top1(&t), top1(&o), "NHWC: {t}\noriginal: {o}");
}

/// `distill --teacher` with a channels-last teacher writes the same distilled images as the
/// shipped teacher (small settings, two classes).
#[test]
fn distill_runs_a_channels_last_teacher() {
    let dir = tempfile::tempdir().unwrap();
    let nhwc = nhwc_teacher(dir.path(), "keras", "conv2d_input", "input_1");
    let shipped = repo(TEACHER);
    let run = |teacher: &Path, out: &str| {
        let teacher = teacher.to_str().unwrap();
        let args = [
            "distill",
            "--backend",
            "tract",
            "--teacher",
            teacher,
            "--label-teacher",
            teacher,
            "--classes",
            "0-1",
            "--ipc",
            "1",
            "--candidates",
            "6",
            "--budget",
            "64",
            "--out",
            out,
        ];
        let o = infoutil(&args, dir.path());
        assert!(o.status.success(), "{}", text(&o));
        infoutil::store::open(&dir.path().join(out))
            .unwrap()
            .dataset("images")
            .unwrap()
            .read_raw::<f32>()
            .unwrap()
    };
    let (a, b) = (run(&nhwc, "nhwc.h5"), run(&shipped, "orig.h5"));
    assert!(!a.is_empty());
    assert_eq!(a, b, "the NHWC teacher distils other images");
}

#[test]
fn progress_is_printed_as_lines_when_stderr_is_a_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_infoutil"))
        .args([
            "attribute",
            "--backend",
            "tract",
            "--indices",
            "0-3",
            "--budget",
            "48",
        ])
        .current_dir(dir.path())
        .env_remove("ORT_DYLIB_PATH")
        .env("INFOUTIL_PROGRESS_SECS", "0")
        .output()
        .expect("binary runs");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("progress: attribution 0/4"), "{err}");
    assert!(
        err.contains("progress: attribution 4/4") && err.contains("done"),
        "{err}"
    );
}
