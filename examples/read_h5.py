"""Read any HDF5 file that infoutil wrote, with h5py alone, and check it is self-consistent.

    python examples/read_h5.py out/teacher-eval.h5

Prints the root attributes (the run configuration is JSON) and every dataset with its layout.
Arrays are stored row-major: an [N, C, H, W] dataset reads in numpy as shape (N, C, H, W).
For a teacher_eval file it also recomputes top-1 from /logits and /labels and checks it against
the stored attribute; exits non-zero on any inconsistency (CI runs it on a fresh file).
"""
import json
import sys

import h5py
import numpy as np


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
    logits, labels = f["logits"][()], f["labels"][()]
    n, k = logits.shape
    assert labels.shape == (n,), labels.shape
    assert f["source_index"].shape == (n,)
    assert labels.min() >= 0 and labels.max() < k
    assert len(json.loads(f.attrs["class_names"])) == k
    top1 = float((logits.argmax(1) == labels).mean())
    stored = float(f.attrs["top1"])
    assert abs(top1 - stored) < 1e-6, (top1, stored)
    if "grad_norms" in f:
        g = f["grad_norms"][()]
        assert g.shape == (n,) and np.all(np.isfinite(g)) and np.all(g >= 0)
    print(f"checked: {n} images, {k} classes, top-1 {100 * top1:.2f}% recomputed from /logits")


def main(path):
    with h5py.File(path, "r") as f:
        assert f.attrs["schema_version"] == "1", f.attrs["schema_version"]
        assert f.attrs["created_by"].startswith("infoutil ")
        json.loads(f.attrs["config"])
        describe(f)
        if f.attrs["kind"] == "teacher_eval":
            check_teacher_eval(f)


if __name__ == "__main__":
    main(sys.argv[1])
