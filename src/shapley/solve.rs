//! The constrained weighted least squares behind KernelSHAP-type estimators:
//!
//!   minimise Σ_j w_j (v(S_j) − v(∅) − Σ_{i∈S_j} φ_i)²   subject to   Σ_i φ_i = v(N) − v(∅).
//!
//! The constraint is met exactly by eliminating the last player, φ_{M−1} = Δ − Σ_{i<M−1} φ_i
//! with Δ = v(N) − v(∅), which leaves an unconstrained problem in M − 1 unknowns:
//!
//!   row j: Σ_{i<M−1} (z_ji − z_j,M−1) φ_i ≈ v(S_j) − v(∅) − z_j,M−1 Δ.
//!
//! It is solved by Householder QR of the √w-scaled design (no normal equations: they would
//! square its condition number). The design depends only on the plan, so the pseudo-inverse
//! G = R⁻¹Q₁ᵀ√W is computed once and every game is then a matrix product.

use ndarray::{s, Array1, Array2, ArrayView2, Axis};

use super::sampling::Design;
use super::{grand, Estimator, Plan, Solver};
use crate::error::{Error, Result};

/// Relative size of R's smallest pivot below which the design is taken as rank-deficient.
const RANK_TOL: f64 = 1e-10;

#[derive(Clone, Debug)]
pub(super) struct Regression {
    /// (M − 1) × rows: maps the rows' right-hand sides to φ_0..φ_{M−2}.
    pinv: Array2<f64>,
    /// z_j,M−1 for each row: 1.0 when the row's coalition holds the eliminated player.
    last: Array1<f64>,
}

/// A plan whose coalitions are ∅, N and then the design's rows.
///
/// Near the minimum budget a random design can leave some φ undetermined (0/1 rows are often
/// dependent). The design is then redrawn with a seed derived from the first, a few times: the
/// plan stays a function of the seed, and at practical budgets the first draw is kept.
pub(super) fn regression_plan(
    estimator: Estimator,
    players: usize,
    budget: usize,
    seed: u64,
    draw: impl Fn(u64) -> Result<Design>,
) -> Result<Plan> {
    const ATTEMPTS: u64 = 32;
    let mut failure = None;
    for attempt in 0..ATTEMPTS {
        let design = draw(seed.wrapping_add(attempt.wrapping_mul(0x9E37_79B9_7F4A_7C15)))?;
        match Regression::new(players, &design.rows, &design.weights) {
            Ok(regression) => {
                return Ok(with_design(estimator, players, budget, design, regression))
            }
            Err(rank) => failure = Some((design.rows.len(), rank)),
        }
    }
    let (rows, rank) = failure.expect("at least one attempt");
    Err(Error::Config(format!(
        "shapley: {ATTEMPTS} draws of {rows} coalitions each determined only {rank} of the {} \
         free Shapley values; raise the budget",
        players - 1
    )))
}

fn with_design(
    estimator: Estimator,
    players: usize,
    budget: usize,
    design: Design,
    regression: Regression,
) -> Plan {
    let mut coalitions = vec![0, grand(players)];
    coalitions.extend_from_slice(&design.rows);
    Plan {
        estimator,
        players,
        budget,
        draws: design.draws,
        coalitions,
        empty: 0,
        full: 1,
        solver: Solver::Regression(regression),
    }
}

impl Regression {
    /// The solver for a design, or the design's numerical rank when it is not full.
    pub(super) fn new(
        players: usize,
        rows: &[u32],
        weights: &[f64],
    ) -> std::result::Result<Self, usize> {
        let unknowns = players - 1;
        let bit = |s: u32, i: usize| f64::from((s >> i) & 1);
        let mut a = Array2::zeros((rows.len(), unknowns));
        for (j, (&s, &w)) in rows.iter().zip(weights).enumerate() {
            let sw = w.sqrt();
            let last = bit(s, unknowns);
            for i in 0..unknowns {
                a[[j, i]] = sw * (bit(s, i) - last);
            }
        }
        let mut pinv = pseudo_inverse(a)?;
        for (mut col, &w) in pinv.axis_iter_mut(Axis(1)).zip(weights) {
            col *= w.sqrt();
        }
        let last = rows.iter().map(|&s| bit(s, unknowns)).collect();
        Ok(Regression { pinv, last })
    }

    /// φ for each row of `values` (games × plan coalitions, ∅ and N at `empty` and `full`,
    /// the regression rows from column 2 on).
    pub(super) fn solve_many(
        &self,
        values: ArrayView2<f64>,
        empty: usize,
        full: usize,
    ) -> Array2<f64> {
        let v0 = values.column(empty);
        let delta = &values.column(full) - &v0;
        // Right-hand sides: v(S_j) − v(∅) − z_j,M−1 Δ.
        let mut rhs = values.slice(s![.., 2..]).to_owned();
        for ((mut r, &e), &d) in rhs.axis_iter_mut(Axis(0)).zip(&v0).zip(&delta) {
            r -= e;
            r.scaled_add(-d, &self.last);
        }
        let theta = rhs.dot(&self.pinv.t());
        let mut phi = Array2::zeros((values.nrows(), theta.ncols() + 1));
        phi.slice_mut(s![.., ..theta.ncols()]).assign(&theta);
        let last = theta.ncols();
        for (g, d) in delta.iter().enumerate() {
            phi[[g, last]] = d - theta.row(g).sum();
        }
        phi
    }
}

