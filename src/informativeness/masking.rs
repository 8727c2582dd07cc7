//! Coalitions of patches as images: the patches in the coalition come from the image, the
//! others from a baseline. And the value of a coalition, read from the teacher's logits.

use ndarray::{s, Array3, ArrayView2, ArrayView3, ArrayViewMut3};
use serde::{Deserialize, Serialize};

use super::grid::Grid;
use crate::base::logits::log_prob;
use crate::data::preprocess::InputSpec;

/// What replaces the patches outside a coalition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Baseline {
    /// 0 in the teacher's normalised input space (Captum's default).
    Zero,
    /// The dataset's per-channel mean pixel, normalised.
    Mean,
    /// The image itself, box-blurred (a quarter of the image side): removes detail, keeps colour.
    Blur,
    /// Pixel value 0, normalised: the empty background of dark-background data such as
    /// (Fashion-)MNIST, where the zero baseline is a mid grey.
    Black,
}

/// What a coalition is worth: the teacher's output for the image's class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Value {
    Logit,
    Prob,
    Logprob,
}

impl Value {
    /// The teacher output a coalition value is, in words (for errors).
    pub fn output_name(self) -> &'static str {
        match self {
            Value::Logit => "logit",
            Value::Prob => "probability",
            Value::Logprob => "log-probability",
        }
    }

    /// The value of one row of logits for class `c`, in f64 for the solver.
    pub fn of(self, logits: ndarray::ArrayView1<f32>, c: usize) -> f64 {
        match self {
            Value::Logit => logits[c] as f64,
            Value::Logprob => log_prob(logits, c),
            Value::Prob => log_prob(logits, c).exp(),
        }
    }
}

/// The baseline image for `image` (`[C, H, W]`, teacher input space).
/// `mean_pixel` is the dataset's per-channel mean in raw pixel units (0–255).
pub fn baseline_image(
    kind: Baseline,
    image: ArrayView3<f32>,
    spec: &InputSpec,
    mean_pixel: &[f32],
) -> Array3<f32> {
    // One raw pixel value per channel, normalised, everywhere.
    let flat = |pixel: &dyn Fn(usize) -> f32| {
        Array3::from_shape_fn(image.raw_dim(), |(c, _, _)| {
            spec.normalize_value(c, pixel(c))
        })
    };
    match kind {
        Baseline::Zero => Array3::zeros(image.raw_dim()),
        Baseline::Mean => flat(&|c| mean_pixel[c]),
        Baseline::Blur => box_blur(image, (image.dim().1 / 4).max(1)),
        Baseline::Black => flat(&|_| 0.0),
    }
}

/// Separable box blur with radius `r`, edges clamped.
fn box_blur(image: ArrayView3<f32>, r: usize) -> Array3<f32> {
    let (c, h, w) = image.dim();
    let blur_axis = |src: &Array3<f32>, along_rows: bool| {
        Array3::from_shape_fn((c, h, w), |(ch, y, x)| {
            let (pos, len) = if along_rows { (y, h) } else { (x, w) };
            let (lo, hi) = (pos.saturating_sub(r), (pos + r).min(len - 1));
            let sum: f32 = (lo..=hi)
                .map(|p| {
                    if along_rows {
                        src[[ch, p, x]]
                    } else {
                        src[[ch, y, p]]
                    }
                })
                .sum();
            sum / (hi - lo + 1) as f32
        })
    };
    let once = blur_axis(&image.to_owned(), true);
    blur_axis(&once, false)
}

