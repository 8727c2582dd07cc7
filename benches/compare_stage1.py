#!/usr/bin/env python
"""Stage 1 (Shapley attribution) of infoutil against Captum's KernelShap and shap's KernelExplainer.

Same teacher, same real Fashion-MNIST test images, same game: 16 players = the 4x4 grid of 7x7
patches; v(S) = the teacher's logit of the image's label on the image whose patches outside S are
0 in the normalised input space (Captum's default baseline).

  1. Ground truth: exact Shapley values (2^16 coalitions) from `infoutil attribute --estimator
     exact`, cached; two images are recomputed here by a pure onnxruntime enumeration.
  2. Accuracy at equal budgets (model evaluations per image): relative L2 error, Spearman rank
     correlation, arg-max agreement of the 2x2-average-pooled (stride 1) map.
  3. Speed, end to end, interleaved repetitions: Captum (PyTorch CPU), shap (onnxruntime),
     the infoutil CLI (--backend ort and --backend tract).

Run from the repository root, e.g.
  python benches/compare_stage1.py --teacher models/fmnist-convnet3.onnx --n 20 \
      --budgets 64,256,1024,2048 --out docs/stage1-tables.md
"""
import argparse
import hashlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))
import infoutil_io  # noqa: E402  (examples/infoutil_io.py: the shared idx reader and hash)

G = 4            # patches per side
M = G * G        # players
P = 7            # patch side in pixels
SIDE = G * P     # 28
INFOUTIL_ESTIMATORS = ["leverage", "kernel", "kernel-enum", "permutation"]


# ----------------------------------------------------------------------------------------- data

