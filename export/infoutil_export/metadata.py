"""The metadata contract between the exported ONNX files and the Rust loader (schema "1").

Every value is a string; structured values are JSON. Keys (prefix "infoutil."):
  schema, role ("forward" | "grad" | "cam"), input_shape ([C, H, W]), normalization
  ({"kind": "mean_std", "mean": [...], "std": [...]} or {"kind": "baked"}; pixels are first scaled
  to [0, 1]), class_names, framework, checkpoint_epoch, epochs_total, weights_sha256,
  dataset, test_top1, layout ("NCHW" | "NHWC", how the graph takes [C, H, W]), input_name (the
  image input's name; a grad file's inputs are [input_name, "y"]), resize (optional, how images
  of other sizes become [H, W]: {"kind": "stretch"}, the default, a bilinear resize of the whole
  image, or {"kind": "shorter_side", "size": S}, torchvision's Resize(S) + CenterCrop((H, W)),
  S >= max(H, W)), in the grad file only: param_names, last_layer_params, and in the cam file
  (NAME.cam.onnx, the Grad-CAM graph: inputs [input_name, "y"], outputs activations and
  gradients [N, K, h, w]) only: cam_layer, the name of the module whose output it explains (in
  the PyTorch model's named_modules()). All three files carry the same weights_sha256.
Optional, forward graph only: precision ("fp32", the default, or "fp16": float16 weights and
arithmetic inside, float32 input and logits, made by export/convert_precision.py) and, with fp16,
converted_weights_sha256 (weights_sha256 over its float16 initializers; weights_sha256 stays
that of the float32 weights it was converted from, which its gradient graph carries).
Binding (every graph): graph_weights_sha256, the hash of the graph's own floating-point
initializers (graph_weights_sha256() below; the forward graph's weights_sha256 for a float32
forward graph, its converted_weights_sha256 for a float16 one) and, in the forward graph only,
sibling_weights_sha256, a JSON object from the role of each sibling graph exported with it
("grad", "cam") to that graph's graph_weights_sha256. The Rust loader recomputes each graph's
hash and accepts a sibling only when the forward graph lists it (src/teacher/binding.rs): a
gradient graph of another checkpoint is refused even with weights_sha256 copied into it.
"""
import hashlib
import json
import os

import numpy as np
import onnx
from onnx import numpy_helper

SCHEMA = "1"
PREFIX = "infoutil."
MAX_IR_VERSION = 10  # ONNX Runtime 1.31 refuses IR 14, the default of onnx 1.23 when saving


def weights_sha256(model_proto, data_type=onnx.TensorProto.FLOAT):
    """SHA-256 over the FLOAT initializers of a (forward) graph, sorted by the UTF-8 bytes of their
    names; each contributes name + b"\\0" + its float32 values, little-endian, row-major.
    The Rust loader recomputes this from the forward file and compares it with both files' value.
    With data_type FLOAT16, the same over the float16 initializers (2-byte values): the
    `converted_weights_sha256` of a graph made by export/convert_precision.py."""
    dtype = {onnx.TensorProto.FLOAT: "<f4", onnx.TensorProto.FLOAT16: "<f2"}[data_type]
    h = hashlib.sha256()
    inits = [t for t in model_proto.graph.initializer if t.data_type == data_type]
    for t in sorted(inits, key=lambda t: t.name.encode("utf-8")):
        values = np.ascontiguousarray(numpy_helper.to_array(t), dtype=dtype)
        h.update(t.name.encode("utf-8") + b"\0" + values.tobytes(order="C"))
    return h.hexdigest()


FLOATING = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)


def graph_weights_sha256(model_proto):
    """SHA-256 over a graph's own floating-point initializers (float32, float16, float64), sorted
    by the UTF-8 bytes of their names; each contributes name + b"\\0" + its values, little-endian
    in their own width, row-major. Equal to weights_sha256() for a float32 graph and to its
    FLOAT16 variant for a graph made by export/convert_precision.py."""
    width = {onnx.TensorProto.FLOAT: "<f4", onnx.TensorProto.FLOAT16: "<f2",
             onnx.TensorProto.DOUBLE: "<f8"}
    h = hashlib.sha256()
    inits = [t for t in model_proto.graph.initializer if t.data_type in FLOATING]
    for t in sorted(inits, key=lambda t: t.name.encode("utf-8")):
        values = np.ascontiguousarray(numpy_helper.to_array(t), dtype=width[t.data_type])
        h.update(t.name.encode("utf-8") + b"\0" + values.tobytes(order="C"))
    return h.hexdigest()


