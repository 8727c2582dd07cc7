//! Teacher files are untrusted input: everything wrong with them is refused with an error that
//! names the file and what differs. Each case starts from a shipped teacher and breaks one thing.

use std::path::Path;

use crate::common::*;
use infoutil::teacher::{BackendChoice, CudaOptions, Device, Layout, Teacher, TeacherOptions};
use tract_onnx::pb::{ModelProto, StringStringEntryProto};

fn load_err(path: &Path) -> String {
    match Teacher::load(path, &options(BackendChoice::Tract)) {
        Ok(_) => panic!("{} loaded but should have been refused", path.display()),
        Err(e) => e.to_string(),
    }
}

/// A forward/grad pair copied into a temp folder, for tampering.
fn pair(dir: &Path) -> (ModelProto, ModelProto) {
    let (f, g) = (decode(TEACHER), decode(TEACHER_GRAD));
    write(dir, "t.onnx", &f);
    write(dir, "t.grad.onnx", &g);
    (f, g)
}

#[test]
fn an_untouched_copy_loads() {
    let dir = tempfile::tempdir().unwrap();
    pair(dir.path());
    let t = Teacher::load(&dir.path().join("t.onnx"), &options(BackendChoice::Tract)).unwrap();
    assert_eq!(t.num_classes(), 10);
    assert_eq!(t.meta.input.channels, 1);
    assert!(t.grad_meta().is_ok());
}

#[test]
fn a_file_that_is_not_onnx_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.onnx");
    std::fs::write(&path, "this is a text file, not a model\n").unwrap();
    let msg = load_err(&path);
    assert!(
        msg.contains("notes.onnx") && msg.contains("not an ONNX model"),
        "{msg}"
    );

    let cut = dir.path().join("cut.onnx");
    let bytes = std::fs::read(repo(TEACHER)).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let msg = load_err(&cut);
    assert!(msg.contains("cut.onnx"), "{msg}");
}

#[test]
fn a_missing_file_is_named() {
    let msg = load_err(Path::new("no/such/teacher.onnx"));
    assert!(msg.contains("no/such/teacher.onnx"), "{msg}");
}

#[test]
fn metadata_that_lies_about_the_weights_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut f, _) = pair(dir.path());
    set_meta(&mut f, "weights_sha256", &"0".repeat(64));
    let msg = load_err(&write(dir.path(), "t.onnx", &f));
    assert!(
        msg.contains("t.onnx") && msg.contains("weights hash to"),
        "{msg}"
    );
}

#[test]
fn a_gradient_graph_of_another_teacher_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    pair(dir.path());
    // The early checkpoint's gradient graph next to the converged forward graph.
    write(
        dir.path(),
        "t.grad.onnx",
        &decode("models/fmnist-convnet3-early.grad.onnx"),
    );
    let msg = load_err(&dir.path().join("t.onnx"));
    assert!(
        msg.contains("t.grad.onnx") && msg.contains("weights hash"),
        "{msg}"
    );
}

#[test]
fn a_class_count_mismatch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut f, mut g) = pair(dir.path());
    let nine: Vec<String> = (0..9).map(|i| format!("c{i}")).collect();
    let nine = serde_json::to_string(&nine).unwrap();
    set_meta(&mut f, "class_names", &nine);
    set_meta(&mut g, "class_names", &nine);
    write(dir.path(), "t.grad.onnx", &g);
    let msg = load_err(&write(dir.path(), "t.onnx", &f));
    assert!(
        msg.contains("10 logits") && msg.contains("9 classes"),
        "{msg}"
    );

    // Forward right, gradient graph with another class list.
    let (_, mut g) = pair(dir.path());
    set_meta(&mut g, "class_names", &nine);
    write(dir.path(), "t.grad.onnx", &g);
    let msg = load_err(&dir.path().join("t.onnx"));
    assert!(
        msg.contains("t.grad.onnx") && msg.contains("class list"),
        "{msg}"
    );
}

#[test]
fn an_input_shape_mismatch_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (mut f, _) = pair(dir.path());
    set_meta(&mut f, "input_shape", "[1, 32, 32]");
    let msg = load_err(&write(dir.path(), "t.onnx", &f));
    assert!(
        msg.contains("t.onnx") && msg.contains("[N, 1, 32, 32]"),
        "{msg}"
    );
}

#[test]
fn missing_metadata_names_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let (mut f, _) = pair(dir.path());
    f.metadata_props
        .retain(|e| e.key != "infoutil.normalization");
    let msg = load_err(&write(dir.path(), "t.onnx", &f));
    assert!(
        msg.contains("infoutil.normalization") && msg.contains("missing"),
        "{msg}"
    );
}

