//! InfoUtil's crops (the paper's method): each candidate's Shapley map (Stage 1, or saved ones
//! from `--maps-from`), its informative crops by pooled arg-max with noise, and their utility
//! (Stage 2, the teacher's per-sample gradient norm by default).

use std::time::Instant;

use ndarray::{Array3, Axis};
use rand::rngs::StdRng;

use super::{Proposal, Run, Work};
use crate::base::PixelBox;
use crate::distill::candidates::Candidates;
use crate::distill::config::{attribution_reads, DistillConfig, Opt};
use crate::distill::score::{collect, count, ClassLog, Crop, CropBatch};
use crate::error::{Error, Result};
use crate::informativeness::attribute::{informative_maps, MapOptions};
use crate::informativeness::{crops, Attribution, Baseline, Grid};
use crate::progress::{ATTRIBUTION, UTILITY};

pub(super) struct InfoUtil;

impl Proposal for InfoUtil {
    fn work(&self, cfg: &DistillConfig, images: u64) -> Work {
        Work {
            attribution: images,
            utility: images * cfg.crops.per_image as u64,
        }
    }

    /// Every option: its own crop, score and filter options, saved maps, and what its
    /// attribution reads.
    fn reads(&self, attribution: Attribution) -> Vec<Opt> {
        let own = [
            Opt::Candidates,
            Opt::Alpha,
            Opt::Span,
            Opt::PerImage,
            Opt::Score,
            Opt::OnlyRecognised,
            Opt::MapsFrom,
        ];
        own.into_iter()
            .chain(attribution_reads(attribution).iter().copied())
            .collect()
    }

    fn needs_mean_pixel(&self, cfg: &DistillConfig) -> bool {
        cfg.attribution == Attribution::Shapley && cfg.shapley.baseline == Baseline::Mean
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
        let maps = maps(run, cands, c)?;
        let spec = &teacher.meta.input;
        let grid = Grid::new(cfg.shapley.grid, spec.height, spec.width).map_err(Error::Config)?;
        let boxes: Vec<Vec<PixelBox>> = maps
            .outer_iter()
            .zip(&cands.raw)
            .map(|(map, raw)| {
                let (_, h, w) = raw.dim();
                crops::choose(map, &grid, &cfg.crops, rng)
                    .into_iter()
                    .map(|b| spec.box_to_source(b, (h, w)))
                    .collect()
            })
            .collect();
        run.timings.attribution += t.elapsed().as_secs_f64();

        let t = Instant::now();
        let batch = CropBatch::new(teacher, cands, &boxes, None);
        let scores = batch.scores(teacher, cands, c, cfg.score)?;
        let recognised = match cfg.only_recognised {
            true => Some(batch.recognised(teacher, cands, c)?),
            false => None,
        };
        progress.advance(UTILITY, count(&boxes));
        run.timings.utility += t.elapsed().as_secs_f64();
        Ok(collect(cands, c, Some(maps), boxes, scores, recognised))
    }
}

/// The informativeness maps `[n, g, g]` of class `c`'s candidates: saved ones where given, the
/// others computed (Shapley maps with the class's plan).
fn maps(run: &Run, cands: &Candidates, c: usize) -> Result<Array3<f64>> {
    let g = run.cfg.shapley.grid;
    let mut maps = Array3::zeros((cands.len(), g, g));
    let mut missing = Vec::new();
    for (k, &record) in cands.source_index.iter().enumerate() {
        match run.saved_maps.and_then(|s| s.get(c, record)) {
            Some(m) => maps.index_axis_mut(Axis(0), k).assign(m),
            None => missing.push(k),
        }
    }
    run.progress
        .advance(ATTRIBUTION, (cands.len() - missing.len()) as u64);
    if missing.is_empty() {
        return Ok(maps);
    }
    let x = cands.x.select(Axis(0), &missing);
    let seed = run.cfg.seed ^ (c as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
    let opts = MapOptions {
        attribution: run.cfg.attribution,
        shapley: &run.cfg.shapley,
        mean_pixel: &run.mean_pixel,
    };
    let fresh = informative_maps(
        run.teacher,
        x.view(),
        &vec![c; missing.len()],
        &opts,
        seed,
        run.progress,
    )
    .map_err(|e| {
        e.locate(ATTRIBUTION, |i| {
            missing.get(i).map(|&k| cands.source_index[k])
        })
    })?;
    for (&k, m) in missing.iter().zip(fresh.outer_iter()) {
        maps.index_axis_mut(Axis(0), k).assign(&m);
    }
    Ok(maps)
}
