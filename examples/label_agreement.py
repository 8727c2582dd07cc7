#!/usr/bin/env python3
"""How well the distilled images of `infoutil distill` files show their class, by the label teacher.

    python examples/label_agreement.py out/results/*-s0.h5
    python examples/label_agreement.py --per-class out/results/infoutil-ipc10-s0.h5

For each file: the share of distilled images (first tile) whose soft label's arg-max is the
image's class, the mean soft-label probability of that class, the mean pixel value (0–255) and
the share of dark images (mean pixel < 25). With --per-class, for one file: per class, what the
label teacher calls its images. Reads only the file (h5py, numpy).
"""
import json
import sys

import h5py
import numpy as np


def stats(path):
    with h5py.File(path, "r") as h:
        pixels = h["images_uint8"][:].astype(np.float64)
        labels = h["labels"][:]
        soft = h["soft_labels"][:, 0, :]
        method = h.attrs["method"]
        ipc = h.attrs["ipc"]
    mean = pixels.reshape(len(pixels), -1).mean(axis=1)
    return {
        "method": method if isinstance(method, str) else method.decode(),
        "ipc": ipc if isinstance(ipc, str) else ipc.decode(),
        "agree": 100 * float((soft.argmax(axis=1) == labels).mean()),
        "p_class": float(soft[np.arange(len(labels)), labels].mean()),
        "pixel": float(mean.mean()),
        "dark": 100 * float((mean < 25).mean()),
    }


def per_class(path):
    with h5py.File(path, "r") as h:
        names = json.loads(h.attrs["class_names"])
        labels = h["labels"][:]
        called = h["soft_labels"][:, 0, :].argmax(axis=1)
        mean = h["images_uint8"][:].reshape(len(labels), -1).mean(axis=1)
    print(f"{path}\n\n| class | label teacher's arg-max over its images | dark |\n|---|---|---:|")
    for c, name in enumerate(names):
        mine = labels == c
        values, counts = np.unique(called[mine], return_counts=True)
        order = np.argsort(-counts, kind="stable")
        said = ", ".join(f"{names[values[i]]} {counts[i]}" for i in order)
        print(f"| {name} | {said} | {int((mean[mine] < 25).sum())} |")


def main(paths):
    if not paths:
        sys.exit(__doc__)
    if paths[0] == "--per-class":
        for p in paths[1:]:
            per_class(p)
        return
    print("| file | method | IPC | label teacher's arg-max = class | mean p(class) | mean pixel | dark images |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for p in paths:
        s = stats(p)
        print(f"| {p.split('/')[-1]} | {s['method']} | {s['ipc']} | {s['agree']:.0f} % | {s['p_class']:.2f} "
              f"| {s['pixel']:.0f} | {s['dark']:.0f} % |")


if __name__ == "__main__":
    main(sys.argv[1:])
