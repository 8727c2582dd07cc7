//! The pipeline, per class: candidates → crops (InfoUtil: Shapley-informative; RDED: random
//! resized; random: whole images) → utility and selection → stitching → soft labels.

pub mod candidates;
mod infoutil;
mod merge;
mod method;
mod output;
mod parts;
mod random;
pub mod rded;
mod reuse;

use std::time::Instant;

use ndarray::{Array2, Array3, Array4, Axis};
use rand::rngs::StdRng;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::data::{Source, VisitReport};
use crate::error::{Error, Result};
use crate::informativeness::attribute::ShapleyConfig;
use crate::informativeness::{CropRule, PixelBox};
use crate::progress::Progress;
use crate::reconstruct;
use crate::teacher::Teacher;
use crate::utility::{self, Score};
use candidates::Candidates;
pub use merge::merge;
use method::Work;
pub use output::Distilled;
use parts::ClassResult;
pub use parts::{default_dir as default_checkpoint_dir, Checkpoint};
pub use reuse::{MapsFor, SavedMaps};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
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
    pub shapley: ShapleyConfig,
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
    /// Every option's own limits and their combinations, before any image is read.
    pub fn check(&self) -> Result<()> {
        let fail = |m: &str| Err(Error::Config(m.into()));
        if self.ipc == 0 || self.ipc > Self::MAX_IPC {
            return Err(Error::Config(format!(
                "--ipc {}: between 1 and {} images per class",
                self.ipc,
                Self::MAX_IPC
            )));
        }
        if self.factor == 0 || self.factor > Self::MAX_FACTOR {
            return Err(Error::Config(format!(
                "--factor {}: between 1 and {} crops per side",
                self.factor,
                Self::MAX_FACTOR
            )));
        }
        if self.only_recognised && !self.method.proposal().filters_recognised() {
            return fail(
                "--only-recognised filters InfoUtil's crops: use it with --method infoutil",
            );
        }
        if self.candidates == 0 {
            return fail("--candidates must be at least 1");
        }
        if let Some(classes) = &self.classes {
            if classes.is_empty() {
                return fail("--classes selects no class");
            }
        }
        self.method.proposal().check(self)?;
        self.shapley.check()?;
        self.crops.check(self.shapley.grid)
    }

    /// Most distilled images per class (the paper goes to 50).
    pub const MAX_IPC: usize = 10_000;
    /// Most crops per side of a distilled image.
    pub const MAX_FACTOR: usize = 16;
}

/// A crop that competes for a place in the distilled set.
#[derive(Debug, Clone, Copy)]
struct Crop {
    /// Index into the class's candidates.
    cand: usize,
    /// In source pixels.
    bbox: PixelBox,
    score: f64,
    /// Selection takes these first (every crop is, unless `only_recognised` checks them).
    recognised: bool,
}

/// What a class's candidates went through, for the output file.
#[derive(Debug, Clone)]
struct ClassLog {
    label: usize,
    source_index: Vec<usize>,
    maps: Option<Array3<f64>>,
    /// `[n, crops]` boxes and scores (RDED and InfoUtil).
    boxes: Vec<Vec<PixelBox>>,
    scores: Vec<Vec<f64>>,
}

/// The progress stage of crop scoring, counted in crops.
pub const UTILITY: &str = "utility";

/// Seconds per stage, summed over classes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub read: f64,
    pub attribution: f64,
    pub utility: f64,
    pub reconstruction: f64,
    pub soft_labels: f64,
}

/// What a run may take from earlier work instead of recomputing it.
#[derive(Default)]
pub struct Reuse<'a> {
    /// Finished classes of an interrupted run (and where to save this run's).
    pub checkpoint: Option<&'a Checkpoint>,
    /// Shapley maps of an earlier run with the same teacher, data, Shapley options and seed.
    pub maps: Option<&'a SavedMaps>,
}

