//! Relative L2 error against exact Shapley values, per estimator and budget, on random
//! 16-player games; plus planning and solving times. Prints a Markdown table.
//!
//!     CARGO_TARGET_DIR=… cargo bench --bench shapley_error
//!
//! SHAPLEY_GAMES sets the number of games per family (default 100).

use std::time::Instant;

use infoutil::shapley::games::{Harsanyi, Squashed};
use infoutil::shapley::{Estimator, Game};
use ndarray::Array2;

const PLAYERS: usize = 16;
const BUDGETS: [usize; 4] = [64, 256, 1024, 2048];
/// Every sampling estimator (all but Exact, the reference).
fn estimators() -> impl Iterator<Item = Estimator> {
    Estimator::ALL
        .into_iter()
        .filter(|e| *e != Estimator::Exact)
}

struct Family {
    name: &'static str,
    games: Box<dyn Fn(u64) -> Box<dyn Game + Sync>>,
}

fn main() {
    let n: u64 = std::env::var("SHAPLEY_GAMES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(100);
    let families = [
        Family {
            name: "harsanyi (unanimity sums + pairs)",
            games: Box::new(|s| Box::new(Harsanyi::random(PLAYERS, s))),
        },
        Family {
            name: "squashed (logistic of the above)",
            games: Box::new(|s| Box::new(Squashed::random(PLAYERS, s))),
        },
    ];
    println!("{n} games per family, {PLAYERS} players, a fresh plan seed per game\n");
    for family in &families {
        let games: Vec<_> = (0..n).map(|s| (family.games)(10_000 + s)).collect();
        let exact_plan = Estimator::Exact.plan(PLAYERS, 0, 0).unwrap();
        let t = Instant::now();
        let truths: Vec<Vec<f64>> = games
            .iter()
            .map(|g| exact_plan.run(g.as_ref()).unwrap().phi)
            .collect();
        let exact_ms = t.elapsed().as_secs_f64() * 1e3 / n as f64;
        println!(
            "### {} (exact: {exact_ms:.1} ms per game incl. 65 536 values)\n",
            family.name
        );
        table(&games, &truths);
    }
    timing();
}

fn table(games: &[Box<dyn Game + Sync>], truths: &[Vec<f64>]) {
    print!("| budget |");
    for e in estimators() {
        print!(" {} |", e.name());
    }
    println!(" kernel / leverage |");
    println!("|---:|{}---:|", "---:|".repeat(estimators().count()));
    for budget in BUDGETS {
        let medians: Vec<f64> = estimators()
            .map(|e| median(errors(e, budget, games, truths)))
            .collect();
        print!("| {budget} |");
        for m in &medians {
            print!(" {m:.4} |");
        }
        println!(" {:.2} |", medians[0] / medians[2]);
    }
    println!("\n(median relative L2 error ‖φ̂ − φ‖ / ‖φ‖)\n");
}

fn errors(
    est: Estimator,
    budget: usize,
    games: &[Box<dyn Game + Sync>],
    truths: &[Vec<f64>],
) -> Vec<f64> {
    games
        .iter()
        .zip(truths)
        .enumerate()
        .map(|(seed, (g, truth))| {
            let phi = est
                .plan(PLAYERS, budget, seed as u64)
                .unwrap()
                .run(g.as_ref())
                .unwrap()
                .phi;
            rel_l2(&phi, truth)
        })
        .collect()
}

/// Planning time (once per plan) and solving time per game when 1000 games share a plan.
fn timing() {
    let games = 1000;
    let values = Array2::from_shape_fn((games, 1 << PLAYERS), |(g, s)| {
        ((g * 31 + s) as f64 * 0.618).sin()
    });
    println!("### Solver time ({games} games sharing one plan)\n");
    println!("| estimator | budget | plan (ms) | solve per game (µs) |");
    println!("|---|---:|---:|---:|");
    for budget in BUDGETS {
        for e in estimators() {
            let t = Instant::now();
            let plan = e.plan(PLAYERS, budget, 1).unwrap();
            let plan_ms = t.elapsed().as_secs_f64() * 1e3;
            let cols: Vec<usize> = plan.coalitions().iter().map(|&s| s as usize).collect();
            let v = values.select(ndarray::Axis(1), &cols);
            let t = Instant::now();
            let out = plan.solve_many(v.view()).unwrap();
            let solve_us = t.elapsed().as_secs_f64() * 1e6 / games as f64;
            assert_eq!(out.len(), games);
            println!("| {} | {budget} | {plan_ms:.2} | {solve_us:.2} |", e.name());
        }
    }
    let plan = Estimator::Exact.plan(PLAYERS, 0, 0).unwrap();
    let few = values.slice(ndarray::s![..100, ..]);
    let t = Instant::now();
    plan.solve_many(few).unwrap();
    let us = t.elapsed().as_secs_f64() * 1e6 / 100.0;
    println!("| exact | 65536 | – | {us:.0} |");
}

fn rel_l2(est: &[f64], truth: &[f64]) -> f64 {
    let num: f64 = est.iter().zip(truth).map(|(a, b)| (a - b).powi(2)).sum();
    let den: f64 = truth.iter().map(|b| b * b).sum();
    (num / den).sqrt()
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}
