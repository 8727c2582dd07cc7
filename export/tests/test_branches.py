"""Branch-aware gradient verification: a sample that sits on a max-pool tie in float32 but not in
float64 is over 1e-4 against plain float64, is accepted against float64 replaying the graph's own
float32 decisions (read from ONNX Runtime) with the flip reported, call by call (a module called
twice, functional calls), and a wrong gradient graph is still refused.

The tie: a 1x1 convolution u + 2 v + 2 over two channels. The first max-pool candidate has
(u, v) = (1, 0), so 3 exactly; the second (0, 0.5 + 2^-24), so 3 + 2^-23 exactly, which float32
rounds (ties to even) to 3: float32 sees a tie and takes the first (any convolution algorithm:
each product is exact and one of them is 0), float64 takes the second. The gradients of the
convolution weight differ by far more than 1e-4: (g, 0) against (0, g / 2) (every other
position of that sample is -1 before the ReLU, so the tied window carries its gradient).

    python export/tests/test_branches.py
"""
import json
import os
import sys
import tempfile

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import from_onnx  # noqa: E402
from infoutil_export import exporter, ghost, metadata, verify  # noqa: E402

SHAPE = (2, 6, 10)   # no size 4: the symbolic tracing batch of 4 would share its symbol
TOL = exporter.GRAD_TOL


def net():
    torch.manual_seed(0)
    m = nn.Sequential(nn.Conv2d(2, 1, 1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                      nn.Linear(15, 3))
    with torch.no_grad():
        m[0].weight.copy_(torch.tensor([1.0, 2.0]).reshape(1, 2, 1, 1))
        m[0].bias.fill_(2.0)
        m[4].weight[:, 0] *= 10   # the tied window's feature: its gradient path dominates
    return m


def data(n=8):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, *SHAPE, generator=gen) * 0.4   # conv output in [2, 3.2]: far from ties
    y = torch.randint(0, 3, (n,), generator=gen)
    tie = torch.zeros(SHAPE)
    tie[0] = -3.0   # conv output -1 everywhere else: ReLU'd to 0, far from its kink
    tie[0, 0, 0], tie[0, 0, 1] = 1.0, 0.0
    tie[1, 0, 1] = 0.5 + 2.0 ** -24
    x[0] = tie
    assert np.float32(3.0) + np.float32(2.0 ** -23) == np.float32(3.0)   # the float32 tie
    return x, y


def src_onnx(model, path):
    onnx.save(exporter.forward_proto(exporter.prepare_model(model), SHAPE, "img"), path)


def export_both(d, x, y):
    """(report of the from_onnx.py route, report of the exporter.export route)."""
    model = net()
    src = os.path.join(d, "src.onnx")
    src_onnx(model, src)
    kw = dict(input_shape=SHAPE, class_names=list("abc"), normalization=metadata.BAKED,
              verify_x=x, verify_y=y, log=lambda *a: None)
    r1 = from_onnx.export_onnx(src, d, "viaonnx", layout="NCHW", **kw)
    r2 = exporter.export(model, d, "viatorch", **kw)
    return r1, r2


def test_tie_is_accepted_with_flip_reported(d):
    x, y = data()
    reports = export_both(d, x, y)
    for g in (r["grad"] for r in reports):
        assert g["norm_max_rel_err"] > TOL, g            # (a) plain float64 misses on the tie
        assert g["verified"], g                          # (b) accepted ...
        assert g["n_over_tol_plain"] == 1 and g["over_tol_samples"] == [0], g
        assert g["n_branch_flipped"] == 1 and g["n_unexplained"] == 0, g   # ... with the flip
        assert g["own_branch_norm_max_rel_err"] <= 1e-6, g
        assert g["own_branch_sqnorm_max_rel_err"] <= 1e-6, g
    return reports


class Reused(nn.Module):
    """net()'s tie behind one nn.ReLU and one nn.MaxPool2d each called twice (as torchvision's
    BasicBlock calls self.relu twice), with functional F.relu / Tensor.clamp calls between (no
    module at all). The second conv (1x1, weight 1, bias 0.1) keeps the tied value the largest
    of its second pooling window (the window's other values are ReLU'd -1s), so the tie still
    carries the gradient."""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = net()[0], nn.Conv2d(1, 1, 1)
        self.relu, self.pool = nn.ReLU(), nn.MaxPool2d(2)
        self.fc = nn.Linear(2, 3)
        with torch.no_grad():
            self.conv2.weight.fill_(1.0)
            self.conv2.bias.fill_(0.1)
            self.fc.weight[:, 0] *= 10   # the tied window's feature

    def forward(self, x):
        h = self.pool(self.relu(self.conv1(x)))   # [1, 3, 5]: the tie at (0, 0)
        h = F.relu(self.relu(self.conv2(h)) - 0.05).clamp(0.0, 6.0)
        return self.fc(self.pool(h).flatten(1))   # [1, 1, 2]