/// Run `cfg.method` over every class of `source` with `teacher` (attribution and scoring) and
/// `label_teacher` (soft labels). With a checkpoint, each finished class is saved, and a resumed
/// run takes the saved classes instead of recomputing them.
pub fn distill(
    teacher: &Teacher,
    label_teacher: &Teacher,
    source: &mut dyn Source,
    cfg: &DistillConfig,
    reuse: Reuse,
    progress: &dyn Progress,
) -> Result<Distilled> {
    let checkpoint = reuse.checkpoint;
    cfg.check()?;
    if teacher.meta.input != label_teacher.meta.input
        || teacher.num_classes() != label_teacher.num_classes()
    {
        return Err(Error::Config(format!(
            "the label teacher {} takes another input or class list than the teacher {}",
            label_teacher.path.display(),
            teacher.path.display()
        )));
    }
    let mut run = Run {
        teacher,
        cfg,
        report: VisitReport::default(),
        timings: Timings::default(),
        mean_pixel: Vec::new(),
        progress,
        saved_maps: reuse.maps,
    };
    let started = Instant::now();
    source.match_classes(&teacher.meta.class_names)?;
    let labels = source.labels()?;
    let path = source.info().path.clone();
    let classes = candidates::by_class(
        &labels,
        teacher.num_classes(),
        &path,
        cfg.skip_bad,
        &mut run.report,
    )?;
    run.mean_pixel = mean_pixel(source, teacher, cfg)?;
    run.timings.read += started.elapsed().as_secs_f64();

    let wanted: Vec<usize> = match &cfg.classes {
        Some(list) => list.clone(),
        None => (0..classes.len()).collect(),
    };
    if let Some(&bad) = wanted.iter().find(|&&c| c >= classes.len()) {
        return Err(Error::Config(format!(
            "class {bad} does not exist: the teacher has {} classes",
            classes.len()
        )));
    }
    let mut out = output::Builder::new(teacher);
    let mut resumed = 0;
    let method = cfg.method.proposal();
    let work = |c: usize| method.work(cfg, method.candidates(cfg).min(classes[c].len()) as u64);
    let total = wanted.iter().fold(Work::default(), |t, &c| t.plus(work(c)));
    total.start(progress);
    for c in wanted {
        let pool = &classes[c];
        let saved = match checkpoint {
            Some(cp) if cp.resume => cp.load(c)?,
            _ => None,
        };
        let result = match saved {
            Some(r) => {
                resumed += 1;
                work(c).advance(progress);
                r
            }
            None => {
                let r = run.class(source, &path, c, pool)?;
                if let Some(cp) = checkpoint {
                    cp.save(&r)?;
                }
                r
            }
        };
        out.push(result);
    }
    total.finish(progress);
    let t = Instant::now();
    let mut distilled = out.finish(label_teacher, cfg)?;
    run.timings.soft_labels += t.elapsed().as_secs_f64();
    distilled.report = run.report;
    distilled.timings = run.timings;
    distilled.resumed_classes = resumed;
    Ok(distilled)
}

/// The state of one distillation run, shared by its classes.
struct Run<'a> {
    teacher: &'a Teacher,
    cfg: &'a DistillConfig,
    report: VisitReport,
    timings: Timings,
    mean_pixel: Vec<f32>,
    progress: &'a dyn Progress,
    saved_maps: Option<&'a SavedMaps>,
}

/// The dataset's mean pixel, needed only by the `mean` baseline.
fn mean_pixel(source: &mut dyn Source, teacher: &Teacher, cfg: &DistillConfig) -> Result<Vec<f32>> {
    let channels = teacher.meta.input.channels;
    if cfg.method.proposal().needs_mean_pixel(cfg) {
        crate::data::stats::mean_pixel(source, channels, 1000)
    } else {
        Ok(vec![0.0; channels])
    }
}

