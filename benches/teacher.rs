//! Teacher throughput on both backends, side by side in one run: logits and per-sample gradient
//! norms for 256 real embedded Fashion-MNIST test images.
//!
//!     ORT_DYLIB_PATH=… cargo bench --bench teacher
//!
//! Without ONNX Runtime only tract is measured (and a line says so).

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use infoutil::data;
use infoutil::teacher::{BackendChoice, Teacher, TeacherOptions};
use ndarray::Array4;

const N: usize = 256;

fn images(t: &Teacher) -> (Array4<f32>, Vec<usize>) {
    let path = infoutil::paths::shipped(infoutil::paths::DEFAULT_TEST_DATA);
    let mut source = data::open(&path).expect("embedded data");
    data::read_converted(source.as_mut(), (0..N).collect(), &t.meta.input).expect("reads")
}

fn teachers() -> Vec<(&'static str, Teacher)> {
    let path = infoutil::paths::shipped(infoutil::paths::DEFAULT_TEACHER);
    let mut out = Vec::new();
    for (name, backend) in [("tract", BackendChoice::Tract), ("ort", BackendChoice::Ort)] {
        let opts = TeacherOptions {
            backend,
            ..TeacherOptions::default()
        };
        match Teacher::load(&path, &opts) {
            Ok(t) => out.push((name, t)),
            Err(e) => eprintln!("not measured: {name}: {e}"),
        }
    }
    out
}

fn bench(c: &mut Criterion) {
    let teachers = teachers();
    let (x, y) = images(&teachers[0].1);
    let mut g = c.benchmark_group("teacher");
    g.throughput(Throughput::Elements(N as u64)).sample_size(10);
    for (name, t) in &teachers {
        g.bench_function(format!("logits/{name}"), |b| {
            b.iter(|| t.logits(x.view()).unwrap())
        });
        g.bench_function(format!("grad_norms/{name}"), |b| {
            b.iter(|| t.grad_norms(x.view(), &y).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
