//! Stage 1 overhead: `shapley_maps` against raw teacher inference over the same number of masked
//! images in the same batch sizes, side by side in one run. The bar: attribution reaches
//! ≥ 90 % of raw inference throughput (the toolkit, not the teacher, should never be the limit).
//!
//!     cargo bench --bench attribution            # tract
//!     ORT_DYLIB_PATH=… cargo bench --bench attribution   # + ONNX Runtime

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use infoutil::data;
use infoutil::informativeness::attribute::{shapley_maps, ShapleyConfig};
use infoutil::progress::Silent;
use infoutil::teacher::{BackendChoice, Teacher, TeacherOptions};
use ndarray::Array4;

const IMAGES: usize = 16;
const BUDGET: usize = 256;

fn load(backend: BackendChoice) -> Option<Teacher> {
    let path = infoutil::paths::shipped(infoutil::paths::DEFAULT_TEACHER);
    let opts = TeacherOptions {
        backend,
        ..TeacherOptions::default()
    };
    Teacher::load(&path, &opts)
        .map_err(|e| eprintln!("not measured: {backend:?}: {e}"))
        .ok()
}

fn images(t: &Teacher) -> (Array4<f32>, Vec<usize>) {
    let path = infoutil::paths::shipped(infoutil::paths::DEFAULT_TEST_DATA);
    let mut source = data::open(&path).expect("embedded data");
    data::read_converted(
        source.as_mut(),
        (0..IMAGES).map(|i| i * 50).collect(),
        &t.meta.input,
    )
    .expect("reads")
}

fn bench(c: &mut Criterion) {
    let cfg = ShapleyConfig {
        budget: BUDGET,
        ..ShapleyConfig::default()
    };
    // Coalitions actually evaluated per image (an estimator may use fewer than the budget).
    let m = cfg
        .estimator
        .plan(16, BUDGET, 0)
        .expect("plan")
        .coalitions()
        .len();
    let mut g = c.benchmark_group("stage1");
    g.sample_size(10)
        .throughput(Throughput::Elements((IMAGES * m) as u64));
    for (name, backend) in [("tract", BackendChoice::Tract), ("ort", BackendChoice::Ort)] {
        let Some(t) = load(backend) else { continue };
        let (x, y) = images(&t);
        // The same number of masked images as attribution evaluates, as one batch of inputs.
        let masked = Array4::from_shape_fn((IMAGES * m, 1, 28, 28), |(i, c, h, w)| {
            x[[i % IMAGES, c, h, w]]
        });
        g.bench_function(format!("raw_inference/{name}"), |b| {
            b.iter(|| t.logits(masked.view()).unwrap())
        });
        g.bench_function(format!("shapley_maps/{name}"), |b| {
            b.iter(|| shapley_maps(&t, x.view(), &y, &cfg, &[0.0], 0, &Silent).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
