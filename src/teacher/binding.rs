//! A teacher package bound by hash, checked in this one place.
//!
//! The forward graph is the package's root: its weights hash to its `weights_sha256` (or,
//! converted to float16, to its `converted_weights_sha256`), and every result records the hash
//! of its file. Each graph of a package (forward, gradient, Grad-CAM, float16 copy) also declares
//! the hash of its own floating-point weights (`infoutil.graph_weights_sha256`, recomputed here),
//! and the forward graph lists that hash for each sibling it was exported with
//! (`infoutil.sibling_weights_sha256`, e.g. `{"grad": "…", "cam": "…"}`). A sibling is accepted
//! only when its own weights hash to what the forward graph lists for its role. The shared
//! `weights_sha256` alone cannot bind them: a sibling's weights are not the forward's
//! (batch-norm is folded in the forward graph only), so that string could only be compared, and
//! a gradient graph of another checkpoint with it copied in used to be accepted.
//!
//! This is not a signature: whoever edits the forward graph's list re-binds the package, but
//! that changes the forward file's bytes, which every result records. A package exported before
//! the binding (no `graph_weights_sha256`) is refused with the command that re-stamps it
//! (export/restamp.py), never accepted on trust; see docs/reliability.md.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::meta::TeacherMeta;
use super::onnx_file::OnnxFile;
use crate::error::{Error, Result};

/// The metadata key of a graph's own weights hash.
pub const OWN: &str = "graph_weights_sha256";
/// The forward graph's metadata key listing its siblings' own weights hashes by role.
pub const SIBLINGS: &str = "sibling_weights_sha256";
/// The roles a forward graph may list.
pub const SIBLING_ROLES: [&str; 2] = ["grad", "cam"];

/// What a forward graph vouches for: its siblings' own weights hashes, by role.
#[derive(Debug, Clone)]
pub struct Siblings {
    forward: PathBuf,
    by_role: BTreeMap<String, String>,
}

/// The refusal of a graph from before the binding, with the way out.
fn unbound(path: &Path, what: &str) -> Error {
    Error::teacher(
        path,
        format!(
            "{what}: its package was exported before the graphs of a package were bound by hash. \
             If its files come from one export, re-stamp them with `python export/restamp.py \
             FORWARD.onnx` (it records each graph's weights hash and binds the siblings to the \
             forward graph); otherwise export the teacher again (export/export_teacher.py)"
        ),
    )
}

fn declared(file: &OnnxFile, key: &str) -> Option<String> {
    file.metadata().remove(&format!("infoutil.{key}"))
}

/// A graph's own floating-point weights hash to what its metadata declares; returns the hash.
fn check_own(file: &OnnxFile) -> Result<String> {
    let actual = file.own_weights_sha256()?;
    match declared(file, OWN) {
        None => Err(unbound(&file.path, "no 'infoutil.graph_weights_sha256'")),
        Some(d) if d == actual => Ok(actual),
        Some(d) => Err(Error::teacher(
            &file.path,
            format!(
                "its metadata declares graph_weights_sha256 {d} but its weights hash to \
                 {actual}: the metadata was copied from another graph, or the weights were \
                 changed after export"
            ),
        )),
    }
}

/// The forward graph's weights hash to what its metadata declares: the float32 weights' hash,
/// or a converted graph's hash of its float16 weights.
fn check_declared_weights(file: &OnnxFile, meta: &TeacherMeta) -> Result<()> {
    let (key, declared, actual) = match &meta.converted_weights_sha256 {
        Some(h) => ("converted_weights_sha256", h, file.weights_fp16_sha256()?),
        None => (
            "weights_sha256",
            &meta.weights_sha256,
            file.weights_sha256()?,
        ),
    };
    if &actual == declared {
        return Ok(());
    }
    Err(Error::teacher(
        &file.path,
        format!(
            "its metadata declares {key} {declared} but its weights hash to {actual}: \
             the metadata was copied from another model, or the weights were changed after export"
        ),
    ))
}