/// G = R⁻¹Q₁ᵀ for an n × p matrix A of full column rank (n ≥ p), by Householder QR:
/// G·b is the least-squares solution of A x ≈ b. Returns the numerical rank otherwise.
pub(super) fn pseudo_inverse(mut a: Array2<f64>) -> std::result::Result<Array2<f64>, usize> {
    let (n, p) = a.dim();
    if n < p {
        return Err(n);
    }
    // Householder vectors v_k (on rows k..n) with H_k = I − β_k v_k v_kᵀ.
    let mut reflectors: Vec<(Array1<f64>, f64)> = Vec::with_capacity(p);
    for k in 0..p {
        let x = a.slice(s![k.., k]);
        let norm = x.dot(&x).sqrt();
        let mut v = x.to_owned();
        // α takes the sign opposite to x₀ so that v₀ = x₀ − α does not cancel.
        let alpha = if x[0] >= 0.0 { -norm } else { norm };
        v[0] -= alpha;
        let vv = v.dot(&v);
        let beta = if vv > 0.0 { 2.0 / vv } else { 0.0 };
        apply_reflector(&mut a, k, &v, beta);
        reflectors.push((v, beta));
    }
    let diag: Vec<f64> = (0..p).map(|k| a[[k, k]].abs()).collect();
    let biggest = diag.iter().cloned().fold(0.0, f64::max);
    let rank = diag.iter().filter(|&&d| d > RANK_TOL * biggest).count();
    if rank < p || (p > 0 && biggest == 0.0) {
        return Err(rank);
    }
    // Q₁ = H_0 ⋯ H_{p−1} [I_p; 0], built by applying the reflectors in reverse.
    let mut q = Array2::zeros((n, p));
    for k in 0..p {
        q[[k, k]] = 1.0;
    }
    for (k, (v, beta)) in reflectors.iter().enumerate().rev() {
        apply_reflector(&mut q, k, v, *beta);
    }
    // Solve R G = Q₁ᵀ by back substitution, one row of G at a time from the bottom.
    let mut g = q.reversed_axes().as_standard_layout().to_owned();
    for k in (0..p).rev() {
        for j in k + 1..p {
            let (upper, lower) = g.view_mut().split_at(Axis(0), j);
            let rkj = a[[k, j]];
            let mut gk = upper.index_axis_move(Axis(0), k);
            gk.scaled_add(-rkj, &lower.row(0));
        }
        let mut gk = g.row_mut(k);
        gk /= a[[k, k]];
    }
    Ok(g)
}

/// Applies H = I − β v vᵀ (v acting on rows k..) to the columns k.. of `m`. Columns < k are
/// left alone: in R they are already zero from row k down, and in the Q being built they are
/// still unit vectors e_j, j < k, which H does not change.
fn apply_reflector(m: &mut Array2<f64>, k: usize, v: &Array1<f64>, beta: f64) {
    if beta == 0.0 {
        return;
    }
    for j in k..m.ncols() {
        let mut col = m.slice_mut(s![k.., j]);
        let t = beta * v.dot(&col);
        col.scaled_add(-t, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn pseudo_inverse_solves_a_known_least_squares_problem() {
        // Fit y = c0 + c1 x through (0,1), (1,3), (2,4), (3,8): normal equations give
        // c1 = 2.2, c0 = 0.7 (by hand: x̄ = 1.5, ȳ = 4, Sxy = 11, Sxx = 5).
        let a = array![[1.0, 0.0], [1.0, 1.0], [1.0, 2.0], [1.0, 3.0]];
        let g = pseudo_inverse(a).unwrap();
        let c = g.dot(&array![1.0, 3.0, 4.0, 8.0]);
        assert!(
            (c[0] - 0.7).abs() < 1e-14 && (c[1] - 2.2).abs() < 1e-14,
            "{c}"
        );
    }

    #[test]
    fn pseudo_inverse_is_a_left_inverse_of_an_ill_conditioned_matrix() {
        // A Vandermonde-like matrix with condition number ~1e7: the normal equations would
        // lose ~14 digits, QR keeps G·A ≈ I to ~1e-9.
        let n = 40;
        let p = 6;
        let a = Array2::from_shape_fn((n, p), |(i, j)| (1.0 + i as f64 / n as f64).powi(j as i32));
        let g = pseudo_inverse(a.clone()).unwrap();
        let eye = g.dot(&a);
        for i in 0..p {
            for j in 0..p {
                let want = if i == j { 1.0 } else { 0.0 };
                assert!(
                    (eye[[i, j]] - want).abs() < 1e-7,
                    "{i},{j}: {}",
                    eye[[i, j]]
                );
            }
        }
    }

    #[test]
    fn rank_deficiency_is_reported() {
        let a = array![[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]];
        assert_eq!(pseudo_inverse(a).unwrap_err(), 1);
        assert_eq!(pseudo_inverse(Array2::zeros((1, 2))).unwrap_err(), 1);
    }
}
