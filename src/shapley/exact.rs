//! Exact Shapley values by enumerating all 2^M coalitions: the ground truth.
//!
//! φ_i = Σ_{S ∌ i} |S|!(M−1−|S|)!/M! · (v(S ∪ {i}) − v(S)).
//! The marginal contributions are summed per coalition size first and weighted once per size,
//! so that 2^M small products are not rounded separately.

use ndarray::{Array2, ArrayView1, ArrayView2};

use super::sampling::binomial;
use super::{grand, per_game, Estimator, Plan, Solver};

/// The plan lists coalitions in mask order, so a coalition's value sits at index = its mask.
pub(super) fn plan(players: usize, budget: usize) -> Plan {
    let n = 1usize << players;
    Plan {
        estimator: Estimator::Exact,
        players,
        budget,
        draws: n,
        coalitions: (0..n as u64).map(|s| s as u32).collect(),
        empty: 0,
        full: grand(players) as usize,
        solver: Solver::Exact,
    }
}

pub(super) fn solve_many(players: usize, values: ArrayView2<f64>) -> Array2<f64> {
    let weights: Vec<f64> = (0..players)
        .map(|s| 1.0 / (players as f64 * binomial(players - 1, s)))
        .collect();
    per_game(values, players, |v, phi| solve_one(&weights, v, phi))
}

fn solve_one(weights: &[f64], v: ArrayView1<f64>, phi: &mut [f64]) {
    let m = weights.len();
    // sums[i * m + s]: Σ over coalitions S ∌ i with |S| = s of v(S ∪ i) − v(S).
    let mut sums = vec![0.0; m * m];
    for s in 0..v.len() {
        let size = (s as u32).count_ones() as usize;
        if size == m {
            continue;
        }
        let base = v[s];
        for (i, row) in sums.chunks_exact_mut(m).enumerate() {
            if s & (1 << i) == 0 {
                row[size] += v[s | (1 << i)] - base;
            }
        }
    }
    for (p, row) in phi.iter_mut().zip(sums.chunks_exact(m)) {
        *p = row.iter().zip(weights).map(|(x, w)| x * w).sum();
    }
}
