//! What the teacher benches share: settings from the environment, the teacher to measure
//! (`INFOUTIL_BENCH_TEACHER`, else the shipped one) on a backend, and its input images.

use std::path::PathBuf;

use infoutil::data;
use infoutil::teacher::{BackendChoice, Teacher, TeacherOptions};
use ndarray::Array4;

/// A setting from the environment, else its default.
pub fn setting<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name}={v} does not parse"))
        })
        .unwrap_or(default)
}

/// `INFOUTIL_BENCH_TEACHER`, when set.
pub fn teacher_path() -> Option<std::path::PathBuf> {
    std::env::var_os("INFOUTIL_BENCH_TEACHER").map(Into::into)
}

/// The backends `INFOUTIL_BENCH_BACKENDS` (default "tract,ort") asks for, by name.
pub fn backends() -> Vec<(&'static str, BackendChoice)> {
    let wanted: String = setting("INFOUTIL_BENCH_BACKENDS", "tract,ort".to_string());
    [("tract", BackendChoice::Tract), ("ort", BackendChoice::Ort)]
        .into_iter()
        .filter(|(name, _)| wanted.split(',').any(|b| b == *name))
        .collect()
}

/// The teacher on `backend`; `None`, with a line saying why, where it cannot be loaded (no ONNX
/// Runtime here, say).
pub fn load(backend: BackendChoice) -> Option<Teacher> {
    let shipped = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/models/fmnist-convnet3.onnx"
    ));
    let path = teacher_path().unwrap_or(shipped);
    let opts = TeacherOptions {
        backend,
        ..TeacherOptions::default()
    };
    Teacher::load(&path, &opts)
        .map_err(|e| eprintln!("not measured: {backend:?}: {e}"))
        .ok()
}

/// `n` images with labels: for the shipped teacher, real embedded test images `stride` apart;
/// for another teacher, a fixed pseudo-random pattern of its input shape (throughput does not
/// depend on the content) with label 0.
pub fn images(t: &Teacher, n: usize, stride: usize) -> (Array4<f32>, Vec<usize>) {
    if teacher_path().is_some() {
        let i = &t.meta.input;
        // Values in [-2, 2) from Knuth's multiplicative hash of the element's index.
        let shape = (n, i.channels, i.height, i.width);
        let mut k = 0u64;
        let x = Array4::from_shape_simple_fn(shape, || {
            k += 1;
            (k.wrapping_mul(2_654_435_761) % 4096) as f32 / 1024.0 - 2.0
        });
        return (x, vec![0; n]);
    }
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/fashion-mnist-mini/t10k-images-idx3-ubyte.gz"
    ));
    let mut source = data::open(&path).expect("embedded data");
    let indices = (0..n).map(|i| i * stride).collect();
    let reader = data::reader::Reader::new(&t.meta.input, t.num_classes());
    let (batch, _) = reader.read_all(source.as_mut(), indices).expect("reads");
    (batch.x, batch.labels)
}
