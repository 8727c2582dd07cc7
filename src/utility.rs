//! Stage 2, utility: how much a crop would teach, scored by the teacher's per-sample gradient
//! norm (Theorem 1 of the paper bounds utility by it), with the paper's ablations.

use ndarray::ArrayView4;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::teacher::Teacher;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Score {
    /// ‖∇θ CE(f(x), y)‖₂ over all teacher parameters (the method).
    GradNorm,
    /// The same norm over the last (classifier) layer's parameters only (ablation).
    LastLayer,
    /// The cross-entropy itself (ablation); higher loss scores higher.
    Loss,
}

/// One score per image of `x` (teacher input space) for labels `y`; higher means more useful.
pub fn score(teacher: &Teacher, x: ArrayView4<f32>, y: &[usize], how: Score) -> Result<Vec<f64>> {
    match how {
        Score::GradNorm => Ok(teacher
            .grad_norms(x, y)?
            .norms
            .iter()
            .map(|&v| v as f64)
            .collect()),
        Score::LastLayer => {
            let cols = teacher.grad_meta()?.last_layer_params.clone();
            let g = teacher.grad_norms(x, y)?;
            Ok(g.sqnorms
                .rows()
                .into_iter()
                .map(|row| cols.iter().map(|&j| row[j] as f64).sum::<f64>().sqrt())
                .collect())
        }
        Score::Loss => {
            let logits = teacher.logits(x)?;
            Ok(logits
                .rows()
                .into_iter()
                .zip(y)
                .map(|(row, &c)| -crate::base::logits::log_prob(row, c))
                .collect())
        }
    }
}

/// Indices of the `k` best scores, best first, taking every `preferred` index before any other;
/// equal scores keep their original order, so the selection is the same on every run.
pub fn top_k(scores: &[f64], preferred: &[bool], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| {
        preferred[b]
            .cmp(&preferred[a])
            .then(scores[b].total_cmp(&scores[a]))
            .then(a.cmp(&b))
    });
    order.truncate(k);
    order
}

/// Whether the teacher's arg-max for each image of `x` is class `c`.
pub fn recognised(teacher: &Teacher, x: ArrayView4<f32>, c: usize) -> Result<Vec<bool>> {
    let logits = teacher.logits(x)?;
    Ok(logits
        .rows()
        .into_iter()
        .map(|row| crate::base::logits::argmax(row.iter().copied()) == c)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_k_is_best_first_with_stable_ties() {
        let all = [true; 5];
        assert_eq!(top_k(&[0.5, 2.0, 2.0, 1.0, 3.0], &all, 3), vec![4, 1, 2]);
        assert_eq!(top_k(&[1.0, 1.0], &all[..2], 5), vec![0, 1]);
    }

    #[test]
    fn top_k_takes_preferred_before_better_scores() {
        let preferred = [false, true, false, true, false];
        assert_eq!(
            top_k(&[9.0, 1.0, 8.0, 2.0, 7.0], &preferred, 3),
            vec![3, 1, 0]
        );
    }
}
