//! CIFAR binary batches. CIFAR-10 (`data_batch_*.bin`, `test_batch.bin`): records of one label
//! byte and 3072 pixel bytes (CHW, 3×32×32). CIFAR-100 (`train.bin`, `test.bin`): a coarse and a
//! fine label byte, then the pixels; the fine label (0..100) is used.
//!
//! The variant is told by file name, since the bytes alone cannot tell them apart. A folder means
//! the training set: every `data_batch_*.bin` in batch-number order, or `train.bin`. Class names
//! come from `batches.meta.txt` / `fine_label_names.txt` next to the data when present.
//! Records are fixed-size, so reads seek straight to the selected ones.

use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use ndarray::Array3;

use super::{deliver, selected_indices, Record, Selection, Source, SourceInfo, VisitReport};
use crate::error::{Error, Result};
use crate::input;

const PIXELS: usize = 3 * 32 * 32;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Variant {
    Cifar10,
    Cifar100,
}

impl Variant {
    /// Label bytes before the pixels; the last one is the label used.
    fn label_bytes(self) -> usize {
        match self {
            Variant::Cifar10 => 1,
            Variant::Cifar100 => 2,
        }
    }

    fn classes(self) -> usize {
        match self {
            Variant::Cifar10 => 10,
            Variant::Cifar100 => 100,
        }
    }

    fn record_size(self) -> usize {
        self.label_bytes() + PIXELS
    }

    fn names_file(self) -> &'static str {
        match self {
            Variant::Cifar10 => "batches.meta.txt",
            Variant::Cifar100 => "fine_label_names.txt",
        }
    }

    /// The variant a file name stands for.
    pub fn from_name(path: &Path) -> Result<Self> {
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        match name.as_ref() {
            "train.bin" | "test.bin" => Ok(Variant::Cifar100),
            n if n == "test_batch.bin" || (n.starts_with("data_batch_") && n.ends_with(".bin")) => {
                Ok(Variant::Cifar10)
            }
            _ => Err(Error::data(
                path,
                None,
                "cannot tell CIFAR-10 from CIFAR-100 by the file name: expected \
                 data_batch_*.bin or test_batch.bin (CIFAR-10), train.bin or test.bin (CIFAR-100)",
            )),
        }
    }
}

/// One batch file and the global index of its first record.
struct Batch {
    path: PathBuf,
    first: usize,
    len: usize,
}

pub struct CifarSource {
    info: SourceInfo,
    variant: Variant,
    batches: Vec<Batch>,
}

/// The training-set files in `dir`, if it looks like a CIFAR folder.
pub fn find_in_dir(dir: &Path) -> Result<Option<Vec<PathBuf>>> {
    let mut numbered = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let path = entry.map_err(|e| Error::io(dir, e))?.path();
        let name = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        let number = name
            .strip_prefix("data_batch_")
            .and_then(|rest| rest.strip_suffix(".bin"))
            .and_then(|n| n.parse::<u32>().ok());
        if let Some(k) = number {
            numbered.push((k, path));
        }
    }
    if !numbered.is_empty() {
        // Batch number, not name, order: data_batch_10 follows data_batch_9.
        numbered.sort();
        return Ok(Some(numbered.into_iter().map(|(_, p)| p).collect()));
    }
    let train = dir.join("train.bin");
    Ok(train.is_file().then(|| vec![train]))
}

impl CifarSource {
    /// One batch file; the variant comes from its name.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_files(path, vec![path.to_path_buf()])
    }

    /// Several batch files of one variant, read as one dataset in the given order.
    pub fn open_files(path: &Path, files: Vec<PathBuf>) -> Result<Self> {
        let variant = Variant::from_name(&files[0])?;
        let mut batches = Vec::with_capacity(files.len());
        let mut first = 0;
        for file in files {
            if Variant::from_name(&file)? != variant {
                return Err(Error::data(
                    &file,
                    None,
                    "mixes CIFAR-10 and CIFAR-100 files",
                ));
            }
            let len = count_records(&file, variant)?;
            batches.push(Batch {
                path: file,
                first,
                len,
            });
            first += len;
        }
        let dir = batches[0].path.parent().unwrap_or(Path::new("."));
        let class_names = read_class_names(&dir.join(variant.names_file()), variant.classes())?;
        Ok(CifarSource {
            info: SourceInfo {
                path: path.to_path_buf(),
                len: first,
                shape: Some([3, 32, 32]),
                class_names,
                class_map: None,
            },
            variant,
            batches,
        })
    }

    /// The batch holding global record `index`.
    fn batch_of(&self, index: usize) -> usize {
        self.batches.partition_point(|b| b.first + b.len <= index)
    }

    /// Check and unpack one raw record; a bad label is an error for this record only.
    fn unpack(&self, batch: &Batch, index: usize, raw: &[u8]) -> Result<Record> {
        let label = raw[self.variant.label_bytes() - 1] as usize;
        if label >= self.variant.classes() {
            // The record number is within the file, where a person would look for it.
            let global = if batch.first > 0 {
                format!(" (dataset index {index})")
            } else {
                String::new()
            };
            return Err(Error::data(
                &batch.path,
                Some(index - batch.first),
                format!(
                    "label {label} is out of range for {} classes{global}",
                    self.variant.classes()
                ),
            ));
        }
        let pixels = raw[self.variant.label_bytes()..].to_vec();
        let image = Array3::from_shape_vec((3, 32, 32), pixels).expect("record holds 3×32×32");
        Ok(Record {
            index,
            label,
            image,
        })
    }
}

