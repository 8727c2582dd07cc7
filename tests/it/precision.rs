//! The float16 teacher (models/fmnist-convnet3-fp16.onnx, made by export/convert_precision.py
//! from the shipped ConvNet-3): loaded on ONNX Runtime and held to the float32 teacher it was
//! converted from, refused where it cannot run or does not hash to what it declares, and
//! recorded in what it produces.

use crate::common::{
    decode, infoutil, mini_test, options, ort, repo, set_meta, text, tract, write, TEACHER,
};
use infoutil::teacher::{BackendChoice, Precision, Teacher};

const FP16: &str = "models/fmnist-convnet3-fp16.onnx";

#[test]
fn float16_teacher_agrees_with_its_float32_source() {
    let (Some(half), Some(full)) = (
        ort(FP16, "float16_teacher_agrees_with_its_float32_source"),
        ort(TEACHER, "float16_teacher_agrees_with_its_float32_source"),
    ) else {
        return;
    };
    assert_eq!(half.meta.precision, Precision::Fp16);
    assert_eq!(full.meta.precision, Precision::Fp32);
    let (x, y) = mini_test(&full, 500);
    let (a, b) = (
        full.logits(x.view()).unwrap(),
        half.logits(x.view()).unwrap(),
    );
    let scale = a.iter().fold(0f32, |m, v| m.max(v.abs()));
    let worst = a
        .iter()
        .zip(&b)
        .fold(0f32, |m, (p, q)| m.max((p - q).abs()));
    // float16 keeps 11 significant bits: logits of magnitude ~20 move by ~1e-2, not by 1e-1.
    assert!(
        worst < 2e-3 * scale.max(1.0),
        "max |dlogit| {worst} of {scale}"
    );
    assert!(
        worst > 0.0,
        "the float16 graph computed exactly the float32 logits: not converted?"
    );
    let argmax = |row: ndarray::ArrayView1<f32>| {
        row.iter()
            .enumerate()
            .fold((0, f32::MIN), |m, (i, &v)| if v > m.1 { (i, v) } else { m })
            .0
    };
    let agree = a
        .rows()
        .into_iter()
        .zip(b.rows())
        .filter(|(p, q)| argmax(*p) == argmax(*q))
        .count();
    assert!(agree >= 495, "top-1 agrees on {agree} of 500 images");
    // The gradient graph stays float32 and is the source's: the same norms.
    let (ga, gb) = (
        full.grad_norms(x.view(), &y).unwrap(),
        half.grad_norms(x.view(), &y).unwrap(),
    );
    assert_eq!(ga.norms, gb.norms);
}

#[test]
fn tract_refuses_a_float16_teacher_and_says_what_runs_it() {
    let err = Teacher::load(&repo(FP16), &options(BackendChoice::Tract))
        .err()
        .expect("tract cannot run a float16 graph");
    let msg = err.to_string();
    assert!(msg.contains("fmnist-convnet3-fp16.onnx"), "{msg}");
    assert!(
        msg.contains("float16") && msg.contains("`backend` ort"),
        "{msg}"
    );
}

#[test]
fn float16_weights_must_hash_to_their_declared_value() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = decode(FP16);
    set_meta(&mut model, "converted_weights_sha256", &"0".repeat(64));
    let path = write(dir.path(), "t.onnx", &model);
    let err = Teacher::load(&path, &options(BackendChoice::Ort))
        .err()
        .expect("a wrong hash is refused")
        .to_string();
    // Refused before any backend is asked for, so tract-only machines see the same message.
    assert!(
        err.contains("converted_weights_sha256") && err.contains("t.onnx"),
        "{err}"
    );
}

#[test]
fn only_a_forward_graph_may_be_float16() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(repo(TEACHER), dir.path().join("t.onnx")).unwrap();
    let mut grad = decode("models/fmnist-convnet3.grad.onnx");
    set_meta(&mut grad, "precision", "fp16");
    write(dir.path(), "t.grad.onnx", &grad);
    let err = Teacher::load(&dir.path().join("t.onnx"), &options(BackendChoice::Tract))
        .err()
        .expect("a float16 gradient graph is refused")
        .to_string();
    assert!(
        err.contains("t.grad.onnx") && err.contains("overflow"),
        "{err}"
    );
    // An unknown precision names the values this build reads.
    let mut fwd = decode(TEACHER);
    set_meta(&mut fwd, "precision", "bf16");
    let path = write(dir.path(), "u.onnx", &fwd);
    let err = Teacher::load(&path, &options(BackendChoice::Tract))
        .err()
        .expect("bf16 is not read")
        .to_string();
    assert!(
        err.contains("\"bf16\"") && err.contains("\"fp16\""),
        "{err}"
    );
    // The float32 teacher itself still loads (the edits above were to copies).
    tract(TEACHER);
}

#[test]
fn results_record_the_teachers_precision() {
    if ort(FP16, "results_record_the_teachers_precision").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.h5");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_infoutil"));
    let run = cmd
        .args([
            "attribute",
            "--backend",
            "ort",
            "--indices",
            "0-1",
            "--budget",
            "48",
        ])
        .arg("--teacher")
        .arg(repo(FP16))
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", text(&run));
    assert_eq!(config_of(&out)["teacher_precision"], "fp16");
    // And a float32 run says fp32 (tract, no ONNX Runtime needed).
    let out32 = dir.path().join("b.h5");
    let run = infoutil(
        &[
            "attribute",
            "--indices",
            "0",
            "--budget",
            "48",
            "--out",
            out32.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(run.status.success(), "{}", text(&run));
    assert_eq!(config_of(&out32)["teacher_precision"], "fp32");
}

fn config_of(path: &std::path::Path) -> serde_json::Value {
    let f = hdf5::File::open(path).unwrap();
    serde_json::from_str(&infoutil::store::read_attr(&f, "config").unwrap()).unwrap()
}
