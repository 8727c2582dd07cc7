//! The teacher metadata contract (`infoutil.*` keys in ONNX `metadata_props`), written by
//! `export/` and documented in export/README.md.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::ArrayView4;
use serde::Serialize;

use super::onnx_file::OnnxFile;
use crate::data::preprocess::{InputSpec, Normalization, Resize};
use crate::error::{Error, Result};

pub const SCHEMA: &str = "1";

/// The image input's name when a file does not declare `infoutil.input_name`.
pub const DEFAULT_INPUT_NAME: &str = "x";

/// The axis order of a graph's image input (`infoutil.layout`). The library's batches are
/// always `[N, C, H, W]`; [`Layout::graph_view`] turns them into what the graph takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub enum Layout {
    /// `[N, C, H, W]`, channels first (PyTorch): the default.
    #[default]
    #[serde(rename = "NCHW")]
    Nchw,
    /// `[N, H, W, C]`, channels last (Keras, TensorFlow).
    #[serde(rename = "NHWC")]
    Nhwc,
}

impl Layout {
    /// The values `infoutil.layout` accepts.
    pub const ACCEPTED: [&'static str; 2] = ["NCHW", "NHWC"];

    pub fn as_str(self) -> &'static str {
        match self {
            Layout::Nchw => "NCHW",
            Layout::Nhwc => "NHWC",
        }
    }

    fn parse(raw: &str) -> Option<Layout> {
        match raw {
            "NCHW" => Some(Layout::Nchw),
            "NHWC" => Some(Layout::Nhwc),
            _ => None,
        }
    }

    /// The graph input's dimensions after the batch axis, for an input of `[C, H, W]`.
    pub fn dims(self, [c, h, w]: [usize; 3]) -> [usize; 3] {
        match self {
            Layout::Nchw => [c, h, w],
            Layout::Nhwc => [h, w, c],
        }
    }

