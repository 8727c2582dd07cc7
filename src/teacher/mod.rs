//! A teacher: a forward graph (logits) and, beside it, a gradient graph (per-sample gradient
//! norms), both ONNX with the metadata contract of export/README.md, run by tract or ONNX
//! Runtime. Nothing above this module knows which backend runs.

pub mod binding;
mod cam;
pub mod engine;
pub mod meta;
pub mod onnx_file;
#[cfg(feature = "cuda")]
mod ort_cuda;
mod ort_engine;
pub use ort_engine::{
    describe as describe_ort, describe_cuda as describe_ort_cuda, library_path as ort_library_path,
};
mod probe;
pub mod siblings;
mod tract_device;
mod tract_engine;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use ndarray::{concatenate, s, Array1, Array2, ArrayD, ArrayView1, ArrayView4, Axis, Ix1, Ix2};
use rayon::prelude::*;

pub use cam::CamParts;
pub use engine::{BackendChoice, CudaOptions, Device, Engine, Feed, InputShape, Placement};
pub use meta::{CamMeta, GradMeta, Layout, Precision, TeacherMeta};
use onnx_file::OnnxFile;
pub use siblings::{cam_path, grad_path};

use crate::data::reader::label_problem;
use crate::error::{Error, Result};

/// The ONNX protobuf messages, for graphs built around a teacher's forward graph (the game
/// graph): which crate parses ONNX is the teacher's business, so the others name them here.
pub use tract_onnx::pb as onnx_proto;

/// How to load and run a teacher.
#[derive(Debug, Clone)]
pub struct TeacherOptions {
    pub backend: BackendChoice,
    pub device: Device,
    /// Images per backend call.
    pub batch_size: usize,
    /// ONNX Runtime library; default `ORT_DYLIB_PATH`.
    pub ort_library: Option<PathBuf>,
    /// ONNX Runtime sessions per graph that run batches at once, sharing the threads.
    pub ort_sessions: usize,
    /// Which GPU and how much of its memory, with `Device::Cuda`.
    pub cuda: CudaOptions,
}

impl Default for TeacherOptions {
    fn default() -> Self {
        TeacherOptions {
            backend: BackendChoice::Auto,
            device: Device::Cpu,
            batch_size: Device::Cpu.default_batch_size(),
            ort_library: None,
            ort_sessions: 1,
            cuda: CudaOptions::default(),
        }
    }
}

/// Per-sample gradient norms: the full norm and the squared norm of each parameter tensor.
#[derive(Debug, Clone)]
pub struct GradNorms {
    pub norms: Array1<f32>,
    /// `[N, P]`, columns named by [`GradMeta::param_names`].
    pub sqnorms: Array2<f32>,
}

struct GradGraph {
    file: OnnxFile,
    meta: GradMeta,
    engine: Box<dyn Engine>,
}

pub struct Teacher {
    pub meta: TeacherMeta,
    pub path: PathBuf,
    /// SHA-256 of the forward graph file.
    pub file_sha256: String,
    /// Which backend runs, in words (e.g. "tract (cpu)").
    pub backend: String,
    /// The op that makes the forward graph's output (e.g. "Gemm", "Softmax"), if found.
    pub output_op: Option<String>,
    /// Why `auto` did not pick ONNX Runtime, when it did not.
    pub backend_note: Option<String>,
    forward: Box<dyn Engine>,
    /// The gradient graph, or why there is none (worded to follow "teacher PATH: ").
    grad: std::result::Result<GradGraph, String>,
    /// The Grad-CAM graph, loaded on first use (most runs never need it), or why it cannot be.
    cam: OnceLock<std::result::Result<cam::CamGraph, String>>,
    loader: Loader,
    /// The siblings' weights hashes the forward graph lists (binding.rs).
    siblings: binding::Siblings,
    /// Engines of graphs built around the forward graph, by what built them (see
    /// [`Teacher::derived_engine`]).
    derived: Mutex<HashMap<String, Arc<dyn Engine>>>,
    batch_size: usize,
}

