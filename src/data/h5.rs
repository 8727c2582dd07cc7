//! HDF5 datasets: `/images` of `u8`, shape `[n, C, H, W]` (or `[n, H, W]`, read as one channel),
//! and `/labels` of any integer type, shape `[n]`.
//!
//! Class names, when present, are the root attribute `class_names`: one string holding a JSON
//! list of strings (e.g. h5py `f.attrs["class_names"] = json.dumps(names)`). JSON in a string
//! attribute is how this project stores structured metadata elsewhere too.
//!
//! Images are read in blocks of consecutive records, so that a visit of everything streams with
//! bounded memory and a small selection reads, per block that holds selected records, only the
//! span from the first to the last of them.

use std::path::Path;

use hdf5::types::{TypeDescriptor, VarLenAscii, VarLenUnicode};
use hdf5::{Dataset, Hyperslab, SliceOrIndex};
use ndarray::{s, Array4};

use super::{deliver, selected_indices, Record, Selection, Source, SourceInfo, VisitReport};
use crate::error::{Error, Result};
use crate::input;

/// Upper bound on the bytes of one block read.
const BLOCK_BYTES: usize = 16 << 20;

pub struct H5Source {
    info: SourceInfo,
    images: Dataset,
    labels_ds: Dataset,
    /// `[C, H, W]` of every image.
    shape: [usize; 3],
    labels: Option<Vec<usize>>,
    // Keeps the file open for the datasets above.
    _file: hdf5::File,
}

impl H5Source {
    pub fn open(path: &Path) -> Result<Self> {
        let err = |msg: String| Error::data(path, None, msg);
        input::regular(path)?;
        let file = crate::store::unlocked()
            .open(path)
            .map_err(|e| err(format!("cannot open as HDF5: {e}")))?;
        let images = file
            .dataset("images")
            .map_err(|e| err(format!("no /images dataset: {e}")))?;
        let labels_ds = file
            .dataset("labels")
            .map_err(|e| err(format!("no /labels dataset: {e}")))?;
        let shape = check_images(path, &images)?;
        let n = images.shape()[0];
        check_labels(path, &labels_ds, n)?;
        // The sizes above come from the file: what they add up to must be stored in it before
        // all labels (and blocks of images) are allocated.
        check_stored(path, &images, "/images", product_of(&shape) as u64)?;
        let label_size = labels_ds.dtype().map(|t| t.size() as u64).unwrap_or(8);
        check_stored(path, &labels_ds, "/labels", label_size)?;
        let class_names = read_class_names(path, &file)?;
        Ok(H5Source {
            info: SourceInfo {
                path: path.to_path_buf(),
                len: n,
                shape: Some(shape),
                class_names,
                class_map: None,
            },
            images,
            labels_ds,
            shape,
            labels: None,
            _file: file,
        })
    }

    fn read_labels(&self) -> Result<Vec<usize>> {
        let path = &self.info.path;
        let raw = self
            .labels_ds
            .read_raw::<i64>()
            .map_err(|e| Error::data(path, None, format!("cannot read /labels: {e}")))?;
        raw.into_iter()
            .enumerate()
            .map(|(i, l)| {
                usize::try_from(l)
                    .map_err(|_| Error::data(path, Some(i), format!("label {l} is negative")))
            })
            .collect()
    }

    /// Records `range` of `/images` as `[k, C, H, W]`.
    fn read_block(&self, range: std::ops::Range<usize>) -> Result<Array4<u8>> {
        let [c, h, w] = self.shape;
        let k = range.len();
        let mut slab: Vec<SliceOrIndex> = vec![range.clone().into()];
        slab.resize(self.images.ndim(), (..).into());
        let block = self
            .images
            .read_slice::<u8, _, ndarray::IxDyn>(Hyperslab::from(slab))
            .map_err(|e| {
                Error::data(
                    &self.info.path,
                    None,
                    format!(
                        "cannot read /images records {}..{}: {e}",
                        range.start, range.end
                    ),
                )
            })?;
        Ok(block
            .into_shape_with_order((k, c, h, w))
            .expect("a block of n×C×H×W or n×H×W images"))
    }

    /// Records per block, so that a block stays under [`BLOCK_BYTES`].
    fn block_len(&self) -> usize {
        let [c, h, w] = self.shape;
        (BLOCK_BYTES / (c * h * w).max(1)).max(1)
    }
}

impl Source for H5Source {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn match_classes(&mut self, teacher_classes: &[String]) -> Result<()> {
        if let Some(names) = &self.info.class_names {
            let map = super::class_names::agree(&self.info.path, names, teacher_classes)?;
            self.info.class_map = Some(map);
        }
        Ok(())
    }

    fn labels(&mut self) -> Result<Vec<usize>> {
        if self.labels.is_none() {
            self.labels = Some(self.read_labels()?);
        }
        Ok(self.labels.clone().unwrap_or_default())
    }

    fn visit(
        &mut self,
        selection: &Selection,
        skip_bad: bool,
        f: &mut dyn FnMut(Record) -> Result<()>,
    ) -> Result<VisitReport> {
        let wanted: Vec<usize> =
            selected_indices(selection, self.info.len, &self.info.path)?.collect();
        // A negative label spoils only its record; read them raw here so it can be skipped.
        let labels = self
            .labels_ds
            .read_raw::<i64>()
            .map_err(|e| Error::data(&self.info.path, None, format!("cannot read /labels: {e}")))?;
        let mut report = VisitReport::default();
        for group in wanted.chunk_by(|a, b| a / self.block_len() == b / self.block_len()) {
            let (first, last) = (group[0], group[group.len() - 1]);
            let block = self.read_block(first..last + 1)?;
            for &index in group {
                let record = self.record(index, labels[index], &block, first);
                deliver(record, skip_bad, &mut report, f)?;
            }
        }
        Ok(report)
    }
}