def test_reused_and_functional_calls_are_replayed(d):
    """Each call is replayed with its own decisions: the tie sample is accepted (the old
    per-module replay refused this network: 6 graph nodes against 2 modules)."""
    x, y = data()
    rep = exporter.export(Reused(), os.path.join(d, "reused"), "t", input_shape=SHAPE,
                          class_names=list("abc"), normalization=metadata.BAKED, verify_x=x,
                          verify_y=y, log=lambda *a: None)
    g = rep["grad"]
    assert g["norm_max_rel_err"] > TOL and g["verified"], g
    assert g["over_tol_samples"] == [0] and g["n_branch_flipped"] == 1, g
    assert g["n_unexplained"] == 0 and g["replayed_calls"] == 6, g
    assert g["own_branch_norm_max_rel_err"] <= 1e-6, g
    return g


def scaled_column(grad_path, out_path, col, factor):
    """The grad graph with sqnorms[:, col] multiplied by factor."""
    m = onnx.load(grad_path)
    n_cols = len(json.loads(metadata.read(m)["infoutil.param_names"]))
    for node in m.graph.node:
        node.output[:] = ["sqnorms_raw" if o == "sqnorms" else o for o in node.output]
    scale = np.ones(n_cols, np.float32)
    scale[col] = factor
    m.graph.initializer.append(numpy_helper.from_array(scale, "sqnorms_scale"))
    m.graph.node.append(helper.make_node("Mul", ["sqnorms_raw", "sqnorms_scale"], ["sqnorms"]))
    onnx.save(m, out_path)


def test_wrong_graph_is_refused(d):
    x, y = data()
    model = exporter.prepare_model(net())
    # (c) the accepted graph with the conv weight's sqnorm column 1 % off (norms untouched): the
    # tie sample is flipped but not within 1e-4 of its own branch, so it is not explained
    bad = os.path.join(d, "bad.grad.onnx")
    scaled_column(os.path.join(d, "viatorch.grad.onnx"), bad, 0, 1.01)
    g = verify.check_grad(bad, model, x, y, "x", tol=TOL)
    assert not g["verified"] and 0 in g["over_tol_samples"], g
    assert g["n_unexplained"] == g["n_over_tol_plain"] and g["n_branch_flipped"] >= 1, g
    assert g["own_branch_norm_max_rel_err"] <= 1e-6 < TOL < g["own_branch_sqnorm_max_rel_err"], g
    # samples over tolerance without a flip are refused however close their own branch is
    scaled_column(os.path.join(d, "viatorch.grad.onnx"), bad, 0, 1.5)
    g2 = verify.check_grad(bad, model, x[1:], y[1:], "x", tol=TOL)
    assert not g2["verified"] and g2["n_over_tol_plain"] >= 1 and g2["n_branch_flipped"] == 0, g2
    assert g2["n_unexplained"] == g2["n_over_tol_plain"], g2
    # and a wrong per-sample rule is refused by the export, on the tie sample alone (twice)
    original = ghost.rule_conv

    def broken(use, grad):
        return {k: (kind, v * 1.01 if k.endswith("weight") else v)
                for k, (kind, v) in original(use, grad).items()}

    for f in (F.conv2d, torch.conv2d):
        ghost.RULES[f] = broken
    try:
        out = os.path.join(d, "refused")
        try:
            exporter.export(net(), out, "t", input_shape=SHAPE, class_names=list("abc"),
                            normalization=metadata.BAKED, verify_x=x[[0, 0]], verify_y=y[[0, 0]],
                            log=lambda *a: None)
        except exporter.VerificationError as e:
            assert os.listdir(out) == [], os.listdir(out)
            return g, str(e)[:100]
        raise AssertionError("a wrong gradient graph was accepted on the tie sample")
    finally:
        for f in (F.conv2d, torch.conv2d):
            ghost.RULES[f] = original


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    with tempfile.TemporaryDirectory() as d:
        for name, r in zip(("from_onnx", "exporter"), test_tie_is_accepted_with_flip_reported(d)):
            g = r["grad"]
            print(f"{name}: plain float64 max rel err {g['norm_max_rel_err']:.3g}, flipped "
                  f"{g['n_branch_flipped']}, own-branch max rel err {g['own_branch_norm_max_rel_err']:.3g}")
        g, e = test_wrong_graph_is_refused(d)
        print(f"wrong sqnorms column: {g['n_unexplained']} of {g['n_over_tol_plain']} over unexplained "
              f"(own-branch sqnorm err {g['own_branch_sqnorm_max_rel_err']:.3g}); wrong rule "
              f"refused: {e}")
        g = test_reused_and_functional_calls_are_replayed(d)
        print(f"nn.ReLU and nn.MaxPool2d called twice, F.relu, clamp: plain float64 "
              f"{g['norm_max_rel_err']:.3g}, {g['replayed_calls']} calls replayed, own-branch "
              f"{g['own_branch_norm_max_rel_err']:.3g}: accepted")
    print("ok")
