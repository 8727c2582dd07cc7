//! The report of a teacher evaluation: accuracy, the confusion matrix (a picture for any number
//! of classes, a table of counts for a few) and the records the teacher gets most wrong.

use std::fmt::Write;

use ndarray::{Array2, Ix1, Ix2};

use super::folder::Folder;
use super::html::{self, class_name, esc, num, top_classes};
use super::pictures;
use super::run::{Options, Run};
use super::sources::Sources;
use crate::error::Result;
use crate::store::{self, schema::eval};

/// Records shown among the worst.
pub const WORST: usize = 40;
/// Classes up to which the confusion matrix is also a table of counts.
const TABLE_CLASSES: usize = 20;

struct Eval {
    probs: Array2<f64>,
    labels: Vec<usize>,
    records: Vec<i64>,
    grad_norms: Option<Vec<f32>>,
}

fn read(run: &Run, h5: &hdf5::File) -> Result<Eval> {
    let logits: Array2<f32> = store::read::<f32, Ix2>(h5, &run.path, &eval::LOGITS)?;
    let mut probs = logits.mapv(f64::from);
    for mut row in probs.rows_mut() {
        let m = row.fold(f64::NEG_INFINITY, |a, &b| a.max(b));
        row.mapv_inplace(|v| (v - m).exp());
        let s = row.sum();
        row.mapv_inplace(|v| v / s);
    }
    let labels = store::read::<i64, Ix1>(h5, &run.path, &eval::LABELS)?;
    let grad_norms = match store::has(h5, &eval::GRAD_NORMS) {
        true => Some(store::read::<f32, Ix1>(h5, &run.path, &eval::GRAD_NORMS)?.to_vec()),
        false => None,
    };
    Ok(Eval {
        probs,
        labels: labels.iter().map(|&l| l.max(0) as usize).collect(),
        records: store::read::<i64, Ix1>(h5, &run.path, &eval::SOURCE_INDEX)?.to_vec(),
        grad_norms,
    })
}

fn argmax(row: ndarray::ArrayView1<f64>) -> usize {
    row.iter()
        .enumerate()
        .fold(
            (0, f64::NEG_INFINITY),
            |b, (i, &v)| if v > b.1 { (i, v) } else { b },
        )
        .0
}

pub fn write(
    run: &Run,
    h5: &hdf5::File,
    opts: &Options,
    folder: &mut Folder,
) -> Result<(Vec<String>, String)> {
    let e = read(run, h5)?;
    let k = e.probs.ncols();
    let pred: Vec<usize> = e.probs.rows().into_iter().map(argmax).collect();
    let mut counts = Array2::<u64>::zeros((k, k));
    for (&l, &p) in e.labels.iter().zip(&pred) {
        if l < k {
            counts[[l, p]] += 1;
        }
    }
    let correct = e.labels.iter().zip(&pred).filter(|(l, p)| l == p).count();
    let mut body = format!(
        "<p>{} records, {} classes: top-1 accuracy {:.2} % ({} correct).</p>",
        e.labels.len(),
        k,
        100.0 * correct as f64 / e.labels.len().max(1) as f64,
        correct
    );
    let size = folder.png("img/confusion.png", &pictures::confusion(&counts))?;
    let _ = write!(
        body,
        "<h2>Confusion matrix</h2><figure>{}<figcaption>Rows: true class; columns: predicted; \
         darker: a larger share of the row.</figcaption></figure>",
        html::img("img/confusion.png", size, "confusion", "confusion matrix")
    );
    if k <= TABLE_CLASSES {
        body.push_str(&count_table(&counts, &run.names));
    }
    body.push_str(&per_class(&counts, &run.names));
    let mut sources = Sources::open(opts.data.as_deref(), run);
    let (worst, problems) = worst_records(run, &e, &mut sources, folder)?;
    body.push_str(&worst);
    body.push_str(&run.options_tables());
    folder.page("index.html", &html::page(&run.title(), "", &body))?;
    Ok((problems, sources.status))
}

fn count_table(counts: &Array2<u64>, names: &[String]) -> String {
    let mut out = String::from("<table class=\"cm\"><tr><th>true \\ predicted</th>");
    for c in 0..counts.ncols() {
        let _ = write!(out, "<th>{}</th>", esc(&class_name(names, c)));
    }
    out.push_str("</tr>");
    for (r, row) in counts.rows().into_iter().enumerate() {
        let total = row.sum().max(1) as f64;
        let _ = write!(out, "<tr><th>{}</th>", esc(&class_name(names, r)));
        for &v in row {
            let shade = (255.0 - 180.0 * (v as f64 / total).sqrt()) as u8;
            let _ = write!(
                out,
                "<td style=\"background:rgb({shade},{shade},255)\">{v}</td>"
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</table>");
    out
}

fn per_class(counts: &Array2<u64>, names: &[String]) -> String {
    let mut out = String::from(
        "<h2>Per class</h2><table><tr><th>class</th><th>records</th><th>accuracy</th>\
         <th>most often taken for</th></tr>",
    );
    for (c, row) in counts.rows().into_iter().enumerate() {
        let total = row.sum();
        let confused = (0..row.len())
            .filter(|&p| p != c && row[p] > 0)
            .max_by_key(|&p| row[p])
            .map_or("-".to_string(), |p| {
                format!("{} ({})", class_name(names, p), row[p])
            });
        let _ = write!(
            out,
            "<tr><td>{c} · {}</td><td>{total}</td><td>{}</td><td>{}</td></tr>",
            esc(&class_name(names, c)),
            if total == 0 {
                "-".into()
            } else {
                format!("{:.1} %", 100.0 * row[c] as f64 / total as f64)
            },
            esc(&confused)
        );
    }
    out.push_str("</table>");
    out
}

fn worst_records(
    run: &Run,
    e: &Eval,
    sources: &mut Sources,
    folder: &mut Folder,
) -> Result<(String, Vec<String>)> {
    let p_true = |i: usize| e.probs.row(i).get(e.labels[i]).copied().unwrap_or(0.0);
    let mut order: Vec<usize> = (0..e.labels.len()).collect();
    order.sort_by(|&a, &b| p_true(a).total_cmp(&p_true(b)));
    order.truncate(WORST);
    let wanted: Vec<_> = order
        .iter()
        .map(|&i| (e.records[i].max(0) as usize, e.labels[i]))
        .collect();
    let (images, problems) = sources.read(&wanted);
    let mut out = format!(
        "<h2>The {} records the teacher gets most wrong</h2><p class=\"note sources\">{}</p><div class=\"row\">",
        order.len(),
        esc(&sources.status)
    );
    for i in order {
        let record = e.records[i];
        let pic = match images.get(&(record.max(0) as usize)) {
            Some(img) => {
                let name = format!("img/r{record}.png");
                let size = folder.png(&name, &pictures::plain(img.view()))?;
                html::img(&name, size, "source", &format!("record {record}"))
            }
            None => "<p class=\"note nosource\">source image not available</p>".into(),
        };
        let p: Vec<f64> = e.probs.row(i).to_vec();
        let grad = e.grad_norms.as_ref().map_or(String::new(), |g| {
            format!("<br>gradient norm {}", num(g[i] as f64))
        });
        let _ = write!(
            out,
            "<figure data-record=\"{record}\">{pic}<figcaption>record {record}<br>true: <span class=\"cls\">{}</span> (p {:.3})<br>predicted: {}{grad}</figcaption></figure>",
            esc(&class_name(&run.names, e.labels[i])),
            p_true(i),
            esc(&top_classes(&p, &run.names, 2)),
        );
    }
    out.push_str("</div>");
    Ok((out, problems))
}