#[derive(Debug, Clone, Copy)]
enum Resolved {
    Tract,
    Ort,
    /// tract planned by a device runtime (`tract_device`): `--backend tract --device cuda`.
    TractDevice,
}

/// How this teacher's graphs become engines: the resolved backend and the shared image input.
struct Loader {
    backend: Resolved,
    place: Placement,
    ort_library: Option<PathBuf>,
    ort_sessions: usize,
    /// The image input's dimensions after the batch axis, in the graph's layout (every graph of
    /// a teacher shares it, checked by `check_pair`); its name is per file.
    dims: [usize; 3],
}

impl Loader {
    /// An engine for `file`, whose inputs are the image `input` and, for the graphs that
    /// explain a class (gradient, Grad-CAM), the labels `y`.
    fn engine(&self, file: &OnnxFile, input: &str, labels: bool) -> Result<Box<dyn Engine>> {
        let inputs: Vec<&str> = if labels {
            vec![input, "y"]
        } else {
            vec![input]
        };
        Ok(match self.backend {
            Resolved::Tract => Box::new(tract_engine::TractEngine::load(file, &inputs, self.dims)?),
            Resolved::Ort => self.ort(file, &inputs)?,
            Resolved::TractDevice => {
                Box::new(tract_device::TractDeviceEngine::load(file, &inputs)?)
            }
        })
    }

    /// ONNX Runtime sessions for `file`, fed by input name.
    fn ort(&self, file: &OnnxFile, inputs: &[&str]) -> Result<Box<dyn Engine>> {
        Ok(Box::new(ort_engine::OrtEngine::load(
            file,
            inputs,
            self.place,
            self.ort_library.as_deref(),
            self.ort_sessions,
        )?))
    }

    /// An engine for a graph built in memory around one of the teacher's: by name on ONNX
    /// Runtime, planned for exactly `shapes` on tract.
    fn derived(
        &self,
        file: &OnnxFile,
        inputs: &[&str],
        shapes: &[InputShape],
    ) -> Result<Box<dyn Engine>> {
        Ok(match self.backend {
            Resolved::Tract => Box::new(tract_engine::TractEngine::load_derived(file, shapes)?),
            Resolved::Ort => self.ort(file, inputs)?,
            Resolved::TractDevice => Box::new(tract_device::TractDeviceEngine::load_derived(file)?),
        })
    }

    /// A graph of `role` that must belong to the forward graph `forward`, which lists
    /// `siblings`: its file, metadata and engine.
    fn sibling(
        &self,
        path: &Path,
        role: &str,
        (forward, siblings): (&TeacherMeta, &binding::Siblings),
    ) -> Result<(OnnxFile, Box<dyn Engine>)> {
        let file = OnnxFile::read(path)?;
        let meta = TeacherMeta::from_file(&file, role)?;
        forward.check_pair(&meta, path)?;
        siblings.check(&file, role)?;
        let engine = self.engine(&file, &meta.input_name, true)?;
        Ok((file, engine))
    }
}

/// `--backend tract --device cuda`: tract-cuda, in a build with it (or tract's CPU runtime standing
/// in for it, named as such); never the plain CPU engine.
fn tract_device_backend(opts: &TeacherOptions) -> Result<(Resolved, Option<String>)> {
    if !cfg!(feature = "cuda-tract") && tract_device::stand_in().is_none() {
        return Err(Error::Config(
            "this build of infoutil runs tract on the CPU only; rebuild with --features \
             cuda-tract for `backend` tract `device` cuda, or use `backend` ort"
                .into(),
        ));
    }
    if opts.cuda.device_id != 0 || opts.cuda.memory_limit_mib.is_some() {
        return Err(Error::Config(
            "tract's CUDA runtime uses the first visible GPU and its own memory pool: choose the \
             GPU with CUDA_VISIBLE_DEVICES instead of `cuda_device`, and drop \
             `cuda_memory_limit` (ONNX Runtime's)"
                .into(),
        ));
    }
    tract_device::runtime()?;
    Ok((Resolved::TractDevice, None))
}

