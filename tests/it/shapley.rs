//! The Shapley engine against independent references: closed-form Shapley values, a
//! brute-force permutation average, and the exact values for the sampling estimators.

use crate::common::rel_l2;
use infoutil::shapley::games::{Additive, Each, FnGame, Harsanyi, Squashed};
use infoutil::shapley::{shapley, Coalition, Estimate, Estimator, Game, MAX_PLAYERS};
use ndarray::Array2;

const KERNEL: Estimator = Estimator::KernelShap {
    enumerate_sizes: false,
};
const KERNEL_ENUM: Estimator = Estimator::KernelShap {
    enumerate_sizes: true,
};
const SAMPLERS: [Estimator; 4] = [
    KERNEL,
    KERNEL_ENUM,
    Estimator::LeverageShap,
    Estimator::Permutation,
];

fn exact<G: Game + ?Sized>(game: &G) -> Vec<f64> {
    let est = shapley(game, Estimator::Exact, 0, 0).unwrap();
    assert!(est.diagnostics.efficiency_gap < 1e-12);
    est.phi
}

fn assert_close(got: &[f64], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "{what}: φ[{i}] = {g}, want {w}");
    }
}

fn members(s: Coalition, players: usize) -> impl Iterator<Item = usize> {
    (0..players).filter(move |i| s >> i & 1 == 1)
}

// ---------------------------------------------------------------- exact, closed forms

#[test]
fn exact_additive_game_gives_the_weights() {
    let w = vec![0.5, -1.25, 3.0, 0.0, 2.5, -0.75, 1.0];
    assert_close(&exact(&Additive::new(w.clone())), &w, 1e-12, "additive");
}

#[test]
fn exact_unanimity_game_splits_equally_in_the_carrier() {
    let m = 10;
    let t: Coalition = 0b10_0110_0001;
    let game = FnGame::new(m, |s| if s & t == t { 1.0 } else { 0.0 }).unwrap();
    let want: Vec<f64> = (0..m)
        .map(|i| if t >> i & 1 == 1 { 0.25 } else { 0.0 })
        .collect();
    assert_close(&exact(&game), &want, 1e-12, "unanimity");
}

#[test]
fn exact_sum_of_unanimity_games_is_the_sum_of_their_values() {
    for seed in 0..5 {
        let game = Harsanyi::random(12, seed);
        let mut want = vec![0.0; 12];
        for &(t, d) in &game.dividends {
            let size = t.count_ones() as f64;
            for i in members(t, 12) {
                want[i] += d / size;
            }
        }
        assert_close(&exact(&game), &want, 1e-12, "harsanyi");
    }
}

#[test]
fn exact_symmetric_game_splits_the_surplus_equally() {
    let m = 9;
    let f = |k: u32| (k as f64).powi(3) - 2.0 * k as f64 + 7.0;
    let game = FnGame::new(m, |s: Coalition| f(s.count_ones())).unwrap();
    let each = (f(m as u32) - f(0)) / m as f64;
    assert_close(&exact(&game), &vec![each; m], 1e-12, "symmetric");
}

#[test]
fn exact_dummy_player_gets_nothing() {
    // Player 3 never changes the value.
    let game = FnGame::new(6, |s: Coalition| {
        let s = s & !(1 << 3);
        (s as f64).sqrt() + (s.count_ones() as f64).powi(2)
    })
    .unwrap();
    let phi = exact(&game);
    assert!(phi[3].abs() < 1e-12, "{}", phi[3]);
    assert!(phi.iter().any(|p| p.abs() > 0.1));
}

#[test]
fn exact_product_game_matches_hand_computation() {
    // v(S) = Π_{i∈S} a_i (empty product 1), three players. By hand, for player 1:
    // φ_1 = 1/3 (a1 − 1) + 1/6 [(a1a2 − a2) + (a1a3 − a3)] + 1/3 (a1a2a3 − a2a3).
    let a = [2.0, 3.0, 5.0];
    let game = FnGame::new(3, |s: Coalition| members(s, 3).map(|i| a[i]).product()).unwrap();
    let phi_of = |i: usize, j: usize, k: usize| {
        (a[i] - 1.0) / 3.0
            + ((a[i] * a[j] - a[j]) + (a[i] * a[k] - a[k])) / 6.0
            + (a[i] * a[j] * a[k] - a[j] * a[k]) / 3.0
    };
    // a = 2, 3, 5: φ = 1/3 + 8/6 + 15/3 = 20/3, 2/3 + 14/6 + 20/3 = 29/3,
    // 4/3 + 20/6 + 24/3 = 38/3 (sum 29 = v(N) − v(∅)).
    let want = [phi_of(0, 1, 2), phi_of(1, 0, 2), phi_of(2, 0, 1)];
    assert_close(
        &want,
        &[20.0 / 3.0, 29.0 / 3.0, 38.0 / 3.0],
        1e-12,
        "hand arithmetic",
    );
    assert_close(&exact(&game), &want, 1e-12, "product");
}

