//! tract: the pure-Rust CPU backend. A run of tract uses one core, so the engine cuts every batch
//! into micro-batches and spreads them over cores with rayon.
//!
//! Small fixed-size micro-batches are the fast path: tract's plan for a concrete batch of 16 ran
//! the shipped ConvNet-3 1.7× faster than its plan for a symbolic batch run at 256 (650 vs 390
//! images/s per core), since the im2col buffers stay in cache. The last micro-batch is padded
//! with zeros up to the plan's size. Where tract cannot optimise a graph for a concrete batch
//! (0.23.9 fails in its `fuse` pass on the gradient graphs' average-pool backward), the engine
//! keeps a symbolic-batch plan and runs the same micro-batches through it.
//!
//! Memory: a run holds every value of the graph from the step that makes it to the step that
//! last reads it (tract frees values there), and a gradient graph keeps the forward's
//! activations for its backward, so a run's peak grows with its images and with their size:
//! 16 images of a 224-px EfficientNet-B0's gradient graph hold 4.9 GB at once, and every core
//! runs one (`teacher eval` of 20 images peaked at 14.6 GB on 2 cores). So the micro-batch is cut
//! to what fits [`RUN_MEMORY`], counted on the plan itself ([`peak_bytes`]): the 28-px teachers
//! keep 16, 224-px networks run one to a few images at a time (docs/benchmarks.md, "Teacher
//! memory by backend and resolution"). The cut depends on the graph and the image shape only,
//! never on the machine. A run of one image also makes a sample's numbers independent of where
//! it sits in a batch; in a larger run tract's kernels may round it differently by position
//! (1 ulp on 2 of 20 EfficientNet-B0 norms), though not on the shipped teacher (tested below).

use std::sync::Arc;

use ndarray::{concatenate, s, Array1, Array4, ArrayD, ArrayView1, ArrayView4, Axis};
use rayon::prelude::*;
use tract_onnx::prelude::*;

use super::engine::{Engine, Feed, InputShape};
use super::onnx_file::OnnxFile;
use crate::error::{Error, Result};

/// Images per run of the plan at most.
const MICRO_BATCH: usize = 16;

/// The most one run's values may hold at their peak, as [`peak_bytes`] counts them, before the
/// micro-batch is cut below [`MICRO_BATCH`]: 16 images of the shipped ConvNet-3's gradient graph
/// hold 51 MiB, of the 28-px zoo's at most 82 MiB (all keep 16); one 224-px image of ResNet-18's
/// 87 MiB (runs of 2), of EfficientNet-B0's 305 MiB (runs of 1). The process's peak is about
/// this times the cores, plus the plans and the batch.
pub const RUN_MEMORY: u64 = 256 << 20;

pub struct TractEngine {
    plan: Arc<TypedSimplePlan>,
    /// The batch size the plan was built for; `None` for a symbolic batch.
    fixed_batch: Option<usize>,
    /// Images per run.
    micro_batch: usize,
}

fn err(e: impl std::fmt::Display) -> Error {
    Error::backend("tract", e)
}

impl TractEngine {
    /// Build a plan for `file`, whose inputs are `inputs`: first the image input, `[N, ...dims]`
    /// with `dims` in the graph's layout (`[C, H, W]` or `[H, W, C]`), then, for gradient
    /// graphs, the labels `y` `[N]` (int64). tract binds inputs by position, so the graph's
    /// input order must be exactly `inputs`.
    pub fn load(file: &OnnxFile, inputs: &[&str], dims: [usize; 3]) -> Result<Self> {
        Self::load_within(file, inputs, dims, RUN_MEMORY)
    }

    /// [`TractEngine::load`] with micro-batches cut to `run_memory` bytes a run.
    pub fn load_within(
        file: &OnnxFile,
        inputs: &[&str],
        dims: [usize; 3],
        run_memory: u64,
    ) -> Result<Self> {
        let model = parse(file, "it")?;
        let found: Vec<&str> = model
            .input_outlets()
            .map_err(err)?
            .iter()
            .map(|o| model.node(o.node).name.as_str())
            .collect();
        if found != inputs {
            return Err(Error::teacher(
                &file.path,
                format!("tract sees the inputs {found:?} in this order, but the metadata declares {inputs:?}"),
            ));
        }
        let with_labels = inputs.len() == 2;
        let engine = Self::planned(file, model.clone(), MICRO_BATCH, dims, with_labels)?;
        let micro = engine.fitting(run_memory);
        if micro == MICRO_BATCH {
            return Ok(engine);
        }
        // Said once per graph: it explains the run's speed and memory, never its numbers.
        crate::progress::note(format!(
            "tract: {}: a run of {MICRO_BATCH} images would hold {} MiB at its peak; \
             runs of {micro} instead (each core runs one)",
            file.path.display(),
            engine.run_peak_bytes().unwrap_or(0) >> 20,
        ));
        match engine.fixed_batch {
            None => Ok(TractEngine {
                micro_batch: micro,
                ..engine
            }),
            Some(_) => Self::planned(file, model, micro, dims, with_labels),
        }
    }

