//! `infoutil merge`: shards of one distillation (`distill --classes …` on several machines)
//! combined into one file, as if one machine had done all classes.
//!
//! Built for hundreds of shards on a shared file system: a first pass opens one shard at a
//! time and keeps only its configuration, classes and dataset shapes; the output's datasets are
//! then created at their full size and filled shard after shard, in class order, so neither the
//! open files nor the memory grow with the number of shards. Every dataset the schema lists
//! for a distilled file is merged.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use hdf5::types::{FloatSize, IntSize, TypeDescriptor};
use hdf5::H5Type;
use ndarray::ArrayD;

use super::open;
use crate::error::{Error, Result};
use crate::run_identity::RunIdentity;
use crate::store::{self, schema::attr, schema::distilled, schema::kind, schema::Field};

/// A dataset's element type and shape, where a shard holds it.
type Stored = Option<(TypeDescriptor, Vec<usize>)>;

/// What the first pass keeps of a shard (its file is closed again).
struct Summary {
    path: PathBuf,
    config: serde_json::Value,
    teacher_sha256: String,
    /// Values of the schema's root attributes, in [`distilled::ATTRIBUTES`] order.
    attributes: Vec<String>,
    classes: BTreeSet<i64>,
    /// Element type and shape of each of [`distilled::ALL`], where the shard has it.
    fields: Vec<Stored>,
}

impl Summary {
    fn read(path: &Path) -> Result<Summary> {
        let shard = open(path)?;
        let f = &shard.file;
        let attr = |k: &str| store::read_attr(f, k).map_err(|e| Error::store(path, e));
        let labels: ndarray::Array1<i64> = store::read(f, path, &distilled::LABELS)?;
        let fields = distilled::ALL
            .iter()
            .map(|field| {
                if !store::has(f, field) {
                    return Ok(None);
                }
                let ds = f.dataset(field.name()).map_err(|e| Error::store(path, e))?;
                let dtype = ds
                    .dtype()
                    .and_then(|t| t.to_descriptor())
                    .map_err(|e| Error::store(path, format!("{}: {e}", field.path)))?;
                Ok(Some((dtype, ds.shape())))
            })
            .collect::<Result<_>>()?;
        Ok(Summary {
            path: path.to_path_buf(),
            teacher_sha256: attr(attr::TEACHER_SHA256)?,
            attributes: distilled::ATTRIBUTES
                .iter()
                .map(|k| attr(k))
                .collect::<Result<_>>()?,
            classes: labels.into_iter().collect(),
            fields,
            config: shard.config,
        })
    }
}

/// Copy `field` of the open shard `file` into `rows`, in the element type the shards hold.
fn copy_rows(
    file: &hdf5::File,
    path: &Path,
    field: &Field,
    dtype: &TypeDescriptor,
    rows: &mut store::Rows,
) -> Result<()> {
    fn block<T: H5Type>(
        file: &hdf5::File,
        path: &Path,
        field: &Field,
        rows: &mut store::Rows,
    ) -> Result<()> {
        let a: ArrayD<T> = store::read(file, path, field)?;
        rows.write(a.view())
    }
    match dtype {
        TypeDescriptor::Float(FloatSize::U4) => block::<f32>(file, path, field, rows),
        TypeDescriptor::Float(FloatSize::U8) => block::<f64>(file, path, field, rows),
        TypeDescriptor::Unsigned(IntSize::U1) => block::<u8>(file, path, field, rows),
        TypeDescriptor::Integer(IntSize::U4) => block::<i32>(file, path, field, rows),
        TypeDescriptor::Integer(IntSize::U8) => block::<i64>(file, path, field, rows),
        other => Err(Error::store(
            path,
            format!(
                "{} has element type {other}, which merge does not know",
                field.path
            ),
        )),
    }
}

