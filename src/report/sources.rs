//! The real images a result points at (`provenance/source_index`, candidates, explained or
//! evaluated records), read back from the dataset the file records, so a page can show each
//! crop where it was cut. Files store record numbers, not pixels: where the dataset cannot be
//! found or does not match, the page says so instead of showing a wrong picture.

use std::collections::HashMap;
use std::path::Path;

use ndarray::Array3;

use super::run::{locate, Run};
use crate::data::{self, Selection, Source};

pub struct Sources {
    source: Option<Box<dyn Source>>,
    labels: Vec<usize>,
    /// Where the images come from, or why there are none: said once on every page.
    pub status: String,
}

impl Sources {
    /// The dataset `given` (a `--data` override) or the one `run`'s file records.
    pub fn open(given: Option<&Path>, run: &Run) -> Sources {
        let class_names = &run.names;
        let none = |status: String| Sources {
            source: None,
            labels: Vec::new(),
            status,
        };
        let path = match (given, run.data.as_deref()) {
            (Some(p), _) => p.to_path_buf(),
            (None, Some(r)) => match locate(r, &run.path, &run.roots) {
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