fn resolve_backend(opts: &TeacherOptions) -> Result<(Resolved, Option<String>)> {
    if opts.device == Device::Cpu && !opts.cuda.is_default() {
        return Err(Error::Config(
            "`cuda_device` and `cuda_memory_limit` choose a GPU's share: they need `device` cuda"
                .into(),
        ));
    }
    if opts.cuda.memory_limit_mib == Some(0) {
        return Err(Error::Config(
            "`cuda_memory_limit` 0: give the limit in MiB, at least 1 (omit it for no limit)"
                .into(),
        ));
    }
    match (opts.backend, opts.device) {
        (BackendChoice::Tract, Device::Cuda) => tract_device_backend(opts),
        (BackendChoice::Tract, Device::Cpu) => Ok((Resolved::Tract, None)),
        (BackendChoice::Ort, _) => {
            ort_engine::environment(opts.ort_library.as_deref())?;
            Ok((Resolved::Ort, None))
        }
        (BackendChoice::Auto, device) => {
            match ort_engine::environment(opts.ort_library.as_deref()) {
                Ok(_) => Ok((Resolved::Ort, None)),
                // Never fall back to the CPU when CUDA was asked for.
                Err(e) if device == Device::Cuda => Err(e),
                Err(e) => Ok((Resolved::Tract, Some(e.to_string()))),
            }
        }
    }
}

/// Rows per run on tract, whose plans want concrete shapes: 16 masked images per run is its
/// fast path for the shipped teacher (tract_engine.rs).
const TRACT_ROWS: usize = 16;

/// How the runs of a graph over items × rows (the game graph: images × coalitions) are cut on
/// a teacher's backend: the graph asks, the teacher knows.
#[derive(Debug, Clone, Copy)]
pub struct RowCut {
    /// Rows of one item per run where the backend plans for concrete shapes.
    fixed: Option<usize>,
    /// Otherwise, at most this many rows per run (the teacher's batch size).
    batch: usize,
    concurrent: bool,
}

impl RowCut {
    /// Rows per run where every run has the same shape (one item and this many rows: declare
    /// the graph's inputs so); None where runs take any number of items and rows.
    pub fn fixed_rows(&self) -> Option<usize> {
        self.fixed
    }

    /// For `m` rows per item: (rows of one item per run, items per run, the rows padded to
    /// whole runs where shapes are fixed).
    pub fn cut(&self, m: usize) -> (usize, usize, usize) {
        match self.fixed {
            Some(fixed) => (fixed, 1, m.div_ceil(fixed) * fixed),
            None if m >= self.batch => (self.batch, 1, m),
            None => (m, self.batch / m, m),
        }
    }

    /// Whether runs may go at once.
    pub fn concurrent(&self) -> bool {
        self.concurrent
    }
}

impl TeacherOptions {
    /// The limits of the batch size and of the ONNX Runtime sessions.
    fn check(&self) -> Result<()> {
        if self.batch_size == 0 {
            return Err(Error::Config("the batch size must be at least 1".into()));
        }
        if self.ort_sessions == 0 || self.ort_sessions > 64 {
            return Err(Error::Config(format!(
                "`ort_sessions` {}: between 1 and 64",
                self.ort_sessions
            )));
        }
        Ok(())
    }
}

impl Resolved {
    /// The backend as results record it, e.g. "onnxruntime (cuda:0)".
    fn describe(self, opts: &TeacherOptions) -> String {
        match self {
            Resolved::Tract => "tract (cpu)".to_string(),
            Resolved::TractDevice => match tract_device::stand_in() {
                Some(rt) => format!("tract ({rt} runtime standing in for cuda)"),
                None => "tract (cuda:0)".to_string(),
            },
            Resolved::Ort => match opts.device {
                Device::Cpu => "onnxruntime (cpu)".to_string(),
                Device::Cuda => format!("onnxruntime (cuda:{})", opts.cuda.device_id),
            },
        }
    }
}

