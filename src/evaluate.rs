//! Teacher evaluation: top-1 accuracy, logits and per-sample gradient norms over a dataset,
//! streamed in chunks so memory does not grow with the dataset beyond the per-image results.

use std::path::PathBuf;
use std::time::Instant;

use ndarray::{concatenate, Array1, Array2, Array4, Axis};
use serde::Serialize;

pub use crate::base::logits::argmax;
use crate::data::{Record, Selection, Source, VisitReport};
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


/// Images collected until a chunk is full, then run through the teacher at once.
struct Chunk {
    x: Vec<f32>,
    y: Vec<usize>,
    index: Vec<i64>,
}

/// The progress stage of [`evaluate`].
pub const STAGE: &str = "teacher eval";

pub fn evaluate(
    teacher: &Teacher,
    source: &mut dyn Source,
    opts: &EvalOptions,
    progress: &dyn Progress,
) -> Result<Evaluation> {
    let started = Instant::now();
    let spec = &teacher.meta.input;
    let k = teacher.num_classes();
    let chunk_len = 4096;
    let path = source.info().path.clone();
    source.match_classes(&teacher.meta.class_names)?;
    progress.start(STAGE, source.info().len as u64);

    let mut chunk = Chunk {
        x: Vec::new(),
        y: Vec::new(),
        index: Vec::new(),
    };
    let mut logits: Vec<Array2<f32>> = Vec::new();
    let mut norms: Vec<Array1<f32>> = Vec::new();
    let (mut labels, mut source_index) = (Vec::new(), Vec::new());
    let mut local_skips = VisitReport::default();

    let mut flush = |chunk: &mut Chunk| -> Result<()> {
        if chunk.y.is_empty() {
            return Ok(());
        }
        let n = chunk.y.len();
        let x = Array4::from_shape_vec(
            (n, spec.channels, spec.height, spec.width),
            std::mem::take(&mut chunk.x),
        )
        .expect("sized per image");
        let at = |e: Error| e.locate(STAGE, |row| chunk.index.get(row).map(|&i| i as usize));
        logits.push(teacher.logits(x.view()).map_err(at)?);
        if opts.grad_norms {
            norms.push(teacher.grad_norms(x.view(), &chunk.y).map_err(at)?.norms);
        }
        labels.extend(chunk.y.drain(..).map(|c| c as i64));
        source_index.append(&mut chunk.index);
        progress.advance(STAGE, n as u64);
        Ok(())
    };

    let take = |r: Record, chunk: &mut Chunk| -> Result<()> {
        if r.label >= k {
            return Err(Error::data(
                &path,
                Some(r.index),
                format!(
                    "label {} is out of range for a teacher with {k} classes",
                    r.label
                ),
            ));
        }
        let mut img = Array4::<f32>::zeros((1, spec.channels, spec.height, spec.width));
        spec.convert_into(r.image.view(), img.index_axis_mut(Axis(0), 0))
            .map_err(|m| Error::data(&path, Some(r.index), m))?;
        chunk.x.extend(img.iter());
        chunk.y.push(r.label);
        chunk.index.push(r.index as i64);
        Ok(())
    };

    let mut report = source.visit(&Selection::All, opts.skip_bad, &mut |r| {
        match take(r, &mut chunk) {
            Err(e) if opts.skip_bad && e.is_record_error() => local_skips.skip(&e),
            other => other?,
        }
        if chunk.y.len() >= chunk_len {
            flush(&mut chunk)?;
        }
        Ok(())
    })?;
    flush(&mut chunk)?;
    progress.finish(STAGE);

    report.absorb(local_skips);
    if labels.is_empty() {
        return Err(Error::data(
            &path,
            None,
            match report.skipped {
                0 => "holds no records: there is nothing to evaluate".to_string(),
                n => format!("all {n} records were skipped as bad: there is nothing to evaluate"),
            },
        ));
    }
    let logits = if logits.is_empty() {
        Array2::zeros((0, k))
    } else {
        concatenate(
            Axis(0),
            &logits.iter().map(|a| a.view()).collect::<Vec<_>>(),
        )
        .expect("K columns")
    };
    let grad_norms = opts.grad_norms.then(|| {
        let views: Vec<_> = norms.iter().map(|a| a.view()).collect();
        if views.is_empty() {
            Array1::zeros(0)
        } else {
            concatenate(Axis(0), &views).expect("1-D")
        }
    });
    Ok(Evaluation {
        source_index,
        labels,
        logits,
        grad_norms,
        report,
        seconds: started.elapsed().as_secs_f64(),
        options: opts.clone(),
    })
}
