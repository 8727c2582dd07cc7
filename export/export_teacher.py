"""Export a trained Fashion-MNIST ConvNet-3 checkpoint as infoutil's two ONNX teacher files.

    python export/export_teacher.py --checkpoint export/runs/fmnist-convnet3/epoch10.pt \
        --name fmnist-convnet3 --epoch 10 --epochs-total 10

Measures test top-1 on the full 10k test set, exports NAME.onnx and NAME.grad.onnx into --out-dir,
verifies them against PyTorch / torch.func on real test images, and refuses (exit 1, nothing
written) when they disagree. Also copies the state_dict next to them as NAME.pt, which is what
export/make_reference.py reads.
"""
import argparse
import json
import os
import shutil
import sys
import time

import torch

from infoutil_export import exporter
from infoutil_export.data import (FMNIST_CLASSES, FMNIST_DIR, FMNIST_MEAN, FMNIST_STD, load_split,
                                  normalize)
from infoutil_export.metadata import mean_std
from infoutil_export.nets import convnet3


@torch.no_grad()
def predict(model, x, bs=1000):
    model.eval()
    return torch.cat([model(x[i:i + bs]) for i in range(0, len(x), bs)])


def verification_set(logits, y, n, seed):
    """Seeded random test images, plus the most confident and the least well-fitted ones: the
    extremes are where float32 gradient norms are hardest to get right."""
    k = n // 8
    loss = torch.nn.functional.cross_entropy(logits, y, reduction="none")
    order = loss.argsort()
    extremes = torch.cat([order[:k], order[-k:]])
    rest = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    rest = rest[~torch.isin(rest, extremes)][:n - 2 * k]
    return torch.cat([rest, extremes])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True, help="state_dict saved by train_fmnist.py")
    ap.add_argument("--name", required=True)
    ap.add_argument("--out-dir", default="models")
    ap.add_argument("--epoch", required=True, type=int)
    ap.add_argument("--epochs-total", required=True, type=int)
    ap.add_argument("--data", default=FMNIST_DIR)
    ap.add_argument("--verify-n", type=int, default=128, help="test images used for verification")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cam", nargs="?", const=True, default=False, metavar="LAYER",
                    help="also write NAME.cam.onnx, the Grad-CAM graph (default layer: relu3; "
                         "see export_cam.py, which adds it to an existing teacher)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    model = convnet3()
    model.load_state_dict(torch.load(args.checkpoint, map_location="cpu", weights_only=True))
    model.eval()
    x_u8, y = load_split("t10k", args.data)
    x, y = normalize(x_u8), torch.from_numpy(y)
    logits = predict(model, x)
    top1 = (logits.argmax(1) == y).sum().item() / len(y)
    print(f"[{args.name}] test top-1 (PyTorch, {len(x)} images): {top1:.4f}")

    idx = verification_set(logits, y, args.verify_n, args.seed)
    t0 = time.time()
    try:
        report = exporter.export(
            model, args.out_dir, args.name, input_shape=(1, 28, 28), class_names=FMNIST_CLASSES,
            normalization=mean_std([FMNIST_MEAN], [FMNIST_STD]), verify_x=x[idx], verify_y=y[idx],
            checkpoint_epoch=args.epoch, epochs_total=args.epochs_total, dataset="fashion-mnist",
            test_top1=top1, cam=args.cam)
    except (exporter.UnsupportedModelError, exporter.VerificationError, exporter.CamLayerError) as e:
        print(f"[{args.name}] REFUSED: {e}", file=sys.stderr)
        return 1
    shutil.copyfile(args.checkpoint, os.path.join(args.out_dir, args.name + ".pt"))
    report.update(test_top1=top1, checkpoint_epoch=args.epoch, epochs_total=args.epochs_total,
                  export_seconds=round(time.time() - t0, 1), torch=torch.__version__)
    with open(os.path.join(args.out_dir, args.name + ".export.json"), "w") as f:
        json.dump(report, f, indent=1)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
