//! infoutil: dataset distillation by Shapley informativeness and gradient-norm utility.

pub mod data;
pub mod error;

pub use error::{Error, Result};
