//! The real images a result points at (`provenance/source_index`, candidates, explained or
//! evaluated records), read back from the dataset the file records, so a page can show each
//! crop where it was cut. Files store record numbers, not pixels: where the dataset cannot be
//! found or does not match, the page says so instead of showing a wrong picture.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::Array3;

use crate::data::{self, Selection, Source};

pub struct Sources {
    source: Option<Box<dyn Source>>,
    labels: Vec<usize>,
    /// Where the images come from, or why there are none: said once on every page.
    pub status: String,
}

/// Where the recorded dataset path is found: as given; beside the file (a path recorded
/// relative to where the run started); under the source tree (the shipped data).
fn locate(recorded: &Path, file: &Path) -> Option<PathBuf> {
    let mut tries = vec![recorded.to_path_buf()];
    if recorded.is_relative() {
        if let Some(dir) = file.parent() {
            tries.push(dir.join(recorded));
            tries.extend(dir.parent().map(|d| d.join(recorded)));
        }
        tries.push(crate::paths::shipped(&recorded.to_string_lossy()));
    }
    tries.into_iter().find(|p| p.exists())
}

impl Sources {
    /// The dataset `given` (a `--data` override) or `recorded` in the file at `file`.
    pub fn open(
        given: Option<&Path>,
        recorded: Option<&Path>,
        file: &Path,
        class_names: &[String],
    ) -> Sources {
        let none = |status: String| Sources {
            source: None,
            labels: Vec::new(),
            status,
        };
        let path = match (given, recorded) {
            (Some(p), _) => p.to_path_buf(),
            (None, Some(r)) => match locate(r, file) {
                Some(p) => p,
                None => {
                    return none(format!(
                        "Source images are not shown: the file records the dataset {}, which is \
                         not found here (give its location with --data).",
                        r.display()
                    ))
                }
            },
            (None, None) => {
                return none("The file records no dataset: source images are not shown.".into())
            }
        };
        let opened = data::open_for(&path, class_names).and_then(|mut s| {
            let labels = s.labels()?;
            Ok((s, labels))
        });
        match opened {
            Ok((source, labels)) => Sources {
                status: format!(
                    "Source images read from {} ({} records); each is checked against the label \
                     the file records for it.",
                    path.display(),
                    labels.len()
                ),
                source: Some(source),
                labels,
            },
            Err(e) => none(format!("Source images are not shown: {e}")),
        }
    }

    /// The images of `wanted` (record, the label the file gives it); a record out of range,
    /// labelled otherwise in the dataset, or unreadable is left out, with a line saying why.
    pub fn read(&mut self, wanted: &[(usize, usize)]) -> (HashMap<usize, Array3<u8>>, Vec<String>) {
        let mut problems = Vec::new();
        let Some(source) = self.source.as_mut() else {
            return (HashMap::new(), problems);
        };
        let mut ok: Vec<usize> = Vec::new();
        for &(r, label) in wanted {
            match self.labels.get(r) {
                None => problems.push(format!(
                    "record {r} is outside the dataset ({} records): not the run's dataset?",
                    self.labels.len()
                )),
                Some(&l) if l != label => problems.push(format!(
                    "record {r} is labelled {l} in the dataset but {label} in the file: not the \
                     run's dataset? (its image is not shown)"
                )),
                Some(_) => ok.push(r),
            }
        }
        ok.sort_unstable();
        ok.dedup();
        let mut images = HashMap::new();
        let visited = source.visit(&Selection::Indices(ok), true, &mut |rec| {
            images.insert(rec.index, rec.image);
            Ok(())
        });
        match visited {
            Ok(report) => problems.extend(report.skipped_examples),
            Err(e) => problems.push(format!("reading source images failed: {e}")),
        }
        (images, problems)
    }
}
