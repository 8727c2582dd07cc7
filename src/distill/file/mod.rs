//! The distilled set as it is assembled class by class, and its HDF5 form.

use std::path::{Path, PathBuf};

use ndarray::{s, Array1, Array2, Array3, Array4, Axis};

use super::config::DistillConfig;
use super::crops::ClassLog;
use super::parts::ClassResult;
use crate::data::VisitReport;
use crate::error::Result;
use crate::provenance::Provenance;
use crate::reconstruct;
use crate::store::{self, schema::attr, schema::distilled, schema::kind};
use crate::teacher::Teacher;
use serde::Serialize;

pub(super) struct Builder {
    spec: crate::data::preprocess::InputSpec,
    classes: Vec<ClassResult>,
}

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
    candidates: Vec<ClassLog>,
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
}

/// The distilled file's own `config` section, beside the run's context.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Section {
    pub distill: DistillConfig,
    pub label_teacher: PathBuf,
    pub label_teacher_sha256: String,
    #[serde(default)]
    pub maps_from: Option<PathBuf>,
}

impl Builder {
    pub(super) fn new(teacher: &Teacher) -> Builder {
        Builder {
            spec: teacher.meta.input.clone(),
            classes: Vec::new(),
        }
    }

    pub(super) fn push(&mut self, class: ClassResult) {
        self.classes.push(class);
    }

    pub(super) fn finish(
        mut self,
        label_teacher: &Teacher,
        cfg: &DistillConfig,
    ) -> Result<Distilled> {
        let factor = cfg.factor;
        let per = factor * factor;
        let n = self.classes.iter().map(|r| r.pixels.len_of(Axis(0))).sum();
        let spec = &self.spec;
        // Class by class into the two arrays the file holds, each class's pixels dropped once
        // copied: beside the result only one class's temporaries are alive, where whole-set
        // copies would multiply the result's memory.
        let mut images = Array4::zeros((n, spec.channels, spec.height, spec.width));
        let mut images_u8 = Array4::zeros(images.raw_dim());
        let mut logits = Vec::with_capacity(self.classes.len());
        let mut labels = Vec::with_capacity(n);
        let mut at = 0;
        for r in &mut self.classes {
            let pixels = std::mem::take(&mut r.pixels);
            let m = pixels.len_of(Axis(0));
            for (i, p) in pixels.outer_iter().enumerate() {
                spec.pixels_into(p, images.index_axis_mut(Axis(0), at + i));
            }
            let bytes = reconstruct::to_u8(pixels.view());
            drop(pixels);
            // Soft labels from the bytes people see and students load, not from unrounded floats.
            let viewable: Vec<Array3<f32>> =
                bytes.outer_iter().map(|a| a.mapv(f32::from)).collect();
            logits.push(tile_logits(label_teacher, &viewable, factor)?);
            images_u8
                .slice_mut(s![at..at + m, .., .., ..])
                .assign(&bytes);
            labels.extend(std::iter::repeat_n(r.label as i64, m));
            at += m;
        }
        let views: Vec<_> = logits.iter().map(|l| l.view()).collect();
        let logits = ndarray::concatenate(Axis(0), &views).expect("K columns");
        let k = logits.ncols();
        let soft_logits = logits
            .into_shape_with_order((n, per, k))
            .expect("n·per rows");
        let soft_labels = softmax(&soft_logits);
        let index: Vec<_> = self.classes.iter().map(|r| r.source_index.view()).collect();
        let boxes: Vec<_> = self.classes.iter().map(|r| r.crop_box.view()).collect();
        Ok(Distilled {
            images,
            images_u8,
            labels: Array1::from(labels),
            soft_labels,
            soft_logits,
            source_index: ndarray::concatenate(Axis(0), &index).expect("T columns"),
            crop_box: ndarray::concatenate(Axis(0), &boxes).expect("T×4"),
            candidates: self.classes.into_iter().map(|r| r.log).collect(),
            report: VisitReport::default(),
            timings: Timings::default(),
            resumed_classes: 0,
            config: cfg.clone(),
            label_teacher: (
                label_teacher.path.clone(),
                label_teacher.file_sha256.clone(),
            ),
            maps_from: None,
        })
    }
}

