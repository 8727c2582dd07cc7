//! One run identity (issue 32, item 6; `src/run_identity.rs`) for `--resume`, `merge` and
//! `--maps-from` alike: what changes the bytes blocks all three (the label teacher's content
//! included), what does not (batch size, where the files were, the working folder) blocks none,
//! and an option the method ignores is refused before any work.

use std::path::Path;

use crate::common::*;
use infoutil::base::valid::Valid;
use infoutil::data;
use infoutil::distill::{distill, run_identity, Checkpoint, DistillConfig, Method, Reuse};
use infoutil::informativeness::attribute::{Shapley, ShapleyConfig};
use infoutil::informativeness::{Attribution, CropRule};
use infoutil::progress::Silent;
use infoutil::provenance::Provenance;
use infoutil::utility::Score;

const TRAIN: &str = "data/fashion-mnist-mini/train-images-idx3-ubyte.gz";

fn random(classes: Vec<usize>) -> DistillConfig {
    DistillConfig {
        method: Method::Random,
        ipc: 1,
        factor: 1,
        candidates: 300,
        attribution: Attribution::Shapley,
        shapley: Shapley::new(ShapleyConfig::default()).unwrap(),
        crops: CropRule::default(),
        score: Score::GradNorm,
        only_recognised: false,
        seed: 1,
        skip_bad: false,
        classes: Some(classes),
        given: Default::default(),
    }
}

#[test]
fn options_a_method_ignores_are_refused_naming_them() {
    let dir = tempfile::tempdir().unwrap();
    for (args, named) in [
        (
            &["--method", "random", "--budget", "64"][..],
            "--budget 64: --method random",
        ),
        (
            &["--method", "rded", "--alpha", "0.5", "--score", "loss"],
            "--alpha 0.5, --score loss",
        ),
        (
            &["--method", "random", "--grid", "2", "--crop-span", "1"],
            "--grid 2, --crop-span 1",
        ),
        (
            &["--attribution", "gradcam", "--budget", "64"],
            "--attribution gradcam does not use it",
        ),
        // Given at any value, the default's included: what was given is refused, not what
        // differs from a default (--candidates and --crops-per-image have defaults that depend
        // on other options, so a comparison could not tell them).
        (
            &["--method", "random", "--candidates", "50"],
            "--candidates 50: --method random",
        ),
        (
            &["--method", "random", "--candidates", "300"],
            "--candidates 300: --method random",
        ),
        (
            &["--method", "random", "--crops-per-image", "5"],
            "--crops-per-image 5: --method random",
        ),
        (
            &[
                "--method",
                "rded",
                "--attribution",
                "shapley",
                "--budget",
                "128",
            ],
            "--attribution shapley, --budget 128: --method rded does not use them",
        ),
        (
            &["--method", "rded", "--maps-from", "m.h5"],
            "--maps-from: --method rded",
        ),
        (
            &["--method", "rded", "--only-recognised"],
            "--only-recognised: --method rded",
        ),
    ] {
        let mut argv = vec!["distill", "--backend", "tract", "--out", "x.h5"];
        argv.extend_from_slice(args);
        let out = infoutil(&argv, dir.path());
        let t = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {t}");
        assert!(t.contains(named) && t.contains("leave"), "{args:?}: {t}");
        assert!(!dir.path().join("x.h5").exists());
    }
}

/// The declaration agrees with what the methods do: every option random and RDED do not read
/// (set here without being marked given, as a file read back would hold it) leaves their
/// output as it was, to the byte, while one RDED reads (`per_image`) changes its crops.
#[test]
fn options_a_method_does_not_read_change_nothing_of_its_output() {
    use infoutil::distill::Opt;
    use infoutil::informativeness::{Baseline, Value};
    use infoutil::shapley::Estimator;
    let t = tract(TEACHER);
    let go = |cfg: &DistillConfig| {
        let mut source = data::open(&repo(TRAIN)).unwrap();
        let cfg = Valid::new(cfg.clone()).unwrap();
        let d = distill(&t, &t, source.as_mut(), &cfg, Reuse::default(), &Silent).unwrap();
        (d.images_u8, d.soft_logits, d.source_index, d.crop_box)
    };
    let changed = |base: &DistillConfig, opt: Opt| {
        let mut c = base.clone();
        let mut sh = ShapleyConfig::default();
        match opt {
            Opt::Candidates => c.candidates = 5,
            Opt::Attribution => c.attribution = Attribution::GradCam,
            Opt::Grid => sh.grid = 2,
            Opt::Budget => sh.budget = 64,
            Opt::Estimator => sh.estimator = Estimator::Permutation,
            Opt::Baseline => sh.baseline = Baseline::Black,
            Opt::Value => sh.value = Value::Prob,
            Opt::Alpha => c.crops.alpha = 0.5,
            Opt::Span => c.crops.span = 1,
            Opt::PerImage => c.crops.per_image = 3,
            Opt::Score => c.score = Score::Loss,
            // A flag that is on is given (refused); saved maps are an input, tested by name.
            Opt::OnlyRecognised | Opt::MapsFrom => return None,
        }
        c.shapley = Shapley::new(sh).unwrap();
        Some(c)
    };
    let rded = DistillConfig {
        method: Method::Rded,
        candidates: 4,
        crops: CropRule {
            per_image: 2,
            ..CropRule::default()
        },
        ..random(vec![0, 3])
    };
    for base in [random(vec![0, 3]), rded.clone()] {
        let reads = base.method.reads(base.attribution);
        let reference = go(&base);
        for opt in Opt::ALL.into_iter().filter(|o| !reads.contains(o)) {
            if let Some(c) = changed(&base, opt) {
                assert!(
                    go(&c) == reference,
                    "{:?}: {opt:?} changed the output",
                    base.method
                );
            }
        }
    }
    let more_crops = changed(&rded, Opt::PerImage).unwrap();
    assert!(go(&more_crops).3 != go(&rded).3, "RDED reads per_image");
}

