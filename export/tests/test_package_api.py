"""The package's PyTorch side (python/infoutil): infoutil.export.from_torch writes a teacher whose
forward graph ONNX Runtime runs to the model's own logits on the normalisation it declares, and
refuses a model that does not fit its class names, writing nothing; infoutil.torch's
DistilledDataset yields a distilled file's arrays as h5py reads them.

    python export/tests/test_package_api.py
"""
import json
import os
import sys
import tempfile

import h5py
import numpy as np
import onnxruntime as ort
import torch
import torch.nn as nn

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))
import infoutil.export  # noqa: E402
from infoutil.torch import DistilledDataset  # noqa: E402


def tiny_cnn(k=3):
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(4 * 4 * 4, k))


def test_from_torch(tmp):
    model, names = tiny_cnn(), ["a", "b", "c"]
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (16, 8, 8), dtype=np.uint8)
    path = os.path.join(tmp, "t", "tiny.onnx")
    report = infoutil.export.from_torch(model, (1, 8, 8), mean=[0.5], std=[0.25], class_names=names,
                                        path=path, images=pixels, log=lambda m: None)
    for f in ("tiny.onnx", "tiny.grad.onnx", "tiny.export.json"):
        assert os.path.exists(os.path.join(tmp, "t", f)), f
    assert json.load(open(os.path.join(tmp, "t", "tiny.export.json")))["weights_sha256"] == report["weights_sha256"]
    sess = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    meta = sess.get_modelmeta().custom_metadata_map
    assert json.loads(meta["infoutil.class_names"]) == names
    norm = json.loads(meta["infoutil.normalization"])
    assert norm == {"kind": "mean_std", "mean": [0.5], "std": [0.25]}, norm
    # independent of the exporter: normalise by hand, run both, compare
    x = ((pixels[:, None].astype(np.float32) / 255.0) - 0.5) / 0.25
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert np.abs(got - want).max() < 1e-4, np.abs(got - want).max()

    bad = os.path.join(tmp, "bad.onnx")
    try:
        infoutil.export.from_torch(model, (1, 8, 8), mean=[0.5], std=[0.25], class_names=["a", "b"],
                                   path=bad, log=lambda m: None)
        raise AssertionError("two class names for three outputs were accepted")
    except ValueError as e:
        assert "2 class names" in str(e), e
    assert not any(f.startswith("bad") for f in os.listdir(tmp))
    print(f"ok: from_torch wrote {path}; ONNX Runtime's logits match the model's "
          f"(max |diff| {np.abs(got - want).max():.2g}); a class-name mismatch writes nothing")


def test_distilled_dataset(tmp):
    path = os.path.join(tmp, "d.h5")
    rng = np.random.default_rng(1)
    n, t, k = 6, 4, 3
    arrays = {"images": rng.normal(size=(n, 1, 8, 8)).astype("f4"),
              "images_uint8": rng.integers(0, 256, (n, 1, 8, 8), dtype="u1"),
              "labels": np.arange(n, dtype="i8") % k,
              "soft_labels": rng.dirichlet(np.ones(k), (n, t)).astype("f4"),
              "provenance/source_index": np.zeros((n, t), "i8"),
              "provenance/crop_box": np.ones((n, t, 4), "i4")}
    layouts = {"images": "NCHW", "images_uint8": "NCHW", "labels": "N", "soft_labels": "N,T,K",
               "provenance/source_index": "N,T", "provenance/crop_box": "N,T,4"}
    with h5py.File(path, "w") as f:
        f.attrs.update(schema_version="1", kind="distilled", created_by="infoutil 0.1.0", config="{}",
                       class_names='["a","b","c"]', ipc="2", factor="2", seed="0", method="rded")
        for name, a in arrays.items():
            f[name] = a
            f[name].attrs["layout"] = layouts[name]
    ds = DistilledDataset(path)
    assert len(ds) == n and ds.factor == 2 and ds.tiles == 4 and ds.num_classes == k
    image, label, soft = ds[4]
    assert torch.equal(image, torch.from_numpy(arrays["images"][4]))
    assert int(label) == arrays["labels"][4] and label.dtype == torch.int64
    assert torch.equal(soft, torch.from_numpy(arrays["soft_labels"][4]))
    u8 = DistilledDataset(path, uint8=True)[2][0]
    assert u8.dtype == torch.uint8 and torch.equal(u8, torch.from_numpy(arrays["images_uint8"][2]))
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4)))
    assert [tuple(b.shape) for b in batch] == [(4, 1, 8, 8), (4,), (4, t, k)]
    print("ok: DistilledDataset yields the file's images, labels and per-tile soft labels")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        test_from_torch(tmp)
        test_distilled_dataset(tmp)
