"""The exporter end to end on small models: supported layers verify, unsupported ones are refused
by name, and a wrong gradient graph is refused with nothing left on disk.

    python export/tests/test_exporter.py
"""
import os
import sys
import tempfile

import onnx
import torch
import torch.nn as nn

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from infoutil_export import exporter, ghost, metadata  # noqa: E402


def small_net():
    """Every supported layer type once, plus a residual addition."""
    class Block(nn.Module):
        def __init__(self, c):
            super().__init__()
            self.conv = nn.Conv2d(c, c, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(c)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            out = self.bn(self.conv(x))
            out += x
            return self.relu(out)

    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=1, padding=1), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1), Block(8), nn.AvgPool2d(3, 1, 1), nn.Conv2d(8, 8, 1, stride=2),
        nn.ReLU(), nn.MaxPool2d(2), nn.Dropout(0.2), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(32, 16), nn.ReLU(), nn.Identity(), nn.Linear(16, 5))
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 2)
    return net


def export(net, d, name="t", n=12):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(n, 3, 16, 16, generator=gen)
    y = torch.randint(0, 5, (n,), generator=gen)
    return exporter.export(net, d, name, input_shape=(3, 16, 16), class_names=list("abcde"),
                           normalization=metadata.BAKED, verify_x=x, verify_y=y,
                           checkpoint_epoch=1, epochs_total=1, log=lambda *a: None)


def test_all_supported_layers_verify():
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as d:
        rep = export(small_net(), d)
        assert rep["grad"]["norm_max_rel_err"] < 1e-5, rep
        fwd, grd = onnx.load(f"{d}/t.onnx"), onnx.load(f"{d}/t.grad.onnx")
        mf, mg = metadata.read(fwd), metadata.read(grd)
        assert mf["infoutil.role"] == "forward" and mg["infoutil.role"] == "grad"
        assert mf["infoutil.weights_sha256"] == mg["infoutil.weights_sha256"] == metadata.weights_sha256(fwd)
        assert fwd.ir_version <= 10 and grd.ir_version <= 10
        ops = {n.op_type for n in grd.graph.node}
        assert not ops & {"ScatterElements", "ScatterND", "GatherElements"}, ops
        assert mg["infoutil.last_layer_params"] == "[11, 12]", mg["infoutil.last_layer_params"]
        assert sorted(os.listdir(d)) == ["t.grad.onnx", "t.onnx"]
    return rep["grad"]["norm_max_rel_err"]


def test_unsupported_layers_are_named():
    net = nn.Sequential(nn.Conv2d(3, 8, 3), nn.GroupNorm(2, 8), nn.Conv2d(8, 8, 3, groups=2),
                        nn.GELU(), nn.Flatten(), nn.LazyLinear(5))
    try:
        exporter.check_supported(net)
    except exporter.UnsupportedModelError as e:
        msg = str(e)
        for needle in ("layer '1' is GroupNorm", "layer '2' is Conv2d with groups=2",
                       "layer '3' is GELU", "supported layers: Conv2d"):
            assert needle in msg, (needle, msg)
        return msg
    raise AssertionError("GroupNorm was accepted")


def test_wrong_graph_is_refused_and_nothing_written():
    torch.manual_seed(0)
    original = ghost.layer_sqnorms

    def broken(name, m, a, g):
        out = original(name, m, a, g)
        if isinstance(m, nn.Conv2d):   # e.g. a wrong im2col: conv weight norms off by 10 %
            out[name + "weight"] = out[name + "weight"] * 1.1
        return out

    ghost.layer_sqnorms = broken
    try:
        with tempfile.TemporaryDirectory() as d:
            try:
                export(small_net(), d)
            except exporter.VerificationError as e:
                assert os.listdir(d) == [], os.listdir(d)
                return str(e)[:120]
            raise AssertionError("a wrong gradient graph was written")
    finally:
        ghost.layer_sqnorms = original


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    print("all supported layers: max rel err", test_all_supported_layers_verify())
    print("unsupported layers refused:\n ", test_unsupported_layers_are_named().replace("\n", "\n  "))
    print("broken graph refused:", test_wrong_graph_is_refused_and_nothing_written())
    print("ok")
