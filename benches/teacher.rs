//! Teacher throughput on both backends, side by side in one run: logits and per-sample gradient
//! norms for a batch of images (256 real embedded Fashion-MNIST test images by default).
//!
//!     ORT_DYLIB_PATH=… cargo bench --bench teacher
//!
//! Without ONNX Runtime only tract is measured (and a line says so). Another teacher (e.g. a
//! 224-px one, as benches/stage2_torch.py measures against `torch.func`):
//! INFOUTIL_BENCH_TEACHER=PATH, with INFOUTIL_BENCH_IMAGES (the batch, default 256) and
//! INFOUTIL_BENCH_BACKENDS ("tract,ort"); its images are a fixed pattern of the teacher's shape.

mod common;

use common::{backends, images, load, setting};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn bench(c: &mut Criterion) {
    let n: usize = setting("INFOUTIL_BENCH_IMAGES", 256);
    let mut g = c.benchmark_group("teacher");
    g.throughput(Throughput::Elements(n as u64)).sample_size(10);
    for (name, backend) in backends() {
        let Some(t) = load(backend) else { continue };
        let (x, y) = images(&t, n, 1);
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