    /// An `[N, C, H, W]` batch in the graph's axis order, as a view (no copy). The engines make
    /// the one contiguous copy a permuted view needs when they hand it to the backend.
    pub fn graph_view(self, x: ArrayView4<'_, f32>) -> ArrayView4<'_, f32> {
        match self {
            Layout::Nchw => x,
            Layout::Nhwc => x.permuted_axes([0, 2, 3, 1]),
        }
    }
}

/// Where an error about a graph's inputs sends the user.
const INPUT_HINT: &str = "declare the image input's name with infoutil.input_name (and \
     infoutil.layout = \"NHWC\" for a channels-last graph), e.g. by exporting the teacher with \
     `python export/from_onnx.py SRC.onnx --out-dir DIR --name NAME ...`; see the metadata \
     contract in export/README.md";

/// What a teacher declares about itself.
#[derive(Debug, Clone, Serialize)]
pub struct TeacherMeta {
    pub input: InputSpec,
    /// The name of this file's image input (`infoutil.input_name`, default "x"); a forward and
    /// its gradient graph may name it differently.
    pub input_name: String,
    /// The axis order of the image input (`infoutil.layout`, default NCHW); the same in both
    /// files of a teacher.
    pub layout: Layout,
    pub class_names: Vec<String>,
    pub framework: String,
    pub checkpoint_epoch: Option<u32>,
    pub epochs_total: Option<u32>,
    pub weights_sha256: String,
    pub dataset: Option<String>,
    pub test_top1: Option<f64>,
    /// The number format inside the graph (`infoutil.precision`, default fp32).
    pub precision: Precision,
    /// A converted (fp16) graph's hash of its own weights (`infoutil.converted_weights_sha256`),
    /// present exactly when `precision` is fp16; `weights_sha256` stays that of the float32
    /// weights it was made from.
    pub converted_weights_sha256: Option<String>,
}

/// The number format of a forward graph's weights and arithmetic: float32 as exported, or
/// float16 as export/convert_precision.py makes it (float32 input and logits either way). Only a
/// forward graph may be converted: squared gradient norms overflow float16.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    #[default]
    Fp32,
    Fp16,
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

/// `infoutil.precision` (fp32 when absent; fp16 in a forward graph only) and, with fp16, the
/// `infoutil.converted_weights_sha256` such a graph must declare.
fn precision(p: &Props, role: &str) -> Result<(Precision, Option<String>)> {
    match p.opt("precision") {
        None | Some("fp32") => Ok((Precision::Fp32, None)),
        Some("fp16") if role == "forward" => Ok((
            Precision::Fp16,
            Some(p.req("converted_weights_sha256")?.to_string()),
        )),
        Some("fp16") => Err(Error::teacher(
            p.path,
            format!(
                "a {role} graph in float16 ('infoutil.precision' = \"fp16\") is not supported: \
                 squared gradient norms overflow float16; export/convert_precision.py converts \
                 the forward graph only and keeps the others in float32"
            ),
        )),
        Some(other) => Err(Error::teacher(
            p.path,
            format!(
                "metadata 'infoutil.precision' = {other:?}: this build reads \"fp32\" or \"fp16\""
            ),
        )),
    }
}

/// The smallest and largest normalisation std accepted: a std below 1e-6 (1e-40 parses to a
/// float32 subnormal) turns pixel steps into values past 1e6, and one above 1e6 (1e39 parses to
/// inf) makes every input constant; neither is a teacher's.
const STD_RANGE: (f32, f32) = (1e-6, 1e6);

/// Means and stds of `infoutil.normalization`: finite, means within ±1e6, stds in [`STD_RANGE`].
fn check_normalization(path: &Path, mean: &[f32], std: &[f32]) -> Result<()> {
    let bad = |what: &str, c: usize, v: f32, expected: &str| {
        Err(Error::teacher(
            path,
            format!(
                "metadata 'infoutil.normalization' {what}[{c}] is {v}, expected {expected} \
                 (a number this large or small came from a typo or an overflow)"
            ),
        ))
    };
    if let Some((c, &v)) = mean
        .iter()
        .enumerate()
        .find(|(_, m)| !m.is_finite() || m.abs() > 1e6)
    {
        return bad("mean", c, v, "a finite number between -1e6 and 1e6");
    }
    let (lo, hi) = STD_RANGE;
    if let Some((c, &v)) = std
        .iter()
        .enumerate()
        .find(|(_, s)| !s.is_finite() || **s < lo || **s > hi)
    {
        return bad("std", c, v, "a finite number between 1e-6 and 1e6");
    }
    Ok(())
}

/// `infoutil.input_shape` `[C, H, W]`: each in range, as a header's dimensions are.
fn check_input_shape(path: &Path, [c, h, w]: [usize; 3]) -> Result<()> {
    let field = |name, v: usize| (name, v as u64);
    crate::input::image(
        Path::new("metadata 'infoutil.input_shape'"),
        field("channels", c),
        field("height", h),
        field("width", w),
    )
    .map(|_| ())
    .map_err(|e| Error::teacher(path, e.to_string()))
}

/// The declared input: `[C, H, W]`, a normalisation with C positive scales, a resize that
/// covers the crop.
fn input_spec(p: &Props, file: &OnnxFile) -> Result<InputSpec> {
    let [channels, height, width]: [usize; 3] = p.json("input_shape")?;
    let normalization: Normalization = p.json("normalization")?;
    check_input_shape(&file.path, [channels, height, width])?;
    if let Normalization::MeanStd { mean, std } = &normalization {
        if mean.len() != channels || std.len() != channels {
            return Err(Error::teacher(
                    &file.path,
                    format!(
                        "normalization needs {channels} means and {channels} positive stds, found {mean:?} / {std:?}"
                    ),
                ));
        }
        check_normalization(&file.path, mean, std)?;
    }
    let resize = match p.opt("resize") {
        None => Resize::Stretch,
        Some(_) => p.json("resize")?,
    };
    if let Resize::ShorterSide { size } = resize {
        if size as u64 > crate::input::MAX_SIDE {
            return Err(Error::teacher(
                &file.path,
                format!(
                    "metadata 'infoutil.resize' scales the shorter side to {size}; expected at \
                     most {}",
                    crate::input::MAX_SIDE
                ),
            ));
        }
        if size < height.max(width) {
            return Err(Error::teacher(
                &file.path,
                format!(
                    "metadata 'infoutil.resize' scales the shorter side to {size}, smaller \
                         than the {height}×{width} centre crop; the size must be at least {}",
                    height.max(width)
                ),
            ));
        }
    }
    Ok(InputSpec {
        channels,
        height,
        width,
        resize,
        normalization,
    })
}

/// `infoutil.class_names`: distinct, non-empty names, since data is matched to classes by name
/// (image folders, HDF5 `class_names`, CIFAR meta files): two classes of one name would make
/// that match ambiguous, and an empty name matches nothing. Found by scripts/probe_hostile.py
/// (ten classes named "x" were accepted).
fn class_names(p: &Props) -> Result<Vec<String>> {
    let names: Vec<String> = p.json("class_names")?;
    let bad = |what: String| {
        Err(Error::teacher(
            p.path,
            format!("metadata 'infoutil.class_names' {what}; expected distinct, non-empty names"),
        ))
    };
    for (i, name) in names.iter().enumerate() {
        if name.trim().is_empty() {
            return bad(format!("names class {i} {name:?}"));
        }
        if let Some(j) = names[..i].iter().position(|n| n == name) {
            return bad(format!("names classes {j} and {i} both {name:?}"));
        }
    }
    Ok(names)
}

/// The declared layout of the image input (NCHW when none is).
fn layout(p: &Props, file: &OnnxFile) -> Result<Layout> {
    Ok(match p.opt("layout") {
        None => Layout::default(),
        Some(raw) => Layout::parse(raw).ok_or_else(|| {
            Error::teacher(
                &file.path,
                format!(
                    "metadata 'infoutil.layout' = {raw:?} is not a layout this build reads; \
                         accepted values: {:?} (the default) or {:?}",
                    Layout::ACCEPTED[0],
                    Layout::ACCEPTED[1]
                ),
            )
        })?,
    })
}

impl TeacherMeta {
    /// Parse the metadata of a teacher's graph (`role` = "forward" | "grad" | "cam").
    pub fn from_file(file: &OnnxFile, role: &str) -> Result<Self> {
        let p = props(file, role)?;
        let input = input_spec(&p, file)?;
        let declared_name = p.opt("input_name");
        let input_name = declared_name.unwrap_or(DEFAULT_INPUT_NAME).to_string();
        if input_name.is_empty() {
            return Err(Error::teacher(
                &file.path,
                "metadata 'infoutil.input_name' is empty; it names the graph's image input",
            ));
        }
        let layout = layout(&p, file)?;
        let (precision, converted_weights_sha256) = precision(&p, role)?;
        let meta = TeacherMeta {
            input,
            input_name,
            layout,
            class_names: class_names(&p)?,
            framework: p.opt("framework").unwrap_or("unknown").to_string(),
            checkpoint_epoch: p.parsed("checkpoint_epoch")?,
            epochs_total: p.parsed("epochs_total")?,
            weights_sha256: p.req("weights_sha256")?.to_string(),
            dataset: p.opt("dataset").map(str::to_string),
            test_top1: p.parsed("test_top1")?,
            precision,
            converted_weights_sha256,
        };
        meta.check_graph_shapes(file, role, declared_name.is_some())?;
        Ok(meta)
    }

