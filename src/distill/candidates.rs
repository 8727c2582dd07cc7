//! Candidates: the real images of one class that a method may take crops from, drawn with the
//! seed, read from the dataset and converted to the teacher's input.

use ndarray::{Array3, Array4, Axis};
use rand::rngs::StdRng;

use crate::data::preprocess::InputSpec;
use crate::data::{Selection, Source, VisitReport};
use crate::error::{Error, Result};

/// The candidates of one class, in dataset order.
pub struct Candidates {
    pub source_index: Vec<usize>,
    /// As stored (`u8`, `[C, h, w]`), for crops taken from source pixels.
    pub raw: Vec<Array3<u8>>,
    /// In the teacher's input space, `[n, C, H, W]`.
    pub x: Array4<f32>,
}

impl Candidates {
    pub fn len(&self) -> usize {
        self.source_index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.source_index.is_empty()
    }
}

/// Indices of each class, from the dataset's labels; a label outside the teacher's classes is an
/// error naming the record (or skipped with `skip_bad`).
pub fn by_class(
    labels: &[usize],
    classes: usize,
    path: &std::path::Path,
    skip_bad: bool,
    report: &mut VisitReport,
) -> Result<Vec<Vec<usize>>> {
    let mut out = vec![Vec::new(); classes];
    for (i, &y) in labels.iter().enumerate() {
        match out.get_mut(y) {
            Some(list) => list.push(i),
            None => {
                let e = Error::data(
                    path,
                    Some(i),
                    format!("label {y} is out of range for a teacher with {classes} classes"),
                );
                if !skip_bad {
                    return Err(e);
                }
                report.skip(&e);
            }
        }
    }
    Ok(out)
}

/// `n` of `pool` drawn without replacement (all of them when there are fewer), sorted.
pub fn draw(pool: &[usize], n: usize, rng: &mut StdRng) -> Vec<usize> {
    let mut picked: Vec<usize> = rand::seq::index::sample(rng, pool.len(), n.min(pool.len()))
        .into_iter()
        .map(|i| pool[i])
        .collect();
    picked.sort_unstable();
    picked
}

/// Read `indices` (sorted) and convert them. Bad records are errors, or skipped with
/// `skip_bad` and counted in `report`.
pub fn load(
    source: &mut dyn Source,
    indices: Vec<usize>,
    spec: &InputSpec,
    skip_bad: bool,
    report: &mut VisitReport,
) -> Result<Candidates> {
    let path = source.info().path.clone();
    let mut raw = Vec::with_capacity(indices.len());
    let mut kept = Vec::with_capacity(indices.len());
    let mut x = Vec::with_capacity(indices.len());
    let visit = source.visit(&Selection::Indices(indices), skip_bad, &mut |r| {
        match spec.convert(r.image.view()) {
            Ok(img) => {
                x.push(img);
                raw.push(r.image);
                kept.push(r.index);
            }
            Err(m) if skip_bad => report.skip(&Error::data(&path, Some(r.index), m)),
            Err(m) => return Err(Error::data(&path, Some(r.index), m)),
        }
        Ok(())
    })?;
    report.absorb(visit);
    let views: Vec<_> = x.iter().map(|a| a.view().insert_axis(Axis(0))).collect();
    let x = if views.is_empty() {
        Array4::zeros((0, spec.channels, spec.height, spec.width))
    } else {
        ndarray::concatenate(Axis(0), &views).expect("same shape")
    };
    Ok(Candidates {
        source_index: kept,
        raw,
        x,
    })
}
