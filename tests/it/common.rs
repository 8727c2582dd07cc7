//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use infoutil::data;
use infoutil::teacher::{BackendChoice, Teacher, TeacherOptions};
use ndarray::Array4;
use prost::Message;
use serde_json::Value;
use tract_onnx::pb::{ModelProto, StringStringEntryProto};

pub fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

pub const TEACHER: &str = "models/fmnist-convnet3.onnx";
pub const TEACHER_GRAD: &str = "models/fmnist-convnet3.grad.onnx";
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
    ort_at(&repo(rel), test)
}

/// The first `n` images of the embedded test subset in `teacher`'s input space, with labels.
pub fn mini_test(teacher: &Teacher, n: usize) -> (Array4<f32>, Vec<usize>) {
    let mut source = data::open(&repo(MINI_TEST)).expect("embedded data opens");
    let reader = data::reader::Reader::new(&teacher.meta.input, teacher.num_classes());
    let (batch, _) = reader
        .read_all(source.as_mut(), (0..n).collect())
        .expect("embedded data reads");
    let (x, labels) = (batch.x, batch.labels);
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

/// ONNX Runtime for the teacher at `path`, or None after printing a visible SKIP line (see
/// [`ort`]).
pub fn ort_at(path: &Path, test: &str) -> Option<Teacher> {
    match Teacher::load(path, &options(BackendChoice::Ort)) {
        Ok(t) => Some(t),
        Err(e) if std::env::var_os("INFOUTIL_REQUIRE_ORT").is_none() => {
            eprintln!("SKIP {test}: ONNX Runtime unavailable ({e})");
            None
        }
        Err(e) => panic!("{test}: ONNX Runtime is required here but failed: {e}"),
    }
}

/// A shipped ONNX file, decoded for editing.
pub fn decode(rel: &str) -> ModelProto {
    decode_path(&repo(rel))
}

pub fn decode_path(path: &Path) -> ModelProto {
    ModelProto::decode(std::fs::read(path).unwrap().as_slice()).unwrap()
}

pub fn write(dir: &Path, name: &str, model: &ModelProto) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, model.encode_to_vec()).unwrap();
    path
}

pub fn set_meta(model: &mut ModelProto, key: &str, value: &str) {
    let key = format!("infoutil.{key}");
    model.metadata_props.retain(|e| e.key != key);
    model.metadata_props.push(StringStringEntryProto {
        key,
        value: value.into(),
    });
}

/// What a Keras teacher exported to ONNX looks like, made from a shipped graph: its image input
/// `x` `[N, C, H, W]` becomes `name` `[N, H, W, C]`, and a Transpose (perm [0, 3, 1, 2]) in
/// front hands the original consumers the NCHW tensor they had. The weights are untouched, so
/// `infoutil.weights_sha256` still holds. The metadata is left alone: callers declare
/// `infoutil.layout` and `infoutil.input_name` (or, to test the errors, do not).
pub fn channels_last(model: &ModelProto, name: &str) -> ModelProto {
    use tract_onnx::pb::attribute_proto::AttributeType;
    use tract_onnx::pb::type_proto::Value as Ty;
    use tract_onnx::pb::{AttributeProto, NodeProto};

    let mut m = model.clone();
    let g = m.graph.as_mut().unwrap();
    let inner = "x_nchw";
    for node in &mut g.node {
        for i in node.input.iter_mut().filter(|i| *i == "x") {
            *i = inner.to_string();
        }
    }
    let input = g.input.iter_mut().find(|i| i.name == "x").expect("input x");
    input.name = name.to_string();
    let Some(Ty::TensorType(t)) = input.r#type.as_mut().and_then(|t| t.value.as_mut()) else {
        panic!("x is a tensor");
    };
    let dims = &mut t.shape.as_mut().expect("x has a shape").dim;
    assert_eq!(dims.len(), 4);
    let c = dims.remove(1);
    dims.push(c);
    g.node.insert(
        0,
        NodeProto {
            name: "nhwc_to_nchw".into(),
            op_type: "Transpose".into(),
            input: vec![name.into()],
            output: vec![inner.into()],
            attribute: vec![AttributeProto {
                name: "perm".into(),
                r#type: AttributeType::Ints as i32,
                ints: vec![0, 3, 1, 2],
                ..Default::default()
            }],
            ..Default::default()
        },
    );
    m
}