def bind(forward, siblings):
    """Bind a package's graphs by hash, in place: each graph (the forward ModelProto and the
    sibling ModelProtos of `siblings`, by role "grad" / "cam") gets its own
    infoutil.graph_weights_sha256, and the forward graph lists its siblings' in
    infoutil.sibling_weights_sha256 (merged into the roles it already lists). Call it after
    attach(). Returns the forward graph's list."""
    for role in siblings:
        if role not in ("grad", "cam"):
            raise ValueError(f"a sibling graph is 'grad' or 'cam', not {role!r}")
    listed = json.loads(read(forward).get(PREFIX + "sibling_weights_sha256", "{}"))
    for role, proto in siblings.items():
        listed[role] = stamp_own(proto)
    stamp_own(forward)
    _set(forward, "sibling_weights_sha256", json.dumps(dict(sorted(listed.items()))))
    return listed


def stamp_own(model_proto):
    """Record a graph's own infoutil.graph_weights_sha256 in it; returns the hash."""
    own = graph_weights_sha256(model_proto)
    _set(model_proto, "graph_weights_sha256", own)
    return own


def write_atomic(model_proto, path):
    """Save `model_proto` to `path` through a temporary file beside it (keeping the file's mode),
    so a reader never sees half a teacher."""
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        onnx.save_model(model_proto, tmp, save_as_external_data=False)
        if os.path.exists(path):
            os.chmod(tmp, os.stat(path).st_mode & 0o777)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _set(model_proto, key, value):
    """Set one infoutil.* metadata entry, keeping the others and their order."""
    for p in model_proto.metadata_props:
        if p.key == PREFIX + key:
            p.value = value
            return
    entry = model_proto.metadata_props.add()
    entry.key, entry.value = PREFIX + key, value


def mean_std(mean, std):
    return {"kind": "mean_std", "mean": [float(m) for m in mean], "std": [float(s) for s in std]}


BAKED = {"kind": "baked"}


def shorter_side(size):
    """The `resize` value of torchvision's ImageNet recipe: Resize(size), then the centre crop."""
    return {"kind": "shorter_side", "size": int(size)}


def build(role, *, input_shape, normalization, class_names, framework, weights_hash,
          checkpoint_epoch=None, epochs_total=None, dataset=None, test_top1=None,
          layout="NCHW", input_name="x", param_names=None, last_layer_params=None,
          cam_layer=None, extra=None):
    if role not in ("forward", "grad", "cam"):
        raise ValueError(role)
    if normalization.get("kind") not in ("mean_std", "baked"):
        raise ValueError(f"normalization kind must be mean_std or baked: {normalization}")
    meta = {
        "schema": SCHEMA,
        "role": role,
        "input_shape": json.dumps([int(v) for v in input_shape]),
        "normalization": json.dumps(normalization),
        "class_names": json.dumps(list(class_names)),
        "framework": framework,
        "weights_sha256": weights_hash,
        "layout": layout,
        "input_name": input_name,
    }
    optional = {"checkpoint_epoch": checkpoint_epoch, "epochs_total": epochs_total,
                "dataset": dataset, "test_top1": None if test_top1 is None else f"{test_top1:.4f}"}
    meta.update({k: str(v) for k, v in optional.items() if v is not None})
    if role == "grad":
        if param_names is None or last_layer_params is None:
            raise ValueError("grad metadata needs param_names and last_layer_params")
        meta["param_names"] = json.dumps(list(param_names))
        meta["last_layer_params"] = json.dumps([int(i) for i in last_layer_params])
    if role == "cam":
        if not cam_layer or not isinstance(cam_layer, str):
            raise ValueError("cam metadata needs cam_layer, the module's name")
        meta["cam_layer"] = cam_layer
    elif cam_layer is not None:
        raise ValueError(f"cam_layer belongs to the cam file, not to a {role} file")
    for k, v in (extra or {}).items():
        meta[k] = v if isinstance(v, str) else json.dumps(v)
    return {PREFIX + k: v for k, v in meta.items()}


def attach(model_proto, meta):
    """Replace infoutil.* entries, keep others; cap the IR version."""
    keep = [(p.key, p.value) for p in model_proto.metadata_props if not p.key.startswith(PREFIX)]
    del model_proto.metadata_props[:]
    for k, v in keep + sorted(meta.items()):
        entry = model_proto.metadata_props.add()
        entry.key, entry.value = k, v
    model_proto.ir_version = min(model_proto.ir_version, MAX_IR_VERSION)
    return model_proto


def read(path_or_proto):
    m = onnx.load(path_or_proto) if isinstance(path_or_proto, str) else path_or_proto
    return {p.key: p.value for p in m.metadata_props}
