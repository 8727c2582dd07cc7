//! From a g×g Shapley map to informative crops: average-pool with a `span × span` kernel at
//! stride 1, then take the arg-max cell, with Gaussian noise σ = α·std(pooled map) added for all
//! but the last crop (the paper's noise: without it the crops of an image collapse onto one).

use ndarray::{Array2, ArrayView2};
use ndarray_rand::rand_distr::{Distribution, Normal};
use rand::Rng;

use super::grid::{Grid, PixelBox};

/// How crops are chosen from a Shapley map.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct CropRule {
    /// Patches per side of a crop (the pooling kernel); 2 gives half the image side.
    pub span: usize,
    /// Crops per image; the last one is taken from the noise-free map.
    pub per_image: usize,
    /// Noise scale α in σ = α·std(pooled map).
    pub alpha: f64,
}

impl Default for CropRule {
    fn default() -> Self {
        CropRule {
            span: 2,
            per_image: 5,
            alpha: 2.0,
        }
    }
}

impl CropRule {
    /// Most crops per image: more only repeat the same few blocks under more noise.
    pub const MAX_PER_IMAGE: usize = 256;

    /// The default crops per image for a run that keeps `need` crops of a class (IPC × factor²)
    /// from `candidates` images: the default 5, or four times the share of each candidate when
    /// that is more. Noisy argmaxes of one map land on the same few blocks, so crops repeat: on
    /// the shipped teacher one candidate gave 3 distinct crops of 5 and of 8, and 4 or more of
    /// 12 in every class, where `--factor 2 --ipc 1` needs 4.
    pub fn default_per_image(need: usize, candidates: usize) -> usize {
        let share = need.div_ceil(candidates.max(1));
        (4 * share).clamp(Self::default().per_image, Self::MAX_PER_IMAGE)
    }

    /// The rule's own limits on a `grid × grid` map.
    pub fn check(&self, grid: usize) -> crate::error::Result<()> {
        let fail = |m: String| Err(crate::error::Error::Config(m));
        if self.span == 0 || self.span > grid {
            return fail(format!(
                "`span` {}: between 1 and `grid` ({grid}) patches per side",
                self.span
            ));
        }
        if self.per_image == 0 || self.per_image > Self::MAX_PER_IMAGE {
            return fail(format!(
                "`per_image` {}: between 1 and {}",
                self.per_image,
                Self::MAX_PER_IMAGE
            ));
        }
        if !self.alpha.is_finite() || self.alpha < 0.0 {
            return fail(format!(
                "`alpha` {}: the noise scale must be a finite number ≥ 0 (0 turns noise off)",
                self.alpha
            ));
        }
        Ok(())
    }
}

/// Mean over every `span × span` window (stride 1): `(g − span + 1)²` cells.
pub fn pool(map: ArrayView2<f64>, span: usize) -> Array2<f64> {
    let (g, _) = map.dim();
    let n = g + 1 - span;
    Array2::from_shape_fn((n, n), |(i, j)| {
        map.slice(ndarray::s![i..i + span, j..j + span])
            .mean()
            .expect("non-empty window")
    })
}

/// Population standard deviation.
fn std(a: &Array2<f64>) -> f64 {
    let m = a.mean().unwrap_or(0.0);
    (a.mapv(|v| (v - m).powi(2)).mean().unwrap_or(0.0)).sqrt()
}

/// Row-major arg-max; the first of equal values wins, so ties break the same way every run.
fn argmax(a: &Array2<f64>) -> (usize, usize) {
    let (mut best, mut at) = (f64::NEG_INFINITY, (0, 0));
    for ((i, j), &v) in a.indexed_iter() {
        if v > best {
            best = v;
            at = (i, j);
        }
    }
    at
}

/// The crops of one image: `rule.per_image` boxes in the grid's pixels, noisy ones first.
pub fn choose(
    map: ArrayView2<f64>,
    grid: &Grid,
    rule: &CropRule,
    rng: &mut impl Rng,
) -> Vec<PixelBox> {
    let pooled = pool(map, rule.span);
    let sigma = rule.alpha * std(&pooled);
    (0..rule.per_image)
        .map(|k| {
            let clean = k + 1 == rule.per_image;
            let cell = if clean || sigma <= 0.0 {
                argmax(&pooled)
            } else {
                // σ is finite and > 0 here: `CropRule::check` keeps α finite and maps are finite.
                let noise = Normal::new(0.0, sigma).expect("finite σ > 0");
                argmax(&pooled.mapv(|v| v + noise.sample(rng)))
            };
            grid.block(cell.0, cell.1, rule.span)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;
    use rand::SeedableRng;

    #[test]
    fn pooling_averages_two_by_two_windows() {
        let m = array![[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]];
        assert_eq!(pool(m.view(), 2), array![[3.0, 4.0], [6.0, 7.0]]);
        assert_eq!(pool(m.view(), 1), m);
    }

    #[test]
    fn the_clean_crop_sits_on_the_most_informative_block() {
        let mut m = Array2::<f64>::zeros((4, 4));
        m[[2, 3]] = 5.0;
        m[[3, 3]] = 5.0;
        let grid = Grid::new(4, 28, 28).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let crops = choose(m.view(), &grid, &CropRule::default(), &mut rng);
        assert_eq!(crops.len(), 5);
        assert_eq!(crops[4], grid.block(2, 2, 2));
    }

    #[test]
    fn without_noise_all_crops_agree_and_with_noise_they_spread() {
        let m = Array2::from_shape_fn((4, 4), |(i, j)| (i * 4 + j) as f64 * 0.01);
        let grid = Grid::new(4, 28, 28).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let rule = CropRule {
            alpha: 0.0,
            ..CropRule::default()
        };
        let crops = choose(m.view(), &grid, &rule, &mut rng);
        assert!(crops.iter().all(|c| *c == crops[0]));
        let spread: std::collections::HashSet<_> = (0..20)
            .flat_map(|_| choose(m.view(), &grid, &CropRule::default(), &mut rng))
            .map(|b| (b.y0, b.x0))
            .collect();
        assert!(
            spread.len() > 2,
            "noise α=2 should move crops around: {spread:?}"
        );
    }

    #[test]
    fn same_seed_same_crops() {
        let m = Array2::from_shape_fn((4, 4), |(i, j)| ((i * 7 + j * 3) % 5) as f64);
        let grid = Grid::new(4, 28, 28).unwrap();
        let run = |s| {
            choose(
                m.view(),
                &grid,
                &CropRule::default(),
                &mut rand::rngs::StdRng::seed_from_u64(s),
            )
        };
        assert_eq!(run(9), run(9));
    }
}