#[test]
fn exact_airport_game_matches_littlechild_owen() {
    // v(S) = max_{i∈S} c_i with c sorted: φ_i = Σ_{j≤i} (c_j − c_{j−1}) / (M − j).
    let c = [1.0, 2.5, 2.5, 4.0, 7.0, 7.5, 10.0, 11.0];
    let m = c.len();
    let game = FnGame::new(m, |s: Coalition| {
        members(s, m).map(|i| c[i]).fold(0.0, f64::max)
    })
    .unwrap();
    let want: Vec<f64> = (0..m)
        .map(|i| {
            (0..=i)
                .map(|j| (c[j] - if j == 0 { 0.0 } else { c[j - 1] }) / (m - j) as f64)
                .sum()
        })
        .collect();
    assert_close(&exact(&game), &want, 1e-12, "airport");
}

#[test]
fn exact_matches_the_average_over_all_permutations() {
    let m = 5;
    let game = Squashed::random(m, 11);
    let v = game.values(&(0..32).collect::<Vec<_>>()).unwrap();
    let mut perms = vec![vec![]];
    for _ in 0..m {
        perms = perms
            .into_iter()
            .flat_map(|p: Vec<usize>| {
                (0..m)
                    .filter(|i| !p.contains(i))
                    .map(|i| [p.as_slice(), &[i]].concat())
                    .collect::<Vec<_>>()
            })
            .collect();
    }
    assert_eq!(perms.len(), 120);
    let mut want = vec![0.0; m];
    for p in &perms {
        let mut s = 0usize;
        for &i in p {
            want[i] += v[s | 1 << i] - v[s];
            s |= 1 << i;
        }
    }
    want.iter_mut().for_each(|x| *x /= 120.0);
    assert_close(&exact(&game), &want, 1e-12, "permutations");
}

// ---------------------------------------------------------------- sampling estimators

#[test]
fn samplers_recover_additive_games_at_any_budget() {
    let m = 16;
    let w: Vec<f64> = (0..m).map(|i| (i as f64 * 0.7).sin() * 3.0).collect();
    let game = Additive::new(w.clone());
    for est in SAMPLERS {
        for budget in [48, 64, 256, 2048] {
            for seed in 0..3 {
                let e = shapley(&game, est, budget, seed).unwrap();
                assert_close(&e.phi, &w, 1e-9, &format!("{est:?} at {budget}"));
            }
        }
    }
}

#[test]
fn samplers_meet_efficiency_exactly() {
    for seed in 0..4 {
        let game = Squashed::random(16, 100 + seed);
        for est in SAMPLERS {
            for budget in [48, 64, 256, 1024, 2048] {
                let e = shapley(&game, est, budget, seed).unwrap();
                assert!(
                    e.diagnostics.efficiency_gap <= 1e-9,
                    "{est:?} at {budget}: gap {}",
                    e.diagnostics.efficiency_gap
                );
                assert!(e.diagnostics.evaluated <= budget);
            }
        }
    }
}

#[test]
fn regression_estimators_are_exact_when_the_budget_covers_all_coalitions() {
    for m in [1, 2, 3, 8] {
        let game = Squashed::random(m, 5);
        let truth = exact(&game);
        for est in [KERNEL, KERNEL_ENUM, Estimator::LeverageShap] {
            for budget in [1 << m, 10 << m] {
                let e = shapley(&game, est, budget, 1).unwrap();
                assert_eq!(e.diagnostics.evaluated, 1 << m);
                assert_close(&e.phi, &truth, 1e-10, &format!("{est:?}, {m} players"));
            }
        }
    }
}

#[test]
fn errors_shrink_towards_exact_as_the_budget_grows() {
    let game = Squashed::random(10, 8);
    let truth = exact(&game);
    for est in [KERNEL_ENUM, Estimator::LeverageShap] {
        let err = |b| rel_l2(&shapley(&game, est, b, 3).unwrap().phi, &truth);
        let (small, large) = (err(32), err(1000));
        assert!(large < small / 3.0, "{est:?}: {small} → {large}");
    }
}

#[test]
fn same_seed_same_estimate_other_seed_other_estimate() {
    let game = Squashed::random(16, 21);
    for est in SAMPLERS {
        let a = shapley(&game, est, 256, 42).unwrap();
        let b = shapley(&game, est, 256, 42).unwrap();
        let c = shapley(&game, est, 256, 43).unwrap();
        assert_eq!(a, b, "{est:?}");
        assert_ne!(a.phi, c.phi, "{est:?}");
    }
}