impl Run<'_> {
    /// Candidates, crops, selection and stitching of class `c` (records `pool`).
    fn class(
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

fn count(boxes: &[Vec<PixelBox>]) -> u64 {
    boxes.iter().map(|b| b.len() as u64).sum()
}

/// The distinct crops of a class's boxes as one teacher batch: each crop resized to the teacher's
/// input (or, with `pad_factor`, to one tile and zero-padded, as RDED does). A box an image offers
/// twice (noisy crops often land on the clean one) is computed once.
struct CropBatch {
    x: Array4<f32>,
    /// For each candidate's boxes, the row of `x` holding its crop.
    slot: Vec<Vec<usize>>,
    /// The candidate of each row of `x`.
    cand_of_row: Vec<usize>,
}

impl CropBatch {
    fn new(
        teacher: &Teacher,
        cands: &Candidates,
        boxes: &[Vec<PixelBox>],
        pad_factor: Option<usize>,
    ) -> CropBatch {
        let spec = &teacher.meta.input;
        let (th, tw) = match pad_factor {
            Some(f) => (spec.height / f, spec.width / f),
            None => (spec.height, spec.width),
        };
        let tile_spec = spec.with_size(th, tw);
        let mut rows = std::collections::HashMap::new();
        let mut unique = Vec::new();
        let slot = boxes
            .iter()
            .enumerate()
            .map(|(cand, bs)| {
                bs.iter()
                    .map(|b| {
                        *rows.entry((cand, *b)).or_insert_with(|| {
                            unique.push((cand, *b));
                            unique.len() - 1
                        })
                    })
                    .collect()
            })
            .collect();
        let mut x = Array4::zeros((unique.len(), spec.channels, th, tw));
        for (k, (cand, b)) in unique.iter().enumerate() {
            let pixels = reconstruct::crop_resized(cands.raw[*cand].view(), b, th, tw);
            tile_spec.pixels_into(pixels.view(), x.index_axis_mut(Axis(0), k));
        }
        if pad_factor.is_some() {
            x = rded::zero_padded(&x, spec.height, spec.width);
        }
        let cand_of_row = unique.iter().map(|&(cand, _)| cand).collect();
        CropBatch {
            x,
            slot,
            cand_of_row,
        }
    }

    /// Each box's utility score for class `c`.
    fn scores(
        &self,
        teacher: &Teacher,
        cands: &Candidates,
        c: usize,
        how: Score,
    ) -> Result<Vec<Vec<f64>>> {
        let labels = vec![c; self.x.dim().0];
        let rows = utility::score(teacher, self.x.view(), &labels, how)
            .map_err(|e| self.locate(e, cands))?;
        Ok(self.per_box(&rows))
    }

    /// Whether the teacher assigns each box's crop to class `c`.
    fn recognised(
        &self,
        teacher: &Teacher,
        cands: &Candidates,
        c: usize,
    ) -> Result<Vec<Vec<bool>>> {
        let rows =
            utility::recognised(teacher, self.x.view(), c).map_err(|e| self.locate(e, cands))?;
        Ok(self.per_box(&rows))
    }

    /// A non-finite teacher output on a crop, named by the crop's source record.
    fn locate(&self, e: Error, cands: &Candidates) -> Error {
        e.locate(UTILITY, |row| {
            self.cand_of_row
                .get(row)
                .map(|&cand| cands.source_index[cand])
        })
    }

    /// Per-row values (one per distinct crop) laid out per candidate and box.
    fn per_box<T: Copy>(&self, rows: &[T]) -> Vec<Vec<T>> {
        self.slot
            .iter()
            .map(|s| s.iter().map(|&k| rows[k]).collect())
            .collect()
    }
}

fn collect(
    cands: &Candidates,
    c: usize,
    maps: Option<Array3<f64>>,
    boxes: Vec<Vec<PixelBox>>,
    scores: Vec<Vec<f64>>,
    recognised: Option<Vec<Vec<bool>>>,
) -> (Vec<Crop>, ClassLog) {
    // The same crop twice would fill two places of the distilled set with one picture.
    let mut seen = std::collections::HashSet::new();
    let crops = boxes
        .iter()
        .zip(&scores)
        .enumerate()
        .flat_map(|(cand, (bs, ss))| {
            let rec = recognised.as_ref().map(|r| &r[cand]);
            bs.iter()
                .zip(ss)
                .enumerate()
                .map(move |(j, (&bbox, &score))| Crop {
                    cand,
                    bbox,
                    score,
                    recognised: rec.is_none_or(|r| r[j]),
                })
        })
        .filter(|k| seen.insert((k.cand, k.bbox)))
        .collect();
    let log = ClassLog {
        label: c,
        source_index: cands.source_index.clone(),
        maps,
        boxes,
        scores,
    };
    (crops, log)
}

/// The best-scoring crop of each candidate (first on ties).
fn best_per_candidate(crops: Vec<Crop>) -> Vec<Crop> {
    let mut best: Vec<Crop> = Vec::new();
    for k in crops {
        match best.last_mut() {
            Some(b) if b.cand == k.cand => {
                if k.score > b.score {
                    *b = k;
                }
            }
            _ => best.push(k),
        }
    }
    best
}

/// Soft labels of `pixels` tiles: teacher softmax per tile.
fn tile_logits(teacher: &Teacher, images: &[Array3<f32>], factor: usize) -> Result<Array2<f32>> {
    let spec = &teacher.meta.input;
    let per = factor * factor;
    let mut x = Array4::zeros((images.len() * per, spec.channels, spec.height, spec.width));
    for (i, img) in images.iter().enumerate() {
        let (_, h, w) = img.dim();
        for k in 0..per {
            let t = reconstruct::tile(k, factor, h, w);
            let tile = img.slice(ndarray::s![.., t.y0..t.y1, t.x0..t.x1]);
            spec.pixels_into(tile, x.index_axis_mut(Axis(0), i * per + k));
        }
    }
    teacher
        .logits(x.view())
        .map_err(|e| e.locate("soft labels", |_| None))
}
