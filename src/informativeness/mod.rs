//! Stage 1, informativeness: the patches of an image are players, a coalition's value is the
//! teacher's output on the image with the other patches replaced by a baseline, Shapley values
//! rank the patches, and the informative crops are the best blocks of the pooled map.

pub mod attribute;
pub mod crops;
pub mod grid;
pub mod masking;
pub mod output;

pub use crops::CropRule;
pub use grid::{Grid, PixelBox};
pub use masking::{Baseline, Value};
pub use output::Attributions;
