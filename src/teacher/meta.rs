//! The teacher metadata contract (`infoutil.*` keys in ONNX `metadata_props`), written by
//! `export/` and documented in export/README.md.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::onnx_file::OnnxFile;
use crate::data::preprocess::{InputSpec, Normalization};
use crate::error::{Error, Result};

pub const SCHEMA: &str = "1";

/// What a teacher declares about itself.
#[derive(Debug, Clone, Serialize)]
pub struct TeacherMeta {
    pub input: InputSpec,
    pub class_names: Vec<String>,
    pub framework: String,
    pub checkpoint_epoch: Option<u32>,
    pub epochs_total: Option<u32>,
    pub weights_sha256: String,
    pub dataset: Option<String>,
    pub test_top1: Option<f64>,
}

/// What a gradient graph declares on top: its `sqnorms` columns.
#[derive(Debug, Clone, Serialize)]
pub struct GradMeta {
    pub param_names: Vec<String>,
    pub last_layer_params: Vec<usize>,
}

struct Props<'a> {
    path: &'a Path,
    map: BTreeMap<String, String>,
}

impl Props<'_> {
    fn opt(&self, key: &str) -> Option<&str> {
        self.map.get(&format!("infoutil.{key}")).map(String::as_str)
    }

    fn req(&self, key: &str) -> Result<&str> {
        self.opt(key).ok_or_else(|| {
            Error::teacher(
                self.path,
                format!(
                    "metadata key 'infoutil.{key}' is missing; export teachers with export/export_teacher.py \
                     (see export/README.md for the metadata contract)"
                ),
            )
        })
    }

    fn json<T: serde::de::DeserializeOwned>(&self, key: &str) -> Result<T> {
        let raw = self.req(key)?;
        serde_json::from_str(raw).map_err(|e| {
            Error::teacher(
                self.path,
                format!("metadata 'infoutil.{key}' = {raw:?} is not valid: {e}"),
            )
        })
    }

    fn parsed<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>> {
        match self.opt(key) {
            None => Ok(None),
            Some(raw) => raw.trim().parse().map(Some).map_err(|_| {
                Error::teacher(
                    self.path,
                    format!("metadata 'infoutil.{key}' = {raw:?} is not a number"),
                )
            }),
        }
    }
}

fn props<'a>(file: &'a OnnxFile, role: &str) -> Result<Props<'a>> {
    let p = Props {
        path: &file.path,
        map: file.metadata(),
    };
    let schema = p.req("schema")?;
    if schema != SCHEMA {
        return Err(Error::teacher(
            &file.path,
            format!("metadata schema {schema:?} is not supported (this build reads {SCHEMA:?})"),
        ));
    }
    let found = p.req("role")?;
    if found != role {
        return Err(Error::teacher(
            &file.path,
            format!("this file is a {found} graph, expected a {role} graph"),
        ));
    }
    Ok(p)
}

