//! MNIST-style idx files: an images file (magic 2051, `u8`, `[n, h, w]`) and its labels file
//! (magic 2049, `u8`, `[n]`), each raw or gzip-compressed (recognised by the gzip magic bytes).
//!
//! [`IdxSource::open`] takes the images file; the labels file is the same name with
//! `images-idx3` replaced by `labels-idx1` (raw or `.gz`). A folder is accepted by [`open`]
//! when it holds `train-images-idx3-ubyte[.gz]`, and then means the training split.
//!
//! gzip cannot seek, so a visit reads the images file once, front to back, and stops after the
//! last selected record; labels are read from the (small) labels file alone.
//!
//! [`open`]: super::open

use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use ndarray::Array3;

use super::{deliver, selected_indices, Record, Selection, Source, SourceInfo, VisitReport};
use crate::error::{Error, Result};
use crate::input;

const IMAGES_MAGIC: u32 = 2051;
const LABELS_MAGIC: u32 = 2049;

pub struct IdxSource {
    info: SourceInfo,
    labels_path: PathBuf,
    height: usize,
    width: usize,
    labels: Option<Vec<usize>>,
}

/// The images file of the training split in `dir`, if there is one.
pub fn find_in_dir(dir: &Path) -> Option<PathBuf> {
    ["train-images-idx3-ubyte", "train-images-idx3-ubyte.gz"]
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

impl IdxSource {
    pub fn open(images: &Path) -> Result<Self> {
        let labels_path = labels_path_for(images)?;
        let dims = read_header(&mut open_stream(images)?, images, IMAGES_MAGIC, 3)?;
        let label_dims = read_header(
            &mut open_stream(&labels_path)?,
            &labels_path,
            LABELS_MAGIC,
            1,
        )?;
        // Every size below comes from the headers: checked before anything is allocated.
        let [_, height, width] = input::image(
            images,
            ("channels", 1),
            ("rows", dims[1]),
            ("columns", dims[2]),
        )?;
        let (n64, record) = (dims[0], (height * width) as u64);
        if label_dims[0] != n64 {
            return Err(Error::data(
                images,
                None,
                format!(
                    "holds {n64} images but {} holds {} labels",
                    labels_path.display(),
                    label_dims[0]
                ),
            ));
        }
        if is_gzip(images)? {
            // gzip hides its size: the totals are checked for overflow here and against the
            // decompressed stream as it is read through.
            let expected = input::holds(images, 16, ("number of images", n64), record, u64::MAX)?;
            let n =
                usize::try_from(n64).map_err(|_| Error::data(images, None, "too many images"))?;
            verify_gzip(images, expected, 16, height * width, n)?;
            verify_gzip(&labels_path, 8 + n64, 8, 1, n)?;
        } else {
            check_raw_size(images, n64, record)?;
            input::holds(
                &labels_path,
                8,
                ("number of labels", n64),
                1,
                input::len(&labels_path)?,
            )?;
        }
        let n = n64 as usize; // fits: the file holds n records of at least one byte
        Ok(IdxSource {
            info: SourceInfo {
                path: images.to_path_buf(),
                len: n,
                shape: Some([1, height, width]),
                class_names: None,
                class_map: None,
            },
            labels_path,
            height,
            width,
            labels: None,
        })
    }

    fn read_labels(&self) -> Result<Vec<usize>> {
        let path = &self.labels_path;
        let mut stream = open_stream(path)?;
        read_header(&mut stream, path, LABELS_MAGIC, 1)?;
        let mut bytes = vec![0u8; self.info.len];
        // read_exact does not say how far it got, so read in a loop to name the missing record.
        let mut got = 0;
        while got < bytes.len() {
            match stream.read(&mut bytes[got..]) {
                Ok(0) => return Err(ran_out(path, got, self.info.len, "the file ends")),
                Ok(k) => got += k,
                Err(e) => return Err(ran_out(path, got, self.info.len, &e.to_string())),
            }
        }
        Ok(bytes.into_iter().map(usize::from).collect())
    }
}

impl Source for IdxSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn inputs(&self) -> Vec<PathBuf> {
        vec![self.info.path.clone(), self.labels_path.clone()]
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
        let path = self.info.path.clone();
        let wanted = selected_indices(selection, self.info.len, &path)?;
        let labels = self.labels()?;
        let mut stream = open_stream(&path)?;
        read_header(&mut stream, &path, IMAGES_MAGIC, 3)?;
        let size = self.height * self.width;
        let mut buf = vec![0u8; size];
        let mut next = 0; // index of the record the stream is positioned at
        let mut report = VisitReport::default();
        for index in wanted {
            skip_records(&mut stream, &path, next, index, size, self.info.len)?;
            stream
                .read_exact(&mut buf)
                .map_err(|e| ran_out(&path, index, self.info.len, &e.to_string()))?;
            next = index + 1;
            let image = Array3::from_shape_vec((1, self.height, self.width), buf.clone())
                .expect("buffer holds exactly one image");
            let record = Record {
                index,
                label: labels[index],
                image,
            };
            deliver(Ok(record), skip_bad, &mut report, f)?;
        }
        Ok(report)
    }
}

