//! Options shared by `attribute` and `distill`: how informativeness maps and crops are computed.

use clap::Args;

use super::choices::{one_of, ATTRIBUTIONS, BASELINES, VALUES};
use infoutil::informativeness::attribute::ShapleyConfig;
use infoutil::informativeness::{Attribution, Baseline, CropRule, Value};
use infoutil::shapley::Estimator;

#[derive(Args, Debug, Clone)]
pub struct ShapleyArgs {
    /// What ranks an image's patches: Shapley values, or Grad-CAM (needs the teacher's
    /// NAME.cam.onnx; only --grid of the Shapley options applies).
    #[arg(long, default_value = "shapley", value_parser = one_of(ATTRIBUTIONS))]
    pub attribution: Attribution,
    /// Patches per side: g×g players per image.
    #[arg(long, default_value_t = ShapleyConfig::default().grid)]
    pub grid: usize,
    /// Coalition evaluations (masked images) per image, v(∅) and v(all) included.
    #[arg(long, default_value_t = ShapleyConfig::default().budget)]
    pub budget: usize,
    /// Shapley estimator: exact, kernel, kernel-enum, leverage, permutation.
    #[arg(long, default_value = "leverage", value_parser = parse_estimator)]
    pub estimator: Estimator,
    /// What replaces the patches outside a coalition.
    #[arg(long, default_value = "zero", value_parser = one_of(BASELINES))]
    pub baseline: Baseline,
    /// What a coalition is worth: the teacher's logit, probability or log-probability of the class.
    #[arg(long, default_value = "logit", value_parser = one_of(VALUES))]
    pub value: Value,
    /// Noise scale α: σ = α·std(pooled map) for all but the last crop of an image.
    #[arg(long, default_value_t = CropRule::default().alpha)]
    pub alpha: f64,
    /// Crops per image (the last one noise-free) [default: 5, or more when IPC × factor² crops
    /// must come from few candidates: 4 × ⌈IPC·factor² / candidates⌉]
    #[arg(long)]
    pub crops_per_image: Option<usize>,
    /// Patches per side of a crop (the pooling kernel).
    #[arg(long, default_value_t = CropRule::default().span)]
    pub crop_span: usize,
}

fn parse_estimator(s: &str) -> Result<Estimator, String> {
    Estimator::from_name(s).ok_or_else(|| {
        let names: Vec<_> = Estimator::ALL.iter().map(|e| e.name()).collect();
        format!(
            "unknown estimator {s:?}; choose one of {}",
            names.join(", ")
        )
    })
}

impl ShapleyArgs {
    pub fn config(&self) -> ShapleyConfig {
        ShapleyConfig {
            grid: self.grid,
            budget: self.budget,
            estimator: self.estimator,
            baseline: self.baseline,
            value: self.value,
        }
    }

    /// The crop rule of a run that keeps `need` crops per class from `candidates` images
    /// (`--crops-per-image` when given, else [`CropRule::default_per_image`]).
    pub fn crop_rule(&self, need: usize, candidates: usize) -> CropRule {
        CropRule {
            span: self.crop_span,
            per_image: self
                .crops_per_image
                .unwrap_or_else(|| CropRule::default_per_image(need, candidates)),
            alpha: self.alpha,
        }
    }
}