#[test]
fn external_data_outside_the_model_folder_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (f, _) = pair(dir.path());
    for location in ["../secret.bin", "/etc/passwd", "sub/../../x.bin"] {
        let mut m = f.clone();
        let t = &mut m.graph.as_mut().unwrap().initializer[0];
        t.raw_data.clear();
        t.data_location = Some(1);
        t.external_data = vec![StringStringEntryProto {
            key: "location".into(),
            value: location.into(),
        }];
        let msg = load_err(&write(dir.path(), "t.onnx", &m));
        assert!(
            msg.contains("outside the model's folder"),
            "{location}: {msg}"
        );
    }
}

#[test]
fn a_missing_gradient_graph_is_reported_when_gradients_are_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "alone.onnx", &decode(TEACHER));
    let t = Teacher::load(
        &dir.path().join("alone.onnx"),
        &options(BackendChoice::Tract),
    )
    .unwrap();
    let (x, labels) = mini_test(&t, 2);
    assert!(t.logits(x.view()).is_ok());
    let msg = t.grad_norms(x.view(), &labels).unwrap_err().to_string();
    assert!(
        msg.contains("alone.grad.onnx") && msg.contains("does not exist"),
        "{msg}"
    );
}

#[test]
fn cuda_is_never_a_silent_cpu_fallback() {
    let opts = TeacherOptions {
        backend: BackendChoice::Tract,
        device: Device::Cuda,
        ..TeacherOptions::default()
    };
    let msg = Teacher::load(&repo(TEACHER), &opts)
        .err()
        .expect("tract cannot do CUDA")
        .to_string();
    // Without tract-cuda in the build it says so; with it, its check fails here (no GPU).
    assert!(
        msg.contains("CPU only") || msg.contains("cannot run on CUDA"),
        "{msg}"
    );
    // With ONNX Runtime (present or not), a CPU-only build or library must refuse CUDA too.
    let opts = TeacherOptions {
        backend: BackendChoice::Auto,
        device: Device::Cuda,
        ..TeacherOptions::default()
    };
    let msg = Teacher::load(&repo(TEACHER), &opts)
        .err()
        .expect("no CUDA here")
        .to_string();
    assert!(
        msg.contains("CUDA") || msg.contains("ONNX Runtime"),
        "{msg}"
    );
    // The default build has the CUDA provider compiled in (the wheel is that build): with the
    // suite's ONNX Runtime, the CPU package's library, the refusal is the library's, not the
    // build's, and names the package that has it. (A build without `cuda` says so instead; the
    // GPU library without a GPU: tests/wheel/check.py.)
    if std::env::var_os("INFOUTIL_REQUIRE_ORT").is_some() {
        let expected = if cfg!(feature = "cuda") {
            "has no CUDA execution provider (it is a CPU build); install onnxruntime-gpu"
        } else {
            "built without the cargo feature `cuda`"
        };
        assert!(msg.contains(expected), "{msg}");
    }
}

#[test]
fn a_gpus_share_is_chosen_only_with_cuda() {
    // On the CPU a device id or memory limit is a mistake (the user meant --device cuda),
    // refused before anything loads, with the option that is missing.
    for cuda in [
        CudaOptions {
            device_id: 1,
            memory_limit_mib: None,
        },
        CudaOptions {
            device_id: 0,
            memory_limit_mib: Some(4096),
        },
    ] {
        let opts = TeacherOptions {
            backend: BackendChoice::Tract,
            cuda,
            ..TeacherOptions::default()
        };
        let msg = Teacher::load(&repo(TEACHER), &opts)
            .err()
            .unwrap()
            .to_string();
        assert!(msg.contains("need `device` cuda"), "{msg}");
    }
    let opts = TeacherOptions {
        backend: BackendChoice::Ort,
        device: Device::Cuda,
        cuda: CudaOptions {
            device_id: 0,
            memory_limit_mib: Some(0),
        },
        ..TeacherOptions::default()
    };
    let msg = Teacher::load(&repo(TEACHER), &opts)
        .err()
        .unwrap()
        .to_string();
    assert!(msg.contains("`cuda_memory_limit` 0"), "{msg}");
    // The command line says the same, in its flags.
    let dir = tempfile::tempdir().unwrap();
    let run = infoutil(&["teacher", "eval", "--cuda-device", "1"], dir.path());
    assert!(!run.status.success());
    assert!(text(&run).contains("need --device cuda"), "{}", text(&run));
}

#[test]
fn out_of_range_labels_are_refused_before_running() {
    let t = tract(TEACHER);
    let (x, _) = mini_test(&t, 2);
    let msg = t.grad_norms(x.view(), &[0, 10]).unwrap_err().to_string();
    assert!(
        msg.contains("label 10") && msg.contains("10 classes"),
        "{msg}"
    );
}

