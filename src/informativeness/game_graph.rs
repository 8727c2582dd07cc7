//! The Shapley game as one ONNX graph around the teacher's forward graph, so that a coalition's
//! value is computed where the teacher runs: each image and its baseline go in once, the
//! coalitions as a small `[M, P]` 0/1 matrix, and only the `[N, M]` values come back. Masking
//! (the project's patch grid, exactly), the teacher and the value function are all in the graph,
//! so on a GPU nothing of size `N·M·C·H·W` crosses the bus and the host builds no masked images.
//! Both backends run the same graph; docs/backends.md explains the choice.
//!
//! ```text
//! coalitions [M, P] ─Gather(patch_of_pixel)→ keep [M, H·W] ─Reshape→ [1, M, 1, H, W] ─> 0.5
//! images [N, C, H, W] ─Unsqueeze→ [N, 1, C, H, W] ─┐
//! baselines ─────────────────────Unsqueeze────────┴ Where(keep) → [N, M, C, H, W]
//!   ─Reshape→ [N·M, C, H, W] (─Transpose→ NHWC) ─ forward graph ─→ logits [N·M, K]
//!   ─Reshape→ [N, M, K] ─(Log)Softmax?→ Where(class == label) ─ReduceSum→ values [N, M]
//! ```

use crate::teacher::onnx_proto::attribute_proto::AttributeType;
use crate::teacher::onnx_proto::tensor_proto::DataType;
use crate::teacher::onnx_proto::tensor_shape_proto::{dimension, Dimension};
use crate::teacher::onnx_proto::type_proto::{Tensor, Value as TypeValue};
use crate::teacher::onnx_proto::{
    AttributeProto, ModelProto, NodeProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto,
};
use ndarray::{s, Array1, Array2, ArrayView4, Axis, IxDyn};
use rayon::prelude::*;

use super::grid::Grid;
use super::masking::Value;
use crate::error::{Error, Result};
use crate::shapley::Coalition;
use crate::teacher::{Engine, Feed, InputShape, Layout, RowCut, Teacher};

/// The game graph's inputs, in order, and its output.
pub const INPUTS: [&str; 4] = [
    "game_images",
    "game_baselines",
    "game_coalitions",
    "game_labels",
];
pub const OUTPUT: &str = "game_values";

/// The game of `grid`'s patches with coalition value `value`, built around `forward` (the
/// teacher's forward graph, whose image input is `input_name` in `layout`, `classes` logits).
pub fn build(
    forward: &ModelProto,
    input_name: &str,
    layout: Layout,
    grid: &Grid,
    channels: usize,
    classes: usize,
    value: Value,
) -> Result<ModelProto> {
    let mut model = forward.clone();
    let graph = model
        .graph
        .as_mut()
        .ok_or_else(|| Error::Config("the forward graph has no graph".into()))?;
    let logits = match graph.output.as_slice() {
        [one] => one.name.clone(),
        other => {
            return Err(Error::Config(format!(
                "a forward graph has one output, found {}",
                other.len()
            )))
        }
    };
    let mut b = Builder::default();
    let masked = masking(&mut b, grid, channels, layout);
    values(&mut b, &logits, classes, value);

    // Splice: masking first, the forward graph reading the masked batch, the values last.
    for node in &mut graph.node {
        for i in node.input.iter_mut().filter(|i| *i == input_name) {
            *i = masked.clone();
        }
    }
    let forward_nodes = std::mem::take(&mut graph.node);
    let (head, tail) = b.nodes.split_at(b.split_at(&masked));
    graph.node = head
        .iter()
        .cloned()
        .chain(forward_nodes)
        .chain(tail.iter().cloned())
        .collect();
    graph.initializer.extend(b.initializers);
    graph.input.retain(|i| i.name != input_name);
    graph.input.splice(0..0, declared_inputs(grid, channels));
    graph.output = vec![value_info(OUTPUT, DataType::Float, &[Dim::N, Dim::M])];
    Ok(model)
}