    /// A plan for micro-batches of `batch` images: a concrete one, else a symbolic one.
    fn planned(
        file: &OnnxFile,
        model: InferenceModel,
        batch: usize,
        dims: [usize; 3],
        with_labels: bool,
    ) -> Result<Self> {
        if let Ok(plan) = plan(model.clone(), Some(batch), dims, with_labels) {
            return Ok(TractEngine {
                plan,
                fixed_batch: Some(batch),
                micro_batch: batch,
            });
        }
        let plan = plan(model, None, dims, with_labels)
            .map_err(|e| Error::teacher(&file.path, format!("tract cannot plan it: {e:#}")))?;
        Ok(TractEngine {
            plan,
            fixed_batch: None,
            micro_batch: batch,
        })
    }

    /// Images per run whose peak fits `run_memory` bytes: this plan's peak at its micro-batch
    /// scaled down per image (values grow with the batch; weights are not counted), at least 1.
    fn fitting(&self, run_memory: u64) -> usize {
        let Some(peak) = peak_bytes(&self.plan, self.micro_batch) else {
            return self.micro_batch;
        };
        let per_image = peak.div_ceil(self.micro_batch as u64).max(1);
        ((run_memory / per_image) as usize).clamp(1, self.micro_batch)
    }

    /// Images per run.
    #[cfg(test)]
    pub fn micro_batch(&self) -> usize {
        self.micro_batch
    }

    /// The plan's peak of live values, in bytes, for a run of its micro-batch.
    pub fn run_peak_bytes(&self) -> Option<u64> {
        peak_bytes(&self.plan, self.micro_batch)
    }

    /// A plan for a graph built around the teacher's, for inputs of exactly `shapes` (the
    /// caller feeds only those: concrete shapes are tract's fast path).
    pub fn load_derived(file: &OnnxFile, shapes: &[InputShape]) -> Result<Self> {
        let mut model = parse(file, "a graph built from it")?;
        let plan = (|| -> TractResult<_> {
            for (i, s) in shapes.iter().enumerate() {
                let fact = match s.int64 {
                    true => i64::fact(&s.dims),
                    false => f32::fact(&s.dims),
                };
                model.set_input_fact(i, fact.into())?;
            }
            model.into_optimized()?.into_runnable()
        })()
        .map_err(|e| {
            Error::teacher(
                &file.path,
                format!("tract cannot plan a graph built from it: {e:#}"),
            )
        })?;
        Ok(TractEngine {
            plan,
            fixed_batch: None,
            micro_batch: MICRO_BATCH,
        })
    }

    /// Run one micro-batch of at most `micro_batch` images, padding it to a fixed plan's size.
    fn run_micro(
        &self,
        x: ArrayView4<f32>,
        y: Option<ArrayView1<i64>>,
    ) -> Result<Vec<ArrayD<f32>>> {
        let n = x.len_of(Axis(0));
        let padded = self.fixed_batch.unwrap_or(n);
        // The padded copy is also the one contiguous copy of a permuted (NHWC) view.
        let mut xs = Array4::<f32>::zeros((padded, x.dim().1, x.dim().2, x.dim().3));
        xs.slice_mut(s![..n, .., .., ..]).assign(&x);
        let mut inputs: TVec<TValue> = tvec!(Tensor::from(xs).into_tvalue());
        if let Some(y) = y {
            let mut ys = Array1::<i64>::zeros(padded);
            ys.slice_mut(s![..n]).assign(&y);
            inputs.push(Tensor::from(ys).into_tvalue());
        }
        let outputs = self.plan.run(inputs).map_err(err)?;
        outputs
            .iter()
            .map(|o| {
                let a = o.to_plain_array_view::<f32>().map_err(err)?;
                Ok(a.slice_axis(Axis(0), (0..n).into()).to_owned())
            })
            .collect()
    }
}

/// `file`'s graph as tract reads it (its own shape annotations ignored: the plan sets them);
/// `what` names the graph in the error.
fn parse(file: &OnnxFile, what: &str) -> Result<InferenceModel> {
    let onnx = tract_onnx::onnx()
        .with_ignore_value_info(true)
        .with_ignore_output_shapes(true);
    onnx.parse(&file.proto, file.dir().to_str())
        .map(|parsed| parsed.model)
        .map_err(|e| Error::teacher(&file.path, format!("tract cannot read {what}: {e:#}")))
}

