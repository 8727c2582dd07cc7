//! The seam between the method and the inference library: run one ONNX graph on a batch.

use ndarray::{ArrayD, ArrayView1, ArrayView4, ArrayViewD};
use serde::Serialize;

use crate::error::Result;

/// Which inference library runs the teacher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// ONNX Runtime when its library loads, else tract.
    Auto,
    /// tract, pure Rust, CPU only; always available.
    Tract,
    /// ONNX Runtime, loaded at run time from `ORT_DYLIB_PATH`.
    Ort,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Device {
    Cpu,
    /// ONNX Runtime's CUDA execution provider; an error where it cannot run.
    Cuda,
}

impl Device {
    /// Images per backend call unless asked otherwise. On the CPU 64 was faster than 256 and
    /// needed a quarter of the memory in every stage measured (docs/benchmarks.md); on CUDA,
    /// where larger batches usually keep the device busy, 256 is kept until measured.
    pub fn default_batch_size(self) -> usize {
        match self {
            Device::Cpu => 64,
            Device::Cuda => 256,
        }
    }
}

/// Which GPU the CUDA provider uses and how much of its memory ONNX Runtime's arena may take
/// (`--cuda-device`, `--cuda-memory-limit`): on a shared node a job must stay on the GPU it was
/// given and inside its share. Ignored on the CPU, where setting them is refused as a mistake.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CudaOptions {
    /// The device ordinal as CUDA numbers it (after `CUDA_VISIBLE_DEVICES`).
    pub device_id: u32,
    /// The arena's limit in MiB; ONNX Runtime's default (no limit) when absent.
    pub memory_limit_mib: Option<usize>,
}

impl CudaOptions {
    pub fn is_default(&self) -> bool {
        *self == CudaOptions::default()
    }
}

/// Where ONNX Runtime runs a graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub device: Device,
    pub cuda: CudaOptions,
}

/// One loaded graph, ready to run batches of any size.
pub trait Engine: Send + Sync {
    /// Run the graph on `x` (and `y` for gradient graphs); outputs in the graph's output order.
    /// `x` is already in the graph's own axis order (the teacher permutes NCHW batches for NHWC
    /// graphs, see `Layout::graph_view`) and may be a strided view: the engine makes the
    /// contiguous copy its backend needs. Each engine spreads a batch over the machine's cores
    /// itself.
    fn run(&self, x: ArrayView4<f32>, y: Option<ArrayView1<i64>>) -> Result<Vec<ArrayD<f32>>>;

    /// Run a graph built around the teacher's (e.g. the Shapley game) once on `feeds`, one per
    /// graph input in the graph's order, exactly as given: no batching, which is the caller's.
    fn run_feeds(&self, feeds: &[Feed]) -> Result<Vec<ArrayD<f32>>>;
}

/// One input of a [`Engine::run_feeds`] call.
pub enum Feed<'a> {
    F32(ArrayViewD<'a, f32>),
    I64(ArrayViewD<'a, i64>),
}

/// The shape a derived graph's input will have, for backends that plan for concrete shapes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputShape {
    pub int64: bool,
    pub dims: Vec<usize>,
}
