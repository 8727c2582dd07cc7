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
mod run;
pub mod sheet;
mod sources;

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::store::{self, schema::kind};
pub use run::{locate, Options, Run};

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

/// Write the report of `file` (any kind this tool writes).
pub fn write(file: &Path, opts: &Options) -> Result<Written> {
    let h5 = store::open(file)?;
    let run = Run::read(file, &h5, &opts.roots)?;
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
