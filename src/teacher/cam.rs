//! The Grad-CAM graph beside a forward graph (`NAME.cam.onnx`, written by export/export_cam.py):
//! for each image, one layer's activations and the gradient of the explained class's logit with
//! respect to them. The map itself is computed from these by `informativeness::gradcam`, so the
//! exported graph holds no choice of the method, only what autograd gives.

use ndarray::{concatenate, Array4, ArrayD, ArrayView4, Axis, Ix4};

use super::engine::Engine;
use super::meta::CamMeta;
use super::siblings::cam_path;
use super::{shape_error, Teacher};
use crate::error::{Error, Result};

pub(super) struct CamGraph {
    meta: CamMeta,
    engine: Box<dyn Engine>,
}

/// One layer's activations `A` and `∂ logit_y / ∂ A`, both `[N, K, h, w]` (channels first,
/// whatever the graph's input layout).
#[derive(Debug, Clone)]
pub struct CamParts {
    pub activations: Array4<f32>,
    pub gradients: Array4<f32>,
}

impl Teacher {
    /// The layer the Grad-CAM graph opens, or why there is no usable Grad-CAM graph.
    pub fn cam_layer(&self) -> Result<&str> {
        self.cam_graph().map(|g| g.meta.layer.as_str())
    }

    /// The Grad-CAM graph's outputs for inputs `x` (`[N, C, H, W]`, teacher input space)
    /// explained as classes `y`.
    pub fn cam_parts(&self, x: ArrayView4<f32>, y: &[usize]) -> Result<CamParts> {
        let graph = self.cam_graph()?;
        let y = self.label_array(y)?;
        let parts = self.batched(graph.engine.as_ref(), x, Some(y.view()), |out| {
            let [a, g] = &out[..] else {
                return Err(shape_error("Grad-CAM outputs", &[out.len()]));
            };
            let (a, g) = (into_4d(a, "activations")?, into_4d(g, "gradients")?);
            if a.dim() != g.dim() {
                return Err(shape_error("gradients", g.shape()));
            }
            Ok((a, g))
        })?;
        let (a, g): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
        let parts = CamParts {
            activations: concat(a)?,
            gradients: concat(g)?,
        };
        for (output, values) in [
            ("Grad-CAM activation", &parts.activations),
            ("Grad-CAM gradient", &parts.gradients),
        ] {
            let per_image = values.outer_iter().map(|v| {
                let n = v.len();
                v.into_shape_with_order(n)
                    .expect("an owned batch is contiguous")
            });
            self.check_finite(per_image, output)?;
        }
        Ok(parts)
    }

    fn cam_graph(&self) -> Result<&CamGraph> {
        self.cam
            .get_or_init(|| self.load_cam())
            .as_ref()
            .map_err(|why| Error::Config(why.clone()))
    }

    /// Load the graph beside the forward graph; the error is kept as its full message, since
    /// every later call reports it again.
    fn load_cam(&self) -> std::result::Result<CamGraph, String> {
        let path = cam_path(&self.path);
        if !path.exists() {
            let why = format!(
                "`attribution` gradcam needs the Grad-CAM graph {}, which does not exist; \
                 export it with export/export_cam.py (or use `attribution` shapley)",
                path.display()
            );
            return Err(Error::teacher(&self.path, why).to_string());
        }
        let load = || -> Result<CamGraph> {
            let (file, engine) = self
                .loader
                .sibling(&path, "cam", (&self.meta, &self.siblings))?;
            Ok(CamGraph {
                meta: CamMeta::from_file(&file)?,
                engine,
            })
        };
        load().map_err(|e| e.to_string())
    }
}

fn into_4d(a: &ArrayD<f32>, what: &str) -> Result<Array4<f32>> {
    a.view()
        .into_dimensionality::<Ix4>()
        .map(|v| v.to_owned())
        .map_err(|_| shape_error(what, a.shape()))
}

fn concat(parts: Vec<Array4<f32>>) -> Result<Array4<f32>> {
    let views: Vec<_> = parts.iter().map(|a| a.view()).collect();
    match views.first() {
        None => Ok(Array4::zeros((0, 0, 0, 0))),
        Some(first) => concatenate(Axis(0), &views)
            .map_err(|_| shape_error("Grad-CAM outputs of a later batch", first.shape())),
    }
}
