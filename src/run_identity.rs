//! One run identity: what decides the bytes of a result, and nothing else. `--resume` (the
//! checkpoint fingerprint), `merge` (shards of one run) and `--maps-from` (maps of the same
//! data and teacher) all compare a [`RunIdentity`] made here from the `config` a result file
//! records (or, before a run, the one it will record) and its `teacher_sha256`, so the three
//! cannot disagree: the teacher package and data by content, the label teacher by content,
//! every option that changes the output, the class mapping, and the backend (ONNX Runtime and
//! tract agree to 1e-4, not bit for bit). Options that only change how the work is scheduled
//! (batch size, ONNX Runtime sessions, threads, the shard's class list), paths (a moved dataset
//! is the same dataset) and what follows from the rest (the classes the data lacks) are not part
//! of it. `--maps-from` compares the part that decides the Shapley maps ([`RunIdentity::maps`]).

use std::collections::BTreeSet;

use serde_json::Value;

/// Keys of a recorded `config` that never change a result's bytes: scheduling, the command's
/// name, paths (each input is in the identity by content), and what follows from the rest.
const NOT_IDENTITY: [&str; 12] = [
    "batch_size",
    "ort_sessions",
    "threads",
    "command",
    "teacher",
    "grad_graph",
    "data",
    "label_teacher",
    "label_teacher_from_output",
    "merged_from",
    "absent_classes",
    "maps_from",
];

/// The keys of the identity that decide a Shapley map, with the `distill` options that do.
const MAPS: [&str; 5] = [
    "teacher_sha256",
    "data_sha256",
    "class_folders",
    "backend",
    "input",
];
const MAPS_OPTIONS: [&str; 3] = ["attribution", "shapley", "seed"];

/// The backend as far as it decides the numbers: "onnxruntime (cuda:1)" and "(cuda:0)" are one
/// backend; "tract (cpu)" and "onnxruntime (cpu)" are two.
pub fn backend(described: &str) -> String {
    match described.split_once(':') {
        Some((kind, _)) => format!("{kind})"),
        None => described.to_string(),
    }
}

/// What decides a result's bytes, as a JSON object (see the module's text).
#[derive(Debug, Clone, PartialEq)]
pub struct RunIdentity(Value);

impl RunIdentity {
    /// The identity of a result whose file records `config` and `teacher_sha256` (or of the run
    /// about to write them).
    pub fn of(config: &Value, teacher_sha256: &str) -> RunIdentity {
        let mut c = config.clone();
        if let Some(map) = c.as_object_mut() {
            for key in NOT_IDENTITY {
                map.remove(key);
            }
            if let Some(Value::String(b)) = map.get("backend") {
                let b = backend(b);
                map.insert("backend".into(), Value::String(b));
            }
            // Whether maps were reused, not from where: a reused map is float32, so it may
            // differ from a recomputed one in the eighth digit.
            let reused = config.get("maps_from").is_some_and(|m| !m.is_null());
            map.insert("maps_reused".into(), Value::Bool(reused));
            map.insert("teacher_sha256".into(), teacher_sha256.into());
            if let Some(d) = map.get_mut("distill").and_then(|d| d.as_object_mut()) {
                d.remove("classes");
            }
        }
        RunIdentity(c)
    }

    /// The part that decides the Shapley maps of `--maps-from`: teacher, data, class mapping,
    /// backend and input by [`MAPS`], and the attribution, Shapley options and seed.
    pub fn maps(&self) -> RunIdentity {
        let mut out = serde_json::Map::new();
        for key in MAPS {
            if let Some(v) = self.0.get(key) {
                out.insert(key.into(), v.clone());
            }
        }
        let mut options = serde_json::Map::new();
        for key in MAPS_OPTIONS {
            if let Some(v) = self.0.get("distill").and_then(|d| d.get(key)) {
                options.insert(key.into(), v.clone());
            }
        }
        out.insert("distill".into(), Value::Object(options));
        RunIdentity(Value::Object(out))
    }

