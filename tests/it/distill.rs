//! `distill` end to end on tract with the shipped teacher and the embedded real data, small
//! settings: the invariants every distilled file must satisfy.

use crate::common::*;
use infoutil::base::valid::Valid;
use infoutil::data::{self, Selection};
use infoutil::distill::{
    distill, run_identity, DistillConfig, Distilled, Method, Reuse, SavedMaps,
};
use infoutil::informativeness::attribute::{Shapley, ShapleyConfig};
use infoutil::informativeness::{Attribution, CropRule};
use infoutil::progress::Silent;
use infoutil::provenance::Provenance;
use infoutil::run_identity::RunIdentity;
use infoutil::shapley::Estimator;
use infoutil::teacher::Teacher;
use infoutil::utility::Score;
use ndarray::{s, Array3};

const TRAIN: &str = "data/fashion-mnist-mini/train-images-idx3-ubyte.gz";

/// The context a distill run on the shipped training data records.
fn provenance(t: &Teacher) -> Provenance {
    Provenance::new("distill", t, data::open(&repo(TRAIN)).unwrap().as_ref()).unwrap()
}

fn config(method: Method, factor: usize, seed: u64) -> DistillConfig {
    DistillConfig {
        method,
        ipc: 2,
        factor,
        // RDED keeps one crop per candidate, so it needs IPC·factor² candidates; fewer keep the
        // tests quick on tract.
        candidates: if method == Method::Rded { 8 } else { 6 },
        attribution: Attribution::Shapley,
        // RDED and random refuse InfoUtil's options (DistillConfig::check): theirs stay default.
        shapley: Shapley::new(match method {
            Method::Infoutil => ShapleyConfig {
                budget: 48,
                estimator: Estimator::LeverageShap,
                ..ShapleyConfig::default()
            },
            _ => ShapleyConfig::default(),
        })
        .unwrap(),
        crops: CropRule::default(),
        score: Score::GradNorm,
        only_recognised: false,
        seed,
        skip_bad: false,
        classes: None,
        given: Default::default(),
    }
}

/// `cfg`, checked as a run takes it.
fn valid(cfg: &DistillConfig) -> Valid<DistillConfig> {
    Valid::new(cfg.clone()).unwrap()
}

fn run(t: &Teacher, cfg: &DistillConfig) -> Distilled {
    let mut source = data::open(&repo(TRAIN)).unwrap();
    distill(
        t,
        t,
        source.as_mut(),
        &valid(cfg),
        Reuse::default(),
        &Silent,
    )
    .unwrap()
}

fn checkpointed(cp: &infoutil::distill::Checkpoint) -> Reuse<'_> {
    Reuse {
        checkpoint: Some(cp),
        maps: None,
    }
}

/// The stored images of the records named in the provenance.
fn sources(d: &Distilled) -> std::collections::HashMap<usize, Array3<u8>> {
    let mut wanted: Vec<usize> = d.source_index.iter().map(|&i| i as usize).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let mut out = std::collections::HashMap::new();
    let mut source = data::open(&repo(TRAIN)).unwrap();
    source
        .visit(&Selection::Indices(wanted), false, &mut |r| {
            out.insert(r.index, r.image);
            Ok(())
        })
        .unwrap();
    out
}

