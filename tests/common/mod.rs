//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use infoutil::data;
use infoutil::teacher::{BackendChoice, Teacher, TeacherOptions};
use ndarray::Array4;

pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub const TEACHER: &str = "models/fmnist-convnet3.onnx";
pub const EARLY: &str = "models/fmnist-convnet3-early.onnx";
pub const MINI_TEST: &str = "data/fashion-mnist-mini/t10k-images-idx3-ubyte.gz";

pub fn options(backend: BackendChoice) -> TeacherOptions {
    TeacherOptions {
        backend,
        batch_size: 32,
        ..TeacherOptions::default()
    }
}

pub fn tract(rel: &str) -> Teacher {
    Teacher::load(&repo(rel), &options(BackendChoice::Tract)).expect("shipped teacher loads")
}

/// ONNX Runtime, or None after printing a visible SKIP line. Where the test script found the
/// library (INFOUTIL_REQUIRE_ORT=1), its absence is a failure, not a skip.
pub fn ort(rel: &str, test: &str) -> Option<Teacher> {
    match Teacher::load(&repo(rel), &options(BackendChoice::Ort)) {
        Ok(t) => Some(t),
        Err(e) if std::env::var_os("INFOUTIL_REQUIRE_ORT").is_none() => {
            eprintln!("SKIP {test}: ONNX Runtime unavailable ({e})");
            None
        }
        Err(e) => panic!("{test}: ONNX Runtime is required here but failed: {e}"),
    }
}

/// The first `n` images of the embedded test subset in `teacher`'s input space, with labels.
pub fn mini_test(teacher: &Teacher, n: usize) -> (Array4<f32>, Vec<usize>) {
    let mut source = data::open(&repo(MINI_TEST)).expect("embedded data opens");
    let (x, labels) = data::read_converted(source.as_mut(), (0..n).collect(), &teacher.meta.input)
        .expect("embedded data reads");
    assert_eq!(labels.len(), n);
    (x, labels)
}

/// Largest |a - b| / max(|b|, floor) over paired values.
pub fn max_rel_err(a: &[f32], b: &[f64], floor: f64) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&a, &b)| (a as f64 - b).abs() / b.abs().max(floor))
        .fold(0.0, f64::max)
}

pub fn max_abs_err(a: &[f32], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&a, &b)| (a as f64 - b).abs())
        .fold(0.0, f64::max)
}

/// Relative L2 error ‖est − truth‖ / ‖truth‖.
pub fn rel_l2(est: &[f64], truth: &[f64]) -> f64 {
    let num: f64 = est.iter().zip(truth).map(|(a, b)| (a - b).powi(2)).sum();
    let den: f64 = truth.iter().map(|b| b * b).sum();
    (num / den).sqrt()
}