/// The shipped converged teacher as a channels-last pair in `dir` (`STEM.onnx`,
/// `STEM.grad.onnx`), declared with `infoutil.layout = NHWC` and the given input names (they
/// may differ between the two files). Returns the forward file's path.
pub fn nhwc_teacher(dir: &Path, stem: &str, forward_name: &str, grad_name: &str) -> PathBuf {
    let build = |rel: &str, name: &str| {
        let mut m = channels_last(&decode(rel), name);
        set_meta(&mut m, "layout", "NHWC");
        set_meta(&mut m, "input_name", name);
        m
    };
    write(
        dir,
        &format!("{stem}.grad.onnx"),
        &build(TEACHER_GRAD, grad_name),
    );
    write(dir, &format!("{stem}.onnx"), &build(TEACHER, forward_name))
}

/// Every number in a JSON value, flattened in order (reference files of nested arrays).
pub fn floats(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(items) => items.iter().flat_map(floats).collect(),
        Value::Number(n) => vec![n.as_f64().expect("number")],
        other => panic!("not a number: {other}"),
    }
}

/// The `infoutil` binary run in `dir`, as a user runs it (tract unless ONNX Runtime is asked
/// for: the environment's ORT_DYLIB_PATH is removed).
pub fn infoutil(args: &[&str], dir: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_infoutil"))
        .args(args)
        .current_dir(dir)
        .env_remove("ORT_DYLIB_PATH")
        .output()
        .expect("binary runs")
}

/// Everything a run printed, stdout then stderr.
pub fn text(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A test picture to write as PNG or JPEG: 1 (grey), 3 (RGB) or 4 (RGBA) channels, row-major.
pub struct Pixels {
    pub width: u32,
    pub height: u32,
    pub channels: usize,
    pub data: Vec<u8>,
}

impl Pixels {
    pub fn from_fn(w: u32, h: u32, channels: usize, f: impl Fn(u32, u32) -> Vec<u8>) -> Pixels {
        let data: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .flat_map(|(x, y)| f(x, y))
            .collect();
        assert_eq!(data.len(), w as usize * h as usize * channels);
        Pixels {
            width: w,
            height: h,
            channels,
            data,
        }
    }

    pub fn get(&self, x: u32, y: u32, c: usize) -> u8 {
        self.data[(y as usize * self.width as usize + x as usize) * self.channels + c]
    }

    /// PNG or JPEG by the path's extension.
    pub fn save(&self, path: &Path) {
        let ext = path.extension().unwrap().to_string_lossy().to_lowercase();
        let bytes = match ext.as_str() {
            "png" => self.png(),
            "jpg" | "jpeg" => self.jpeg(),
            other => panic!("no encoder for .{other}"),
        };
        std::fs::write(path, bytes).unwrap();
    }

    pub fn png(&self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut enc = png::Encoder::new(&mut out, self.width, self.height);
        enc.set_color(match self.channels {
            1 => png::ColorType::Grayscale,
            3 => png::ColorType::Rgb,
            4 => png::ColorType::Rgba,
            n => panic!("{n} channels"),
        });
        let mut writer = enc.write_header().unwrap();
        writer.write_image_data(&self.data).unwrap();
        writer.finish().unwrap();
        out
    }

    /// Baseline JPEG at quality 90, by jpeg-encoder (not the decoder under test).
    pub fn jpeg(&self) -> Vec<u8> {
        use jpeg_encoder::{ColorType, Encoder};
        let colour = match self.channels {
            1 => ColorType::Luma,
            3 => ColorType::Rgb,
            n => panic!("{n} channels as JPEG"),
        };
        let mut out = Vec::new();
        Encoder::new(&mut out, 90)
            .encode(&self.data, self.width as u16, self.height as u16, colour)
            .unwrap();
        out
    }
}