fn check_invariants(d: &Distilled, cfg: &DistillConfig) {
    let per = cfg.factor * cfg.factor;
    assert_eq!(d.len(), 10 * cfg.ipc);
    for c in 0..10 {
        assert_eq!(
            d.labels.iter().filter(|&&l| l == c).count(),
            cfg.ipc,
            "class {c}"
        );
    }
    assert_eq!(d.images.dim(), (d.len(), 1, 28, 28));
    assert_eq!(d.source_index.dim(), (d.len(), per));
    for row in d.soft_labels.lanes(ndarray::Axis(2)) {
        assert!((row.sum() - 1.0).abs() < 1e-5 && row.iter().all(|&p| p >= 0.0));
    }
    let labels = data::open(&repo(TRAIN)).unwrap().labels().unwrap();
    let images = sources(d);
    let mut used = std::collections::HashSet::new();
    for i in 0..d.len() {
        for k in 0..per {
            let key = (
                d.source_index[[i, k]],
                d.crop_box.slice(s![i, k, ..]).to_vec(),
            );
            assert!(used.insert(key.clone()), "crop {key:?} used twice");
        }
    }
    for i in 0..d.len() {
        for k in 0..per {
            let src = d.source_index[[i, k]] as usize;
            assert_eq!(
                labels[src] as i64, d.labels[i],
                "tile ({i},{k}) comes from its own class"
            );
            let b = d.crop_box.slice(s![i, k, ..]).to_vec();
            assert!(
                b[0] >= 0 && b[1] >= 0 && b[0] < b[2] && b[1] < b[3] && b[2] <= 28 && b[3] <= 28,
                "{b:?}"
            );
            // Where the crop is exactly tile-sized, the tile must be a pixel copy of the source.
            let (th, tw) = (28 / cfg.factor, 28 / cfg.factor);
            if (b[2] - b[0]) as usize == th && (b[3] - b[1]) as usize == tw {
                let (ty, tx) = (k / cfg.factor * th, k % cfg.factor * tw);
                let tile = d.images_u8.slice(s![i, .., ty..ty + th, tx..tx + tw]);
                let want = images[&src].slice(s![
                    ..,
                    b[0] as usize..b[2] as usize,
                    b[1] as usize..b[3] as usize
                ]);
                assert_eq!(tile, want, "tile ({i},{k}) is not the crop it claims");
            }
        }
    }
}

#[test]
fn infoutil_factor_two_tiles_are_exact_copies_of_their_crops() {
    let t = tract(TEACHER);
    let cfg = config(Method::Infoutil, 2, 0);
    let d = run(&t, &cfg);
    check_invariants(&d, &cfg);
    // Stage 1 crops are 2×2 blocks of 7-px patches: 14×14 boxes on the 7-px lattice.
    for b in d
        .crop_box
        .outer_iter()
        .flat_map(|img| img.outer_iter().map(|b| b.to_vec()).collect::<Vec<_>>())
    {
        assert_eq!((b[2] - b[0], b[3] - b[1]), (14, 14));
        assert!(b[0] % 7 == 0 && b[1] % 7 == 0, "{b:?}");
    }
}

#[test]
fn same_seed_same_set_other_seed_another() {
    // Three classes: each class draws from its own seeded stream, so three show what ten would
    // (the full runs of the other tests are checked against each other too), in a third of the
    // time.
    let t = tract(TEACHER);
    let cfg = |seed| DistillConfig {
        classes: Some(vec![0, 4, 9]),
        ..config(Method::Infoutil, 1, seed)
    };
    let a = run(&t, &cfg(5));
    let b = run(&t, &cfg(5));
    assert_eq!(a.len(), 3 * 2);
    assert_eq!(a.images, b.images);
    assert_eq!(a.soft_labels, b.soft_labels);
    assert_eq!(a.source_index, b.source_index);
    let c = run(&t, &cfg(6));
    assert_ne!(a.source_index, c.source_index);
}

