"""Branch points: float64 references that replay the float32 graph's own ReLU / Clip / MaxPool
decisions, call by call.

A ReLU / LeakyReLU / Hardtanh (ReLU6) / Clip / MaxPool2d decision taken within float32's rounding
of its threshold (a pre-activation within rounding of 0, two max-pool candidates within rounding of
each other) can go the other way in float32 than in float64. The per-sample gradient is
discontinuous there: each side is the exact gradient of its own branch, so no float32 evaluation
can be held to the float64 one. What can be checked is the graph against float64 on the branches
its own float32 forward took on ONNX Runtime (ORT's convolutions round differently from PyTorch's,
so the decisions are read from the grad graph's Relu / LeakyRelu / MaxPool / Clip node inputs).

The unit is the *call*, not the module: a `TorchFunctionMode` (`Calls`) sees every piecewise torch
call of a forward in order, whether it comes from a module (`nn.ReLU`, `nn.ReLU6`, `nn.MaxPool2d`,
onnx2torch's Clip), a module called several times (torchvision's BasicBlock runs `self.relu`
twice, EfficientNet blocks reuse one ReLU6), or a functional call (`F.relu`, `x.clamp(0, 6)`).
The exported graph holds one node per call in the same order, so the k-th call lines up with the
k-th such node. The float64 side computes, per sample, an independent torch.autograd.grad (no
ghost rules) with the recorded decisions (`branch_matched_sqnorms`). Piecewise ops not listed
here (Hardswish, Max, Abs, ...) are not replayed; when the graph's piecewise nodes do not line up
one to one with the calls, the decisions cannot be read and nothing is claimed.
"""
import copy

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from . import numerics


class Piecewise:
    """One piecewise call's op: `decide(a)` its decisions on input a (what the grad graph's node
    input is too), `replay(a, saved)` the op computed with given decisions (differentiable in a).
    Bounds ops save 0 at/below the lower bound, 1 between, 2 at/above the upper one."""

    def __init__(self, onnx_op, lo=None, hi=None, slope=None, pool=None):
        self.onnx_op, self.lo, self.hi, self.slope, self.pool = onnx_op, lo, hi, slope, pool

    def decide(self, a):
        if self.pool is not None:
            return F.max_pool2d(a, **self.pool, return_indices=True)[1]
        if self.slope is not None:
            return a > 0
        s = torch.ones_like(a, dtype=torch.int8)
        if self.lo is not None:
            s = s - (a <= self.lo).to(torch.int8)
        if self.hi is not None:
            s = s + (a >= self.hi).to(torch.int8)
        return s

    def replay(self, a, s):
        if self.pool is not None:
            return a.flatten(2).gather(2, s.flatten(2)).reshape(s.shape)
        if self.slope is not None:
            pos = s.to(a.dtype)
            return a * (pos + (1 - pos) * self.slope)
        out = a * (s == 1).to(a.dtype)
        if self.lo is not None:
            out = out + self.lo * (s == 0).to(a.dtype)
        if self.hi is not None:
            out = out + self.hi * (s == 2).to(a.dtype)
        return out


def _arg(args, kwargs, i, name, default=None):
    return args[i] if len(args) > i else kwargs.get(name, default)


def _scalar(v):
    """A bound as a Python float (a 0-d / one-element tensor too); False when it is a tensor of
    several values (a per-channel clamp: not replayed)."""
    if v is None or isinstance(v, (int, float)):
        return None if v is None else float(v)
    if torch.is_tensor(v) and v.numel() == 1:
        return float(v)
    return False


def _bounds(onnx_op, lo, hi):
    lo, hi = _scalar(lo), _scalar(hi)
    return None if lo is False or hi is False else Piecewise(onnx_op, lo=lo, hi=hi)


def _pool(args, kwargs):
    if _arg(args, kwargs, 6, "return_indices", False):
        return None   # a caller that wants the indices: not an activation-style call
    k = _arg(args, kwargs, 1, "kernel_size")
    stride = _arg(args, kwargs, 2, "stride") or k   # None / () mean the kernel size
    return Piecewise("MaxPool", pool=dict(
        kernel_size=k, stride=stride, padding=_arg(args, kwargs, 3, "padding", 0),
        dilation=_arg(args, kwargs, 4, "dilation", 1),
        ceil_mode=bool(_arg(args, kwargs, 5, "ceil_mode", False))))


