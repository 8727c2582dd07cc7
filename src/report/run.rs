//! What a result file says about itself (kind, class names, configuration, root attributes),
//! read once and shared by every kind's pages, and where the paths it records are found.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::html;
use crate::error::{Error, Result};
use crate::store::{self, schema::attr};

/// What to write and where the source images are.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The report folder (default: [`default_dir`]).
    pub out: Option<PathBuf>,
    /// The dataset, where it is not (or no longer) at the path the file records.
    pub data: Option<PathBuf>,
    /// Folders to find a relative path the file records in (the dataset, the teacher), after
    /// the working directory and the file's own folder and its parent: the command line adds
    /// the source tree, where the shipped data and teachers are.
    pub roots: Vec<PathBuf>,
}

/// The file's own description, shared by every kind's pages.
pub struct Run {
    pub path: PathBuf,
    pub kind: String,
    pub names: Vec<String>,
    pub config: Value,
    /// Root attributes but the config and the class names, sorted.
    pub attrs: Vec<(String, String)>,
    pub data: Option<PathBuf>,
    pub method: String,
    /// Where relative recorded paths are looked for ([`Options::roots`]).
    pub roots: Vec<PathBuf>,
}

impl Run {
    pub fn read(path: &Path, file: &hdf5::File, roots: &[PathBuf]) -> Result<Run> {
        let root = |name: &str| store::read_attr(file, name).ok();
        let kind = root(attr::KIND).ok_or_else(|| Error::store(path, "no kind attribute"))?;
        let config: Value = root(attr::CONFIG)
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or(Value::Null);
        let mut names: Vec<String> = root(attr::CLASS_NAMES)
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or_default();
        if names.is_empty() {
            names = teacher_class_names(&config, path, roots).unwrap_or_default();
        }
        let mut attrs: Vec<(String, String)> = file
            .attr_names()
            .map_err(|e| Error::store(path, e))?
            .into_iter()
            .filter(|n| n != attr::CONFIG && n != attr::CLASS_NAMES)
            .filter_map(|n| Some((n.clone(), root(&n)?)))
            .collect();
        attrs.sort();
        Ok(Run {
            path: path.to_path_buf(),
            data: config["data"].as_str().map(PathBuf::from),
            roots: roots.to_vec(),
            method: config["distill"]["method"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            kind,
            names,
            config,
            attrs,
        })
    }

    pub fn title(&self) -> String {
        let name = self.path.file_name().unwrap_or_default().to_string_lossy();
        format!("{name}: {}", self.kind.replace('_', " "))
    }

    pub fn score_name(&self) -> String {
        match self.method.as_str() {
            "rded" => "the teacher's −CE on the crop (RDED)".into(),
            "random" => "nothing (drawn at random)".into(),
            _ => format!(
                "utility ({})",
                self.config["distill"]["score"]
                    .as_str()
                    .unwrap_or("grad-norm")
            ),
        }
    }

    pub fn map_name(&self) -> String {
        let a = &self.config["distill"]["attribution"];
        match a.as_str() {
            Some("gradcam") => "Grad-CAM".into(),
            _ => "Shapley".into(),
        }
    }

    /// The run's root attributes and every option of its configuration, as tables.
    pub fn options_tables(&self) -> String {
        let mut config = Vec::new();
        html::flatten(&self.config, "", &mut config);
        format!(
            "<h2>The file</h2>{}<h2>The run's configuration</h2>{}",
            html::pairs(&self.attrs),
            html::pairs(&config)
        )
    }
}

/// Class names from the metadata of the teacher the file records, where it is readable
/// (attribution files store none of their own).
fn teacher_class_names(config: &Value, file: &Path, roots: &[PathBuf]) -> Option<Vec<String>> {
    let path = locate(Path::new(config["teacher"].as_str()?), file, roots)?;
    let onnx = crate::teacher::onnx_file::OnnxFile::read(&path).ok()?;
    serde_json::from_str(onnx.metadata().get("infoutil.class_names")?).ok()
}

/// Where a path the file records is found: as recorded (absolute, or relative to the working
/// directory); beside the file or in its parent folder (a path recorded relative to where the
/// run started); under each of `roots`.
pub fn locate(recorded: &Path, file: &Path, roots: &[PathBuf]) -> Option<PathBuf> {
    let mut tries = vec![recorded.to_path_buf()];
    if recorded.is_relative() {
        if let Some(dir) = file.parent() {
            tries.push(dir.join(recorded));
            tries.extend(dir.parent().map(|d| d.join(recorded)));
        }
        tries.extend(roots.iter().map(|r| r.join(recorded)));
    }
    tries.into_iter().find(|p| p.exists())
}
