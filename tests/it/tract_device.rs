//! `--backend tract --device cuda` (src/teacher/tract_device.rs) without a GPU: tract's CPU
//! runtime stands in for tract-cuda (INFOUTIL_TRACT_CUDA_STANDIN=cpu), so the engine's planning
//! per input shape, its symbolic fallback, its derived (Shapley game) graphs and its outputs are
//! checked against tract's own CPU engine here; only the CUDA transform itself needs a GPU
//! (benches/gpu/run.sh).

use std::path::Path;

use ndarray::{Array1, Array2, ArrayD};

use crate::common::*;

/// The binary in `dir` with tract's CPU runtime standing in for CUDA.
fn stand_in(args: &[&str], dir: &Path) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_infoutil"))
        .args(args)
        .current_dir(dir)
        .env_remove("ORT_DYLIB_PATH")
        .env("INFOUTIL_TRACT_CUDA_STANDIN", "cpu")
        .output()
        .expect("binary runs")
}

fn read<D: ndarray::Dimension>(path: &Path, name: &str) -> ndarray::Array<f32, D> {
    hdf5::File::open(path)
        .unwrap()
        .dataset(name)
        .unwrap()
        .read::<f32, D>()
        .unwrap()
}

/// The first `n` embedded test images as an idx pair in `dir`; the images' path.
fn first_test_images(dir: &Path, n: usize) -> String {
    use std::io::Read;
    let read = |name: &str, header: usize, size: usize| {
        let mut v = Vec::new();
        let f = std::fs::File::open(repo(&format!("data/fashion-mnist-mini/{name}"))).unwrap();
        flate2::read::GzDecoder::new(f).read_to_end(&mut v).unwrap();
        v.truncate(header + n * size);
        v[4..8].copy_from_slice(&(n as u32).to_be_bytes());
        v
    };
    let labels = read("t10k-labels-idx1-ubyte.gz", 8, 1);
    std::fs::write(dir.join("sub-labels-idx1-ubyte"), labels).unwrap();
    let path = dir.join("sub-images-idx3-ubyte");
    std::fs::write(&path, read("t10k-images-idx3-ubyte.gz", 16, 784)).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn the_device_engine_gives_tract_cpu_logits_and_gradient_norms() {
    let dir = tempfile::tempdir().unwrap();
    let data = first_test_images(dir.path(), 200);
    // 200 images in batches of 96: two shapes (96, then 8), so two plans.
    let dev = stand_in(
        &[
            "teacher",
            "eval",
            "--data",
            &data,
            "--backend",
            "tract",
            "--device",
            "cuda",
            "--batch-size",
            "96",
            "--out",
            "dev.h5",
        ],
        dir.path(),
    );
    let t = text(&dev);
    assert!(dev.status.success(), "{t}");
    assert!(
        t.contains("tract (cpu runtime standing in for cuda)"),
        "{t}"
    );
    // The placement note names the graph and counts its operations.
    assert!(
        t.contains("note: tract on cpu: ") && t.contains("fmnist-convnet3.grad.onnx"),
        "{t}"
    );
    let cpu = infoutil(
        &[
            "teacher",
            "eval",
            "--data",
            &data,
            "--backend",
            "tract",
            "--out",
            "cpu.h5",
        ],
        dir.path(),
    );
    assert!(cpu.status.success(), "{}", text(&cpu));
    let (a, b): (Array2<f32>, Array2<f32>) = (
        read(&dir.path().join("dev.h5"), "logits"),
        read(&dir.path().join("cpu.h5"), "logits"),
    );
    assert_eq!(a.shape(), [200, 10]);
    let dlog = (&a - &b).iter().fold(0f32, |m, d| m.max(d.abs()));
    assert!(dlog <= 1e-5, "max |Δlogit| {dlog}");
    let (ga, gb): (Array1<f32>, Array1<f32>) = (
        read(&dir.path().join("dev.h5"), "grad_norms"),
        read(&dir.path().join("cpu.h5"), "grad_norms"),
    );
    let rel = ga
        .iter()
        .zip(&gb)
        .fold(0f32, |m, (x, y)| m.max((x - y).abs() / y.abs().max(1e-12)));
    assert!(rel <= 1e-5, "gradient norms differ by {rel} relative");
}

#[test]
fn the_device_engine_runs_the_shapley_game_graph_like_tract_cpu() {
    let dir = tempfile::tempdir().unwrap();
    let args = |out: &'static str| {
        vec![
            "attribute",
            "--indices",
            "0-2",
            "--budget",
            "64",
            "--backend",
            "tract",
            "--out",
            out,
        ]
    };
    let mut dev_args = args("dev.h5");
    dev_args.extend(["--device", "cuda", "--batch-size", "100"]);
    let dev = stand_in(&dev_args, dir.path());
    assert!(dev.status.success(), "{}", text(&dev));
    let cpu = infoutil(&args("cpu.h5"), dir.path());
    assert!(cpu.status.success(), "{}", text(&cpu));
    let (a, b): (ArrayD<f32>, ArrayD<f32>) = (
        read(&dir.path().join("dev.h5"), "attribution/shapley"),
        read(&dir.path().join("cpu.h5"), "attribution/shapley"),
    );
    assert_eq!(a.shape(), b.shape());
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs()));
    let diff = (&a - &b).iter().fold(0f32, |m, d| m.max(d.abs()));
    assert!(
        scale > 0.1 && diff <= 1e-5 * scale,
        "max |Δφ| {diff}, max |φ| {scale}"
    );
}

#[test]
fn tract_on_cuda_is_refused_with_the_reason_where_it_cannot_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = infoutil(
        &[
            "teacher",
            "eval",
            "--backend",
            "tract",
            "--device",
            "cuda",
            "--no-grad-norms",
        ],
        dir.path(),
    );
    let t = text(&out);
    assert!(!out.status.success() && !t.contains("top-1"), "{t}");
    if cfg!(feature = "cuda-tract") {
        // Built with tract-cuda: no GPU on the machines that run the tests, so its check fails.
        assert!(t.contains("cannot run on CUDA"), "{t}");
    } else {
        assert!(t.contains("--features cuda-tract"), "{t}");
    }
    // ONNX Runtime's options for a GPU's share are not tract's.
    let out = stand_in(
        &[
            "teacher",
            "eval",
            "--backend",
            "tract",
            "--device",
            "cuda",
            "--cuda-device",
            "1",
        ],
        dir.path(),
    );
    assert!(
        text(&out).contains("CUDA_VISIBLE_DEVICES"),
        "{}",
        text(&out)
    );
    let out = stand_in(
        &[
            "teacher",
            "eval",
            "--backend",
            "tract",
            "--device",
            "cuda",
            "--cuda-memory-limit",
            "512",
        ],
        dir.path(),
    );
    assert!(text(&out).contains("--cuda-memory-limit"), "{}", text(&out));
}
