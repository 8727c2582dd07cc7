//! What a distillation is asked to do: the method and its options, with their limits.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::informativeness::attribute::Shapley;
use crate::informativeness::{Attribution, CropRule};
use crate::utility::Score;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Shapley-informative crops, gradient-norm utility (the paper's method).
    Infoutil,
    /// RDED: random resized crops scored by the teacher's −CE.
    Rded,
    /// IPC random real images per class.
    Random,
}

impl Method {
    pub const ALL: [Method; 3] = [Method::Infoutil, Method::Rded, Method::Random];
}

/// A value as result files (and the command line) spell it, e.g. "grad-norm".
pub(in crate::distill) fn value_name(v: impl Serialize) -> String {
    let v = serde_json::json!(v);
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
}

/// An option of a distillation that not every method reads (those every method reads, such as
/// `ipc` and `seed`, are not listed). Each method declares the ones it reads
/// ([`Method::reads`], from the method's own file), and an option given but not read is refused
/// (`DistillConfig`'s check): it would change nothing in the output but the run's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Opt {
    Candidates,
    Attribution,
    Grid,
    Budget,
    Estimator,
    Baseline,
    Value,
    Alpha,
    Span,
    PerImage,
    Score,
    OnlyRecognised,
    /// Saved maps of an earlier run (an input of the run, not a field of the config).
    MapsFrom,
}

impl Opt {
    pub const ALL: [Opt; 13] = [
        Opt::Candidates,
        Opt::Attribution,
        Opt::Grid,
        Opt::Budget,
        Opt::Estimator,
        Opt::Baseline,
        Opt::Value,
        Opt::Alpha,
        Opt::Span,
        Opt::PerImage,
        Opt::Score,
        Opt::OnlyRecognised,
        Opt::MapsFrom,
    ];

    /// The field that holds it, as the library's messages name it (the command line maps each
    /// to its flag, cli/flags.rs).
    pub fn field(self) -> &'static str {
        match self {
            Opt::Candidates => "candidates",
            Opt::Attribution => "attribution",
            Opt::Grid => "grid",
            Opt::Budget => "budget",
            Opt::Estimator => "estimator",
            Opt::Baseline => "baseline",
            Opt::Value => "value",
            Opt::Alpha => "alpha",
            Opt::Span => "span",
            Opt::PerImage => "per_image",
            Opt::Score => "score",
            Opt::OnlyRecognised => "only_recognised",
            Opt::MapsFrom => "maps_from",
        }
    }

    /// "`budget` 64": the option and its value in `cfg`, for messages (a flag or an input alone).
    pub(in crate::distill) fn shown(self, cfg: &DistillConfig) -> String {
        let sh = &cfg.shapley;
        let value = match self {
            Opt::Candidates => cfg.candidates.to_string(),
            Opt::Attribution => value_name(cfg.attribution),
            Opt::Grid => sh.grid.to_string(),
            Opt::Budget => sh.budget.to_string(),
            Opt::Estimator => value_name(sh.estimator),
            Opt::Baseline => value_name(sh.baseline),
            Opt::Value => value_name(sh.value),
            Opt::Alpha => cfg.crops.alpha.to_string(),
            Opt::Span => cfg.crops.span.to_string(),
            Opt::PerImage => cfg.crops.per_image.to_string(),
            Opt::Score => value_name(cfg.score),
            Opt::OnlyRecognised | Opt::MapsFrom => return format!("`{}`", self.field()),
        };
        format!("`{}` {value}", self.field())
    }
}

/// The options an attribution reads: all the Shapley options, or Grad-CAM's grid alone (the
/// part of InfoUtil's declaration that depends on its attribution).
pub fn attribution_reads(attribution: Attribution) -> &'static [Opt] {
    match attribution {
        Attribution::Shapley => &[
            Opt::Attribution,
            Opt::Grid,
            Opt::Budget,
            Opt::Estimator,
            Opt::Baseline,
            Opt::Value,
        ],
        Attribution::GradCam => &[Opt::Attribution, Opt::Grid],
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DistillConfig {
    pub method: Method,
    /// Distilled images per class.
    pub ipc: usize,
    /// Crops stitched per side of a distilled image.
    pub factor: usize,
    /// Real candidate images drawn per class (InfoUtil, RDED).
    pub candidates: usize,
    /// What ranks a candidate's patches (InfoUtil); files written before Grad-CAM existed
    /// record none and mean Shapley.
    #[serde(default)]
    pub attribution: Attribution,
    pub shapley: Shapley,
    pub crops: CropRule,
    pub score: Score,
    /// Select among the crops the teacher assigns to their class first (not in the paper).
    #[serde(default)]
    pub only_recognised: bool,
    pub seed: u64,
    pub skip_bad: bool,
    /// Only these classes (a shard of the work, e.g. one machine's part); None = all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classes: Option<Vec<usize>>,
    /// The options the user gave (on the command line, or as keywords of the Python wrappers,
    /// which pass only those): an option the method does not read is refused when given, at
    /// whatever value. Not part of the file or of the run's identity; a config read back from a
    /// file gives none. A flag that is on is given whether marked here or not.
    #[serde(skip)]
    pub given: BTreeSet<Opt>,
}

impl DistillConfig {
    /// The options' own limits and their combinations, whatever the method's own (the Shapley
    /// options were checked when they were made). Part of [`Check`] for `DistillConfig`, which
    /// methods/list.rs implements since it asks the method too.
    pub(in crate::distill) fn limits(&self) -> Result<()> {
        let fail = |m: &str| Err(Error::Config(m.into()));
        if self.ipc == 0 || self.ipc > Self::MAX_IPC {
            return Err(Error::Config(format!(
                "`ipc` {}: between 1 and {} images per class",
                self.ipc,
                DistillConfig::MAX_IPC
            )));
        }
        if self.factor == 0 || self.factor > Self::MAX_FACTOR {
            return Err(Error::Config(format!(
                "`factor` {}: between 1 and {} crops per side",
                self.factor,
                DistillConfig::MAX_FACTOR
            )));
        }
        if self.candidates == 0 {
            return fail("`candidates` must be at least 1");
        }
        if let Some(classes) = &self.classes {
            if classes.is_empty() {
                return fail("`classes` selects no class");
            }
        }
        self.crops.check(self.shapley.grid)
    }

    /// The options given: those marked in [`DistillConfig::given`], and every flag that is on.
    pub fn given(&self) -> BTreeSet<Opt> {
        let mut given = self.given.clone();
        if self.only_recognised {
            given.insert(Opt::OnlyRecognised);
        }
        given
    }

    /// Most distilled images per class (the paper goes to 50).
    pub const MAX_IPC: usize = 10_000;
    /// Most crops per side of a distilled image.
    pub const MAX_FACTOR: usize = 16;
}
