//! ImageFolder trees: `root/<class>/<image>.{png,jpg,jpeg}` (extension case-insensitive).
//!
//! Images are sorted by name within a class folder and records are numbered in folder order
//! (folders sorted by name), as torchvision's `ImageFolder` does. A folder's *label* is not its
//! sorted position, which shifts when a folder is missing and sorts "10" before "2": once the
//! teacher is known, [`Source::match_classes`] gives each folder the teacher's class of the same
//! name (compared without case and punctuation, so "T-shirt_top" is "T-shirt/top") or, when the
//! folders are numbers, that class number. A tree that matches neither is refused. Hidden
//! entries (starting with `.`) and files with other extensions are ignored.
//! Grey images give 1 channel, colour images 3 (RGB, alpha dropped). Sizes may differ.

use std::path::{Path, PathBuf};

use ndarray::Array3;

use super::{
    deliver, extension, selected_indices, Record, Selection, Source, SourceInfo, VisitReport,
};
use crate::error::{Error, Result};

const EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

pub struct FolderSource {
    info: SourceInfo,
    /// (file, label) in record order; the label is the folder's position until
    /// [`Source::match_classes`] maps it to the teacher's class.
    files: Vec<(PathBuf, usize)>,
    /// The folder of each record, by position among the class folders.
    folder_of: Vec<usize>,
}

