//! Stage 2, utility: the crops of a class that compete for its places, how they are batched
//! through the teacher and scored, deduplicated, logged for the output file, and selected.
//! Shared by every method (the scores themselves are [`crate::utility`]'s).

use ndarray::{Array3, Array4, Axis};

use super::candidates::Candidates;
use crate::base::PixelBox;
use crate::error::{Error, Result};
use crate::reconstruct;
use crate::teacher::Teacher;
use crate::utility::{self, Score};

/// A crop that competes for a place in the distilled set.
#[derive(Debug, Clone, Copy)]
pub(super) struct Crop {
    /// Index into the class's candidates.
    pub cand: usize,
    /// In source pixels.
    pub bbox: PixelBox,
    pub score: f64,
    /// Selection takes these first (every crop is, unless `only_recognised` checks them).
    pub recognised: bool,
}

/// What a class's candidates went through, for the output file.
#[derive(Debug, Clone)]
pub(super) struct ClassLog {
    pub label: usize,
    pub source_index: Vec<usize>,
    pub maps: Option<Array3<f64>>,
    /// `[n, crops]` boxes and scores (RDED and InfoUtil).
    pub boxes: Vec<Vec<PixelBox>>,
    pub scores: Vec<Vec<f64>>,
}

use crate::progress::UTILITY;

pub(super) fn count(boxes: &[Vec<PixelBox>]) -> u64 {
    boxes.iter().map(|b| b.len() as u64).sum()
}

/// The distinct crops of a class's boxes as one teacher batch: each crop resized to the teacher's
/// input (or, with `pad_factor`, to one tile and zero-padded, as RDED does). A box an image offers
/// twice (noisy crops often land on the clean one) is computed once.
pub(super) struct CropBatch {
    x: Array4<f32>,
    /// For each candidate's boxes, the row of `x` holding its crop.
    slot: Vec<Vec<usize>>,
    /// The candidate of each row of `x`.
    cand_of_row: Vec<usize>,
}

impl CropBatch {
    pub(super) fn new(
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
            x = crate::base::pad::zero_padded(&x, spec.height, spec.width);
        }
        let cand_of_row = unique.iter().map(|&(cand, _)| cand).collect();
        CropBatch {
            x,
            slot,
            cand_of_row,
        }
    }

    /// Each box's utility score for class `c`.
    pub(super) fn scores(
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
    pub(super) fn recognised(
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

pub(super) fn collect(
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
pub(super) fn best_per_candidate(crops: Vec<Crop>) -> Vec<Crop> {
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

/// The `k` best crops, best first: recognised ones before any other (every crop is recognised
/// unless `only_recognised` checked them), ties in their order.
pub(super) fn select(crops: &[Crop], k: usize) -> Vec<Crop> {
    let keep = utility::top_k(
        &crops.iter().map(|k| k.score).collect::<Vec<_>>(),
        &crops.iter().map(|k| k.recognised).collect::<Vec<_>>(),
        k,
    );
    keep.iter().map(|&i| crops[i]).collect()
}
