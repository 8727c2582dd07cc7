"""Reading what infoutil reads, from Python: idx files, file hashes and a teacher's input
normalisation. One copy for the package, examples/ and benches/ (examples/infoutil_io.py
re-exports it; numpy only; onnxruntime or onnx for the teacher metadata).

    from infoutil import io
    x = io.read_idx("data/fashion-mnist-mini/t10k-images-idx3-ubyte.gz", 3)
    mean, std = io.normalization("models/fmnist-convnet3.onnx")
"""
import gzip
import hashlib
import json
import struct
from pathlib import Path

import numpy as np


class DataError(ValueError):
    """A file that is not what it should be; the message names it."""


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _open_maybe_gz(path):
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gz else open(path, "rb")


def read_idx(path, expect_dims=None):
    """idx1 (labels) or idx3 (images) file, gzip-compressed or raw -> numpy uint8 array. gzip's
    checksum is verified (the whole stream is read), as infoutil verifies it."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    try:
        with _open_maybe_gz(path) as f:
            head = f.read(4)
            if len(head) < 4 or head[0] != 0 or head[1] != 0 or head[2] != 0x08:
                raise DataError(f"{path}: not an idx file of unsigned bytes (magic {head.hex()})")
            dims = head[3]
            if expect_dims is not None and dims != expect_dims:
                kind = {1: "an idx1 label file", 3: "an idx3 image file"}.get(expect_dims, "idx")
                raise DataError(f"{path}: expected {kind}, found an idx file with {dims} dimension(s)")
            shape = struct.unpack(">" + "I" * dims, f.read(4 * dims))
            n = int(np.prod(shape))
            buf = f.read(n)
            f.read()  # to the end: gzip checks its CRC there
    except (OSError, EOFError) as e:
        raise DataError(f"{path}: cannot be read ({e}); damaged file?") from e
    if len(buf) != n:
        raise DataError(f"{path}: truncated: {len(buf)} of {n} data bytes")
    return np.frombuffer(buf, dtype=np.uint8).reshape(shape)


def load_idx_pair(images_path, labels_path):
    x = read_idx(images_path, 3)
    y = read_idx(labels_path, 1).astype(np.int64)
    if len(x) != len(y):
        raise DataError(f"{images_path} has {len(x)} images but {labels_path} has {len(y)} labels")
    return x, y


def teacher_metadata(onnx_path):
    """The teacher's `infoutil.*` metadata as a dict (keys without the prefix)."""
    try:
        import onnxruntime
        meta = onnxruntime.InferenceSession(
            str(onnx_path), providers=["CPUExecutionProvider"]).get_modelmeta().custom_metadata_map
    except ImportError:
        import onnx
        meta = {p.key: p.value for p in onnx.load(str(onnx_path), load_external_data=False).metadata_props}
    return {k[len("infoutil."):]: v for k, v in meta.items() if k.startswith("infoutil.")}


def normalization(onnx_path):
    """Per-channel (mean, std) that turn pixels/255 into the teacher's input, as its metadata
    declares them (a teacher that normalises inside its graph gives zeros and ones)."""
    meta = teacher_metadata(onnx_path)
    if "normalization" not in meta:
        raise DataError(f"{onnx_path}: no infoutil.normalization in its metadata")
    norm = json.loads(meta["normalization"])
    channels = json.loads(meta.get("input_shape", "[1]"))[0]
    if norm.get("kind") == "mean_std":
        return np.asarray(norm["mean"], np.float32), np.asarray(norm["std"], np.float32)
    return np.zeros(channels, np.float32), np.ones(channels, np.float32)


def to_teacher_input(pixels, onnx_path):
    """uint8 images [N, H, W] (grey) or [N, C, H, W] -> float32 [N, C, H, W] in the teacher's
    input space."""
    mean, std = normalization(onnx_path)
    x = pixels.astype(np.float32) / 255.0
    if x.ndim == 3:
        x = x[:, None]
    return (x - mean[None, :, None, None]) / std[None, :, None, None]
