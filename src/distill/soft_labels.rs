//! The last step: the classes' stitched images assembled into the distilled set, and its soft
//! labels, the label teacher's softmax on every tile of the bytes people see.

use ndarray::{s, Array1, Array2, Array3, Array4, Axis};

use super::config::DistillConfig;
use super::file::{Distilled, Timings};
use super::stitch::ClassResult;
use crate::data::preprocess::InputSpec;
use crate::data::VisitReport;
use crate::error::Result;
use crate::reconstruct;
use crate::teacher::Teacher;

pub(super) struct Builder {
    spec: InputSpec,
    classes: Vec<ClassResult>,
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
            absent_classes: Vec::new(),
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
