//! Candidates: the real images of one class that a method may take crops from, drawn with the
//! seed, read from the dataset and converted to the teacher's input.

use ndarray::{Array3, Array4};
use rand::rngs::StdRng;

use crate::data::reader::{label_problem, Reader};
use crate::data::{Source, VisitReport};
use crate::error::{Error, Result};
use crate::teacher::Teacher;

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
                let msg = label_problem(y, classes).expect("outside the classes");
                let e = Error::data(path, Some(i), msg);
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
    teacher: &Teacher,
    skip_bad: bool,
    report: &mut VisitReport,
) -> Result<Candidates> {
    let (batch, read) = Reader::new(&teacher.meta.input, teacher.num_classes())
        .skip_bad(skip_bad)
        .keep_stored()
        .read_all(source, indices)?;
    report.absorb(read);
    Ok(Candidates {
        source_index: batch.index,
        raw: batch.stored,
        x: batch.x,
    })
}
