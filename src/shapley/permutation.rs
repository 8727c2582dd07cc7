//! Antithetic permutation sampling: φ_i is the mean marginal contribution of i over random
//! orders of the players, each order used together with its reverse (which tends to make the
//! two estimates' errors cancel). Efficiency holds exactly: each order's contributions
//! telescope to v(N) − v(∅).

use std::collections::HashMap;

use ndarray::{Array2, ArrayView2};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::{grand, per_game, Coalition, Estimator, Plan, Solver};
use crate::error::{Error, Result};

/// The walks through the plan's coalitions: for each order, the players in order and the plan
/// indices of the M + 1 prefixes (∅ first, N last).
#[derive(Clone, Debug)]
pub(super) struct Walks {
    orders: Vec<Vec<u8>>,
    prefixes: Vec<Vec<u32>>,
}

pub(super) fn plan(players: usize, budget: usize, seed: u64) -> Result<Plan> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut coalitions: Vec<Coalition> = vec![0, grand(players)];
    let mut index: HashMap<Coalition, u32> = coalitions
        .iter()
        .enumerate()
        .map(|(i, &s)| (s, i as u32))
        .collect();
    let mut walks = Walks {
        orders: Vec::new(),
        prefixes: Vec::new(),
    };
    let mut order: Vec<u8> = (0..players as u8).collect();
    let mut draws = 2;
    // Once every coalition is in the plan, new orders cost nothing: cap their number.
    while walks.orders.len() < budget.max(2) {
        // Orders come in pairs: a fresh shuffle, then its reverse.
        if walks.orders.len().is_multiple_of(2) {
            order.shuffle(&mut rng);
        } else {
            order.reverse();
        }
        let prefixes = prefix_coalitions(&order);
        let new = prefixes.iter().filter(|s| !index.contains_key(s)).count();
        if coalitions.len() + new > budget {
            break;
        }
        let idx = prefixes
            .iter()
            .map(|&s| {
                *index.entry(s).or_insert_with(|| {
                    coalitions.push(s);
                    coalitions.len() as u32 - 1
                })
            })
            .collect();
        draws += players - 1;
        walks.orders.push(order.clone());
        walks.prefixes.push(idx);
    }
    if walks.drop_unpaired(&mut coalitions) {
        draws -= players - 1;
    }
    if walks.orders.is_empty() {
        return Err(Error::Config(format!(
            "shapley: a budget of {budget} coalitions is too small for one permutation of \
             {players} players (at least {})",
            players + 1
        )));
    }
    Ok(Plan {
        estimator: Estimator::Permutation,
        players,
        budget,
        draws,
        coalitions,
        empty: 0,
        full: 1,
        solver: Solver::Permutation(walks),
    })
}

impl Walks {
    /// An unpaired last order loses the antithetic cancellation and was measured to raise the
    /// error: drop it and give its coalitions back (whether there was one to drop).
    fn drop_unpaired(&mut self, coalitions: &mut Vec<Coalition>) -> bool {
        if self.orders.len().is_multiple_of(2) || self.orders.len() == 1 {
            return false;
        }
        self.orders.pop();
        self.prefixes.pop();
        // Coalitions are only ever appended, so the popped order's new ones are the tail.
        let used = self
            .prefixes
            .iter()
            .flatten()
            .map(|&i| i as usize + 1)
            .max();
        coalitions.truncate(used.unwrap_or(2).max(2));
        true
    }
}

/// ∅, {o₀}, {o₀, o₁}, …, N.
fn prefix_coalitions(order: &[u8]) -> Vec<Coalition> {
    let mut s: Coalition = 0;
    let mut out = vec![0];
    for &p in order {
        s |= 1 << p;
        out.push(s);
    }
    out
}

impl Walks {
    pub(super) fn solve_many(&self, values: ArrayView2<f64>, players: usize) -> Array2<f64> {
        let n = self.orders.len() as f64;
        per_game(values, players, |v, phi| {
            for (order, idx) in self.orders.iter().zip(&self.prefixes) {
                for (t, &p) in order.iter().enumerate() {
                    phi[p as usize] += v[idx[t + 1] as usize] - v[idx[t] as usize];
                }
            }
            phi.iter_mut().for_each(|x| *x /= n);
        })
    }
}
