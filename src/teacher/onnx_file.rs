//! Reading an ONNX file as untrusted input: it must decode as a model, keep any external data
//! inside its own folder, and carry the metadata that makes it a teacher.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};
use tract_onnx::pb::{GraphProto, ModelProto, TensorProto};
use tract_onnx::prelude::Framework;

use crate::base::hash::hex;
use crate::error::{Error, Result};

/// ONNX `TensorProto.DataType.FLOAT`.
const FLOAT: i32 = 1;
/// ONNX `TensorProto.DataType.FLOAT16`.
const FLOAT16: i32 = 10;
/// ONNX `TensorProto.DataType.DOUBLE`.
const DOUBLE: i32 = 11;
/// ONNX `TensorProto.DataLocation.EXTERNAL`.
const EXTERNAL: i32 = 1;

/// A decoded, checked ONNX file.
pub struct OnnxFile {
    pub path: PathBuf,
    pub proto: ModelProto,
    /// SHA-256 of the file's bytes (of the file it was derived from, for a derived graph).
    pub file_sha256: String,
    /// A graph built in memory from the file at `path` (e.g. the Shapley game around a forward
    /// graph), not the file itself: backends must load `proto`, not `path`.
    in_memory: bool,
}

impl OnnxFile {
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = crate::input::read(path)?;
        Self::from_bytes(path, &bytes)
    }

    /// [`OnnxFile::read`] of `bytes` as the file at `path` (its folder is where external data is
    /// looked for); the fuzz targets call this.
    pub fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self> {
        let proto = tract_onnx::onnx()
            .proto_model_for_read(&mut &bytes[..])
            .map_err(|e| Error::teacher(path, format!("not an ONNX model ({e})")))?;
        // Protobuf decodes many non-ONNX byte strings without complaint; a model has both.
        if proto.ir_version == 0 || proto.graph.is_none() {
            return Err(Error::teacher(
                path,
                "not an ONNX model (no IR version or no graph)",
            ));
        }
        let file = OnnxFile {
            path: path.to_path_buf(),
            proto,
            file_sha256: hex(&Sha256::digest(bytes)),
            in_memory: false,
        };
        file.check_external_data()?;
        Ok(file)
    }

    /// A graph built from this one (same folder, so external data still resolves).
    pub fn derived(&self, proto: ModelProto) -> OnnxFile {
        OnnxFile {
            path: self.path.clone(),
            proto,
            file_sha256: self.file_sha256.clone(),
            in_memory: true,
        }
    }

    pub fn graph(&self) -> &GraphProto {
        self.proto.graph.as_ref().expect("checked in read")
    }

    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// The op type of the node that makes the graph's first output, looking through Identity
    /// nodes (for messages about what the outputs are, e.g. "Softmax").
    pub fn output_op(&self) -> Option<String> {
        let g = self.graph();
        let mut name = g.output.first()?.name.clone();
        while let Some(node) = g.node.iter().find(|n| n.output.contains(&name)) {
            if node.op_type != "Identity" {
                return Some(node.op_type.clone());
            }
            name = node.input.first()?.clone();
        }
        None
    }

    /// `metadata_props` as a map.
    pub fn metadata(&self) -> BTreeMap<String, String> {
        self.proto
            .metadata_props
            .iter()
            .map(|e| (e.key.clone(), e.value.clone()))
            .collect()
    }

    /// Names of the graph's inputs that are not initializers, in order.
    pub fn input_names(&self) -> Vec<String> {
        let g = self.graph();
        g.input
            .iter()
            .map(|i| i.name.clone())
            .filter(|n| !g.initializer.iter().any(|t| &t.name == n))
            .collect()
    }

    pub fn output_names(&self) -> Vec<String> {
        self.graph().output.iter().map(|o| o.name.clone()).collect()
    }

    /// Static dimensions of a graph input or output (`None` for symbolic ones).
    pub fn dims(&self, name: &str) -> Option<Vec<Option<i64>>> {
        use tract_onnx::pb::{tensor_shape_proto::dimension::Value, type_proto::Value as Ty};
        let g = self.graph();
        let info = g.input.iter().chain(&g.output).find(|v| v.name == name)?;
        let Some(Ty::TensorType(t)) = info.r#type.as_ref()?.value.as_ref() else {
            return None;
        };
        let dims = t.shape.as_ref()?.dim.iter().map(|d| match d.value {
            Some(Value::DimValue(v)) => Some(v),
            _ => None,
        });
        Some(dims.collect())
    }

    /// The weights hash of the metadata contract: SHA-256 over the float initializers sorted by
    /// name, each as `name`, a zero byte, then its values as little-endian f32.
    pub fn weights_sha256(&self) -> Result<String> {
        self.hash_initializers(&[FLOAT])
    }

    /// The same over the float16 initializers (2-byte values): a converted graph's
    /// `converted_weights_sha256` (export/convert_precision.py).
    pub fn weights_fp16_sha256(&self) -> Result<String> {
        self.hash_initializers(&[FLOAT16])
    }

    /// The same over every floating-point initializer (float32, float16, float64, each in its
    /// own width): the graph's own `graph_weights_sha256`, which binds the graphs of a package
    /// (binding.rs). For a float32 graph it is [`OnnxFile::weights_sha256`], for a converted
    /// float16 one [`OnnxFile::weights_fp16_sha256`].
    pub fn own_weights_sha256(&self) -> Result<String> {
        self.hash_initializers(&[FLOAT, FLOAT16, DOUBLE])
    }

    fn hash_initializers(&self, data_types: &[i32]) -> Result<String> {
        let mut tensors: Vec<&TensorProto> = self
            .graph()
            .initializer
            .iter()
            .filter(|t| data_types.contains(&t.data_type))
            .collect();
        tensors.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let mut hasher = Sha256::new();
        for t in tensors {
            hasher.update(t.name.as_bytes());
            hasher.update([0u8]);
            if t.data_location == Some(EXTERNAL) {
                hasher.update(self.read_external(t)?);
            } else if !t.raw_data.is_empty() {
                hasher.update(&t.raw_data);
            } else {
                hash_typed_values(&mut hasher, t);
            }
        }
        Ok(hex(&hasher.finalize()))
    }

    /// Refuse external-data references that leave the model's folder: a model file must not be
    /// able to make the tool read arbitrary files.
    fn check_external_data(&self) -> Result<()> {
        let mut tensors = Vec::new();
        collect_tensors(self.graph(), &mut tensors);
        for t in tensors {
            if t.data_location == Some(EXTERNAL) {
                self.external_path(t)?;
            }
        }
        Ok(())
    }

    fn external_path(&self, t: &TensorProto) -> Result<PathBuf> {
        let location = external_key(t, "location").ok_or_else(|| {
            Error::teacher(
                &self.path,
                format!("tensor '{}' has external data without a location", t.name),
            )
        })?;
        let rel = Path::new(location);
        let escapes = rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir));
        if escapes {
            return Err(Error::teacher(
                &self.path,
                format!(
                    "tensor '{}' points to external data '{location}' outside the model's folder; \
                     only plain relative paths inside it are accepted",
                    t.name
                ),
            ));
        }
        let full = self.dir().join(rel);
        // A relative path can still leave the folder through a symbolic link.
        let (real, dir) = (full.canonicalize(), self.dir().canonicalize());
        match (real, dir) {
            (Ok(real), Ok(dir)) if real.starts_with(&dir) => Ok(full),
            (Err(e), _) => Err(Error::teacher(
                &self.path,
                format!(
                    "external data '{location}' of tensor '{}': {e}",
                    t.name
                ),
            )),
            _ => Err(Error::teacher(
                &self.path,
                format!(
                    "tensor '{}' points to external data '{location}' that resolves outside the model's folder",
                    t.name
                ),
            )),
        }
    }

    fn read_external(&self, t: &TensorProto) -> Result<Vec<u8>> {
        let path = self.external_path(t)?;
        let num = |k: &str| external_key(t, k).and_then(|v| v.parse::<u64>().ok());
        let mut f = std::fs::File::open(&path).map_err(|e| Error::io(&path, e))?;
        let mut buf = Vec::new();
        f.seek(SeekFrom::Start(num("offset").unwrap_or(0)))
            .and_then(|_| match num("length") {
                Some(len) => f.take(len).read_to_end(&mut buf),
                None => f.read_to_end(&mut buf),
            })
            .map_err(|e| Error::io(&path, e))?;
        Ok(buf)
    }
}