/// Write the image of `coalition` (bit p set ⇒ patch p kept) into `out`.
///
/// Not the pipeline's masking, which the game graph does inside the teacher's run: the plain
/// reference that tests/it/game_graph.rs checks the graph against and benches/attribution.rs
/// times it against. Hidden from the documentation for that reason, public so they can call it.
#[doc(hidden)]
pub fn masked_into(
    image: ArrayView3<f32>,
    baseline: ArrayView3<f32>,
    grid: &Grid,
    coalition: u32,
    mut out: ArrayViewMut3<f32>,
) {
    for p in 0..grid.players() {
        let b = grid.patch(p);
        let src = if coalition >> p & 1 == 1 {
            image
        } else {
            baseline
        };
        out.slice_mut(s![.., b.y0..b.y1, b.x0..b.x1])
            .assign(&src.slice(s![.., b.y0..b.y1, b.x0..b.x1]));
    }
}

/// Coalition values from a batch of logits (one row per masked image) for class `c`: with
/// [`masked_into`], the reference of tests/it/game_graph.rs and benches/attribution.rs (the
/// pipeline's values come out of the game graph).
#[doc(hidden)]
pub fn values(logits: ArrayView2<f32>, c: usize, value: Value) -> Vec<f64> {
    logits
        .rows()
        .into_iter()
        .map(|row| value.of(row, c))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::preprocess::Normalization;
    use ndarray::array;

    #[test]
    fn a_coalition_keeps_its_patches_and_replaces_the_rest() {
        let grid = Grid::new(2, 4, 4).unwrap();
        let image = Array3::from_elem((1, 4, 4), 1.0f32);
        let base = Array3::from_elem((1, 4, 4), -1.0f32);
        let mut out = Array3::zeros((1, 4, 4));
        masked_into(image.view(), base.view(), &grid, 0b1001, out.view_mut());
        // players 0 (top-left) and 3 (bottom-right) kept
        assert_eq!(out[[0, 0, 0]], 1.0);
        assert_eq!(out[[0, 3, 3]], 1.0);
        assert_eq!(out[[0, 0, 3]], -1.0);
        assert_eq!(out[[0, 3, 0]], -1.0);
        assert_eq!(out.sum(), 0.0);
    }

    #[test]
    fn values_are_logit_probability_and_log_probability() {
        let logits = array![[1.0f32, 2.0, 3.0]];
        let z: f64 = [1.0f64, 2.0, 3.0].iter().map(|v| v.exp()).sum();
        let p = 2f64.exp() / z;
        assert!((values(logits.view(), 1, Value::Logit)[0] - 2.0).abs() < 1e-12);
        assert!((values(logits.view(), 1, Value::Prob)[0] - p).abs() < 1e-7);
        assert!((values(logits.view(), 1, Value::Logprob)[0] - p.ln()).abs() < 1e-6);
    }

    #[test]
    fn the_mean_and_black_baselines_are_normalised_pixels() {
        let spec = InputSpec {
            channels: 1,
            height: 2,
            width: 2,
            resize: Default::default(),
            normalization: Normalization::MeanStd {
                mean: vec![0.5],
                std: vec![0.5],
            },
        };
        let img = Array3::<f32>::zeros((1, 2, 2));
        let b = baseline_image(Baseline::Mean, img.view(), &spec, &[255.0]);
        assert!(b.iter().all(|&v| (v - 1.0).abs() < 1e-6));
        // Pixel 0 is (0 − 0.5) / 0.5 = −1 in this input space.
        let b = baseline_image(Baseline::Black, img.view(), &spec, &[255.0]);
        assert!(b.iter().all(|&v| (v + 1.0).abs() < 1e-6));
    }

    #[test]
    fn the_blur_baseline_keeps_the_mean_level_and_removes_detail() {
        let img = Array3::from_shape_fn((1, 8, 8), |(_, y, x)| ((x + y) % 2) as f32);
        let b = box_blur(img.view(), 2);
        let spread =
            b.fold(f32::NEG_INFINITY, |a, &v| a.max(v)) - b.fold(f32::INFINITY, |a, &v| a.min(v));
        assert!(spread < 0.5, "checkerboard detail mostly gone: {spread}");
        assert!((b.mean().unwrap() - 0.5).abs() < 0.1);
    }
}