    pub fn num_classes(&self) -> usize {
        self.class_names.len()
    }

    /// The graph's inputs, their names, its input shape (in the declared layout) and its class
    /// count must agree with the metadata. `name_declared`: whether the file sets
    /// `infoutil.input_name` (else the default "x" was assumed).
    fn check_graph_shapes(&self, file: &OnnxFile, role: &str, name_declared: bool) -> Result<()> {
        self.check_input_names(file, role, name_declared)?;
        self.check_input_shape(file)?;
        if role == "forward" {
            self.check_logits(file)?;
        }
        Ok(())
    }

    /// The graph's inputs are the declared image input (and "y" for a graph that explains a
    /// class).
    fn check_input_names(&self, file: &OnnxFile, role: &str, name_declared: bool) -> Result<()> {
        let inputs = file.input_names();
        let name = self.input_name.as_str();
        // The graphs that explain a class (gradient, Grad-CAM) also take its labels.
        let labelled = role != "forward";
        let want_inputs: Vec<&str> = if labelled {
            vec![name, "y"]
        } else {
            vec![name]
        };
        if inputs != want_inputs {
            let source = if name_declared {
                format!("infoutil.input_name = {name:?}")
            } else {
                format!("no infoutil.input_name, so the default {DEFAULT_INPUT_NAME:?}")
            };
            let what = if labelled {
                "the image input, then the labels \"y\""
            } else {
                "the image input"
            };
            return Err(Error::teacher(
                &file.path,
                format!(
                    "graph inputs are {inputs:?}, but the metadata declares {want_inputs:?} \
                     ({what}; {source}): {INPUT_HINT}"
                ),
            ));
        }
        Ok(())
    }