#[test]
fn a_channels_last_teacher_loads_with_its_declared_name_and_layout() {
    let dir = tempfile::tempdir().unwrap();
    // The two files may name their image input differently.
    let path = nhwc_teacher(dir.path(), "keras", "conv2d_input", "input_1");
    let t = Teacher::load(&path, &options(BackendChoice::Tract)).unwrap();
    assert_eq!(t.meta.layout, Layout::Nhwc);
    assert_eq!(t.meta.input_name, "conv2d_input");
    // input_shape stays [C, H, W] whatever the layout.
    let i = &t.meta.input;
    assert_eq!((i.channels, i.height, i.width), (1, 28, 28));
    assert!(t.grad_meta().is_ok());
    // Files without the two keys keep their defaults.
    let shipped = tract(TEACHER);
    assert_eq!(
        (shipped.meta.layout, shipped.meta.input_name.as_str()),
        (Layout::Nchw, "x")
    );
}

#[test]
fn an_unknown_layout_is_refused_with_the_accepted_values() {
    let dir = tempfile::tempdir().unwrap();
    for value in ["CHW", "nhwc", "NWHC", ""] {
        let (mut f, _) = pair(dir.path());
        set_meta(&mut f, "layout", value);
        let msg = load_err(&write(dir.path(), "t.onnx", &f));
        assert!(
            msg.contains("t.onnx")
                && msg.contains("infoutil.layout")
                && msg.contains(&format!("{value:?}"))
                && msg.contains("\"NCHW\"")
                && msg.contains("\"NHWC\""),
            "{value}: {msg}"
        );
    }
    // The gradient graph is read with the same rules.
    let (_, mut g) = pair(dir.path());
    set_meta(&mut g, "layout", "HWC");
    write(dir.path(), "t.grad.onnx", &g);
    let msg = load_err(&dir.path().join("t.onnx"));
    assert!(
        msg.contains("t.grad.onnx") && msg.contains("infoutil.layout") && msg.contains("\"HWC\""),
        "{msg}"
    );
}

/// A Keras-style graph whose metadata does not name its input, or names another one: the error
/// lists the names found and declared and says how to declare them.
#[test]
fn inputs_that_do_not_match_the_declared_name_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    pair(dir.path());
    let mut f = channels_last(&decode(TEACHER), "conv2d_input");
    set_meta(&mut f, "layout", "NHWC");
    let msg = load_err(&write(dir.path(), "t.onnx", &f));
    for want in [
        "t.onnx",
        "[\"conv2d_input\"]",
        "[\"x\"]",
        "no infoutil.input_name",
        "declare the image input's name with infoutil.input_name",
        "export/from_onnx.py",
        "export/README.md",
    ] {
        assert!(msg.contains(want), "{want:?} not in: {msg}");
    }

    // A declared name that is not the graph's.
    let (mut f, _) = pair(dir.path());
    set_meta(&mut f, "input_name", "image");
    let msg = load_err(&write(dir.path(), "t.onnx", &f));
    assert!(
        msg.contains("[\"x\"]")
            && msg.contains("[\"image\"]")
            && msg.contains("infoutil.input_name = \"image\""),
        "{msg}"
    );

    // The gradient graph's inputs are [input_name, "y"], with its own input_name.
    let path = nhwc_teacher(dir.path(), "k", "conv2d_input", "input_1");
    let mut g = decode_path(&dir.path().join("k.grad.onnx"));
    set_meta(&mut g, "input_name", "conv2d_input");
    write(dir.path(), "k.grad.onnx", &g);
    let msg = load_err(&path);
    assert!(
        msg.contains("k.grad.onnx")
            && msg.contains("[\"input_1\", \"y\"]")
            && msg.contains("[\"conv2d_input\", \"y\"]")
            && msg.contains("infoutil.input_name"),
        "{msg}"
    );
}

#[test]
fn a_layout_that_does_not_fit_the_graph_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // An NCHW graph declared NHWC.
    let (mut f, _) = pair(dir.path());
    set_meta(&mut f, "layout", "NHWC");
    let msg = load_err(&write(dir.path(), "t.onnx", &f));
    assert!(
        msg.contains("t.onnx")
            && msg.contains("[?, 1, 28, 28]")
            && msg.contains("[N, 28, 28, 1]")
            && msg.contains("layout NHWC")
            && msg.contains("infoutil.layout = \"NCHW\""),
        "{msg}"
    );
    // A channels-last graph with its name declared but not its layout.
    let mut f = channels_last(&decode(TEACHER), "conv2d_input");
    set_meta(&mut f, "input_name", "conv2d_input");
    let msg = load_err(&write(dir.path(), "t.onnx", &f));
    assert!(
        msg.contains("graph input conv2d_input")
            && msg.contains("[N, 1, 28, 28]")
            && msg.contains("layout NCHW")
            && msg.contains("infoutil.layout = \"NHWC\""),
        "{msg}"
    );
}

