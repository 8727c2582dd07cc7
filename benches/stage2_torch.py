#!/usr/bin/env python
"""Stage 2 (per-sample gradient norms) of infoutil against PyTorch's `torch.func` `vmap(grad)`.

The same network with the same weights on both sides: torchvision's ResNet-18 (10 classes, its
constructor's weights under torch.manual_seed(0)) at 224 px, exported once by export/export_module.py
with its forward and gradient graphs (verified there against float64). Then, side by side in one
run, on the same batch of images and the same number of threads:

  1. torch.func: `vmap(grad(cross_entropy))` over the batch in float32 (PyTorch's per-sample
     gradient recipe), the norms taken from the per-sample gradients; repeated, median;
  2. infoutil: `cargo bench --bench teacher` on the exported teacher (`Teacher::grad_norms`, the
     gradient graph on ONNX Runtime and, unless left out, tract), criterion's median;
  3. torch.func again (so that drift of the shared machine shows as a difference of the halves).

Accuracy on the same batch: both against float64 `vmap(grad)` on a float64 copy
(infoutil_export.verify's reference), max relative error of the norms.

  python benches/stage2_torch.py --work /tmp/stage2 --batch 16 --out out/stage2.md
  # needs export/requirements.txt (torch, torchvision, onnx, onnxruntime) and ORT_DYLIB_PATH for
  # the Rust side (source scripts/setup.sh)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "export"))
from infoutil_export import verify  # noqa: E402  (the export's float64 reference)

MEAN, STD = "0.485,0.456,0.406", "0.229,0.224,0.225"


def network(k):
    import torchvision
    torch.manual_seed(0)
    return torchvision.models.resnet18(num_classes=k).eval()


def export(model, work, size, k, threads):
    """The teacher package NAME.onnx + NAME.grad.onnx in `work`, exported once."""
    onnx = work / f"resnet18-{size}.onnx"
    if onnx.exists():
        return onnx
    weights = work / "resnet18.pt"
    torch.save(model.state_dict(), weights)
    cmd = [sys.executable, str(ROOT / "export/export_module.py"),
           "--module", "torchvision.models:resnet18", "--kwargs", json.dumps({"num_classes": k}),
           "--weights", str(weights), "--input-shape", f"3,{size},{size}",
           "--mean", MEAN, "--std", STD, "--class-names", ",".join(f"c{i}" for i in range(k)),
           "--n", "4", "--threads", str(threads), "--out", str(onnx)]
    print("[stage2] exporting:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return onnx


def images(n, size):
    """The Rust bench's fixed pattern (benches/common/mod.rs): values in [-2, 2) from Knuth's
    multiplicative hash of the element's 1-based index; labels 0."""
    k = np.arange(1, n * 3 * size * size + 1, dtype=np.uint64)
    x = ((k * np.uint64(2_654_435_761)) % np.uint64(4096)).astype(np.float32) / 1024.0 - 2.0
    return torch.from_numpy(x.reshape(n, 3, size, size)), torch.zeros(n, dtype=torch.long)


def torch_func_norms(model):
    """float32 per-sample gradient norms by vmap(grad), the whole batch in one call."""
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss(p, xi, yi):
        return F.cross_entropy(functional_call(model, {**p, **buffers}, (xi[None],)), yi[None])

    per_sample = vmap(grad(loss), in_dims=(None, 0, 0))

    def norms(x, y):
        g = per_sample(params, x, y)
        return torch.stack([g[k].reshape(len(x), -1).pow(2).sum(1) for k in params], 1).sum(1).sqrt()
    return norms


def time_torch(fn, x, y, reps):
    out, secs = None, []
    for _ in range(reps):
        t0 = time.perf_counter()
        with torch.no_grad():
            out = fn(x, y)
        secs.append(time.perf_counter() - t0)
    return out.numpy().astype(np.float64), secs


def criterion_median(target, name):
    """criterion's median estimate (seconds per iteration) of teacher/NAME."""
    est = target / "criterion" / "teacher" / name.replace("/", "_") / "new" / "estimates.json"
    return json.loads(est.read_text())["median"]["point_estimate"] / 1e9


def rust_bench(onnx, batch, backends, target):
    env = {**os.environ, "INFOUTIL_BENCH_TEACHER": str(onnx), "INFOUTIL_BENCH_IMAGES": str(batch),
           "INFOUTIL_BENCH_BACKENDS": backends}
    cmd = ["cargo", "bench", "--bench", "teacher", "--", "--noplot"]
    print("[stage2] INFOUTIL_BENCH_TEACHER=%s INFOUTIL_BENCH_IMAGES=%d INFOUTIL_BENCH_BACKENDS=%s %s"
          % (onnx, batch, backends, " ".join(cmd)), flush=True)
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    return {(kind, b): criterion_median(target, f"{kind}/{b}")
            for b in backends.split(",") for kind in ("logits", "grad_norms")}


def graph_norms(onnx, x, y, threads):
    """infoutil's gradient graph on ONNX Runtime (the graph the Rust backend runs), for the
    accuracy column."""
    sess = verify.ort_session(str(onnx.with_suffix(".grad.onnx")), threads)
    names = [i.name for i in sess.get_inputs()]
    out = sess.run(["norms"], {names[0]: x.numpy(), names[1]: y.numpy().astype(np.int64)})[0]
    return np.asarray(out, dtype=np.float64).reshape(-1)


def rel(got, ref):
    return float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), verify.TINY_FLOOR)))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True, help="folder for the exported teacher")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--reps", type=int, default=5, help="torch.func repetitions before and after")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--backends", default="ort,tract", help="infoutil backends to bench")
    ap.add_argument("--target", type=Path, default=Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")))
    ap.add_argument("--out", type=Path, help="markdown table")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)

    model = network(args.classes)
    onnx = export(model, args.work, args.size, args.classes, args.threads)
    x, y = images(args.batch, args.size)
    fn = torch_func_norms(model)
    tf, before = time_torch(fn, x, y, args.reps)
    rust = rust_bench(onnx, args.batch, args.backends, args.target)
    _, after = time_torch(fn, x, y, args.reps)

    print("[stage2] float64 reference on the batch", flush=True)
    ref = np.sqrt(verify.reference_grad_sqnorms(model, x, y, chunk=4)[0].sum(1))
    ours = graph_norms(onnx, x, y, args.threads)
    med = statistics.median(before + after)
    rows = [f"| torch.func `vmap(grad)`, float32 | {med:.2f} | {args.batch / med:.2f} | 1.00× | "
            f"{rel(tf, ref):.1e} |"]
    for b in args.backends.split(","):
        s = rust[("grad_norms", b)]
        err = f"{rel(ours, ref):.1e}" if b == "ort" else "(= ORT within 1e-4, tests)"
        rows.append(f"| infoutil gradient graph, {b} | {s:.2f} | {args.batch / s:.2f} | "
                    f"{med / s:.2f}× | {err} |")
    raw = "; ".join(f"{b} {args.batch / rust[('logits', b)]:.1f} images/s" for b in args.backends.split(","))
    text = "\n".join([
        f"ResNet-18 at {args.size} px, {args.classes} classes, batch {args.batch}, {args.threads} threads, "
        f"torch {torch.__version__}. torch.func halves (median s): before {statistics.median(before):.2f}, "
        f"after {statistics.median(after):.2f}. Raw inference (logits) on the same batch: {raw}.",
        "",
        "| per-sample gradient norms | s per batch (median) | norms/s | vs torch.func | max rel err vs float64 |",
        "|---|---:|---:|---:|---:|",
        *rows,
    ])
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
