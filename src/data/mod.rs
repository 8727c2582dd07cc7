//! Labelled image datasets, read as streams of records.
//!
//! Every format implements [`Source`]: a cheap pass over the labels (so the pipeline can draw
//! per-class candidates), then a visit over all records or a chosen, sorted set of indices.
//! Records come as raw `u8` pixels in CHW order; [`preprocess`] turns them into the teacher's
//! input space, and is the only place that does.

pub mod preprocess;

use std::path::{Path, PathBuf};

use ndarray::Array3;

use crate::error::{Error, Result};

/// One labelled image as stored: `u8` pixels, shape `[C, H, W]`.
#[derive(Debug, Clone)]
pub struct Record {
    /// Position of the record in its dataset (0-based), the id written to provenance.
    pub index: usize,
    pub label: usize,
    pub image: Array3<u8>,
}

/// What a source knows about itself before reading any image.
#[derive(Debug, Clone)]
pub struct SourceInfo {
    pub path: PathBuf,
    /// Number of records.
    pub len: usize,
    /// `[C, H, W]` of every image, where the format fixes it (None for image folders).
    pub shape: Option<[usize; 3]>,
    /// Class names, where the format carries them (image folders, HDF5 attributes).
    pub class_names: Option<Vec<String>>,
}

/// Which records a visit delivers.
#[derive(Debug, Clone)]
pub enum Selection {
    All,
    /// Sorted, distinct indices.
    Indices(Vec<usize>),
}

/// What a visit did, for the run summary.
#[derive(Debug, Clone, Default)]
pub struct VisitReport {
    pub delivered: usize,
    /// Records skipped as bad (only with `skip_bad`), with the reason of the first few.
    pub skipped: usize,
    pub skipped_examples: Vec<String>,
}

impl VisitReport {
    /// Record a skipped bad record, keeping the first few messages for the summary.
    pub fn skip(&mut self, err: &Error) {
        self.skipped += 1;
        if self.skipped_examples.len() < 5 {
            self.skipped_examples.push(err.to_string());
        }
    }
}

/// A labelled image dataset.
pub trait Source: Send {
    fn info(&self) -> &SourceInfo;

    /// All labels, in record order. Labels outside `0..num_classes` are the caller's check.
    fn labels(&mut self) -> Result<Vec<usize>>;

    /// Deliver the selected records in index order. A bad record is an error naming the file and
    /// the record, unless `skip_bad`, in which case it is counted in the report and skipped.
    fn visit(
        &mut self,
        selection: &Selection,
        skip_bad: bool,
        f: &mut dyn FnMut(Record) -> Result<()>,
    ) -> Result<VisitReport>;
}

/// Open a dataset by its path: an idx images file (or the folder holding an idx pair),
/// CIFAR binary batches, an ImageFolder tree, or an HDF5 file with `/images` and `/labels`.
pub fn open(path: &Path) -> Result<Box<dyn Source>> {
    let _ = path;
    Err(Error::Config("dataset loaders are not written yet".into()))
}
