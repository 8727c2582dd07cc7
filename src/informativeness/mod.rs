//! Stage 1, informativeness: the patches of an image are players, a coalition's value is the
//! teacher's output on the image with the other patches replaced by a baseline, Shapley values
//! rank the patches, and the informative crops are the best blocks of the pooled map. Grad-CAM
//! can rank them instead (the paper's comparison); everything after the map is shared.

pub mod attribute;
pub mod crops;
pub mod game_graph;
pub mod gradcam;
pub mod grid;
pub mod masking;
pub mod output;

pub use crops::CropRule;
pub use grid::{Grid, PixelBox};
pub use masking::{Baseline, Value};
pub use output::Attributions;

/// Which map ranks an image's patches.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Attribution {
    /// Shapley values of the patches (the paper's method).
    #[default]
    #[serde(rename = "shapley")]
    Shapley,
    /// Grad-CAM at the teacher's last convolutional block, averaged over each patch (needs the
    /// teacher's Grad-CAM graph, NAME.cam.onnx).
    #[serde(rename = "gradcam")]
    GradCam,
}

impl Attribution {
    /// As the command line and the files spell it.
    pub fn name(self) -> &'static str {
        match self {
            Attribution::Shapley => "shapley",
            Attribution::GradCam => "gradcam",
        }
    }
}