impl FolderSource {
    pub fn open(root: &Path) -> Result<Self> {
        let classes: Vec<PathBuf> = sorted_entries(root)?
            .into_iter()
            .filter(|p| p.is_dir())
            .collect();
        if classes.is_empty() {
            return Err(Error::data(
                root,
                None,
                format!("not a dataset folder: {}", folder_help()),
            ));
        }
        let mut files = Vec::new();
        for (label, class) in classes.iter().enumerate() {
            let entries = sorted_entries(class)?;
            let before = files.len();
            let images = entries
                .iter()
                .filter(|p| p.is_file() && EXTENSIONS.contains(&extension(p).as_str()));
            files.extend(images.map(|p| (p.clone(), label)));
            if files.len() == before {
                return Err(no_images_in(class, &entries));
            }
        }
        if files.is_empty() {
            return Err(Error::data(
                root,
                None,
                format!("no images found: {}", folder_help()),
            ));
        }
        let class_names = classes
            .iter()
            .map(|c| {
                c.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        let folder_of = files.iter().map(|(_, folder)| *folder).collect();
        Ok(FolderSource {
            info: SourceInfo {
                path: root.to_path_buf(),
                len: files.len(),
                shape: None,
                class_names: Some(class_names),
                class_map: None,
            },
            files,
            folder_of,
        })
    }
}

/// Case and punctuation do not tell classes apart: "T-shirt/top", "t-shirt_top", "TShirt Top".
fn class_key(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The teacher class of each folder: by name where every folder names one of `classes`, else
/// by number where every folder is one (`0` … `K−1`). Two folders never share a class.
pub fn match_folders(
    folders: &[String],
    classes: &[String],
) -> std::result::Result<Vec<usize>, String> {
    let mut by_key = std::collections::HashMap::new();
    for (c, name) in classes.iter().enumerate() {
        // A key two classes share names neither of them.
        by_key
            .entry(class_key(name))
            .and_modify(|e| *e = None)
            .or_insert(Some(c));
    }
    let by_name: Option<Vec<usize>> = folders
        .iter()
        .map(|f| by_key.get(&class_key(f)).copied().flatten())
        .collect();
    let by_number: Option<Vec<usize>> = folders
        .iter()
        .map(|f| {
            f.trim()
                .parse::<usize>()
                .ok()
                .filter(|&c| c < classes.len())
        })
        .collect();
    let Some(found) = by_name.or(by_number) else {
        let unmatched: Vec<&str> = folders
            .iter()
            .filter(|f| by_key.get(&class_key(f)).copied().flatten().is_none())
            .map(String::as_str)
            .take(5)
            .collect();
        let shown: Vec<&str> = classes.iter().map(String::as_str).take(10).collect();
        return Err(format!(
            "class folders must be named after the teacher's classes ({}{}) or numbered 0–{}; \
             these match no class: {}",
            shown.join(", "),
            if classes.len() > shown.len() {
                ", …"
            } else {
                ""
            },
            classes.len().saturating_sub(1),
            unmatched.join(", ")
        ));
    };
    for (i, &c) in found.iter().enumerate() {
        if let Some(j) = found[..i].iter().position(|&d| d == c) {
            return Err(format!(
                "class folders {:?} and {:?} both mean class {c} ({:?})",
                folders[j], folders[i], classes[c]
            ));
        }
    }
    Ok(found)
}

/// Images decoded at once (in parallel) before they are handed on in order.
const DECODE_CHUNK: usize = 64;

fn folder_help() -> &'static str {
    "expected root/<class>/<image>.png|jpg|jpeg, an idx folder with train-images-idx3-ubyte[.gz], \
     or a CIFAR folder with data_batch_*.bin or train.bin"
}

impl Source for FolderSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn labels(&mut self) -> Result<Vec<usize>> {
        Ok(self.files.iter().map(|(_, label)| *label).collect())
    }

    fn inputs(&self) -> Vec<PathBuf> {
        self.files.iter().map(|(p, _)| p.clone()).collect()
    }

    fn record_path(&self, index: usize) -> PathBuf {
        self.files
            .get(index)
            .map(|(p, _)| p.clone())
            .unwrap_or_else(|| self.info.path.clone())
    }

    fn match_classes(&mut self, teacher_classes: &[String]) -> Result<()> {
        let folders = self.info.class_names.clone().unwrap_or_default();
        let class_of = match_folders(&folders, teacher_classes)
            .map_err(|m| Error::data(&self.info.path, None, m))?;
        for ((_, label), &folder) in self.files.iter_mut().zip(&self.folder_of) {
            *label = class_of[folder];
        }
        self.info.class_map = Some(folders.into_iter().zip(class_of).collect());
        Ok(())
    }

    fn visit(
        &mut self,
        selection: &Selection,
        skip_bad: bool,
        f: &mut dyn FnMut(Record) -> Result<()>,
    ) -> Result<VisitReport> {
        use rayon::prelude::*;
        let mut report = VisitReport::default();
        let mut indices = selected_indices(selection, self.info.len, &self.info.path)?;
        let files = &self.files;
        // Decoded on all cores a chunk at a time, delivered in order: memory stays one chunk
        // of images whatever the dataset's size.
        loop {
            let chunk: Vec<usize> = indices.by_ref().take(DECODE_CHUNK).collect();
            if chunk.is_empty() {
                break;
            }
            let records: Vec<Result<Record>> = chunk
                .par_iter()
                .map(|&index| {
                    let (path, label) = &files[index];
                    decode(path, index).map(|image| Record {
                        index,
                        label: *label,
                        image,
                    })
                })
                .collect();
            for record in records {
                deliver(record, skip_bad, &mut report, f)?;
            }
        }
        Ok(report)
    }
}

/// A class folder without one image is refused at open (not after the classes before it were
/// computed), saying what it holds instead.
fn no_images_in(class: &Path, entries: &[PathBuf]) -> Error {
    let mut others: Vec<String> = entries
        .iter()
        .map(|p| format!(".{}", extension(p)))
        .collect();
    others.sort();
    others.dedup();
    let held = match entries.len() {
        0 => "is empty".to_string(),
        k => format!(
            "holds {k} entries but no .png, .jpg or .jpeg file (found: {})",
            others.join(" ")
        ),
    };
    Error::data(
        class,
        None,
        format!("class folder {held}; every class folder needs at least one image"),
    )
}

/// Entries of a folder, hidden ones left out, sorted by name.
fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))? {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        if !entry.file_name().to_string_lossy().starts_with('.') {
            entries.push(entry.path());
        }
    }
    entries.sort();
    Ok(entries)
}

/// Decode one image to CHW `u8`: 1 channel when grey, else 3 (RGB).
fn decode(path: &Path, index: usize) -> Result<Array3<u8>> {
    let bad = |e: &dyn std::fmt::Display| {
        Error::data(path, Some(index), format!("unreadable image: {e}"))
    };
    let bytes = crate::input::read(path).map_err(|e| bad(&e))?;
    decode_bytes(&bytes).map_err(|e| bad(&e))
}

/// Decode a PNG or JPEG held in memory to CHW `u8` (what [`decode`] does after reading the
/// file; the fuzz targets call this).
pub fn decode_bytes(bytes: &[u8]) -> std::result::Result<Array3<u8>, String> {
    let (c, h, w, hwc) = if bytes.starts_with(&[0xFF, 0xD8]) {
        decode_jpeg(bytes)?
    } else if bytes.starts_with(PNG_SIGNATURE) {
        decode_png(bytes)?
    } else {
        return Err("neither a PNG nor a JPEG (by its first bytes)".into());
    };
    // The decoders' sizes come from the file: checked as every reader's are.
    let field = |name, v: usize| (name, v as u64);
    crate::input::image(
        Path::new("the image"),
        field("channels", c),
        field("height", h),
        field("width", w),
    )
    .map_err(|e| e.to_string())?;
    let len = hwc.len();
    let hwc = Array3::from_shape_vec((h, w, c), hwc).map_err(|_| {
        format!("the decoder gave {len} bytes for a {w}×{h} image of {c} channel(s)")
    })?;
    Ok(hwc
        .permuted_axes([2, 0, 1])
        .as_standard_layout()
        .into_owned())
}

