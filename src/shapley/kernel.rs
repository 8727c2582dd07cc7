//! KernelSHAP designs: coalitions drawn from the Shapley kernel itself, so that each draw
//! carries the same weight and duplicates simply add up.
//!
//! With `enumerate_sizes` this follows shap's `KernelExplainer`: going from the outside in
//! (sizes 1 and M−1 first), a stratum whose expected share of the remaining budget would cover
//! all its pairs is enumerated with exact kernel weights; the rest is sampled.

use std::collections::HashMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::sampling::{
    binomial, check_budget, covers_all, full_design, kernel_size_mass, strata, Design, Stratum,
};
use crate::error::Result;

pub(super) fn design(players: usize, budget: usize, seed: u64, enumerate: bool) -> Result<Design> {
    check_budget(players, budget)?;
    if covers_all(players, budget) {
        return Ok(full_design(players));
    }
    let mass = kernel_size_mass(players);
    // Kernel mass of a stratum: both its sizes (they have equal mass).
    let stratum_mass = |s: &Stratum| mass[s.size] * s.sizes(players);
    let mut pairs_left = (budget - 2) / 2;
    let mut design = Design {
        draws: 2,
        ..Design::default()
    };
    let mut rest = strata(players);
    if enumerate {
        while let Some(s) = rest.first().copied() {
            let mass_left: f64 = rest.iter().map(stratum_mass).sum();
            let expected = pairs_left as f64 * stratum_mass(&s) / mass_left;
            if expected < s.pairs as f64 - 1e-8 || s.pairs > pairs_left {
                break;
            }
            let w = mass[s.size] / binomial(players, s.size);
            for p in s.all_pairs(players) {
                design.push_pair(players, p, w);
            }
            design.draws += 2 * s.pairs;
            pairs_left -= s.pairs;
            rest.remove(0);
        }
    }
    if pairs_left > 0 && !rest.is_empty() {
        sample(players, &rest, pairs_left, seed, &mut design, stratum_mass);
    }
    Ok(design)
}

/// Draws pairs from the kernel restricted to `rest` until `pairs` distinct ones are found,
/// merging duplicates into counts; each pair then gets its share of the strata's kernel mass.
fn sample(
    players: usize,
    rest: &[Stratum],
    pairs: usize,
    seed: u64,
    design: &mut Design,
    stratum_mass: impl Fn(&Stratum) -> f64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    let masses: Vec<f64> = rest.iter().map(&stratum_mass).collect();
    let mass_left: f64 = masses.iter().sum();
    let mut index: HashMap<u32, usize> = HashMap::with_capacity(pairs);
    let mut drawn: Vec<(u32, f64)> = Vec::with_capacity(pairs);
    // A draw cap keeps near-exhaustive budgets from a long coupon-collector tail.
    let cap = 100 * pairs + 1000;
    let mut draws = 0;
    while drawn.len() < pairs && draws < cap {
        let s = &rest[pick(&masses, mass_left, &mut rng)];
        let p = s.random_pair(players, &mut rng);
        draws += 1;
        match index.get(&p) {
            Some(&i) => drawn[i].1 += 1.0,
            None => {
                index.insert(p, drawn.len());
                drawn.push((p, 1.0));
            }
        }
    }
    // Each draw stands for mass_left / draws, shared by the two members of its pair.
    let per_draw = mass_left / draws as f64 / 2.0;
    for (p, count) in drawn {
        design.push_pair(players, p, count * per_draw);
    }
    design.draws += 2 * draws;
}

/// Index drawn with probability masses[i] / total.
fn pick(masses: &[f64], total: f64, rng: &mut StdRng) -> usize {
    let mut u = rng.random::<f64>() * total;
    for (i, m) in masses.iter().enumerate() {
        if u < *m {
            return i;
        }
        u -= m;
    }
    masses.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn respects_budget_and_pairs() {
        for enumerate in [false, true] {
            for budget in [48, 64, 256, 1024, 2048] {
                let d = design(16, budget, 5, enumerate).unwrap();
                assert!(d.rows.len() + 2 <= budget);
                assert!(d.rows.len() + 4 >= budget, "{budget}: {}", d.rows.len());
                let distinct: std::collections::HashSet<_> = d.rows.iter().collect();
                assert_eq!(distinct.len(), d.rows.len());
                assert!(d.rows.chunks(2).all(|p| p[0] ^ p[1] == 0xFFFF));
            }
        }
    }

    #[test]
    fn enumeration_takes_outer_sizes_first() {
        // At 1024 (511 pairs) the kernel's share covers strata 1 (16 pairs) and 2 (120 pairs)
        // but not 3 (560 pairs; its share of the 375 pairs left is ≈ 92).
        let d = design(16, 1024, 1, true).unwrap();
        let count = |k: u32| d.rows.iter().filter(|s| s.count_ones() == k).count() as f64;
        for k in [1, 2, 14, 15] {
            assert_eq!(count(k), binomial(16, k as usize));
        }
        assert!(count(3) < binomial(16, 3) / 2.0);
    }

    #[test]
    fn weights_sum_to_kernel_mass() {
        for enumerate in [false, true] {
            let d = design(12, 300, 9, enumerate).unwrap();
            let total: f64 = d.weights.iter().sum();
            assert!((total - 1.0).abs() < 1e-12, "{total}");
        }
    }
}
