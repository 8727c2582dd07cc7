//! What a distillation is asked to do: the method and its options, with their limits.

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
        if self.attribution != Attribution::Shapley && self.method != Method::Infoutil {
            return fail("`attribution` chooses InfoUtil's crops: use it with `method` infoutil");
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

    /// Most distilled images per class (the paper goes to 50).
    pub const MAX_IPC: usize = 10_000;
    /// Most crops per side of a distilled image.
    pub const MAX_FACTOR: usize = 16;
}
