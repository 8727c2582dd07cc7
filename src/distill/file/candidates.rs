//! The `/candidates/*` datasets: what every class's candidates went through (their records, the
//! crops considered with their scores, and the maps where the method made them). One writer and
//! one reader, for the distilled file and for the checkpoint's classes alike: a row per
//! candidate, its crops padded to the longest row with box -1 and score NaN.

use std::path::Path;

use ndarray::{s, Array1, Array2, Array3, Axis};

use crate::base::PixelBox;
use crate::distill::score::ClassLog;
use crate::distill::stitch::box_i32;
use crate::error::{Error, Result};
use crate::store::{self, schema::distilled};

/// Write the candidates of `logs` (classes in order).
pub(in crate::distill) fn write(w: &store::Writer, logs: &[ClassLog]) -> Result<()> {
    let index: Vec<i64> = logs
        .iter()
        .flat_map(|l| l.source_index.iter().map(|&i| i as i64))
        .collect();
    let label: Vec<i64> = logs
        .iter()
        .flat_map(|l| l.source_index.iter().map(|_| l.label as i64))
        .collect();
    let n = index.len();
    let per = logs
        .iter()
        .flat_map(|l| l.boxes.iter().map(Vec::len))
        .max()
        .unwrap_or(0);
    let mut boxes = Array3::<i32>::from_elem((n, per, 4), -1);
    let mut scores = Array2::<f32>::from_elem((n, per), f32::NAN);
    let rows = logs.iter().flat_map(|l| l.boxes.iter().zip(&l.scores));
    for (i, (bs, ss)) in rows.enumerate() {
        for (j, (b, &score)) in bs.iter().zip(ss).enumerate() {
            boxes
                .slice_mut(s![i, j, ..])
                .assign(&Array1::from(box_i32(b).to_vec()));
            scores[[i, j]] = score as f32;
        }
    }
    w.put(&distilled::CANDIDATE_INDEX, Array1::from(index).view())?;
    w.put(&distilled::CANDIDATE_LABEL, Array1::from(label).view())?;
    w.put(&distilled::CANDIDATE_CROP_BOX, boxes.view())?;
    w.put(&distilled::CANDIDATE_SCORE, scores.view())?;
    let maps: Vec<_> = logs
        .iter()
        .filter_map(|l| l.maps.as_ref().map(|m| m.view()))
        .collect();
    if !maps.is_empty() {
        let all = ndarray::concatenate(Axis(0), &maps)
            .expect("same grid")
            .mapv(|v| v as f32);
        w.put(&distilled::CANDIDATE_SHAPLEY, all.view())?;
    }
    Ok(())
}

/// The candidates of a file, a row per candidate.
pub(in crate::distill) struct Rows {
    pub index: Vec<usize>,
    pub label: Vec<usize>,
    /// Each candidate's crops and their scores, padding dropped.
    pub boxes: Vec<Vec<PixelBox>>,
    pub scores: Vec<Vec<f64>>,
    /// `[n, g, g]`, where the method made maps.
    pub maps: Option<Array3<f64>>,
}

/// Read the candidates of the file `f` (at `path`), checking that the datasets agree in length.
/// A file of one class's candidates (a checkpoint's) may leave out their labels: `class` then.
pub(in crate::distill) fn read(f: &hdf5::File, path: &Path, class: Option<usize>) -> Result<Rows> {
    let index: Array1<i64> = store::read(f, path, &distilled::CANDIDATE_INDEX)?;
    let label: Array1<i64> = match class {
        Some(c) if !store::has(f, &distilled::CANDIDATE_LABEL) => {
            Array1::from_elem(index.len(), c as i64)
        }
        _ => store::read(f, path, &distilled::CANDIDATE_LABEL)?,
    };
    let boxes: Array3<i32> = store::read(f, path, &distilled::CANDIDATE_CROP_BOX)?;
    let scores: Array2<f64> = store::read(f, path, &distilled::CANDIDATE_SCORE)?;
    let maps: Option<Array3<f64>> = match store::has(f, &distilled::CANDIDATE_SHAPLEY) {
        true => Some(store::read(f, path, &distilled::CANDIDATE_SHAPLEY)?),
        false => None,
    };
    let n = index.len();
    let rows = [
        label.len(),
        boxes.len_of(Axis(0)),
        scores.nrows(),
        maps.as_ref().map_or(n, |m| m.len_of(Axis(0))),
    ];
    if rows.iter().any(|&r| r != n) || boxes.len_of(Axis(1)) != scores.ncols() {
        return Err(Error::store(
            path,
            "candidates/source_index, label, crop_box, score and shapley differ in length",
        ));
    }
    let crops = |i: usize| -> (Vec<PixelBox>, Vec<f64>) {
        let kept = boxes.index_axis(Axis(0), i);
        let kept = kept
            .outer_iter()
            .zip(scores.row(i))
            .filter(|(b, _)| b[0] >= 0);
        kept.map(|(b, &score)| (corners(b), score)).unzip()
    };
    let (boxes, scores): (Vec<Vec<PixelBox>>, Vec<Vec<f64>>) = (0..n).map(crops).unzip();
    Ok(Rows {
        index: index.iter().map(|&i| i as usize).collect(),
        label: label.iter().map(|&c| c as usize).collect(),
        boxes,
        scores,
        maps,
    })
}

fn corners(b: ndarray::ArrayView1<i32>) -> PixelBox {
    PixelBox {
        y0: b[0] as usize,
        x0: b[1] as usize,
        y1: b[2] as usize,
        x1: b[3] as usize,
    }
}
