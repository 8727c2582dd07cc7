//! Coalition sampling shared by the regression estimators.
//!
//! Coalitions other than ∅ and N are grouped into *pair strata*: stratum k (1 ≤ k ≤ M/2) holds
//! the complement pairs (S, N∖S) with |S| = k. Both members of a pair have the same Shapley-kernel
//! weight, and sampling them together (paired sampling, Covert & Lee 2021) cancels the
//! odd-order terms of the regression error.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::Rng;

use super::{grand, Coalition};
use crate::error::{Error, Result};

/// The weighted regression rows an estimator asks for (∅ and N are implicit).
#[derive(Clone, Debug, Default)]
pub(super) struct Design {
    pub rows: Vec<Coalition>,
    pub weights: Vec<f64>,
    /// Coalitions drawn before duplicates were merged (∅ and N included).
    pub draws: usize,
}

impl Design {
    /// Adds both members of a complement pair, each with `weight`.
    pub fn push_pair(&mut self, players: usize, s: Coalition, weight: f64) {
        self.rows.push(s);
        self.rows.push(grand(players) & !s);
        self.weights.push(weight);
        self.weights.push(weight);
    }
}

/// C(n, k) as f64 (exact for the sizes used here: C(20, 10) < 2^53).
pub(super) fn binomial(n: usize, k: usize) -> f64 {
    if k > n {
        return 0.0;
    }
    let k = k.min(n - k);
    (0..k)
        .fold(1.0, |acc, i| acc * (n - i) as f64 / (i + 1) as f64)
        .round()
}

/// Shapley-kernel mass of each coalition size k = 0..=M, normalised to sum 1 over 1..M−1:
/// p(k) ∝ (M−1) / (k(M−k)). (p(0) = p(M) = 0: those endpoints enter as a constraint.)
pub(super) fn kernel_size_mass(players: usize) -> Vec<f64> {
    let m = players as f64;
    let raw: Vec<f64> = (0..=players)
        .map(|k| {
            if k == 0 || k == players {
                0.0
            } else {
                (m - 1.0) / (k as f64 * (m - k as f64))
            }
        })
        .collect();
    let total: f64 = raw.iter().sum();
    raw.iter()
        .map(|p| p / total.max(f64::MIN_POSITIVE))
        .collect()
}

/// Kernel weight of one coalition of size k (the size's mass shared by its C(M, k) members).
pub(super) fn kernel_weight(players: usize, k: usize) -> f64 {
    kernel_size_mass(players)[k] / binomial(players, k)
}

/// One pair stratum.
#[derive(Clone, Copy, Debug)]
pub(super) struct Stratum {
    /// Size of the canonical member.
    pub size: usize,
    /// Number of distinct pairs in the stratum.
    pub pairs: usize,
}

impl Stratum {
    /// The middle stratum (2k = M) pairs coalitions of the same size with each other.
    fn is_middle(&self, players: usize) -> bool {
        2 * self.size == players
    }

    /// Number of coalition sizes the stratum covers (2, or 1 for the middle stratum).
    pub fn sizes(&self, players: usize) -> f64 {
        if self.is_middle(players) {
            1.0
        } else {
            2.0
        }
    }

    /// Canonical member of the pair holding `s`: the member of size `self.size` (containing
    /// player 0 in the middle stratum, where both members have that size).
    fn canonical(&self, players: usize, s: Coalition) -> Coalition {
        if self.is_middle(players) && s & 1 == 0 {
            grand(players) & !s
        } else {
            s
        }
    }

    /// A uniformly random pair of the stratum, as its canonical member.
    pub fn random_pair(&self, players: usize, rng: &mut StdRng) -> Coalition {
        self.canonical(players, random_subset(players, self.size, rng))
    }

    /// All pairs of the stratum, as canonical members, in a fixed order.
    pub fn all_pairs(&self, players: usize) -> Vec<Coalition> {
        if self.is_middle(players) {
            // Subsets holding player 0: (k−1)-subsets of players 1..M, shifted up.
            subsets_of_size(players - 1, self.size - 1)
                .map(|s| (s << 1) | 1)
                .collect()
        } else {
            subsets_of_size(players, self.size).collect()
        }
    }

    /// `m` distinct pairs drawn uniformly without replacement, as canonical members.
    pub fn sample_pairs(&self, players: usize, m: usize, rng: &mut StdRng) -> Vec<Coalition> {
        debug_assert!(m <= self.pairs);
        if m == self.pairs {
            return self.all_pairs(players);
        }
        if 3 * m > self.pairs {
            // Dense: a partial Fisher–Yates shuffle of the whole stratum.
            let mut all = self.all_pairs(players);
            for i in 0..m {
                let j = rng.random_range(i..all.len());
                all.swap(i, j);
            }
            all.truncate(m);
            return all;
        }
        // Sparse: rejection; an expected < 1.5 draws per pair at this density.
        let mut seen = HashMap::with_capacity(m);
        let mut out = Vec::with_capacity(m);
        while out.len() < m {
            let s = self.random_pair(players, rng);
            if seen.insert(s, ()).is_none() {
                out.push(s);
            }
        }
        out
    }
}

/// The pair strata k = 1..=⌊M/2⌋.
pub(super) fn strata(players: usize) -> Vec<Stratum> {
    (1..=players / 2)
        .map(|k| {
            let n = binomial(players, k) as usize;
            let pairs = if 2 * k == players { n / 2 } else { n };
            Stratum { size: k, pairs }
        })
        .collect()
}