/// The masked batch `[N·M, C, H, W]` (or NHWC) from the images, baselines and coalitions;
/// returns the name of its node's output.
fn masking(b: &mut Builder, grid: &Grid, channels: usize, layout: Layout) -> String {
    let (h, w) = (grid.height, grid.width);
    // Masking: each pixel reads its patch's column of the coalition matrix.
    let patch_of_pixel: Vec<i64> = (0..h)
        .flat_map(|y| (0..w).map(move |x| (y, x)))
        .map(|(y, x)| grid.patch_of(y, x) as i64)
        .collect();
    let pixels = b.ints("patch_of_pixel", &[(h * w) as i64], patch_of_pixel);
    let keep = b.node("Gather", &[INPUTS[2], &pixels], &[int_attr("axis", 1)]);
    let mask_shape = b.ints("mask_shape", &[5], vec![1, -1, 1, h as i64, w as i64]);
    let keep = b.node("Reshape", &[&keep, &mask_shape], &[]);
    let half = b.floats("half", &[], vec![0.5]);
    let keep = b.node("Greater", &[&keep, &half], &[]);
    let axis1 = b.ints("axis1", &[1], vec![1]);
    let images = b.node("Unsqueeze", &[INPUTS[0], &axis1], &[]);
    let baselines = b.node("Unsqueeze", &[INPUTS[1], &axis1], &[]);
    let masked = b.node("Where", &[&keep, &images, &baselines], &[]);
    let batch_shape = b.ints(
        "batch_shape",
        &[4],
        vec![-1, channels as i64, h as i64, w as i64],
    );
    let mut masked = b.node("Reshape", &[&masked, &batch_shape], &[]);
    if layout == Layout::Nhwc {
        masked = b.node(
            "Transpose",
            &[&masked],
            &[ints_attr("perm", vec![0, 2, 3, 1])],
        );
    }
    masked
}

/// The coalition values `[N, M]` from the forward graph's `logits` `[N·M, K]`, named
/// [`OUTPUT`].
fn values(b: &mut Builder, logits: &str, classes: usize, value: Value) {
    // The values: logits [N·M, K] back to [N, M, K], the label's entry of each row.
    let zero = b.ints("zero", &[1], vec![0]);
    let one = b.ints("one", &[1], vec![1]);
    let shape_images = b.node("Shape", &[INPUTS[0]], &[]);
    let n = b.node("Slice", &[&shape_images, &zero, &one], &[]);
    let shape_coalitions = b.node("Shape", &[INPUTS[2]], &[]);
    let m = b.node("Slice", &[&shape_coalitions, &zero, &one], &[]);
    let k = b.ints("classes", &[1], vec![classes as i64]);
    let nmk = b.node("Concat", &[&n, &m, &k], &[int_attr("axis", 0)]);
    let scores = b.node("Reshape", &[logits, &nmk], &[]);
    let scores = match value {
        Value::Logit => scores,
        Value::Logprob => b.node("LogSoftmax", &[&scores], &[int_attr("axis", 2)]),
        Value::Prob => b.node("Softmax", &[&scores], &[int_attr("axis", 2)]),
    };
    let label_shape = b.ints("label_shape", &[3], vec![-1, 1, 1]);
    let labels = b.node("Reshape", &[INPUTS[3], &label_shape], &[]);
    let class_ids = b.ints(
        "class_ids",
        &[1, 1, classes as i64],
        (0..classes as i64).collect(),
    );
    let is_label = b.node("Equal", &[&labels, &class_ids], &[]);
    let nothing = b.floats("nothing", &[], vec![0.0]);
    let picked = b.node("Where", &[&is_label, &scores, &nothing], &[]);
    let axis2 = b.ints("axis2", &[1], vec![2]);
    let values = b.node("ReduceSum", &[&picked, &axis2], &[int_attr("keepdims", 0)]);
    b.rename_last(&values, OUTPUT);
}

