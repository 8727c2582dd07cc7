//! One run identity: what decides the bytes of a result, and nothing else. `--resume` (the
//! checkpoint fingerprint), `merge` (shards of one run) and `--maps-from` (maps of the same
//! data and teacher) compare the same thing, so they cannot disagree: the teacher package and
//! data by content, every option that changes the output, the class mapping, and the backend
//! (ONNX Runtime and tract agree to 1e-4, not bit for bit). Options that only change how the
//! work is scheduled (batch size, ONNX Runtime sessions, threads, the shard's class list) and
//! paths (a moved dataset is the same dataset) are not part of it.

use serde_json::Value;

/// Keys of a recorded `config` that never change a result's bytes.
const SCHEDULING: [&str; 6] = [
    "batch_size",
    "ort_sessions",
    "threads",
    "command",
    "teacher",
    "grad_graph",
];

/// The backend as far as it decides the numbers: "onnxruntime (cuda:1)" and "(cuda:0)" are one
/// backend; "tract (cpu)" and "onnxruntime (cpu)" are two.
pub fn backend(described: &str) -> String {
    match described.split_once(':') {
        Some((kind, _)) => format!("{kind})"),
        None => described.to_string(),
    }
}

/// The identity of a recorded `config` (a result file's attribute): the config less
/// [`SCHEDULING`], the data's path and the shard's class list, with [`backend`] normalised.
pub fn of_config(config: &Value) -> Value {
    let mut c = config.clone();
    if let Some(map) = c.as_object_mut() {
        for key in SCHEDULING.iter().chain(&["data"]) {
            map.remove(*key);
        }
        if let Some(Value::String(b)) = map.get("backend") {
            let b = backend(b);
            map.insert("backend".into(), Value::String(b));
        }
        if let Some(d) = map.get_mut("distill").and_then(|d| d.as_object_mut()) {
            d.remove("classes");
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheduling_options_and_paths_are_not_identity_but_backends_are() {
        let a = serde_json::json!({
            "backend": "onnxruntime (cuda:0)", "batch_size": 64, "data": "/a/d.gz",
            "data_sha256": "ab", "distill": {"seed": 1, "classes": [0]},
        });
        let b = serde_json::json!({
            "backend": "onnxruntime (cuda:3)", "batch_size": 8, "data": "/b/d.gz",
            "data_sha256": "ab", "distill": {"seed": 1, "classes": [1, 2]},
        });
        assert_eq!(of_config(&a), of_config(&b));
        let mut c = b.clone();
        c["backend"] = "tract (cpu)".into();
        assert_ne!(of_config(&a), of_config(&c));
        let mut d = b.clone();
        d["data_sha256"] = "cd".into();
        assert_ne!(of_config(&a), of_config(&d));
    }
}
