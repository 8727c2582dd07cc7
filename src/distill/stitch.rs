//! Stitching: the selected crops of one class placed `factor × factor` to an image, and the
//! class's result as the file and the checkpoint keep it.

use ndarray::{Array2, Array3, Array4, Axis};

use super::candidates::Candidates;
use super::score::{ClassLog, Crop};
use crate::base::PixelBox;
use crate::data::preprocess::InputSpec;
use crate::reconstruct;

/// The distilled images of one class and how they were made.
#[derive(Debug, Clone)]
pub(super) struct ClassResult {
    pub label: usize,
    /// `[ipc, C, H, W]` in pixel units (0–255).
    pub pixels: Array4<f32>,
    /// `[ipc, T]` dataset record of each tile.
    pub source_index: Array2<i64>,
    /// `[ipc, T, 4]` crop of each tile in source pixels.
    pub crop_box: Array3<i32>,
    pub log: ClassLog,
}

pub(super) fn box_i32(b: &PixelBox) -> [i32; 4] {
    [b.y0, b.x0, b.y1, b.x1].map(|v| v as i32)
}

impl ClassResult {
    /// Stitch `chosen` (best first) into images of `factor²` crops each.
    pub fn stitch(
        cands: &Candidates,
        label: usize,
        chosen: &[Crop],
        factor: usize,
        spec: &InputSpec,
        log: ClassLog,
    ) -> ClassResult {
        let per = factor * factor;
        let n = chosen.len() / per;
        let (h, w) = (spec.height, spec.width);
        let mut pixels = Array4::zeros((n, spec.channels, h, w));
        for (i, group) in chosen.chunks(per).enumerate() {
            let parts: Vec<_> = group
                .iter()
                .map(|k| (cands.raw[k.cand].view(), k.bbox))
                .collect();
            pixels
                .index_axis_mut(Axis(0), i)
                .assign(&reconstruct::stitch(&parts, factor, h, w));
        }
        let index = chosen
            .iter()
            .map(|k| cands.source_index[k.cand] as i64)
            .collect();
        let boxes = chosen.iter().flat_map(|k| box_i32(&k.bbox)).collect();
        ClassResult {
            label,
            pixels,
            source_index: Array2::from_shape_vec((n, per), index).expect("per tile"),
            crop_box: Array3::from_shape_vec((n, per, 4), boxes).expect("4 per tile"),
            log,
        }
    }
}