/// The game graph's inputs as declared: images and baselines `[N, C, H, W]`, coalitions
/// `[M, P]`, labels `[N]`.
fn declared_inputs(grid: &Grid, channels: usize) -> Vec<ValueInfoProto> {
    let (h, w) = (grid.height, grid.width);
    let dims = |d: &[Dim]| d.to_vec();
    let inputs = [
        (
            INPUTS[0],
            DataType::Float,
            dims(&[Dim::N, Dim::Fixed(channels), Dim::Fixed(h), Dim::Fixed(w)]),
        ),
        (
            INPUTS[1],
            DataType::Float,
            dims(&[Dim::N, Dim::Fixed(channels), Dim::Fixed(h), Dim::Fixed(w)]),
        ),
        (
            INPUTS[2],
            DataType::Float,
            dims(&[Dim::M, Dim::Fixed(grid.players())]),
        ),
        (INPUTS[3], DataType::Int64, dims(&[Dim::N])),
    ];
    inputs
        .into_iter()
        .map(|(name, ty, d)| value_info(name, ty, &d))
        .collect()
}

/// A teacher's game graph, loaded: evaluates coalitions of many images in one call.
pub struct GameGraph {
    engine: std::sync::Arc<dyn Engine>,
    players: usize,
    /// How the teacher's backend wants runs cut (images × coalitions).
    cut: RowCut,
}

impl GameGraph {
    /// The game graph of `teacher` on `grid` with `value`, built on first use and kept by the
    /// teacher.
    pub fn load(teacher: &Teacher, grid: &Grid, value: Value) -> Result<GameGraph> {
        let meta = &teacher.meta;
        let c = meta.input.channels;
        let cut = teacher.row_cut();
        let f32s = |dims: Vec<usize>| InputShape { int64: false, dims };
        let shapes = match cut.fixed_rows() {
            Some(m) => vec![
                f32s(vec![1, c, grid.height, grid.width]),
                f32s(vec![1, c, grid.height, grid.width]),
                f32s(vec![m, grid.players()]),
                InputShape {
                    int64: true,
                    dims: vec![1],
                },
            ],
            None => Vec::new(),
        };
        let key = format!("game {grid:?} {value:?}");
        let make = |forward: &ModelProto| {
            let k = teacher.num_classes();
            let proto = build(forward, &meta.input_name, meta.layout, grid, c, k, value)?;
            Ok((proto, shapes))
        };
        Ok(GameGraph {
            engine: teacher.derived_engine(&key, make, &INPUTS)?,
            players: grid.players(),
            cut,
        })
    }

    /// The value of each coalition for each image, `[n, m]`: image i with the patches outside
    /// coalition k taken from `baselines[i]`, as the teacher scores `labels[i]`.
    pub fn values(
        &self,
        images: ArrayView4<f32>,
        baselines: ArrayView4<f32>,
        coalitions: &[Coalition],
        labels: &[usize],
    ) -> Result<Array2<f64>> {
        let (n, m) = (images.len_of(Axis(0)), coalitions.len());
        // Runs of at most a batch of masked images (the teacher's activations scale with it),
        // coalition chunks of `per_image` rows, the last one padded where shapes are fixed.
        let (per_image, per_run, padded) = self.cut.cut(m);
        let mut matrix = Array2::<f32>::zeros((padded, self.players));
        for (k, &s) in coalitions.iter().enumerate() {
            for p in 0..self.players {
                matrix[[k, p]] = (s >> p & 1) as f32;
            }
        }
        let labels: Array1<i64> = labels.iter().map(|&c| c as i64).collect();
        let jobs: Vec<(usize, usize)> = (0..n)
            .step_by(per_run)
            .flat_map(|i| (0..padded).step_by(per_image).map(move |k| (i, k)))
            .collect();
        let run = |&(i, k): &(usize, usize)| {
            let (i1, k1) = ((i + per_run).min(n), (k + per_image).min(padded));
            self.run(
                images.slice(s![i..i1, .., .., ..]),
                baselines.slice(s![i..i1, .., .., ..]),
                matrix.slice(s![k..k1, ..]),
                labels.slice(s![i..i1]),
            )
        };
        let parts = match self.cut.concurrent() {
            true => jobs.par_iter().map(run).collect::<Result<Vec<_>>>()?,
            false => jobs.iter().map(run).collect::<Result<Vec<_>>>()?,
        };
        let mut out = Array2::zeros((n, m));
        for (&(i, k), part) in jobs.iter().zip(parts) {
            let end = (k + per_image).min(m);
            if k < end {
                let rows = part.nrows();
                out.slice_mut(s![i..i + rows, k..end])
                    .assign(&part.slice(s![.., ..end - k]));
            }
        }
        Ok(out)
    }

