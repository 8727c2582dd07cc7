//! The methods: a method is how a class's crops are proposed and scored; candidate drawing,
//! selection, stitching and soft labels are shared. A new method is one file in this folder with
//! a [`Proposal`] and one line in the list (list.rs, which the methods do not import).

use rand::rngs::StdRng;

use super::candidates::Candidates;
use super::config::{DistillConfig, Opt};
use super::file::reuse::SavedMaps;
use super::file::Timings;
use super::score::{ClassLog, Crop};
use crate::data::VisitReport;
use crate::error::Result;
use crate::informativeness::Attribution;
use crate::progress::{Progress, ATTRIBUTION, UTILITY};
use crate::teacher::Teacher;

mod infoutil;
pub(super) mod list;
mod random;
mod rded;

/// The state of one distillation run, shared by its classes: what a method is given.
pub(super) struct Run<'a> {
    pub teacher: &'a Teacher,
    pub cfg: &'a DistillConfig,
    pub report: VisitReport,
    pub timings: Timings,
    pub mean_pixel: Vec<f32>,
    pub progress: &'a dyn Progress,
    pub saved_maps: Option<&'a SavedMaps>,
}

/// One method's part of the pipeline.
pub(super) trait Proposal: Sync {
    /// Real images drawn per class.
    fn candidates(&self, cfg: &DistillConfig) -> usize {
        cfg.candidates
    }

    /// Progress units per stage for a class of `images` candidates.
    fn work(&self, cfg: &DistillConfig, images: u64) -> Work;

    /// Whether Stage 1 needs the dataset's mean pixel (the `mean` baseline).
    fn needs_mean_pixel(&self, _cfg: &DistillConfig) -> bool {
        false
    }

    /// The options this method reads with `attribution` (its declaration; no default, so a new
    /// method says it): any other given option is refused ([`Opt`]).
    fn reads(&self, attribution: Attribution) -> Vec<Opt>;

    /// Option combinations this method cannot honour.
    fn check(&self, _cfg: &DistillConfig) -> Result<()> {
        Ok(())
    }

    /// The crops of class `c` that compete for its places, and what the output records of
    /// them. Draws from `rng` in a fixed order, so a seed gives one result.
    fn crops(
        &self,
        run: &mut Run,
        cands: &Candidates,
        c: usize,
        rng: &mut StdRng,
    ) -> Result<(Vec<Crop>, ClassLog)>;
}

/// Units of work per progress stage: images to attribute, crops to score.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Work {
    pub attribution: u64,
    pub utility: u64,
}

impl Work {
    pub fn plus(self, o: Work) -> Work {
        Work {
            attribution: self.attribution + o.attribution,
            utility: self.utility + o.utility,
        }
    }

    fn stages(self) -> [(&'static str, u64); 2] {
        [(ATTRIBUTION, self.attribution), (UTILITY, self.utility)]
    }

    pub fn start(self, progress: &dyn Progress) {
        for (stage, units) in self.stages().into_iter().filter(|s| s.1 > 0) {
            progress.start(stage, units);
        }
    }

    pub fn advance(self, progress: &dyn Progress) {
        for (stage, units) in self.stages().into_iter().filter(|s| s.1 > 0) {
            progress.advance(stage, units);
        }
    }

    pub fn finish(self, progress: &dyn Progress) {
        for (stage, _) in self.stages().into_iter().filter(|s| s.1 > 0) {
            progress.finish(stage);
        }
    }
}
