"""Read any HDF5 file that infoutil wrote and check it is self-consistent.

    python examples/read_h5.py out/teacher-eval.h5

Prints the root attributes (the run configuration is JSON) and every dataset with its layout,
with h5py alone (`describe`, what to copy when you do not want the package). The checks read the
file with `infoutil.load` (python/infoutil: the schema's conventions applied, other schema
versions refused), installed by `pip install infoutil` or taken from this checkout.
Arrays are stored row-major: an [N, C, H, W] dataset reads in numpy as shape (N, C, H, W).
For a teacher_eval file it also recomputes top-1 from /logits and /labels and checks it against
the stored attribute; for a distilled file it checks counts, soft labels and provenance; exits non-zero on any inconsistency (CI runs it on a fresh file).
"""
import json
import os
import sys

import h5py
import numpy as np

try:
    import infoutil
except ImportError:   # a checkout without the wheel installed: the package's source
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
    import infoutil


def describe(f):
    for key in sorted(f.attrs):
        value = f.attrs[key]
        if key == "config":
            value = json.dumps(json.loads(value), indent=2)
        print(f"@{key}: {value}")

    def show(name, obj):
        if isinstance(obj, h5py.Dataset):
            print(f"{name}: {obj.dtype} {obj.shape} layout={obj.attrs.get('layout')} - {obj.attrs.get('description')}")

    f.visititems(show)


def check_teacher_eval(f):
    logits, labels = f.logits, f.labels
    n, k = logits.shape
    assert labels.shape == (n,), labels.shape
    assert f.source_index.shape == (n,)
    assert labels.min() >= 0 and labels.max() < k
    assert len(f.class_names) == k
    top1 = float((logits.argmax(1) == labels).mean())
    assert abs(top1 - f.top1) < 1e-6, (top1, f.top1)
    if hasattr(f, "grad_norms"):
        g = f.grad_norms
        assert g.shape == (n,) and np.all(np.isfinite(g)) and np.all(g >= 0)
    print(f"checked: {n} images, {k} classes, top-1 {100 * top1:.2f}% recomputed from /logits")


def check_distilled(f):
    images, u8, labels = f.images, f.images_uint8, f.labels
    n, c, h, w = images.shape
    assert u8.shape == (n, c, h, w) and u8.dtype == np.uint8
    soft = f.soft_labels
    t, k = soft.shape[1], soft.shape[2]
    assert t == f.factor * f.factor, (t, f.factor)
    assert f.soft_labels_grid.shape == (n, f.factor, f.factor, k)
    assert np.allclose(soft.sum(-1), 1.0, atol=1e-5), "soft labels sum to 1"
    counts = np.bincount(labels, minlength=k)
    assert np.all(counts == f.ipc), counts
    src, boxes = f.provenance.source_index, f.provenance.crop_box
    assert src.shape == (n, t) and boxes.shape == (n, t, 4)
    assert np.all(boxes[..., 0] < boxes[..., 2]) and np.all(boxes[..., 1] < boxes[..., 3])
    print(f"checked: {n} distilled images ({f.ipc} per class x {k} classes), factor {f.factor}, "
          f"method {f.method}; soft labels sum to 1")


def main(path):
    with h5py.File(path, "r") as h5:
        describe(h5)
    f = infoutil.load(path)   # refuses another schema version, parses config and class names
    assert f.created_by.startswith("infoutil ")
    assert isinstance(f.config, dict)
    if f.kind == "teacher_eval":
        check_teacher_eval(f)
    elif f.kind == "distilled":
        check_distilled(f)


if __name__ == "__main__":
    main(sys.argv[1])