/// An optimised plan with a batch of `batch` images, or a symbolic batch `N` for `None`.
fn plan(
    mut model: InferenceModel,
    batch: Option<usize>,
    dims: [usize; 3],
    with_labels: bool,
) -> TractResult<Arc<TypedSimplePlan>> {
    let n: TDim = match batch {
        Some(b) => b.to_dim(),
        None => model.symbols.sym("N").into(),
    };
    let x_shape: TVec<TDim> = std::iter::once(n.clone())
        .chain(dims.iter().map(|&d| d.to_dim()))
        .collect();
    model.set_input_fact(0, f32::fact(x_shape).into())?;
    if with_labels {
        model.set_input_fact(1, i64::fact([n]).into())?;
    }
    model.into_optimized()?.into_runnable()
}

/// The most bytes the values of one run of `plan` hold at once, for `batch` images where the
/// batch is symbolic (`N`): tract runs the nodes in the plan's order and drops each node's
/// values after the step that last reads them (as its `build_flush_list`; a value nobody reads
/// stays to the end), and a node's inputs are held while it makes its outputs. Constants are the
/// plan's, shared by every run, and not counted. `None` where a size is not known.
fn peak_bytes(plan: &TypedSimplePlan, batch: usize) -> Option<u64> {
    let model = plan.model();
    let order = plan.order_without_consts();
    let values = SymbolValues::default().with(&model.symbols.sym("N"), batch as i64);
    let sizes: Vec<Option<u64>> = model
        .nodes()
        .iter()
        .map(|node| {
            node.outputs.iter().try_fold(0u64, |sum, o| {
                let bytes = fact_bytes(&o.fact).eval_to_i64(&values).ok()?;
                Some(sum + u64::try_from(bytes).ok()?)
            })
        })
        .collect();
    let mut last_read = vec![None; model.nodes().len()];
    for (step, &node) in order.iter().enumerate() {
        for input in &model.node(node).inputs {
            last_read[input.node] = Some(step);
        }
    }
    for output in &model.outputs {
        last_read[output.node] = None;
    }
    let mut freed = vec![0u64; order.len()];
    for &node in order {
        if let Some(step) = last_read[node] {
            freed[step] += sizes[node]?;
        }
    }
    let (mut live, mut peak) = (0u64, 0u64);
    for (step, &node) in order.iter().enumerate() {
        let made = sizes[node]?;
        if !reuses_its_input(model, node, &last_read, step) {
            peak = peak.max(live + made);
        }
        live = live + made - freed[step];
    }
    Some(peak)
}

/// The bytes of a value of `fact`: its elements, and for an exotic datum (tract's packed
/// im2col and matmul operands, one packed buffer per element of a `[batch, group]` shape) the
/// buffers of every element: `TypedFact::mem_size` counts one buffer, whatever the batch.
fn fact_bytes(fact: &TypedFact) -> TDim {
    let buffers: TDim = fact
        .exotic_fact()
        .iter()
        .flat_map(|e| e.buffer_sizes())
        .sum();
    fact.shape.volume() * (buffers + fact.datum_type.size_of())
}

/// Whether `node`, run at `step`, is a reshape of a value it is the last to read: tract then
/// moves that value's buffer into its output instead of copying it (`IntoShape` takes its
/// input by value, and the plan has dropped its own reference before the step).
fn reuses_its_input(
    model: &TypedModel,
    node: usize,
    last_read: &[Option<usize>],
    step: usize,
) -> bool {
    let node = model.node(node);
    node.op_is::<tract_onnx::tract_core::ops::change_axes::IntoShape>()
        && node.inputs.len() == 1
        && last_read[node.inputs[0].node] == Some(step)
        && model.node(node.inputs[0].node).outputs.len() == 1
}

impl Engine for TractEngine {
    fn run_feeds(&self, feeds: &[Feed]) -> Result<Vec<ArrayD<f32>>> {
        let inputs: TVec<TValue> = feeds
            .iter()
            .map(|f| match f {
                Feed::F32(a) => Tensor::from(a.to_owned()).into_tvalue(),
                Feed::I64(a) => Tensor::from(a.to_owned()).into_tvalue(),
            })
            .collect();
        let outputs = self.plan.run(inputs).map_err(err)?;
        outputs
            .iter()
            .map(|o| Ok(o.to_plain_array_view::<f32>().map_err(err)?.to_owned()))
            .collect()
    }

