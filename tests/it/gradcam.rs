//! Grad-CAM as the informativeness map: the shipped teachers' Grad-CAM graphs
//! (`NAME.cam.onnx`) against an identity the forward graph must satisfy, on both backends, and
//! `--attribution gradcam` through `attribute` and `distill`.

use crate::common::*;
use infoutil::base::valid::Valid;
use infoutil::data;
use infoutil::distill::{distill, DistillConfig, Method, Reuse};
use infoutil::informativeness::attribute::{informative_maps, MapOptions, Shapley};
use infoutil::informativeness::gradcam::gradcam_maps;
use infoutil::informativeness::{Attribution, CropRule};
use infoutil::progress::Silent;
use infoutil::provenance::Provenance;
use infoutil::teacher::Teacher;
use infoutil::utility::Score;
use ndarray::{Array1, Array3, Axis};

const TRAIN: &str = "data/fashion-mnist-mini/train-images-idx3-ubyte.gz";

/// ConvNet-3's head after `relu3` (average pool, flatten, linear) is linear, so the logit of
/// class y is Σ ∂logit_y/∂A · A + b_y exactly, with the same gradient for every image: a check
/// of the Grad-CAM graph by the forward graph, which computes the logits independently.
#[test]
fn the_cam_graph_accounts_for_every_logit_of_a_linear_head() {
    for rel in [TEACHER, EARLY] {
        let t = tract(rel);
        assert_eq!(t.cam_layer().unwrap(), "relu3", "{rel}");
        let (x, labels) = mini_test(&t, 24);
        let logits = t.logits(x.view()).unwrap();
        for class in [0usize, 3, 9] {
            let y = vec![class; labels.len()];
            let parts = t.cam_parts(x.view(), &y).unwrap();
            assert_eq!(parts.activations.dim(), (24, 128, 7, 7), "{rel}");
            let first = parts.gradients.index_axis(Axis(0), 0);
            let scale = first.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(scale > 0.0, "{rel}: zero gradient");
            let mut bias = Vec::new();
            for (i, (a, g)) in parts
                .activations
                .outer_iter()
                .zip(parts.gradients.outer_iter())
                .enumerate()
            {
                let spread = (&g - &first).iter().fold(0f32, |m, v| m.max(v.abs()));
                assert!(
                    spread <= 1e-5 * scale,
                    "{rel} class {class} image {i}: {spread}"
                );
                let explained: f64 = a.iter().zip(g).map(|(&a, &g)| f64::from(a * g)).sum();
                bias.push(f64::from(logits[[i, class]]) - explained);
            }
            let logit_scale = logits.iter().fold(1f32, |m, v| m.max(v.abs())) as f64;
            let (lo, hi) = bias
                .iter()
                .fold((f64::MAX, f64::MIN), |(l, h), &b| (l.min(b), h.max(b)));
            assert!(
                hi - lo <= 1e-4 * logit_scale,
                "{rel} class {class}: logit − Σ G·A ranges over {lo}..{hi}"
            );
        }
    }
}

#[test]
fn tract_and_onnx_runtime_give_the_same_gradcam_maps() {
    let Some(ort) = ort(TEACHER, "tract_and_onnx_runtime_give_the_same_gradcam_maps") else {
        return;
    };
    let t = tract(TEACHER);
    let (x, labels) = mini_test(&t, 40);
    let a = gradcam_maps(&t, x.view(), &labels, 4, &Silent).unwrap();
    let b = gradcam_maps(&ort, x.view(), &labels, 4, &Silent).unwrap();
    for (i, (a, b)) in a.outer_iter().zip(b.outer_iter()).enumerate() {
        let scale = b.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
        let err = (&a - &b).iter().fold(0f64, |m, v| m.max(v.abs())) / scale;
        assert!(err <= 1e-4, "image {i}: relative difference {err}");
    }
    // Most maps are not flat: Grad-CAM ranks the patches.
    let ranked = a.outer_iter().filter(|m| m.std(0.0) > 0.0).count();
    assert!(ranked >= 36, "only {ranked} of 40 maps rank their patches");
}

