"""export_module.py end to end, as a user runs it: a module file of their own in a folder of their
own, its state_dict saved by plain PyTorch code (inside a checkpoint dict), the command run as a
subprocess. The pair must verify and carry the metadata, the forward graph must compute with the
given weights (not the constructor's), and a state_dict that does not fit must be refused, with
the missing, unexpected and wrongly shaped keys named and nothing written.

    python export/tests/test_export_module.py
"""
import json
import os
import subprocess
import sys
import tempfile
import textwrap

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from infoutil_export import metadata, verify  # noqa: E402

COMMAND = os.path.join(HERE, "..", "export_module.py")

MODULE = textwrap.dedent('''
    import torch.nn as nn

    class TinyNet(nn.Module):
        """Nothing from infoutil: conv, BatchNorm, a pluggable activation, pooling, a head."""
        def __init__(self, num_classes=10, width=8, act=nn.ReLU):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), act())
            self.body = nn.Sequential(nn.Conv2d(width, width, 3, stride=2, groups=2), act(),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
            self.head = nn.Linear(width, num_classes)

        def forward(self, x):
            return self.head(self.body(self.stem(x)))
''')
KWARGS = {"num_classes": 4, "width": 6, "act": {"$import": "torch.nn:GELU"}}
CLASSES = ["ant", "bee", "cat", "dog"]


def run(args, cwd):
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    p = subprocess.run([sys.executable, COMMAND] + args, cwd=cwd, capture_output=True, text=True,
                       env=env, timeout=300)
    return p.returncode, p.stdout + p.stderr


def user_model(root):
    """The user's files: root/mynets/tiny.py, and the trained (here: seeded, BatchNorm statistics
    set) weights saved by plain PyTorch code in a checkpoint dict."""
    os.makedirs(os.path.join(root, "mynets"))
    open(os.path.join(root, "mynets", "__init__.py"), "w").close()
    with open(os.path.join(root, "mynets", "tiny.py"), "w") as f:
        f.write(MODULE)
    sys.path.insert(0, root)
    try:
        from mynets.tiny import TinyNet
    finally:
        sys.path.remove(root)
    torch.manual_seed(3)
    model = TinyNet(4, 6, torch.nn.GELU)
    with torch.no_grad():
        bn = model.stem[1]
        bn.running_mean.uniform_(-0.3, 0.3)
        bn.running_var.uniform_(0.5, 2.0)
    torch.save({"state_dict": model.state_dict(), "epoch": 7}, os.path.join(root, "ckpt.pth"))
    return model.eval(), TinyNet


def base_args(root, weights, out):
    names = os.path.join(root, "classes.txt")
    with open(names, "w") as f:
        f.write("\n".join(CLASSES) + "\n")
    return ["--module", "mynets.tiny:TinyNet", "--path", root, "--kwargs", json.dumps(KWARGS),
            "--weights", weights, "--input-shape", "3,12,12", "--pixels", "symmetric",
            "--class-names", names, "--out", out, "--n", "12", "--threads", "1"]