fn softmax(logits: &Array3<f32>) -> Array3<f32> {
    let mut out = logits.clone();
    for mut row in out.lanes_mut(Axis(2)) {
        let max = row.fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
    out
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
            distill: self.config.clone(),
            label_teacher: self.label_teacher.0.clone(),
            label_teacher_sha256: self.label_teacher.1.clone(),
            maps_from: self.maps_from.clone(),
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
        self.write_candidates(&w)?;
        w.finish()
    }

    fn write_candidates(&self, w: &store::Writer) -> Result<()> {
        let index: Vec<i64> = self
            .candidates
            .iter()
            .flat_map(|l| l.source_index.iter().map(|&i| i as i64))
            .collect();
        let label: Vec<i64> = self
            .candidates
            .iter()
            .flat_map(|l| l.source_index.iter().map(|_| l.label as i64))
            .collect();
        let n = index.len();
        let per = self
            .candidates
            .iter()
            .flat_map(|l| l.boxes.iter().map(Vec::len))
            .max()
            .unwrap_or(0);
        let mut boxes = Array3::<i32>::from_elem((n, per, 4), -1);
        let mut scores = Array2::<f32>::from_elem((n, per), f32::NAN);
        let rows = self
            .candidates
            .iter()
            .flat_map(|l| l.boxes.iter().zip(&l.scores));
        for (i, (bs, ss)) in rows.enumerate() {
            for (j, (b, &s)) in bs.iter().zip(ss).enumerate() {
                boxes
                    .slice_mut(ndarray::s![i, j, ..])
                    .assign(&Array1::from(vec![
                        b.y0 as i32,
                        b.x0 as i32,
                        b.y1 as i32,
                        b.x1 as i32,
                    ]));
                scores[[i, j]] = s as f32;
            }
        }
        w.put(&distilled::CANDIDATE_INDEX, Array1::from(index).view())?;
        w.put(&distilled::CANDIDATE_LABEL, Array1::from(label).view())?;
        w.put(&distilled::CANDIDATE_CROP_BOX, boxes.view())?;
        w.put(&distilled::CANDIDATE_SCORE, scores.view())?;
        let maps: Vec<_> = self
            .candidates
            .iter()
            .filter_map(|l| l.maps.as_ref())
            .collect();
        if !maps.is_empty() {
            let views: Vec<_> = maps.iter().map(|m| m.view()).collect();
            let all = ndarray::concatenate(Axis(0), &views)
                .expect("same grid")
                .mapv(|v| v as f32);
            w.put(&distilled::CANDIDATE_SHAPLEY, all.view())?;
        }
        Ok(())
    }

    /// The distilled images as one contact sheet, a row per class, each image drawn `scale`
    /// times its size or shrunk to [`SHEET_TILE_SIDE`], and at most [`SHEET_MAX_CLASSES`] rows
    /// (the first classes): a picture any viewer opens, for 1 000 classes of 224-px images too.
    pub fn contact_sheet(&self, scale: u32) -> crate::render::RgbImage {
        let (take, per_class) = sheet_layout(self.labels.len(), self.sheet_classes());
        let tiles: Vec<_> = self
            .images_u8
            .outer_iter()
            .take(take)
            .map(|img| crate::render::fitted(img, scale, SHEET_TILE_SIDE).0)
            .collect();
        crate::render::contact_sheet(&tiles, per_class)
    }

    /// (classes the contact sheet shows, classes in the set).
    pub fn sheet_classes(&self) -> (usize, usize) {
        let all = self
            .labels
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        (all.min(SHEET_MAX_CLASSES), all)
    }
}

/// (images drawn, images a row) of a contact sheet of `n` images ordered by class, showing
/// `shown` of `all` classes.
fn sheet_layout(n: usize, (shown, all): (usize, usize)) -> (usize, usize) {
    let per_class = n.div_ceil(all.max(1));
    (shown * per_class, per_class)
}

/// Longest side of one image in the contact sheet (Fashion-MNIST's 28 px drawn 4×; 224-px
/// images halved).
pub const SHEET_TILE_SIDE: u32 = 112;
/// Rows (classes) of the contact sheet at most.
pub const SHEET_MAX_CLASSES: usize = 100;

/// Seconds per stage, summed over classes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timings {
    pub read: f64,
    pub attribution: f64,
    pub utility: f64,
    pub reconstruction: f64,
    pub soft_labels: f64,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contact_sheet_keeps_a_row_per_class_for_at_most_its_first_classes() {
        // Fashion-MNIST: 10 classes × IPC 10, all shown.
        assert_eq!(sheet_layout(100, (10, 10)), (100, 10));
        // ImageNet-1K × IPC 10: the first 100 classes' rows.
        assert_eq!(sheet_layout(10_000, (SHEET_MAX_CLASSES, 1000)), (1000, 10));
    }
}