/// Read past records `from..to` (unselected) so the stream sits at record `to`.
fn skip_records(
    stream: &mut impl Read,
    path: &Path,
    from: usize,
    to: usize,
    size: usize,
    len: usize,
) -> Result<()> {
    let want = ((to - from) * size) as u64;
    let got = std::io::copy(&mut stream.take(want), &mut std::io::sink())
        .map_err(|e| ran_out(path, from, len, &e.to_string()))?;
    if got < want {
        return Err(ran_out(
            path,
            from + (got as usize) / size,
            len,
            "the file ends",
        ));
    }
    Ok(())
}

/// A file that stops early: a file-level error (every later record is lost too), whose message
/// still names the record where the data ran out.
fn ran_out(path: &Path, record: usize, len: usize, why: &str) -> Error {
    Error::data(
        path,
        None,
        format!("data runs out in record {record} of {len} ({why}); truncated file?"),
    )
}

/// The labels file next to `images`: `images-idx3` → `labels-idx1`, raw or gzip.
fn labels_path_for(images: &Path) -> Result<PathBuf> {
    let name = images
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.contains("images-idx3") {
        return Err(Error::data(
            images,
            None,
            "idx images file name must contain `images-idx3` (to find its `labels-idx1` file)",
        ));
    }
    let labels = name.replace("images-idx3", "labels-idx1");
    let plain = labels.trim_end_matches(".gz").to_string();
    let candidates = [labels.clone(), plain.clone(), format!("{plain}.gz")];
    candidates
        .iter()
        .map(|n| images.with_file_name(n))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            Error::data(
                images,
                None,
                format!(
                    "labels file {} not found",
                    images.with_file_name(&labels).display()
                ),
            )
        })
}

fn is_gzip(path: &Path) -> Result<bool> {
    let mut magic = [0u8; 2];
    let mut file = input::open(path)?;
    let n = file.read(&mut magic).map_err(|e| Error::io(path, e))?;
    Ok(n == 2 && magic == [0x1f, 0x8b])
}

/// A buffered reader over the decompressed contents (gzip is detected by its magic bytes).
fn open_stream(path: &Path) -> Result<Box<dyn Read>> {
    let gzip = is_gzip(path)?;
    let file = BufReader::new(input::open(path)?);
    Ok(if gzip {
        Box::new(BufReader::new(flate2::bufread::MultiGzDecoder::new(file)))
    } else {
        Box::new(file)
    })
}

/// Check the magic number and read the `ndim` big-endian `u32` dimensions.
fn read_header(stream: &mut impl Read, path: &Path, magic: u32, ndim: usize) -> Result<Vec<u64>> {
    let mut word = [0u8; 4];
    let mut next = |what: &str| -> Result<u32> {
        stream.read_exact(&mut word).map_err(|e| {
            Error::data(
                path,
                None,
                format!("cannot read the idx header ({what}): {e}"),
            )
        })?;
        Ok(u32::from_be_bytes(word))
    };
    let found = next("magic number")?;
    if found != magic {
        let kind = if magic == IMAGES_MAGIC {
            "images"
        } else {
            "labels"
        };
        return Err(Error::data(
            path,
            None,
            format!("wrong magic number: found {found}, expected {magic} (idx {kind} file)"),
        ));
    }
    (0..ndim)
        .map(|_| next("dimensions").map(u64::from))
        .collect()
}

/// gzip's checksum is only checked at the end of the stream, which a visit that stops after its
/// last record never reaches: read each file through once at open, so a corrupt or cut file is
/// refused before anything is computed from it (as Python's gzip refuses it).
fn verify_gzip(path: &Path, expected: u64, header: usize, record: usize, n: usize) -> Result<()> {
    let mut stream = open_stream(path)?;
    let mut buf = vec![0u8; 1 << 16];
    let mut got = 0;
    let at = |got: u64| {
        let r = (got as usize).saturating_sub(header) / record.max(1);
        format!(
            "after {got} of {expected} bytes, in record {} of {n}",
            r.min(n)
        )
    };
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            // Past twice the promised size it cannot be this header's file: stop, so that a
            // bomb is not read to its end (before that, read on to reach a damaged stream's
            // checksum error, the more useful message).
            Ok(k) if got + k as u64 > expected.saturating_mul(2).saturating_add(1 << 20) => {
                got += k as u64;
                break;
            }
            Ok(k) => got += k as u64,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return Err(ran_out_gzip(
                    path,
                    &at(got),
                    "the file ends; truncated file?",
                ))
            }
            Err(e) => return Err(ran_out_gzip(path, &at(got), &format!("{e}; damaged file?"))),
        }
    }
    if got != expected {
        return Err(Error::data(
            path,
            None,
            format!(
                "decompresses to {}{got} bytes but its idx header promises {expected}; \
                 truncated or padded file?",
                if got > expected.saturating_mul(2).saturating_add(1 << 20) {
                    "more than "
                } else {
                    ""
                }
            ),
        ));
    }
    Ok(())
}

fn ran_out_gzip(path: &Path, at: &str, why: &str) -> Error {
    Error::data(
        path,
        None,
        format!("the gzip data breaks off {at} ({why}); download the file again"),
    )
}

/// For an uncompressed images file the size is known up front, so a cut file is caught at open.
fn check_raw_size(path: &Path, n: u64, size: u64) -> Result<()> {
    let bytes = input::len(path)?;
    input::holds(path, 16, ("number of images", n), size, bytes).map_err(|_| {
        ran_out(
            path,
            (bytes.saturating_sub(16) / size) as usize,
            n as usize,
            "the file ends",
        )
    })?;
    Ok(())
}
