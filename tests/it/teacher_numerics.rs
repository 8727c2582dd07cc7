//! The shipped teachers on both backends against an independent PyTorch reference
//! (tests/data/fmnist_torch_reference.json, made by export/make_reference.py with `torch.func`
//! per-sample gradients), and the two backends against each other.

use crate::common::*;
use infoutil::teacher::Teacher;
use serde_json::Value;

const TEACHERS: [(&str, &str); 2] = [
    ("fmnist-convnet3", TEACHER),
    ("fmnist-convnet3-early", EARLY),
];

fn reference(name: &str) -> Value {
    let raw = std::fs::read_to_string(repo("tests/data/fmnist_torch_reference.json"))
        .expect("reference file present");
    let all: Value = serde_json::from_str(&raw).expect("valid JSON");
    all["teachers"][name].clone()
}

/// Logits within 1e-4 absolute and gradient norms (full and per tensor) within 1e-4 relative
/// of PyTorch, on the first 64 embedded real test images.
fn check_against_torch(teacher: &Teacher, name: &str) {
    let want = reference(name);
    let n = want["labels"].as_array().expect("labels").len();
    let (x, labels) = mini_test(teacher, n);
    let want_labels: Vec<usize> = floats(&want["labels"])
        .iter()
        .map(|&v| v as usize)
        .collect();
    assert_eq!(labels, want_labels, "{name}: same images in the same order");

    let logits = teacher.logits(x.view()).unwrap();
    let err = max_abs_err(logits.as_slice().unwrap(), &floats(&want["logits"]));
    assert!(
        err <= 1e-4,
        "{name} on {}: logits differ from PyTorch by {err:e}",
        teacher.backend
    );

    let g = teacher.grad_norms(x.view(), &labels).unwrap();
    let want_norms = floats(&want["grad_norms"]);
    let err = max_rel_err(g.norms.as_slice().unwrap(), &want_norms, 1e-3);
    assert!(
        err <= 1e-4,
        "{name} on {}: gradient norms differ from torch.func by {err:e} (relative)",
        teacher.backend
    );

    // Per-tensor squared norms, relative to each sample's total squared norm.
    let want_sq = floats(&want["sqnorms"]);
    let p = g.sqnorms.ncols();
    assert_eq!(
        want_sq.len(),
        n * p,
        "{name}: one column per parameter tensor"
    );
    for (i, row) in g.sqnorms.rows().into_iter().enumerate() {
        let total = want_norms[i].powi(2).max(1e-6);
        for (j, &v) in row.iter().enumerate() {
            let e = (v as f64 - want_sq[i * p + j]).abs() / total;
            assert!(
                e <= 1e-4,
                "{name}: sqnorms[{i}, {j}] off by {e:e} of the total"
            );
        }
    }
}

#[test]
fn tract_matches_pytorch() {
    for (name, rel) in TEACHERS {
        check_against_torch(&tract(rel), name);
    }
}

#[test]
fn ort_matches_pytorch() {
    for (name, rel) in TEACHERS {
        if let Some(t) = ort(rel, "ort_matches_pytorch") {
            check_against_torch(&t, name);
        }
    }
}

