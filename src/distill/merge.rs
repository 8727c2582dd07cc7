//! `infoutil merge`: shards of one distillation (`distill --classes …` on several machines)
//! combined into one file, as if one machine had done all classes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use hdf5::H5Type;
use ndarray::{ArrayD, Axis};

use crate::error::{Error, Result};
use crate::store::{self, schema::attr, schema::distilled, schema::kind, schema::Field};

/// An open distilled file and its parsed `config` attribute.
pub(super) struct Shard {
    pub path: PathBuf,
    pub file: hdf5::File,
    pub config: serde_json::Value,
}

pub(super) fn open(path: &Path) -> Result<Shard> {
    let file = store::open(path)?;
    let read = |k: &str| store::read_attr(&file, k).map_err(|e| Error::store(path, e));
    if read(attr::KIND)? != kind::DISTILLED {
        return Err(Error::store(
            path,
            "is not a distilled file (kind ≠ distilled)",
        ));
    }
    let config: serde_json::Value = serde_json::from_str(&read(attr::CONFIG)?)
        .map_err(|e| Error::store(path, format!("config attribute: {e}")))?;
    Ok(Shard {
        path: path.to_path_buf(),
        file,
        config,
    })
}

/// The configuration with the shard's class list taken out: equal for shards of one run.
fn without_classes(config: &serde_json::Value) -> serde_json::Value {
    let mut c = config.clone();
    if let Some(d) = c.get_mut("distill").and_then(|d| d.as_object_mut()) {
        d.remove("classes");
    }
    c
}

/// `field` of every shard, concatenated along the first axis (shards are in class order) and
/// written to `w` in the element type the shards store it in.
fn concat_field(shards: &[Shard], field: &Field, w: &store::Writer) -> Result<()> {
    let present: Vec<bool> = shards.iter().map(|s| store::has(&s.file, field)).collect();
    if !present[0] {
        if let Some(k) = present.iter().position(|&p| p) {
            return Err(Error::store(
                &shards[k].path,
                format!(
                    "has {} but {} has not",
                    field.path,
                    shards[0].path.display()
                ),
            ));
        }
        return Ok(());
    }
    let ds = shards[0]
        .file
        .dataset(field.name())
        .map_err(|e| Error::store(&shards[0].path, e))?;
    let dtype = ds
        .dtype()
        .and_then(|t| t.to_descriptor())
        .map_err(|e| Error::store(&shards[0].path, format!("{}: {e}", field.path)))?;
    use hdf5::types::{FloatSize, IntSize, TypeDescriptor as T};
    match dtype {
        T::Float(FloatSize::U4) => concat::<f32>(shards, field, w),
        T::Float(FloatSize::U8) => concat::<f64>(shards, field, w),
        T::Unsigned(IntSize::U1) => concat::<u8>(shards, field, w),
        T::Integer(IntSize::U4) => concat::<i32>(shards, field, w),
        T::Integer(IntSize::U8) => concat::<i64>(shards, field, w),
        other => Err(Error::store(
            &shards[0].path,
            format!(
                "{} has element type {other}, which merge does not know",
                field.path
            ),
        )),
    }
}

fn concat<T: H5Type + Clone>(shards: &[Shard], field: &Field, w: &store::Writer) -> Result<()> {
    let mut parts: Vec<ArrayD<T>> = Vec::new();
    for s in shards {
        parts.push(store::read(&s.file, &s.path, field)?);
    }
    let views: Vec<_> = parts.iter().map(|a| a.view()).collect();
    let all = ndarray::concatenate(Axis(0), &views).map_err(|e| {
        Error::store(
            &shards[1].path,
            format!("{} does not line up with the first shard: {e}", field.path),
        )
    })?;
    w.put(field, all.view())
}

/// The first field (as a JSON path) where `a` and `b` differ, with both values.
fn first_difference(a: &serde_json::Value, b: &serde_json::Value, at: &str) -> Option<String> {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let (u, v) = (&x.get(k), &y.get(k));
                let here = format!("{at}.{k}");
                match (u, v) {
                    (Some(u), Some(v)) => first_difference(u, v, &here),
                    _ => Some(format!(
                        "{here} is {} here and {} there",
                        u.map_or("absent".into(), |u| u.to_string()),
                        v.map_or("absent".into(), |v| v.to_string())
                    )),
                }
            })
        }
        _ if a == b => None,
        _ => Some(format!("{at} is {a} here and {b} there")),
    }
}

/// Merge `inputs` into `out`. They must come from one run (same teacher, data and options but
/// the class list) and cover disjoint classes: all the teacher's classes, unless
/// `allow_missing_classes`.
pub fn merge(inputs: &[PathBuf], out: &Path, allow_missing_classes: bool) -> Result<PathBuf> {
    if inputs.len() < 2 {
        return Err(Error::Config("merge needs at least two files".into()));
    }
    let shards = inputs.iter().map(|p| open(p)).collect::<Result<Vec<_>>>()?;
    let base = without_classes(&shards[0].config);
    let sha = |s: &Shard| {
        store::read_attr(&s.file, attr::TEACHER_SHA256).map_err(|e| Error::store(&s.path, e))
    };
    let mut seen = BTreeSet::new();
    for s in &shards {
        let differs = match sha(s)? == sha(&shards[0])? {
            false => Some(format!(
                "teacher_sha256 is {} here and {} there",
                sha(s)?,
                sha(&shards[0])?
            )),
            true => first_difference(&without_classes(&s.config), &base, "config"),
        };
        if let Some(field) = differs {
            return Err(Error::store(
                &s.path,
                format!(
                    "was made with another teacher, data or options than {} ({field}): shards \
                     of one run differ only in --classes",
                    shards[0].path.display()
                ),
            ));
        }
        let labels: ndarray::Array1<i64> = store::read(&s.file, &s.path, &distilled::LABELS)?;
        let classes: BTreeSet<i64> = labels.into_iter().collect();
        if let Some(c) = classes.intersection(&seen).next() {
            return Err(Error::store(
                &s.path,
                format!("class {c} is in more than one shard"),
            ));
        }
        seen.extend(classes);
    }
    let names = store::read_attr(&shards[0].file, attr::CLASS_NAMES)
        .map_err(|e| Error::store(&shards[0].path, e))?;
    let classes = serde_json::from_str::<Vec<String>>(&names).map_or(0, |n| n.len()) as i64;
    let missing: Vec<i64> = (0..classes).filter(|c| !seen.contains(c)).collect();
    if !missing.is_empty() && !allow_missing_classes {
        let shown: Vec<String> = missing.iter().take(20).map(|c| c.to_string()).collect();
        return Err(Error::Config(format!(
            "the shards hold {} of the teacher's {classes} classes; missing: {}{} (a shard that \
             failed or was not given?). Pass --allow-missing-classes to merge them anyway",
            seen.len(),
            shown.join(", "),
            if missing.len() > shown.len() {
                ", …"
            } else {
                ""
            }
        )));
    }
    let mut config = shards[0].config.clone();
    config["distill"]["classes"] = serde_json::json!(seen);
    config["merged_from"] = serde_json::json!(inputs);
    let header = store::Header {
        kind: "distilled",
        config: &config,
        teacher_sha256: &sha(&shards[0])?,
    };
    let w = store::Writer::create(out, &header)?;
    for key in distilled::ATTRIBUTES {
        let v =
            store::read_attr(&shards[0].file, key).map_err(|e| Error::store(&shards[0].path, e))?;
        w.attr("/", key, &v)?;
    }
    for field in &distilled::ALL {
        concat_field(&shards, field, &w)?;
    }
    w.finish()
}
