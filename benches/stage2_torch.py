#!/usr/bin/env python
"""Stage 2 (per-sample gradient norms): infoutil against PyTorch's per-sample-norm tools and against
what a forward and a backward pass cost, side by side in one run.

For each network and image size, on the same images, the same batch and the same threads:

  raw        `infoutil teacher eval --no-grad-norms` (logits only, ONNX Runtime CPU): the forward
             pass; raw / 3 is the forward + backward bound (a backward costs about two forwards:
             the input gradients and the weight gradients; per-sample weight-gradient NORMS need
             no more arithmetic than the weight gradient itself)
  infoutil   `infoutil teacher eval` (logits AND per-sample gradient norms, the whole command's
             timed part: reading, the forward graph for the logits, the gradient graph; its first
             batch pays ONNX Runtime's first-run allocations)
  ort forward, ort graph   the forward graph (logits) and the gradient graph (norms) infoutil
             runs, on ONNX Runtime in this process, warm like the PyTorch tools: the like-for-like
             comparison with them (they, too, return norms from one forward and one backward)
  torch forward, torch step   PyTorch's forward, and an ordinary training step (forward and
             `loss.backward()`, gradients summed over the batch, no per-sample work): the step's
             fraction of torch forward / 3 is what a framework's fused backward reaches of the
             bound with nothing per-sample in it
  torch.func `vmap(grad(cross_entropy))` in float32 over the batch, norms of the per-sample grads
  backpack   BackPACK's BatchL2Grad (`extend(model, use_converter=True)`, loss reduction sum)
  opacus     Opacus's GradSampleModule (loss_reduction sum), norms of `grad_sample`: only on
             networks without BatchNorm (Opacus refuses it), hence resnet18_gn, ResNet-18 with
             GroupNorm (benches/stage2_nets.py)

Repetitions are interleaved (rep 1 of every tool, then rep 2, ...) and each tool's median is
reported, so that the drift of a shared machine hits every tool alike. Every tool's norms on the
first batch are checked against float64 `vmap(grad)` on a float64 copy (infoutil_export.verify's
reference): max relative error. A tool that cannot run a network is reported with its error.

Teachers are exported once into --work by export/export_module.py (verified there against float64
too), with inputs in [0, 1] (--pixels unit); images are seeded random uint8 pixels written to an
HDF5 file as infoutil reads it, labels seeded random.

  PYTHONPATH=/work/venv-stage2 .venv-torch/bin/python benches/stage2_torch.py \
      --work /work/logs/stage2-models --infoutil target/release/infoutil --reps 5 --out out/stage2.md
  # .venv-torch: export/requirements.txt; /work/venv-stage2: pip install --target ... --no-deps
  # backpack-for-pytorch opacus einops unfoldNd scipy opt_einsum; ORT_DYLIB_PATH set
  # (source scripts/setup.sh)
"""
import argparse
import copy
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

# Threads that wait sleep instead of spinning (PyTorch's OpenMP here, ONNX Runtime's pool below):
# on a shared machine a spinning pool of 2 is stalled whenever one of its threads is descheduled
# (BackPACK at 32 px: 23.9 s a batch spinning against 1.4 s passive, load ~17 on 2 cores).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "export"))
sys.path.insert(0, str(ROOT / "benches"))
from infoutil_export import verify  # noqa: E402  (the export's float64 reference)

K = 10
NETS = {   # name -> (constructor for export_module.py, its kwargs)
    "resnet18": ("torchvision.models:resnet18", {"num_classes": K}),
    "mobilenet_v2": ("torchvision.models:mobilenet_v2", {"num_classes": K}),
    "resnet18_gn": ("stage2_nets:resnet18_gn", {"num_classes": K}),
}
BATCH = {32: 64, 224: 16}
TOOLS = ["raw", "infoutil", "ort forward", "ort graph", "ort graph (baseline)", "torch forward",
         "torch step", "torch.func", "backpack", "opacus"]
# tools that time a pass without per-sample norms: yardsticks, not compared with float64
YARDSTICKS = {"raw", "ort forward", "torch forward", "torch step"}
FORWARDS = {"raw", "ort forward", "torch forward"}
SLOW = {"torch.func"}


def network(name):
    import importlib
    mod, fn = NETS[name][0].split(":")
    torch.manual_seed(0)
    return getattr(importlib.import_module(mod), fn)(**NETS[name][1]).eval()


