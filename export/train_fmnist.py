"""Train the Fashion-MNIST ConvNet-3 teacher: seeded, full 60k training set, one checkpoint per epoch.

    python export/train_fmnist.py --out export/runs/fmnist-convnet3

Input: float(pixel)/255, then (x - 0.2860)/0.3530 (see infoutil_export.data).
Recipe: SGD (Nesterov, momentum 0.9, weight decay 5e-4), one-cycle learning rate (peak 0.1),
batch 128, augmentation = random crop with 2 px zero padding + horizontal flip.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

from infoutil_export.data import FMNIST_DIR, load_split, normalize
from infoutil_export.nets import convnet3


def augment(x_raw, gen, pad=2):
    """Random crop (zero padding = the black background of Fashion-MNIST) + horizontal flip,
    on raw [0, 1] pixels before normalisation so that padding is true background."""
    n, _, h, w = x_raw.shape
    xp = F.pad(x_raw, (pad, pad, pad, pad))
    offs = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen)
    flips = torch.rand(n, generator=gen) < 0.5
    out = torch.empty_like(x_raw)
    for i in range(n):
        dy, dx = int(offs[i, 0]), int(offs[i, 1])
        crop = xp[i, :, dy:dy + h, dx:dx + w]
        out[i] = crop.flip(-1) if flips[i] else crop
    return out


@torch.no_grad()
def evaluate(model, x, y, bs=1000):
    model.eval()
    correct, loss = 0, 0.0
    for i in range(0, len(x), bs):
        xb = x[i:i + bs].contiguous(memory_format=torch.channels_last)
        logits = model(xb)
        loss += F.cross_entropy(logits, y[i:i + bs], reduction="sum").item()
        correct += (logits.argmax(1) == y[i:i + bs]).sum().item()
    return correct / len(x), loss / len(x)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default=FMNIST_DIR)
    ap.add_argument("--out", default="export/runs/fmnist-convnet3")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--wd", type=float, default=5e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    gen = torch.Generator().manual_seed(args.seed)
    os.makedirs(args.out, exist_ok=True)

    xtr_u8, ytr = load_split("train", args.data)
    xte_u8, yte = load_split("t10k", args.data)
    xtr_raw = torch.from_numpy(xtr_u8.copy()).float().div_(255.0).unsqueeze(1)
    ytr, yte = torch.from_numpy(ytr), torch.from_numpy(yte)
    xte = normalize(xte_u8)
    from infoutil_export.data import FMNIST_MEAN, FMNIST_STD

    model = convnet3().to(memory_format=torch.channels_last)  # channels_last: ~1.7x faster on CPU here
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                          weight_decay=args.wd)
    steps = (len(xtr_raw) + args.batch - 1) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                                steps_per_epoch=steps, pct_start=0.25)
    history = {"config": vars(args), "torch": torch.__version__, "epochs": []}
    t0 = time.time()
    for epoch in range(1, args.epochs + 1):
        model.train()
        perm = torch.randperm(len(xtr_raw), generator=gen)
        tot_loss, tot_correct, seen = 0.0, 0, 0
        for s in range(steps):
            idx = perm[s * args.batch:(s + 1) * args.batch]
            xb = (augment(xtr_raw[idx], gen) - FMNIST_MEAN) / FMNIST_STD
            xb = xb.contiguous(memory_format=torch.channels_last)
            yb = ytr[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            tot_loss += loss.item() * len(idx)
            tot_correct += (logits.argmax(1) == yb).sum().item()
            seen += len(idx)
            if s % 100 == 0:
                print(f"  epoch {epoch} step {s}/{steps} loss {loss.item():.4f} "
                      f"({time.time() - t0:.0f} s)", flush=True)
        top1, test_loss = evaluate(model, xte, yte)
        rec = {"epoch": epoch, "train_loss": tot_loss / seen, "train_top1": tot_correct / seen,
               "test_top1": top1, "test_loss": test_loss, "wall_s": round(time.time() - t0, 1),
               "lr_end": sched.get_last_lr()[0]}
        history["epochs"].append(rec)
        print(json.dumps(rec), flush=True)
        sd = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
        torch.save(sd, f"{args.out}/epoch{epoch:02d}.pt")
        with open(f"{args.out}/history.json", "w") as f:
            json.dump(history, f, indent=1)
    print(f"done in {time.time() - t0:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
