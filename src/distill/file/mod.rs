//! The distilled file: the set in memory and its HDF5 form (written here), its candidates'
//! datasets (written and read in `candidates.rs`), the per-class checkpoint, the merge of shards and the reuse of an earlier file's maps. The only code that
//! knows how a distilled file is laid out.

mod candidates;
pub mod checkpoint;
pub mod merge;
pub mod reuse;

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, Array3, Array4};

use crate::data::VisitReport;
use crate::distill::config::DistillConfig;
use crate::distill::score::ClassLog;
use crate::error::{Error, Result};
use crate::provenance::Provenance;
use crate::run_identity::RunIdentity;
use crate::store::{self, schema::attr, schema::distilled, schema::kind};
use crate::teacher::Teacher;
use serde::Serialize;

/// A distilled dataset with everything needed to trace each pixel back to its source.
pub struct Distilled {
    /// `[N, C, H, W]`, teacher input space.
    pub images: Array4<f32>,
    /// `[N, C, H, W]`, the same images as viewable bytes.
    pub images_u8: Array4<u8>,
    pub labels: Array1<i64>,
    /// `[N, factor², K]`: teacher softmax per tile.
    pub soft_labels: Array3<f32>,
    pub soft_logits: Array3<f32>,
    /// `[N, factor²]`: dataset record of each tile.
    pub source_index: Array2<i64>,
    /// `[N, factor², 4]`: (y0, x0, y1, x1) of each tile's crop, in source pixels.
    pub crop_box: Array3<i32>,
    pub(in crate::distill) candidates: Vec<ClassLog>,
    pub report: VisitReport,
    pub timings: Timings,
    /// Classes taken from a checkpoint instead of computed.
    pub resumed_classes: usize,
    /// The options it was made with (what the file's `config.distill` and root attributes say).
    pub config: DistillConfig,
    /// The teacher whose soft labels it carries (path, file SHA-256).
    pub label_teacher: (PathBuf, String),
    /// The file whose Shapley maps it reused (`--maps-from`).
    pub maps_from: Option<PathBuf>,
    /// The teacher's classes the data held no image of, so not distilled (without `--classes`).
    pub absent_classes: Vec<usize>,
}

/// The distilled file's own `config` section, beside the run's context.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Section {
    pub distill: DistillConfig,
    pub label_teacher: PathBuf,
    pub label_teacher_sha256: String,
    /// `label_teacher` relative to the distilled file's folder, so that a reader elsewhere (a
    /// student's training script run from another directory) finds it; the SHA-256 checks it.
    /// Absent in files written before it was recorded.
    #[serde(default)]
    pub label_teacher_from_output: Option<PathBuf>,
    #[serde(default)]
    pub maps_from: Option<PathBuf>,
    /// The teacher's classes absent from the data (not distilled); empty when all were there.
    #[serde(default)]
    pub absent_classes: Vec<usize>,
}

impl Section {
    /// The section of a run with `cfg`, soft labels from `label_teacher` (path, file SHA-256)
    /// and maps reused from `maps_from`; what is known only at the end is left empty.
    fn new(
        cfg: &DistillConfig,
        label_teacher: &(PathBuf, String),
        maps_from: Option<&Path>,
    ) -> Self {
        Section {
            distill: cfg.clone(),
            label_teacher: label_teacher.0.clone(),
            label_teacher_sha256: label_teacher.1.clone(),
            label_teacher_from_output: None,
            maps_from: maps_from.map(Path::to_path_buf),
            absent_classes: Vec::new(),
        }
    }
}

/// The run identity of a distillation about to run with `run`'s context, options `cfg`, soft
/// labels from `label_teacher` and maps from `maps_from`: that of the file it will write
/// (`--resume` fingerprints it, `--maps-from` compares its maps part, `merge` compares shards by
/// it; `run_identity`).
pub fn run_identity(
    run: &Provenance,
    cfg: &DistillConfig,
    teacher: &Teacher,
    label_teacher: &Teacher,
    maps_from: Option<&Path>,
) -> RunIdentity {
    let labels = (
        label_teacher.path.clone(),
        label_teacher.file_sha256.clone(),
    );
    let config = run.with(&Section::new(cfg, &labels, maps_from));
    RunIdentity::of(&config, &teacher.file_sha256)
}

