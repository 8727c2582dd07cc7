"""Branch points: float64 references that replay the float32 graph's own ReLU / Clip / MaxPool
decisions.

A ReLU / LeakyReLU / Hardtanh (ReLU6) / Clip / MaxPool2d decision taken within float32's rounding
of its threshold (a pre-activation within rounding of 0, two max-pool candidates within rounding of
each other) can go the other way in float32 than in float64. The per-sample gradient is
discontinuous there: each side is the exact gradient of its own branch, so no float32 evaluation
can be held to the float64 one. What can be checked is the graph against float64 on the branches
its own float32 forward took on ONNX Runtime (ORT's convolutions round differently from PyTorch's,
so the decisions are read from the grad graph's Relu / LeakyRelu / MaxPool / Clip node inputs).

The float64 side wraps every such module of the network (`with_branches`) and computes, per
sample, an independent torch.autograd.grad (no ghost rules) with the recorded decisions
(`branch_matched_sqnorms`). Piecewise ops that are not modules (F.relu calls) or not listed here
(Hardswish, Max, Abs, ...) are not replayed; when the graph's piecewise nodes do not line up one
to one with the wrapped modules, the decisions cannot be read and nothing is claimed.
"""
import copy

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import verify


class Branch(nn.Module):
    """A piecewise-linear module that records its decisions (mode "record") or computes with
    recorded ones (mode "replay", for the samples in `sel`)."""

    def __init__(self, inner):
        super().__init__()
        self.inner, self.mode, self.saved, self.sel = inner, "plain", None, slice(None)

    def bounds(self):
        m = self.inner
        if isinstance(m, nn.ReLU):
            return 0.0, None
        if isinstance(m, nn.Hardtanh):   # ReLU6 too
            return m.min_val, m.max_val
        return getattr(m, "min_val", None), getattr(m, "max_val", None)   # onnx2torch's OnnxClip

    def forward(self, a):
        m = self.inner
        if isinstance(m, nn.MaxPool2d):
            out, idx = F.max_pool2d(a, m.kernel_size, m.stride, m.padding, m.dilation, m.ceil_mode,
                                    return_indices=True)
            if self.mode == "record":
                self.saved = idx
            if self.mode == "replay":
                idx = self.saved[self.sel]
                return a.flatten(2).gather(2, idx.flatten(2)).reshape(idx.shape)
            return out
        if isinstance(m, nn.LeakyReLU):
            if self.mode == "record":
                self.saved = a > 0
            if self.mode == "replay":
                pos = self.saved[self.sel].to(a.dtype)
                return a * (pos + (1 - pos) * m.negative_slope)
            return m(a)
        lo, hi = self.bounds()   # saved: 0 at the lower bound, 1 between, 2 at the upper bound
        if self.mode == "record":
            self.saved = torch.ones_like(a, dtype=torch.int8)
            if lo is not None:
                self.saved = self.saved - (a <= lo).to(torch.int8)
            if hi is not None:
                self.saved = self.saved + (a >= hi).to(torch.int8)
        if self.mode == "replay":
            s = self.saved[self.sel]
            out = a * (s == 1).to(a.dtype)
            if lo is not None:
                out = out + lo * (s == 0).to(a.dtype)
            if hi is not None:
                out = out + hi * (s == 2).to(a.dtype)
            return out
        return m(a)


REPLAYED = (nn.ReLU, nn.LeakyReLU, nn.Hardtanh, nn.MaxPool2d)
ONNX_OP = {nn.ReLU: "Relu", nn.LeakyReLU: "LeakyRelu", nn.MaxPool2d: "MaxPool"}   # else Clip
SUSPECT = ("Max", "Min", "Hard", "Abs", "Clip", "Relu", "ReLU", "Sign", "Floor", "Round", "Ceil")


def _clip_types():
    try:
        from onnx2torch.node_converters.clip import OnnxClip
        return (OnnxClip,)
    except ImportError:
        return ()


def onnx_op(branch):
    return next((v for k, v in ONNX_OP.items() if type(branch.inner) is k), "Clip")


