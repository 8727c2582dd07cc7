"""Why does a from_onnx.py export miss the 1e-4 bar? Separates the two things a float32 gradient
graph can disagree with the float64 reference about:

- numerics: the graph's per-sample rules on the same piecewise-smooth branch of the network as
  the reference (what the exporter could compute more accurately), and
- branches: a ReLU / clip / max-pool decision that the float32 forward takes the other way than
  float64 does (a pre-activation within float32's rounding of 0, two max-pool candidates within
  it of each other). The gradient is discontinuous there: each side is the exact gradient of its
  branch, so no float32 evaluation of that forward can be held to the float64 one.

    python export/branch_check.py SRC.onnx --input-shape 1 28 28 --pixels unit \
        --images data/fashion-mnist-mini/t10k-images-idx3-ubyte.gz --n 1000

For each sample: the grad graph's norm (ONNX Runtime, the graph grad_proto builds, or --grad)
against (1) the float64 torch.func reference the export verifies with, and (2) the same network in
float64 with every ReLU / LeakyReLU / Hardtanh (ReLU6) / Clip / MaxPool2d module replaying the
decisions the grad graph's own float32 forward took on ONNX Runtime (read from its Relu / MaxPool
/ Clip / LeakyRelu nodes; ORT's float32 convolutions round differently from PyTorch's, so its
branches can differ from both), computed by an independent loop of torch.autograd.grad per sample
(no ghost rules); and how many decisions differ from float64's. Other piecewise ops (Hardswish,
Max, Abs, ...) are not replayed and are listed. Exit 0 when the graph is within --tol of (2) on
every sample and every sample over --tol against (1) has a flipped decision; else 1.
"""
import argparse
import copy
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from from_onnx import PIXELS, graph_input, normalized, torch_module
from infoutil_export import exporter, metadata, verify
from infoutil_export.data import read_idx_images, read_idx_labels


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
SUSPECT = ("Max", "Min", "Hard", "Abs", "Clip", "Relu", "ReLU", "Sign", "Floor", "Round", "Ceil")


def with_branches(model):
    """A copy with every replayable piecewise-linear module wrapped; also the other suspects."""
    from onnx2torch.node_converters.clip import OnnxClip
    m = copy.deepcopy(model)
    wrapped, other = [], []
    for name, mod in list(m.named_modules()):
        if isinstance(mod, REPLAYED + (OnnxClip,)):
            m.get_submodule(name.rpartition(".")[0]).add_module(name.rpartition(".")[2], Branch(mod))
            wrapped.append(name)
        elif name and any(s in type(mod).__name__ for s in SUSPECT):
            other.append(f"{name} ({type(mod).__name__})")
    return m, wrapped, other