impl OnnxFile {
    /// The model re-encoded with every external tensor read into the file, or `None` when it
    /// has none and the file itself can be loaded (a derived graph is always encoded). ONNX
    /// Runtime needs this: it resolves shape tensors (e.g. a Reshape's target)
    /// before it loads external data, and fails on valid models that keep them outside.
    pub fn inlined(&self) -> Result<Option<Vec<u8>>> {
        let mut tensors = Vec::new();
        collect_tensors(self.graph(), &mut tensors);
        if !tensors.iter().any(|t| t.data_location == Some(EXTERNAL)) {
            return Ok(self
                .in_memory
                .then(|| prost::Message::encode_to_vec(&self.proto)));
        }
        let mut proto = self.proto.clone();
        let mut failure = None;
        visit_tensors_mut(proto.graph.as_mut().expect("checked in read"), &mut |t| {
            if t.data_location == Some(EXTERNAL) && failure.is_none() {
                match self.read_external(t) {
                    Ok(bytes) => {
                        t.raw_data = bytes;
                        t.data_location = None;
                        t.external_data.clear();
                    }
                    Err(e) => failure = Some(e),
                }
            }
        });
        match failure {
            Some(e) => Err(e),
            None => Ok(Some(prost::Message::encode_to_vec(&proto))),
        }
    }
}

