//! `distill --maps-from FILE`: the Shapley maps of an earlier InfoUtil run, reused.
//!
//! A map depends only on the image, its class, the teacher, the Shapley options, the dataset (for
//! the mean baseline) and the seed, so runs that differ in IPC, scoring, crop noise or label
//! teacher can share them: the costly stage runs once for a whole table of ablations. Maps the
//! file lacks are computed as usual. The file stores maps as float32, so a reused map may differ
//! from a recomputed one in the eighth digit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ndarray::Array2;

use super::{open, Section};
use crate::error::{Error, Result};
use crate::informativeness::attribute::ShapleyConfig;
use crate::informativeness::Attribution;
use crate::provenance::Recorded;
use crate::store::{self, schema::attr};
use crate::teacher::Teacher;

/// Maps by (class, dataset record).
pub struct SavedMaps {
    /// The file they came from (recorded as the new file's `config.maps_from`).
    pub path: PathBuf,
    maps: HashMap<(usize, usize), Array2<f64>>,
}

/// What a saved map must have been made with to equal the one this run would compute.
pub struct MapsFor<'a> {
    pub teacher: &'a Teacher,
    pub attribution: Attribution,
    pub shapley: &'a ShapleyConfig,
    pub seed: u64,
    /// The dataset's [`crate::data::fingerprint`].
    pub data_sha256: &'a str,
}

impl SavedMaps {
    pub fn load(path: &Path, want: &MapsFor) -> Result<SavedMaps> {
        let shard = open(path)?;
        let fail = |m: String| Err(Error::store(path, m));
        let sha = store::read_attr(&shard.file, attr::TEACHER_SHA256)
            .map_err(|e| Error::store(path, e))?;
        if sha != want.teacher.file_sha256 {
            return fail(format!(
                "was made with another teacher than {}",
                want.teacher.path.display()
            ));
        }
        let recorded: Recorded<Section> = serde_json::from_value(shard.config.clone())
            .map_err(|e| Error::store(path, format!("config cannot be read: {e}")))?;
        same_maps(&recorded, want).map_err(|m| Error::store(path, m))?;
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

/// Whether a file's maps were made as `want` asks (the maps would equal this run's), and
/// otherwise why not.
fn same_maps(recorded: &Recorded<Section>, want: &MapsFor) -> std::result::Result<(), String> {
    let d = &recorded.section.distill;
    if d.attribution != want.attribution {
        return Err(format!(
            "has {} maps, but this run asks for `attribution` {}",
            d.attribution.name(),
            want.attribution.name()
        ));
    }
    if serde_json::json!(d.shapley) != serde_json::json!(want.shapley) || d.seed != want.seed {
        return Err(format!(
            "has maps made with other Shapley options or seed (it has {} and seed {}); \
                 its maps would differ from this run's",
            serde_json::json!(d.shapley),
            d.seed
        ));
    }
    match recorded.run.data_sha256.as_str() {
        "" => {
            return Err(
                "records no data fingerprint (data_sha256; written by an older infoutil), so \
                     its maps cannot be matched to this dataset: rerun it"
                    .into(),
            )
        }
        sha if sha != want.data_sha256 => {
            return Err(format!(
                "was distilled from other data ({} by content, not this dataset): its maps \
                     would belong to other images",
                recorded.run.data.display()
            ))
        }
        _ => {}
    }
    Ok(())
}
