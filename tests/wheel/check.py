"""The installed wheel, run as a new user would (tests/wheel/run.sh starts it in an empty folder,
with only the wheel's venv and the system folders on PATH, no ORT_DYLIB_PATH, no libhdf5).

    python check.py REFERENCE.h5
    python check.py --gpu-library      (after `pip install --no-deps onnxruntime-gpu` in the venv)

REFERENCE.h5 is what the cargo-built binary wrote for the same distill command with the same
ONNX Runtime library. Checks: no cargo reachable; `infoutil --version` finds ONNX Runtime in the
venv and has the CUDA provider compiled in; `infoutil distill` with no teacher or data given runs
ONNX Runtime on the shipped defaults; its file equals the reference dataset by dataset and
attribute by attribute (paths aside); infoutil.load reads it with the schema applied; the Python
API's errors carry the tool's message; `--device cuda` on the CPU package is refused, naming the
package to install.

With --gpu-library, the same wheel beside onnxruntime-gpu (what `infoutil[gpu]` adds, here without
the nvidia-* wheels) on a machine without a GPU: the binary takes the GPU package's library, whose
CUDA provider `--version` reports; `--device cuda` gets past the build and the library to the
provider's own start and fails there with exit 1 (not a panic's 2), no CPU fallback, naming the
library that is missing and what to do; the CPU provider of that library still runs.
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
    # The wheel is the default build, which has ONNX Runtime's CUDA provider compiled in.
    check("ONNX Runtime CUDA provider: compiled in; not in this ONNX Runtime library" in version,
          "the wheel's binary lacks the CUDA provider, or misreports the CPU package's library")

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
    proc = cuda_eval()
    check(proc.returncode == 1, f"--device cuda on the CPU package: exit {proc.returncode}\n{proc.stderr}")
    check("has no CUDA execution provider (it is a CPU build); install onnxruntime-gpu: "
          'pip install "infoutil[gpu]"' in proc.stderr, f"--device cuda:\n{proc.stderr}")
    print("ok: --device cuda on the CPU package fails (exit 1) naming onnxruntime-gpu")


def cuda_eval(*extra):
    """`infoutil teacher eval --device cuda` on the shipped defaults."""
    args = ["infoutil", "teacher", "eval", "--backend", "ort", "--no-grad-norms", "--out", "cuda.h5"]
    return subprocess.run([*args, "--device", "cuda", *extra], capture_output=True, text=True)


def gpu_library():
    """The checks with onnxruntime-gpu installed beside onnxruntime (see the module's text)."""
    version = subprocess.run(["infoutil", "--version"], capture_output=True, text=True, check=True).stdout
    print(version, end="")
    check("CUDA provider: compiled in; in this ONNX Runtime library" in version,
          "the binary did not take onnxruntime-gpu's library, or its CUDA provider is not reported")
    proc = cuda_eval()
    if proc.returncode == 0:
        # A machine with a GPU and CUDA on the loader's path: then it must have run on CUDA.
        check("onnxruntime (cuda" in proc.stderr, f"--device cuda ran, but not on CUDA:\n{proc.stderr}")
        print("note: --device cuda ran on this machine's GPU")
    else:
        err = proc.stderr
        check(proc.returncode == 1, f"--device cuda: exit {proc.returncode} (2 is a panic)\n{err}")
        check("has no CUDA support" not in err and "has no CUDA execution provider" not in err,
              f"refused before the provider's start:\n{err}")
        check("cannot enable CUDA" in err and "cannot open shared object file" in err,
              f"the provider's failure does not name a library:\n{err}")
        check(" is the NVIDIA driver's library" in err or 'pip install "infoutil[gpu]"' in err,
              f"no remedy given:\n{err}")
        check("top-1" not in proc.stdout + err, f"fell back to the CPU:\n{err}")
        try:
            infoutil.teacher_eval(backend="ort", device="cuda", no_grad_norms=True, out="cuda.h5")
            check(False, "infoutil.teacher_eval(device='cuda') did not raise")
        except infoutil.Error as e:
            check("cannot enable CUDA" in str(e), f"infoutil.Error: {e}")
        print("ok: --device cuda reached the CUDA provider's start and failed there (exit 1): "
              + err.strip().splitlines()[-1][:200])
    cpu = subprocess.run(["infoutil", "teacher", "eval", "--backend", "auto", "--no-grad-norms",
                          "--out", "cpu.h5"], capture_output=True, text=True)
    check(cpu.returncode == 0 and "onnxruntime (cpu)" in cpu.stderr, f"CPU run on the GPU library:\n{cpu.stderr}")
    ref = infoutil.load("eval.h5")
    got = infoutil.load("cpu.h5")
    check(np.allclose(got.logits, ref.logits, rtol=1e-4, atol=1e-4) and got.top1 == ref.top1,
          "the GPU package's CPU provider disagrees with the CPU package's")
    print(f"ok: --backend auto runs the GPU package's CPU provider (top-1 {100 * got.top1:.1f} %, logits "
          f"as the CPU package's to 1e-4)")


if __name__ == "__main__":
    if sys.argv[1] == "--gpu-library":
        gpu_library()
    else:
        main(sys.argv[1])
