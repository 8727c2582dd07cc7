//! ImageFolder trees: `root/<class>/<image>.{png,jpg,jpeg}` (extension case-insensitive).
//!
//! Classes are the sub-folders sorted by name (label = position), images are sorted by name
//! within a class, and records are numbered in that order, the convention of torchvision's
//! `ImageFolder`. Hidden entries (starting with `.`) and files with other extensions are ignored;
//! an empty class folder still counts as a class so that label numbers stay stable.
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
    /// (file, label) in record order.
    files: Vec<(PathBuf, usize)>,
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
            let images = sorted_entries(class)?
                .into_iter()
                .filter(|p| p.is_file() && EXTENSIONS.contains(&extension(p).as_str()));
            files.extend(images.map(|p| (p, label)));
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
        Ok(FolderSource {
            info: SourceInfo {
                path: root.to_path_buf(),
                len: files.len(),
                shape: None,
                class_names: Some(class_names),
            },
            files,
        })
    }
}

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

    fn visit(
        &mut self,
        selection: &Selection,
        skip_bad: bool,
        f: &mut dyn FnMut(Record) -> Result<()>,
    ) -> Result<VisitReport> {
        let mut report = VisitReport::default();
        for index in selected_indices(selection, self.info.len, &self.info.path)? {
            let (path, label) = &self.files[index];
            let record = decode(path, index).map(|image| Record {
                index,
                label: *label,
                image,
            });
            deliver(record, skip_bad, &mut report, f)?;
        }
        Ok(report)
    }
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
    let img = image::ImageReader::open(path)
        .map_err(|e| bad(&e))?
        .with_guessed_format()
        .map_err(|e| bad(&e))?
        .decode()
        .map_err(|e| bad(&e))?;
    let (w, h) = (img.width() as usize, img.height() as usize);
    let (c, hwc) = if img.color().has_color() {
        (3, img.into_rgb8().into_raw())
    } else {
        (1, img.into_luma8().into_raw())
    };
    let hwc = Array3::from_shape_vec((h, w, c), hwc).expect("decoded buffer is h×w×c");
    Ok(hwc
        .permuted_axes([2, 0, 1])
        .as_standard_layout()
        .into_owned())
}
