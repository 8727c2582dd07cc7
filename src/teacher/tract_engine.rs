//! tract: the pure-Rust CPU backend. A run of tract uses one core, so the engine cuts every batch
//! into micro-batches and spreads them over cores with rayon.
//!
//! Small fixed-size micro-batches are the fast path: tract's plan for a concrete batch of 16 ran
//! the shipped ConvNet-3 1.7× faster than its plan for a symbolic batch run at 256 (650 vs 390
//! images/s per core), since the im2col buffers stay in cache. The last micro-batch is padded
//! with zeros up to the plan's size. Where tract cannot optimise a graph for a concrete batch
//! (0.23.9 fails in its `fuse` pass on the gradient graphs' average-pool backward), the engine
//! keeps a symbolic-batch plan and runs the same micro-batches through it.

use std::sync::Arc;

use ndarray::{concatenate, s, Array1, Array4, ArrayD, ArrayView1, ArrayView4, Axis};
use rayon::prelude::*;
use tract_onnx::prelude::*;

use super::engine::{Engine, Feed, InputShape};
use super::onnx_file::OnnxFile;
use crate::error::{Error, Result};

/// Images per run of the plan.
const MICRO_BATCH: usize = 16;

pub struct TractEngine {
    plan: Arc<TypedSimplePlan>,
    /// The batch size the plan was built for; `None` for a symbolic batch.
    fixed_batch: Option<usize>,
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::backend("tract", e)
}

impl TractEngine {
    /// Build a plan for `file`, whose inputs are `inputs`: first the image input, `[N, ...dims]`
    /// with `dims` in the graph's layout (`[C, H, W]` or `[H, W, C]`), then, for gradient
    /// graphs, the labels `y` `[N]` (int64). tract binds inputs by position, so the graph's
    /// input order must be exactly `inputs`.
    pub fn load(file: &OnnxFile, inputs: &[&str], dims: [usize; 3]) -> Result<Self> {
        let model = parse(file, "it")?;
        let found: Vec<&str> = model
            .input_outlets()
            .map_err(err)?
            .iter()
            .map(|o| model.node(o.node).name.as_str())
            .collect();
        if found != inputs {
            return Err(Error::teacher(
                &file.path,
                format!("tract sees the inputs {found:?} in this order, but the metadata declares {inputs:?}"),
            ));
        }
        let with_labels = inputs.len() == 2;
        if let Ok(plan) = plan(model.clone(), Some(MICRO_BATCH), dims, with_labels) {
            return Ok(TractEngine {
                plan,
                fixed_batch: Some(MICRO_BATCH),
            });
        }
        let plan = plan(model, None, dims, with_labels)
            .map_err(|e| Error::teacher(&file.path, format!("tract cannot plan it: {e:#}")))?;
        Ok(TractEngine {
            plan,
            fixed_batch: None,
        })
    }

    /// A plan for a graph built around the teacher's, for inputs of exactly `shapes` (the
    /// caller feeds only those: concrete shapes are tract's fast path).
    pub fn load_derived(file: &OnnxFile, shapes: &[InputShape]) -> Result<Self> {
        let mut model = parse(file, "a graph built from it")?;
        let plan = (|| -> TractResult<_> {
            for (i, s) in shapes.iter().enumerate() {
                let fact = match s.int64 {
                    true => i64::fact(&s.dims),
                    false => f32::fact(&s.dims),
                };
                model.set_input_fact(i, fact.into())?;
            }
            model.into_optimized()?.into_runnable()
        })()
        .map_err(|e| {
            Error::teacher(
                &file.path,
                format!("tract cannot plan a graph built from it: {e:#}"),
            )
        })?;
        Ok(TractEngine {
            plan,
            fixed_batch: None,
        })
    }

