//! The Shapley game as one graph around the teacher (informativeness::game_graph) against the
//! host path it replaces: masked images built here, the forward graph, the value on the host.

use crate::common::*;
use infoutil::informativeness::game_graph::GameGraph;
use infoutil::informativeness::masking::{baseline_image, masked_into, values};
use infoutil::informativeness::{Baseline, Grid, Value};
use infoutil::teacher::Teacher;
use ndarray::{Array2, Array4, Axis};

/// Coalitions that include the empty and the full one, single patches and seeded random ones.
fn coalitions(players: usize) -> Vec<u32> {
    let full = (1u32 << players) - 1;
    let mut c = vec![0, full, 1, 1 << (players - 1), 0b1010_0101_1100_0011 & full];
    let mut state = 0x9E37_79B9u32;
    while c.len() < 37 {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        c.push(state & full);
    }
    c
}

fn host_values(
    t: &Teacher,
    x: &Array4<f32>,
    base: &Array4<f32>,
    grid: &Grid,
    c: &[u32],
    labels: &[usize],
    value: Value,
) -> Array2<f64> {
    let (n, ch, h, w) = x.dim();
    let mut masked = Array4::zeros((n * c.len(), ch, h, w));
    for i in 0..n {
        for (k, &s) in c.iter().enumerate() {
            let out = masked.index_axis_mut(Axis(0), i * c.len() + k);
            masked_into(
                x.index_axis(Axis(0), i),
                base.index_axis(Axis(0), i),
                grid,
                s,
                out,
            );
        }
    }
    let logits = t.logits(masked.view()).unwrap();
    let mut out = Array2::zeros((n, c.len()));
    for (i, &label) in labels.iter().enumerate() {
        let rows = logits.slice(ndarray::s![i * c.len()..(i + 1) * c.len(), ..]);
        out.row_mut(i)
            .assign(&ndarray::Array1::from(values(rows, label, value)));
    }
    out
}

fn check(t: &Teacher, what: &str) {
    let (x, labels) = mini_test(t, 5);
    let spec = &t.meta.input;
    let grid = Grid::new(4, spec.height, spec.width).unwrap();
    let c = coalitions(grid.players());
    for baseline in [Baseline::Zero, Baseline::Blur] {
        let mut base = Array4::zeros(x.raw_dim());
        for (i, image) in x.outer_iter().enumerate() {
            base.index_axis_mut(Axis(0), i)
                .assign(&baseline_image(baseline, image, spec, &[73.0]));
        }
        for value in [Value::Logit, Value::Logprob, Value::Prob] {
            let game = GameGraph::load(t, &grid, value).unwrap();
            let got = game.values(x.view(), base.view(), &c, &labels).unwrap();
            let want = host_values(t, &x, &base, &grid, &c, &labels, value);
            assert_eq!(got.dim(), want.dim());
            let err = got
                .iter()
                .zip(&want)
                .map(|(g, w)| (g - w).abs() / w.abs().max(1.0))
                .fold(0.0, f64::max);
            eprintln!("{what} {baseline:?} {value:?}: max error {err:.2e}");
            assert!(
                err <= 1e-5,
                "{what} {baseline:?} {value:?}: max error {err}"
            );
        }
    }
}

#[test]
fn the_game_graph_gives_the_host_values_on_tract() {
    check(&tract(TEACHER), "tract");
}

#[test]
fn the_game_graph_gives_the_host_values_on_onnx_runtime() {
    let Some(t) = ort(
        TEACHER,
        "the_game_graph_gives_the_host_values_on_onnx_runtime",
    ) else {
        return;
    };
    check(&t, "ort");
}

#[test]
fn the_game_graph_reads_a_channels_last_teacher() {
    let dir = tempfile::tempdir().unwrap();
    let path = nhwc_teacher(dir.path(), "nhwc", "keras_input", "keras_input");
    let t = Teacher::load(&path, &options(infoutil::teacher::BackendChoice::Tract)).unwrap();
    check(&t, "tract, NHWC");
}
