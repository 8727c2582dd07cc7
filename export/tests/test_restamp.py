"""export/restamp.py: a package from before the binding, re-stamped, is the shipped one byte for
byte; a second run changes nothing; a package with another checkpoint's gradient graph is refused
with nothing written; --check tells bound from unbound. Needs onnx only (no torch).

    python export/tests/test_restamp.py
"""
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile

import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
COMMAND = os.path.join(ROOT, "export", "restamp.py")
sys.path.insert(0, os.path.join(ROOT, "export"))
from infoutil_export import metadata  # noqa: E402

BOUND = ("infoutil.graph_weights_sha256", "infoutil.sibling_weights_sha256")


def restamp(*args):
    return subprocess.run([sys.executable, COMMAND, *args], capture_output=True, text=True)


def unbound_copy(src_stem, dst_stem):
    """The package at src_stem as it was before the binding: the two keys removed."""
    for role in ("", ".grad", ".cam"):
        m = onnx.load(f"{src_stem}{role}.onnx", load_external_data=False)
        kept = [(p.key, p.value) for p in m.metadata_props if p.key not in BOUND]
        del m.metadata_props[:]
        for k, v in kept:
            e = m.metadata_props.add()
            e.key, e.value = k, v
        onnx.save(m, f"{dst_stem}{role}.onnx")


def digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_restamp_reproduces_the_shipped_package(d):
    src = os.path.join(ROOT, "models", "fmnist-convnet3")
    t = os.path.join(d, "t")
    unbound_copy(src, t)
    check = restamp(t + ".onnx", "--check")
    assert check.returncode == 1 and "not bound" in check.stderr, check.stderr
    run = restamp(t + ".onnx")
    assert run.returncode == 0, run.stderr
    for role in ("", ".grad", ".cam"):
        assert digest(f"{t}{role}.onnx") == digest(f"{src}{role}.onnx"), role
    again = restamp(t + ".onnx")
    assert again.returncode == 0 and "already bound" in again.stdout, again.stdout
    assert restamp(t + ".onnx", "--check").returncode == 0
    fm = metadata.read(t + ".onnx")
    assert fm["infoutil.graph_weights_sha256"] == fm["infoutil.weights_sha256"]


def test_another_checkpoints_gradient_graph_is_refused(d):
    t = os.path.join(d, "t")
    unbound_copy(os.path.join(ROOT, "models", "fmnist-convnet3"), t)
    shutil.copy(os.path.join(ROOT, "models", "fmnist-convnet3-early.grad.onnx"), t + ".grad.onnx")
    before = {f: digest(os.path.join(d, f)) for f in os.listdir(d)}
    run = restamp(t + ".onnx")
    assert run.returncode == 1 and "t.grad.onnx" in run.stderr and "weights_sha256" in run.stderr, run.stderr
    assert {f: digest(os.path.join(d, f)) for f in os.listdir(d)} == before, "something was written"
    run = restamp(t + ".grad.onnx")
    assert run.returncode == 1 and "give the forward graph" in run.stderr, run.stderr


if __name__ == "__main__":
    for name, fn in list(globals().items()):
        if name.startswith("test_"):
            with tempfile.TemporaryDirectory() as d:
                fn(d)
                print("ok:", name)