impl Distilled {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Candidate images considered, over all classes.
    pub fn candidates(&self) -> usize {
        self.candidates.iter().map(|c| c.source_index.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Write the documented schema (docs/hdf5-schema.md, kind `distilled`), with `run`'s
    /// context and this set's options, label teacher and reused maps as the file's `config`.
    pub fn write(&self, path: &Path, teacher: &Teacher, run: &Provenance) -> Result<PathBuf> {
        // The options come from the typed configuration the set was made with, so the file can
        // never disagree with itself.
        let section = Section {
            label_teacher_from_output: relative_to_folder_of(&self.label_teacher.0, path),
            absent_classes: self.absent_classes.clone(),
            ..Section::new(&self.config, &self.label_teacher, self.maps_from.as_deref())
        };
        let w = store::Writer::create(
            path,
            &store::Header {
                kind: kind::DISTILLED,
                config: &run.with(&section),
                teacher_sha256: &teacher.file_sha256,
            },
        )?;
        let names = serde_json::to_string(&teacher.meta.class_names).expect("strings");
        w.attr("/", attr::CLASS_NAMES, &names)?;
        let options = serde_json::json!(self.config);
        for key in distilled::FROM_CONFIG {
            let v = &options[key];
            w.attr("/", key, &v.as_str().map_or(v.to_string(), str::to_string))?;
        }
        w.put(&distilled::IMAGES, self.images.view())?;
        w.put(&distilled::IMAGES_UINT8, self.images_u8.view())?;
        w.put(&distilled::LABELS, self.labels.view())?;
        w.put(&distilled::SOFT_LABELS, self.soft_labels.view())?;
        w.put(&distilled::SOFT_LOGITS, self.soft_logits.view())?;
        w.put(&distilled::SOURCE_INDEX, self.source_index.view())?;
        w.put(&distilled::CROP_BOX, self.crop_box.view())?;
        candidates::write(&w, &self.candidates)?;
        w.finish()
    }
}

/// Seconds per stage, summed over classes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub read: f64,
    pub attribution: f64,
    pub utility: f64,
    pub reconstruction: f64,
    pub soft_labels: f64,
}

/// An open distilled file and its parsed `config` attribute.
pub(in crate::distill) struct Shard {
    pub file: hdf5::File,
    pub config: serde_json::Value,
}

pub(in crate::distill) fn open(path: &Path) -> Result<Shard> {
    let file = store::open(path)?;
    let read = |k: &str| store::read_attr(&file, k).map_err(|e| Error::store(path, e));
    if read(attr::KIND)? != kind::DISTILLED {
        return Err(Error::store(
            path,
            "is not a distilled file (kind ≠ distilled)",
        ));
    }
    let config: serde_json::Value = serde_json::from_str(&read(attr::CONFIG)?)
        .map_err(|e| Error::store(path, format!("config attribute: {e}")))?;
    Ok(Shard { file, config })
}

/// `target` as a path relative to the folder of `file` (e.g. `../models/t.onnx`), both resolved
/// first (`file` need not exist yet), so that a reader that has only `file` finds `target` from
/// wherever it runs. `None` when either cannot be resolved.
fn relative_to_folder_of(target: &Path, file: &Path) -> Option<PathBuf> {
    let target = std::fs::canonicalize(target).ok()?;
    let folder = match file.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let folder = std::fs::canonicalize(folder).ok()?;
    let (t, f): (Vec<_>, Vec<_>) = (target.components().collect(), folder.components().collect());
    let common = t.iter().zip(&f).take_while(|(a, b)| a == b).count();
    let mut rel: PathBuf = f[common..].iter().map(|_| "..").collect();
    rel.extend(&t[common..]);
    Some(rel)
}

#[cfg(test)]
mod relative_path_tests {
    use super::relative_to_folder_of;
    use std::path::Path;

    #[test]
    fn a_path_relative_to_a_files_folder_leads_back_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let (models, out) = (dir.path().join("models"), dir.path().join("runs/a"));
        std::fs::create_dir_all(&models).unwrap();
        std::fs::create_dir_all(&out).unwrap();
        let teacher = models.join("t.onnx");
        std::fs::write(&teacher, b"x").unwrap();
        let rel = relative_to_folder_of(&teacher, &out.join("d.h5")).unwrap();
        assert_eq!(rel, Path::new("../../models/t.onnx"));
        assert_eq!(std::fs::read(out.join(&rel)).unwrap(), b"x");
        let beside = relative_to_folder_of(&teacher, &models.join("d.h5")).unwrap();
        assert_eq!(beside, Path::new("t.onnx"));
    }
}
