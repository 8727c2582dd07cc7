//! The report folder: pages and pictures written into a temporary folder beside the target and
//! renamed into place when complete, so an interrupted run never leaves half a report, and a
//! folder that is not an earlier report is never replaced.

use std::path::{Path, PathBuf};

use super::html::GENERATOR;
use crate::error::{Error, Result};
use crate::render::{self, RgbImage};

pub struct Folder {
    tmp: tempfile::TempDir,
    target: PathBuf,
    pub pages: usize,
    pub pictures: usize,
}

/// Whether `dir` holds a report this tool wrote (its index page names the generator).
fn is_report(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("index.html"))
        .is_ok_and(|s| s.contains(&format!("content=\"{GENERATOR}\"")))
}

/// `target` may take a report: it is absent or holds an earlier one (which is replaced).
pub fn check(target: &Path) -> Result<()> {
    if target.exists() && !(target.is_dir() && is_report(target)) {
        return Err(Error::Config(format!(
            "report folder {}: exists and is not a report written by infoutil; choose another \
             folder (an earlier report there would be replaced)",
            target.display()
        )));
    }
    Ok(())
}

impl Folder {
    pub fn create(target: &Path) -> Result<Folder> {
        check(target)?;
        let parent = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        let name = target.file_name().unwrap_or_default().to_string_lossy();
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(".tmp")
            .tempdir_in(parent)
            .map_err(|e| Error::io(parent, e))?;
        Ok(Folder {
            tmp,
            target: target.to_path_buf(),
            pages: 0,
            pictures: 0,
        })
    }

    /// Save `img` as `name` (a generated relative path such as `img/d12.png`); returns its size.
    pub fn png(&mut self, name: &str, img: &RgbImage) -> Result<(u32, u32)> {
        render::save(img, &self.tmp.path().join(name))?;
        self.pictures += 1;
        Ok(img.dimensions())
    }

    pub fn page(&mut self, name: &str, html: &str) -> Result<()> {
        let path = self.tmp.path().join(name);
        std::fs::write(&path, html).map_err(|e| Error::io(&path, e))?;
        self.pages += 1;
        Ok(())
    }

    /// Move the finished report into place, replacing an earlier report there.
    pub fn finish(self) -> Result<PathBuf> {
        let tmp = self.tmp.keep();
        let old = if self.target.exists() {
            let aside = tmp.with_extension("old");
            std::fs::rename(&self.target, &aside).map_err(|e| Error::io(&self.target, e))?;
            Some(aside)
        } else {
            None
        };
        std::fs::rename(&tmp, &self.target).map_err(|e| Error::io(&self.target, e))?;
        if let Some(old) = old {
            std::fs::remove_dir_all(&old).map_err(|e| Error::io(&old, e))?;
        }
        // A temporary folder is owner-only; a report is for reading like the files beside it.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(&self.target, std::fs::Permissions::from_mode(0o755));
        }
        Ok(self.target)
    }
}