#[test]
fn the_three_methods_differ_where_they_should() {
    let t = tract(TEACHER);
    let random = run(&t, &config(Method::Random, 1, 1));
    check_invariants(&random, &config(Method::Random, 1, 1));
    assert!(
        random
            .crop_box
            .outer_iter()
            .all(|b| b.iter().copied().eq([0, 0, 28, 28])),
        "random: whole images"
    );

    let cfg = config(Method::Rded, 2, 1);
    let rded = run(&t, &cfg);
    check_invariants(&rded, &cfg);
    let sizes: std::collections::HashSet<(i32, i32)> = rded
        .crop_box
        .outer_iter()
        .flat_map(|img| {
            img.outer_iter()
                .map(|b| (b[2] - b[0], b[3] - b[1]))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(
        sizes.len() > 3,
        "RDED's random resized crops vary in size: {sizes:?}"
    );

    let info = run(&t, &config(Method::Infoutil, 2, 1));
    assert_ne!(info.source_index, rded.source_index);
}

#[test]
fn the_written_file_matches_the_set() {
    let t = tract(TEACHER);
    let cfg = config(Method::Infoutil, 1, 2);
    let d = run(&t, &cfg);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.h5");
    d.write(&path, &t, &provenance(&t)).unwrap();
    let f = infoutil::store::open(&path).unwrap();
    assert_eq!(
        infoutil::store::read_attr(&f, "method").unwrap(),
        "infoutil"
    );
    assert_eq!(infoutil::store::read_attr(&f, "ipc").unwrap(), "2");
    assert_eq!(
        f.dataset("images")
            .unwrap()
            .read::<f32, ndarray::Ix4>()
            .unwrap(),
        d.images
    );
    assert_eq!(
        f.dataset("provenance/source_index").unwrap().shape(),
        vec![20, 1]
    );
    let maps = f.dataset("candidates/shapley").unwrap().shape();
    assert_eq!(maps, vec![60, 4, 4], "6 candidates × 10 classes, 4×4 grid");
    assert_eq!(f.dataset("candidates/score").unwrap().shape(), vec![60, 5]);
}

#[test]
fn an_interrupted_run_resumes_to_the_same_result() {
    use infoutil::distill::Checkpoint;
    let t = tract(TEACHER);
    let cfg = config(Method::Infoutil, 1, 3);
    let dir = tempfile::tempdir().unwrap();
    let parts = dir.path().join("d.h5.parts");
    let decides = RunIdentity::of(&serde_json::json!({ "distill": cfg }), "");
    let with = |resume: bool, cfg: &DistillConfig| {
        let cp = Checkpoint::new(parts.clone(), resume, &decides).unwrap();
        let mut source = data::open(&repo(TRAIN)).unwrap();
        distill(
            &t,
            &t,
            source.as_mut(),
            &valid(cfg),
            checkpointed(&cp),
            &Silent,
        )
    };
    let full = with(false, &cfg).unwrap();
    assert_eq!(
        std::fs::read_dir(&parts).unwrap().count(),
        10,
        "one saved file per class"
    );
    // As if the run had stopped after class 4.
    for c in 5..10 {
        std::fs::remove_file(parts.join(format!("class-{c:05}.h5"))).unwrap();
    }
    let resumed = with(true, &cfg).unwrap();
    assert_eq!(resumed.resumed_classes, 5);
    assert_eq!(resumed.images, full.images);
    assert_eq!(resumed.soft_labels, full.soft_labels);
    assert_eq!(resumed.source_index, full.source_index);
    assert_eq!(resumed.crop_box, full.crop_box);

    // Saved classes of another configuration are refused, not mixed in.
    let other = RunIdentity::of(
        &serde_json::json!({ "distill": config(Method::Infoutil, 1, 4) }),
        "",
    );
    let cp = Checkpoint::new(parts.clone(), true, &other).unwrap();
    let mut source = data::open(&repo(TRAIN)).unwrap();
    let err = distill(
        &t,
        &t,
        source.as_mut(),
        &valid(&cfg),
        checkpointed(&cp),
        &Silent,
    )
    .err()
    .expect("refused")
    .to_string();
    assert!(
        err.contains("class-00000.h5") && err.contains("other options"),
        "{err}"
    );
}

#[test]
fn shards_of_classes_merge_into_the_full_run() {
    let t = tract(TEACHER);
    let dir = tempfile::tempdir().unwrap();
    let write = |cfg: &DistillConfig, name: &str| {
        let path = dir.path().join(name);
        run(&t, cfg).write(&path, &t, &provenance(&t)).unwrap();
        path
    };
    let shard = |classes: Vec<usize>, seed| DistillConfig {
        classes: Some(classes),
        ..config(Method::Random, 1, seed)
    };
    let full = write(&config(Method::Random, 1, 7), "full.h5");
    let a = write(&shard((0..4).collect(), 7), "a.h5");
    let b = write(&shard((4..10).collect(), 7), "b.h5");
    let merged = dir.path().join("merged.h5");
    // Given in the wrong order (as a glob may list shard-10 before shard-2), the merge is still
    // in class order.
    infoutil::distill::merge(&[b.clone(), a.clone()], &merged, false).unwrap();
    let (m, f) = (
        infoutil::store::open(&merged).unwrap(),
        infoutil::store::open(&full).unwrap(),
    );
    for name in ["images_uint8", "labels", "provenance/source_index"] {
        let (x, y) = (m.dataset(name).unwrap(), f.dataset(name).unwrap());
        assert_eq!(x.shape(), y.shape(), "{name}");
        assert_eq!(x.read_raw::<i64>().ok(), y.read_raw::<i64>().ok(), "{name}");
    }
    let (x, y) = (
        m.dataset("images").unwrap().read_raw::<f32>().unwrap(),
        f.dataset("images").unwrap().read_raw::<f32>().unwrap(),
    );
    assert_eq!(x, y);

    let overlap = write(&shard(vec![3, 4], 7), "c.h5");
    let err = infoutil::distill::merge(&[a.clone(), overlap], &dir.path().join("x.h5"), false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("class 3") && err.contains("more than one shard"),
        "{err}"
    );
    let other_seed = write(&shard(vec![5], 8), "d.h5");
    let err = infoutil::distill::merge(&[a.clone(), other_seed], &dir.path().join("y.h5"), false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("d.h5") && err.contains("config.distill.seed is 8 here and 7 there"),
        "{err}"
    );
    // Shards that leave a class out are refused unless asked, and nothing is written.
    let part = write(&shard(vec![4, 5, 6, 7, 8], 7), "e.h5");
    let out = dir.path().join("z.h5");
    let err = infoutil::distill::merge(&[a.clone(), part.clone()], &out, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("missing: 9") && err.contains("`allow_missing_classes`"),
        "{err}"
    );
    assert!(!out.exists());
    infoutil::distill::merge(&[a, part], &out, true).unwrap();
    let labels = infoutil::store::open(&out)
        .unwrap()
        .dataset("labels")
        .unwrap();
    let mut classes = labels.read_raw::<i64>().unwrap();
    classes.dedup();
    assert_eq!(classes, (0..9).collect::<Vec<i64>>());
}

#[test]
fn saved_shapley_maps_are_used_and_checked() {
    let t = tract(TEACHER);
    let cfg = config(Method::Infoutil, 1, 5);
    let dir = tempfile::tempdir().unwrap();
    let data_path = repo(TRAIN);
    let sha = data::fingerprint(data::open(&data_path).unwrap().as_ref()).unwrap();
    let write = |d: &Distilled, name: &str| {
        let path = dir.path().join(name);
        d.write(&path, &t, &provenance(&t)).unwrap();
        path
    };
    let first = write(&run(&t, &cfg), "first.h5");
    // Maps no teacher would give (one hot patch per candidate) prove that the saved ones are used.
    let mut fake = Array3::<f32>::zeros((60, 4, 4));
    for (k, mut m) in fake.outer_iter_mut().enumerate() {
        m[[k % 4, (k / 4) % 4]] = 1.0;
    }
    {
        let f = hdf5::File::open_rw(&first).unwrap();
        f.dataset("candidates/shapley")
            .unwrap()
            .write(&fake)
            .unwrap();
    }
    // The run identity of this run, and of the runs that differ in one thing.
    let run_of = |cfg: &DistillConfig, run: &Provenance| run_identity(run, cfg, &t, &t, None);
    let want = run_of(&cfg, &provenance(&t));
    let saved = SavedMaps::load(&first, &want).unwrap();
    assert_eq!(saved.len(), 60);
    // An ablation: another IPC and score, the same candidates and maps.
    let ablation = DistillConfig {
        ipc: 1,
        score: Score::Loss,
        ..cfg.clone()
    };
    let reuse = Reuse {
        checkpoint: None,
        maps: Some(&saved),
    };
    let mut source = data::open(&data_path).unwrap();
    let d = distill(&t, &t, source.as_mut(), &valid(&ablation), reuse, &Silent).unwrap();
    let second = write(&d, "second.h5");
    let maps: Array3<f32> = infoutil::store::open(&second)
        .unwrap()
        .dataset("candidates/shapley")
        .unwrap()
        .read()
        .unwrap();
    assert_eq!(maps, fake);

    // Maps another seed, Shapley option, dataset or backend would not give are refused, naming
    // the file.
    let refused = |want: &RunIdentity| {
        SavedMaps::load(&first, want)
            .err()
            .expect("refused")
            .to_string()
    };
    let e = refused(&run_of(
        &DistillConfig {
            seed: 6,
            ..cfg.clone()
        },
        &provenance(&t),
    ));
    assert!(
        e.contains("first.h5") && e.contains("config.distill.seed is 6 here and 5 there"),
        "{e}"
    );
    let budget = ShapleyConfig {
        budget: 64,
        ..(*cfg.shapley).clone()
    };
    let e = refused(&run_of(
        &DistillConfig {
            shapley: Shapley::new(budget).unwrap(),
            ..cfg.clone()
        },
        &provenance(&t),
    ));
    assert!(
        e.contains("Shapley options") && e.contains("budget is 64"),
        "{e}"
    );
    let test_data = repo("data/fashion-mnist-mini/t10k-images-idx3-ubyte.gz");
    let test_sha = data::fingerprint(data::open(&test_data).unwrap().as_ref()).unwrap();
    assert_ne!(test_sha, sha);
    let other_data = Provenance {
        data_sha256: test_sha,
        ..provenance(&t)
    };
    let e = refused(&run_of(&cfg, &other_data));
    assert!(e.contains("other data") && e.contains("by content"), "{e}");
    let gradcam = DistillConfig {
        attribution: Attribution::GradCam,
        ..cfg.clone()
    };
    let e = refused(&run_of(&gradcam, &provenance(&t)));
    assert!(
        e.contains("has shapley maps") && e.contains("gradcam"),
        "{e}"
    );
    let other_backend = Provenance {
        backend: "onnxruntime (cpu)".into(),
        ..provenance(&t)
    };
    let e = refused(&run_of(&cfg, &other_backend));
    assert!(
        e.contains("config.backend is") && e.contains("tract"),
        "{e}"
    );
    // What maps do not depend on never blocks: another IPC, score, label teacher, batch size.
    let early = tract("models/fmnist-convnet3-early.onnx");
    let elsewhere = Provenance {
        batch_size: 3,
        data: "/elsewhere/d.gz".into(),
        ..provenance(&t)
    };
    let ablation = DistillConfig {
        ipc: 1,
        score: Score::Loss,
        ..cfg.clone()
    };
    SavedMaps::load(
        &first,
        &run_identity(&elsewhere, &ablation, &t, &early, None),
    )
    .unwrap();
}

/// How many distilled images of each class the teacher assigns to that class (factor 1, and the
/// teacher labels them, so a soft label's arg-max is the teacher's call on the image).
fn recognised_per_class(d: &Distilled) -> Vec<usize> {
    let mut n = vec![0; 10];
    for (k, &label) in d.labels.iter().enumerate() {
        let soft = d.soft_labels.slice(s![k, 0, ..]);
        if infoutil::base::logits::argmax(soft.iter().copied()) == label as usize {
            n[label as usize] += 1;
        }
    }
    n
}

#[test]
fn only_recognised_prefers_crops_the_teacher_assigns_to_their_class() {
    let t = tract(TEACHER);
    let plain = config(Method::Infoutil, 1, 0);
    let only = DistillConfig {
        only_recognised: true,
        ..plain.clone()
    };
    let (a, b) = (run(&t, &plain), run(&t, &only));
    check_invariants(&b, &only);
    let (ra, rb) = (recognised_per_class(&a), recognised_per_class(&b));
    eprintln!("recognised per class: plain {ra:?}, only-recognised {rb:?}");
    assert!(ra.iter().zip(&rb).all(|(x, y)| x <= y), "{ra:?} vs {rb:?}");
    assert!(rb.iter().sum::<usize>() > ra.iter().sum::<usize>());
    // The option is InfoUtil's alone.
    let rded = DistillConfig {
        only_recognised: true,
        ..config(Method::Rded, 1, 0)
    };
    let e = Valid::new(rded).expect_err("refused").to_string();
    assert!(e.contains("`only_recognised`"), "{e}");
}

/// Every dataset of an HDF5 file, by path.
fn dataset_paths(group: &hdf5::Group, prefix: &str, out: &mut Vec<String>) {
    for name in group.member_names().unwrap() {
        let path = format!("{prefix}/{name}");
        if let Ok(g) = group.group(&name) {
            dataset_paths(&g, &path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn a_distilled_file_holds_exactly_the_schemas_datasets_and_merge_keeps_them_all() {
    use infoutil::store::schema::distilled;
    let t = tract(TEACHER);
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(Method::Infoutil, 1, 3);
    let write = |classes: Vec<usize>, name: &str| {
        let cfg = DistillConfig {
            classes: Some(classes),
            ..cfg.clone()
        };
        let path = dir.path().join(name);
        run(&t, &cfg).write(&path, &t, &provenance(&t)).unwrap();
        path
    };
    let (a, b) = (
        write((0..5).collect(), "a.h5"),
        write((5..10).collect(), "b.h5"),
    );
    let merged = dir.path().join("m.h5");
    infoutil::distill::merge(&[a.clone(), b], &merged, false).unwrap();
    let mut want: Vec<String> = distilled::ALL.iter().map(|f| f.path.to_string()).collect();
    want.sort();
    for file in [&a, &merged] {
        let f = infoutil::store::open(file).unwrap();
        let mut got = Vec::new();
        dataset_paths(&f, "", &mut got);
        got.sort();
        assert_eq!(got, want, "{}", file.display());
        for field in &distilled::ALL {
            let ds = f.dataset(field.name()).unwrap();
            let layout = infoutil::store::read_attr(&ds, "layout").unwrap();
            assert_eq!(layout, field.layout, "{}", field.path);
        }
    }
    // The file states the options it was made with, from the set, not from the caller.
    let f = infoutil::store::open(&write(vec![0], "bare.h5")).unwrap();
    assert_eq!(
        infoutil::store::read_attr(&f, "ipc").unwrap(),
        cfg.ipc.to_string()
    );
    assert_eq!(
        infoutil::store::read_attr(&f, "method").unwrap(),
        "infoutil"
    );
    // One spelling: the configuration names the estimator as the command line does.
    let f = infoutil::store::open(&merged).unwrap();
    let config: serde_json::Value =
        serde_json::from_str(&infoutil::store::read_attr(&f, "config").unwrap()).unwrap();
    assert_eq!(config["distill"]["shapley"]["estimator"], "leverage");
    // The label teacher is also recorded relative to the file's folder, so a reader elsewhere
    // finds it (scripts/train_student.py tries that first).
    let f = infoutil::store::open(&a).unwrap();
    let config: serde_json::Value =
        serde_json::from_str(&infoutil::store::read_attr(&f, "config").unwrap()).unwrap();
    let rel = config["label_teacher_from_output"].as_str().unwrap();
    assert!(rel.starts_with(".."), "{rel}");
    let recorded = config["label_teacher"].as_str().unwrap();
    assert_eq!(
        dir.path().join(rel).canonicalize().unwrap(),
        std::path::Path::new(recorded).canonicalize().unwrap()
    );
}
