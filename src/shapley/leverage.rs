//! Leverage SHAP designs (Musco & Witter, "Provably accurate Shapley value estimation via
//! leverage score sampling", ICLR 2025).
//!
//! In the constrained Shapley-kernel regression, once the efficiency constraint is projected
//! out, the leverage score of the row for coalition S is ∝ 1/C(M, |S|): every coalition *size*
//! carries the same total leverage. Sampling by leverage therefore means: equal sampling
//! effort per size, uniform within a size, without replacement, in complement pairs; each
//! sampled row is then reweighted by kernel weight / inclusion probability.
//!
//! The paper draws each coalition independently (Bernoulli with those probabilities), so the
//! count per size is random. Here the count per stratum is fixed to its expectation instead
//! (stratified sampling with the same inclusion probabilities): the plan then holds exactly the
//! budget, which a caller batching a backend wants, and the variance can only go down.
//! Strata smaller than their share (sizes 1 and M−1 first) are enumerated outright.

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::sampling::{check_budget, covers_all, full_design, kernel_weight, strata, Design};
use crate::error::Result;

pub(super) fn design(players: usize, budget: usize, seed: u64) -> Result<Design> {
    check_budget(players, budget)?;
    if covers_all(players, budget) {
        return Ok(full_design(players));
    }
    let strata = strata(players);
    // Leverage mass of a stratum: one unit per size it covers.
    let mass: Vec<f64> = strata.iter().map(|s| s.sizes(players)).collect();
    let caps: Vec<usize> = strata.iter().map(|s| s.pairs).collect();
    let counts = allocate((budget - 2) / 2, &mass, &caps);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut design = Design {
        draws: 2,
        ..Design::default()
    };
    for (s, &m) in strata.iter().zip(&counts) {
        if m == 0 {
            continue;
        }
        // Inclusion probability of each pair is m / pairs.
        let w = kernel_weight(players, s.size) * s.pairs as f64 / m as f64;
        for p in s.sample_pairs(players, m, &mut rng) {
            design.push_pair(players, p, w);
        }
        design.draws += 2 * m;
    }
    Ok(design)
}

/// Splits `total` items over strata in proportion to `mass`, no stratum above its cap
/// (water-filling: capped strata take their cap and the rest is re-split), with integer
/// counts by largest remainder (ties to the outer strata).
pub(super) fn allocate(total: usize, mass: &[f64], caps: &[usize]) -> Vec<usize> {
    let mut counts = vec![0; mass.len()];
    let mut free: Vec<usize> = (0..mass.len()).collect();
    let mut left = total;
    loop {
        let m: f64 = free.iter().map(|&i| mass[i]).sum();
        let full: Vec<usize> = free
            .iter()
            .copied()
            .filter(|&i| left as f64 * mass[i] / m >= caps[i] as f64)
            .collect();
        if full.is_empty() {
            break;
        }
        for &i in &full {
            counts[i] = caps[i];
            left -= caps[i];
        }
        free.retain(|i| !full.contains(i));
        if free.is_empty() {
            return counts;
        }
    }
    let m: f64 = free.iter().map(|&i| mass[i]).sum();
    let share = |i: usize| left as f64 * mass[i] / m;
    for &i in &free {
        counts[i] = share(i).floor() as usize;
    }
    let given: usize = free.iter().map(|&i| counts[i]).sum();
    let mut by_remainder = free.clone();
    by_remainder.sort_by(|&a, &b| {
        let fa = share(a) - share(a).floor();
        let fb = share(b) - share(b).floor();
        fb.total_cmp(&fa).then(a.cmp(&b))
    });
    for &i in by_remainder.iter().take(left - given) {
        counts[i] += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_fills_small_strata_then_splits_evenly() {
        // 16 players, budget 256 → 127 pairs; strata 1..8 with 16, 120, 560, … pairs.
        let st = strata(16);
        let mass: Vec<f64> = st.iter().map(|s| s.sizes(16)).collect();
        let caps: Vec<usize> = st.iter().map(|s| s.pairs).collect();
        let c = allocate(127, &mass, &caps);
        assert_eq!(c.iter().sum::<usize>(), 127);
        assert_eq!(c[0], 16);
        // 111 pairs over 6 strata of mass 2 and one of mass 1 (13 units): 17 or 18 and 8 or 9.
        assert!(c[1..7].iter().all(|&x| x == 17 || x == 18), "{c:?}");
        assert!(c[7] == 8 || c[7] == 9, "{c:?}");
    }

    #[test]
    fn allocation_never_exceeds_caps() {
        let c = allocate(10, &[1.0, 1.0, 1.0], &[1, 100, 2]);
        assert_eq!(c, vec![1, 7, 2]);
    }

    #[test]
    fn design_uses_the_budget() {
        for budget in [48, 64, 256, 1024, 2048, 65535] {
            let d = design(16, budget, 2).unwrap();
            assert!(d.rows.len() + 2 <= budget && d.rows.len() + 3 >= budget);
        }
    }
}
