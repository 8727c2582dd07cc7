"""Check the gradient exporter on torchvision ResNet-18 (random seeded weights, 10 classes) at
32 px and 64 px: export both graphs to a temporary folder and compare against torch.func.

    python export/verify_resnet18.py
"""
import argparse
import json
import sys
import tempfile
import time

import torch
import torchvision

from infoutil_export import exporter
from infoutil_export.metadata import BAKED


def replay(grad_path, model, x, y):
    """The grad graph's norms against float64 on the graph's own float32 decisions, call by call,
    on every sample (what the export does for samples over tolerance only)."""
    import numpy as np
    import onnx
    from infoutil_export import branches, verify
    gd = branches.GraphDecisions(onnx.load(grad_path), exporter.prepare_model(model))
    lined_up, (norms,) = gd.record(x, y)
    if not lined_up:
        return {"replay_error": gd.describe()}
    flips, _ = branches.flips_and_replay(gd.c32, gd.c64, len(x))
    ref = np.sqrt(branches.branch_matched_sqnorms(gd.m64, gd.c64, x.double(), y).sum(1))
    ops = [c.op.onnx_op for c in gd.c64.calls]
    return {"piecewise_calls": len(ops), "relu_calls": ops.count("Relu"),
            "relu_modules": sum(isinstance(m, torch.nn.ReLU) for m in model.modules()),
            "decisions_flipped": int(flips.sum()),
            "own_branch_norm_max_rel_err": float((np.abs(norms - ref) / ref).max())}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--n", type=int, default=16, help="samples compared per size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--replay", action="store_true",
                    help="also replay the grad graph's own float32 decisions on every sample "
                         "(BasicBlock calls self.relu twice: one decision list per call)")
    ap.add_argument("--keep", help="a folder to keep the exported files in")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(args.seed)
    model = torchvision.models.resnet18(weights=None, num_classes=10)
    # non-trivial running statistics, as in a trained network, so BatchNorm's eval-mode
    # normalisation is actually exercised
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    ok = True
    for size in args.sizes:
        gen = torch.Generator().manual_seed(args.seed + size)
        x = torch.randn(args.n, 3, size, size, generator=gen)
        y = torch.randint(0, 10, (args.n,), generator=gen)
        t0 = time.time()
        with tempfile.TemporaryDirectory() as d:
            d = args.keep or d
            try:
                rep = exporter.export(model, d, f"resnet18-{size}px", input_shape=(3, size, size),
                                      class_names=[str(i) for i in range(10)], normalization=BAKED,
                                      verify_x=x, verify_y=y, log=print)
            except exporter.VerificationError as e:
                print(f"resnet18 {size}px: FAILED: {e}")
                ok = False
                continue
            if args.replay:
                print(json.dumps(replay(f"{d}/resnet18-{size}px.grad.onnx", model, x, y)))
        g = rep["grad"]
        print(json.dumps({"size": size, "n": args.n,
                          "forward_max_abs_err": rep["forward"]["forward_max_abs_err"],
                          "norm_max_rel_err": g["norm_max_rel_err"],
                          "sqnorm_max_rel_err": g["sqnorm_max_rel_err"],
                          "torch_func_float32_max_rel_err": g["torch_func_float32_max_rel_err"],
                          "grad_onnx_bytes": rep["files"]["grad"]["bytes"],
                          "seconds": round(time.time() - t0, 1)}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