    /// The image input's shape, where the graph fixes it, is the declared one in its layout.
    fn check_input_shape(&self, file: &OnnxFile) -> Result<()> {
        let name = self.input_name.as_str();
        let i = &self.input;
        let chw = [i.channels, i.height, i.width];
        let want = self.layout.dims(chw);
        let show = |d: &[usize]| format!("[N, {}, {}, {}]", d[0], d[1], d[2]);
        if let Some(dims) = file.dims(name) {
            let fits = |want: [usize; 3]| {
                dims.len() == 4
                    && dims[1..]
                        .iter()
                        .zip(want)
                        .all(|(d, w)| d.is_none_or(|d| d == w as i64))
            };
            if !fits(want) {
                let found: Vec<String> = dims
                    .iter()
                    .map(|d| d.map_or("?".to_string(), |v| v.to_string()))
                    .collect();
                let other = match self.layout {
                    Layout::Nchw => Layout::Nhwc,
                    Layout::Nhwc => Layout::Nchw,
                };
                let hint = if fits(other.dims(chw)) && want != other.dims(chw) {
                    format!(
                        "; the graph looks {}: declare infoutil.layout = {:?} (see export/README.md)",
                        other.as_str(),
                        other.as_str()
                    )
                } else {
                    String::new()
                };
                return Err(Error::teacher(
                    &file.path,
                    format!(
                        "graph input {name} has shape [{}], but the metadata declares {} \
                         (infoutil.input_shape [C, H, W] = [{}, {}, {}], layout {}){hint}",
                        found.join(", "),
                        show(&want),
                        i.channels,
                        i.height,
                        i.width,
                        self.layout.as_str()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// A forward graph has one output, logits of the declared classes.
    fn check_logits(&self, file: &OnnxFile) -> Result<()> {
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
        Ok(())
    }

    /// A gradient graph belongs to a forward graph when both declare the same weights, input
    /// (shape, normalisation and layout) and classes; the input's name may differ. `self` is
    /// the forward graph's metadata.
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
        if self.layout != grad.layout {
            return Err(differ(
                "the input layout (infoutil.layout)",
                self.layout.as_str().to_string(),
                grad.layout.as_str().to_string(),
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

/// What a Grad-CAM graph declares beyond the shared keys: the layer it opens.
#[derive(Debug, Clone)]
pub struct CamMeta {
    /// The layer whose activations and gradients the graph returns (`infoutil.cam_layer`).
    pub layer: String,
}

impl CamMeta {
    /// The outputs a Grad-CAM graph returns, in this order.
    pub const OUTPUTS: [&'static str; 2] = ["activations", "gradients"];

    pub fn from_file(file: &OnnxFile) -> Result<Self> {
        let p = props(file, "cam")?;
        let meta = CamMeta {
            layer: p.req("cam_layer")?.to_string(),
        };
        let outputs = file.output_names();
        if outputs != Self::OUTPUTS {
            return Err(Error::teacher(
                &file.path,
                format!(
                    "a Grad-CAM graph has outputs {:?}, found {outputs:?}",
                    Self::OUTPUTS
                ),
            ));
        }
        Ok(meta)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array4;

    /// Checked with C > 1: the shipped teachers have C = 1, where NCHW and NHWC share one memory
    /// order, so the teacher tests cannot tell a permutation from a reshape; this test can.
    #[test]
    fn nhwc_view_permutes_channels_last() {
        let x = Array4::from_shape_fn((2, 3, 4, 5), |(n, c, h, w)| {
            (n * 1000 + c * 100 + h * 10 + w) as f32
        });
        let v = Layout::Nhwc.graph_view(x.view());
        assert_eq!(v.dim(), (2, 4, 5, 3));
        let flat = v.as_standard_layout();
        let flat = flat.as_slice().unwrap();
        for (i, &got) in flat.iter().enumerate() {
            let (n, h, w, c) = (i / 60, i / 15 % 4, i / 3 % 5, i % 3);
            assert_eq!(got, x[[n, c, h, w]], "[{n}, {h}, {w}, {c}]");
        }
        assert_eq!(Layout::Nhwc.dims([3, 4, 5]), [4, 5, 3]);
        // NCHW is the batch itself: no copy needed.
        let same = Layout::Nchw.graph_view(x.view());
        assert_eq!(same.as_ptr(), x.as_ptr());
        assert!(same.is_standard_layout());
    }
}