    fn run(&self, x: ArrayView4<f32>, y: Option<ArrayView1<i64>>) -> Result<Vec<ArrayD<f32>>> {
        let n = x.len_of(Axis(0));
        let m = self.micro_batch;
        let starts: Vec<usize> = (0..n).step_by(m).collect();
        let parts = starts
            .par_iter()
            .map(|&start| {
                let end = (start + m).min(n);
                let yb = y.as_ref().map(|y| y.slice(s![start..end]));
                self.run_micro(x.slice(s![start..end, .., .., ..]), yb)
            })
            .collect::<Result<Vec<_>>>()?;
        let outputs = parts.first().map_or(0, Vec::len);
        (0..outputs)
            .map(|i| {
                let views: Vec<_> = parts.iter().map(|p| p[i].view()).collect();
                concatenate(Axis(0), &views).map_err(err)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INPUTS: [&str; 2] = ["x", "y"];
    const DIMS: [usize; 3] = [1, 28, 28];

    fn shipped_grad() -> OnnxFile {
        OnnxFile::read(std::path::Path::new("models/fmnist-convnet3.grad.onnx")).unwrap()
    }

    /// `n` images of seeded noise in the teacher's input range, and labels of every class.
    fn batch(n: usize) -> (Array4<f32>, Array1<i64>) {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let x = Array4::from_shape_simple_fn((n, 1, 28, 28), || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 40) as f32 / (1u64 << 24) as f32 * 3.6 - 0.8
        });
        (x, (0..n as i64).map(|i| i % 10).collect())
    }

    fn bits(outputs: &[ArrayD<f32>]) -> Vec<Vec<u32>> {
        outputs
            .iter()
            .map(|a| a.iter().map(|v| v.to_bits()).collect())
            .collect()
    }

    /// A plan for fewer images a run is another plan, whose kernels may round a sample
    /// differently (tract's results depend on a sample's place in a run by float32 rounding),
    /// so the cut may move a norm by rounding, never by more.
    #[test]
    fn the_micro_batch_changes_a_norm_by_rounding_at_most() {
        let file = shipped_grad();
        let (x, y) = batch(37);
        let full = TractEngine::load(&file, &INPUTS, DIMS).unwrap();
        assert_eq!(full.micro_batch(), MICRO_BATCH, "a 28-px teacher keeps 16");
        let want = full.run(x.view(), Some(y.view())).unwrap();
        let per_image = full.run_peak_bytes().unwrap().div_ceil(MICRO_BATCH as u64);
        for images in [1, 5] {
            let cut = TractEngine::load_within(&file, &INPUTS, DIMS, per_image * images).unwrap();
            assert_eq!(cut.micro_batch(), images as usize);
            let got = cut.run(x.view(), Some(y.view())).unwrap();
            for (g, w) in got.iter().zip(&want) {
                for (a, b) in g.iter().zip(w) {
                    let rel = (a - b).abs() / b.abs().max(1e-20);
                    assert!(rel <= 2e-6, "runs of {images}: {a} against {b}");
                }
            }
        }
    }

    /// With runs of one image a sample's numbers are its own: the same bits alone, at any
    /// place in any batch (what makes a 224-px teacher's results independent of --batch-size).
    #[test]
    fn runs_of_one_image_are_independent_of_the_batch() {
        let file = shipped_grad();
        let (x, y) = batch(19);
        let one = TractEngine::load_within(&file, &INPUTS, DIMS, 1).unwrap();
        assert_eq!(one.micro_batch(), 1);
        let all = bits(&one.run(x.view(), Some(y.view())).unwrap());
        let rev = s![..;-1, .., .., ..];
        let reversed = bits(&one.run(x.slice(rev), Some(y.slice(s![..;-1]))).unwrap());
        for i in [0, 7, 18] {
            let alone = one.run(x.slice(s![i..=i, .., .., ..]), Some(y.slice(s![i..=i])));
            let alone = bits(&alone.unwrap());
            assert_eq!(alone[0][0], all[0][i], "norm of image {i}");
            assert_eq!(
                reversed[0][18 - i],
                all[0][i],
                "norm of image {i}, reversed"
            );
        }
    }

    /// The count behind the cut: a run's peak holds at least the images and grows with them
    /// (the gradient graph keeps each image's activations for its backward).
    #[test]
    fn the_peak_grows_with_the_images() {
        let file = shipped_grad();
        let full = TractEngine::load(&file, &INPUTS, DIMS).unwrap();
        let one = TractEngine::load_within(&file, &INPUTS, DIMS, 1).unwrap();
        assert_eq!(one.micro_batch(), 1);
        let (p16, p1) = (
            full.run_peak_bytes().unwrap(),
            one.run_peak_bytes().unwrap(),
        );
        assert!(p1 > 28 * 28 * 4, "one image's run peaks at {p1} B");
        assert!(
            p16 > 8 * p1 && p16 <= 16 * p1,
            "16 images peak at {p16} B, one at {p1} B"
        );
    }
}
