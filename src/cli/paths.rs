//! The shipped defaults, found from the working directory, else where the wheel installs them
//! (`share/infoutil/` of the environment whose `bin/` holds the binary), else from the source
//! tree the binary was built from, so `infoutil` works without arguments in any folder; and the
//! check that no output overwrites an input. The command line's business: the library takes the
//! paths it is given.

use std::path::{Path, PathBuf};

/// The converged Fashion-MNIST teacher shipped in `models/`.
pub const DEFAULT_TEACHER: &str = "models/fmnist-convnet3.onnx";
/// The embedded real Fashion-MNIST test subset (100 images per class).
pub const DEFAULT_TEST_DATA: &str = "data/fashion-mnist-mini/t10k-images-idx3-ubyte.gz";
/// The embedded real Fashion-MNIST training subset (30 images per class).
pub const DEFAULT_TRAIN_DATA: &str = "data/fashion-mnist-mini/train-images-idx3-ubyte.gz";

/// `rel` as given when it exists, else under `share/infoutil/` beside the binary's `bin/` (the
/// wheel's data, pyproject.toml), else under the crate's source folder, else as given (so the
/// error names the path the user would expect).
pub fn shipped(rel: &str) -> PathBuf {
    let here = Path::new(rel);
    let installed = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("share/infoutil").join(rel)));
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    [Some(here.to_path_buf()), installed, Some(built)]
        .into_iter()
        .flatten()
        .find(|p| p.exists())
        .unwrap_or_else(|| here.to_path_buf())
}

/// The source tree the binary was built from, where the shipped teachers and data are (a file
/// may record them relative to it).
pub fn source_tree() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `given` itself, unless it is the default `rel` (as typed by clap), which is then resolved
/// with [`shipped`].
pub fn shipped_or(given: &Path, rel: &str) -> PathBuf {
    if given == Path::new(rel) {
        shipped(rel)
    } else {
        given.to_path_buf()
    }
}

/// Before any work: every output can be written under the output policy and none of them is one
/// of the run's inputs; see [`infoutil::outputs::check`], which this is.
pub fn check_outputs(outputs: &[(&str, &Path)], inputs: &[PathBuf]) -> infoutil::Result<()> {
    infoutil::outputs::check(outputs, inputs)
}