def branch_matched_sqnorms(m64, x64, y):
    """[N, P] float64 per-sample squared norms on the recorded branches, one autograd.grad each."""
    params = [p for _, p in m64.named_parameters()]
    branches = [b for b in m64.modules() if isinstance(b, Branch)]
    for p in params:
        p.requires_grad_(True)
    out = []
    for i in range(len(x64)):
        for b in branches:
            b.mode, b.sel = "replay", slice(i, i + 1)
        loss = verify.stable_cross_entropy(m64(x64[i:i + 1]), y[i:i + 1])
        gs = torch.autograd.grad(loss, params, allow_unused=True)
        out.append([0.0 if g is None else float(g.pow(2).sum()) for g in gs])
    return np.asarray(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src")
    ap.add_argument("--input-shape", type=int, nargs=3, required=True, metavar=("C", "H", "W"))
    ap.add_argument("--layout", choices=["NCHW", "NHWC"])
    ap.add_argument("--pixels", choices=sorted(PIXELS))
    ap.add_argument("--mean", type=float, nargs="+")
    ap.add_argument("--std", type=float, nargs="+")
    ap.add_argument("--images", required=True, help="idx3 gzip images (labels file alongside)")
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--grad", help="an existing grad graph (default: built here, as the export builds it)")
    ap.add_argument("--tol", type=float, default=exporter.GRAD_TOL)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import onnx
    src = onnx.load(args.src)
    input_name, layout = graph_input(src, args.input_shape, args.layout)
    c = args.input_shape[0]
    norm = PIXELS[args.pixels](c) if args.pixels else metadata.mean_std(args.mean, args.std) \
        if args.mean else metadata.BAKED
    tm = torch_module(args.src, args.input_shape, layout, log=lambda *a: None)
    model = exporter.prepare_model(tm)
    sl = slice(args.start, args.start + args.n)
    x = normalized(torch.from_numpy(np.array(read_idx_images(args.images)[sl])).unsqueeze(1), norm, layout)
    y = torch.from_numpy(read_idx_labels(args.images.replace("images-idx3", "labels-idx1"))[sl])

    if args.grad:
        proto = onnx.load(args.grad)
        feed_name = [i.name for i in proto.graph.input][0]
    else:
        proto, _ = exporter.grad_proto(model, exporter.graph_shape(args.input_shape, layout), input_name)
        feed_name = input_name
    b32, wrapped, other = with_branches(model)
    b64, _, _ = with_branches(verify._copy_as(model, torch.float64))
    br32 = [b for b in b32.modules() if isinstance(b, Branch)]
    br64 = [b for b in b64.modules() if isinstance(b, Branch)]
    taps = graph_branch_inputs(proto, br32)
    for t in taps or []:
        proto.graph.output.append(onnx.helper.make_empty_tensor_value_info(t))
    sess = verify.ort_session(proto.SerializeToString())
    outs = sess.run(["norms"] + (taps or []), {feed_name: x.numpy(), "y": y.numpy()})
    got = outs[0].astype(np.float64)

    ref = np.sqrt(verify.reference_grad_sqnorms(model, x, y)[0].sum(1))
    for b in br32 + br64:
        b.mode = "record"
    with torch.no_grad():
        if taps is None:   # PyTorch's float32 decisions instead of the graph's
            print("the grad graph's piecewise nodes do not line up with the modules: replaying "
                  "PyTorch's float32 decisions instead of ONNX Runtime's")
            b32(x)
        else:
            for b, a in zip(br32, outs[1:]):
                b(torch.from_numpy(a))
        b64(x.double())
    flips = np.zeros(len(x), int)
    details = []
    for name, a, b in zip(wrapped, br32, br64):
        d = (a.saved != b.saved)
        flips += d.flatten(1).sum(1).numpy()
        details += [(s, name, rest) for s, *rest in d.nonzero().tolist()]
        b.saved = a.saved
    matched = np.sqrt(branch_matched_sqnorms(b64, x.double(), y).sum(1))

    err = np.abs(got - ref) / np.maximum(ref, verify.TINY_FLOOR)
    err_m = np.abs(got - matched) / np.maximum(matched, verify.TINY_FLOOR)
    over = err > args.tol
    print(f"{args.n} images from {args.images} (start {args.start}); replayed: {len(wrapped)} modules"
          + (f"; NOT replayed (piecewise?): {', '.join(other)}" if other else ""))
    print(f"grad graph vs float64 reference:            max rel err {err.max():.3g}, "
          f"{int(over.sum())} samples over {args.tol:g}")
    print(f"grad graph vs float64 on its own float32 branches: max rel err {err_m.max():.3g}")
    print(f"samples whose float32 forward (the graph's) takes another branch: {int((flips > 0).sum())} "
          f"({int(flips.sum())} decisions); over {args.tol:g} without one: {int((over & (flips == 0)).sum())}; "
          f"max rel err of the others {err[flips == 0].max() if (flips == 0).any() else 0:.3g}")
    worst = {}
    for s, name, rest in details:
        worst.setdefault(s, []).append(f"{name} {rest}")
    for s in sorted(worst, key=lambda s: -err[s])[:10]:
        print(f"  sample {args.start + s}: rel err {err[s]:.3g} (vs its branch {err_m[s]:.3g}), "
              f"flipped: {'; '.join(worst[s][:3])}")
    ok = err_m.max() <= args.tol and not (over & (flips == 0)).any()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