/// The bar: ORT and tract agree within 1e-4 (absolute on logits, relative on gradient
/// norms) on real images, over more images than the reference holds.
///
/// Gradient norms are discontinuous where a ReLU input is 0. When an input sits within float32
/// noise of 0 (image 99 of the embedded test set has a relu3 input of 3e-7 in PyTorch), the two
/// backends may take different sides of the kink and their norms differ by ~1e-3 although their
/// logits agree to 3e-5. So: every image within 1e-2, and at least 99 % within 1e-4.
#[test]
fn ort_and_tract_agree_on_real_images() {
    for (_, rel) in TEACHERS {
        let Some(o) = ort(rel, "ort_and_tract_agree_on_real_images") else {
            return;
        };
        let t = tract(rel);
        let (x, labels) = mini_test(&t, 300);
        let (lo, lt) = (o.logits(x.view()).unwrap(), t.logits(x.view()).unwrap());
        let err = (&lo - &lt).mapv(f32::abs).fold(0.0f32, |a, &b| a.max(b));
        assert!(err <= 1e-4, "{rel}: logits differ by {err:e}");
        let go = o.grad_norms(x.view(), &labels).unwrap();
        let gt = t.grad_norms(x.view(), &labels).unwrap();
        let rel_err: Vec<f64> = go
            .norms
            .iter()
            .zip(&gt.norms)
            .map(|(&a, &b)| (a as f64 - b as f64).abs() / (b as f64).abs().max(1e-3))
            .collect();
        let worst = rel_err.iter().copied().fold(0.0, f64::max);
        let within = rel_err.iter().filter(|&&e| e <= 1e-4).count();
        assert!(
            worst <= 1e-2,
            "{rel}: gradient norms differ by {worst:e} (relative)"
        );
        assert!(
            within * 100 >= 99 * rel_err.len(),
            "{rel}: only {within} of {} images within 1e-4",
            rel_err.len()
        );
    }
}

/// Batching is an implementation detail: any batch size gives the same numbers.
#[test]
fn batch_size_does_not_change_results() {
    let t1 = Teacher::load(
        &repo(TEACHER),
        &infoutil::teacher::TeacherOptions {
            batch_size: 7,
            ..options(infoutil::teacher::BackendChoice::Tract)
        },
    )
    .unwrap();
    let t2 = tract(TEACHER);
    let (x, labels) = mini_test(&t1, 50);
    let d = (&t1.logits(x.view()).unwrap() - &t2.logits(x.view()).unwrap()).mapv(f32::abs);
    assert!(
        d.iter().all(|&v| v <= 1e-5),
        "max {}",
        d.fold(0.0f32, |a, &b| a.max(b))
    );
    let (a, b) = (
        t1.grad_norms(x.view(), &labels).unwrap(),
        t2.grad_norms(x.view(), &labels).unwrap(),
    );
    assert_eq!(a.norms.len(), 50);
    assert!(a
        .norms
        .iter()
        .zip(&b.norms)
        .all(|(p, q)| (p - q).abs() <= 1e-5 * q.abs().max(1e-3)));
}

/// Several ONNX Runtime sessions running batches at once (`--ort-sessions`) give the numbers
/// one session gives, in the same order.
#[test]
fn concurrent_ort_sessions_do_not_change_results() {
    let test = "concurrent_ort_sessions_do_not_change_results";
    let Some(one) = ort(TEACHER, test) else {
        return;
    };
    let opts = infoutil::teacher::TeacherOptions {
        ort_sessions: 3,
        batch_size: 8,
        ..options(infoutil::teacher::BackendChoice::Ort)
    };
    let three = Teacher::load(&repo(TEACHER), &opts).unwrap();
    assert_eq!(three.concurrent_runs(), 3);
    let (x, labels) = mini_test(&one, 64);
    let d = (&one.logits(x.view()).unwrap() - &three.logits(x.view()).unwrap()).mapv(f32::abs);
    assert!(
        d.iter().all(|&v| v <= 1e-5),
        "max {}",
        d.fold(0.0f32, |a, &b| a.max(b))
    );
    let (a, b) = (
        one.grad_norms(x.view(), &labels).unwrap(),
        three.grad_norms(x.view(), &labels).unwrap(),
    );
    assert!(a
        .norms
        .iter()
        .zip(&b.norms)
        .all(|(p, q)| (p - q).abs() <= 1e-5 * q.abs().max(1e-3)));
    let bad = infoutil::teacher::TeacherOptions {
        ort_sessions: 0,
        ..opts
    };
    let e = Teacher::load(&repo(TEACHER), &bad)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("`ort_sessions` 0"), "{e}");
}