impl Loader {
    /// The gradient graph at `gpath`, loaded; where there is none, the message that gradient
    /// norms will give when they are asked for.
    fn grad_graph(
        &self,
        gpath: &Path,
        forward: (&TeacherMeta, &binding::Siblings),
    ) -> Result<std::result::Result<GradGraph, String>> {
        if !gpath.exists() {
            return Ok(Err(format!(
                "gradient norms need the gradient graph {}, which does not exist; export it with \
                 export/export_teacher.py",
                gpath.display()
            )));
        }
        let (gfile, engine) = self.sibling(gpath, "grad", forward)?;
        let gmeta = GradMeta::from_file(&gfile)?;
        let (outputs, params) = (gfile.output_names(), gmeta.param_names.len());
        probe::grad(engine.as_ref(), gpath, &outputs, self.dims, params)?;
        Ok(Ok(GradGraph {
            meta: gmeta,
            file: gfile,
            engine,
        }))
    }
}

impl Teacher {
    /// Load `path` (the forward graph) and its gradient graph beside it, if there is one. A
    /// missing gradient graph is reported when gradients are first asked for; an inconsistent
    /// one is refused here.
    pub fn load(path: &Path, opts: &TeacherOptions) -> Result<Teacher> {
        opts.check()?;
        let file = OnnxFile::read(path)?;
        let meta = TeacherMeta::from_file(&file, "forward")?;
        let siblings = binding::check_forward(&file, &meta)?;
        let (backend, backend_note) = resolve_backend(opts)?;
        if matches!(backend, Resolved::Tract | Resolved::TractDevice)
            && meta.precision == Precision::Fp16
        {
            return Err(Error::teacher(
                path,
                "is a float16 copy of a teacher (infoutil.precision = fp16), which tract cannot \
                 run: use `backend` ort, or the float32 teacher it was converted from",
            ));
        }
        let loader = Loader {
            backend,
            place: Placement {
                device: opts.device,
                cuda: opts.cuda,
            },
            ort_library: opts.ort_library.clone(),
            ort_sessions: opts.ort_sessions.max(1),
            dims: meta
                .layout
                .dims([meta.input.channels, meta.input.height, meta.input.width]),
        };
        let forward = loader.engine(&file, &meta.input_name, false)?;
        probe::forward(forward.as_ref(), path, loader.dims, meta.num_classes())?;
        let grad = loader.grad_graph(&grad_path(path), (&meta, &siblings))?;
        Ok(Teacher {
            meta,
            path: path.to_path_buf(),
            output_op: file.output_op(),
            file_sha256: file.file_sha256,
            backend: backend.describe(opts),
            backend_note,
            forward,
            grad,
            cam: OnceLock::new(),
            siblings,
            loader,
            derived: Mutex::default(),
            batch_size: opts.batch_size,
        })
    }

    pub fn num_classes(&self) -> usize {
        self.meta.num_classes()
    }

    /// How many runs of one graph may go at once: ONNX Runtime's `--ort-sessions`; tract
    /// spreads each run over the cores itself.
    pub fn concurrent_runs(&self) -> usize {
        match self.loader.backend {
            Resolved::Tract | Resolved::TractDevice => 1,
            Resolved::Ort => self.loader.ort_sessions,
        }
    }

    /// How runs of a graph over items × rows built around this teacher (the game graph:
    /// images × coalitions) are cut for its backend.
    pub fn row_cut(&self) -> RowCut {
        let tract = matches!(self.loader.backend, Resolved::Tract);
        RowCut {
            fixed: tract.then_some(TRACT_ROWS),
            batch: self.batch_size.max(1),
            // tract runs on one core a run, so runs go to all cores; ONNX Runtime threads each
            // run, and runs go at once only with several sessions.
            concurrent: tract || self.concurrent_runs() > 1,
        }
    }

