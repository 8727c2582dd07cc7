//! The distilled set as it is assembled class by class, and its HDF5 form.

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, Array3, Array4, Axis};

use super::candidates::Candidates;
use super::{tile_logits, ClassLog, Crop, Timings};
use crate::data::VisitReport;
use crate::error::Result;
use crate::reconstruct;
use crate::store;
use crate::teacher::Teacher;

pub(super) struct Builder {
    spec: crate::data::preprocess::InputSpec,
    pixels: Vec<Array3<f32>>,
    labels: Vec<i64>,
    source_index: Vec<i64>,
    crop_box: Vec<i32>,
    logs: Vec<ClassLog>,
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
}

impl Builder {
    pub(super) fn new(teacher: &Teacher) -> Builder {
        Builder {
            spec: teacher.meta.input.clone(),
            pixels: Vec::new(),
            labels: Vec::new(),
            source_index: Vec::new(),
            crop_box: Vec::new(),
            logs: Vec::new(),
        }
    }

    /// Stitch `chosen` (best first) into images of `factor²` crops each.
    pub(super) fn add_images(&mut self, cands: &Candidates, c: usize, chosen: &[Crop], factor: usize) -> Result<()> {
        let (h, w) = (self.spec.height, self.spec.width);
        for group in chosen.chunks(factor * factor) {
            let parts: Vec<_> = group.iter().map(|k| (cands.raw[k.cand].view(), k.bbox)).collect();
            self.pixels.push(reconstruct::stitch(&parts, factor, h, w));
            self.labels.push(c as i64);
            for k in group {
                self.source_index.push(cands.source_index[k.cand] as i64);
                let b = k.bbox;
                self.crop_box.extend([b.y0, b.x0, b.y1, b.x1].map(|v| v as i32));
            }
        }
        Ok(())
    }

    pub(super) fn log(&mut self, log: ClassLog) {
        self.logs.push(log);
    }

    pub(super) fn finish(self, label_teacher: &Teacher, factor: usize) -> Result<Distilled> {
        let (n, per) = (self.pixels.len(), factor * factor);
        let (c, h, w) = (self.spec.channels, self.spec.height, self.spec.width);
        let mut images = Array4::zeros((n, c, h, w));
        let mut images_u8 = Array4::zeros((n, c, h, w));
        for (i, p) in self.pixels.iter().enumerate() {
            self.spec.pixels_into(p.view(), images.index_axis_mut(Axis(0), i));
            images_u8.index_axis_mut(Axis(0), i).assign(&reconstruct::to_u8(p.view()));
        }
        // Soft labels from the bytes people see and students load, not from unrounded floats.
        let viewable: Vec<Array3<f32>> = images_u8.outer_iter().map(|a| a.mapv(f32::from)).collect();
        let logits = tile_logits(label_teacher, &viewable, factor)?;
        let k = logits.ncols();
        let soft_logits = logits.into_shape_with_order((n, per, k)).expect("n·per rows");
        let soft_labels = softmax(&soft_logits);
        Ok(Distilled {
            images,
            images_u8,
            labels: Array1::from(self.labels),
            soft_labels,
            soft_logits,
            source_index: Array2::from_shape_vec((n, per), self.source_index).expect("per tile"),
            crop_box: Array3::from_shape_vec((n, per, 4), self.crop_box).expect("4 per tile"),
            candidates: self.logs,
            report: VisitReport::default(),
            timings: Timings::default(),
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

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Write the documented schema (docs/hdf5-schema.md, kind `distilled`).
    pub fn write(&self, path: &Path, teacher: &Teacher, config: &serde_json::Value) -> Result<PathBuf> {
        let w = store::Writer::create(path, &store::Header { kind: "distilled", config, teacher_sha256: &teacher.file_sha256 })?;
        let names = serde_json::to_string(&teacher.meta.class_names).expect("strings");
        w.attr("/", "class_names", &names)?;
        for key in ["method", "ipc", "factor", "seed"] {
            let v = &config["distill"][key];
            w.attr("/", key, v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()).as_str())?;
        }
        w.dataset("/images", self.images.view(), "NCHW", "distilled images in the teacher's input space")?;
        w.dataset("/images_uint8", self.images_u8.view(), "NCHW", "distilled images as 0-255 pixels, for viewing")?;
        w.dataset("/labels", self.labels.view(), "N", "class of each distilled image")?;
        w.dataset("/soft_labels", self.soft_labels.view(), "N,T,K", "label-teacher softmax per tile (T = factor^2 tiles, row-major)")?;
        w.dataset("/soft_logits", self.soft_logits.view(), "N,T,K", "label-teacher logits per tile")?;
        w.dataset("/provenance/source_index", self.source_index.view(), "N,T", "dataset record each tile was cropped from")?;
        w.dataset("/provenance/crop_box", self.crop_box.view(), "N,T,4", "crop of each tile as (y0, x0, y1, x1), source pixels, half-open")?;
        self.write_candidates(&w)?;
        w.finish()
    }

    fn write_candidates(&self, w: &store::Writer) -> Result<()> {
        let index: Vec<i64> = self.candidates.iter().flat_map(|l| l.source_index.iter().map(|&i| i as i64)).collect();
        let label: Vec<i64> = self.candidates.iter().flat_map(|l| l.source_index.iter().map(|_| l.label as i64)).collect();
        let n = index.len();
        let per = self.candidates.iter().flat_map(|l| l.boxes.iter().map(Vec::len)).max().unwrap_or(0);
        let mut boxes = Array3::<i32>::from_elem((n, per, 4), -1);
        let mut scores = Array2::<f32>::from_elem((n, per), f32::NAN);
        let rows = self.candidates.iter().flat_map(|l| l.boxes.iter().zip(&l.scores));
        for (i, (bs, ss)) in rows.enumerate() {
            for (j, (b, &s)) in bs.iter().zip(ss).enumerate() {
                boxes.slice_mut(ndarray::s![i, j, ..]).assign(&Array1::from(vec![b.y0 as i32, b.x0 as i32, b.y1 as i32, b.x1 as i32]));
                scores[[i, j]] = s as f32;
            }
        }
        w.dataset("/candidates/source_index", Array1::from(index).view(), "N", "dataset record of each candidate")?;
        w.dataset("/candidates/label", Array1::from(label).view(), "N", "class of each candidate")?;
        w.dataset("/candidates/crop_box", boxes.view(), "N,R,4", "crops considered per candidate (y0, x0, y1, x1), source pixels; -1 = none")?;
        w.dataset("/candidates/score", scores.view(), "N,R", "selection score of each crop (utility; RDED: -CE); NaN = none")?;
        let maps: Vec<_> = self.candidates.iter().filter_map(|l| l.maps.as_ref()).collect();
        if !maps.is_empty() {
            let views: Vec<_> = maps.iter().map(|m| m.view()).collect();
            let all = ndarray::concatenate(Axis(0), &views).expect("same grid").mapv(|v| v as f32);
            w.dataset("/candidates/shapley", all.view(), "N,G,G", "Shapley value of each patch (row-major grid)")?;
        }
        Ok(())
    }

    /// The distilled images as one contact sheet, a row per class.
    pub fn contact_sheet(&self, scale: u32) -> image::RgbImage {
        let tiles: Vec<_> = self.images_u8.outer_iter().map(|img| crate::render::to_rgb(img, scale)).collect();
        let classes = self.labels.iter().collect::<std::collections::BTreeSet<_>>().len().max(1);
        crate::render::contact_sheet(&tiles, tiles.len().div_ceil(classes))
    }
}
