//! The checkpoint that keeps finished classes on disk so that a long run stopped half-way
//! resumes where it was (`distill --resume`).

use std::path::{Path, PathBuf};

use ndarray::{Array1, Array2, Array3};

use crate::base::PixelBox;
use crate::distill::score::ClassLog;
use crate::distill::stitch::{box_i32, ClassResult};
use crate::error::{Error, Result};
use crate::run_identity::RunIdentity;
use crate::store::{self, schema::attr, schema::class_part, schema::distilled, schema::kind};

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
        let log = &r.log;
        let cand = Array1::from(
            log.source_index
                .iter()
                .map(|&i| i as i64)
                .collect::<Vec<_>>(),
        );
        w.put(&distilled::CANDIDATE_INDEX, cand.view())?;
        let per = log.boxes.first().map_or(0, Vec::len);
        let boxes: Vec<i32> = log.boxes.iter().flatten().flat_map(box_i32).collect();
        let boxes =
            Array3::from_shape_vec((log.boxes.len(), per, 4), boxes).expect("same per image");
        w.put(&distilled::CANDIDATE_CROP_BOX, boxes.view())?;
        let scores: Vec<f64> = log.scores.iter().flatten().copied().collect();
        let scores =
            Array2::from_shape_vec((log.scores.len(), per), scores).expect("same per image");
        w.put(&distilled::CANDIDATE_SCORE, scores.view())?;
        if let Some(m) = &log.maps {
            w.put(&distilled::CANDIDATE_SHAPLEY, m.view())?;
        }
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
                    "was made with other options, teacher or data; delete {} or run without --resume",
                    self.dir.display()
                ),
            ));
        }
        let boxes: Array3<i32> = store::read(&f, &path, &distilled::CANDIDATE_CROP_BOX)?;
        let scores: Array2<f64> = store::read(&f, &path, &distilled::CANDIDATE_SCORE)?;
        let index: Array1<i64> = store::read(&f, &path, &distilled::CANDIDATE_INDEX)?;
        let maps = match store::has(&f, &distilled::CANDIDATE_SHAPLEY) {
            true => Some(store::read(&f, &path, &distilled::CANDIDATE_SHAPLEY)?),
            false => None,
        };
        let log = ClassLog {
            label: class,
            source_index: index.iter().map(|&i| i as usize).collect(),
            maps,
            boxes: boxes
                .outer_iter()
                .map(|bs| {
                    bs.outer_iter()
                        .map(|b| PixelBox {
                            y0: b[0] as usize,
                            x0: b[1] as usize,
                            y1: b[2] as usize,
                            x1: b[3] as usize,
                        })
                        .collect()
                })
                .collect(),
            scores: scores.outer_iter().map(|r| r.to_vec()).collect(),
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