/// `infoutil.sibling_weights_sha256`: a JSON object from roles ("grad", "cam") to SHA-256 hex
/// digests. The error says what is wrong, to follow the key's name.
pub fn parse_siblings(raw: &str) -> std::result::Result<BTreeMap<String, String>, String> {
    let map: BTreeMap<String, String> = serde_json::from_str(raw)
        .map_err(|e| format!("is not a JSON object of role → hash ({e})"))?;
    for (role, hash) in &map {
        if !SIBLING_ROLES.contains(&role.as_str()) {
            return Err(format!(
                "lists a graph of role {role:?}; the roles are {SIBLING_ROLES:?}"
            ));
        }
        let hex = |c: char| c.is_ascii_digit() || ('a'..='f').contains(&c);
        if hash.len() != 64 || !hash.chars().all(hex) {
            return Err(format!(
                "gives {role} the hash {hash:?}; expected 64 lower-case hex digits (SHA-256)"
            ));
        }
    }
    Ok(map)
}

/// The forward graph: its weights hash to what it declares (both hashes), and the siblings it
/// lists.
pub(super) fn check_forward(file: &OnnxFile, meta: &TeacherMeta) -> Result<Siblings> {
    check_declared_weights(file, meta)?;
    check_own(file)?;
    let raw = declared(file, SIBLINGS)
        .ok_or_else(|| unbound(&file.path, "no 'infoutil.sibling_weights_sha256'"))?;
    let by_role = parse_siblings(&raw).map_err(|why| {
        Error::teacher(
            &file.path,
            format!("metadata 'infoutil.sibling_weights_sha256' = {raw:?} {why}"),
        )
    })?;
    Ok(Siblings {
        forward: file.path.clone(),
        by_role,
    })
}

impl Siblings {
    /// `file`, a graph of `role`, is the one the forward graph was exported with: its own
    /// weights hash to what it declares and to what the forward graph lists for `role`.
    pub(super) fn check(&self, file: &OnnxFile, role: &str) -> Result<()> {
        let actual = check_own(file)?;
        let forward = self.forward.display();
        let Some(expected) = self.by_role.get(role) else {
            let listed: Vec<&String> = self.by_role.keys().collect();
            return Err(Error::teacher(
                &file.path,
                format!(
                    "is not a graph of the package of {forward}: that forward graph lists no \
                     {role} graph in 'infoutil.sibling_weights_sha256' (it lists {listed:?}), so \
                     this file comes from another export; export the {role} graph from the \
                     forward graph's own checkpoint (export/export_cam.py lists the Grad-CAM \
                     graph it adds)"
                ),
            ));
        };
        if &actual != expected {
            return Err(Error::teacher(
                &file.path,
                format!(
                    "is not the {role} graph of {forward}: its weights hash to {actual}, but the \
                     forward graph lists {expected} for its {role} graph \
                     ('infoutil.sibling_weights_sha256'): it was exported from another checkpoint \
                     or by another export; put the {role} graph of the same export beside it, or \
                     export the teacher again"
                ),
            ));
        }
        Ok(())
    }
}

/// Every check of a package that needs no backend: the forward graph at `forward` and each
/// sibling beside it (`NAME.grad.onnx`, `NAME.cam.onnx`) that exists, as [`super::Teacher::load`]
/// and the Grad-CAM loader check them. Returns the files checked, the forward graph first.
pub fn check_package(forward: &Path) -> Result<Vec<PathBuf>> {
    let file = OnnxFile::read(forward)?;
    let meta = TeacherMeta::from_file(&file, "forward")?;
    let siblings = check_forward(&file, &meta)?;
    let mut checked = vec![forward.to_path_buf()];
    for (role, path) in [
        ("grad", super::grad_path(forward)),
        ("cam", super::cam_path(forward)),
    ] {
        if path.exists() {
            let sibling = OnnxFile::read(&path)?;
            meta.check_pair(&TeacherMeta::from_file(&sibling, role)?, &path)?;
            siblings.check(&sibling, role)?;
            checked.push(path);
        }
    }
    Ok(checked)
}
