"""Keras `.h5` files written by TensorFlow 2.15 (tf.keras = Keras 2), exported by Keras 3 as the
export/README.md "Keras" recipe does, become verified teachers whose ONNX Runtime logits are
TensorFlow 2.15's own and whose gradient norms are TensorFlow's own float64 per-sample gradients.

The fixtures (tests/data/keras2_h5/, ~120 KB) are real exporter output, not hand-built graphs:
`tiny-cnn` (TensorFlow's tutorial CNN shape: Flatten, which Keras 3 writes as a dynamic
Shape/Gather/Cast/Slice/Concat reshape) and `tiny-xception` (fer's mini-Xception block plus a
DepthwiseConv2D + ReLU6: BatchNorm folded by tf2onnx, SeparableConv2D, a strided residual, Add,
GlobalAveragePool + Squeeze, the final softmax cut off). `reference.json` holds TensorFlow 2.15's
logits on the first 16 embedded Fashion-MNIST test images (pixels / 255, their own labels), and
for tiny-cnn (whose ONNX initializers are exactly its 8 Keras weights) TensorFlow's float64
per-sample gradient norms. The same two, converted by `export/zoo.py`, are zoo members
(models/zoo/keras2-tiny-*), which tests/it/zoo.rs runs on tract and ONNX Runtime. Made with:

    .venv-tf215/bin/python export/keras2_h5.py fixture --out-dir tests/data/keras2_h5
    for n in tiny-cnn tiny-xception; do
      .venv-tf/bin/python export/keras_to_onnx.py tests/data/keras2_h5/$n.h5 tests/data/keras2_h5/$n.onnx
    done

(TensorFlow 2.15.1 / Keras 2.15.0; Keras 3.15.1 / TensorFlow 2.21 / tf2onnx 1.17.0.)

    python export/tests/test_keras_h5.py
"""
import json
import os
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))
import infoutil.export  # noqa: E402
sys.path.insert(0, os.path.join(ROOT, "export"))
from infoutil_export.data import read_idx_images  # noqa: E402

FIXTURES = os.path.join(ROOT, "tests", "data", "keras2_h5")
# the pixel convention keras2_h5.py fed TensorFlow, written out here, not taken from the exporter
PIXELS = {"unit": lambda p: p / 255.0}


def run(name, ref, tmp):
    net = ref["nets"][name]
    pixels = np.asarray(read_idx_images(os.path.join(ROOT, ref["images"])))[:ref["n"]]
    labels = np.asarray(ref["labels"], np.int64)
    src = os.path.join(FIXTURES, name + ".onnx")
    producer = onnx.load(src).producer_name
    assert producer == "tf2onnx", (src, producer)
    path = os.path.join(tmp, name, name + ".onnx")
    report = infoutil.export.from_onnx(src, (1, 28, 28), pixels=net["pixels"],
                                       class_names=list("abcdefghij"), path=path,
                                       images=pixels[:, None], labels=labels, log=lambda m: None)
    assert report["grad"]["verified"], report
    fwd = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    meta = fwd.get_modelmeta().custom_metadata_map
    assert meta["infoutil.layout"] == "NHWC", meta
    x = PIXELS[net["pixels"]](pixels.astype(np.float64))[..., None].astype(np.float32)
    feed = {meta["infoutil.input_name"]: x}
    logits = fwd.run(None, feed)[0]
    tf_logits = np.asarray(net["logits"])
    err = float(np.abs(logits - tf_logits).max())
    assert err < 1e-5, (name, err, logits[:2], tf_logits[:2])
    line = f"{name}: ONNX Runtime logits vs TensorFlow 2.15's {err:.2g}"
    if "grad_norms_float64" in net:
        grad = ort.InferenceSession(path[:-5] + ".grad.onnx", providers=["CPUExecutionProvider"])
        norms = grad.run(["norms"], dict(feed, y=labels))[0]
        gmeta = grad.get_modelmeta().custom_metadata_map
        assert len(json.loads(gmeta["infoutil.param_names"])) == net["grad_params"], gmeta
        tf_norms = np.asarray(net["grad_norms_float64"])
        rel = float((np.abs(norms - tf_norms) / tf_norms).max())
        assert rel < 1e-4, (name, rel, norms, tf_norms)
        line += f", gradient norms vs TensorFlow's float64 {rel:.2g} (max rel)"
    return line


def main():
    with open(os.path.join(FIXTURES, "reference.json")) as f:
        ref = json.load(f)
    assert ref["tensorflow"].startswith("2.15") and ref["keras"].startswith("2."), ref["tensorflow"]
    with tempfile.TemporaryDirectory() as tmp:
        lines = [run(name, ref, tmp) for name in ("tiny-cnn", "tiny-xception")]
    print("ok: TF 2.15 .h5 files through Keras 3's ONNX export and from_onnx: " + "; ".join(lines))


if __name__ == "__main__":
    main()
