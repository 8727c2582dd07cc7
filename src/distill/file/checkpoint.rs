//! The checkpoint that keeps finished classes on disk so that a long run stopped half-way
//! resumes where it was (`distill --resume`).

use std::path::{Path, PathBuf};

use crate::distill::score::ClassLog;
use crate::distill::stitch::ClassResult;
use crate::error::{Error, Result};
use crate::run_identity::RunIdentity;
use crate::store::{self, schema::attr, schema::class_part, schema::kind};

/// Where finished classes are kept: one HDF5 file per class in `dir`, each stamped with a
/// fingerprint of everything that decides its contents.
pub struct Checkpoint {
    pub dir: PathBuf,
    /// Take classes already in `dir` instead of recomputing them.
    pub resume: bool,
    fingerprint: String,
}

impl Checkpoint {
    /// The checkpoint of the run `identity` (the run identity of the file it will write: the
    /// options, teacher packages and data by content, backend; `run_identity`), in `dir`.
    /// The folder is made when the first class is saved, so a run that fails before that leaves
    /// nothing behind.
    pub fn new(dir: PathBuf, resume: bool, identity: &RunIdentity) -> Result<Checkpoint> {
        let fingerprint = identity.fingerprint();
        Ok(Checkpoint {
            dir,
            resume,
            fingerprint,
        })
    }

    fn path(&self, class: usize) -> PathBuf {
        self.dir.join(format!("class-{class:05}.h5"))
    }

    pub(in crate::distill) fn save(&self, r: &ClassResult) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let config = serde_json::json!({ "fingerprint": self.fingerprint, "class": r.label });
        let header = store::Header {
            kind: kind::DISTILL_CLASS,
            config: &config,
            teacher_sha256: "",
        };
        let w = store::Writer::create(&self.path(r.label), &header)?;
        w.attr("/", attr::FINGERPRINT, &self.fingerprint)?;
        w.put(&class_part::PIXELS, r.pixels.view())?;
        w.put(&class_part::SOURCE_INDEX, r.source_index.view())?;
        w.put(&class_part::CROP_BOX, r.crop_box.view())?;
        super::candidates::write(&w, std::slice::from_ref(&r.log))?;
        w.finish()?;
        Ok(())
    }

    /// The saved result of `class`, if any. A saved class from another configuration is an
    /// error: mixing them would silently corrupt the output.
    pub(in crate::distill) fn load(&self, class: usize) -> Result<Option<ClassResult>> {
        let path = self.path(class);
        if !path.exists() {
            return Ok(None);
        }
        let f = store::open(&path)?;
        let err = |e: hdf5::Error| Error::store(&path, e);
        if store::read_attr(&f, attr::FINGERPRINT).map_err(err)? != self.fingerprint {
            return Err(Error::store(
                &path,
                format!(
                    "was made with other options, teacher or data; delete {} or run without `resume`",
                    self.dir.display()
                ),
            ));
        }
        let rows = super::candidates::read(&f, &path, Some(class))?;
        let log = ClassLog {
            label: class,
            source_index: rows.index,
            maps: rows.maps,
            boxes: rows.boxes,
            scores: rows.scores,
        };
        Ok(Some(ClassResult {
            label: class,
            pixels: store::read(&f, &path, &class_part::PIXELS)?,
            source_index: store::read(&f, &path, &class_part::SOURCE_INDEX)?,
            crop_box: store::read(&f, &path, &class_part::CROP_BOX)?,
            log,
        }))
    }

    /// Remove the saved classes once the whole result is written.
    pub fn remove(self) -> Result<()> {
        match std::fs::remove_dir_all(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&self.dir, e)),
            _ => Ok(()),
        }
    }
}

/// The default checkpoint folder of an output file: `OUT.parts` beside it.
pub fn default_dir(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".parts");
    out.with_file_name(name)
}