/// A tensor's values kept in ONNX's typed fields (not raw bytes), little-endian in their width.
fn hash_typed_values(hasher: &mut Sha256, t: &TensorProto) {
    match t.data_type {
        // ONNX keeps float16 values that are not raw bytes one per int32, as their bits.
        FLOAT16 => t
            .int32_data
            .iter()
            .for_each(|v| hasher.update((*v as u16).to_le_bytes())),
        DOUBLE => t
            .double_data
            .iter()
            .for_each(|v| hasher.update(v.to_le_bytes())),
        _ => t
            .float_data
            .iter()
            .for_each(|v| hasher.update(v.to_le_bytes())),
    }
}

/// [`collect_tensors`], mutably.
fn visit_tensors_mut(g: &mut GraphProto, f: &mut dyn FnMut(&mut TensorProto)) {
    g.initializer.iter_mut().for_each(&mut *f);
    for s in &mut g.sparse_initializer {
        s.values
            .iter_mut()
            .chain(s.indices.iter_mut())
            .for_each(&mut *f);
    }
    for attr in g.node.iter_mut().flat_map(|n| &mut n.attribute) {
        attr.t.iter_mut().for_each(&mut *f);
        attr.tensors.iter_mut().for_each(&mut *f);
        for sub in attr.g.iter_mut().chain(attr.graphs.iter_mut()) {
            visit_tensors_mut(sub, f);
        }
    }
}

fn external_key<'a>(t: &'a TensorProto, key: &str) -> Option<&'a str> {
    t.external_data
        .iter()
        .find(|e| e.key == key)
        .map(|e| e.value.as_str())
}

/// Every tensor stored in a graph: initializers and tensor attributes, subgraphs included.
fn collect_tensors<'a>(g: &'a GraphProto, out: &mut Vec<&'a TensorProto>) {
    out.extend(&g.initializer);
    for s in &g.sparse_initializer {
        out.extend(s.values.iter().chain(&s.indices));
    }
    for attr in g.node.iter().flat_map(|n| &n.attribute) {
        out.extend(attr.t.as_ref());
        out.extend(&attr.tensors);
        for sub in attr.g.iter().chain(&attr.graphs) {
            collect_tensors(sub, out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::OnnxFile;

    #[test]
    fn output_op_is_the_shipped_classifier() {
        let f = OnnxFile::read(std::path::Path::new("models/fmnist-convnet3.onnx")).unwrap();
        assert_eq!(f.output_op().as_deref(), Some("Gemm"));
    }
}