def test_pair_verifies(root, model, ctor):
    out_dir = os.path.join(root, "out")
    args = base_args(root, os.path.join(root, "ckpt.pth"), os.path.join(out_dir, "tiny.onnx"))
    rc, text = run(args + ["--resize-shorter", "14"],
                   cwd=tempfile.gettempdir())   # not the module's folder: --path finds it
    assert rc == 0, text
    assert sorted(os.listdir(out_dir)) == ["tiny.export.json", "tiny.grad.onnx", "tiny.onnx"], os.listdir(out_dir)
    report = json.load(open(os.path.join(out_dir, "tiny.export.json")))
    assert report["forward"]["forward_max_abs_err"] <= 1e-4, report
    assert report["grad"]["norm_max_rel_err"] <= 1e-4 and report["grad"]["sqnorm_max_rel_err"] <= 1e-4, report
    mf = metadata.read(os.path.join(out_dir, "tiny.onnx"))
    mg = metadata.read(os.path.join(out_dir, "tiny.grad.onnx"))
    assert mf["infoutil.role"] == "forward" and mg["infoutil.role"] == "grad"
    assert json.loads(mf["infoutil.input_shape"]) == [3, 12, 12]
    assert json.loads(mf["infoutil.normalization"]) == metadata.mean_std([0.5] * 3, [0.5] * 3)
    assert json.loads(mf["infoutil.class_names"]) == CLASSES
    assert json.loads(mf["infoutil.resize"]) == json.loads(mg["infoutil.resize"]) == {
        "kind": "shorter_side", "size": 14}
    assert mf["infoutil.source"] == "mynets.tiny:TinyNet"
    assert mf["infoutil.weights_sha256"] == mg["infoutil.weights_sha256"]
    names = json.loads(mg["infoutil.param_names"])
    assert names == [k for k, _ in model.named_parameters()], names
    # the graph computes with the file's weights, not with the constructor's own
    x = torch.randn(5, 3, 12, 12, generator=torch.Generator().manual_seed(9))
    got = verify.ort_session(os.path.join(out_dir, "tiny.onnx")).run(None, {"x": x.numpy()})[0]
    with torch.no_grad():
        want = model(x).numpy()
        torch.manual_seed(4)
        fresh = ctor(4, 6, torch.nn.GELU).eval()(x).numpy()
    err = float(np.abs(got - want).max())
    assert err <= 1e-5 and np.abs(got - fresh).max() > 1e-2, (err, np.abs(got - fresh).max())
    return report, err


def test_wrong_state_dict_is_refused(root, model):
    sd = model.state_dict()
    sd["classifier.weight"] = sd.pop("head.weight")          # renamed
    sd["stem.1.running_mean"] = torch.zeros(7)                # wrong shape
    sd["aux.bias"] = torch.zeros(3)                            # extra
    bad = os.path.join(root, "bad.pt")
    torch.save(sd, bad)
    out_dir = os.path.join(root, "refused")
    rc, text = run(base_args(root, bad, os.path.join(out_dir, "tiny.onnx")), cwd=root)
    assert rc == 1, text
    for needle in ("REFUSED", "strict loading", "missing", "head.weight", "unexpected",
                   "classifier.weight", "aux.bias", "wrong shape", "stem.1.running_mean: file [7], model [6]"):
        assert needle in text, (needle, text)
    assert not os.path.exists(out_dir) or os.listdir(out_dir) == [], os.listdir(out_dir)
    return text[text.index("REFUSED"):].strip()


def test_resize_smaller_than_the_crop_is_refused(root):
    args = base_args(root, os.path.join(root, "ckpt.pth"), os.path.join(root, "y", "t.onnx"))
    rc, text = run(args + ["--resize-shorter", "10"], cwd=root)
    assert rc == 2 and "--resize-shorter 10 is smaller than the 12x12 centre crop" in text, text


def test_class_names_must_fit(root):
    args = base_args(root, os.path.join(root, "ckpt.pth"), os.path.join(root, "x", "t.onnx"))
    args[args.index("--class-names") + 1] = "a,b,c"
    rc, text = run(args, cwd=root)
    assert rc == 1 and "3 class names for 4 outputs" in text, text


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    with tempfile.TemporaryDirectory() as root:
        model, ctor = user_model(root)
        report, err = test_pair_verifies(root, model, ctor)
        print(f"own module, own weights: forward {report['forward']['forward_max_abs_err']:.3g}, "
              f"grad max rel err {report['grad']['norm_max_rel_err']:.3g}; the file's logits vs "
              f"the checkpoint's model {err:.3g}")
        print("wrong state_dict refused:\n ", test_wrong_state_dict_is_refused(root, model).replace("\n", "\n  "))
        test_class_names_must_fit(root)
        test_resize_smaller_than_the_crop_is_refused(root)
        print("class names that do not fit refused")
    print("ok")
