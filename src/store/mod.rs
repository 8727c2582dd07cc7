//! The project's HDF5 files: the only code that knows how results are laid out on disk.
//!
//! Every file carries root attributes `schema_version`, `created_by`, `kind`, `config` (JSON of
//! the whole run configuration) and `teacher_sha256`; every dataset carries a `layout`
//! attribute naming its axes (e.g. `NCHW`) and a `description`. Datasets are chunked along the
//! first axis and gzip-compressed. A file is written under a temporary name in the destination
//! folder and renamed into place by [`Writer::finish`], so a crash never leaves a half-written
//! result under the final name. docs/hdf5-schema.md documents every dataset.

mod inspect;
pub mod schema;

use std::path::{Path, PathBuf};

use hdf5::types::VarLenUnicode;
use hdf5::H5Type;
use ndarray::{ArrayView, Dimension};

pub use inspect::summary;

use crate::error::{Error, Result};
use schema::{attr, Field};

/// Bumped whenever a dataset or attribute changes meaning or layout.
pub const SCHEMA_VERSION: u32 = 1;

/// Target bytes per chunk: big enough to compress well, small enough to read a few rows.
const CHUNK_BYTES: usize = 1 << 20;

/// What every file says about itself.
pub struct Header<'a> {
    /// The job that wrote the file (e.g. `teacher_eval`, `attribution`, `distilled`).
    pub kind: &'a str,
    pub config: &'a serde_json::Value,
    pub teacher_sha256: &'a str,
}

/// An HDF5 result being written; dropped without [`finish`](Self::finish), it leaves nothing.
pub struct Writer {
    file: Option<hdf5::File>,
    tmp: crate::outputs::Temporary,
    path: PathBuf,
}

/// A store error for `path`. HDF5 reports a full disk as a page of its internal call stack; the
/// user needs one line, and to know that nothing was replaced (the file is written under a
/// temporary name, removed on failure).
fn err(path: &Path, e: impl std::fmt::Display) -> Error {
    let text = e.to_string();
    if text.contains("errno = 28") || text.contains("No space left on device") {
        return Error::store(
            path,
            "no space left on the device; nothing was written or replaced (free some space and \
             run again; distill --resume keeps the classes already finished)",
        );
    }
    Error::store(path, text)
}

impl Writer {
    pub fn create(path: &Path, header: &Header) -> Result<Writer> {
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        remove_stale_temporaries(dir, &name);
        let tmp = crate::outputs::temporary(path)?;
        let file = unlocked().create(&tmp).map_err(|e| err(path, e))?;
        let w = Writer {
            file: Some(file),
            tmp,
            path: path.to_path_buf(),
        };
        w.attr("/", attr::SCHEMA_VERSION, &SCHEMA_VERSION.to_string())?;
        w.attr(
            "/",
            attr::CREATED_BY,
            &format!("infoutil {}", env!("CARGO_PKG_VERSION")),
        )?;
        w.attr("/", attr::KIND, header.kind)?;
        w.attr("/", attr::CONFIG, &header.config.to_string())?;
        w.attr("/", attr::TEACHER_SHA256, header.teacher_sha256)?;
        Ok(w)
    }

    fn file(&self) -> &hdf5::File {
        self.file.as_ref().expect("open until finish")
    }