def export(model, name, work, size, threads):
    """NAME-SIZE.onnx + .grad.onnx in `work`, exported once."""
    onnx = work / f"{name}-{size}.onnx"
    if onnx.exists():
        return onnx
    weights = work / f"{name}.pt"
    torch.save(model.state_dict(), weights)
    cmd = [sys.executable, str(ROOT / "export/export_module.py"), "--path", str(ROOT / "benches"),
           "--module", NETS[name][0], "--kwargs", json.dumps(NETS[name][1]),
           "--weights", str(weights), "--input-shape", f"3,{size},{size}", "--pixels", "unit",
           "--class-names", ",".join(f"c{i}" for i in range(K)),
           "--n", "4", "--threads", str(threads), "--out", str(onnx)]
    print("[stage2] exporting:", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True)
    return onnx


def dataset(work, size, n, seed=0):
    """n seeded random uint8 images [n, 3, size, size] and labels, as an HDF5 file infoutil reads;
    returns (path, x float32 in [0, 1], y)."""
    import h5py
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8)
    labels = rng.integers(0, K, n).astype(np.int64)
    path = work / f"images-{size}-{n}.h5"
    if not path.exists():
        with h5py.File(path, "w") as f:
            f["images"] = pixels
            f["labels"] = labels
            f.attrs["class_names"] = json.dumps([f"c{i}" for i in range(K)])
    x = torch.from_numpy(pixels.astype(np.float32) / np.float32(255.0))
    return path, x, torch.from_numpy(labels)


# ---------------------------------------------------------------------------------------------
# the PyTorch tools: each builds fn(x, y) -> per-sample squared gradient norms [n, P] of one
# batch, one column per parameter (named_parameters order); the norms are the rows' sums' roots


def torch_func(model):
    from torch.func import functional_call, grad, vmap
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss(p, xi, yi):
        return F.cross_entropy(functional_call(model, {**p, **buffers}, (xi[None],)), yi[None])

    per_sample = vmap(grad(loss), in_dims=(None, 0, 0))

    def norms(x, y):
        with torch.no_grad():
            g = per_sample(params, x, y)
        return torch.stack([g[k].reshape(len(x), -1).pow(2).sum(1) for k in params], 1)
    return norms


def backpack_l2(model):
    from backpack import backpack, extend
    from backpack.extensions import BatchL2Grad
    m = extend(copy.deepcopy(model).eval(), use_converter=True)
    loss_fn = extend(torch.nn.CrossEntropyLoss(reduction="sum"))
    params = [p for p in m.parameters() if p.requires_grad]

    def norms(x, y):
        m.zero_grad()
        loss = loss_fn(m(x), y)
        with backpack(BatchL2Grad()):
            loss.backward()
        missing = [type(mod).__name__ for mod in m.modules() if any(
            not hasattr(p, "batch_l2") for p in mod.parameters(recurse=False))]
        if missing:
            raise NotImplementedError(f"BatchL2Grad has no rule for {sorted(set(missing))}")
        return torch.stack([p.batch_l2 for p in params], 1).detach()
    return norms


def opacus_gsm(model):
    from opacus import GradSampleModule
    # Opacus's hooks only record in training mode; the networks it accepts here (GroupNorm, no
    # dropout) compute the same function in either mode
    m = copy.deepcopy(model).train()
    for mod in m.modules():   # its backward hooks refuse in-place ReLUs; same function
        if getattr(mod, "inplace", False):
            mod.inplace = False
    m = GradSampleModule(m, loss_reduction="sum")

    def norms(x, y):
        m.zero_grad(set_to_none=True)
        F.cross_entropy(m(x), y, reduction="sum").backward()
        sq = [p.grad_sample.reshape(len(x), -1).pow(2).sum(1) for p in m.parameters()]
        return torch.stack(sq, 1).detach()
    return norms


def ort_session(path, threads):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def ort_forward(onnx, threads):
    """The forward graph on ONNX Runtime in this process (warm, like the PyTorch tools): logits."""
    sess = ort_session(onnx, threads)
    name = sess.get_inputs()[0].name
    return lambda x, y: torch.from_numpy(sess.run(None, {name: x.numpy()})[0])


def ort_graph(onnx, threads, grad=None):
    """The gradient graph infoutil runs (NAME.grad.onnx, or `grad`) on ONNX Runtime in this
    process: its squared norms per parameter (the graph computes them on the way to the norms)."""
    sess = ort_session(grad or onnx.with_suffix(".grad.onnx"), threads)
    xn, yn = (i.name for i in sess.get_inputs()[:2])
    return lambda x, y: torch.from_numpy(sess.run(["sqnorms"], {xn: x.numpy(), yn: y.numpy()})[0])


def torch_forward(model):
    """PyTorch's own forward (eval, no autograd): logits."""
    def logits(x, y):
        with torch.no_grad():
            return model(x)
    return logits