# every spelling of the replayed ops that a network (or onnx2torch) calls, with how to read its
# arguments; the outermost call is seen (inside the mode's handler the mode is off)
PIECEWISE = {
    F.relu: lambda a, k: Piecewise("Relu", lo=0.0),
    torch.relu: lambda a, k: Piecewise("Relu", lo=0.0),
    torch.Tensor.relu: lambda a, k: Piecewise("Relu", lo=0.0),
    F.relu6: lambda a, k: Piecewise("Clip", lo=0.0, hi=6.0),
    F.hardtanh: lambda a, k: _bounds("Clip", _arg(a, k, 1, "min_val", -1.0),
                                     _arg(a, k, 2, "max_val", 1.0)),
    F.leaky_relu: lambda a, k: Piecewise("LeakyRelu",
                                         slope=float(_arg(a, k, 1, "negative_slope", 0.01))),
    F.max_pool2d: _pool,
    torch.max_pool2d: _pool,
}
for _f in (torch.clamp, torch.clip, torch.Tensor.clamp, torch.Tensor.clip, torch.clamp_,
           torch.Tensor.clamp_, torch.Tensor.clip_):
    PIECEWISE[_f] = lambda a, k: _bounds("Clip", _arg(a, k, 1, "min"), _arg(a, k, 2, "max"))
for _f in (torch.relu_, torch.Tensor.relu_, F.relu_):
    PIECEWISE[_f] = PIECEWISE[torch.relu]
# where an in-place call says so (argument position, or always)
INPLACE = {F.relu: 1, F.relu6: 1, F.hardtanh: 3, F.leaky_relu: 2, torch.relu_: True,
           torch.Tensor.relu_: True, F.relu_: True, torch.clamp_: True, torch.Tensor.clamp_: True,
           torch.Tensor.clip_: True}


def _inplace(func, args, kwargs):
    pos = INPLACE.get(func)
    if pos is True or kwargs.get("inplace") is True:
        return True
    return isinstance(pos, int) and len(args) > pos and args[pos] is True
ONNX_OPS = ("Relu", "LeakyRelu", "MaxPool", "Clip")
SUSPECT = ("Max", "Min", "Hard", "Abs", "Sign", "Floor", "Round", "Ceil")


class Call:
    def __init__(self, op, saved, where):
        self.op, self.saved, self.where = op, saved, where


class Calls(TorchFunctionMode):
    """The piecewise calls of one forward, in order. `run(model, x, "record")` records each call's
    op and decisions; `run(model, x, "replay", sel)` computes every call with the recorded
    decisions of the samples `sel` (a slice of the recorded batch)."""

    def __init__(self):
        super().__init__()
        self.mode, self.sel, self.calls, self.pos = "plain", slice(None), [], 0

    def run(self, model, x, mode, sel=slice(None)):
        self.mode, self.sel, self.pos = mode, sel, 0
        if mode == "record":
            self.calls = []
        with self:
            out = model(x)
        if mode == "replay" and self.pos != len(self.calls):
            raise RuntimeError(f"the forward made {self.pos} piecewise calls, "
                               f"{len(self.calls)} were recorded")
        return out

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        make = PIECEWISE.get(func)
        op = make(args, kwargs) if make is not None else None
        if op is None or self.mode == "plain":
            return func(*args, **kwargs)
        a = args[0]
        if self.mode == "record":
            self.calls.append(Call(op, op.decide(a.detach()), getattr(func, "__name__", str(func))))
            return func(*args, **kwargs)
        call = self.calls[self.pos]
        self.pos += 1
        if call.op.onnx_op != op.onnx_op:
            raise RuntimeError(f"piecewise call {self.pos - 1} is {op.onnx_op} on replay, "
                               f"{call.op.onnx_op} when recorded")
        out = call.op.replay(a, call.saved[self.sel])
        if _inplace(func, args, kwargs):   # F.relu(x, inplace=True), x.clamp_(0, 6), ...
            return a.copy_(out)
        return out


def suspects(model):
    """Modules that look piecewise but are not replayed (their calls are not in PIECEWISE)."""
    return [f"{name} ({type(mod).__name__})" for name, mod in model.named_modules()
            if name and any(s in type(mod).__name__ for s in SUSPECT)
            and not any(s in type(mod).__name__ for s in ("ReLU", "Hardtanh", "Clip", "MaxPool"))]


def branch_matched_sqnorms(m64, calls, x64, y):
    """[N, P] float64 per-sample squared norms (named_parameters order) on the decisions recorded
    in `calls` (for the batch x64), one torch.autograd.grad each."""
    params = [p for _, p in m64.named_parameters()]
    for p in params:
        p.requires_grad_(True)
    out = []
    with torch.enable_grad():
        for i in range(len(x64)):
            logits = calls.run(m64, x64[i:i + 1], "replay", slice(i, i + 1))
            loss = numerics.stable_cross_entropy(logits, y[i:i + 1])
            gs = torch.autograd.grad(loss, params, allow_unused=True)
            out.append([0.0 if g is None else float(g.pow(2).sum()) for g in gs])
    return np.asarray(out, dtype=np.float64).reshape(len(x64), len(params))


