//! infoutil: dataset distillation by Shapley informativeness and gradient-norm utility.
//!
//! The pipeline reads from the module tree: [`data`] (datasets) and [`teacher`] (ONNX teachers
//! on tract or ONNX Runtime) feed the stages; [`store`] writes every result as HDF5.

#![warn(clippy::too_many_lines)]

pub mod base;
pub mod data;
pub mod distill;
pub mod error;
pub mod evaluate;
#[doc(hidden)]
pub mod fuzz;
pub mod informativeness;
pub mod input;
pub mod outputs;
pub mod progress;
pub mod provenance;
pub mod reconstruct;
pub mod render;
pub mod report;
pub mod run_identity;
pub mod shapley;
pub mod store;
pub mod teacher;
pub mod utility;

pub use error::{Error, Result};