/// Shards made with other batch sizes, from another folder with relative paths, merge; a shard
/// with soft labels from another teacher does not, naming the label teacher's hash.
#[test]
fn merge_ignores_batch_size_and_paths_but_not_the_label_teacher() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("elsewhere")).unwrap();
    for f in [
        TEACHER,
        TEACHER_GRAD,
        EARLY,
        "models/fmnist-convnet3-early.grad.onnx",
    ] {
        let name = Path::new(f).file_name().unwrap();
        std::fs::copy(repo(f), d.join("elsewhere").join(name)).unwrap();
    }
    let (teacher, data) = (repo(TEACHER), repo(TRAIN));
    let (teacher, data) = (teacher.to_str().unwrap(), data.to_str().unwrap());
    let common = [
        "distill",
        "--backend",
        "tract",
        "--method",
        "random",
        "--ipc",
        "1",
    ];
    let shard = |cwd: &Path, extra: &[&str]| {
        let mut argv = common.to_vec();
        argv.extend_from_slice(extra);
        let out = infoutil(&argv, cwd);
        assert!(out.status.success(), "{extra:?}: {}", text(&out));
    };
    let a = d.join("a.h5");
    let a = a.to_str().unwrap();
    shard(
        d,
        &[
            "--teacher",
            teacher,
            "--data",
            data,
            "--classes",
            "0-4",
            "--batch-size",
            "8",
            "--out",
            a,
        ],
    );
    // The same teacher package copied elsewhere, named by a relative path, another batch size.
    let b = d.join("b.h5");
    let b = b.to_str().unwrap();
    let here = [
        "--teacher",
        "fmnist-convnet3.onnx",
        "--data",
        data,
        "--classes",
        "5-9",
    ];
    shard(
        &d.join("elsewhere"),
        &[&here[..], &["--batch-size", "64", "--out", b]].concat(),
    );
    let out = infoutil(&["merge", a, b, "--out", "m.h5"], d);
    assert!(out.status.success(), "{}", text(&out));
    // Soft labels from the converged teacher instead of the early one (IPC 1's default).
    let c = d.join("c.h5");
    let c = c.to_str().unwrap();
    shard(
        d,
        &[
            "--teacher",
            teacher,
            "--data",
            data,
            "--classes",
            "5-9",
            "--label-teacher",
            teacher,
            "--out",
            c,
        ],
    );
    let out = infoutil(&["merge", a, c, "--out", "n.h5"], d);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    assert!(
        t.contains("c.h5") && t.contains("config.label_teacher_sha256 is"),
        "{t}"
    );
}

/// `--resume` through the same identity: another batch size resumes every class; another label
/// teacher or backend is refused.
#[test]
fn resume_ignores_batch_size_but_not_the_label_teacher_or_backend() {
    let (t, early) = (tract(TEACHER), tract(EARLY));
    let cfg = random(vec![0, 1, 2]);
    let dir = tempfile::tempdir().unwrap();
    let parts = dir.path().join("d.h5.parts");
    let run = Provenance::new("distill", &t, data::open(&repo(TRAIN)).unwrap().as_ref()).unwrap();
    let go = |resume: bool, run: &Provenance, labels| {
        let identity = run_identity(run, &cfg, &t, labels, None);
        let cp = Checkpoint::new(parts.clone(), resume, &identity).unwrap();
        let mut source = data::open(&repo(TRAIN)).unwrap();
        let reuse = Reuse {
            checkpoint: Some(&cp),
            maps: None,
        };
        distill(
            &t,
            labels,
            source.as_mut(),
            &Valid::new(cfg.clone()).unwrap(),
            reuse,
            &Silent,
        )
    };
    go(false, &run, &early).unwrap();
    let other_batch = Provenance {
        batch_size: 7,
        ..run.clone()
    };
    assert_eq!(go(true, &other_batch, &early).unwrap().resumed_classes, 3);
    let e = go(true, &run, &t).err().expect("refused").to_string();
    assert!(
        e.contains("class-00000.h5") && e.contains("other options"),
        "{e}"
    );
    let ort = Provenance {
        backend: "onnxruntime (cpu)".into(),
        ..run.clone()
    };
    let e = go(true, &ort, &early).err().expect("refused").to_string();
    assert!(e.contains("class-00000.h5"), "{e}");
}
