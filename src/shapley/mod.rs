//! Shapley values of cooperative games over at most [`MAX_PLAYERS`] players.
//!
//! The module knows nothing about images or models: a game is any value function on
//! coalitions (bitmasks). Estimation is split in two so that a caller can batch the coalitions
//! of many games into large backend calls:
//!
//! 1. [`Estimator::plan`] draws the coalitions (deterministic from the seed) and prepares the
//!    solver; it needs no values.
//! 2. The caller evaluates every game on [`Plan::coalitions`] — all games at once if it likes.
//! 3. [`Plan::solve`] / [`Plan::solve_many`] turn the values into Shapley values. Every
//!    estimator here is *linear* in the values, so the expensive part (a QR factorisation) is
//!    done once per plan and solving a game is a matrix–vector product.
//!
//! ```
//! use infoutil::shapley::{Estimator, Game, games::Additive};
//! let game = Additive::new(vec![1.0, 2.0, 3.0]);
//! let plan = Estimator::LeverageShap.plan(game.players(), 8, 7).unwrap();
//! let values = game.values(plan.coalitions()).unwrap();
//! let est = plan.solve(&values).unwrap();
//! assert!((est.phi[2] - 3.0).abs() < 1e-9);
//! ```

mod exact;
pub mod games;
mod kernel;
mod leverage;
mod permutation;
mod sampling;
mod solve;

use ndarray::{Array2, ArrayView2, Axis};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A coalition as a bitmask: bit `i` set means player `i` is in the coalition.
pub type Coalition = u32;

/// Most players a game may have. Exact enumeration at this size is 2^20 ≈ 10^6 coalitions,
/// the largest a test or a ground truth should need; a u32 mask would allow more.
pub const MAX_PLAYERS: usize = 20;

/// Most coalition evaluations a plan may ask for: every coalition of [`MAX_PLAYERS`] players.
/// A larger budget buys nothing (no game has more distinct coalitions) and would only allocate.
pub const MAX_BUDGET: usize = 1 << MAX_PLAYERS;

/// A value function evaluated on many coalitions per call (a backend wants large batches).
pub trait Game {
    fn players(&self) -> usize;
    /// `v(S)` for every coalition, in the order given.
    fn values(&self, coalitions: &[Coalition]) -> Result<Vec<f64>>;
}

/// Many games over the same players, evaluated on one shared coalition set (e.g. one game per
/// image: the coalitions of all images go to the backend together).
pub trait GameSet {
    fn players(&self) -> usize;
    /// Number of games.
    fn games(&self) -> usize;
    /// Values, one row per game and one column per coalition.
    fn values(&self, coalitions: &[Coalition]) -> Result<Array2<f64>>;
}

/// How to estimate. All estimators are seeded and linear in the game's values. In files and
/// configurations an estimator is spelled by its [`name`](Estimator::name), as on the command
/// line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Estimator {
    /// All 2^M coalitions and the Shapley formula; the budget is ignored.
    Exact,
    /// KernelSHAP: sizes drawn with the Shapley kernel, complement pairs, duplicates merged
    /// into weights, exact efficiency. With `enumerate_sizes`, whole sizes are enumerated from
    /// the outside in while the budget allows (as shap's `KernelExplainer` does).
    KernelShap { enumerate_sizes: bool },
    /// Leverage SHAP (Musco & Witter, ICLR 2025): sampling without replacement by leverage
    /// scores (uniform over sizes), paired, importance-weighted constrained regression.
    LeverageShap,
    /// Antithetic permutation sampling: each permutation is used with its reverse.
    Permutation,
}

impl Estimator {
    /// Every estimator, exact enumeration first.
    pub const ALL: [Estimator; 5] = [
        Estimator::Exact,
        Estimator::KernelShap {
            enumerate_sizes: false,
        },
        Estimator::KernelShap {
            enumerate_sizes: true,
        },
        Estimator::LeverageShap,
        Estimator::Permutation,
    ];

