//! The RDED baseline's crops: torchvision-style RandomResizedCrop boxes (area 8–100 % of the
//! image, aspect ratio 3/4–4/3), scored by −CE of the teacher on the crop resized to the tile
//! size and zero-padded (in input space) to the full input.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::Rng;

use super::{Proposal, Run, Work};
use crate::base::PixelBox;
use crate::distill::candidates::Candidates;
use crate::distill::config::{DistillConfig, Opt};
use crate::distill::score::{best_per_candidate, collect, count, ClassLog, Crop, CropBatch};
use crate::error::Result;
use crate::informativeness::Attribution;
use crate::progress::UTILITY;
use crate::utility::Score;

/// RDED (Sun et al., CVPR 2024): random resized crops, the most realistic (lowest −CE) of each
/// candidate kept.
pub(super) struct Rded;

impl Proposal for Rded {
    /// Candidates and random crops of each; no attribution, and its own score (−CE).
    fn reads(&self, _attribution: Attribution) -> Vec<Opt> {
        vec![Opt::Candidates, Opt::PerImage]
    }

    fn work(&self, cfg: &DistillConfig, images: u64) -> Work {
        Work {
            attribution: 0,
            utility: images * cfg.crops.per_image as u64,
        }
    }

    fn crops(
        &self,
        run: &mut Run,
        cands: &Candidates,
        c: usize,
        rng: &mut StdRng,
    ) -> Result<(Vec<Crop>, ClassLog)> {
        let (teacher, cfg, progress) = (run.teacher, run.cfg, run.progress);
        let t = Instant::now();
        let boxes: Vec<Vec<PixelBox>> = cands
            .raw
            .iter()
            .map(|raw| {
                let (_, h, w) = raw.dim();
                (0..cfg.crops.per_image)
                    .map(|_| random_resized_box(h, w, rng))
                    .collect()
            })
            .collect();
        let scores = CropBatch::new(teacher, cands, &boxes, Some(cfg.factor)).scores(
            teacher,
            cands,
            c,
            Score::Loss,
        )?;
        progress.advance(UTILITY, count(&boxes));
        // RDED keeps the most realistic crop (lowest loss) of each image.
        let scores: Vec<Vec<f64>> = scores
            .into_iter()
            .map(|s| s.into_iter().map(|l| -l).collect())
            .collect();
        run.timings.utility += t.elapsed().as_secs_f64();
        let (mut crops, log) = collect(cands, c, None, boxes, scores, None);
        crops = best_per_candidate(crops);
        Ok((crops, log))
    }
}

/// One RandomResizedCrop box in an `h × w` image, torchvision's rule: ten tries at a random
/// area and log-uniform aspect ratio, else the centred largest box of a valid ratio.
pub fn random_resized_box(h: usize, w: usize, rng: &mut StdRng) -> PixelBox {
    let area = (h * w) as f64;
    let (lo, hi) = ((3.0f64 / 4.0).ln(), (4.0f64 / 3.0).ln());
    for _ in 0..10 {
        let target = area * rng.random_range(0.08..=1.0);
        let ratio = rng.random_range(lo..=hi).exp();
        let cw = (target * ratio).sqrt().round() as usize;
        let ch = (target / ratio).sqrt().round() as usize;
        if (1..=w).contains(&cw) && (1..=h).contains(&ch) {
            let y0 = rng.random_range(0..=h - ch);
            let x0 = rng.random_range(0..=w - cw);
            return PixelBox {
                y0,
                x0,
                y1: y0 + ch,
                x1: x0 + cw,
            };
        }
    }
    let (ch, cw) = (h.min(w * 4 / 3), w.min(h * 4 / 3));
    let (y0, x0) = ((h - ch) / 2, (w - cw) / 2);
    PixelBox {
        y0,
        x0,
        y1: y0 + ch,
        x1: x0 + cw,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn boxes_lie_inside_and_cover_8_to_100_percent() {
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..500 {
            let b = random_resized_box(28, 28, &mut rng);
            assert!(b.y1 <= 28 && b.x1 <= 28 && b.y0 < b.y1 && b.x0 < b.x1);
            let frac = (b.height() * b.width()) as f64 / 784.0;
            assert!((0.06..=1.0).contains(&frac), "{b:?}");
        }
    }
}
