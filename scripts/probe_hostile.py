#!/usr/bin/env python3
"""A probe of hostile inputs not listed in issue 32 (docs/reliability.md, "Probe"): it makes each
case in a scratch folder, runs the infoutil binary on it, and sorts the outcome:

  crash    exit code other than 0 and 1, a signal, or "internal error" (a panic)
  hang     no exit within --timeout seconds
  wrong    exit 0 where the case must be refused (or exit 0 with a result that is wrong)
  unclear  refused, but the message does not name what it must (the file, the option, ...)
  ok       refused clearly, or accepted where accepting is right

    .venv/bin/python scripts/probe_hostile.py [--bin target/release/infoutil] [--timeout 60]

Needs numpy, h5py and Pillow (scripts/requirements.txt, in .venv). Prints one line per case and
the counts; exit status 1 when any case is a crash, hang or wrong.
"""
import argparse
import gzip
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

import h5py
import numpy as np
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TEACHER = os.path.join(ROOT, "models", "fmnist-convnet3.onnx")
MINI = os.path.join(ROOT, "data", "fashion-mnist-mini")
CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot"]


def idx_bytes(images, magic=0x0803):
    n, h, w = images.shape
    return struct.pack(">IIII", magic, n, h, w) + images.astype(np.uint8).tobytes()


def labels_bytes(labels):
    return struct.pack(">II", 0x0801, len(labels)) + np.asarray(labels, np.uint8).tobytes()