/// Each field's element type and merged shape: every shard must hold the same fields, of the
/// same type and the same shape but for the first axis.
fn merged_fields(shards: &[Summary]) -> Result<Vec<Stored>> {
    let first = &shards[0];
    let say = |x: &Stored| {
        x.as_ref()
            .map_or("absent".to_string(), |(t, shape)| format!("{t} {shape:?}"))
    };
    let mut merged = first.fields.clone();
    for s in &shards[1..] {
        for (k, field) in distilled::ALL.iter().enumerate() {
            match (&s.fields[k], &mut merged[k]) {
                (None, None) => {}
                (Some((t, shape)), Some((u, total))) if t == u && shape[1..] == total[1..] => {
                    total[0] += shape[0];
                }
                _ => {
                    return Err(Error::store(
                        &s.path,
                        format!(
                            "{} is {} here but {} in {}",
                            field.path,
                            say(&s.fields[k]),
                            say(&first.fields[k]),
                            first.path.display()
                        ),
                    ))
                }
            }
        }
    }
    Ok(merged)
}

/// Merge `inputs` into `out`. They must come from one run (same teacher, data and options but
/// the class list) and cover disjoint classes: all the teacher's classes, unless
/// `allow_missing_classes`. The output is in class order whatever the order of `inputs`.
pub fn merge(inputs: &[PathBuf], out: &Path, allow_missing_classes: bool) -> Result<PathBuf> {
    if inputs.len() < 2 {
        return Err(Error::Config("merge needs at least two files".into()));
    }
    let mut shards = inputs
        .iter()
        .map(|p| Summary::read(p))
        .collect::<Result<Vec<_>>>()?;
    shards.sort_by_key(|s| s.classes.first().copied());
    let seen = check_one_run(&shards)?;
    let classes =
        serde_json::from_str::<Vec<String>>(&shards[0].attributes[0]).map_or(0, |n| n.len()) as i64;
    let missing: Vec<i64> = (0..classes).filter(|c| !seen.contains(c)).collect();
    if !missing.is_empty() && !allow_missing_classes {
        let shown: Vec<String> = missing.iter().take(20).map(|c| c.to_string()).collect();
        return Err(Error::Config(format!(
            "the shards hold {} of the teacher's {classes} classes; missing: {}{} (a shard that \
             failed or was not given?). Pass `allow_missing_classes` to merge them anyway",
            seen.len(),
            shown.join(", "),
            if missing.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        )));
    }
    let fields = merged_fields(&shards)?;
    let mut config = shards[0].config.clone();
    config["distill"]["classes"] = serde_json::json!(seen);
    config["merged_from"] = serde_json::json!(shards.iter().map(|s| &s.path).collect::<Vec<_>>());
    let header = store::Header {
        kind: kind::DISTILLED,
        config: &config,
        teacher_sha256: &shards[0].teacher_sha256,
    };
    let w = store::Writer::create(out, &header)?;
    for (key, value) in distilled::ATTRIBUTES.iter().zip(&shards[0].attributes) {
        w.attr("/", key, value)?;
    }
    let mut rows = Vec::new();
    for (field, f) in distilled::ALL.iter().zip(&fields) {
        if let Some((dtype, shape)) = f {
            rows.push((field, dtype, w.rows(field, dtype, shape)?));
        }
    }
    for s in &shards {
        let shard = open(&s.path)?;
        for (field, dtype, r) in rows.iter_mut() {
            copy_rows(&shard.file, &s.path, field, dtype, r)?;
        }
    }
    for (_, _, r) in rows {
        r.finish()?;
    }
    w.finish()
}

/// Shards of one run: the same teacher and configuration but `--classes`, and no class twice.
/// Returns every class they hold.
fn check_one_run(shards: &[Summary]) -> Result<BTreeSet<i64>> {
    let first = &shards[0];
    // The run identity: the shard's class list, paths and scheduling options such as the batch
    // size are not part of it.
    let base = RunIdentity::of(&first.config, &first.teacher_sha256);
    let mut seen = BTreeSet::new();
    for s in shards {
        if let Some(field) = RunIdentity::of(&s.config, &s.teacher_sha256).difference(&base) {
            return Err(Error::store(
                &s.path,
                format!(
                    "was made with another teacher, data or options than {} ({field}): shards \
                     of one run differ only in `classes`",
                    first.path.display()
                ),
            ));
        }
        if let Some(c) = s.classes.intersection(&seen).next() {
            return Err(Error::store(
                &s.path,
                format!("class {c} is in more than one shard"),
            ));
        }
        seen.extend(s.classes.iter().copied());
    }
    Ok(seen)
}
