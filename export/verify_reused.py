"""A network that reuses its activation and pooling modules, as trained packages do
(EfficientNet-Lite0's reuses one nn.ReLU6 per block; torchvision's BasicBlock calls self.relu
twice): one nn.ReLU6 module called 7 times and one nn.MaxPool2d called twice, random seeded
weights with BatchNorm statistics randomised, exported with exporter.export at Fashion-MNIST's
shape and verified on the embedded test images; then the graph's own float32 decisions are
replayed call by call on every verification sample (branches.GraphDecisions), not only on those
over 1e-4 as the export does.

    python export/verify_reused.py --out export/runs/reused      # NAME reused-relu6.onnx + .grad.onnx
"""
import argparse
import json
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn

from infoutil_export import branches, data, exporter, metadata


class Block(nn.Module):
    """Inverted residual (expand 1x1, depthwise 3x3, project 1x1) with the caller's activation."""

    def __init__(self, c, act, expand=3):
        super().__init__()
        self.act = act   # the network's one ReLU6, shared (a module called from every block)
        e = c * expand
        self.expand = nn.Sequential(nn.Conv2d(c, e, 1, bias=False), nn.BatchNorm2d(e))
        self.dw = nn.Sequential(nn.Conv2d(e, e, 3, padding=1, groups=e, bias=False), nn.BatchNorm2d(e))
        self.project = nn.Sequential(nn.Conv2d(e, c, 1, bias=False), nn.BatchNorm2d(c))

    def forward(self, x):
        return x + self.project(self.act(self.dw(self.act(self.expand(x)))))


class ReusedNet(nn.Module):
    def __init__(self, width=8, classes=10):
        super().__init__()
        self.act, self.pool = nn.ReLU6(), nn.MaxPool2d(2)
        self.stem = nn.Sequential(nn.Conv2d(1, width, 3, padding=1, bias=False), nn.BatchNorm2d(width))
        self.b1, self.b2, self.b3 = (Block(width, self.act) for _ in range(3))
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        h = self.pool(self.b1(self.act(self.stem(x))))   # 28 -> 14
        h = self.pool(self.b3(self.b2(h)))               # 14 -> 7
        return self.head(h.mean((2, 3)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = ReusedNet()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    imgs, labels = data.load_split("t10k", "data/fashion-mnist-mini")
    x, y = data.normalize(imgs[:args.n]), torch.from_numpy(labels[:args.n])
    rep = exporter.export(model, args.out, "reused-relu6", input_shape=(1, 28, 28),
                          class_names=data.FMNIST_CLASSES,
                          normalization=metadata.mean_std([data.FMNIST_MEAN], [data.FMNIST_STD]),
                          verify_x=x, verify_y=y, dataset="none (random weights)")
    gd = branches.GraphDecisions(onnx.load(f"{args.out}/reused-relu6.grad.onnx"),
                                 exporter.prepare_model(model))
    lined_up, (norms,) = gd.record(x, y)
    assert lined_up, gd.describe()
    flips, _ = branches.flips_and_replay(gd.c32, gd.c64, len(x))
    ref = np.sqrt(branches.branch_matched_sqnorms(gd.m64, gd.c64, x.double(), y).sum(1))
    ops = [c.op.onnx_op for c in gd.c64.calls]
    print(json.dumps({"forward_max_abs_err": rep["forward"]["forward_max_abs_err"],
                      "norm_max_rel_err": rep["grad"]["norm_max_rel_err"],
                      "piecewise_calls": {o: ops.count(o) for o in set(ops)},
                      "decisions_flipped": int(flips.sum()),
                      "own_branch_norm_max_rel_err": float((np.abs(norms - ref) / ref).max()),
                      "bytes": {k: v["bytes"] for k, v in rep["files"].items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
