//! The files that belong to a teacher's forward graph `NAME.onnx`, found beside it by name: its
//! gradient graph, its Grad-CAM graph and the early checkpoint the soft labels may come from.
//! The one place that spells the naming, so that the exporter's files (export/) and every reader
//! here agree.

use std::path::{Path, PathBuf};

/// `NAME.onnx` → `NAME{suffix}.onnx` in the same folder.
pub fn sibling(forward: &Path, suffix: &str) -> PathBuf {
    let stem = forward.file_stem().unwrap_or_default().to_string_lossy();
    forward.with_file_name(format!("{stem}{suffix}.onnx"))
}

/// The gradient graph that belongs to a forward graph: `NAME.onnx` → `NAME.grad.onnx`.
pub fn grad_path(forward: &Path) -> PathBuf {
    sibling(forward, ".grad")
}

/// The Grad-CAM graph that belongs to a forward graph: `NAME.onnx` → `NAME.cam.onnx`.
pub fn cam_path(forward: &Path) -> PathBuf {
    sibling(forward, ".cam")
}

/// The early checkpoint of a teacher (the paper's soft-label teacher at small IPC):
/// `NAME.onnx` → `NAME-early.onnx`.
pub fn early_path(forward: &Path) -> PathBuf {
    sibling(forward, "-early")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn siblings_are_named_after_the_forward_graph() {
        let f = Path::new("models/t.v2.onnx");
        assert_eq!(grad_path(f), Path::new("models/t.v2.grad.onnx"));
        assert_eq!(cam_path(f), Path::new("models/t.v2.cam.onnx"));
        assert_eq!(early_path(f), Path::new("models/t.v2-early.onnx"));
    }
}