    /// Run one micro-batch of at most `MICRO_BATCH` images, padding it to a fixed plan's size.
    fn run_micro(
        &self,
        x: ArrayView4<f32>,
        y: Option<ArrayView1<i64>>,
    ) -> Result<Vec<ArrayD<f32>>> {
        let n = x.len_of(Axis(0));
        let padded = self.fixed_batch.unwrap_or(n);
        // The padded copy is also the one contiguous copy of a permuted (NHWC) view.
        let mut xs = Array4::<f32>::zeros((padded, x.dim().1, x.dim().2, x.dim().3));
        xs.slice_mut(s![..n, .., .., ..]).assign(&x);
        let mut inputs: TVec<TValue> = tvec!(Tensor::from(xs).into_tvalue());
        if let Some(y) = y {
            let mut ys = Array1::<i64>::zeros(padded);
            ys.slice_mut(s![..n]).assign(&y);
            inputs.push(Tensor::from(ys).into_tvalue());
        }
        let outputs = self.plan.run(inputs).map_err(err)?;
        outputs
            .iter()
            .map(|o| {
                let a = o.to_plain_array_view::<f32>().map_err(err)?;
                Ok(a.slice_axis(Axis(0), (0..n).into()).to_owned())
            })
            .collect()
    }
}

/// `file`'s graph as tract reads it (its own shape annotations ignored: the plan sets them);
/// `what` names the graph in the error.
fn parse(file: &OnnxFile, what: &str) -> Result<InferenceModel> {
    let onnx = tract_onnx::onnx()
        .with_ignore_value_info(true)
        .with_ignore_output_shapes(true);
    onnx.parse(&file.proto, file.dir().to_str())
        .map(|parsed| parsed.model)
        .map_err(|e| Error::teacher(&file.path, format!("tract cannot read {what}: {e:#}")))
}

/// An optimised plan with a batch of `batch` images, or a symbolic batch `N` for `None`.
fn plan(
    mut model: InferenceModel,
    batch: Option<usize>,
    dims: [usize; 3],
    with_labels: bool,
) -> TractResult<Arc<TypedSimplePlan>> {
    let n: TDim = match batch {
        Some(b) => b.to_dim(),
        None => model.symbols.sym("N").into(),
    };
    let x_shape: TVec<TDim> = std::iter::once(n.clone())
        .chain(dims.iter().map(|&d| d.to_dim()))
        .collect();
    model.set_input_fact(0, f32::fact(x_shape).into())?;
    if with_labels {
        model.set_input_fact(1, i64::fact([n]).into())?;
    }
    model.into_optimized()?.into_runnable()
}

impl Engine for TractEngine {
    fn run_feeds(&self, feeds: &[Feed]) -> Result<Vec<ArrayD<f32>>> {
        let inputs: TVec<TValue> = feeds
            .iter()
            .map(|f| match f {
                Feed::F32(a) => Tensor::from(a.to_owned()).into_tvalue(),
                Feed::I64(a) => Tensor::from(a.to_owned()).into_tvalue(),
            })
            .collect();
        let outputs = self.plan.run(inputs).map_err(err)?;
        outputs
            .iter()
            .map(|o| Ok(o.to_plain_array_view::<f32>().map_err(err)?.to_owned()))
            .collect()
    }

    fn run(&self, x: ArrayView4<f32>, y: Option<ArrayView1<i64>>) -> Result<Vec<ArrayD<f32>>> {
        let n = x.len_of(Axis(0));
        let starts: Vec<usize> = (0..n).step_by(MICRO_BATCH).collect();
        let parts = starts
            .par_iter()
            .map(|&start| {
                let end = (start + MICRO_BATCH).min(n);
                let yb = y.as_ref().map(|y| y.slice(s![start..end]));
                self.run_micro(x.slice(s![start..end, .., .., ..]), yb)
            })
            .collect::<Result<Vec<_>>>()?;
        let outputs = parts.first().map_or(0, Vec::len);
        (0..outputs)
            .map(|i| {
                let views: Vec<_> = parts.iter().map(|p| p[i].view()).collect();
                concatenate(Axis(0), &views).map_err(err)
            })
            .collect()
    }
}
