//! The pipeline, per class: candidates → crops (the methods: InfoUtil's Shapley-informative,
//! RDED's random resized, random's whole images) → utility and selection → stitching → soft
//! labels. This file is the driver; each step is a file named after it, the methods are in
//! methods/, and the distilled file's format (write, checkpoint, merge, reuse) is in file/.

pub mod candidates;
mod config;
mod file;
mod methods;
mod run;
mod score;
mod soft_labels;
mod stitch;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use crate::base::valid::Valid;
use crate::data::{Source, VisitReport};
use crate::error::{Error, Result};
use crate::progress::Progress;
pub use crate::progress::UTILITY;
use crate::teacher::Teacher;
pub use config::{attribution_reads, DistillConfig, Method, Opt};
pub use file::checkpoint::{default_dir as default_checkpoint_dir, Checkpoint};
pub use file::merge::merge;
pub use file::reuse::SavedMaps;
pub use file::{run_identity, Distilled, Timings};
use methods::{Run, Work};
use run::mean_pixel;

/// The paper's soft-label teacher for `teacher` at `ipc`: the early checkpoint `NAME-early.onnx`
/// beside it for IPC ≤ 10, the teacher itself above, and why (the choice changes the result, so
/// callers say it).
pub fn label_teacher_for(teacher: &std::path::Path, ipc: usize) -> (std::path::PathBuf, String) {
    let early = crate::teacher::siblings::early_path(teacher);
    if ipc > 10 {
        let why = "the teacher itself, as the paper does above IPC 10";
        (teacher.to_path_buf(), why.into())
    } else if early.exists() {
        let why = "the early checkpoint beside the teacher, as the paper does for IPC ≤ 10";
        (early, why.into())
    } else {
        let why = format!(
            "the teacher itself: the paper uses an early checkpoint for IPC ≤ 10, but there is no \
             {} (give one with `label_teacher`)",
            early.display()
        );
        (teacher.to_path_buf(), why)
    }
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
    cfg: &Valid<DistillConfig>,
    reuse: Reuse,
    progress: &dyn Progress,
) -> Result<Distilled> {
    let cfg: &DistillConfig = cfg;
    if reuse.maps.is_some() {
        // Saved maps are an option of the run, not of the config: the same declaration decides.
        let maps = BTreeSet::from([Opt::MapsFrom]);
        cfg.refuse_unread(&maps)?;
    }
    same_input_and_classes(teacher, label_teacher)?;
    let mut run = Run {
        teacher,
        cfg,
        report: VisitReport::default(),
        timings: Timings::default(),
        mean_pixel: Vec::new(),
        progress,
        saved_maps: reuse.maps,
    };
    let (path, classes) = read_classes(&mut run, source)?;

    let (wanted, absent) = wanted_classes(cfg, &classes, &path)?;
    let mut out = soft_labels::Builder::new(teacher);
    let mut resumed = 0;
    let method = cfg.method.proposal();
    let work = |c: usize| method.work(cfg, method.candidates(cfg).min(classes[c].len()) as u64);
    let total = wanted.iter().fold(Work::default(), |t, &c| t.plus(work(c)));
    total.start(progress);
    for c in wanted {
        let saved = match reuse.checkpoint {
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
                let r = run::class(&mut run, source, &path, c, &classes[c])?;
                if let Some(cp) = reuse.checkpoint {
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
    distilled.maps_from = reuse.maps.map(|m| m.path.clone());
    distilled.absent_classes = absent;
    Ok(distilled)
}

/// The dataset's records by class (its classes matched to the teacher's), and the mean pixel
/// where the method needs it, timed as the run's reading.
fn read_classes(run: &mut Run, source: &mut dyn Source) -> Result<(PathBuf, Vec<Vec<usize>>)> {
    let (teacher, cfg) = (run.teacher, run.cfg);
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
    Ok((path, classes))
}

/// The label teacher must read the same input and name the same classes as the teacher.
fn same_input_and_classes(teacher: &Teacher, label_teacher: &Teacher) -> Result<()> {
    if teacher.meta.input != label_teacher.meta.input
        || teacher.num_classes() != label_teacher.num_classes()
    {
        return Err(Error::Config(format!(
            "the label teacher {} takes another input or class list than the teacher {}",
            label_teacher.path.display(),
            teacher.path.display()
        )));
    }
    Ok(())
}

/// The classes this run distils (`cfg.classes`, or all `n`), each one the teacher has.
/// The classes to distil and the teacher's classes absent from the data. Without --classes,
/// the classes the data holds: a folder of 19 ImageNet classes is distilled as those 19, and
/// the absent ones are recorded; an explicit list that names a class without images is still
/// refused, class by class.
fn wanted_classes(
    cfg: &DistillConfig,
    classes: &[Vec<usize>],
    path: &std::path::Path,
) -> Result<(Vec<usize>, Vec<usize>)> {
    let n = classes.len();
    let absent: Vec<usize> = match &cfg.classes {
        Some(_) => Vec::new(),
        None => (0..n).filter(|&c| classes[c].is_empty()).collect(),
    };
    let wanted: Vec<usize> = match &cfg.classes {
        Some(list) => list.clone(),
        None => (0..n).filter(|c| !absent.contains(c)).collect(),
    };
    if wanted.is_empty() {
        return Err(Error::data(
            path,
            None,
            "no class of the teacher has images",
        ));
    }
    if let Some(&bad) = wanted.iter().find(|&&c| c >= n) {
        return Err(Error::Config(format!(
            "class {bad} does not exist: the teacher has {n} classes"
        )));
    }
    Ok((wanted, absent))
}