def torch_step(model):
    """An ordinary training step's arithmetic in PyTorch: forward and `loss.backward()` with every
    parameter's gradient summed over the batch (eval mode, as the other tools): what the per-sample
    tools cannot undercut, since a per-sample norm needs at least this backward."""
    m = copy.deepcopy(model).eval()
    for p in m.parameters():
        p.requires_grad_(True)

    def step(x, y):
        m.zero_grad(set_to_none=True)
        logits = m(x)
        F.cross_entropy(logits, y, reduction="sum").backward()
        return logits.detach()
    return step


BUILDERS = {"torch.func": torch_func, "backpack": backpack_l2, "opacus": opacus_gsm,
            "torch forward": torch_forward, "torch step": torch_step}
ORT_BUILDERS = {"ort forward": ort_forward, "ort graph": ort_graph}


def run_torch(fn, x, y, batch):
    """(squared norms [n, P] (logits [n, K] for the forward) of all images, seconds for all)."""
    t0 = time.perf_counter()
    out = [fn(x[i:i + batch], y[i:i + batch]) for i in range(0, len(x), batch)]
    return torch.cat(out).double().numpy(), time.perf_counter() - t0


# ---------------------------------------------------------------------------------------------
# infoutil


def run_infoutil(exe, onnx, data, batch, threads, grads, out_h5):
    cmd = [str(exe), "teacher", "eval", "--teacher", str(onnx), "--data", str(data),
           "--backend", "ort", "--batch-size", str(batch)]
    cmd += ["--out", str(out_h5)] if grads else ["--no-grad-norms"]
    if out_h5.exists():
        out_h5.unlink()
    env = {**os.environ, "RAYON_NUM_THREADS": str(threads)}
    res = subprocess.run(cmd, check=True, env=env, capture_output=True, text=True)
    m = re.search(r"on (\d+) images of .* \(([\d.]+) s, (\d+) images/s", res.stdout)
    if not m:
        raise RuntimeError(f"unexpected output of {' '.join(cmd)}:\n{res.stdout}\n{res.stderr}")
    n, secs, rate = int(m.group(1)), float(m.group(2)), float(m.group(3))
    # the line rounds seconds to 0.1 and images/s to 1: take whichever is the finer here
    secs = secs if 0.05 / max(secs, 1e-9) < 0.5 / max(rate, 1e-9) else n / rate
    return secs, " ".join(cmd)


def h5_norms(path):
    import h5py
    with h5py.File(path, "r") as f:
        order = np.argsort(f["source_index"][:])
        return f["grad_norms"][:][order].astype(np.float64)


# ---------------------------------------------------------------------------------------------


def rel(got, ref):
    return float(np.max(np.abs(got - ref) / np.maximum(np.abs(ref), verify.TINY_FLOOR)))


def errors_of(got, ref_sq):
    """(max relative error of the norms, of every parameter's squared norm against its own
    reference value): the second checks the layers whose share of the norm is tiny (a random
    MobileNetV2's early layers: 1e-18 of it), which the first cannot see."""
    if got.ndim == 1:   # teacher eval's norms only
        return rel(got, np.sqrt(ref_sq.sum(1))), None
    return rel(np.sqrt(got.sum(1)), np.sqrt(ref_sq.sum(1))), rel(got, ref_sq)


def bench(name, size, args):
    batch = args.batch or BATCH[size]
    n = batch * args.batches
    model = network(name)
    onnx = export(model, name, args.work, size, args.threads)
    data, x, y = dataset(args.work, size, n)
    out_h5 = args.work / f"eval-{name}-{size}.h5"
    fns, errors, secs, norms, cmds = {}, {}, {t: [] for t in args.tools}, {}, {}
    baseline = args.baseline / f"{name}-{size}.grad.onnx" if args.baseline else None
    tools = [t for t in args.tools if t != "ort graph (baseline)" or (baseline and baseline.exists())]
    if "ort graph (baseline)" in tools:
        cmds["ort graph (baseline)"] = str(baseline)
    for t in tools:
        if t == "ort graph (baseline)":
            fns[t] = ort_graph(onnx, args.threads, baseline)
            fns[t](x[:batch], y[:batch])
        elif t in BUILDERS or t in ORT_BUILDERS:
            try:
                fns[t] = BUILDERS[t](model) if t in BUILDERS else ORT_BUILDERS[t](onnx, args.threads)
                fns[t](x[:batch], y[:batch])   # a first call: refusals show here, and setup is done
            except Exception as e:   # a tool that cannot run this network: say why
                errors[t] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
                print(f"[stage2] {name} {size}: {t} cannot run: {errors[t]}", flush=True)
    for rep in range(args.reps):
        for t in tools:
            if t in errors:
                continue
            if t in ("raw", "infoutil"):
                s, cmds[t] = run_infoutil(args.infoutil, onnx, data, batch, args.threads,
                                          t == "infoutil", out_h5)
                if t == "infoutil":
                    norms[t] = h5_norms(out_h5)
            else:   # torch.func is timed on fewer batches (--slow-batches): it is ~50x slower
                m = batch * args.slow_batches if t in SLOW else n
                norms[t], s = run_torch(fns[t], x[:m], y[:m], batch)
                s *= n / m
            secs[t].append(s)
            print(f"[stage2] {name} {size} rep {rep}: {t} {n / s:.2f} images/s", flush=True)
    print(f"[stage2] {name} {size}: float64 reference on the first batch", flush=True)
    ref = verify.reference_grad_sqnorms(model, x[:batch], y[:batch], chunk=4)[0]
    rate = {t: n / statistics.median(v) for t, v in secs.items() if v}
    err = {t: errors_of(v[:batch], ref) for t, v in norms.items() if t not in YARDSTICKS}
    return dict(name=name, size=size, batch=batch, n=n, rate=rate, err=err, errors=errors,
                cmds=cmds, secs=secs)


