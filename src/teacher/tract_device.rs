//! tract on a device: the same ONNX graphs as `tract_engine`, planned by one of tract's runtimes
//! instead of its default CPU plan. `cuda` is tract-cuda's (cargo feature `cuda-tract`): its
//! transform moves the operations it has kernels for onto the GPU and leaves the rest on the
//! CPU, with copies between them; its kernels are compiled at run time by NVRTC, and the CUDA
//! libraries are loaded at run time, so the binary links none of them.
//!
//! Plans are built for concrete input shapes, one per shape met and kept (tract's fast path on
//! the CPU; a batch of images meets at most a few shapes: the full batch and the last one).
//! Where a concrete plan fails, one plan for the graph's symbolic shapes serves every call.
//! Runs are serialised: one GPU is one queue, and a batch already fills it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use ndarray::{ArrayD, ArrayView1, ArrayView4};
use tract_onnx::prelude::*;

use super::engine::{Engine, Feed};
use super::onnx_file::OnnxFile;
use crate::error::{Error, Result};

/// Environment variable naming the tract runtime that stands in for `cuda` (only `cpu`), so
/// that this engine's planning, batching and output handling run on a machine without a GPU
/// (benches/gpu/run.sh's dry run, the feature's tests). Results then say which runtime ran.
pub const STAND_IN_VAR: &str = "INFOUTIL_TRACT_CUDA_STANDIN";

type Shapes = Vec<(bool, Vec<usize>)>;

pub struct TractDeviceEngine {
    runtime: &'static dyn Runtime,
    model: InferenceModel,
    path: std::path::PathBuf,
    /// For the symbolic fallback: axis 0 of every input is the batch (teacher graphs); derived
    /// graphs keep the shapes they declare.
    batch_axis: bool,
    plans: Mutex<HashMap<Shapes, Arc<dyn Runnable>>>,
    symbolic: OnceLock<std::result::Result<Arc<dyn Runnable>, String>>,
    reported: OnceLock<()>,
    run_lock: Mutex<()>,
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::backend("tract", e)
}

/// The runtime `--backend tract --device cuda` plans with, checked (driver, CUDA libraries).
pub fn runtime() -> Result<&'static dyn Runtime> {
    let name = match std::env::var(STAND_IN_VAR) {
        Ok(v) if v == "cpu" => "cpu",
        Ok(v) => {
            return Err(Error::Config(format!(
                "{STAND_IN_VAR}={v}: the only runtime that can stand in for cuda is cpu"
            )))
        }
        Err(_) => "cuda",
    };
    // The crate registers its runtime when linked; naming it keeps the linker from dropping it.
    #[cfg(feature = "cuda-tract")]
    let _ = std::any::type_name::<tract_cuda::CudaTransform>();
    match runtime_for_name(name) {
        Ok(Some(rt)) => Ok(rt),
        Ok(None) => Err(err(format!("this build has no tract runtime named {name}"))),
        Err(e) => Err(err(format!("cannot run on CUDA: {e:#}"))),
    }
}

/// Whether a stand-in runtime is in use (it is named in the backend's description).
pub fn stand_in() -> Option<String> {
    std::env::var(STAND_IN_VAR).ok()
}

impl TractDeviceEngine {
    /// A teacher graph (image input, then labels for gradient graphs), checked as tract's CPU
    /// engine checks it: tract binds inputs by position.
    pub fn load(file: &OnnxFile, inputs: &[&str]) -> Result<Self> {
        let engine = Self::new(file, true)?;
        let found: Vec<&str> = engine
            .model
            .input_outlets()
            .map_err(err)?
            .iter()
            .map(|o| engine.model.node(o.node).name.as_str())
            .collect();
        if found != inputs {
            return Err(Error::teacher(
                &file.path,
                format!("tract sees the inputs {found:?} in this order, but the metadata declares {inputs:?}"),
            ));
        }
        Ok(engine)
    }

    /// A graph built around the teacher's (the Shapley game), planned for the shapes it is fed.
    pub fn load_derived(file: &OnnxFile) -> Result<Self> {
        Self::new(file, false)
    }

    fn new(file: &OnnxFile, batch_axis: bool) -> Result<Self> {
        let model = tract_onnx::onnx()
            .with_ignore_value_info(true)
            .with_ignore_output_shapes(true)
            .parse(&file.proto, file.dir().to_str())
            .map(|parsed| parsed.model)
            .map_err(|e| Error::teacher(&file.path, format!("tract cannot read it: {e:#}")))?;
        Ok(TractDeviceEngine {
            runtime: runtime()?,
            model,
            path: file.path.clone(),
            batch_axis,
            plans: Mutex::default(),
            symbolic: OnceLock::new(),
            reported: OnceLock::new(),
            run_lock: Mutex::new(()),
        })
    }