class GraphDecisions:
    """The grad graph `proto` (a ModelProto, left unchanged) on ONNX Runtime with its piecewise
    nodes' inputs as extra outputs, and a float64 copy of `model` (m64). After `record`, c32 holds
    the graph's own float32 decisions per call and c64 float64's own."""

    def __init__(self, proto, model, input_name="x", extra_outputs=("norms",)):
        self.m64 = numerics.copy_as(model, torch.float64)
        self.other = suspects(model)
        self.c32, self.c64 = Calls(), Calls()
        self.input_name, self.extra = input_name, list(extra_outputs)
        proto = copy.deepcopy(proto)
        self.nodes = [nd for nd in proto.graph.node if nd.op_type in ONNX_OPS]
        self.taps = list(dict.fromkeys(nd.input[0] for nd in self.nodes))
        have = {o.name for o in proto.graph.output}
        for t in self.taps:
            if t not in have:
                proto.graph.output.append(onnx.helper.make_empty_tensor_value_info(t))
        self.sess = numerics.ort_session(proto.SerializeToString())

    def record(self, x, y):
        """Run the graph on (x, y) and float64 on x. Returns (lined_up, outs): lined_up false when
        the graph's piecewise nodes and the forward's piecewise calls differ in number, op or
        shape; outs the graph's extra outputs."""
        outs = self.sess.run(self.extra + self.taps, {self.input_name: x.numpy(), "y": y.numpy()})
        tapped = dict(zip(self.taps, outs[len(self.extra):]))
        with torch.no_grad():
            self.c64.run(self.m64, x.double(), "record")
        calls = self.c64.calls
        if [c.op.onnx_op for c in calls] != [nd.op_type for nd in self.nodes]:
            self.c32.calls = []
            return False, outs[:len(self.extra)]
        self.c32.calls = [Call(c.op, c.op.decide(torch.from_numpy(tapped[nd.input[0]])), c.where)
                          for c, nd in zip(calls, self.nodes)]
        lined_up = all(a.saved.shape == b.saved.shape for a, b in zip(self.c32.calls, calls))
        return lined_up, outs[:len(self.extra)]

    def describe(self):
        ops = [nd.op_type for nd in self.nodes]
        calls = [c.op.onnx_op for c in self.c64.calls]
        return (f"the grad graph's {len(ops)} Relu / LeakyRelu / MaxPool / Clip nodes do not line "
                f"up one to one, in order and shape, with the forward's {len(calls)} piecewise "
                f"calls (F.relu, F.relu6, F.hardtanh, F.leaky_relu, clamp, F.max_pool2d, from "
                f"modules or not) (graph {_counts(ops)}; calls {_counts(calls)}), so the graph's "
                "own decisions cannot be replayed")


def _counts(ops):
    return ", ".join(f"{o} {ops.count(o)}" for o in ONNX_OPS if o in ops) or "none"


def flips_and_replay(c32, c64, n):
    """Per-sample count of decisions where the graph's float32 differs from float64 [N], the
    flipped decisions as (sample, call name, position); c64 is set to replay c32's decisions."""
    flips = np.zeros(n, int)
    details = []
    for k, (a, b) in enumerate(zip(c32.calls, c64.calls)):
        d = a.saved != b.saved
        flips = flips + d.flatten(1).sum(1).numpy()
        details += [(s, f"call {k} ({b.where})", rest) for s, *rest in d.nonzero().tolist()]
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
    # the graph's decisions are read from a run on these samples alone (in chunks: the taps of
    # every piecewise node of a big batch would not fit), the norms judged are the batch's
    flips, sq = [], []
    for i in range(0, len(samples), chunk):
        sel = torch.from_numpy(samples[i:i + chunk])
        lined_up, _ = gd.record(x[sel], y[sel])
        if not lined_up:
            rep["own_branch_error"] = gd.describe()
            rep["n_unexplained"] = int(len(samples))
            return rep
        flips.append(flips_and_replay(gd.c32, gd.c64, len(sel))[0])
        sq.append(branch_matched_sqnorms(gd.m64, gd.c64, x[sel].double(), y[sel]))
    flips, sq = np.concatenate(flips), np.concatenate(sq)
    ref = np.sqrt(sq.sum(1))
    got = norms[samples].astype(np.float64)
    rel = np.abs(got - ref) / np.maximum(ref, numerics.TINY_FLOOR)
    sq_rel = (np.abs(sqnorms[samples].astype(np.float64) - sq)
              / np.maximum(ref ** 2, numerics.TINY_FLOOR)[:, None]).max(1, initial=0.0)
    ok = (rel <= tol) & (sq_rel <= tol) & (flips > 0)
    rep.update({
        "n_branch_flipped": int((flips > 0).sum()),
        "n_decisions_flipped": int(flips.sum()),
        "own_branch_norm_max_rel_err": float(rel.max()),
        "own_branch_sqnorm_max_rel_err": float(sq_rel.max()),
        "n_unexplained": int((~ok).sum()),
        "over_tol_samples": [int(s) for s in samples[:20]],
        "replayed_calls": len(gd.c64.calls),
    })
    if gd.other:
        rep["not_replayed"] = gd.other
    return rep