    fn group(&self, path: &str) -> Result<hdf5::Group> {
        let mut g = self.file().as_group().map_err(|e| err(&self.path, e))?;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            g = match g.group(part) {
                Ok(sub) => sub,
                Err(_) => g.create_group(part).map_err(|e| err(&self.path, e))?,
            };
        }
        Ok(g)
    }

    /// A string attribute on the group at `at` (created if needed), e.g. `"/"`.
    pub fn attr(&self, at: &str, name: &str, value: &str) -> Result<()> {
        let v: VarLenUnicode = value
            .parse()
            .map_err(|e| err(&self.path, format!("attribute {name}: {e}")))?;
        self.group(at)?
            .new_attr::<VarLenUnicode>()
            .shape(())
            .create(name)
            .and_then(|a| a.write_scalar(&v))
            .map_err(|e| err(&self.path, format!("attribute {at}{name}: {e}")))
    }

    /// Write `data` as the schema's `field`, with its `layout` and `description` attributes.
    pub fn put<T: H5Type, D: Dimension>(&self, field: &Field, data: ArrayView<T, D>) -> Result<()> {
        let ds = self
            .builder(field, data.shape(), std::mem::size_of::<T>())?
            .with_data(data)
            .create(field.split().1)
            .map_err(|e| err(&self.path, format!("dataset {}: {e}", field.path)))?;
        self.describe(&ds, field)
    }

    /// The schema's `field` with `shape` and element type `dtype`, to be filled a block of rows
    /// at a time ([`Rows::write`]): `merge` copies shard after shard without holding a whole
    /// dataset.
    pub fn rows(
        &self,
        field: &Field,
        dtype: &hdf5::types::TypeDescriptor,
        shape: &[usize],
    ) -> Result<Rows> {
        let ds = self
            .builder(field, shape, dtype.size())?
            .empty_as(dtype)
            .shape(shape)
            .create(field.split().1)
            .map_err(|e| err(&self.path, format!("dataset {}: {e}", field.path)))?;
        self.describe(&ds, field)?;
        Ok(Rows {
            ds,
            path: self.path.clone(),
            field: *field,
            shape: shape.to_vec(),
            next: 0,
        })
    }

    /// A dataset builder in `field`'s group: chunked along the first axis (about
    /// [`CHUNK_BYTES`] per chunk, for elements of `elem` bytes) and compressed.
    fn builder(&self, field: &Field, shape: &[usize], elem: usize) -> Result<hdf5::DatasetBuilder> {
        let mut builder = self.group(field.split().0)?.new_dataset_builder();
        if shape.iter().all(|&d| d > 0) {
            let row: usize = shape[1..].iter().product::<usize>() * elem;
            let rows = (CHUNK_BYTES / row.max(1)).clamp(1, shape[0]);
            let mut chunk = shape.to_vec();
            chunk[0] = rows;
            builder = builder.chunk(chunk).shuffle().deflate(4);
        }
        Ok(builder)
    }

    fn describe(&self, ds: &hdf5::Dataset, field: &Field) -> Result<()> {
        for (k, v) in [
            (attr::LAYOUT, field.layout),
            (attr::DESCRIPTION, field.description),
        ] {
            let v: VarLenUnicode = v.parse().map_err(|e| err(&self.path, e))?;
            ds.new_attr::<VarLenUnicode>()
                .shape(())
                .create(k)
                .and_then(|a| a.write_scalar(&v))
                .map_err(|e| err(&self.path, format!("dataset {}: {e}", field.path)))?;
        }
        Ok(())
    }

    /// Close the file and move it to its final name.
    pub fn finish(mut self) -> Result<PathBuf> {
        if let Some(f) = self.file.take() {
            f.close().map_err(|e| err(&self.path, e))?;
        }
        let Writer { tmp, path, .. } = self;
        tmp.persist(&path).map_err(|e| Error::io(&path, e))?;
        Ok(path)
    }
}

/// A dataset being filled block by block, in row order ([`Writer::rows`]).
pub struct Rows {
    ds: hdf5::Dataset,
    path: PathBuf,
    field: Field,
    shape: Vec<usize>,
    next: usize,
}

impl Rows {
    /// The next rows: `block`'s shape must be the dataset's but for its first axis.
    pub fn write<T: H5Type>(&mut self, block: ndarray::ArrayViewD<T>) -> Result<()> {
        let n = block.shape().first().copied().unwrap_or(0);
        if block.shape().get(1..) != self.shape.get(1..) || self.next + n > self.shape[0] {
            return Err(err(
                &self.path,
                format!(
                    "{}: a block of shape {:?} does not fit rows {}.. of {:?}",
                    self.field.path,
                    block.shape(),
                    self.next,
                    self.shape
                ),
            ));
        }
        if n > 0 {
            let mut slab = vec![hdf5::SliceOrIndex::from(self.next..self.next + n)];
            slab.extend(
                self.shape[1..]
                    .iter()
                    .map(|&d| hdf5::SliceOrIndex::from(0..d)),
            );
            self.ds
                .write_slice(block, hdf5::Hyperslab::from(slab))
                .map_err(|e| err(&self.path, format!("{}: {e}", self.field.path)))?;
        }
        self.next += n;
        Ok(())
    }

