//! The random baseline: IPC whole real images per class, as drawn.

use rand::rngs::StdRng;

use super::{Proposal, Run, Work};
use crate::base::PixelBox;
use crate::distill::candidates::Candidates;
use crate::distill::config::{DistillConfig, Opt};
use crate::distill::score::{collect, ClassLog, Crop};
use crate::error::{Error, Result};
use crate::informativeness::Attribution;

pub(super) struct RandomImages;

impl Proposal for RandomImages {
    /// None: IPC whole images drawn (`ipc`, `seed`, `factor` 1 are every method's options).
    fn reads(&self, _attribution: Attribution) -> Vec<Opt> {
        Vec::new()
    }

    fn candidates(&self, cfg: &DistillConfig) -> usize {
        cfg.ipc
    }

    fn work(&self, _cfg: &DistillConfig, _images: u64) -> Work {
        Work::default()
    }

    fn check(&self, cfg: &DistillConfig) -> Result<()> {
        if cfg.factor != 1 {
            return Err(Error::Config(
                "the random baseline uses whole real images: use `factor` 1".into(),
            ));
        }
        Ok(())
    }

    fn crops(
        &self,
        _run: &mut Run,
        cands: &Candidates,
        c: usize,
        _rng: &mut StdRng,
    ) -> Result<(Vec<Crop>, ClassLog)> {
        let boxes: Vec<Vec<PixelBox>> = cands
            .raw
            .iter()
            .map(|r| {
                vec![PixelBox {
                    y0: 0,
                    x0: 0,
                    y1: r.dim().1,
                    x1: r.dim().2,
                }]
            })
            .collect();
        // Equal scores: selection keeps the drawn order.
        let scores = vec![vec![0.0]; cands.len()];
        Ok(collect(cands, c, None, boxes, scores, None))
    }
}
