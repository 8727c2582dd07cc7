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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    ap.add_argument("--n", type=int, default=16, help="samples compared per size")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
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
            try:
                rep = exporter.export(model, d, f"resnet18-{size}px", input_shape=(3, size, size),
                                      class_names=[str(i) for i in range(10)], normalization=BAKED,
                                      verify_x=x, verify_y=y, log=print)
            except exporter.VerificationError as e:
                print(f"resnet18 {size}px: FAILED: {e}")
                ok = False
                continue
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
