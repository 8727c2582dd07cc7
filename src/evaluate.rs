//! Teacher evaluation: top-1 accuracy, logits and per-sample gradient norms over a dataset,
//! streamed in chunks so memory does not grow with the dataset beyond the per-image results.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ndarray::{concatenate, Array, Array1, Array2, Axis};
use serde::Serialize;

pub use crate::base::logits::argmax;
use crate::data::reader::{Batch, Reader};
use crate::data::{Selection, Source, VisitReport};
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::provenance::Provenance;
use crate::store::{self, schema::attr, schema::eval, schema::kind};
use crate::teacher::Teacher;

#[derive(Debug, Clone, Serialize)]
pub struct EvalOptions {
    pub data: PathBuf,
    /// Skip bad records (counted in the report) instead of stopping at the first.
    pub skip_bad: bool,
    /// Compute per-sample gradient norms too (needs the gradient graph).
    pub grad_norms: bool,
}

/// Per-image results, in dataset order.
pub struct Evaluation {
    pub source_index: Vec<i64>,
    pub labels: Vec<i64>,
    pub logits: Array2<f32>,
    pub grad_norms: Option<Array1<f32>>,
    pub report: VisitReport,
    pub seconds: f64,
    /// What it was run with (the file's `config.eval`).
    pub options: EvalOptions,
}

impl Evaluation {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Fraction of images whose arg-max logit is their label.
    pub fn top1(&self) -> f64 {
        let correct = self
            .logits
            .rows()
            .into_iter()
            .zip(&self.labels)
            .filter(|(row, &y)| argmax(row.iter().copied()) == y as usize)
            .count();
        correct as f64 / self.len().max(1) as f64
    }

    /// Write `/logits`, `/labels`, `/source_index` and `/grad_norms` (when computed), with the
    /// run's context and options as the file's `config`.
    pub fn write(
        &self,
        out: &std::path::Path,
        teacher: &Teacher,
        run: &Provenance,
    ) -> Result<PathBuf> {
        let w = store::Writer::create(
            out,
            &store::Header {
                kind: kind::TEACHER_EVAL,
                config: &run.with(&serde_json::json!({ "eval": self.options })),
                teacher_sha256: &teacher.file_sha256,
            },
        )?;
        w.attr("/", attr::TOP1, &format!("{:.6}", self.top1()))?;
        w.attr(
            "/",
            attr::CLASS_NAMES,
            &serde_json::to_string(&teacher.meta.class_names).expect("strings"),
        )?;
        w.put(&eval::LOGITS, self.logits.view())?;
        let labels = Array1::from(self.labels.clone());
        w.put(&eval::LABELS, labels.view())?;
        let index = Array1::from(self.source_index.clone());
        w.put(&eval::SOURCE_INDEX, index.view())?;
        if let Some(g) = &self.grad_norms {
            w.put(&eval::GRAD_NORMS, g.view())?;
        }
        w.finish()
    }
}

/// Why a teacher's outputs `[N, K]` do not look like logits, or `None`: rows that sum to 1
/// within 1e-3 with every value in `[0, 1]` (probabilities: a softmax at the end), or no value
/// below 0 (an activation at the end: ReLU, sigmoid). The gradient graph differentiates
/// cross-entropy of the outputs' softmax, so either makes its norms those of another loss.
/// The same test as `export/infoutil_export/verify.py`'s `output_warning`.
pub fn output_warning(logits: ndarray::ArrayView2<f32>) -> Option<&'static str> {
    if logits.is_empty() || logits.ncols() < 2 {
        return None;
    }
    let (min, max) = logits
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let rows_sum_to_one = logits
        .rows()
        .into_iter()
        .all(|r| (r.iter().map(|&v| f64::from(v)).sum::<f64>() - 1.0).abs() <= 1e-3);
    if min >= 0.0 && max <= 1.0 && rows_sum_to_one {
        Some("look like probabilities (every row sums to 1)")
    } else if min >= 0.0 {
        Some("are all non-negative (like an activation's output)")
    } else {
        None
    }
}

