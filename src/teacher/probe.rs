//! One probe batch at load: a graph's outputs are checked against what its metadata declares
//! before any data is read, so a teacher whose class count disagrees with its logits is named
//! as the fault (with the file and the shape expected), instead of being blamed later on the
//! data ("label 9 is out of range") or on a backend's reshape.

use std::path::Path;

use ndarray::{Array1, Array4};

use super::engine::Engine;
use crate::error::{Error, Result};

/// One all-zero image in the graph's layout, and label 0.
fn run(engine: &dyn Engine, dims: [usize; 3], labels: bool) -> Result<Vec<ndarray::ArrayD<f32>>> {
    let x = Array4::<f32>::zeros((1, dims[0], dims[1], dims[2]));
    let y = Array1::<i64>::zeros(1);
    engine.run(x.view(), labels.then(|| y.view()))
}

fn expect(path: &Path, what: &str, got: &[usize], want: &[usize], why: &str) -> Result<()> {
    if got == want {
        return Ok(());
    }
    Err(Error::teacher(
        path,
        format!(
            "for a probe batch of one image its {what} have shape {got:?}, expected {want:?} \
             ({why}); the graph and its metadata do not belong together"
        ),
    ))
}

/// The forward graph's first output is `[1, K]` logits, K the declared class count.
pub(super) fn forward(engine: &dyn Engine, path: &Path, dims: [usize; 3], k: usize) -> Result<()> {
    let out = run(engine, dims, false)?;
    let got = out.first().map(|a| a.shape().to_vec()).unwrap_or_default();
    let why = format!("{k} classes named in infoutil.class_names");
    expect(path, "logits", &got, &[1, k], &why)
}

/// The gradient graph's `norms` are `[1]` and its `sqnorms` `[1, P]`, P the declared parameter
/// count.
pub(super) fn grad(
    engine: &dyn Engine,
    path: &Path,
    outputs: &[String],
    dims: [usize; 3],
    params: usize,
) -> Result<()> {
    let out = run(engine, dims, true)?;
    let shape = |name: &str| {
        outputs
            .iter()
            .position(|n| n == name)
            .and_then(|i| out.get(i))
            .map(|a| a.shape().to_vec())
            .unwrap_or_default()
    };
    expect(path, "norms", &shape("norms"), &[1], "one per image")?;
    let why = format!("{params} parameters named in infoutil.param_names");
    expect(path, "sqnorms", &shape("sqnorms"), &[1, params], &why)
}