#[test]
fn a_teacher_without_a_cam_graph_is_refused_naming_the_graph_and_the_export() {
    let dir = tempfile::tempdir().unwrap();
    for f in [TEACHER, TEACHER_GRAD] {
        let name = std::path::Path::new(f).file_name().unwrap();
        std::fs::copy(repo(f), dir.path().join(name)).unwrap();
    }
    let path = dir.path().join("fmnist-convnet3.onnx");
    let t = Teacher::load(&path, &options(infoutil::teacher::BackendChoice::Tract)).unwrap();
    let (x, labels) = mini_test(&t, 2);
    let opts = MapOptions {
        attribution: Attribution::GradCam,
        shapley: &Shapley::default(),
        mean_pixel: &[0.0],
    };
    let e = informative_maps(&t, x.view(), &labels, &opts, 0, &Silent)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("fmnist-convnet3.cam.onnx") && e.contains("export/export_cam.py"),
        "{e}"
    );
    // Shapley maps need no such graph.
    let shapley = MapOptions {
        attribution: Attribution::Shapley,
        ..opts
    };
    assert!(informative_maps(&t, x.view(), &labels, &shapley, 0, &Silent).is_ok());
}

/// `distill --attribution gradcam` keeps each candidate's Grad-CAM map (what it chose crops
/// from) and records the attribution; the maps equal the library's direct computation.
#[test]
fn distill_with_gradcam_stores_the_maps_it_chose_crops_from() {
    let t = tract(TEACHER);
    let cfg = DistillConfig {
        method: Method::Infoutil,
        ipc: 1,
        factor: 1,
        candidates: 4,
        attribution: Attribution::GradCam,
        shapley: Shapley::default(),
        crops: CropRule::default(),
        score: Score::GradNorm,
        only_recognised: false,
        seed: 5,
        skip_bad: false,
        classes: Some(vec![1, 7]),
        given: Default::default(),
    };
    let mut source = data::open(&repo(TRAIN)).unwrap();
    let cfg = Valid::new(cfg).unwrap();
    let d = distill(&t, &t, source.as_mut(), &cfg, Reuse::default(), &Silent).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gradcam.h5");
    let run = Provenance::new("distill", &t, source.as_ref()).unwrap();
    d.write(&out, &t, &run).unwrap();

    let f = hdf5::File::open(&out).unwrap();
    let config: serde_json::Value =
        serde_json::from_str(&infoutil::store::read_attr(&f, "config").unwrap()).unwrap();
    assert_eq!(config["distill"]["attribution"], "gradcam");
    let index: Array1<i64> = f
        .dataset("candidates/source_index")
        .unwrap()
        .read_1d()
        .unwrap();
    let label: Array1<i64> = f.dataset("candidates/label").unwrap().read_1d().unwrap();
    let stored: Array3<f32> = f.dataset("candidates/shapley").unwrap().read().unwrap();
    assert_eq!(stored.dim(), (8, 4, 4));
    // The reader takes records in file order.
    let mut order: Vec<usize> = (0..index.len()).collect();
    order.sort_by_key(|&k| index[k]);
    let records: Vec<usize> = order.iter().map(|&k| index[k] as usize).collect();
    let reader = data::reader::Reader::new(&t.meta.input, t.num_classes());
    let x = reader.read_all(source.as_mut(), records).unwrap().0.x;
    let labels: Vec<usize> = order.iter().map(|&k| label[k] as usize).collect();
    let direct = gradcam_maps(&t, x.view(), &labels, 4, &Silent).unwrap();
    for (&k, d) in order.iter().zip(direct.outer_iter()) {
        let s = stored.index_axis(Axis(0), k);
        for (s, d) in s.iter().zip(d) {
            assert!(
                (f64::from(*s) - d).abs() <= 1e-6 * d.abs().max(1.0),
                "{s} vs {d}"
            );
        }
    }
}

/// The command line: `attribute --attribution gradcam` says which attribution made the file; a
/// Grad-CAM run with another method is refused before any work.
#[test]
fn the_command_line_records_gradcam_and_refuses_it_outside_infoutil() {
    let dir = tempfile::tempdir().unwrap();
    let out = infoutil(
        &[
            "attribute",
            "--backend",
            "tract",
            "--attribution",
            "gradcam",
            "--indices",
            "0-3",
            "--out",
            "cam.h5",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", text(&out));
    let f = hdf5::File::open(dir.path().join("cam.h5")).unwrap();
    let group = f.group("attribution").unwrap();
    assert_eq!(
        infoutil::store::read_attr(&group, "attribution").unwrap(),
        "gradcam"
    );
    let config: serde_json::Value =
        serde_json::from_str(&infoutil::store::read_attr(&f, "config").unwrap()).unwrap();
    assert_eq!(config["attribution"], "gradcam");

    let out = infoutil(
        &[
            "distill",
            "--method",
            "rded",
            "--attribution",
            "gradcam",
            "--out",
            "x.h5",
        ],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--method infoutil"), "{}", text(&out));
    assert!(!dir.path().join("x.h5").exists());
}