    /// Every row was written.
    pub fn finish(self) -> Result<()> {
        if self.next != self.shape[0] {
            return Err(err(
                &self.path,
                format!(
                    "{}: {} of {} rows written",
                    self.field.path, self.next, self.shape[0]
                ),
            ));
        }
        Ok(())
    }
}

/// How long a temporary file may sit untouched before it counts as left by a killed run.
const STALE_AFTER: std::time::Duration = std::time::Duration::from_secs(600);

/// Temporary files of `name` that a killed run left behind (`.NAME.XXXXXX.tmp`, not written to
/// for [`STALE_AFTER`]) are removed before a new one is made, each removal a note for the caller
/// ([`crate::progress::note`]); a failure to remove one is never an error.
fn remove_stale_temporaries(dir: &Path, name: &str) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!(".{name}.");
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if !(file.starts_with(&prefix) && file.ends_with(".tmp")) {
            continue;
        }
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_AFTER);
        if old && std::fs::remove_file(entry.path()).is_ok() {
            crate::progress::note(format!(
                "removed {}, left by an interrupted run",
                entry.path().display()
            ));
        }
    }
}

/// HDF5 files are opened and created without HDF5's advisory lock. Writes go to a temporary file
/// renamed into place, so no reader sees a half-written file without it. The lock belongs to the
/// open file description, which child processes inherit (HDF5 opens without `O_CLOEXEC`): a file
/// this process has closed stays locked while any child spawned meanwhile runs, and a later open
/// of it fails with EAGAIN. Locks also fail outright on some cluster file systems.
pub(crate) fn unlocked() -> hdf5::FileBuilder {
    let mut builder = hdf5::File::with_options();
    builder.with_fapl(|p| p.file_locking(false));
    builder
}

/// Open a file this tool wrote, checking that it is one and of a schema this build reads.
pub fn open(path: &Path) -> Result<hdf5::File> {
    // A folder or a pipe gets "is a folder, expected a regular file", not HDF5's "file read
    // failed" (or a hang).
    crate::input::regular(path).map_err(|e| match e {
        Error::Data { msg, .. } => err(path, msg),
        other => other,
    })?;
    let file = unlocked()
        .open(path)
        .map_err(|e| err(path, format!("not a readable HDF5 file ({e})")))?;
    if !file
        .attr_names()
        .is_ok_and(|a| a.iter().any(|n| n == attr::SCHEMA_VERSION))
    {
        return Err(err(
            path,
            "has no schema_version attribute: it was not written by infoutil",
        ));
    }
    // infoutil writes the version as a string; a number (another writer) is read as one too.
    let version = read_attr(&file, attr::SCHEMA_VERSION)
        .or_else(|_| {
            let a = file.attr(attr::SCHEMA_VERSION)?;
            a.read_scalar::<i64>().map(|v| v.to_string())
        })
        .map_err(|e| {
            err(
                path,
                format!("schema_version is neither a string nor an integer ({e})"),
            )
        })?;
    if version != SCHEMA_VERSION.to_string() {
        return Err(err(
            path,
            format!(
                "schema version {version} is not supported (this build reads {SCHEMA_VERSION})"
            ),
        ));
    }
    Ok(file)
}

/// The schema's `field` from `file` (at `path`, for errors), as an array of `D` dimensions.
pub fn read<T: H5Type, D: Dimension>(
    file: &hdf5::File,
    path: &Path,
    field: &Field,
) -> Result<ndarray::Array<T, D>> {
    file.dataset(field.name())
        .and_then(|d| d.read::<T, D>())
        .map_err(|e| err(path, format!("{}: {e}", field.path)))
}

/// Whether `file` holds the schema's `field` (optional ones, such as Shapley maps).
pub fn has(file: &hdf5::File, field: &Field) -> bool {
    file.link_exists(field.name())
}

/// A string attribute of a file, group or dataset.
pub fn read_attr(loc: &hdf5::Location, name: &str) -> hdf5::Result<String> {
    let v: VarLenUnicode = loc.attr(name)?.read_scalar()?;
    Ok(v.to_string())
}
