//! Reading a teacher's logits: the arg-max class and a class's log-probability, for every stage
//! that needs them (evaluation, Shapley values, utility scores).

use ndarray::ArrayView1;

/// Index of the largest value (the first on ties; NaN never wins).
pub fn argmax(values: impl Iterator<Item = f32>) -> usize {
    values
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, v)| {
            if v > best.1 {
                (i, v)
            } else {
                best
            }
        })
        .0
}

/// `log softmax(logits)[c]` in f64, with the maximum subtracted before `exp` so that large
/// logits do not overflow.
pub fn log_prob(logits: ArrayView1<f32>, c: usize) -> f64 {
    let max = logits.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
    let log_z = max
        + logits
            .iter()
            .map(|&l| (l as f64 - max).exp())
            .sum::<f64>()
            .ln();
    logits[c] as f64 - log_z
}