#[test]
fn forward_and_gradient_graph_must_agree_on_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let path = nhwc_teacher(dir.path(), "k", "conv2d_input", "conv2d_input");
    // The shipped (NCHW) gradient graph beside the channels-last forward graph.
    write(dir.path(), "k.grad.onnx", &decode(TEACHER_GRAD));
    let msg = load_err(&path);
    assert!(
        msg.contains("k.grad.onnx")
            && msg.contains("infoutil.layout")
            && msg.contains("NCHW here but NHWC in the forward graph"),
        "{msg}"
    );
}

/// `model` with every initializer (small shape tensors too) moved to `NAME.data` beside it, as
/// `onnx.save_model(..., save_as_external_data=True, size_threshold=0)` writes it.
fn external(dir: &Path, name: &str, model: &ModelProto) {
    let mut m = model.clone();
    let mut data = Vec::new();
    let location = format!("{name}.data");
    for t in &mut m.graph.as_mut().unwrap().initializer {
        assert!(!t.raw_data.is_empty(), "{} is stored raw", t.name);
        let entry = |k: &str, v: String| StringStringEntryProto {
            key: k.into(),
            value: v,
        };
        t.external_data = vec![
            entry("location", location.clone()),
            entry("offset", data.len().to_string()),
            entry("length", t.raw_data.len().to_string()),
        ];
        data.append(&mut t.raw_data);
        t.data_location = Some(1);
    }
    std::fs::write(dir.join(&location), data).unwrap();
    write(dir, name, &m);
}

#[test]
fn external_data_inside_the_model_folder_runs_on_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    external(dir.path(), "t.onnx", &decode(TEACHER));
    external(dir.path(), "t.grad.onnx", &decode(TEACHER_GRAD));
    let shipped = tract(TEACHER);
    let (x, y) = mini_test(&shipped, 16);
    let want = shipped.logits(x.view()).unwrap();
    let want_norms = shipped.grad_norms(x.view(), &y).unwrap().norms;
    let path = dir.path().join("t.onnx");
    let mut teachers = vec![Teacher::load(&path, &options(BackendChoice::Tract)).unwrap()];
    // ONNX Runtime resolves shape tensors before it loads external data: infoutil inlines it.
    teachers.extend(ort_at(
        &path,
        "external_data_inside_the_model_folder_runs_on_both_backends",
    ));
    for t in teachers {
        let got = t.logits(x.view()).unwrap();
        let diff = (&got - &want).mapv(f32::abs).fold(0.0f32, |a, &b| a.max(b));
        assert!(diff < 1e-4, "{}: logits differ by {diff}", t.backend);
        let norms = t.grad_norms(x.view(), &y).unwrap().norms;
        let rel = norms
            .iter()
            .zip(&want_norms)
            .map(|(a, b)| ((a - b) / b).abs())
            .fold(0.0f32, f32::max);
        assert!(rel < 1e-4, "{}: gradient norms differ by {rel}", t.backend);
    }
}

#[test]
fn a_declared_shorter_side_resize_is_read_and_checked_against_the_crop() {
    use infoutil::data::preprocess::Resize;
    let dir = tempfile::tempdir().unwrap();
    let (mut f, mut g) = pair(dir.path());
    let resize = r#"{"kind": "shorter_side", "size": 32}"#;
    set_meta(&mut f, "resize", resize);
    set_meta(&mut g, "resize", resize);
    write(dir.path(), "t.grad.onnx", &g);
    let path = write(dir.path(), "t.onnx", &f);
    let t = Teacher::load(&path, &options(BackendChoice::Tract)).unwrap();
    assert_eq!(t.meta.input.resize, Resize::ShorterSide { size: 32 });

    set_meta(&mut f, "resize", r#"{"kind": "shorter_side", "size": 20}"#);
    let msg = load_err(&write(dir.path(), "t.onnx", &f));
    assert!(
        msg.contains("t.onnx") && msg.contains("to 20") && msg.contains("at least 28"),
        "{msg}"
    );
    set_meta(&mut f, "resize", r#"{"kind": "squash"}"#);
    let msg = load_err(&write(dir.path(), "t.onnx", &f));
    assert!(
        msg.contains("infoutil.resize") && msg.contains("squash"),
        "{msg}"
    );
}

#[test]
fn forward_and_gradient_graph_must_agree_on_the_resize() {
    let dir = tempfile::tempdir().unwrap();
    let (mut f, _) = pair(dir.path());
    set_meta(&mut f, "resize", r#"{"kind": "shorter_side", "size": 32}"#);
    let msg = load_err(&write(dir.path(), "t.onnx", &f));
    assert!(
        msg.contains("t.grad.onnx")
            && msg.contains("does not belong to its forward graph")
            && msg.contains("ShorterSide { size: 32 }"),
        "{msg}"
    );
}
