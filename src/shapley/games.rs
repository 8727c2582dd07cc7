//! Small games for tests, benchmarks and examples, and adapters from closures and vectors.
//!
//! Every cooperative game is a unique weighted sum of unanimity games (its Harsanyi
//! dividends), and the Shapley value of u_T gives 1/|T| to each member of T. [`Harsanyi`] games
//! therefore have closed-form Shapley values; [`Squashed`] wraps one in a non-linearity, like a
//! network's probability output, so that it has none.

use ndarray::Array2;
use rand::rngs::StdRng;
use rand::seq::index::sample;
use rand::{Rng, SeedableRng};

use super::{check_players, Coalition, Game, GameSet};
use crate::error::Result;

/// v(S) = Σ_{i∈S} w_i: φ_i = w_i.
#[derive(Clone, Debug)]
pub struct Additive {
    pub weights: Vec<f64>,
}

impl Additive {
    pub fn new(weights: Vec<f64>) -> Self {
        Additive { weights }
    }
}

impl Game for Additive {
    fn players(&self) -> usize {
        self.weights.len()
    }

    fn values(&self, coalitions: &[Coalition]) -> Result<Vec<f64>> {
        Ok(coalitions
            .iter()
            .map(|&s| {
                self.weights
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| s >> i & 1 == 1)
                    .map(|(_, w)| w)
                    .sum()
            })
            .collect())
    }
}

/// v(S) = c + Σ_T d_T · [T ⊆ S]: a weighted sum of unanimity games plus a constant.
#[derive(Clone, Debug)]
pub struct Harsanyi {
    pub players: usize,
    pub constant: f64,
    pub dividends: Vec<(Coalition, f64)>,
}

impl Harsanyi {
    /// A random game of the kind Stage 1 meets: main effects on every player, pairwise
    /// interactions, and a few higher-order unanimity terms of random size and sign.
    pub fn random(players: usize, seed: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut dividends = Vec::new();
        for i in 0..players {
            dividends.push((1 << i, rng.random_range(-1.0..1.0)));
        }
        for _ in 0..2 * players {
            let pair = sample(&mut rng, players, 2.min(players));
            let t = pair.iter().fold(0, |t, i| t | 1 << i);
            dividends.push((t, 0.5 * rng.random_range(-1.0..1.0)));
        }
        for _ in 0..players {
            let k = rng.random_range(1..=players);
            let t = sample(&mut rng, players, k)
                .iter()
                .fold(0, |t, i| t | 1 << i);
            dividends.push((t, rng.random_range(-1.0..1.0)));
        }
        Harsanyi {
            players,
            constant: rng.random_range(-1.0..1.0),
            dividends,
        }
    }

    fn value(&self, s: Coalition) -> f64 {
        self.constant
            + self
                .dividends
                .iter()
                .filter(|(t, _)| s & t == *t)
                .map(|(_, d)| d)
                .sum::<f64>()
    }
}

impl Game for Harsanyi {
    fn players(&self) -> usize {
        self.players
    }

    fn values(&self, coalitions: &[Coalition]) -> Result<Vec<f64>> {
        Ok(coalitions.iter().map(|&s| self.value(s)).collect())
    }
}

/// v(S) = σ(scale · h(S)) with σ the logistic function and h a [`Harsanyi`] game: bounded and
/// saturating like a class probability, with interactions of every order.
#[derive(Clone, Debug)]
pub struct Squashed {
    pub inner: Harsanyi,
    pub scale: f64,
}

impl Squashed {
    pub fn random(players: usize, seed: u64) -> Self {
        Squashed {
            inner: Harsanyi::random(players, seed),
            scale: 1.0,
        }
    }
}

impl Game for Squashed {
    fn players(&self) -> usize {
        self.inner.players
    }

    fn values(&self, coalitions: &[Coalition]) -> Result<Vec<f64>> {
        Ok(coalitions
            .iter()
            .map(|&s| 1.0 / (1.0 + (-self.scale * self.inner.value(s)).exp()))
            .collect())
    }
}

/// A game from a closure on one coalition.
pub struct FnGame<F> {
    players: usize,
    f: F,
}

impl<F: Fn(Coalition) -> f64> FnGame<F> {
    pub fn new(players: usize, f: F) -> Result<Self> {
        check_players(players)?;
        Ok(FnGame { players, f })
    }
}

impl<F: Fn(Coalition) -> f64> Game for FnGame<F> {
    fn players(&self) -> usize {
        self.players
    }

    fn values(&self, coalitions: &[Coalition]) -> Result<Vec<f64>> {
        Ok(coalitions.iter().map(|&s| (self.f)(s)).collect())
    }
}

/// Games evaluated one after the other, as a [`GameSet`] (a backend would batch them instead).
pub struct Each<G>(pub Vec<G>);

impl<G: Game> GameSet for Each<G> {
    fn players(&self) -> usize {
        self.0.first().map_or(0, Game::players)
    }

    fn games(&self) -> usize {
        self.0.len()
    }

    fn values(&self, coalitions: &[Coalition]) -> Result<Array2<f64>> {
        let mut out = Array2::zeros((self.0.len(), coalitions.len()));
        for (mut row, g) in out.rows_mut().into_iter().zip(&self.0) {
            row.assign(&ndarray::Array1::from(g.values(coalitions)?));
        }
        Ok(out)
    }
}