def graph_branch_inputs(proto, branches):
    """The inputs of the grad graph's Relu / LeakyRelu / MaxPool / Clip nodes, in graph order, one
    per wrapped module (the forward part of the graph runs them in the module's order; the
    backward of these ops uses Where / Equal masks, not the ops themselves). None when the nodes
    do not line up with the modules one to one."""
    ops = set(ONNX_OP.values()) | {"Clip"}
    nodes = [nd for nd in proto.graph.node if nd.op_type in ops]
    if [nd.op_type for nd in nodes] != [onnx_op(b) for b in branches]:
        return None
    return [nd.input[0] for nd in nodes]


def with_branches(model):
    """A copy with every replayable piecewise-linear module wrapped (names), and the names of the
    other modules that look piecewise."""
    m = copy.deepcopy(model)
    wrapped, other = [], []
    for name, mod in list(m.named_modules()):
        if isinstance(mod, REPLAYED + _clip_types()):
            parent, _, leaf = name.rpartition(".")
            m.get_submodule(parent).add_module(leaf, Branch(mod))
            wrapped.append(name)
        elif name and any(s in type(mod).__name__ for s in SUSPECT):
            other.append(f"{name} ({type(mod).__name__})")
    return m, wrapped, other


def branches_of(m):
    return [b for b in m.modules() if isinstance(b, Branch)]


def branch_matched_sqnorms(m64, x64, y):
    """[N, P] float64 per-sample squared norms (named_parameters order) on the recorded branches,
    one torch.autograd.grad each."""
    params = [p for _, p in m64.named_parameters()]
    branches = branches_of(m64)
    for p in params:
        p.requires_grad_(True)
    out = []
    with torch.enable_grad():
        for i in range(len(x64)):
            for b in branches:
                b.mode, b.sel = "replay", slice(i, i + 1)
            loss = verify.stable_cross_entropy(m64(x64[i:i + 1]), y[i:i + 1])
            gs = torch.autograd.grad(loss, params, allow_unused=True)
            out.append([0.0 if g is None else float(g.pow(2).sum()) for g in gs])
    return np.asarray(out, dtype=np.float64).reshape(len(x64), len(params))


class GraphDecisions:
    """The grad graph `proto` (a ModelProto, left unchanged) on ONNX Runtime with its piecewise
    nodes' inputs as extra outputs, and wrapped float32 / float64 copies of `model` (b32, b64;
    names of the wrapped modules: wrapped, other suspects: other). taps is None when the graph's
    nodes do not line up with the modules by op type in order."""

    def __init__(self, proto, model, input_name="x", extra_outputs=("norms",)):
        self.b32, self.wrapped, self.other = with_branches(model)
        self.b64, _, _ = with_branches(verify._copy_as(model, torch.float64))
        self.input_name, self.extra = input_name, list(extra_outputs)
        proto = copy.deepcopy(proto)
        self.taps = graph_branch_inputs(proto, branches_of(self.b32))
        for t in self.taps or []:
            proto.graph.output.append(onnx.helper.make_empty_tensor_value_info(t))
        self.sess = verify.ort_session(proto.SerializeToString())

    def record(self, x, y):
        """Run the graph on (x, y): b32's branches record the graph's own decisions, b64's
        float64's own. Returns (lined_up, outs): lined_up false when the taps are missing or a
        node's input is not the shape of its module's (another tensor, or a module unused);
        outs the graph's extra outputs."""
        outs = self.sess.run(self.extra + (self.taps or []),
                             {self.input_name: x.numpy(), "y": y.numpy()})
        br32, br64 = branches_of(self.b32), branches_of(self.b64)
        for b in br32 + br64:
            b.mode, b.saved = "record", None
        with torch.no_grad():
            for b, a in zip(br32, outs[len(self.extra):] if self.taps is not None else []):
                b(torch.from_numpy(a))
            self.b64(x.double())
        lined_up = self.taps is not None and all(
            a.saved is not None and b.saved is not None and a.saved.shape == b.saved.shape
            for a, b in zip(br32, br64))
        return lined_up, outs[:len(self.extra)]