/// A uniformly random k-subset of M players (Floyd's algorithm: k draws, no rejection).
pub(super) fn random_subset(players: usize, k: usize, rng: &mut StdRng) -> Coalition {
    let mut s: Coalition = 0;
    for j in players - k..players {
        let t = rng.random_range(0..=j);
        s |= if s & (1 << t) == 0 { 1 << t } else { 1 << j };
    }
    s
}

/// All k-subsets of M players in increasing mask order (Gosper's hack).
pub(super) fn subsets_of_size(players: usize, k: usize) -> impl Iterator<Item = Coalition> {
    let end = 1u64 << players;
    let mut next = if k > players { end } else { (1u64 << k) - 1 };
    std::iter::from_fn(move || {
        if next >= end {
            return None;
        }
        let cur = next;
        if cur == 0 {
            next = end; // the empty set is the only 0-subset
        } else {
            let c = cur & cur.wrapping_neg();
            let r = cur + c;
            next = (((r ^ cur) >> 2) / c) | r;
        }
        Some(cur as Coalition)
    })
}

/// Every coalition except ∅ and N with its exact kernel weight: the regression this gives is
/// solved exactly by the Shapley values (used whenever the budget covers all 2^M coalitions).
pub(super) fn full_design(players: usize) -> Design {
    let mut d = Design::default();
    for k in 1..players {
        let w = kernel_weight(players, k);
        for s in subsets_of_size(players, k) {
            d.rows.push(s);
            d.weights.push(w);
        }
    }
    d.draws = d.rows.len() + 2;
    d
}

/// The smallest budget a paired regression estimator accepts. Once efficiency is imposed, a
/// complement pair says one thing, φ(S) ≈ v(S) − v(∅) ≈ Δ − (v(N∖S) − v(∅)), so M − 1
/// unknowns need M − 1 pairs: 2M coalitions with ∅ and N. With that few the regression only
/// interpolates: on the shipped teacher its error was 7–10× the values themselves at 2M, and
/// sane from 2.5M (docs/benchmarks.md). So 3M, or every coalition when there are fewer.
pub(super) fn check_budget(players: usize, budget: usize) -> Result<()> {
    let min = (3 * players).min(1 << players);
    if budget < min {
        return Err(Error::Config(format!(
            "shapley: a budget of {budget} coalitions is too small for {players} players \
             (at least {min}: below about 2.5 per player the regression only interpolates and \
             its error can exceed the values themselves)"
        )));
    }
    Ok(())
}

/// Whether the budget reaches every coalition, so the estimator can be exact.
pub(super) fn covers_all(players: usize, budget: usize) -> bool {
    budget as u64 >= 1u64 << players
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn binomials() {
        assert_eq!(binomial(16, 8), 12870.0);
        assert_eq!(binomial(20, 10), 184756.0);
        assert_eq!(binomial(5, 0), 1.0);
        assert_eq!(binomial(3, 4), 0.0);
    }

    #[test]
    fn gosper_enumerates_each_subset_once() {
        for m in 1..=8 {
            for k in 0..=m {
                let v: Vec<_> = subsets_of_size(m, k).collect();
                assert_eq!(v.len() as f64, binomial(m, k));
                assert!(v.iter().all(|s| s.count_ones() as usize == k));
                assert!(v.windows(2).all(|w| w[0] < w[1]));
            }
        }
    }

    #[test]
    fn floyd_is_uniform_on_small_case() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut counts = HashMap::new();
        for _ in 0..60_000 {
            let s = random_subset(5, 2, &mut rng);
            assert_eq!(s.count_ones(), 2);
            *counts.entry(s).or_insert(0) += 1;
        }
        assert_eq!(counts.len(), 10);
        // 6000 expected each; 5 σ ≈ 370.
        assert!(counts.values().all(|&c| (c - 6000i32).abs() < 400));
    }

    #[test]
    fn strata_cover_all_coalitions_once() {
        for m in 2..=9 {
            let mut seen = std::collections::HashSet::new();
            for st in strata(m) {
                let pairs = st.all_pairs(m);
                assert_eq!(pairs.len(), st.pairs);
                for s in pairs {
                    assert!(seen.insert(s));
                    assert!(seen.insert(grand(m) & !s));
                }
            }
            assert_eq!(seen.len(), (1 << m) - 2);
        }
    }

    #[test]
    fn sampled_pairs_are_distinct_and_canonical() {
        let mut rng = StdRng::seed_from_u64(3);
        for st in strata(10) {
            for m in [1, st.pairs / 4, st.pairs / 2, st.pairs] {
                let v = st.sample_pairs(10, m, &mut rng);
                let set: std::collections::HashSet<_> = v.iter().collect();
                assert_eq!(set.len(), m);
                let all: std::collections::HashSet<_> = st.all_pairs(10).into_iter().collect();
                assert!(v.iter().all(|s| all.contains(s)));
            }
        }
    }

    #[test]
    fn kernel_mass_sums_to_one_and_is_symmetric() {
        let p = kernel_size_mass(16);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        for k in 1..16 {
            assert!((p[k] - p[16 - k]).abs() < 1e-16);
        }
    }
}
