//! One distillation run, class by class: candidates drawn, the method's crops, selection and
//! stitching.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::SeedableRng;

use super::candidates;
use super::config::DistillConfig;
use super::methods::Run;
use super::score::select;
use super::stitch::ClassResult;
use crate::data::Source;
use crate::error::{Error, Result};
use crate::teacher::Teacher;

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

/// Candidates, crops, selection and stitching of class `c` (records `pool`).
pub(super) fn class(
    run: &mut Run,
    source: &mut dyn Source,
    path: &std::path::Path,
    c: usize,
    pool: &[usize],
) -> Result<ClassResult> {
    let (teacher, cfg) = (run.teacher, run.cfg);
    if pool.is_empty() {
        return Err(Error::data(
            path,
            None,
            format!("class {c} ({}) has no images", teacher.meta.class_names[c]),
        ));
    }
    let mut rng = StdRng::seed_from_u64(cfg.seed ^ (c as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let t = Instant::now();
    let method = cfg.method.proposal();
    let picked = candidates::draw(pool, method.candidates(cfg), &mut rng);
    let cands = candidates::load(source, picked, teacher, cfg.skip_bad, &mut run.report)?;
    run.timings.read += t.elapsed().as_secs_f64();
    if cands.is_empty() {
        return Err(Error::data(
            path,
            None,
            format!("class {c}: every candidate was a bad record"),
        ));
    }
    let (crops, log) = method.crops(run, &cands, c, &mut rng)?;
    let per_image = cfg.factor * cfg.factor;
    let chosen = select(&crops, cfg.ipc * per_image);
    if chosen.len() < cfg.ipc * per_image {
        return Err(Error::Config(format!(
            "class {c} offers {} distinct crops from {} candidate image(s), but `ipc` {} × \
                 `factor` {}² needs {}: raise `per_image` (now {}) or `candidates` (now {}, \
                 the class has {} images), or lower `ipc` or `factor`",
            chosen.len(),
            cands.len(),
            cfg.ipc,
            cfg.factor,
            cfg.ipc * per_image,
            cfg.crops.per_image,
            cfg.candidates,
            pool.len()
        )));
    }
    let t = Instant::now();
    let spec = &teacher.meta.input;
    let result = ClassResult::stitch(&cands, c, &chosen, cfg.factor, spec, log);
    run.timings.reconstruction += t.elapsed().as_secs_f64();
    Ok(result)
}
