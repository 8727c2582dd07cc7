//! Stage 1 on the shipped teacher and real images, checked against an enumeration written here:
//! the masked images are built by this file (not by `informativeness::masking`) and the Shapley
//! formula is summed over all coalitions, so the library's exact estimator, its masking and its
//! plumbing are compared with something they do not share. A 3×3 grid (9 players, 512
//! coalitions per image) keeps the enumeration to a few seconds on tract.

use crate::common::{mini_test, rel_l2, tract, TEACHER};
use infoutil::informativeness::attribute::{shapley_maps, Shapley, ShapleyConfig};
use infoutil::informativeness::{Baseline, Value};
use infoutil::progress::Silent;
use infoutil::shapley::Estimator;
use infoutil::teacher::Teacher;
use ndarray::{Array4, Axis};
use std::sync::OnceLock;

const GRID: usize = 3;
const PLAYERS: usize = GRID * GRID;
const IMAGES: usize = 3;

/// v(S) for every coalition S (bit p = patch (p / GRID, p % GRID)) of every image: the teacher's
/// logit of the image's label with the patches outside S set to 0, the zero baseline in the
/// teacher's normalised input space.
fn coalition_values(teacher: &Teacher, x: &Array4<f32>, labels: &[usize]) -> Vec<Vec<f64>> {
    let (n, c, h, w) = x.dim();
    let edge = |i: usize, side: usize| i * side / GRID;
    let coalitions = 1usize << PLAYERS;
    let mut masked = Array4::<f32>::zeros((n * coalitions, c, h, w));
    for i in 0..n {
        for s in 0..coalitions {
            let mut out = masked.index_axis_mut(Axis(0), i * coalitions + s);
            for p in (0..PLAYERS).filter(|p| s >> p & 1 == 1) {
                let (r, col) = (p / GRID, p % GRID);
                for y in edge(r, h)..edge(r + 1, h) {
                    for xx in edge(col, w)..edge(col + 1, w) {
                        for ch in 0..c {
                            out[[ch, y, xx]] = x[[i, ch, y, xx]];
                        }
                    }
                }
            }
        }
    }
    let logits = teacher.logits(masked.view()).unwrap();
    (0..n)
        .map(|i| {
            (0..coalitions)
                .map(|s| logits[[i * coalitions + s, labels[i]]] as f64)
                .collect()
        })
        .collect()
}

/// Test images, their labels, and v(S) of every coalition of each.
type Enumerated = (Array4<f32>, Vec<usize>, Vec<Vec<f64>>);

/// The enumeration, computed once for both tests.
fn enumerated() -> &'static Enumerated {
    static CELL: OnceLock<Enumerated> = OnceLock::new();
    CELL.get_or_init(|| {
        let teacher = tract(TEACHER);
        let (x, labels) = mini_test(&teacher, IMAGES);
        let values = coalition_values(&teacher, &x, &labels);
        (x, labels, values)
    })
}

/// φ_p = Σ over S not holding p of |S|!(M−|S|−1)!/M! · (v(S ∪ p) − v(S)).
fn shapley_formula(v: &[f64]) -> Vec<f64> {
    let fact = |k: usize| (1..=k).map(|x| x as f64).product::<f64>();
    (0..PLAYERS)
        .map(|p| {
            (0..v.len())
                .filter(|s| s >> p & 1 == 0)
                .map(|s| {
                    let k = (s as u32).count_ones() as usize;
                    let weight = fact(k) * fact(PLAYERS - k - 1) / fact(PLAYERS);
                    weight * (v[s | 1 << p] - v[s])
                })
                .sum()
        })
        .collect()
}

fn maps(
    teacher: &Teacher,
    estimator: Estimator,
    budget: usize,
    x: &Array4<f32>,
    labels: &[usize],
) -> Vec<Vec<f64>> {
    let cfg = Shapley::new(ShapleyConfig {
        grid: GRID,
        budget,
        estimator,
        baseline: Baseline::Zero,
        value: Value::Logit,
    })
    .unwrap();
    let (maps, _) = shapley_maps(teacher, x.view(), labels, &cfg, &[0.0], 7, &Silent).unwrap();
    maps.outer_iter()
        .map(|m| m.iter().copied().collect())
        .collect()
}

#[test]
fn exact_maps_of_real_images_match_an_independent_enumeration() {
    let (x, labels, values) = enumerated();
    let got = maps(&tract(TEACHER), Estimator::Exact, 1 << PLAYERS, x, labels);
    for (i, (v, phi)) in values.iter().zip(&got).enumerate() {
        let want = shapley_formula(v);
        let scale = want.iter().fold(0.0f64, |m, p| m.max(p.abs()));
        for (p, (a, b)) in phi.iter().zip(&want).enumerate() {
            assert!(
                (a - b).abs() <= 1e-4 * scale.max(1.0),
                "image {i} patch {p}: library {a}, enumeration {b}"
            );
        }
        // Efficiency against the two endpoint images, run through the teacher here.
        let gap = phi.iter().sum::<f64>() - (v[(1 << PLAYERS) - 1] - v[0]);
        assert!(
            gap.abs() < 1e-4 * scale.max(1.0),
            "image {i}: efficiency gap {gap}"
        );
    }
}

#[test]
fn sampled_maps_of_real_images_approach_the_enumeration() {
    let (x, labels, values) = enumerated();
    let teacher = tract(TEACHER);
    let truth: Vec<Vec<f64>> = values.iter().map(|v| shapley_formula(v)).collect();
    let estimators = [
        Estimator::LeverageShap,
        Estimator::KernelShap {
            enumerate_sizes: false,
        },
        Estimator::Permutation,
    ];
    for estimator in estimators {
        let error = |budget| {
            let got = maps(&teacher, estimator, budget, x, labels);
            got.iter()
                .zip(&truth)
                .map(|(g, t)| rel_l2(g, t))
                .fold(0.0f64, f64::max)
        };
        let (small, large) = (error(40), error(320));
        eprintln!("{estimator:?}: worst relative L2 error {small:.3} at 40, {large:.3} at 320");
        assert!(large < 0.05, "{estimator:?} at budget 320 of 512: {large}");
        assert!(
            large < small,
            "{estimator:?}: {small} at 40, {large} at 320"
        );
    }
}