    fn run(
        &self,
        images: ArrayView4<f32>,
        baselines: ArrayView4<f32>,
        coalitions: ndarray::ArrayView2<f32>,
        labels: ndarray::ArrayView1<i64>,
    ) -> Result<Array2<f64>> {
        let feeds = [
            Feed::F32(images.into_dyn()),
            Feed::F32(baselines.into_dyn()),
            Feed::F32(coalitions.into_dyn()),
            Feed::I64(labels.into_dyn()),
        ];
        let out = self.engine.run_feeds(&feeds)?;
        let values = out
            .into_iter()
            .next()
            .ok_or_else(|| Error::backend("game graph", "no output"))?;
        let want = IxDyn(&[images.len_of(Axis(0)), coalitions.nrows()]);
        let values = values
            .into_shape_with_order(want.clone())
            .map_err(|e| Error::backend("game graph", format!("values are not {want:?}: {e}")))?;
        Ok(values
            .into_dimensionality::<ndarray::Ix2>()
            .expect("two axes")
            .mapv(f64::from))
    }
}

#[derive(Debug, Clone, Copy)]
enum Dim {
    N,
    M,
    Fixed(usize),
}

fn value_info(name: &str, ty: DataType, dims: &[Dim]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| Dimension {
            denotation: String::new(),
            value: Some(match d {
                Dim::N => dimension::Value::DimParam("N".into()),
                Dim::M => dimension::Value::DimParam("M".into()),
                Dim::Fixed(v) => dimension::Value::DimValue(*v as i64),
            }),
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            denotation: String::new(),
            value: Some(TypeValue::TensorType(Tensor {
                elem_type: ty as i32,
                shape: Some(TensorShapeProto { dim }),
            })),
        }),
        doc_string: String::new(),
    }
}

fn int_attr(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Int as i32,
        i: v,
        ..Default::default()
    }
}

fn ints_attr(name: &str, v: Vec<i64>) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: AttributeType::Ints as i32,
        ints: v,
        ..Default::default()
    }
}

/// Nodes and constants under one name prefix, so nothing collides with the forward graph's.
#[derive(Default)]
struct Builder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
}

impl Builder {
    const PREFIX: &'static str = "infoutil_game/";

    fn node(&mut self, op: &str, inputs: &[&str], attrs: &[AttributeProto]) -> String {
        let out = format!("{}{}_{}", Self::PREFIX, op.to_lowercase(), self.nodes.len());
        self.nodes.push(NodeProto {
            name: out.clone(),
            op_type: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            attribute: attrs.to_vec(),
            ..Default::default()
        });
        out
    }

    fn ints(&mut self, name: &str, dims: &[i64], v: Vec<i64>) -> String {
        let name = format!("{}{name}", Self::PREFIX);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: dims.to_vec(),
            data_type: DataType::Int64 as i32,
            int64_data: v,
            ..Default::default()
        });
        name
    }

    fn floats(&mut self, name: &str, dims: &[i64], v: Vec<f32>) -> String {
        let name = format!("{}{name}", Self::PREFIX);
        self.initializers.push(TensorProto {
            name: name.clone(),
            dims: dims.to_vec(),
            data_type: DataType::Float as i32,
            float_data: v,
            ..Default::default()
        });
        name
    }

    /// Give the last node's output the graph output's name.
    fn rename_last(&mut self, from: &str, to: &str) {
        let last = self.nodes.last_mut().expect("a node");
        assert_eq!(last.output[0], from);
        last.output[0] = to.into();
    }

    /// Nodes up to and including the one that makes `tensor` (the masked batch).
    fn split_at(&self, tensor: &str) -> usize {
        1 + self
            .nodes
            .iter()
            .position(|n| n.output[0] == tensor)
            .expect("built here")
    }
}
