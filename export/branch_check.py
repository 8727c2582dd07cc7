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
float64 with every ReLU / LeakyReLU / Hardtanh (ReLU6) / Clip / MaxPool2d call (modules called
once or several times, and functional calls) replaying the decisions the grad graph's own float32
forward took on ONNX Runtime (read from its Relu / MaxPool
/ Clip / LeakyRelu nodes; ORT's float32 convolutions round differently from PyTorch's, so its
branches can differ from both), computed by an independent loop of torch.autograd.grad per sample
(no ghost rules); and how many decisions differ from float64's. Other piecewise ops (Hardswish,
Max, Abs, ...) are not replayed and are listed. Exit 0 when the graph is within --tol of (2) on
every sample and every sample over --tol against (1) has a flipped decision; else 1. The replay
machinery is infoutil_export/branches.py, which the export's own verification (verify.check_grad)
uses for the samples over tolerance.
"""
import argparse
import sys

import numpy as np
import torch

from from_onnx import PIXELS, graph_input, normalized, torch_module
from infoutil_export import exporter, metadata, verify
from infoutil_export.branches import GraphDecisions, branch_matched_sqnorms, flips_and_replay
from infoutil_export.data import read_idx_images, read_idx_labels


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
    gd = GraphDecisions(proto, model, feed_name)
    lined_up, (got,) = gd.record(x, y)
    got = got.astype(np.float64)
    ref = np.sqrt(verify.reference_grad_sqnorms(model, x, y)[0].sum(1))
    if not lined_up:   # PyTorch's float32 decisions instead of the graph's
        print(gd.describe() + ": replaying PyTorch's float32 decisions instead of ONNX Runtime's")
        with torch.no_grad():
            gd.c32.run(model, x, "record")
    flips, details = flips_and_replay(gd.c32, gd.c64, len(x))
    matched = np.sqrt(branch_matched_sqnorms(gd.m64, gd.c64, x.double(), y).sum(1))
    other = gd.other

    err = np.abs(got - ref) / np.maximum(ref, verify.TINY_FLOOR)
    err_m = np.abs(got - matched) / np.maximum(matched, verify.TINY_FLOOR)
    over = err > args.tol
    print(f"{args.n} images from {args.images} (start {args.start}); replayed: {len(gd.c64.calls)} piecewise calls"
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