def graph_decisions(proto, model, x, y, input_name="x", extra_outputs=("norms",)):
    """GraphDecisions(...).record(x, y) on all of x. Returns (b32, b64, wrapped, other, outs),
    b32 None when the graph's nodes do not line up with the modules."""
    gd = GraphDecisions(proto, model, input_name, extra_outputs)
    lined_up, outs = gd.record(x, y)
    return gd.b32 if lined_up else None, gd.b64, gd.wrapped, gd.other, outs


def flips_and_replay(b32, b64, wrapped, n):
    """Per-sample count of decisions where the graph's float32 differs from float64 [N], the
    flipped decisions as (sample, module name, position); b64 is set to replay b32's decisions."""
    br32, br64 = branches_of(b32), branches_of(b64)
    flips = np.zeros(n, int)
    details = []
    for name, a, b in zip(wrapped, br32, br64):
        d = a.saved != b.saved
        f = d.flatten(1).sum(1).numpy()
        flips = flips + f
        details += [(s, name, rest) for s, *rest in d.nonzero().tolist()]
        b.saved = a.saved
    return flips, details


def own_branch_check(onnx_path, model, x, y, input_name, samples, norms, sqnorms, tol, chunk=16):
    """For the samples (indices into x) over tolerance against plain float64: the graph's
    norms / sqnorms against float64 replaying the graph's own float32 decisions on ONNX Runtime.
    A sample is explained when it is within tol of that reference (norm and every sqnorm, each
    relative to its total) and at least one of its decisions differs from float64's own.
    Returns the report entries."""
    samples = np.asarray(samples, int)
    rep = {"n_over_tol_plain": int(len(samples))}
    gd = GraphDecisions(onnx.load(onnx_path), model, input_name)
    wrapped, other = gd.wrapped, gd.other
    # the graph's decisions are read from a run on these samples alone (in chunks: the taps of
    # every piecewise node of a big batch would not fit), the norms judged are the batch's
    flips, sq = [], []
    for i in range(0, len(samples), chunk):
        sel = torch.from_numpy(samples[i:i + chunk])
        lined_up, _ = gd.record(x[sel], y[sel])
        if not lined_up:
            rep["own_branch_error"] = (
                "the grad graph's Relu / LeakyRelu / MaxPool / Clip nodes do not line up one to "
                f"one and in shape with the inputs of the network's {len(wrapped)} replayable "
                "modules (nn.ReLU, nn.LeakyReLU, nn.Hardtanh, nn.MaxPool2d, onnx2torch's Clip), "
                "so the graph's own decisions cannot be replayed (a functional F.relu / "
                "F.max_pool2d call has no module to replay)")
            rep["n_unexplained"] = int(len(samples))
            return rep
        flips.append(flips_and_replay(gd.b32, gd.b64, wrapped, len(sel))[0])
        sq.append(branch_matched_sqnorms(gd.b64, x[sel].double(), y[sel]))
    flips, sq = np.concatenate(flips), np.concatenate(sq)
    ref = np.sqrt(sq.sum(1))
    got = norms[samples].astype(np.float64)
    rel = np.abs(got - ref) / np.maximum(ref, verify.TINY_FLOOR)
    sq_rel = (np.abs(sqnorms[samples].astype(np.float64) - sq)
              / np.maximum(ref ** 2, verify.TINY_FLOOR)[:, None]).max(1, initial=0.0)
    f = flips
    ok = (rel <= tol) & (sq_rel <= tol) & (f > 0)
    rep.update({
        "n_branch_flipped": int((f > 0).sum()),
        "n_decisions_flipped": int(f.sum()),
        "own_branch_norm_max_rel_err": float(rel.max()),
        "own_branch_sqnorm_max_rel_err": float(sq_rel.max()),
        "n_unexplained": int((~ok).sum()),
        "over_tol_samples": [int(s) for s in samples[:20]],
        "replayed_modules": len(wrapped),
    })
    if other:
        rep["not_replayed"] = other
    return rep
