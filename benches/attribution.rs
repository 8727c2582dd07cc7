//! Stage 1 overhead: `shapley_maps` against raw teacher inference over the same number of masked
//! images in the same batch sizes, side by side in one run. The bar: attribution reaches
//! ≥ 90 % of raw inference throughput (the toolkit, not the teacher, should never be the limit).
//! Also the coalition values both ways: the game graph `shapley_maps` uses (masking, teacher and
//! value in one graph) against masked images built on the host, the teacher's logits and the
//! value taken on the host (the path it replaced, as tests/it/game_graph.rs's reference).
//!
//!     cargo bench --bench attribution            # tract
//!     ORT_DYLIB_PATH=… cargo bench --bench attribution   # + ONNX Runtime
//!
//! Another teacher (e.g. a 224-px one): INFOUTIL_BENCH_TEACHER=PATH, with
//! INFOUTIL_BENCH_IMAGES (default 16), INFOUTIL_BENCH_BUDGET (256) and INFOUTIL_BENCH_BACKENDS
//! ("tract,ort"). Its images are seeded random inputs of the teacher's shape (throughput does not
//! depend on their content); the shipped teacher gets real test images.

mod common;

use common::{backends, images, load, setting};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use infoutil::informativeness::attribute::{shapley_maps, Shapley, ShapleyConfig};
use infoutil::informativeness::game_graph::GameGraph;
use infoutil::informativeness::masking::{masked_into, values};
use infoutil::informativeness::{Grid, Value};
use infoutil::progress::Silent;
use infoutil::teacher::Teacher;
use ndarray::{s, Array1, Array2, Array3, Array4, Axis};
use rayon::prelude::*;

/// Coalition values `[n, m]` the host way: every masked image built here, then the teacher.
fn host_values(t: &Teacher, x: &Array4<f32>, grid: &Grid, c: &[u32], y: &[usize]) -> Array2<f64> {
    let (n, ch, h, w) = x.dim();
    let m = c.len();
    let base = Array3::<f32>::zeros((ch, h, w));
    let mut masked = Array4::<f32>::zeros((n * m, ch, h, w));
    masked
        .axis_chunks_iter_mut(Axis(0), m)
        .into_par_iter()
        .enumerate()
        .for_each(|(i, mut block)| {
            for (k, &s) in c.iter().enumerate() {
                let out = block.index_axis_mut(Axis(0), k);
                masked_into(x.index_axis(Axis(0), i), base.view(), grid, s, out);
            }
        });
    let logits = t.logits(masked.view()).unwrap();
    let mut out = Array2::zeros((n, m));
    for (i, &label) in y.iter().enumerate() {
        let rows = logits.slice(s![i * m..(i + 1) * m, ..]);
        out.row_mut(i)
            .assign(&Array1::from(values(rows, label, Value::Logit)));
    }
    out
}

fn bench(c: &mut Criterion) {
    let images_n: usize = setting("INFOUTIL_BENCH_IMAGES", 16);
    let budget: usize = setting("INFOUTIL_BENCH_BUDGET", 256);
    let cfg = Shapley::new(ShapleyConfig {
        budget,
        ..ShapleyConfig::default()
    })
    .expect("the budget is within the limits");
    // Coalitions actually evaluated per image (an estimator may use fewer than the budget).
    let m = cfg
        .estimator
        .plan(16, budget, 0)
        .expect("plan")
        .coalitions()
        .len();
    let mut g = c.benchmark_group("stage1");
    g.sample_size(10)
        .throughput(Throughput::Elements((images_n * m) as u64));
    for (name, backend) in backends() {
        let Some(t) = load(backend) else { continue };
        let (x, y) = images(&t, images_n, 50);
        let (_, ch, h, w) = x.dim();
        // The same number of masked images as attribution evaluates, as one batch of inputs.
        let masked = Array4::from_shape_fn((images_n * m, ch, h, w), |(i, c, yy, xx)| {
            x[[i % images_n, c, yy, xx]]
        });
        g.bench_function(format!("raw_inference/{name}"), |b| {
            b.iter(|| t.logits(masked.view()).unwrap())
        });
        g.bench_function(format!("shapley_maps/{name}"), |b| {
            b.iter(|| shapley_maps(&t, x.view(), &y, &cfg, &[0.0], 0, &Silent).unwrap())
        });
        let grid = Grid::new(4, h, w).unwrap();
        let plan = cfg.estimator.plan(16, budget, 0).unwrap();
        let coalitions = plan.coalitions().to_vec();
        let zeros = Array4::<f32>::zeros(x.raw_dim());
        let game = GameGraph::load(&t, &grid, Value::Logit).unwrap();
        g.bench_function(format!("values_game_graph/{name}"), |b| {
            b.iter(|| {
                game.values(x.view(), zeros.view(), &coalitions, &y)
                    .unwrap()
            })
        });
        g.bench_function(format!("values_host_masking/{name}"), |b| {
            b.iter(|| host_values(&t, &x, &grid, &coalitions, &y))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