def table(results):
    """images/s (median), as a ratio to infoutil's gradient graph (warm, in this process, as the
    PyTorch tools are timed) and as a fraction of the forward + backward bound, forward / 3, with
    the forward measured both ways (teacher eval --no-grad-norms, and the forward graph warm)."""
    rows = ["| network | px | batch | tool | images/s (median) | vs infoutil graph | of raw / 3 "
            "(teacher eval) | of forward / 3 (warm) | max rel err vs float64 (norms / each "
            "parameter's) |",
            "|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in results:
        rate = r["rate"]
        raw, fwd, ours = rate.get("raw"), rate.get("ort forward"), rate.get("ort graph")
        for t in TOOLS:
            head = f"| {r['name']} | {r['size']} | {r['batch']} | {t} |"
            if t in r["errors"]:
                rows.append(f"{head} cannot run: {r['errors'][t][:110]} | | | | |")
                continue
            if t not in rate:
                continue
            bound = t not in FORWARDS
            # PyTorch's training step against PyTorch's own forward: what a framework's
            # backward reaches of the forward / 3 bound without any per-sample work
            own = rate.get("torch forward") if t == "torch step" else fwd
            vs = f"{rate[t] / ours:.2f}×" if ours and bound else ""
            f1 = f"{rate[t] / (raw / 3):.2f}" if raw and bound and t != "torch step" else ""
            f2 = f"{rate[t] / (own / 3):.2f}" if own and bound else ""
            e = "" if t not in r["err"] else " / ".join(
                f"{v:.1e}" for v in r["err"][t] if v is not None)
            rows.append(f"{head} {rate[t]:.1f} | {vs} | {f1} | {f2} | {e} |")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True, help="folder for teachers and images")
    ap.add_argument("--nets", default="resnet18,mobilenet_v2,resnet18_gn")
    ap.add_argument("--sizes", default="32,224")
    ap.add_argument("--batch", type=int, help="images per call [64 at 32 px, 16 at 224 px]")
    ap.add_argument("--batches", type=int, default=4, help="batches timed per repetition")
    ap.add_argument("--slow-batches", type=int, default=1,
                    help="batches torch.func is timed on per repetition (its rate is per batch)")
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tools", default=",".join(TOOLS))
    ap.add_argument("--infoutil", type=Path, default=ROOT / "target/release/infoutil")
    ap.add_argument("--out", type=Path, help="markdown table")
    ap.add_argument("--baseline", type=Path,
                    help="folder of other NAME-SIZE.grad.onnx files (e.g. an earlier exporter's) "
                         "timed beside the others as 'ort graph (baseline)'")
    args = ap.parse_args()
    args.tools = args.tools.split(",")
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        for name in args.nets.split(","):
            results.append(bench(name, size, args))
    load = os.getloadavg()
    text = "\n".join([
        f"torch {torch.__version__}, {args.threads} threads, {args.reps} interleaved repetitions of "
        f"{args.batches} batches ({args.slow_batches} for torch.func); load average at the end {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}",
        "", table(results), "",
        *[f"    {r['name']} {r['size']}: {t}: {c}" for r in results for t, c in r["cmds"].items()],
        "", "seconds per repetition: " + json.dumps(
            {f"{r['name']}-{r['size']}": {t: [round(s, 3) for s in v] for t, v in r["secs"].items()}
             for r in results})])
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