#[test]
fn leverage_beats_kernel_shap_at_equal_budget() {
    // Mean relative L2 error over 40 random 16-player games (20 sums of unanimity games, 20
    // logistic squashings of such sums), a fresh plan seed per game, fixed seeds throughout.
    // Measured here: kernel/leverage = 1.15 (256) and 1.16 (1024); docs/shapley.md has
    // 1.1–1.3 on 100 games per family. The asserted 0.9 is the low end of that range.
    let games: Vec<Box<dyn Game>> = (0..20u64)
        .flat_map(|s| -> [Box<dyn Game>; 2] {
            [
                Box::new(Harsanyi::random(16, 2000 + s)),
                Box::new(Squashed::random(16, 3000 + s)),
            ]
        })
        .collect();
    let truths: Vec<Vec<f64>> = games.iter().map(|g| exact(g.as_ref())).collect();
    for budget in [256, 1024] {
        let mean_err = |est: Estimator| {
            games
                .iter()
                .zip(&truths)
                .enumerate()
                .map(|(seed, (g, t))| {
                    rel_l2(
                        &shapley(g.as_ref(), est, budget, seed as u64).unwrap().phi,
                        t,
                    )
                })
                .sum::<f64>()
                / games.len() as f64
        };
        let kernel = mean_err(KERNEL);
        let leverage = mean_err(Estimator::LeverageShap);
        assert!(
            leverage < 0.9 * kernel,
            "budget {budget}: leverage {leverage}, kernel {kernel}"
        );
    }
}

// ---------------------------------------------------------------- batching and errors

#[test]
fn solving_many_games_equals_solving_each() {
    let games: Vec<Squashed> = (0..5).map(|s| Squashed::random(12, s)).collect();
    for est in [
        Estimator::Exact,
        KERNEL,
        Estimator::LeverageShap,
        Estimator::Permutation,
    ] {
        let plan = est.plan(12, 300, 9).unwrap();
        let many = plan.run_set(&Each(games.clone())).unwrap();
        for (g, m) in games.iter().zip(&many) {
            let one: Estimate = plan.run(g).unwrap();
            assert_close(&one.phi, &m.phi, 1e-13, &format!("{est:?}"));
        }
    }
}

#[test]
fn estimates_are_linear_in_the_values() {
    let plan = Estimator::LeverageShap.plan(10, 100, 1).unwrap();
    let n = plan.coalitions().len();
    let a: Vec<f64> = (0..n).map(|i| (i as f64).cos()).collect();
    let b: Vec<f64> = (0..n).map(|i| (i as f64 * 0.3).sin()).collect();
    let both: Vec<f64> = a.iter().zip(&b).map(|(x, y)| 2.0 * x - y).collect();
    let (pa, pb) = (plan.solve(&a).unwrap().phi, plan.solve(&b).unwrap().phi);
    let want: Vec<f64> = pa.iter().zip(&pb).map(|(x, y)| 2.0 * x - y).collect();
    assert_close(&plan.solve(&both).unwrap().phi, &want, 1e-12, "linearity");
}

#[test]
fn plans_hold_distinct_coalitions_with_the_endpoints() {
    for est in SAMPLERS {
        let plan = est.plan(16, 1024, 4).unwrap();
        let c = plan.coalitions();
        let set: std::collections::HashSet<_> = c.iter().collect();
        assert_eq!(set.len(), c.len(), "{est:?}");
        assert!(set.contains(&0) && set.contains(&0xFFFF), "{est:?}");
        assert!(c.iter().all(|&s| s <= 0xFFFF));
    }
}

#[test]
fn bad_inputs_are_refused_with_a_reason() {
    let msg = |r: infoutil::Result<_>| {
        r.map(|_: infoutil::shapley::Plan| ())
            .unwrap_err()
            .to_string()
    };
    assert!(msg(KERNEL.plan(MAX_PLAYERS + 1, 100, 0)).contains("players"));
    assert!(msg(KERNEL.plan(0, 100, 0)).contains("players"));
    assert!(msg(Estimator::LeverageShap.plan(16, 31, 0)).contains("budget"));
    assert!(msg(Estimator::Permutation.plan(16, 10, 0)).contains("budget"));
    let plan = KERNEL.plan(4, 12, 0).unwrap();
    assert!(plan.solve(&[1.0; 3]).is_err());
    let mut v = vec![1.0; plan.coalitions().len()];
    v[2] = f64::NAN;
    assert!(plan.solve(&v).unwrap_err().to_string().contains("finite"));
    assert!(plan.run(&Additive::new(vec![1.0; 5])).is_err());
    let _ = Array2::<f64>::zeros((0, 0));
}

/// Orders are used in antithetic pairs only: a budget that fits a third, unpaired order (48 for
/// 16 players: ∅, N and 15 new prefixes per order) stops at two.
#[test]
fn permutation_plans_hold_whole_pairs_of_orders() {
    let plan = infoutil::shapley::Estimator::Permutation
        .plan(16, 48, 0)
        .unwrap();
    assert_eq!(plan.coalitions().len(), 32);
}

/// Below 3 coalitions per player the regression estimators only interpolate (measured: errors of
/// 7–10× the values on the shipped teacher at 2M): such budgets are refused, saying why.
#[test]
fn too_small_a_regression_budget_is_refused() {
    for e in [Estimator::LeverageShap, KERNEL] {
        let msg = e.plan(16, 47, 0).expect_err("refused").to_string();
        assert!(msg.contains("at least 48"), "{msg}");
        assert!(e.plan(16, 48, 0).is_ok());
    }
}