    /// The forward graph's file, read again (a teacher keeps only its engines); refused if the
    /// file changed since the teacher was loaded.
    fn forward_file(&self) -> Result<OnnxFile> {
        let file = OnnxFile::read(&self.path)?;
        if file.file_sha256 != self.file_sha256 {
            return Err(Error::teacher(
                &self.path,
                "the file changed after the teacher was loaded",
            ));
        }
        Ok(file)
    }

    /// The engine of a graph built around the forward graph by `build` (from the forward
    /// graph's model: the new model, its input names, and the input shapes tract plans for),
    /// built once per `key` and kept while the teacher lives.
    pub fn derived_engine(
        &self,
        key: &str,
        build: impl FnOnce(
            &tract_onnx::pb::ModelProto,
        ) -> Result<(tract_onnx::pb::ModelProto, Vec<InputShape>)>,
        inputs: &[&str],
    ) -> Result<Arc<dyn Engine>> {
        let mut cache = self.derived.lock().expect("a previous build panicked");
        if let Some(engine) = cache.get(key) {
            return Ok(engine.clone());
        }
        let file = self.forward_file()?;
        let (proto, shapes) = build(&file.proto)?;
        let engine: Arc<dyn Engine> = self
            .loader
            .derived(&file.derived(proto), inputs, &shapes)?
            .into();
        cache.insert(key.to_string(), engine.clone());
        Ok(engine)
    }

    /// Images per backend call.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The gradient graph's metadata, or the error that explains why there is none.
    pub fn grad_meta(&self) -> Result<&GradMeta> {
        self.grad_graph().map(|g| &g.meta)
    }

    pub fn grad_path(&self) -> Option<&Path> {
        self.grad.as_ref().ok().map(|g| g.file.path.as_path())
    }

    fn grad_graph(&self) -> Result<&GradGraph> {
        self.grad
            .as_ref()
            .map_err(|why| Error::teacher(&self.path, why))
    }

    /// Logits `[N, K]` for inputs `[N, C, H, W]` already in the teacher's input space.
    pub fn logits(&self, x: ArrayView4<f32>) -> Result<Array2<f32>> {
        let k = self.num_classes();
        let parts = self.batched(self.forward.as_ref(), x, None, |out| {
            into_2d(&out[0], k, "logits")
        })?;
        let logits = concat(parts, k);
        self.check_finite(logits.rows(), "logit")?;
        Ok(logits)
    }

