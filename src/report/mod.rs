//! Pages for people: `infoutil report FILE.h5` turns any file the tool writes into a folder of
//! HTML pages and PNG pictures that a browser opens from disk (no server, no script). A
//! distilled file shows what was kept and why (sources, maps, scores, ranks, what was not
//! kept); an attribution file its maps; a teacher evaluation its confusion matrix and worst
//! records. Every page is bounded in size, so 1 000 classes give many small pages.

mod attribution;
mod distilled;
mod eval;
mod folder;
pub mod font;
pub mod html;
mod pictures;
pub mod sheet;
mod sources;

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::store::{self, schema::attr, schema::kind};

/// What to write and where the source images are.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The report folder (default: [`default_dir`]).
    pub out: Option<PathBuf>,
    /// The dataset, where it is not (or no longer) at the path the file records.
    pub data: Option<PathBuf>,
}

/// What was written.
#[derive(Debug, Clone)]
pub struct Written {
    pub index: PathBuf,
    pub pages: usize,
    pub pictures: usize,
    /// Source images that could not be shown, and why.
    pub problems: Vec<String>,
    /// Whether source images were read from the dataset.
    pub sources: String,
}

/// `FILE-report/` beside `FILE.h5`.
pub fn default_dir(file: &Path) -> PathBuf {
    let stem = file.file_stem().unwrap_or_default().to_string_lossy();
    file.with_file_name(format!("{stem}-report"))
}

/// Before a long run: `dir` can take a report (absent, or an earlier report to replace).
pub fn check_out(dir: &Path) -> Result<()> {
    folder::check(dir)
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
}

impl Run {
    fn read(path: &Path, file: &hdf5::File) -> Result<Run> {
        let root = |name: &str| store::read_attr(file, name).ok();
        let kind = root(attr::KIND).ok_or_else(|| Error::store(path, "no kind attribute"))?;
        let config: Value = root(attr::CONFIG)
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or(Value::Null);
        let mut names: Vec<String> = root(attr::CLASS_NAMES)
            .and_then(|c| serde_json::from_str(&c).ok())
            .unwrap_or_default();
        if names.is_empty() {
            names = teacher_class_names(&config).unwrap_or_default();
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

    fn title(&self) -> String {
        let name = self.path.file_name().unwrap_or_default().to_string_lossy();
        format!("{name}: {}", self.kind.replace('_', " "))
    }

    fn score_name(&self) -> String {
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

    fn map_name(&self) -> String {
        let a = &self.config["distill"]["attribution"];
        match a.as_str() {
            Some("gradcam") => "Grad-CAM".into(),
            _ => "Shapley".into(),
        }
    }

    /// The run's root attributes and every option of its configuration, as tables.
    fn options_tables(&self) -> String {
        let mut config = Vec::new();
        distilled::flatten(&self.config, "", &mut config);
        format!(
            "<h2>The file</h2>{}<h2>The run's configuration</h2>{}",
            html::pairs(&self.attrs),
            html::pairs(&config)
        )
    }
}

/// Class names from the metadata of the teacher the file records, where it is readable
/// (attribution files store none of their own).
fn teacher_class_names(config: &Value) -> Option<Vec<String>> {
    let path = crate::paths::shipped(config["teacher"].as_str()?);
    let onnx = crate::teacher::onnx_file::OnnxFile::read(&path).ok()?;
    serde_json::from_str(onnx.metadata().get("infoutil.class_names")?).ok()
}

/// Write the report of `file` (any kind this tool writes).
pub fn write(file: &Path, opts: &Options) -> Result<Written> {
    let h5 = store::open(file)?;
    let run = Run::read(file, &h5)?;
    let target = opts.out.clone().unwrap_or_else(|| default_dir(file));
    let mut folder = folder::Folder::create(&target)?;
    let (problems, sources) = match run.kind.as_str() {
        kind::DISTILLED => {
            let set = distilled::Set::read(file, h5)?;
            distilled::write(&run, &set, opts, &mut folder)?
        }
        kind::TEACHER_EVAL => eval::write(&run, &h5, opts, &mut folder)?,
        kind::ATTRIBUTION => attribution::write(&run, &h5, opts, &mut folder)?,
        other => {
            return Err(Error::store(
                file,
                format!("kind {other:?}: no report for it (distilled, attribution, teacher_eval)"),
            ))
        }
    };
    let (pages, pictures) = (folder.pages, folder.pictures);
    let dir = folder.finish()?;
    Ok(Written {
        index: dir.join("index.html"),
        pages,
        pictures,
        problems,
        sources,
    })
}