def real(n=40):
    """n real test images and labels of the shipped subset."""
    with gzip.open(os.path.join(MINI, "t10k-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)[:n]
    with gzip.open(os.path.join(MINI, "t10k-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)[:n]
    return x, y


def idx_pair(d, name, images_blob, labels_blob, gz=True):
    op = gzip.open if gz else open
    suffix = ".gz" if gz else ""
    path = os.path.join(d, f"{name}-images-idx3-ubyte{suffix}")
    with op(path, "wb") as f:
        f.write(images_blob)
    with op(os.path.join(d, f"{name}-labels-idx1-ubyte{suffix}"), "wb") as f:
        f.write(labels_blob)
    return path


def h5_input(d, name, images, labels, names=None):
    path = os.path.join(d, name)
    with h5py.File(path, "w") as f:
        if images is not None:
            f["images"] = images
        if labels is not None:
            f["labels"] = labels
        if names is not None:
            f.attrs["class_names"] = names
    return path


def folder(d, name, classes, mode="L", size=(28, 28), per=2, suffix=".png", bits=8):
    root = os.path.join(d, name)
    for c in classes:
        os.makedirs(os.path.join(root, c), exist_ok=True)
        for k in range(per):
            px = (np.arange(size[0] * size[1]) * (k + 3) % 251).reshape(size[1], size[0])
            if bits == 16:
                img = Image.fromarray((px * 257).astype(np.uint16))
            elif mode == "RGBA":
                img = Image.fromarray(np.dstack([px, px, px, np.full_like(px, 128)]).astype(np.uint8), "RGBA")
            else:
                img = Image.fromarray(px.astype(np.uint8), "L").convert(mode)
            img.save(os.path.join(root, c, f"{k}{suffix}"))
    return root


def teacher_with(d, name, edit):
    """A copy of the shipped teacher (forward and gradient graph) whose metadata `edit` changes
    in both graphs (a dict of infoutil.* keys to set, None to delete); None without the onnx
    package (the case is then left out)."""
    try:
        import onnx
    except ImportError:
        return None
    for src, dst in ((TEACHER, f"{name}.onnx"), (TEACHER[:-5] + ".grad.onnx", f"{name}.grad.onnx")):
        m = onnx.load(src)
        props = {p.key: p.value for p in m.metadata_props}
        for k, v in edit.items():
            if v is None:
                props.pop("infoutil." + k, None)
            else:
                props["infoutil." + k] = v
        del m.metadata_props[:]
        for k, v in sorted(props.items()):
            e = m.metadata_props.add()
            e.key, e.value = k, v
        onnx.save(m, os.path.join(d, dst))
    return os.path.join(d, f"{name}.onnx")


def cases(d):
    """(name, argv, expect, needle): expect "refuse" (exit 1 whose message contains needle) or
    "accept" (exit 0)."""
    x, y = real()
    ev = ["teacher", "eval", "--backend", "tract", "--teacher", TEACHER, "--no-grad-norms", "--data"]
    out = []

    def add(name, data_or_args, expect, needle="", cmd=None):
        argv = (cmd if cmd is not None else ev) + (data_or_args if isinstance(data_or_args, list)
                                                   else [data_or_args])
        out.append((name, argv, expect, needle))

    good = idx_bytes(x)
    lab = labels_bytes(y)
    # -- idx / gzip
    for cut in (10, len(gzip.compress(good)) // 2):
        p = idx_pair(d, f"cut{cut}", good, lab)
        blob = open(p, "rb").read()
        open(p, "wb").write(blob[:cut])
        add(f"gzip cut at byte {cut}", p, "refuse", "cut")
    add("idx with 100 bytes of trailing garbage", idx_pair(d, "trail", good + b"\x07" * 100, lab),
        "refuse", "trail")
    add("idx labels file with trailing garbage", idx_pair(d, "ltrail", good, lab + b"\x01" * 9),
        "refuse", "ltrail")
    add("idx of int32 type (magic 0x0C03)", idx_pair(d, "int32", idx_bytes(x, 0x0C03), lab),
        "refuse", "int32")
    add("idx two gzip members concatenated", idx_pair(d, "multi", good, lab), "accept")
    p = os.path.join(d, "multi-images-idx3-ubyte.gz")
    half = len(good) // 2
    open(p, "wb").write(gzip.compress(good[:half]) + gzip.compress(good[half:]))
    add("idx label 200 for 10 classes", idx_pair(d, "lab200", good, labels_bytes([200] * len(y))),
        "refuse", "lab200")
    add("idx of 28x27 images for a 28x28 teacher", idx_pair(d, "w27", idx_bytes(x[:, :, :27]), lab),
        "accept")
    add("idx whose labels file is missing", idx_pair(d, "nolab", good, lab), "refuse", "nolab")
    os.remove(os.path.join(d, "nolab-labels-idx1-ubyte.gz"))
    add("idx whose labels file is a folder", idx_pair(d, "dirlab", good, lab), "refuse", "dirlab")
    os.remove(os.path.join(d, "dirlab-labels-idx1-ubyte.gz"))
    os.mkdir(os.path.join(d, "dirlab-labels-idx1-ubyte.gz"))
    # -- HDF5
    xf = x[:, None].astype(np.uint8)
    add("HDF5 images float64", h5_input(d, "f64.h5", xf.astype(np.float64), y.astype(np.int64)),
        "refuse", "f64.h5")
    add("HDF5 images of rank 2", h5_input(d, "r2.h5", x.reshape(len(x), -1), y.astype(np.int64)),
        "refuse", "r2.h5")
    add("HDF5 images of rank 5", h5_input(d, "r5.h5", xf[:, None], y.astype(np.int64)), "refuse", "r5.h5")
    add("HDF5 labels 2-D", h5_input(d, "l2.h5", xf, y.astype(np.int64)[:, None]), "refuse", "l2.h5")
    add("HDF5 labels float", h5_input(d, "lf.h5", xf, y.astype(np.float32) + 0.5), "refuse", "lf.h5")
    add("HDF5 negative label", h5_input(d, "neg.h5", xf, -np.ones(len(y), np.int64)), "refuse", "neg.h5")
    add("HDF5 without labels", h5_input(d, "nol.h5", xf, None), "refuse", "nol.h5")
    add("HDF5 labels shorter than images", h5_input(d, "short.h5", xf, y[:5].astype(np.int64)),
        "refuse", "short.h5")
    add("HDF5 class_names not JSON", h5_input(d, "cn.h5", xf, y.astype(np.int64), "T-shirt,Trouser"),
        "refuse", "cn.h5")
    add("HDF5 class_names with a newline and an empty name",
        h5_input(d, "cnl.h5", xf, y.astype(np.int64), json.dumps(["a\nb", ""] + CLASSES[2:])),
        "refuse", "cnl.h5")
    add("HDF5 class_names duplicated",
        h5_input(d, "dup.h5", xf, y.astype(np.int64), json.dumps([CLASSES[0]] * 10)), "refuse", "dup.h5")
    # -- image folders
    add("folder of RGBA PNGs (1-channel teacher)", folder(d, "rgba", CLASSES_SAFE, "RGBA"), "refuse",
        "0.png")
    add("folder of 16-bit PNGs", folder(d, "png16", CLASSES_SAFE, bits=16), "accept")
    root = folder(d, "case", ["0", "1"])
    shutil.copytree(os.path.join(root, "1"), os.path.join(root, "01"))
    add("class folders '1' and '01' (one class twice)", root, "refuse", "01")
    root = folder(d, "loop", ["0", "1"])
    os.symlink("..", os.path.join(root, "1", "up"))
    os.symlink(os.path.join(root, "0"), os.path.join(root, "0", "self"))
    add("folder with symlink loops inside classes", root, "accept")
    root = folder(d, "junk", ["0", "1"])
    open(os.path.join(root, "0", "notes.png"), "w").write("not a picture")
    add("a text file named .png among images", root, "refuse", "notes.png")
    root = os.path.join(d, "empty-classes")
    os.makedirs(os.path.join(root, "0"))
    os.makedirs(os.path.join(root, "1"))
    add("class folders without images", root, "refuse", "empty-classes")
    # -- teacher metadata (needs the onnx package; skipped without it)
    for nm, edit, needle in (
        ("teacher mean NaN", {"normalization": '{"kind": "mean_std", "mean": [NaN], "std": [0.3]}'}, "normalization"),
        ("teacher class names with a newline", {"class_names": json.dumps(["a\nb"] + CLASSES[1:])}, None),
        ("teacher with 0 classes", {"class_names": "[]"}, "class"),
        ("teacher with duplicate class names", {"class_names": json.dumps(["x"] * 10)}, "both \"x\""),
        ("teacher with an empty class name", {"class_names": json.dumps([""] + CLASSES[1:])}, "class 0"),
        ("teacher input_shape [1, 0, 28]", {"input_shape": "[1, 0, 28]"}, "input_shape"),
        ("teacher schema 2", {"schema": "2"}, "schema"),
    ):
        t = teacher_with(d, nm.replace(" ", "_")[:20], edit)
        if t is None:
            continue
        argv = ["teacher", "eval", "--backend", "tract", "--teacher", t, "--no-grad-norms"]
        out.append((nm, argv, "refuse" if needle else "accept", needle or ""))
    # -- options and outputs
    dist = ["distill", "--backend", "tract", "--teacher", TEACHER, "--candidates", "4", "--budget", "48"]
    add("--ipc larger than the images of a class (ipc 500, candidates 4)",
        ["--ipc", "500", "--out", os.path.join(d, "ipc.h5")], "refuse", "--ipc", cmd=dist)
    # a batch larger than the data is cut to the data: it changes nothing, so it is accepted
    add("--batch-size 10^12", ["--batch-size", "1000000000000", "--out", os.path.join(d, "b.h5"),
                              "--classes", "0", "--ipc", "1"], "accept", cmd=dist)
    add("--out in a folder that is a file", ["--out", os.path.join(TEACHER, "x.h5")], "refuse", "x.h5",
        cmd=dist)
    add("--out under /proc (not writable)", ["--out", "/proc/infoutil-probe.h5"], "refuse",
        "/proc", cmd=dist)
    add("--out with a newline in its name", ["--out", os.path.join(d, "a\nb.h5"), "--classes", "0",
                                            "--ipc", "1"], "accept", cmd=dist)
    add("--classes 0-18446744073709551615", ["--classes", "0-18446744073709551615", "--out",
                                             os.path.join(d, "c.h5")], "refuse", "--classes", cmd=dist)
    add("--seed -1", ["--seed", "-1", "--out", os.path.join(d, "s.h5")], "refuse", "'-1'", cmd=dist)
    add("--ort-sessions 100000", ["--ort-sessions", "100000", "--out", os.path.join(d, "o.h5")],
        "refuse", "--ort-sessions", cmd=dist)
    parts = os.path.join(d, "resume.h5.parts")
    os.makedirs(parts)
    open(os.path.join(parts, "class-00000.h5"), "wb").write(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    add("--resume over a damaged checkpoint file", ["--resume", "--classes", "0", "--ipc", "1",
                                                    "--out", os.path.join(d, "resume.h5")],
        "refuse", "class-00000.h5", cmd=dist)
    parts = os.path.join(d, "old.h5.parts")
    os.makedirs(parts)
    with h5py.File(os.path.join(parts, "class-00000.h5"), "w") as f:
        f.attrs["fingerprint"] = "from-another-version"
        f.attrs["kind"] = "infoutil.distill_class"
    add("--resume over a checkpoint of another version", ["--resume", "--classes", "0", "--ipc", "1",
                                                          "--out", os.path.join(d, "old.h5")],
        "refuse", "class-00000.h5", cmd=dist)
    add("--label-teacher of another class count",
        ["--label-teacher", os.path.join(ROOT, "models", "zoo", "convnext.onnx"), "--classes", "0",
         "--out", os.path.join(d, "lt.h5")], "refuse", "convnext", cmd=dist)
    add("--data a symlink to /dev/zero", [os.path.join(d, "zero")], "refuse", "zero")
    os.symlink("/dev/zero", os.path.join(d, "zero"))
    # -- result files
    add("inspect an empty .h5", [os.path.join(d, "empty.h5")], "refuse", "empty.h5", cmd=["inspect"])
    open(os.path.join(d, "empty.h5"), "wb").close()
    add("inspect a PNG named .h5", [os.path.join(d, "pic.h5")], "refuse", "pic.h5", cmd=["inspect"])
    Image.new("L", (4, 4)).save(os.path.join(d, "pic.png"))
    shutil.copy(os.path.join(d, "pic.png"), os.path.join(d, "pic.h5"))
    add("merge of an eval result (not a distilled file)", [os.path.join(d, "e.h5"), os.path.join(d, "e.h5"),
                                                         "--out", os.path.join(d, "m.h5")],
        "refuse", "e.h5", cmd=["merge"])
    with h5py.File(os.path.join(d, "e.h5"), "w") as f:
        f.attrs["kind"] = "infoutil.eval"
    add("report of a folder", [d], "refuse", "folder", cmd=["report"])
    return out


CLASSES_SAFE = [str(i) for i in range(10)]


def judge(code, text, expect, needle):
    if code is None:
        return "hang"
    if code not in (0, 1) or "internal error" in text or "panicked" in text:
        return "crash"
    if expect == "refuse":
        if code == 0:
            return "wrong"
        return "ok" if needle.lower() in text.lower() else "unclear"
    return "ok" if code == 0 else ("unclear" if code == 1 else "crash")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.path.join(ROOT, "target", "release", "infoutil"))
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--json", help="also write the outcomes here")
    args = ap.parse_args()
    counts = {}
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for name, argv, expect, needle in cases(d):
            env = dict(os.environ)
            env.pop("ORT_DYLIB_PATH", None)
            try:
                p = subprocess.run([args.bin] + argv, capture_output=True, timeout=args.timeout,
                                   cwd=d, env=env)
                code, text = p.returncode, (p.stdout + p.stderr).decode(errors="replace")
                if code < 0:
                    code = 128 - code
            except subprocess.TimeoutExpired:
                code, text = None, ""
            verdict = judge(code, text, expect, needle)
            counts[verdict] = counts.get(verdict, 0) + 1
            last = text.strip().splitlines()[-1][:220] if text.strip() else ""
            rows.append({"case": name, "expect": expect, "exit": code, "verdict": verdict, "said": last})
            print(f"{verdict:8} exit {code!s:4} {name}: {last}", flush=True)
    print(json.dumps(counts))
    if args.json:
        json.dump({"counts": counts, "cases": rows}, open(args.json, "w"), indent=1)
    return 1 if any(counts.get(k) for k in ("crash", "hang", "wrong")) else 0


if __name__ == "__main__":
    sys.exit(main())