    /// The estimator called `name` (see [`name`](Self::name)).
    pub fn from_name(name: &str) -> Option<Estimator> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    /// A short stable name (for tables and files).
    pub fn name(&self) -> &'static str {
        match self {
            Estimator::Exact => "exact",
            Estimator::KernelShap {
                enumerate_sizes: false,
            } => "kernel",
            Estimator::KernelShap {
                enumerate_sizes: true,
            } => "kernel-enum",
            Estimator::LeverageShap => "leverage",
            Estimator::Permutation => "permutation",
        }
    }

    /// Draws the coalitions to evaluate and prepares the solver. `budget` counts coalition
    /// evaluations including v(∅) and v(N); the plan never holds more than `budget` (nor more
    /// than 2^M) distinct coalitions. Exact enumeration ignores the budget.
    pub fn plan(&self, players: usize, budget: usize, seed: u64) -> Result<Plan> {
        check_players(players)?;
        if *self != Estimator::Exact {
            check_budget(budget)?;
        }
        match self {
            Estimator::Exact => Ok(exact::plan(players, budget)),
            Estimator::KernelShap { enumerate_sizes } => {
                solve::regression_plan(*self, players, budget, seed, |seed| {
                    kernel::design(players, budget, seed, *enumerate_sizes)
                })
            }
            Estimator::LeverageShap => {
                solve::regression_plan(*self, players, budget, seed, |seed| {
                    leverage::design(players, budget, seed)
                })
            }
            Estimator::Permutation => permutation::plan(players, budget, seed),
        }
    }
}

impl Serialize for Estimator {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Estimator {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        Estimator::from_name(&name)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown Shapley estimator {name:?}")))
    }
}

/// What an estimate cost and how well it met the efficiency axiom.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Diagnostics {
    pub estimator: Estimator,
    /// The budget asked for.
    pub budget: usize,
    /// Distinct coalitions evaluated, v(∅) and v(N) included (duplicates were merged).
    pub evaluated: usize,
    /// Coalitions drawn before duplicates were merged (equals `evaluated` for enumerations).
    pub draws: usize,
    /// |Σφ − (v(N) − v(∅))|.
    pub efficiency_gap: f64,
}

/// Shapley values of one game and how they were obtained.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub phi: Vec<f64>,
    pub diagnostics: Diagnostics,
}

/// The coalitions an estimator needs and the linear map from their values to φ.
#[derive(Clone, Debug)]
pub struct Plan {
    estimator: Estimator,
    players: usize,
    budget: usize,
    draws: usize,
    coalitions: Vec<Coalition>,
    empty: usize,
    full: usize,
    solver: Solver,
}

#[derive(Clone, Debug)]
enum Solver {
    Exact,
    Regression(solve::Regression),
    Permutation(permutation::Walks),
}

impl Plan {
    pub fn estimator(&self) -> Estimator {
        self.estimator
    }

    pub fn players(&self) -> usize {
        self.players
    }

    /// The coalitions to evaluate, distinct, in the order `solve` expects their values.
    pub fn coalitions(&self) -> &[Coalition] {
        &self.coalitions
    }

    /// Shapley values of one game from its values on [`Plan::coalitions`].
    pub fn solve(&self, values: &[f64]) -> Result<Estimate> {
        let view = ArrayView2::from_shape((1, values.len()), values)
            .map_err(|e| Error::Config(format!("shapley values: {e}")))?;
        Ok(self.solve_many(view)?.pop().expect("one row in, one out"))
    }