    /// The first field where `self` (here) and `other` (there) differ, worded
    /// "config.distill.seed is 8 here and 7 there"; None when they are one run.
    pub fn difference(&self, other: &RunIdentity) -> Option<String> {
        self.differing(other).map(|(_, said)| said)
    }

    /// [`RunIdentity::difference`] with the field's path (e.g. "config.distill.seed").
    pub fn differing(&self, other: &RunIdentity) -> Option<(String, String)> {
        first_difference(&self.0, &other.0, "config")
    }

    /// The value of `key` (e.g. "data_sha256"), for messages.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// A digest of the identity (a checkpoint's fingerprint). serde_json keeps object keys
    /// sorted, so equal identities give equal digests.
    pub fn fingerprint(&self) -> String {
        use sha2::{Digest, Sha256};
        format!("{:x}", Sha256::digest(self.0.to_string()))
    }
}

fn first_difference(a: &Value, b: &Value, at: &str) -> Option<(String, String)> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| {
                let here = format!("{at}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(u), Some(v)) => first_difference(u, v, &here),
                    (u, v) => Some((
                        here.clone(),
                        format!(
                            "{here} is {} here and {} there",
                            u.map_or("absent".into(), Value::to_string),
                            v.map_or("absent".into(), Value::to_string)
                        ),
                    )),
                }
            })
        }
        _ if a == b => None,
        _ => Some((at.to_string(), format!("{at} is {a} here and {b} there"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(config: Value) -> RunIdentity {
        RunIdentity::of(&config, "t")
    }

    #[test]
    fn scheduling_options_and_paths_are_not_identity_but_backends_are() {
        let a = serde_json::json!({
            "backend": "onnxruntime (cuda:0)", "batch_size": 64, "data": "/a/d.gz",
            "data_sha256": "ab", "distill": {"seed": 1, "classes": [0]},
            "label_teacher": "/a/t-early.onnx", "label_teacher_sha256": "e",
        });
        let b = serde_json::json!({
            "backend": "onnxruntime (cuda:3)", "batch_size": 8, "data": "/b/d.gz",
            "data_sha256": "ab", "distill": {"seed": 1, "classes": [1, 2]},
            "label_teacher": "/b/t-early.onnx", "label_teacher_sha256": "e",
        });
        assert_eq!(id(a.clone()), id(b.clone()));
        assert_eq!(id(a.clone()).fingerprint(), id(b.clone()).fingerprint());
        for (key, value) in [
            ("backend", "tract (cpu)"),
            ("data_sha256", "cd"),
            ("label_teacher_sha256", "f"),
        ] {
            let mut c = b.clone();
            c[key] = value.into();
            let d = id(a.clone()).difference(&id(c.clone())).expect(key);
            assert!(d.starts_with(&format!("config.{key} is")), "{d}");
            assert_ne!(id(a.clone()).fingerprint(), id(c).fingerprint());
        }
        assert_ne!(RunIdentity::of(&a, "t"), RunIdentity::of(&a, "u"));
    }

    #[test]
    fn the_maps_part_ignores_what_maps_do_not_depend_on() {
        let a = serde_json::json!({
            "backend": "tract (cpu)", "data_sha256": "ab", "label_teacher_sha256": "e",
            "distill": {"seed": 1, "ipc": 10, "shapley": {"budget": 8}, "attribution": "shapley"},
        });
        let mut b = a.clone();
        b["label_teacher_sha256"] = "f".into();
        b["distill"]["ipc"] = 1.into();
        b["maps_from"] = "x.h5".into();
        assert_ne!(id(a.clone()), id(b.clone()));
        assert_eq!(id(a.clone()).maps(), id(b.clone()).maps());
        b["distill"]["shapley"]["budget"] = 16.into();
        let d = id(b.clone()).maps().difference(&id(a.clone()).maps());
        assert_eq!(
            d.as_deref(),
            Some("config.distill.shapley.budget is 16 here and 8 there")
        );
        b["distill"]["shapley"]["budget"] = 8.into();
        b["backend"] = "onnxruntime (cpu)".into();
        assert!(id(a).maps().difference(&id(b).maps()).is_some());
    }
}