    /// The plan for inputs of `shapes`: a concrete one, else the symbolic one.
    fn plan(&self, shapes: &Shapes) -> Result<Arc<dyn Runnable>> {
        let mut plans = self.plans.lock().expect("a plan build panicked");
        if let Some(p) = plans.get(shapes) {
            return Ok(p.clone());
        }
        let plan = match self.prepare(Some(shapes)) {
            Ok(p) => p,
            Err(concrete) => self
                .symbolic
                .get_or_init(|| self.prepare(None).map_err(|e| format!("{e:#}")))
                .clone()
                .map_err(|symbolic| {
                    Error::teacher(
                        &self.path,
                        format!(
                            "tract cannot plan it on {}: for shapes {shapes:?}: {concrete:#}; \
                             for any batch: {symbolic}",
                            self.runtime.name()
                        ),
                    )
                })?,
        };
        self.reported.get_or_init(|| self.report(plan.as_ref()));
        plans.insert(shapes.clone(), plan.clone());
        Ok(plan)
    }

    /// The model with inputs of `shapes` (or symbolic batches), decluttered, handed to the
    /// runtime. tract-cuda panics where it cannot make its context (its kernels fail to
    /// compile, say): that becomes an error here, not a crash.
    fn prepare(&self, shapes: Option<&Shapes>) -> anyhow::Result<Arc<dyn Runnable>> {
        let mut model = self.model.clone();
        match shapes {
            Some(shapes) => {
                for (i, (int64, dims)) in shapes.iter().enumerate() {
                    let fact = match int64 {
                        true => i64::fact(dims),
                        false => f32::fact(dims),
                    };
                    model.set_input_fact(i, fact.into())?;
                }
            }
            None if self.batch_axis => {
                let n: TDim = model.symbols.sym("N").into();
                for i in 0..model.inputs.len() {
                    let mut fact = model.input_fact(i)?.clone();
                    fact.shape.set_dim(0, n.clone());
                    model.set_input_fact(i, fact)?;
                }
            }
            None => {}
        }
        let typed = model.into_typed()?.into_decluttered()?;
        let runtime = self.runtime;
        let plan =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| runtime.prepare(typed)))
                .map_err(|p| {
                    let what = p
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    anyhow::anyhow!("the {} runtime failed to start: {what}", runtime.name())
                })??;
        Ok(Arc::from(plan))
    }

    /// Which operations of the plan run on the device and which stayed on the CPU, once per
    /// graph: what a user of this route needs to judge its speed, known only once planned.
    fn report(&self, plan: &dyn Runnable) {
        let Some(model) = plan.typed_model() else {
            return;
        };
        let mut on_device = 0;
        let mut on_cpu: std::collections::BTreeMap<String, usize> = Default::default();
        for node in model.nodes() {
            let name = node.op.name();
            if name == "Source" || name == "Const" || name.starts_with("DeviceSync") {
                continue;
            }
            if node.outputs.iter().any(|o| is_device_fact(&o.fact)) {
                on_device += 1;
            } else {
                *on_cpu.entry(name.to_string()).or_default() += 1;
            }
        }
        let cpu: Vec<String> = on_cpu.iter().map(|(k, n)| format!("{k}×{n}")).collect();
        crate::progress::note(format!(
            "tract on {}: {}: {on_device} of {} operations on the device{}",
            self.runtime.name(),
            self.path.display(),
            on_device + on_cpu.values().sum::<usize>(),
            match cpu.is_empty() {
                true => String::new(),
                false => format!("; on the CPU: {}", cpu.join(", ")),
            }
        ));
    }

    fn run_tensors(&self, inputs: Vec<Tensor>) -> Result<Vec<ArrayD<f32>>> {
        let shapes: Shapes = inputs
            .iter()
            .map(|t| (t.datum_type() == i64::datum_type(), t.shape().to_vec()))
            .collect();
        let plan = self.plan(&shapes)?;
        let outputs = {
            let _queue = self.run_lock.lock().expect("a run panicked");
            plan.run(inputs.into_iter().map(|t| t.into_tvalue()).collect())
                .map_err(err)?
        };
        outputs
            .iter()
            .map(|o| Ok(o.to_plain_array_view::<f32>().map_err(err)?.to_owned()))
            .collect()
    }
}

#[cfg(feature = "cuda-tract")]
fn is_device_fact(fact: &TypedFact) -> bool {
    use tract_gpu::fact::DeviceTypedFactExt;
    fact.as_device_fact().is_some()
}

#[cfg(not(feature = "cuda-tract"))]
fn is_device_fact(_: &TypedFact) -> bool {
    false
}

impl Engine for TractDeviceEngine {
    fn run(&self, x: ArrayView4<f32>, y: Option<ArrayView1<i64>>) -> Result<Vec<ArrayD<f32>>> {
        let mut inputs = vec![Tensor::from(x.as_standard_layout().into_owned())];
        if let Some(y) = y {
            inputs.push(Tensor::from(y.to_owned()));
        }
        self.run_tensors(inputs)
    }

    fn run_feeds(&self, feeds: &[Feed]) -> Result<Vec<ArrayD<f32>>> {
        let inputs = feeds
            .iter()
            .map(|f| match f {
                Feed::F32(a) => Tensor::from(a.as_standard_layout().into_owned()),
                Feed::I64(a) => Tensor::from(a.as_standard_layout().into_owned()),
            })
            .collect();
        self.run_tensors(inputs)
    }
}
