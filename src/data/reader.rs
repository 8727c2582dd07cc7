//! The one way a stage reads dataset records for a teacher: each record's label checked against
//! the teacher's classes, its pixels converted to the teacher's input ([`preprocess`]), bad
//! records stopped at or skipped, and the rest handed on in batches. Teacher evaluation,
//! attribution, distillation's candidates and the tests all read through it, so a record is
//! refused for the same reasons, with the same message naming its file, everywhere.
//!
//! [`preprocess`]: super::preprocess

use std::path::Path;

use ndarray::{Array3, Array4, ArrayViewMut3};

use super::preprocess::InputSpec;
use super::{Record, Selection, Source, VisitReport};
use crate::error::{Error, Result};

/// Why `label` is not a class of a teacher with `classes` classes, if it is not: the one wording
/// of that refusal (the teacher uses it for the labels its graphs are given).
pub fn label_problem(label: usize, classes: usize) -> Option<String> {
    (label >= classes)
        .then(|| format!("label {label} is out of range for a teacher with {classes} classes"))
}

/// Records read, converted, in index order.
pub struct Batch {
    /// The records' positions in the dataset.
    pub index: Vec<usize>,
    pub labels: Vec<usize>,
    /// The records in the teacher's input space, `[n, C, H, W]`.
    pub x: Array4<f32>,
    /// The records as stored (`u8`, `[C, h, w]`) when the reader keeps them, else empty.
    pub stored: Vec<Array3<u8>>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The batch's records as stored (the reader must keep them), and its teacher input.
    pub fn into_records(self) -> (Vec<Record>, Array4<f32>) {
        assert_eq!(
            self.stored.len(),
            self.index.len(),
            "the reader keeps images"
        );
        let records = (self.index.into_iter().zip(self.labels).zip(self.stored))
            .map(|((index, label), image)| Record {
                index,
                label,
                image,
            })
            .collect();
        (records, self.x)
    }
}

/// How records are read for a teacher.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    spec: &'a InputSpec,
    classes: usize,
    skip_bad: bool,
    batch: usize,
    keep_stored: bool,
}

impl<'a> Reader<'a> {
    /// Records for a teacher with input `spec` and `classes` classes: bad records stop the read,
    /// all of them come in one batch, and the stored pixels are not kept.
    pub fn new(spec: &'a InputSpec, classes: usize) -> Self {
        Reader {
            spec,
            classes,
            skip_bad: false,
            batch: usize::MAX,
            keep_stored: false,
        }
    }

    /// Skip bad records (counted in the report) instead of stopping at the first.
    pub fn skip_bad(mut self, skip: bool) -> Self {
        self.skip_bad = skip;
        self
    }

    /// At most `n` records a batch (the last may hold fewer).
    pub fn batches_of(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    /// Keep each record's stored pixels in its batch (for crops taken from source pixels).
    pub fn keep_stored(mut self) -> Self {
        self.keep_stored = true;
        self
    }

    /// Read `selection`, handing each full batch (and the last) to `f`. The report counts the
    /// records the source skipped, then those refused here (a label the teacher lacks, pixels
    /// the teacher cannot take); an error about a record names the file that holds it.
    pub fn read(
        &self,
        source: &mut dyn Source,
        selection: &Selection,
        f: &mut dyn FnMut(Batch) -> Result<()>,
    ) -> Result<VisitReport> {
        let root = source.info().path.clone();
        let mut pending = Pending::default();
        let mut refused = Refused::default();
        let visit = source.visit(selection, self.skip_bad, &mut |r| {
            match self.take(&mut pending, r) {
                Err((index, msg)) if self.skip_bad => refused.push(index, msg),
                Err((index, msg)) => return Err(Error::data(&root, Some(index), msg)),
                Ok(()) => {}
            }
            if pending.index.len() >= self.batch {
                f(pending.batch(self.spec))?;
            }
            Ok(())
        });
        let mut report = visit.map_err(|e| naming_the_file(e, &root, source))?;
        if !pending.index.is_empty() {
            f(pending.batch(self.spec))?;
        }
        report.absorb(refused.report(source));
        Ok(report)
    }

    /// [`read`](Self::read) of the records at `indices` (sorted) as one batch (empty when every
    /// record was skipped).
    pub fn read_all(
        &self,
        source: &mut dyn Source,
        indices: Vec<usize>,
    ) -> Result<(Batch, VisitReport)> {
        let reader = Reader {
            batch: usize::MAX,
            ..self.clone()
        };
        let mut all = None;
        let report = reader.read(source, &Selection::Indices(indices), &mut |b| {
            all = Some(b);
            Ok(())
        })?;
        let empty = || Pending::default().batch(self.spec);
        Ok((all.unwrap_or_else(empty), report))
    }

    /// Add record `r` to `pending`, or say why it cannot be.
    fn take(&self, pending: &mut Pending, r: Record) -> Result<(), (usize, String)> {
        if let Some(m) = label_problem(r.label, self.classes) {
            return Err((r.index, m));
        }
        let spec = self.spec;
        let size = spec.channels * spec.height * spec.width;
        let start = pending.x.len();
        pending.x.resize(start + size, 0.0);
        let slot = ArrayViewMut3::from_shape(
            (spec.channels, spec.height, spec.width),
            &mut pending.x[start..],
        )
        .expect("sized per image");
        if let Err(m) = spec.convert_into(r.image.view(), slot) {
            pending.x.truncate(start);
            return Err((r.index, m));
        }
        pending.index.push(r.index);
        pending.labels.push(r.label);
        if self.keep_stored {
            pending.stored.push(r.image);
        }
        Ok(())
    }
}

/// The records of the batch being filled, their teacher input flat.
#[derive(Default)]
struct Pending {
    index: Vec<usize>,
    labels: Vec<usize>,
    x: Vec<f32>,
    stored: Vec<Array3<u8>>,
}

impl Pending {
    /// The records so far as a batch, leaving this one empty.
    fn batch(&mut self, spec: &InputSpec) -> Batch {
        let n = self.index.len();
        let x = Array4::from_shape_vec(
            (n, spec.channels, spec.height, spec.width),
            std::mem::take(&mut self.x),
        )
        .expect("sized per image");
        Batch {
            index: std::mem::take(&mut self.index),
            labels: std::mem::take(&mut self.labels),
            x,
            stored: std::mem::take(&mut self.stored),
        }
    }
}

/// Records refused while the source was being visited: how many, and the first few, named
/// once the visit is over (only then can the source say which file holds a record).
#[derive(Default)]
struct Refused {
    count: usize,
    first: Vec<(usize, String)>,
}

impl Refused {
    const KEPT: usize = 5;

    fn push(&mut self, index: usize, msg: String) {
        self.count += 1;
        if self.first.len() < Self::KEPT {
            self.first.push((index, msg));
        }
    }

    fn report(self, source: &dyn Source) -> VisitReport {
        let mut report = VisitReport::default();
        for (index, msg) in self.first {
            report.skip(&Error::data(source.record_path(index), Some(index), msg));
        }
        report.skipped = self.count;
        report
    }
}

/// An error about record `i` of the dataset at `root` as one about the file that holds it.
fn naming_the_file(e: Error, root: &Path, source: &dyn Source) -> Error {
    match e {
        Error::Data {
            path,
            record: Some(i),
            msg,
        } if path == root => Error::data(source.record_path(i), Some(i), msg),
        other => other,
    }
}
