"""The installed wheel, run as a new user would (tests/wheel/run.sh starts it in an empty folder,
with only the wheel's venv and the system folders on PATH, no ORT_DYLIB_PATH, no libhdf5).

    python check.py REFERENCE.h5

REFERENCE.h5 is what the cargo-built binary wrote for the same distill command with the same
ONNX Runtime library. Checks: no cargo reachable; `infoutil --version` finds ONNX Runtime in the
venv; `infoutil distill` with no teacher or data given runs ONNX Runtime on the shipped defaults;
its file equals the reference dataset by dataset and attribute by attribute (paths aside);
infoutil.load reads it with the schema applied; the Python API's errors carry the tool's message.
"""
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np

import infoutil

ARGS = ["--candidates", "10", "--budget", "64", "--ipc", "2"]
# Config entries that name where files are, which differ between a checkout and a venv.
PATHS = ("teacher", "grad_graph", "data", "label_teacher", "label_teacher_from_output")


def check(cond, message):
    if not cond:
        sys.exit(f"FAILED: {message}")


def same_config(a, b):
    a, b = json.loads(a), json.loads(b)
    for c in (a, b):
        for key in PATHS:
            c.pop(key, None)
        for section in c.values():
            if isinstance(section, dict):
                for key in PATHS:
                    section.pop(key, None)
    return a == b, a, b


def compare(path, reference):
    with h5py.File(path, "r") as got, h5py.File(reference, "r") as want:
        names = []
        want.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
        got_names = []
        got.visititems(lambda n, o: got_names.append(n) if isinstance(o, h5py.Dataset) else None)
        check(sorted(names) == sorted(got_names), f"datasets {got_names} != {names}")
        for name in names:
            a, b = got[name][()], want[name][()]
            check(a.dtype == b.dtype and a.shape == b.shape, f"/{name}: {a.dtype}{a.shape} vs {b.dtype}{b.shape}")
            check(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), f"/{name} differs from the cargo build's")
        check(set(got.attrs) == set(want.attrs), f"root attributes {set(got.attrs)} != {set(want.attrs)}")
        for key in want.attrs:
            if key == "config":
                same, a, b = same_config(got.attrs[key], want.attrs[key])
                check(same, f"config differs beyond paths:\n{a}\n{b}")
            else:
                check(got.attrs[key] == want.attrs[key], f"@{key}: {got.attrs[key]} != {want.attrs[key]}")
    return len(names)


def main(reference):
    check(shutil.which("cargo") is None, "cargo is on PATH")
    check("ORT_DYLIB_PATH" not in os.environ, "ORT_DYLIB_PATH is set")
    check(not os.listdir("."), "the working folder is not empty")
    version = subprocess.run(["infoutil", "--version"], capture_output=True, text=True, check=True).stdout
    print(version, end="")
    venv = os.path.dirname(os.path.dirname(shutil.which("infoutil")))
    check(f"ONNX Runtime: loads from {venv}" in version, "the binary did not find the venv's ONNX Runtime")
    check("commit unknown" not in version, "no git commit in --version")

    proc = subprocess.run(["infoutil", "distill", *ARGS, "--backend", "auto"], capture_output=True, text=True)
    check(proc.returncode == 0, f"infoutil distill failed:\n{proc.stderr}")
    check("onnxruntime (cpu)" in proc.stderr, f"ONNX Runtime did not run:\n{proc.stderr}")
    d = infoutil.load("distilled.h5")
    check(d.config["backend"] == "onnxruntime (cpu)", f"backend {d.config['backend']}")
    check("/share/infoutil/models/" in d.config["teacher"], f"teacher {d.config['teacher']}")
    n = d.ipc * len(d.class_names)
    check(d.images.shape[0] == n and d.images_uint8.dtype == np.uint8, f"images {d.images.shape}")
    check(d.soft_labels_grid.shape == (n, d.factor, d.factor, len(d.class_names)), "soft label grid")
    check(np.allclose(d.soft_labels.sum(-1), 1, atol=1e-5), "soft labels sum to 1")
    check(d.layouts["images"] == "NCHW" and d.layouts["provenance/crop_box"] == "N,T,4", f"{d.layouts}")
    datasets = compare("distilled.h5", reference)
    print(f"ok: the wheel's infoutil distill ran ONNX Runtime on the shipped defaults; its file "
          f"equals the cargo build's ({datasets} datasets and every attribute, paths aside)")

    try:
        infoutil.distill(data="no-such-dir/images.gz", out="x.h5")
        check(False, "infoutil.distill on a missing dataset did not raise")
    except infoutil.Error as e:
        check("no-such-dir/images.gz" in str(e), f"infoutil.Error without the file's name: {e}")
    try:
        infoutil.distill(no_such_option=1)
        check(False, "an unknown option did not raise")
    except TypeError as e:
        check("no_such_option" in str(e) and "ipc" in str(e), f"TypeError: {e}")
    out = infoutil.teacher_eval(backend="auto", out="eval.h5", no_grad_norms=True)
    e = infoutil.load(out)
    check(e.kind == "teacher_eval" and e.logits.shape[0] == e.labels.shape[0], "teacher_eval file")
    check(abs(float((e.logits.argmax(1) == e.labels).mean()) - e.top1) < 1e-6, "top-1 recomputed")
    print(f"ok: infoutil.teacher_eval wrote {out} (top-1 {100 * e.top1:.1f} %); infoutil.Error and "
          f"TypeError name the bad input")


if __name__ == "__main__":
    main(sys.argv[1])
