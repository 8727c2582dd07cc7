"""PyTorch reference numbers for the Rust tests: tests/data/fmnist_torch_reference.json.

    python export/make_reference.py

For the first 64 images of the embedded test subset (data/fashion-mnist-mini), and each shipped
teacher (models/NAME.pt, the state_dict the ONNX files were exported from):
  logits      [64, 10]  float32 PyTorch forward (eval mode)
  grad_norms  [64]      |d CE(logits, label) / d theta|_2 over all parameters, per sample,
                        torch.func vmap(grad) in float64
  sqnorms     [64, P]   the per-parameter squared norms (columns = param_names = the grad graph's
                        infoutil.param_names)
  loss_grad_norm [64]   |softmax(logits) - onehot(label)|: below ~1e-3 a float32 graph cannot
                        match the float64 norm to 1e-4 relative (see export/README.md)
Preprocessing: float(pixel)/255, then (x - 0.2860)/0.3530.
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
import torch

from infoutil_export import verify
from infoutil_export.data import normalize, read_idx_images, read_idx_labels
from infoutil_export.nets import convnet3

TEACHERS = ["fmnist-convnet3", "fmnist-convnet3-early"]
IMAGES = "data/fashion-mnist-mini/t10k-images-idx3-ubyte.gz"
LABELS = "data/fashion-mnist-mini/t10k-labels-idx1-ubyte.gz"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("--count", type=int, default=64)
    ap.add_argument("--out", default="tests/data/fmnist_torch_reference.json")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    root = os.path.abspath(args.root)

    images = read_idx_images(os.path.join(root, IMAGES))[:args.count]
    labels = torch.from_numpy(read_idx_labels(os.path.join(root, LABELS))[:args.count])
    x = normalize(images)
    out = {"images_file": IMAGES, "labels_file": LABELS, "count": args.count,
           "preprocessing": "float(pixel)/255, then (x - 0.2860)/0.3530",
           "torch": torch.__version__, "teachers": {}}
    for name in TEACHERS:
        model = convnet3()
        model.load_state_dict(torch.load(os.path.join(root, "models", name + ".pt"),
                                         map_location="cpu", weights_only=True))
        model.eval()
        with torch.no_grad():
            logits = model(x)
        # the state_dict must be the one the shipped ONNX files came from
        onnx_path = os.path.join(root, "models", name + ".onnx")
        onnx_logits = verify.ort_session(onnx_path).run(["logits"], {"x": x.numpy()})[0]
        diff = float(np.abs(onnx_logits - logits.numpy()).max())
        if diff > 1e-4:
            print(f"{name}: models/{name}.pt does not match models/{name}.onnx ({diff})", file=sys.stderr)
            return 1
        meta = {p.key: p.value for p in onnx.load(os.path.join(root, "models", name + ".grad.onnx")).metadata_props}
        param_names = [k for k, _ in model.named_parameters()]
        if json.loads(meta["infoutil.param_names"]) != param_names:
            print(f"{name}: parameter order differs from the grad graph's", file=sys.stderr)
            return 1
        sq, delta = verify.reference_grad_sqnorms(model, x, labels)
        out["teachers"][name] = {
            "labels": labels.tolist(),
            "logits": logits.tolist(),
            "grad_norms": np.sqrt(sq.sum(1)).tolist(),
            "sqnorms": sq.tolist(),
            "param_names": param_names,
            "loss_grad_norm": delta.tolist(),
        }
        print(f"{name}: top-1 on these {args.count}: "
              f"{(logits.argmax(1) == labels).float().mean().item():.4f}; "
              f"ONNX vs PyTorch logits max diff {diff:.2g}; "
              f"grad norm range {np.sqrt(sq.sum(1)).min():.3g}..{np.sqrt(sq.sum(1)).max():.3g}")
    path = os.path.join(root, args.out)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(out, f)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