/// The teacher's outputs on the chunks so far.
#[derive(Default)]
struct Outputs {
    logits: Vec<Array2<f32>>,
    norms: Vec<Array1<f32>>,
    labels: Vec<i64>,
    source_index: Vec<i64>,
}

impl Outputs {
    /// Run `batch` through the teacher.
    fn add(
        &mut self,
        batch: Batch,
        teacher: &Teacher,
        grad_norms: bool,
        progress: &dyn Progress,
    ) -> Result<()> {
        let n = batch.len();
        let at = |e: Error| e.locate(STAGE, |row| batch.index.get(row).copied());
        self.logits
            .push(teacher.logits(batch.x.view()).map_err(at)?);
        if grad_norms {
            let g = teacher
                .grad_norms(batch.x.view(), &batch.labels)
                .map_err(at)?;
            self.norms.push(g.norms);
        }
        self.labels.extend(batch.labels.iter().map(|&c| c as i64));
        self.source_index
            .extend(batch.index.iter().map(|&i| i as i64));
        progress.advance(STAGE, n as u64);
        Ok(())
    }
}

/// Records run through the teacher at once.
const CHUNK: usize = 4096;

/// The progress stage of [`evaluate`].
pub const STAGE: &str = "teacher eval";

pub fn evaluate(
    teacher: &Teacher,
    source: &mut dyn Source,
    opts: &EvalOptions,
    progress: &dyn Progress,
) -> Result<Evaluation> {
    let started = Instant::now();
    let k = teacher.num_classes();
    let path = source.info().path.clone();
    source.match_classes(&teacher.meta.class_names)?;
    progress.start(STAGE, source.info().len as u64);

    let mut outputs = Outputs::default();
    let report = Reader::new(&teacher.meta.input, k)
        .skip_bad(opts.skip_bad)
        .batches_of(CHUNK)
        .read(source, &Selection::All, &mut |batch| {
            outputs.add(batch, teacher, opts.grad_norms, progress)
        })?;
    progress.finish(STAGE);

    if outputs.labels.is_empty() {
        return Err(nothing_to_evaluate(&path, &report));
    }
    let logits = stacked(&outputs.logits).unwrap_or_else(|| Array2::zeros((0, k)));
    let grad_norms = opts
        .grad_norms
        .then(|| stacked(&outputs.norms).unwrap_or_else(|| Array1::zeros(0)));
    Ok(Evaluation {
        source_index: outputs.source_index,
        labels: outputs.labels,
        logits,
        grad_norms,
        report,
        seconds: started.elapsed().as_secs_f64(),
        options: opts.clone(),
    })
}

fn nothing_to_evaluate(path: &Path, report: &VisitReport) -> Error {
    Error::data(
        path,
        None,
        match report.skipped {
            0 => "holds no records: there is nothing to evaluate".to_string(),
            n => format!("all {n} records were skipped as bad: there is nothing to evaluate"),
        },
    )
}

/// The chunks' arrays stacked along their rows (None when there were none).
fn stacked<D: ndarray::RemoveAxis>(parts: &[Array<f32, D>]) -> Option<Array<f32, D>> {
    let views: Vec<_> = parts.iter().map(|a| a.view()).collect();
    (!views.is_empty()).then(|| concatenate(Axis(0), &views).expect("same columns"))
}

#[cfg(test)]
mod tests {
    use super::output_warning;
    use ndarray::array;

    #[test]
    fn outputs_that_are_not_logits_are_told_apart() {
        let probs = array![[0.2f32, 0.8], [0.5, 0.5]];
        let relu = array![[0.0f32, 3.0], [1.0, 0.0]];
        let logits = array![[-1.0f32, 3.0], [1.0, 0.0]];
        assert!(output_warning(probs.view())
            .unwrap()
            .contains("probabilities"));
        assert!(output_warning(relu.view())
            .unwrap()
            .contains("non-negative"));
        assert_eq!(output_warning(logits.view()), None);
        // rows of non-negative values that do not sum to 1 are not probabilities
        let sums = array![[0.2f32, 0.3], [0.5, 0.5]];
        assert!(output_warning(sums.view())
            .unwrap()
            .contains("non-negative"));
    }
}
