//! The methods' registry: a method is how a class's crops are proposed and scored; candidate
//! drawing, selection, stitching and soft labels are shared. A new method is one file with a
//! [`Proposal`] and one line in [`Method::proposal`].

use rand::rngs::StdRng;

use super::candidates::Candidates;
use super::config::{DistillConfig, Method};
use super::crops::{ClassLog, Crop, UTILITY};
use super::infoutil::InfoUtil;
use super::random::RandomImages;
use super::rded::Rded;
use super::run::Run;
use crate::error::Result;
use crate::informativeness::attribute::STAGE as ATTRIBUTION;
use crate::progress::Progress;

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

    /// Whether `--only-recognised` can filter this method's crops.
    fn filters_recognised(&self) -> bool {
        false
    }

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

impl Method {
    /// The registry.
    pub(super) fn proposal(self) -> &'static dyn Proposal {
        match self {
            Method::Infoutil => &InfoUtil,
            Method::Rded => &Rded,
            Method::Random => &RandomImages,
        }
    }
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