def load_images(data, n, teacher):
    """The first n/10 images of each class in file order, sorted by index (the CLI's
    `--per-class`), normalised as the teacher's metadata declares."""
    images = infoutil_io.read_idx(data, 3)
    labels = infoutil_io.read_idx(data.replace("images-idx3", "labels-idx1"), 1)
    k = max(1, n // 10)
    idx = sorted(int(i) for c in range(10) for i in np.where(labels == c)[0][:k])
    x = infoutil_io.to_teacher_input(images[idx], teacher)
    return np.array(idx), labels[idx].astype(np.int64), x


def upsample(z):
    """[k, 16] coalition indicators (player p = patch (p // 4, p % 4)) -> [k, 1, 28, 28] masks."""
    z = np.asarray(z, np.float32).reshape(-1, G, G)
    return np.kron(z, np.ones((P, P), np.float32))[:, None]


def masks_of(bits):
    """Bitmasks (bit p = player p) -> [k, 16] indicators."""
    bits = np.asarray(bits, np.int64)
    return ((bits[:, None] >> np.arange(M)) & 1).astype(np.float32)


# --------------------------------------------------------------------------------- the teacher

class OrtTeacher:
    def __init__(self, path, threads):
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        self.sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
        self.name = self.sess.get_inputs()[0].name
        self.calls = 0   # rows evaluated

    def logits(self, x, chunk=1024):
        x = np.ascontiguousarray(x, np.float32)
        self.calls += len(x)
        return np.concatenate([self.sess.run(None, {self.name: x[i:i + chunk]})[0]
                               for i in range(0, len(x), chunk)])


def torch_teacher(pt_path, threads):
    import torch
    sys.path.insert(0, str(Path("export").resolve()))
    from infoutil_export.nets import convnet3
    torch.set_num_threads(threads)
    net = convnet3()
    net.load_state_dict(torch.load(pt_path, map_location="cpu"))
    return net.eval()


sha256 = infoutil_io.sha256_file


# ------------------------------------------------------------------------- exact Shapley values

def shapley_weights():
    return np.array([math.factorial(s) * math.factorial(M - s - 1) / math.factorial(M)
                     for s in range(M)])


def exact_python(teacher, x, label, chunk=4096):
    """All 2^16 coalition values through onnxruntime, then the Shapley formula."""
    n = 1 << M
    v = np.empty(n)
    for start in range(0, n, chunk):
        bits = np.arange(start, min(n, start + chunk))
        v[bits] = teacher.logits(x[None] * upsample(masks_of(bits)))[:, label]
    all_bits = np.arange(n)
    size = np.array([bin(b).count("1") for b in range(n)])
    w = shapley_weights()
    phi = np.empty(M)
    for p in range(M):
        without = all_bits[(all_bits >> p) & 1 == 0]
        phi[p] = np.sum(w[size[without]] * (v[without | (1 << p)] - v[without]))
    return phi.reshape(G, G)


# ------------------------------------------------------------------------------- the estimators

def run_infoutil(args, teacher_path, idx, estimator, budget, seed, backend, out):
    cmd = [args.infoutil, "attribute", "--teacher", teacher_path, "--data", args.data,
           "--indices", ",".join(map(str, idx)), "--grid", str(G), "--budget", str(budget),
           "--estimator", estimator, "--baseline", "zero", "--value", "logit",
           "--seed", str(seed), "--backend", backend, "--out", out]
    env = dict(os.environ)
    if args.ort_lib:
        env["ORT_DYLIB_PATH"] = args.ort_lib
    t = time.perf_counter()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    return cmd, wall


def read_maps(path, idx):
    with h5py.File(path, "r") as f:
        maps = f["/attribution/shapley"][...].astype(np.float64)
        src = f["/attribution/source_index"][...]
    order = {int(s): k for k, s in enumerate(src)}
    return maps[[order[int(i)] for i in idx]]


def infoutil_maps(args, teacher_path, idx, estimator, budget, seed, backend="ort"):
    with tempfile.TemporaryDirectory() as d:
        out = os.path.join(d, "a.h5")
        cmd, wall = run_infoutil(args, teacher_path, idx, estimator, budget, seed, backend, out)
        return read_maps(out, idx), wall, cmd


def captum_maps(forward, x, labels, budget, seed, ppe):
    """Captum KernelShap over the 4x4 patch grid; `forward` maps a torch batch to logits."""
    import torch
    from captum.attr import KernelShap
    fmask = torch.from_numpy(
        (np.arange(SIDE)[:, None] // P * G + np.arange(SIDE)[None, :] // P)[None, None])
    ks = KernelShap(forward)
    out = []
    for i in range(len(x)):
        torch.manual_seed(seed * 1_000_003 + i)
        a = ks.attribute(torch.from_numpy(x[i:i + 1]), baselines=0.0, target=int(labels[i]),
                         feature_mask=fmask, n_samples=budget, perturbations_per_eval=ppe)
        out.append(a[0, 0, ::P, ::P].double().numpy())
    return np.array(out)


def shap_maps(teacher, x, labels, budget, seed):
    """shap KernelExplainer over 16 binary features; background = the all-absent row."""
    import shap
    out = []
    for i in range(len(x)):
        img, c = x[i], int(labels[i])
        f = lambda z, img=img, c=c: teacher.logits(img[None] * upsample(z))[:, c]
        np.random.seed(seed * 1_000_003 + i)
        ex = shap.KernelExplainer(f, np.zeros((1, M)))
        sv = ex.shap_values(np.ones((1, M)), nsamples=budget, l1_reg=False, silent=True)
        out.append(np.asarray(sv, np.float64).reshape(G, G))
    return np.array(out)


def ort_forward(teacher):
    import torch

    def forward(t):
        return torch.from_numpy(teacher.logits(t.detach().numpy()))
    return forward


def torch_forward(net, counter):
    import torch

    def forward(t):
        counter[0] += len(t)
        with torch.no_grad():
            return net(t)
    return forward


# ---------------------------------------------------------------------------------- the metrics

def pooled(maps):
    """2x2 average pooling, stride 1: [n, 4, 4] -> [n, 3, 3]."""
    return (maps[:, :-1, :-1] + maps[:, 1:, :-1] + maps[:, :-1, 1:] + maps[:, 1:, 1:]) / 4


def near_ties(exact, frac=0.05):
    p = pooled(exact).reshape(len(exact), -1)
    s = np.sort(p, axis=1)
    return (s[:, -1] - s[:, -2]) < frac * (s[:, -1] - s[:, 0])


def metrics(est, exact):
    from scipy.stats import spearmanr
    d = (est - exact).reshape(len(exact), -1)
    e = exact.reshape(len(exact), -1)
    rel = np.linalg.norm(d, axis=1) / np.linalg.norm(e, axis=1)
    rho = np.array([spearmanr(a.ravel(), b.ravel())[0] for a, b in zip(est, exact)])
    hit = (pooled(est).reshape(len(est), -1).argmax(1)
           == pooled(exact).reshape(len(exact), -1).argmax(1))
    return {"rel": rel.tolist(), "rho": rho.tolist(), "hit": hit.tolist()}


def summarize(runs, ties):
    """runs: list of per-seed metric dicts (same images) -> pooled summary over images x seeds."""
    rel = np.concatenate([r["rel"] for r in runs])
    rho = np.concatenate([r["rho"] for r in runs])
    hit = np.concatenate([r["hit"] for r in runs])
    clear = np.concatenate([~ties for _ in runs])
    seed_medians = [float(np.median(r["rel"])) for r in runs]
    return {"median": float(np.median(rel)), "mean": float(np.mean(rel)),
            "seed_medians": seed_medians, "rho": float(np.median(rho)),
            "hit": float(hit.mean()), "hit_clear": float(hit[clear].mean()) if clear.any() else
            float("nan")}


# ------------------------------------------------------------------------------------ the parts

def part_exact(args, teacher_path, teacher, idx, labels, x, log):
    key = hashlib.sha256((sha256(teacher_path) + ",".join(map(str, idx))).encode()).hexdigest()
    cache = Path(args.cache) / f"exact-{key[:16]}.h5"
    if cache.exists():
        log(f"exact: cached {cache}")
        exact = read_maps(str(cache), idx)
        seconds = json.loads(Path(str(cache) + ".json").read_text())["seconds"]
    else:
        cache.parent.mkdir(parents=True, exist_ok=True)
        log(f"exact: infoutil --estimator exact on {len(idx)} images (2^16 evaluations each)...")
        tmp = str(cache) + ".part"
        cmd, seconds = run_infoutil(args, teacher_path, idx, "exact", 256, 0, "ort", tmp)
        os.replace(tmp, cache)
        Path(str(cache) + ".json").write_text(json.dumps({"seconds": seconds, "cmd": cmd}))
        exact = read_maps(str(cache), idx)
    log(f"exact: {seconds:.0f} s for {len(idx)} images ({seconds / len(idx):.1f} s/image)")
    check = []
    ck = Path(args.cache) / f"exact-py-{key[:16]}.json"
    done = json.loads(ck.read_text()) if ck.exists() else {}
    for i in range(min(args.check, len(idx))):
        k = str(int(idx[i]))
        if k not in done:
            log(f"exact cross-check: pure onnxruntime enumeration of image {k}...")
            done[k] = exact_python(teacher, x[i], int(labels[i])).tolist()
            ck.write_text(json.dumps(done))
        py = np.array(done[k])
        check.append({"index": int(idx[i]), "max_abs_diff": float(np.abs(py - exact[i]).max()),
                      "max_abs_phi": float(np.abs(py).max()),
                      "efficiency_gap": float(abs(exact[i].sum() - py.sum()))})
    return exact, seconds, check


def part_accuracy(args, teacher_path, teacher, idx, labels, x, exact, log):
    ties = near_ties(exact)
    res = {"captum": {}, "shap": {}, **{e: {} for e in INFOUTIL_ESTIMATORS}}
    evals = {"captum": {}, "shap": {}}
    cmds = []
    forward = ort_forward(teacher)
    for b in args.budgets:
        for tool in ["captum", "shap"]:
            runs = []
            for s in range(args.ref_seeds):
                teacher.calls = 0
                t = time.perf_counter()
                if tool == "captum":
                    maps = captum_maps(forward, x, labels, b, s, args.ppe)
                else:
                    maps = shap_maps(teacher, x, labels, b, s)
                runs.append(metrics(maps, exact))
                evals[tool][b] = teacher.calls / len(x)
                log(f"  {tool:12s} budget {b:5d} seed {s}: median rel err "
                    f"{np.median(runs[-1]['rel']):.4f}, {teacher.calls / len(x):.1f} evals/image,"
                    f" {time.perf_counter() - t:.1f} s")
            res[tool][b] = summarize(runs, ties)
        for est in INFOUTIL_ESTIMATORS:
            runs = []
            for s in range(args.seeds):
                maps, wall, cmd = infoutil_maps(args, teacher_path, idx, est, b, s)
                cmds.append(cmd)
                runs.append(metrics(maps, exact))
                log(f"  {est:12s} budget {b:5d} seed {s}: median rel err "
                    f"{np.median(runs[-1]['rel']):.4f}, {wall:.1f} s")
            res[est][b] = summarize(runs, ties)
    extra = part_extra(args, teacher_path, idx, exact, ties, log)
    return {"res": res, "evals": evals, "ties": int(ties.sum()), "extra": extra}


def part_extra(args, teacher_path, idx, exact, ties, log):
    """infoutil's --equal-estimator at small extra budgets, for "the budget that matches
    Captum's error"."""
    extra = {}
    for b in args.extra_budgets:
        runs = []
        for s in range(args.seeds):
            maps, wall, cmd = infoutil_maps(args, teacher_path, idx, args.equal_estimator, b, s)
            runs.append(metrics(maps, exact))
        extra[b] = summarize(runs, ties)
        log(f"  {args.equal_estimator:12s} budget {b:5d}: median rel err {extra[b]['median']:.4f}")
    return extra


def part_speed(args, teacher_path, idx, labels, x, equal_budgets, log):
    """Interleaved repetitions; seconds per image, end to end."""
    n = min(args.time_n, len(idx))
    idx, labels, x = idx[:n], labels[:n], x[:n]
    net = torch_teacher(args.pt, args.threads)
    ort_t = OrtTeacher(teacher_path, args.threads)
    counter = [0]
    budgets = sorted(set(args.time_budgets) | {b for b in equal_budgets if b})
    rows = {}

    def rec(name, b, secs):
        rows.setdefault((name, b), []).append(secs / n)

    for rep in range(args.reps):
        for b in budgets:
            main = b in args.time_budgets
            if main:
                t = time.perf_counter()
                captum_maps(torch_forward(net, counter), x, labels, b, rep, args.ppe)
                rec("Captum KernelShap (PyTorch)", b, time.perf_counter() - t)
                t = time.perf_counter()
                captum_maps(ort_forward(ort_t), x, labels, b, rep, args.ppe)
                rec("Captum KernelShap (onnxruntime forward)", b, time.perf_counter() - t)
                t = time.perf_counter()
                shap_maps(ort_t, x, labels, b, rep)
                rec("shap KernelExplainer (onnxruntime)", b, time.perf_counter() - t)
            for backend in (["ort", "tract"] if main else ["ort"]):
                _, wall, _ = infoutil_maps(args, teacher_path, idx, args.equal_estimator, b, rep,
                                           backend)
                rec(f"infoutil {args.equal_estimator} (CLI, --backend {backend})", b, wall)
        log(f"  speed repetition {rep + 1}/{args.reps} done")
    # start-up: the CLI on one image at the smallest budget it accepts (3 per player)
    startup = {}
    for backend in ["ort", "tract"]:
        ts = []
        for rep in range(args.reps):
            ts.append(infoutil_maps(args, teacher_path, idx[:1], args.equal_estimator, 48, rep,
                                    backend)[1])
        startup[backend] = statistics.median(ts)
    return {"n": n, "per_image": {f"{k[0]}|{k[1]}": v for k, v in rows.items()},
            "startup": startup, "budgets": budgets}


# --------------------------------------------------------------------------------------- output

def versions():
    import captum
    import onnxruntime
    import scipy
    import shap
    import torch
    try:
        iu = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    except OSError:
        iu = "?"
    return {"captum": captum.__version__, "shap": shap.__version__, "torch": torch.__version__,
            "onnxruntime": onnxruntime.__version__, "numpy": np.__version__,
            "scipy": scipy.__version__, "h5py": h5py.__version__,
            "python": platform.python_version(), "infoutil commit": iu,
            "cpus": os.cpu_count()}


def render(r):
    L = []
    a = r["accuracy"]
    budgets = r["args"]["budgets"]
    tools = [("captum", "Captum KernelShap"), ("shap", "shap KernelExplainer")] + \
        [(e, f"infoutil {e}") for e in INFOUTIL_ESTIMATORS]
    L.append(f"Teacher `{r['teacher']}` (sha256 {r['teacher_sha256'][:12]}), N = {r['n']} test "
             f"images ({r['n'] // 10} per class, indices {r['indices'][0]}..{r['indices'][-1]}), "
             f"{r['args']['seeds']} seed(s) per budget for infoutil, {r['args'].get('ref_seeds', r['args']['seeds'])} "
             "for Captum and shap.")
    L.append("")
    L.append("**Median relative L2 error** ‖φ − φ_exact‖ / ‖φ_exact‖ (mean in brackets), "
             "over images × seeds:")
    L.append("")
    L.append("| budget | " + " | ".join(n for _, n in tools) + " |")
    L.append("|---:|" + "---:|" * len(tools))
    for b in budgets:
        cells = []
        best = min(a["res"][t][b]["median"] for t, _ in tools)
        for t, _ in tools:
            s = a["res"][t][b]
            c = f"{s['median']:.3f} ({s['mean']:.3f})"
            cells.append(f"**{c}**" if s["median"] == best else c)
        L.append(f"| {b} | " + " | ".join(cells) + " |")
    L.append("")
    if r["args"]["seeds"] > 1:
        L.append("Per-seed medians (spread of the sample; infoutil uses one coalition plan per "
                 "seed shared by all images, Captum and shap draw afresh for every image):")
        L.append("")
        L.append("| budget | " + " | ".join(n for _, n in tools) + " |")
        L.append("|---:|" + "---:|" * len(tools))
        for b in budgets:
            L.append(f"| {b} | " + " | ".join(
                " / ".join(f"{m:.3f}" for m in a["res"][t][b]["seed_medians"]) for t, _ in tools)
                + " |")
        L.append("")
    L.append("**Median Spearman rank correlation** with the exact map (16 cells):")
    L.append("")
    L.append("| budget | " + " | ".join(n for _, n in tools) + " |")
    L.append("|---:|" + "---:|" * len(tools))
    for b in budgets:
        L.append(f"| {b} | " + " | ".join(f"{a['res'][t][b]['rho']:.3f}" for t, _ in tools)
                 + " |")
    L.append("")
    L.append(f"**Arg-max of the pooled 3×3 map agrees with the exact one** (all images / the "
             f"{r['n'] - a['ties']} images without a near-tie; {a['ties']} of {r['n']} exact "
             "pooled maps have a top-2 gap < 5 % of their range):")
    L.append("")
    L.append("| budget | " + " | ".join(n for _, n in tools) + " |")
    L.append("|---:|" + "---:|" * len(tools))
    for b in budgets:
        L.append(f"| {b} | " + " | ".join(
            f"{a['res'][t][b]['hit']:.0%} / {a['res'][t][b]['hit_clear']:.0%}" for t, _ in tools)
            + " |")
    L.append("")
    L.append("**Targets** (infoutil's best estimator at each budget: error ≤ ½ × Captum's and "
             "≤ shap's):")
    L.append("")
    L.append("| budget | best infoutil | its error | Captum | ½ Captum met | shap | ≤ shap met |"
             " leverage ≤ ½ Captum | leverage ≤ shap |")
    L.append("|---:|---|---:|---:|:-:|---:|:-:|:-:|:-:|")
    for b in budgets:
        best = min(INFOUTIL_ESTIMATORS, key=lambda e: a["res"][e][b]["median"])
        e = a["res"][best][b]["median"]
        c, s = a["res"]["captum"][b]["median"], a["res"]["shap"][b]["median"]
        lv = a["res"]["leverage"][b]["median"]
        yn = lambda ok: "yes" if ok else "**no**"
        L.append(f"| {b} | {best} | {e:.3f} | {c:.3f} | {yn(e <= c / 2)} | {s:.3f} | "
                 f"{yn(e <= s)} | {yn(lv <= c / 2)} | {yn(lv <= s)} |")
    L.append("")
    ev = a["evals"]
    L.append("Model evaluations per image actually made (counted in the model function): "
             + "; ".join(f"budget {b}: Captum {ev['captum'][b]:.0f}, shap {ev['shap'][b]:.0f}"
                         for b in budgets) + ".")
    L.append("")
    if a["extra"]:
        L.append(f"infoutil `{r['args']['equal_estimator']}` at small budgets (for speed at "
                 "equal error): " + ", ".join(f"{b}: {s['median']:.3f}"
                                              for b, s in sorted(a["extra"].items())) + ".")
        L.append("")
    ex = r["exact"]
    L.append(f"Exact ground truth: `infoutil attribute --estimator exact` took {ex['seconds']:.0f}"
             f" s for {r['n']} images ({ex['seconds'] / r['n']:.1f} s/image). Cross-check "
             "against a pure onnxruntime enumeration in this script: "
             + "; ".join(f"image {c['index']}: max |Δφ| = {c['max_abs_diff']:.2e} "
                         f"(max |φ| = {c['max_abs_phi']:.2f})" for c in ex["check"]) + ".")
    L.append("")
    sp = r.get("speed")
    if sp:
        L.append(f"**Seconds per image**, end to end, {sp['n']} images per call, median of "
                 f"{r['args']['reps']} interleaved repetitions ({r['versions']['cpus']} CPU "
                 "cores, shared):")
        L.append("")
        names = []
        for k in sp["per_image"]:
            nm = k.split("|")[0]
            if nm not in names:
                names.append(nm)
        names.sort(key=lambda nm: (nm.startswith("infoutil"), "tract" in nm, nm))
        tb = r["args"]["time_budgets"]
        L.append("| tool | " + " | ".join(f"budget {b}" for b in tb) + " |")
        L.append("|---|" + "---:|" * len(tb))
        med = {k: statistics.median(v) for k, v in sp["per_image"].items()}
        for nm in names:
            L.append(f"| {nm} | " + " | ".join(
                f"{med[f'{nm}|{b}']:.3f}" if f"{nm}|{b}" in med else "–" for b in tb) + " |")
        L.append("")
        cap = "Captum KernelShap (PyTorch)"
        sh = "shap KernelExplainer (onnxruntime)"
        iu = f"infoutil {r['args']['equal_estimator']} (CLI, --backend ort)"
        iut = f"infoutil {r['args']['equal_estimator']} (CLI, --backend tract)"
        L.append("Speed-ups of infoutil (`--backend ort` / `--backend tract`): " + "; ".join(
            f"budget {b}: ×{med[f'{cap}|{b}'] / med[f'{iu}|{b}']:.1f} / "
            f"×{med[f'{cap}|{b}'] / med[f'{iut}|{b}']:.1f} vs Captum, "
            f"×{med[f'{sh}|{b}'] / med[f'{iu}|{b}']:.1f} / ×{med[f'{sh}|{b}'] / med[f'{iut}|{b}']:.1f} "
            "vs shap" for b in tb) + ".")
        L.append("")
        L.append(f"infoutil times include process start-up, teacher and data loading: one image at "
                 f"budget 48 takes {sp['startup']['ort']:.2f} s (ort) / "
                 f"{sp['startup']['tract']:.2f} s (tract) in all. Captum and shap times exclude "
                 "the Python start-up and model loading (done once, before timing).")
        L.append("")
        eq = r.get("equal")
        if eq:
            L.append(eq)
            L.append("")
    return "\n".join(L)


def equal_error(r, captum_budget=256):
    """The smallest budget at which infoutil's chosen estimator matches Captum's error at
    `captum_budget`."""
    a = r["accuracy"]
    est = r["args"]["equal_estimator"]
    if captum_budget not in a["res"]["captum"]:
        return None, None
    target = a["res"]["captum"][captum_budget]["median"]
    curve = {**{b: s["median"] for b, s in a["extra"].items()},
             **{b: a["res"][est][b]["median"] for b in r["args"]["budgets"]}}
    ok = sorted(b for b, e in curve.items() if e <= target)
    return (ok[0] if ok else None), target


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teacher", default="models/fmnist-convnet3.onnx")
    ap.add_argument("--pt", help="PyTorch state_dict (default: the teacher with .pt)")
    ap.add_argument("--data", default="data/fashion-mnist-mini/t10k-images-idx3-ubyte.gz")
    ap.add_argument("--n", type=int, default=20, help="images (n/10 per class)")
    ap.add_argument("--budgets", default="64,256,1024,2048")
    ap.add_argument("--extra-budgets", default="32,40,48,96,128",
                    help="extra budgets for --equal-estimator only ('' for none)")
    ap.add_argument("--equal-estimator", default="leverage",
                    help="infoutil estimator timed and used for speed at equal error")
    ap.add_argument("--seeds", type=int, default=2, help="seeds per tool and budget")
    ap.add_argument("--ref-seeds", type=int, help="seeds for Captum and shap (default: --seeds; "
                    "they draw a fresh sample for every image anyway)")
    ap.add_argument("--accuracy-from", help="reuse the accuracy part of an earlier run's .json "
                    "(same teacher and images) and only time")
    ap.add_argument("--check", type=int, default=2, help="images cross-checked in Python")
    ap.add_argument("--ppe", type=int, default=256, help="Captum perturbations_per_eval")
    ap.add_argument("--time-budgets", default="256,1024")
    ap.add_argument("--time-n", type=int, default=10, help="images per timed call")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--no-speed", action="store_true")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--infoutil", default="target/release/infoutil")
    ap.add_argument("--ort-lib", default=os.environ.get("ORT_DYLIB_PATH"),
                    help="libonnxruntime for --backend ort (default: $ORT_DYLIB_PATH, else the "
                         "Python onnxruntime wheel's)")
    ap.add_argument("--cache", default="out/bench-stage1", help="exact values are cached here")
    ap.add_argument("--out", help="write the tables as markdown here (and the raw numbers as "
                                  ".json beside it)")
    args = ap.parse_args()
    args.budgets = [int(b) for b in args.budgets.split(",")]
    args.extra_budgets = [int(b) for b in args.extra_budgets.split(",") if b]
    args.time_budgets = [int(b) for b in args.time_budgets.split(",")]
    args.ref_seeds = args.ref_seeds or args.seeds
    args.pt = args.pt or str(Path(args.teacher).with_suffix(".pt"))
    if not args.ort_lib:
        import onnxruntime
        capi = Path(onnxruntime.__file__).parent / "capi"
        libs = sorted(capi.glob("libonnxruntime.so*"))
        args.ort_lib = str(libs[-1]) if libs else None
    warnings.filterwarnings("ignore")
    t0 = time.time()

    def log(msg):
        print(f"[{time.time() - t0:7.1f}s] {msg}", file=sys.stderr, flush=True)

    idx, labels, x = load_images(args.data, args.n, args.teacher)
    teacher = OrtTeacher(args.teacher, args.threads)
    r = {"teacher": args.teacher, "teacher_sha256": sha256(args.teacher), "n": len(idx),
         "indices": idx.tolist(), "versions": versions(),
         "args": {k: v for k, v in vars(args).items()}, "command": " ".join(sys.argv)}
    # the PyTorch weights and the ONNX graph agree?
    try:
        import torch
        net = torch_teacher(args.pt, args.threads)
        with torch.no_grad():
            d = float(np.abs(net(torch.from_numpy(x)).numpy() - teacher.logits(x)).max())
        r["torch_vs_onnx_max_abs_logit_diff"] = d
        log(f"PyTorch vs ONNX logits on the {len(x)} images: max |Δ| = {d:.2e}")
    except Exception as e:  # noqa: BLE001
        log(f"PyTorch weights unusable ({e}); speed part needs them")
    exact, secs, check = part_exact(args, args.teacher, teacher, idx, labels, x, log)
    r["exact"] = {"seconds": secs, "check": check}
    if args.accuracy_from:
        old = json.loads(Path(args.accuracy_from).read_text())
        assert old["teacher_sha256"] == r["teacher_sha256"] and old["indices"] == r["indices"]
        acc = old["accuracy"]
        acc["res"] = {t: {int(b): v for b, v in d.items()} for t, d in acc["res"].items()}
        acc["evals"] = {t: {int(b): v for b, v in d.items()} for t, d in acc["evals"].items()}
        acc["extra"] = {int(b): v for b, v in acc["extra"].items()}
        r["accuracy"] = acc
        for k in ["budgets", "seeds", "ref_seeds"]:
            r["args"][k] = old["args"].get(k, old["args"]["seeds"])
        r["accuracy_command"] = old["command"]
        log(f"accuracy: from {args.accuracy_from}")
        same_extra = (old["args"]["equal_estimator"] == args.equal_estimator
                      and old["args"]["extra_budgets"] == args.extra_budgets)
        if not same_extra:
            # Another estimator to time: its small-budget errors are measured here (the main
            # budgets of every estimator are in the old file already).
            args.seeds = r["args"]["seeds"]
            log(f"accuracy: {args.equal_estimator} at budgets {args.extra_budgets}...")
            acc["extra"] = part_extra(args, args.teacher, idx, exact, near_ties(exact), log)
    else:
        log("accuracy...")
        r["accuracy"] = part_accuracy(args, args.teacher, teacher, idx, labels, x, exact, log)
    eq_b, target = equal_error(r)
    if not args.no_speed:
        log("speed...")
        # For each timed Captum budget, infoutil at the smallest budget with no more error.
        equal = {cb: equal_error(r, cb) for cb in args.time_budgets}
        r["speed"] = part_speed(args, args.teacher, idx, labels, x,
                                [e[0] for e in equal.values()], log)
        med = {k: statistics.median(v) for k, v in r["speed"]["per_image"].items()}
        lines = []
        for cb, (b, err) in equal.items():
            if not b:
                continue
            cap = med[f"Captum KernelShap (PyTorch)|{cb}"]
            iu = med[f"infoutil {args.equal_estimator} (CLI, --backend ort)|{b}"]
            lines.append(f"**Speed at equal error** (Captum at budget {cb}, median error "
                         f"{err:.3f}): infoutil `{args.equal_estimator}` reaches that at "
                         f"budget {b} (smallest budget tried that does), taking {iu:.3f} s/image"
                         f" with `--backend ort` against Captum's {cap:.3f} s/image: "
                         f"×{cap / iu:.1f}.")
        if lines:
            r["equal"] = "\n\n".join(lines)
    elif eq_b:
        r["equal"] = (f"Captum's median error at 256 ({target:.3f}) is matched by infoutil "
                      f"`{args.equal_estimator}` at budget {eq_b}.")
    r["seconds_total"] = time.time() - t0
    md = render(r)
    print(md)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(md + "\n")

        def clean(o):
            if isinstance(o, dict):
                return {str(k): clean(v) for k, v in o.items()}
            if isinstance(o, (list, tuple)):
                return [clean(v) for v in o]
            return o
        Path(args.out).with_suffix(".json").write_text(json.dumps(clean(r), indent=1))
    log(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
