//! What a distillation is asked to do: the method and its options, with their limits.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::informativeness::attribute::{Shapley, ShapleyConfig};
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

/// A value as result files (and the command line) spell it, e.g. "grad-norm".
fn value_name(v: impl Serialize) -> String {
    let v = serde_json::json!(v);
    v.as_str().map_or_else(|| v.to_string(), str::to_string)
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
        self.check_ignored()?;
        self.crops.check(self.shapley.grid)
    }

    /// An option the method ignores is refused, not dropped without a word: runs that differ
    /// only in it would have the same bytes but another run identity (`run_identity`), and so
    /// would not merge or resume. RDED and random use none of InfoUtil's attribution and crop
    /// options nor its utility score; Grad-CAM's attribution uses the grid alone of the Shapley
    /// options. An option is taken as given when it is not its default.
    fn check_ignored(&self) -> Result<()> {
        let (ours, theirs) = (
            serde_json::json!(self.shapley),
            serde_json::json!(ShapleyConfig::default()),
        );
        let shapley = ["grid", "budget", "estimator", "baseline", "value"];
        let (ignored, why): (&[&str], String) = match (self.method, self.attribution) {
            (Method::Infoutil, Attribution::Shapley) => return Ok(()),
            (Method::Infoutil, _) => (&shapley[1..], "`attribution` gradcam".into()),
            (m, _) => (&shapley, format!("`method` {}", value_name(m))),
        };
        let mut given: Vec<String> = ignored
            .iter()
            .filter(|k| ours[**k] != theirs[**k])
            .map(|k| format!("`{k}` {}", value_name(&ours[*k])))
            .collect();
        if self.method != Method::Infoutil {
            let d = CropRule::default();
            if self.crops.alpha != d.alpha {
                given.push(format!("`alpha` {}", self.crops.alpha));
            }
            if self.crops.span != d.span {
                given.push(format!("`span` {}", self.crops.span));
            }
            if self.score != Score::GradNorm {
                given.push(format!("`score` {}", value_name(self.score)));
            }
        }
        match given.is_empty() {
            true => Ok(()),
            false => Err(Error::Config(format!(
                "{}: {why} does not use {} (InfoUtil's attribution and crop options): leave \
                 {} out, since runs that differ only in an option that changes nothing would \
                 not merge or resume",
                given.join(", "),
                if given.len() == 1 { "it" } else { "them" },
                if given.len() == 1 { "it" } else { "them" },
            ))),
        }
    }

    /// Most distilled images per class (the paper goes to 50).
    pub const MAX_IPC: usize = 10_000;
    /// Most crops per side of a distilled image.
    pub const MAX_FACTOR: usize = 16;
}