impl H5Source {
    fn record(&self, index: usize, label: i64, block: &Array4<u8>, first: usize) -> Result<Record> {
        let label = usize::try_from(label).map_err(|_| {
            Error::data(
                &self.info.path,
                Some(index),
                format!("label {label} is negative"),
            )
        })?;
        let image = block.slice(s![index - first, .., .., ..]).to_owned();
        Ok(Record {
            index,
            label,
            image,
        })
    }
}

/// `/images` must be `u8` with 3 or 4 dimensions; returns `[C, H, W]`.
fn check_images(path: &Path, images: &Dataset) -> Result<[usize; 3]> {
    let dtype = descriptor(path, images, "/images")?;
    if dtype != TypeDescriptor::Unsigned(hdf5::types::IntSize::U1) {
        return Err(Error::data(
            path,
            None,
            format!("/images must be uint8, found {dtype}"),
        ));
    }
    let [c, h, w] = match images.shape().as_slice() {
        &[_, c, h, w] => [c, h, w],
        &[_, h, w] => [1, h, w],
        other => {
            return Err(Error::data(
                path,
                None,
                format!("/images must be [n, C, H, W] or [n, H, W], found shape {other:?}"),
            ))
        }
    };
    let field = |name, v: usize| (name, v as u64);
    input::image(
        path,
        field("/images channels", c),
        field("/images height", h),
        field("/images width", w),
    )
}

fn product_of(shape: &[usize; 3]) -> usize {
    shape.iter().product()
}

/// HDF5 filters this build decodes (deflate is built in, with the checksum and shuffle filters);
/// any other (LZF, Blosc, Zstd, … plugins) is named here instead of failing later in HDF5's
/// plugin search with "can't open directory".
fn check_filters(path: &Path, ds: &Dataset, name: &str) -> Result<()> {
    use hdf5::filters::Filter;
    for filter in ds.filters() {
        if let Filter::User(id, _) = filter {
            let known = match id {
                32000 => " (LZF)",
                32001 => " (Blosc)",
                307 => " (bzip2)",
                32004 => " (LZ4)",
                32015 => " (Zstandard)",
                _ => "",
            };
            return Err(Error::data(
                path,
                None,
                format!(
                    "{name} is compressed with HDF5 filter {id}{known}, which infoutil cannot \
                     decode; save it with gzip compression (h5py: compression=\"gzip\") or none"
                ),
            ));
        }
    }
    Ok(())
}

/// Largest expansion of compressed HDF5 data: deflate's limit (about 1032:1); the other filters
/// this build decodes do not compress.
const MAX_EXPANSION: u64 = 1032;

/// The dataset's records must be stored in the file: a dataset whose shape says 2^36 records
/// but whose chunks were never written holds nothing to read, and reading its labels would
/// allocate them all. `record` is the stored bytes of one record.
fn check_stored(path: &Path, ds: &Dataset, name: &str, record: u64) -> Result<()> {
    check_filters(path, ds, name)?;
    let n = ds.shape().first().copied().unwrap_or(0) as u64;
    let stored = ds.storage_size();
    let can_hold = match ds.filters().is_empty() {
        true => stored,
        false => stored.saturating_mul(MAX_EXPANSION),
    };
    input::holds(path, 0, (name, n), record, can_hold).map_err(|_| {
        Error::data(
            path,
            None,
            format!(
                "{name} has {n} records of {record} bytes but the file stores {stored} bytes of \
                 it: records never written, or a damaged file"
            ),
        )
    })?;
    Ok(())
}

/// `/labels` must be integers, one per image.
fn check_labels(path: &Path, labels: &Dataset, n: usize) -> Result<()> {
    let dtype = descriptor(path, labels, "/labels")?;
    if !matches!(
        dtype,
        TypeDescriptor::Integer(_) | TypeDescriptor::Unsigned(_)
    ) {
        return Err(Error::data(
            path,
            None,
            format!("/labels must be integers, found {dtype}"),
        ));
    }
    match labels.shape().as_slice() {
        &[m] if m == n => Ok(()),
        &[m] => Err(Error::data(
            path,
            None,
            format!("/images holds {n} images but /labels holds {m} labels"),
        )),
        other => Err(Error::data(
            path,
            None,
            format!("/labels must be [n], found shape {other:?}"),
        )),
    }
}

fn descriptor(path: &Path, ds: &Dataset, name: &str) -> Result<TypeDescriptor> {
    ds.dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(|e| Error::data(path, None, format!("cannot read the type of {name}: {e}")))
}

/// The `class_names` root attribute (a JSON list in one string), if present.
fn read_class_names(path: &Path, file: &hdf5::File) -> Result<Option<Vec<String>>> {
    let Ok(attr) = file.attr("class_names") else {
        return Ok(None);
    };
    let text = attr
        .read_scalar::<VarLenUnicode>()
        .map(|s| s.as_str().to_owned())
        .or_else(|_| {
            attr.read_scalar::<VarLenAscii>()
                .map(|s| s.as_str().to_owned())
        })
        .map_err(|e| bad_names(path, &e.to_string()))?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| bad_names(path, &e.to_string()))
}

fn bad_names(path: &Path, why: &str) -> Error {
    Error::data(
        path,
        None,
        format!("attribute class_names must be one string holding a JSON list of strings: {why}"),
    )
}
