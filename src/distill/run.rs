//! One distillation run, class by class: candidates drawn, the method's crops, selection and
//! stitching.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::candidates;
use super::config::DistillConfig;
use super::crops::Crop;
use super::output::Timings;
use super::parts::ClassResult;
use super::reuse::SavedMaps;
use crate::data::{Source, VisitReport};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::teacher::Teacher;
use crate::utility;

/// The state of one distillation run, shared by its classes.
pub(super) struct Run<'a> {
    pub teacher: &'a Teacher,
    pub cfg: &'a DistillConfig,
    pub report: VisitReport,
    pub timings: Timings,
    pub mean_pixel: Vec<f32>,
    pub progress: &'a dyn Progress,
    pub saved_maps: Option<&'a SavedMaps>,
}

/// The dataset's mean pixel, needed only by the `mean` baseline.
pub(super) fn mean_pixel(
    source: &mut dyn Source,
    teacher: &Teacher,
    cfg: &DistillConfig,
) -> Result<Vec<f32>> {
    let channels = teacher.meta.input.channels;
    if cfg.method.proposal().needs_mean_pixel(cfg) {
        crate::data::stats::mean_pixel(source, channels, 1000)
    } else {
        Ok(vec![0.0; channels])
    }
}

impl Run<'_> {
    /// Candidates, crops, selection and stitching of class `c` (records `pool`).
    pub(super) fn class(
        &mut self,
        source: &mut dyn Source,
        path: &std::path::Path,
        c: usize,
        pool: &[usize],
    ) -> Result<ClassResult> {
        let (teacher, cfg) = (self.teacher, self.cfg);
        if pool.is_empty() {
            return Err(Error::data(
                path,
                None,
                format!("class {c} ({}) has no images", teacher.meta.class_names[c]),
            ));
        }
        let mut rng =
            StdRng::seed_from_u64(cfg.seed ^ (c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let t = Instant::now();
        let method = cfg.method.proposal();
        let picked = candidates::draw(pool, method.candidates(cfg), &mut rng);
        let spec = &teacher.meta.input;
        let cands = candidates::load(source, picked, spec, cfg.skip_bad, &mut self.report)?;
        self.timings.read += t.elapsed().as_secs_f64();
        if cands.is_empty() {
            return Err(Error::data(
                path,
                None,
                format!("class {c}: every candidate was a bad record"),
            ));
        }
        let (crops, log) = method.crops(self, &cands, c, &mut rng)?;
        let per_image = cfg.factor * cfg.factor;
        let keep = utility::top_k(
            &crops.iter().map(|k| k.score).collect::<Vec<_>>(),
            &crops.iter().map(|k| k.recognised).collect::<Vec<_>>(),
            cfg.ipc * per_image,
        );
        if keep.len() < cfg.ipc * per_image {
            return Err(Error::Config(format!(
                "class {c} offers {} distinct crops from {} candidate image(s), but --ipc {} × \
                 --factor {}² needs {}: raise --crops-per-image (now {}) or --candidates (now {}, \
                 the class has {} images), or lower --ipc or --factor",
                keep.len(),
                cands.len(),
                cfg.ipc,
                cfg.factor,
                cfg.ipc * per_image,
                cfg.crops.per_image,
                cfg.candidates,
                pool.len()
            )));
        }
        let chosen: Vec<Crop> = keep.iter().map(|&i| crops[i]).collect();
        let t = Instant::now();
        let result = ClassResult::stitch(&cands, c, &chosen, cfg.factor, spec, log);
        self.timings.reconstruction += t.elapsed().as_secs_f64();
        Ok(result)
    }
}
