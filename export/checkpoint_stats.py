"""Accuracy and confidence of every checkpoint of a training run on the full test set: the numbers
behind the choice of the early teacher (models/README.md).

    python export/checkpoint_stats.py export/runs/fmnist-convnet3
"""
import glob
import json
import math
import sys

import torch
import torch.nn.functional as F

from infoutil_export.data import load_split, normalize
from infoutil_export.nets import convnet3


@torch.no_grad()
def stats(model, x, y, bs=1000):
    model.eval()
    logits = torch.cat([model(x[i:i + bs]) for i in range(0, len(x), bs)])
    p = F.softmax(logits.double(), 1)
    pmax, pred = p.max(1)
    entropy = -(p * p.clamp_min(1e-300).log()).sum(1)
    return {"test_top1": (pred == y).sum().item() / len(y),
            "mean_p_max": pmax.mean().item(),
            "mean_p_true": p.gather(1, y[:, None]).mean().item(),
            "mean_entropy_nats": entropy.mean().item(),
            "frac_p_max_above_0.99": (pmax > 0.99).double().mean().item(),
            "test_nll": F.nll_loss(p.log(), y).item()}


def main():
    run = sys.argv[1] if len(sys.argv) > 1 else "export/runs/fmnist-convnet3"
    torch.set_num_threads(2)
    x_u8, y = load_split("t10k")
    x, y = normalize(x_u8), torch.from_numpy(y)
    rows = []
    for path in sorted(glob.glob(f"{run}/epoch*.pt")):
        model = convnet3()
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        row = {"checkpoint": path.rsplit("/", 1)[-1], **stats(model, x, y)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    print(f"(max entropy for 10 classes: {math.log(10):.3f} nats)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
