//! Where a result came from: the context every result file records in its `config` attribute
//! (command, teacher, backend, data by path and by content). The library builds it from the
//! teacher and data a run used, so every command records it the same way, and readers get it
//! back typed ([`Recorded`]) instead of indexing JSON.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::data::preprocess::InputSpec;
use crate::data::Source;
use crate::error::Result;
use crate::teacher::{Precision, Teacher};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The command that ran (`attribute`, `distill`, `teacher eval`).
    pub command: String,
    pub teacher: PathBuf,
    #[serde(default)]
    pub grad_graph: Option<PathBuf>,
    /// The backend in words, e.g. "tract (cpu)".
    pub backend: String,
    #[serde(default)]
    pub batch_size: usize,
    pub data: PathBuf,
    /// [`crate::data::fingerprint`]; empty in files written before it was recorded.
    #[serde(default)]
    pub data_sha256: String,
    /// For an image folder, the `(folder, class)` pairs that gave its labels.
    #[serde(default)]
    pub class_folders: Option<Vec<(String, usize)>>,
    /// How each image became the teacher's input (shape, resize, normalisation), from the
    /// teacher's metadata; absent in files written before it was recorded.
    #[serde(default)]
    pub input: Option<InputSpec>,
    /// The number format of the teacher's forward graph (fp32, or fp16 for a converted copy);
    /// absent in files written before it was recorded.
    #[serde(default)]
    pub teacher_precision: Option<Precision>,
}

impl Provenance {
    /// The context of `command` run with `teacher` on `source` (hashes the data's files once).
    pub fn new(command: &str, teacher: &Teacher, source: &dyn Source) -> Result<Provenance> {
        Ok(Provenance {
            command: command.to_string(),
            teacher: teacher.path.clone(),
            grad_graph: teacher.grad_path().map(std::path::Path::to_path_buf),
            backend: teacher.backend.clone(),
            batch_size: teacher.batch_size(),
            data: source.info().path.clone(),
            data_sha256: crate::data::fingerprint(source)?,
            class_folders: source.info().class_map.clone(),
            input: Some(teacher.meta.input.clone()),
            teacher_precision: Some(teacher.meta.precision),
        })
    }

    /// The file's `config`: this context with the job's own typed section beside it (its keys
    /// at the top level, as docs/hdf5-schema.md lists them).
    pub fn with(&self, section: &impl Serialize) -> serde_json::Value {
        let mut config = serde_json::to_value(self).expect("plain data serialises");
        let extra = serde_json::to_value(section).expect("plain data serialises");
        if let (Some(config), serde_json::Value::Object(extra)) = (config.as_object_mut(), extra) {
            config.extend(extra);
        }
        config
    }
}

/// A stored `config` read back: the run's context and the job's section `S`.
#[derive(Debug, Deserialize)]
pub struct Recorded<S> {
    #[serde(flatten)]
    pub run: Provenance,
    #[serde(flatten)]
    pub section: S,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Section {
        seed: u64,
        shapley: Vec<u32>,
    }

    fn context() -> Provenance {
        Provenance {
            command: "attribute".into(),
            teacher: "t.onnx".into(),
            grad_graph: None,
            backend: "tract (cpu)".into(),
            batch_size: 64,
            data: "d.idx".into(),
            data_sha256: "ab".into(),
            class_folders: Some(vec![("Bag".into(), 8)]),
            input: None,
            teacher_precision: None,
        }
    }

    #[test]
    fn the_section_sits_beside_the_context_and_reads_back_typed() {
        let section = Section {
            seed: 7,
            shapley: vec![1, 2],
        };
        let config = context().with(&section);
        assert_eq!(config["seed"], 7);
        assert_eq!(config["backend"], "tract (cpu)");
        assert_eq!(config["class_folders"][0][0], "Bag");
        let back: Recorded<Section> = serde_json::from_value(config).unwrap();
        assert_eq!(back.run, context());
        assert_eq!(back.section, section);
    }

    #[test]
    fn an_older_file_without_a_fingerprint_reads_with_it_empty() {
        let old = serde_json::json!({
            "command": "distill", "teacher": "t.onnx", "backend": "ort", "data": "d",
            "seed": 1, "shapley": [],
        });
        let back: Recorded<Section> = serde_json::from_value(old).unwrap();
        assert_eq!(back.run.data_sha256, "");
        assert_eq!(back.run.grad_graph, None);
    }
}