    /// The first non-finite value of per-input `rows`, as an error naming the teacher and input.
    fn check_finite<'a>(
        &self,
        rows: impl IntoIterator<Item = ndarray::ArrayView1<'a, f32>>,
        output: &'static str,
    ) -> Result<()> {
        for (row, values) in rows.into_iter().enumerate() {
            if let Some(&value) = values.iter().find(|v| !v.is_finite()) {
                return Err(Error::NonFinite {
                    teacher: self.path.clone(),
                    output,
                    value,
                    row,
                    record: None,
                    stage: None,
                });
            }
        }
        Ok(())
    }

    /// Per-sample gradient norms of the cross-entropy with labels `y`, over all parameters.
    pub fn grad_norms(&self, x: ArrayView4<f32>, y: &[usize]) -> Result<GradNorms> {
        let graph = self.grad_graph()?;
        let y = self.label_array(y)?;
        let names = graph.file.output_names();
        let pick = |name: &str| {
            names
                .iter()
                .position(|n| n == name)
                .expect("checked at load")
        };
        let (ni, si) = (pick("norms"), pick("sqnorms"));
        let p = graph.meta.param_names.len();
        let parts = self.batched(graph.engine.as_ref(), x, Some(y.view()), |out| {
            let norms = out[ni]
                .view()
                .into_dimensionality::<Ix1>()
                .map_err(|_| shape_error("norms", out[ni].shape()))?
                .to_owned();
            Ok((norms, into_2d(&out[si], p, "sqnorms")?))
        })?;
        let (norms, sqnorms): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
        let norms = concatenate(Axis(0), &norms.iter().map(|a| a.view()).collect::<Vec<_>>())
            .expect("1-D parts");
        let sqnorms = concat(sqnorms, p);
        self.check_finite(norms.axis_chunks_iter(Axis(0), 1), "gradient norm")?;
        self.check_finite(sqnorms.rows(), "squared gradient norm")?;
        self.check_non_negative(&graph.file.path, norms.iter().chain(sqnorms.iter()))?;
        Ok(GradNorms { norms, sqnorms })
    }

    /// A norm is never negative: a gradient graph that says otherwise is broken, and ranking its
    /// numbers would pick crops by garbage.
    fn check_non_negative<'a>(
        &self,
        grad: &Path,
        values: impl Iterator<Item = &'a f32>,
    ) -> Result<()> {
        match values.copied().find(|v| *v < 0.0) {
            None => Ok(()),
            Some(v) => Err(Error::teacher(
                &self.path,
                format!(
                    "its gradient graph {} gave the gradient norm {v}; a norm is at least 0, so \
                     the gradient graph is broken (export it again with export/export_teacher.py)",
                    grad.display()
                ),
            )),
        }
    }

    /// Class labels as a graph's `y` input, each checked against the class count.
    fn label_array(&self, y: &[usize]) -> Result<Array1<i64>> {
        let k = self.num_classes();
        if let Some(m) = y.iter().find_map(|&c| label_problem(c, k)) {
            return Err(Error::Config(m));
        }
        Ok(y.iter().map(|&c| c as i64).collect())
    }

    /// Run `engine` over `x` (`[N, C, H, W]`) in batches of the configured size, converting
    /// each batch's outputs with `convert`. This is the one place where the library's NCHW
    /// batches meet the graph's declared layout: engines get a view in the graph's axis order.
    fn batched<T: Send>(
        &self,
        engine: &dyn Engine,
        x: ArrayView4<f32>,
        y: Option<ArrayView1<i64>>,
        convert: impl Fn(Vec<ArrayD<f32>>) -> Result<T> + Sync,
    ) -> Result<Vec<T>> {
        let n = x.len_of(Axis(0));
        let x = self.meta.layout.graph_view(x);
        let starts: Vec<usize> = (0..n).step_by(self.batch_size).collect();
        let run = |&start: &usize| {
            let end = (start + self.batch_size).min(n);
            let yb = y.as_ref().map(|y| y.slice(s![start..end]));
            convert(engine.run(x.slice(s![start..end, .., .., ..]), yb)?)
        };
        match self.concurrent_runs() {
            1 => starts.iter().map(run).collect(),
            _ => starts.par_iter().map(run).collect(),
        }
    }
}

fn shape_error(what: &str, shape: &[usize]) -> Error {
    Error::backend("teacher", format!("{what} came back with shape {shape:?}"))
}

fn into_2d(a: &ArrayD<f32>, cols: usize, what: &str) -> Result<Array2<f32>> {
    let a2 = a
        .view()
        .into_dimensionality::<Ix2>()
        .map_err(|_| shape_error(what, a.shape()))?;
    if a2.ncols() != cols {
        return Err(shape_error(what, a.shape()));
    }
    Ok(a2.to_owned())
}

fn concat(parts: Vec<Array2<f32>>, cols: usize) -> Array2<f32> {
    let views: Vec<_> = parts.iter().map(|a| a.view()).collect();
    if views.is_empty() {
        return Array2::zeros((0, cols));
    }
    concatenate(Axis(0), &views).expect("same column count")
}
