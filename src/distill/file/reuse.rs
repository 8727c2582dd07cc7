//! `distill --maps-from FILE`: the Shapley maps of an earlier InfoUtil run, reused.
//!
//! A map depends only on the image, its class, the teacher, the Shapley options, the dataset (for
//! the mean baseline), the seed and the backend (the maps part of the run identity), so runs that differ in IPC, scoring, crop noise or label
//! teacher can share them: the costly stage runs once for a whole table of ablations. Maps the
//! file lacks are computed as usual. The file stores maps as float32, so a reused map may differ
//! from a recomputed one in the eighth digit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::Array2;

use super::{open, Section};
use crate::error::{Error, Result};
use crate::provenance::Recorded;
use crate::run_identity::RunIdentity;
use crate::store::{self, schema::attr};

/// Maps by (class, dataset record).
pub struct SavedMaps {
    /// The file they came from (recorded as the new file's `config.maps_from`).
    pub path: PathBuf,
    maps: HashMap<(usize, usize), Array2<f64>>,
}

impl SavedMaps {
    /// The maps of the file at `path`, which must be those the run `want` (its run identity)
    /// would compute: the same maps part of the identity (`RunIdentity::maps`).
    pub fn load(path: &Path, want: &RunIdentity) -> Result<SavedMaps> {
        let shard = open(path)?;
        let fail = |m: String| Err(Error::store(path, m));
        let sha = store::read_attr(&shard.file, attr::TEACHER_SHA256)
            .map_err(|e| Error::store(path, e))?;
        let recorded: Recorded<Section> = serde_json::from_value(shard.config.clone())
            .map_err(|e| Error::store(path, format!("config cannot be read: {e}")))?;
        let found = RunIdentity::of(&shard.config, &sha);
        same_maps(&recorded, &found, want).map_err(|m| Error::store(path, m))?;
        let rows = super::candidates::read(&shard.file, path, None)?;
        let Some(maps) = rows.maps else {
            return fail("has no Shapley maps (it was not made by `method` infoutil)".into());
        };
        let maps = maps
            .outer_iter()
            .zip(rows.label.iter().zip(&rows.index))
            .map(|(m, (&c, &i))| ((c, i), m.to_owned()))
            .collect();
        Ok(SavedMaps {
            path: path.to_path_buf(),
            maps,
        })
    }

    /// The saved map of record `record` explained as class `class`.
    pub fn get(&self, class: usize, record: usize) -> Option<&Array2<f64>> {
        self.maps.get(&(class, record))
    }

    pub fn len(&self) -> usize {
        self.maps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }
}

/// Whether a file's maps (its run identity `found`) are those the run `want` would compute,
/// and otherwise why not: the first field of the maps part that differs, said in words where
/// it is the data, the attribution or the teacher.
fn same_maps(
    recorded: &Recorded<Section>,
    found: &RunIdentity,
    want: &RunIdentity,
) -> std::result::Result<(), String> {
    if recorded.run.data_sha256.is_empty() {
        return Err(
            "records no data fingerprint (data_sha256; written by an older infoutil), so its \
             maps cannot be matched to this dataset: rerun it"
                .into(),
        );
    }
    let Some((field, said)) = want.maps().differing(&found.maps()) else {
        return Ok(());
    };
    let d = &recorded.section.distill;
    Err(match field.as_str() {
        "config.data_sha256" => format!(
            "was distilled from other data ({} by content, not this dataset): its maps would \
             belong to other images",
            recorded.run.data.display()
        ),
        "config.distill.attribution" => format!(
            "has {} maps, but this run asks for another attribution ({said})",
            d.attribution.name()
        ),
        "config.teacher_sha256" => format!(
            "was made with another teacher package than this run's ({said}; its teacher was {})",
            recorded.run.teacher.display()
        ),
        _ => format!(
            "has maps made with other Shapley options, seed, backend or class mapping than \
             this run's ({said}): its maps would differ from this run's"
        ),
    })
}