/// The full-norm output is the square root of the per-tensor sum, and the last-layer columns
/// named in the metadata exist: what the last-layer ablation will rely on.
#[test]
fn grad_outputs_are_consistent() {
    let t = tract(TEACHER);
    let meta = t.grad_meta().unwrap().clone();
    assert!(!meta.last_layer_params.is_empty());
    let (x, labels) = mini_test(&t, 20);
    let g = t.grad_norms(x.view(), &labels).unwrap();
    assert_eq!(g.sqnorms.ncols(), meta.param_names.len());
    for (n, row) in g.norms.iter().zip(g.sqnorms.rows()) {
        let s: f32 = row.sum();
        assert!((n * n - s).abs() <= 1e-4 * s.max(1e-6), "{n}² vs Σ {s}");
    }
}

/// A channels-last teacher (the shipped one behind a Transpose, input `[N, 28, 28, 1]` named
/// like a Keras export, the gradient graph's input named differently) gives the shipped
/// teacher's logits, gradient norms and per-tensor squared norms to 1e-5 on the same backend:
/// the teacher permutes the library's NCHW batches itself.
fn check_nhwc_equals_original(nhwc: &Teacher, original: &Teacher, n_logits: usize, n_grad: usize) {
    assert_eq!(nhwc.meta.layout, infoutil::teacher::Layout::Nhwc);
    let (x, labels) = mini_test(original, n_logits);
    let (a, b) = (
        nhwc.logits(x.view()).unwrap(),
        original.logits(x.view()).unwrap(),
    );
    assert_eq!(a.dim(), (n_logits, 10));
    let err = (&a - &b).mapv(f32::abs).fold(0.0f32, |m, &v| m.max(v));
    assert!(
        err <= 1e-5,
        "{}: NHWC logits differ from the original's by {err:e}",
        nhwc.backend
    );

    let x = x.slice(ndarray::s![..n_grad, .., .., ..]);
    let (ga, gb) = (
        nhwc.grad_norms(x, &labels[..n_grad]).unwrap(),
        original.grad_norms(x, &labels[..n_grad]).unwrap(),
    );
    let want: Vec<f64> = gb.norms.iter().map(|&v| v as f64).collect();
    let err = max_rel_err(ga.norms.as_slice().unwrap(), &want, 1e-3);
    assert!(
        err <= 1e-5,
        "{}: NHWC gradient norms differ from the original's by {err:e} (relative)",
        nhwc.backend
    );
    assert_eq!(ga.sqnorms.dim(), gb.sqnorms.dim());
    for (i, (ra, rb)) in ga
        .sqnorms
        .rows()
        .into_iter()
        .zip(gb.sqnorms.rows())
        .enumerate()
    {
        let total = rb.sum().max(1e-6);
        for (j, (p, q)) in ra.iter().zip(rb).enumerate() {
            let e = (p - q).abs() / total;
            assert!(
                e <= 1e-5,
                "{}: NHWC sqnorms[{i}, {j}] off by {e:e} of the total",
                nhwc.backend
            );
        }
    }
}

#[test]
fn an_nhwc_teacher_equals_the_original_on_tract() {
    let dir = tempfile::tempdir().unwrap();
    let path = nhwc_teacher(dir.path(), "keras", "conv2d_input", "input_1");
    let nhwc = Teacher::load(&path, &options(infoutil::teacher::BackendChoice::Tract)).unwrap();
    check_nhwc_equals_original(&nhwc, &tract(TEACHER), 1000, 100);
}

#[test]
fn an_nhwc_teacher_equals_the_original_on_ort() {
    let test = "an_nhwc_teacher_equals_the_original_on_ort";
    let Some(original) = ort(TEACHER, test) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = nhwc_teacher(dir.path(), "keras", "conv2d_input", "input_1");
    // ONNX Runtime loaded for the shipped teacher: a failure now is the NHWC teacher's, never
    // a skip.
    let nhwc = Teacher::load(&path, &options(infoutil::teacher::BackendChoice::Ort))
        .unwrap_or_else(|e| panic!("{test}: ONNX Runtime does not load the NHWC teacher: {e}"));
    check_nhwc_equals_original(&nhwc, &original, 1000, 1000);
}