impl Source for CifarSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    /// Only the label bytes are read, by seeking from record to record.
    fn inputs(&self) -> Vec<PathBuf> {
        self.batches.iter().map(|b| b.path.clone()).collect()
    }

    fn match_classes(&mut self, teacher_classes: &[String]) -> Result<()> {
        if let Some(names) = &self.info.class_names {
            let map = super::class_names::agree(&self.info.path, names, teacher_classes)?;
            self.info.class_map = Some(map);
        }
        Ok(())
    }

    fn labels(&mut self) -> Result<Vec<usize>> {
        let size = self.variant.record_size() as u64;
        let at = self.variant.label_bytes() as u64 - 1;
        let mut labels = Vec::with_capacity(self.info.len);
        for batch in &self.batches {
            let mut file = input::open(&batch.path)?;
            for k in 0..batch.len as u64 {
                let mut byte = [0u8];
                file.seek(SeekFrom::Start(k * size + at))
                    .and_then(|_| file.read_exact(&mut byte))
                    .map_err(|e| Error::io(&batch.path, e))?;
                labels.push(byte[0] as usize);
            }
        }
        Ok(labels)
    }

    fn visit(
        &mut self,
        selection: &Selection,
        skip_bad: bool,
        f: &mut dyn FnMut(Record) -> Result<()>,
    ) -> Result<VisitReport> {
        let wanted = selected_indices(selection, self.info.len, &self.info.path)?;
        let size = self.variant.record_size();
        let mut raw = vec![0u8; size];
        let mut report = VisitReport::default();
        let mut reader: Option<(usize, Cursor)> = None;
        for index in wanted {
            let b = self.batch_of(index);
            if reader.as_ref().map(|(open, _)| *open) != Some(b) {
                reader = Some((b, Cursor::open(&self.batches[b].path)?));
            }
            let batch = &self.batches[b];
            let (_, cursor) = reader.as_mut().expect("opened above");
            cursor.read_at(((index - batch.first) * size) as u64, &mut raw)?;
            deliver(self.unpack(batch, index, &raw), skip_bad, &mut report, f)?;
        }
        Ok(report)
    }
}

/// A buffered file that seeks only when the next read is not where the last one ended, so a
/// visit of every record reads sequentially through the buffer.
struct Cursor {
    path: PathBuf,
    file: BufReader<std::fs::File>,
    pos: u64,
}

impl Cursor {
    fn open(path: &Path) -> Result<Self> {
        let file = input::open(path)?;
        Ok(Cursor {
            path: path.to_path_buf(),
            file: BufReader::with_capacity(64 << 10, file),
            pos: 0,
        })
    }

    fn read_at(&mut self, pos: u64, buf: &mut [u8]) -> Result<()> {
        if pos != self.pos {
            self.file
                .seek(SeekFrom::Start(pos))
                .map_err(|e| Error::io(&self.path, e))?;
        }
        self.file
            .read_exact(buf)
            .map_err(|e| Error::io(&self.path, e))?;
        self.pos = pos + buf.len() as u64;
        Ok(())
    }
}

/// Records in a batch file; a size that is not a whole number of records means a cut file, or a
/// file of the other variant under this variant's name (said so, with the names to use).
fn count_records(path: &Path, variant: Variant) -> Result<usize> {
    let size = variant.record_size() as u64;
    let bytes = input::len(path)?;
    let (whole, rest) = (bytes / size, bytes % size);
    if rest != 0 {
        let other = match variant {
            Variant::Cifar10 => Variant::Cifar100,
            Variant::Cifar100 => Variant::Cifar10,
        };
        let other_size = other.record_size() as u64;
        let hint = if bytes % other_size == 0 {
            format!(
                "; it is a whole number of {other_size}-byte {other:?} records: a {other:?} \
                 file under a {variant:?} name? ({})",
                "CIFAR-10 files are data_batch_*.bin and test_batch.bin, CIFAR-100 files \
                 train.bin and test.bin"
            )
        } else {
            String::new()
        };
        return Err(Error::data(
            path,
            None,
            format!(
                "truncated: {bytes} bytes is not a whole number of {size}-byte {variant:?} \
                 records; record {whole} is cut after {rest} bytes{hint}"
            ),
        ));
    }
    Ok(whole as usize)
}

/// Class names, one a line, when the file is there (a file with a name per class, else an error).
fn read_class_names(path: &Path, classes: usize) -> Result<Option<Vec<String>>> {
    if !path.exists() {
        return Ok(None);
    }
    let bytes = input::read(path)?;
    let names: Vec<String> = String::from_utf8_lossy(&bytes)
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    if names.len() != classes {
        return Err(Error::data(
            path,
            None,
            format!(
                "holds {} class names, one a line; expected {classes}",
                names.len()
            ),
        ));
    }
    Ok(Some(names))
}
