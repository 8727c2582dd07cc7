//! The shipped defaults, found from the working directory or, failing that, from the source
//! tree the binary was built from, so `infoutil` works without arguments in either place; and
//! the check that no output overwrites an input. The command line's business: the library takes
//! the paths it is given.

use std::path::{Path, PathBuf};

/// The converged Fashion-MNIST teacher shipped in `models/`.
pub const DEFAULT_TEACHER: &str = "models/fmnist-convnet3.onnx";
/// The embedded real Fashion-MNIST test subset (100 images per class).
pub const DEFAULT_TEST_DATA: &str = "data/fashion-mnist-mini/t10k-images-idx3-ubyte.gz";
/// The embedded real Fashion-MNIST training subset (30 images per class).
pub const DEFAULT_TRAIN_DATA: &str = "data/fashion-mnist-mini/train-images-idx3-ubyte.gz";

/// `rel` as given when it exists, else under the crate's source folder, else as given (so the
/// error names the path the user would expect).
pub fn shipped(rel: &str) -> PathBuf {
    let here = Path::new(rel);
    if here.exists() {
        return here.to_path_buf();
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    if built.exists() {
        built
    } else {
        here.to_path_buf()
    }
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