    /// Shapley values of many games: one row of `values` per game, one column per coalition.
    pub fn solve_many(&self, values: ArrayView2<f64>) -> Result<Vec<Estimate>> {
        if values.ncols() != self.coalitions.len() {
            return Err(Error::Config(format!(
                "shapley: {} values per game for a plan of {} coalitions",
                values.ncols(),
                self.coalitions.len()
            )));
        }
        if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
            return Err(Error::Config(format!(
                "shapley: a coalition value is not finite ({bad})"
            )));
        }
        let phi = match &self.solver {
            Solver::Exact => exact::solve_many(self.players, values),
            Solver::Regression(r) => r.solve_many(values, self.empty, self.full),
            Solver::Permutation(w) => w.solve_many(values, self.players),
        };
        Ok(phi
            .axis_iter(Axis(0))
            .zip(values.axis_iter(Axis(0)))
            .map(|(phi, v)| self.estimate(phi.to_vec(), v[self.full] - v[self.empty]))
            .collect())
    }

    /// Evaluates one game on the plan and solves it.
    pub fn run<G: Game + ?Sized>(&self, game: &G) -> Result<Estimate> {
        self.check_game(game.players())?;
        let values = game.values(&self.coalitions)?;
        if values.len() != self.coalitions.len() {
            return Err(Error::Config(format!(
                "shapley: the game returned {} values for {} coalitions",
                values.len(),
                self.coalitions.len()
            )));
        }
        self.solve(&values)
    }

    /// Evaluates many games on the plan in one call and solves them.
    pub fn run_set<G: GameSet + ?Sized>(&self, games: &G) -> Result<Vec<Estimate>> {
        self.check_game(games.players())?;
        let values = games.values(&self.coalitions)?;
        if values.dim() != (games.games(), self.coalitions.len()) {
            return Err(Error::Config(format!(
                "shapley: the game set returned {:?} values for {} games × {} coalitions",
                values.dim(),
                games.games(),
                self.coalitions.len()
            )));
        }
        self.solve_many(values.view())
    }

    fn check_game(&self, players: usize) -> Result<()> {
        if players != self.players {
            return Err(Error::Config(format!(
                "shapley: a game of {players} players on a plan for {}",
                self.players
            )));
        }
        Ok(())
    }

    fn estimate(&self, phi: Vec<f64>, delta: f64) -> Estimate {
        let gap = (phi.iter().sum::<f64>() - delta).abs();
        Estimate {
            phi,
            diagnostics: Diagnostics {
                estimator: self.estimator,
                budget: self.budget,
                evaluated: self.coalitions.len(),
                draws: self.draws,
                efficiency_gap: gap,
            },
        }
    }
}

/// One-call convenience: plan, evaluate and solve a single game.
pub fn shapley<G: Game + ?Sized>(
    game: &G,
    estimator: Estimator,
    budget: usize,
    seed: u64,
) -> Result<Estimate> {
    estimator.plan(game.players(), budget, seed)?.run(game)
}

fn check_players(players: usize) -> Result<()> {
    if players == 0 || players > MAX_PLAYERS {
        return Err(Error::Config(format!(
            "shapley: {players} players; between 1 and {MAX_PLAYERS} are supported \
             (coalitions are u32 bitmasks and exact enumeration is 2^players)"
        )));
    }
    Ok(())
}

/// A budget must pay for v(∅) and v(N) and stay within [`MAX_BUDGET`].
pub fn check_budget(budget: usize) -> Result<()> {
    if !(2..=MAX_BUDGET).contains(&budget) {
        return Err(Error::Config(format!(
            "budget {budget}: between 2 (v(∅) and v(all)) and {MAX_BUDGET} (every coalition of \
             {MAX_PLAYERS} players) coalition evaluations per image"
        )));
    }
    Ok(())
}

/// The coalition of all `players` players.
pub fn grand(players: usize) -> Coalition {
    debug_assert!(players <= MAX_PLAYERS);
    ((1u64 << players) - 1) as Coalition
}

/// Runs `f` over the rows of a games × coalitions matrix in parallel, collecting one φ row each.
fn per_game<F>(values: ArrayView2<f64>, players: usize, f: F) -> Array2<f64>
where
    F: Fn(ndarray::ArrayView1<f64>, &mut [f64]) + Sync,
{
    let rows: Vec<Vec<f64>> = (0..values.nrows())
        .into_par_iter()
        .map(|g| {
            let mut phi = vec![0.0; players];
            f(values.row(g), &mut phi);
            phi
        })
        .collect();
    Array2::from_shape_vec((rows.len(), players), rows.concat()).expect("rows of `players` each")
}