const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

/// A PNG of any colour type and depth as 8-bit grey (1 channel) or RGB (3): palettes and
/// low depths expanded, 16 bits cut to their high byte, alpha dropped.
fn decode_png(bytes: &[u8]) -> std::result::Result<(usize, usize, usize, Vec<u8>), String> {
    use png::{ColorType, Transformations};
    // 512 MiB of pixels, as the `image` crate allows: an 8k × 8k RGBA photo, not a bomb.
    let limits = png::Limits { bytes: 512 << 20 };
    let mut decoder = png::Decoder::new_with_limits(std::io::Cursor::new(bytes), limits);
    decoder.set_transformations(Transformations::normalize_to_color8());
    let mut reader = decoder.read_info().map_err(|e| e.to_string())?;
    let size = reader.output_buffer_size().ok_or("the PNG is too large")?;
    // The header's size, checked before the buffer is allocated: the decoder's byte limit does
    // not bound this buffer (found by the `image` fuzz target: a 40-byte PNG asked for 55 GB).
    let (w, h) = (reader.info().width, reader.info().height);
    if size as u64 > crate::input::MAX_IMAGE_BYTES {
        return Err(format!(
            "the PNG header says {w}×{h} pixels, {size} bytes decoded; expected at most {}",
            crate::input::MAX_IMAGE_BYTES
        ));
    }
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf).map_err(|e| e.to_string())?;
    buf.truncate(info.buffer_size());
    let (w, h) = (info.width as usize, info.height as usize);
    let (kept, stride) = match info.color_type {
        ColorType::Grayscale => (1, 1),
        ColorType::GrayscaleAlpha => (1, 2),
        ColorType::Rgb => (3, 3),
        ColorType::Rgba => (3, 4),
        ColorType::Indexed => return Err("the palette was not expanded".into()),
    };
    let pixels = if kept == stride {
        buf
    } else {
        buf.chunks_exact(stride)
            .flat_map(|px| px[..kept].iter().copied())
            .collect()
    };
    Ok((kept, h, w, pixels))
}

/// A JPEG in strict mode: a damaged stream (bad markers, data cut short or zeroed) is an error,
/// as libjpeg and PIL make it, instead of an image with grey where the data was lost.
fn decode_jpeg(bytes: &[u8]) -> std::result::Result<(usize, usize, usize, Vec<u8>), String> {
    use zune_core::bytestream::ZCursor;
    use zune_core::colorspace::ColorSpace;
    use zune_core::options::DecoderOptions;
    let strict = || DecoderOptions::default().set_strict_mode(true);
    let mut probe = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), strict());
    probe.decode_headers().map_err(|e| e.to_string())?;
    if let Some((w, h)) = probe.dimensions() {
        let sides = [("height", h as u64), ("width", w as u64)];
        crate::input::dims(Path::new("the JPEG header"), &sides, crate::input::MAX_SIDE)
            .map_err(|e| e.to_string())?;
    }
    let grey = matches!(
        probe.input_colorspace(),
        Some(ColorSpace::Luma | ColorSpace::LumaA)
    );
    let (c, out) = if grey {
        (1, ColorSpace::Luma)
    } else {
        (3, ColorSpace::RGB)
    };
    let options = strict().jpeg_set_out_colorspace(out);
    let mut decoder = zune_jpeg::JpegDecoder::new_with_options(ZCursor::new(bytes), options);
    let pixels = decoder.decode().map_err(|e| e.to_string())?;
    let (w, h) = decoder.dimensions().ok_or("no dimensions after decoding")?;
    if !bytes.ends_with(&[0xFF, 0xD9]) && !has_end_marker(bytes) {
        return Err("the JPEG has no end-of-image marker: the file is cut short".into());
    }
    Ok((c, h, w, pixels))
}

/// Whether an end-of-image marker (FF D9) appears in the last bytes (some writers pad after it).
fn has_end_marker(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(4096)..];
    tail.windows(2).any(|w| w == [0xFF, 0xD9])
}
