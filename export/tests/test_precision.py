"""export/convert_precision.py: the float16 copy of a teacher package is what the shipped one is
(same bytes: the conversion is deterministic), its metadata declares hashes that recompute from
its own weights, its logits stay within float16's rounding of the source's on real images, and
every refusal writes nothing.

    python export/tests/test_precision.py
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, ".."))
from infoutil_export import metadata  # noqa: E402

COMMAND = os.path.join(ROOT, "export", "convert_precision.py")
SOURCE = os.path.join(ROOT, "models", "fmnist-convnet3.onnx")
SHIPPED = os.path.join(ROOT, "models", "fmnist-convnet3-fp16.onnx")
IMAGES = os.path.join(ROOT, "data", "fashion-mnist-mini", "t10k-images-idx3-ubyte.gz")


def convert(src, out, *extra):
    return subprocess.run([sys.executable, COMMAND, src, "--to", "fp16", "--out", out, "--images", IMAGES,
                           *extra], capture_output=True, text=True)


def test_copy_is_the_shipped_one_and_declares_its_hashes(tmp):
    out = os.path.join(tmp, "t16.onnx")
    run = convert(SOURCE, out)
    assert run.returncode == 0, run.stderr
    with open(out, "rb") as a, open(SHIPPED, "rb") as b:
        assert a.read() == b.read(), "the conversion no longer reproduces models/fmnist-convnet3-fp16.onnx"
    with open(os.path.join(tmp, "t16.grad.onnx"), "rb") as a, \
            open(os.path.join(ROOT, "models", "fmnist-convnet3.grad.onnx"), "rb") as b:
        assert a.read() == b.read(), "the gradient graph is copied unchanged"
    half, full = onnx.load(out), onnx.load(SOURCE)
    meta, src_meta = metadata.read(half), metadata.read(full)
    assert meta["infoutil.precision"] == "fp16"
    assert meta["infoutil.weights_sha256"] == src_meta["infoutil.weights_sha256"]
    assert meta["infoutil.converted_weights_sha256"] == metadata.weights_sha256(half, onnx.TensorProto.FLOAT16)
    # The hash is over the float16 values: it is not the float32 one, and it changes with them.
    assert meta["infoutil.converted_weights_sha256"] != src_meta["infoutil.weights_sha256"]
    # bound: its own hash is the float16 weights', its siblings are the float32 export's
    assert meta["infoutil.graph_weights_sha256"] == meta["infoutil.converted_weights_sha256"]
    assert meta["infoutil.sibling_weights_sha256"] == src_meta["infoutil.sibling_weights_sha256"]
    assert not [t for t in half.graph.initializer if t.data_type == onnx.TensorProto.FLOAT
                and t.dims and np.prod(t.dims) > 1], "weights left in float32"
    report = json.load(open(os.path.join(tmp, "t16.convert.json")))
    assert report["top1_agreement"] >= 0.99 and report["finite"]


def test_logits_are_float16_rounding_of_the_source(tmp):
    """Independent of the converter's own check: ORT on both files, 1 000 real test images."""
    import gzip
    with gzip.open(IMAGES) as f:
        px = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    norm = json.loads(metadata.read(onnx.load(SOURCE))["infoutil.normalization"])
    x = ((px / 255.0 - norm["mean"][0]) / norm["std"][0]).astype(np.float32)
    run = lambda p: ort.InferenceSession(p, providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    a, b = run(SOURCE), run(SHIPPED)
    diff = np.abs(a - b).max()
    assert 0 < diff < 2e-3 * np.abs(a).max(), diff   # changed, by float16's 11 bits, no more
    assert (a.argmax(1) == b.argmax(1)).mean() >= 0.995


def test_refusals_write_nothing(tmp):
    out = os.path.join(tmp, "r.onnx")
    run = convert(SOURCE, out, "--min-agreement", "1.01")   # no copy can agree on 101 %
    assert run.returncode != 0 and "nothing written" in run.stderr, run.stderr
    run = convert(os.path.join(ROOT, "models", "fmnist-convnet3.grad.onnx"), out)
    assert run.returncode != 0 and "not the forward graph" in run.stderr, run.stderr
    run = convert(SHIPPED, out)
    assert run.returncode != 0 and "already converted" in run.stderr, run.stderr
    assert os.listdir(tmp) == [], os.listdir(tmp)


if __name__ == "__main__":
    for name, fn in list(globals().items()):
        if name.startswith("test_"):
            with tempfile.TemporaryDirectory() as d:
                fn(d)
                print("ok:", name)