impl TeacherMeta {
    /// Parse the metadata of a forward or gradient graph (`role` = "forward" | "grad").
    pub fn from_file(file: &OnnxFile, role: &str) -> Result<Self> {
        let p = props(file, role)?;
        let [channels, height, width]: [usize; 3] = p.json("input_shape")?;
        let normalization: Normalization = p.json("normalization")?;
        if let Normalization::MeanStd { mean, std } = &normalization {
            if mean.len() != channels || std.len() != channels || std.iter().any(|&s| s <= 0.0) {
                return Err(Error::teacher(
                    &file.path,
                    format!(
                        "normalization needs {channels} means and {channels} positive stds, found {mean:?} / {std:?}"
                    ),
                ));
            }
        }
        let meta = TeacherMeta {
            input: InputSpec {
                channels,
                height,
                width,
                normalization,
            },
            class_names: p.json("class_names")?,
            framework: p.opt("framework").unwrap_or("unknown").to_string(),
            checkpoint_epoch: p.parsed("checkpoint_epoch")?,
            epochs_total: p.parsed("epochs_total")?,
            weights_sha256: p.req("weights_sha256")?.to_string(),
            dataset: p.opt("dataset").map(str::to_string),
            test_top1: p.parsed("test_top1")?,
        };
        meta.check_graph_shapes(file, role)?;
        Ok(meta)
    }

    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// The declared input shape and class count must agree with the graph's own static shapes.
    fn check_graph_shapes(&self, file: &OnnxFile, role: &str) -> Result<()> {
        let inputs = file.input_names();
        let want_inputs: &[&str] = if role == "grad" { &["x", "y"] } else { &["x"] };
        if inputs != want_inputs {
            return Err(Error::teacher(
                &file.path,
                format!("graph inputs are {inputs:?}, expected {want_inputs:?}"),
            ));
        }
        let i = &self.input;
        let declared = [i.channels as i64, i.height as i64, i.width as i64];
        if let Some(dims) = file.dims("x") {
            let fixed = dims.len() == 4
                && dims[1..]
                    .iter()
                    .zip(declared)
                    .all(|(d, want)| d.is_none_or(|d| d == want));
            if !fixed {
                return Err(Error::teacher(
                    &file.path,
                    format!("graph input x has shape {dims:?}, but the metadata declares [N, {}, {}, {}]", i.channels, i.height, i.width),
                ));
            }
        }
        if role == "forward" {
            let outputs = file.output_names();
            if outputs.len() != 1 {
                return Err(Error::teacher(
                    &file.path,
                    format!("a forward graph has one output (logits), found {outputs:?}"),
                ));
            }
            if let Some(Some(k)) = file.dims(&outputs[0]).and_then(|d| d.get(1).copied()) {
                if k as usize != self.num_classes() {
                    return Err(Error::teacher(
                        &file.path,
                        format!(
                            "the graph outputs {k} logits but the metadata names {} classes",
                            self.num_classes()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// A gradient graph belongs to a forward graph when both declare the same weights, input
    /// and classes. `self` is the forward graph's metadata.
    pub fn check_pair(&self, grad: &TeacherMeta, grad_path: &Path) -> Result<()> {
        let differ = |what: &str, f: String, g: String| {
            Error::teacher(
                grad_path,
                format!("does not belong to its forward graph: {what} is {g} here but {f} in the forward graph"),
            )
        };
        if self.weights_sha256 != grad.weights_sha256 {
            return Err(differ(
                "the weights hash",
                self.weights_sha256.clone(),
                grad.weights_sha256.clone(),
            ));
        }
        if self.input != grad.input {
            return Err(differ(
                "the input",
                format!("{:?}", self.input),
                format!("{:?}", grad.input),
            ));
        }
        if self.class_names != grad.class_names {
            return Err(differ(
                "the class list",
                format!("{} classes {:?}", self.num_classes(), self.class_names),
                format!("{} classes {:?}", grad.num_classes(), grad.class_names),
            ));
        }
        Ok(())
    }
}

impl GradMeta {
    pub fn from_file(file: &OnnxFile) -> Result<Self> {
        let p = props(file, "grad")?;
        let meta = GradMeta {
            param_names: p.json("param_names")?,
            last_layer_params: p.json("last_layer_params")?,
        };
        let outputs = file.output_names();
        if !(outputs.iter().any(|o| o == "norms") && outputs.iter().any(|o| o == "sqnorms")) {
            return Err(Error::teacher(
                &file.path,
                format!("a gradient graph has outputs 'norms' and 'sqnorms', found {outputs:?}"),
            ));
        }
        if let Some(&bad) = meta
            .last_layer_params
            .iter()
            .find(|&&i| i >= meta.param_names.len())
        {
            return Err(Error::teacher(
                &file.path,
                format!(
                    "last_layer_params names column {bad}, but there are {} parameter tensors",
                    meta.param_names.len()
                ),
            ));
        }
        Ok(meta)
    }
}
