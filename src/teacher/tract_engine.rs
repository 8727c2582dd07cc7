//! tract: the pure-Rust CPU backend. One optimised plan per graph, with a symbolic batch, shared
//! by all threads; each run uses one core, so batches are spread over cores by rayon.

use std::sync::Arc;

use ndarray::{ArrayD, ArrayView1, ArrayView4};
use tract_onnx::prelude::*;

use super::engine::Engine;
use super::onnx_file::OnnxFile;
use crate::error::{Error, Result};

pub struct TractEngine {
    plan: Arc<TypedSimplePlan>,
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::backend("tract", e)
}

impl TractEngine {
    /// Build a plan for `file`, whose first input is `x` `[N, C, H, W]` and, for gradient graphs,
    /// whose second is `y` `[N]` (int64).
    pub fn load(file: &OnnxFile, chw: [usize; 3], with_labels: bool) -> Result<Self> {
        let onnx = tract_onnx::onnx()
            .with_ignore_value_info(true)
            .with_ignore_output_shapes(true);
        let dir = file.dir().to_str();
        let parsed = onnx
            .parse(&file.proto, dir)
            .map_err(|e| Error::teacher(&file.path, format!("tract cannot read it: {e:#}")))?;
        let mut model = parsed.model;
        let n = model.symbols.sym("N");
        let x_shape: TVec<TDim> = std::iter::once(n.clone().into())
            .chain(chw.iter().map(|&d| d.to_dim()))
            .collect();
        model
            .set_input_fact(0, f32::fact(x_shape).into())
            .map_err(err)?;
        if with_labels {
            model
                .set_input_fact(1, i64::fact([n.to_dim()]).into())
                .map_err(err)?;
        }
        let plan = model
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| Error::teacher(&file.path, format!("tract cannot plan it: {e:#}")))?;
        Ok(TractEngine { plan })
    }
}

impl Engine for TractEngine {
    fn run(&self, x: ArrayView4<f32>, y: Option<ArrayView1<i64>>) -> Result<Vec<ArrayD<f32>>> {
        let mut inputs: TVec<TValue> = tvec!(Tensor::from(x.to_owned()).into_tvalue());
        if let Some(y) = y {
            inputs.push(Tensor::from(y.to_owned()).into_tvalue());
        }
        let outputs = self.plan.run(inputs).map_err(err)?;
        outputs
            .iter()
            .map(|o| Ok(o.to_plain_array_view::<f32>().map_err(err)?.to_owned()))
            .collect()
    }

    fn parallel_batches(&self) -> bool {
        true
    }
}
