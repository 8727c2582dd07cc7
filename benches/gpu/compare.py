"""Comparisons and data for the GPU checks, benches/gpu/run.sh (tract on CUDA) and
benches/gpu/check.sh (ONNX Runtime's CUDA provider); h5py and numpy only, both in the GPU
machine's image and in check.sh's venv. Each command prints markdown (or a number) and exits 0 on
a pass, 1 on a failure.

    python3 benches/gpu/compare.py eval NAME DEVICE.h5 TRACT.h5            # run.sh's rule
    python3 benches/gpu/compare.py eval NAME DEVICE.h5 TRACT.h5 ORTCPU.h5  # check.sh's ('-': none)
    python3 benches/gpu/compare.py attr DEVICE.h5 TRACT.h5
    python3 benches/gpu/compare.py distill A.h5 B.h5 LABEL
    python3 benches/gpu/compare.py images N SIZE CLASSES OUT.h5
    python3 benches/gpu/compare.py tile IMAGES_IDX3.gz N OUT.h5
    python3 benches/gpu/compare.py classes K OUT.txt
    python3 benches/gpu/compare.py util NVIDIA_SMI.csv T0 T1
    python3 benches/gpu/compare.py env
"""
import datetime
import gzip
import sys

import h5py
import numpy as np

TINY = 1e-30
# The project's agreement rule between backends (docs/backends.md).
TOL = 1e-4


def fmt(x):
    return f"{x:.2e}"


def read_eval(path):
    with h5py.File(path, "r") as f:
        out = {k: f[k][()] for k in ("logits", "labels", "source_index")}
        out["grad_norms"] = f["grad_norms"][()] if "grad_norms" in f else None
    return out


def cmd_eval(name, dev_path, tract_path, ortcpu_path=None):
    """Device vs tract on the CPU (with ORTCPU_PATH: check.sh's rule, cmd_eval_kinks): same images, the same arg-max on every image, max |Δlogit| <=
    1e-4, gradient norms within 1e-4 relative on at least 99 % of the images and within 1e-2 on
    all: the rule docs/backends.md holds tract and ONNX Runtime to, since an image whose ReLU
    input sits within float32 noise of 0 lands on either side of the gradient's kink."""
    if ortcpu_path is not None:
        return cmd_eval_kinks(name, dev_path, tract_path, ortcpu_path)
    d, t = read_eval(dev_path), read_eval(tract_path)
    if not (np.array_equal(d["labels"], t["labels"]) and np.array_equal(d["source_index"], t["source_index"])):
        print(f"| {name} | the two files hold different images | | | | **FAIL** |")
        return 1
    y, n = t["labels"], len(t["labels"])
    cd, ct = int((d["logits"].argmax(1) == y).sum()), int((t["logits"].argmax(1) == y).sum())
    agree = int((d["logits"].argmax(1) == t["logits"].argmax(1)).sum())
    dlog = float(np.abs(d["logits"] - t["logits"]).max())
    scale = float(np.abs(t["logits"]).max())
    ok = agree == n and dlog <= TOL
    if d["grad_norms"] is None or t["grad_norms"] is None:
        grad, ok = "no gradient norms", False
    else:
        rel = np.abs(d["grad_norms"] - t["grad_norms"]) / np.maximum(np.abs(t["grad_norms"]), TINY)
        above = int((rel > TOL).sum())
        ok = ok and float(rel.max()) <= 1e-2 and above <= 0.01 * n
        grad = f"{fmt(float(rel.max()))} (image {int(rel.argmax())}); {above} above 1e-4"
    print(f"| {name} | {100 * cd / n:.1f} % / {100 * ct / n:.1f} % | {agree}/{n} | {fmt(dlog)} "
          f"(scale {scale:.3g}) | {grad} | {'PASS' if ok else '**FAIL**'} |")
    return 0 if ok else 1


def cmd_eval_kinks(name, dev_path, tract_path, ortcpu_path):
    """ONNX Runtime's device vs tract: top-1 identical, max |logit diff| <= 1e-4, gradient norms
    max rel diff <= 1e-4 (images where the two CPU backends, tract and ONNX Runtime CPU, already
    disagree by more than 1e-4 sit on a ReLU kink and are held to 1e-2 instead; docs/backends.md).
    ORTCPU_PATH '-': no ONNX Runtime CPU run, every image held to 1e-4."""
    d, t = read_eval(dev_path), read_eval(tract_path)
    o = read_eval(ortcpu_path) if ortcpu_path != "-" else None
    assert np.array_equal(d["labels"], t["labels"]) and np.array_equal(d["source_index"], t["source_index"])
    y = t["labels"]
    cd, ct = int((d["logits"].argmax(1) == y).sum()), int((t["logits"].argmax(1) == y).sum())
    agree = int((d["logits"].argmax(1) == t["logits"].argmax(1)).sum())
    n = len(y)
    dlog = float(np.abs(d["logits"] - t["logits"]).max())
    scale = float(np.abs(t["logits"]).max())
    ok = cd == ct and dlog <= TOL
    dlog_o = float(np.abs(d["logits"] - o["logits"]).max()) if o is not None else float("nan")
    if d["grad_norms"] is None or t["grad_norms"] is None:
        grad = "no gradient norms"
        ok = False
    else:
        gd, gt = d["grad_norms"], t["grad_norms"]
        rel = np.abs(gd - gt) / np.maximum(np.abs(gt), TINY)
        if o is not None and o["grad_norms"] is not None:
            kink = np.abs(o["grad_norms"] - gt) / np.maximum(np.abs(gt), TINY) > TOL
            rel_o = float((np.abs(gd - o["grad_norms"]) / np.maximum(np.abs(o["grad_norms"]), TINY)).max())
        else:
            kink, rel_o = np.zeros(n, bool), float("nan")
        rel_well = float(rel[~kink].max()) if (~kink).any() else 0.0
        ok = ok and rel_well <= TOL and float(rel.max()) <= 1e-2
        worst = int(rel.argmax())
        grad = (f"{fmt(rel.max())} (image {worst}) | {int(kink.sum())} | {fmt(rel_well)} | {fmt(rel_o)}")
    print(f"| {name} | {100 * cd / n:.2f} % / {100 * ct / n:.2f} % | {agree}/{n} | {fmt(dlog)} "
          f"(scale {scale:.3g}) | {fmt(dlog_o)} | {grad} | {'PASS' if ok else '**FAIL**'} |")
    return 0 if ok else 1


def cmd_attr(dev_path, cpu_path):
    """Exact Shapley maps, device vs tract: per image max |Δφ| <= 1e-4 × max |φ_tract|."""
    with h5py.File(dev_path, "r") as f, h5py.File(cpu_path, "r") as g:
        a, b = f["attribution/shapley"][()], g["attribution/shapley"][()]
        same_images = np.array_equal(f["attribution/source_index"][()], g["attribution/source_index"][()])
        idx, lab = g["attribution/source_index"][()], g["attribution/label"][()]
        ca, cb = f["attribution/crop_box"][()], g["attribution/crop_box"][()]
        est = g["attribution"].attrs.get("estimator")
    if not same_images or a.shape != b.shape:
        print("The two files hold different images or map shapes.")
        return 1
    print(f"Estimator `{est}`; tolerance: max |Δφ| ≤ 1e-4 × max |φ| of the tract map, per image.")
    print()
    print("| image | label | max \\|φ\\| (tract) | max \\|Δφ\\| | relative | crops identical | result |")
    print("|---:|---:|---:|---:|---:|---|---|")
    ok_all = True
    for i in range(len(idx)):
        scale = float(np.abs(b[i]).max())
        diff = float(np.abs(a[i] - b[i]).max())
        ok = diff / max(scale, TINY) <= TOL
        ok_all &= ok
        same = bool(np.array_equal(ca[i], cb[i]))
        print(f"| {idx[i]} | {lab[i]} | {scale:.4f} | {fmt(diff)} | {fmt(diff / max(scale, TINY))} | "
              f"{'yes' if same else 'no'} | {'PASS' if ok else '**FAIL**'} |")
    print()
    print(f"MAX_ABS {fmt(float(np.abs(a - b).max()))}")
    return 0 if ok_all else 1


def cmd_distill(a_path, b_path, label):
    """Two distilled files of the same command and seed: identical provenance (tile sources, crop
    boxes, labels) passes; the candidates' crops, the uint8 images, and how far the soft labels,
    Shapley maps and scores are, are reported."""
    with h5py.File(a_path, "r") as f, h5py.File(b_path, "r") as g:
        def same(k):
            x, y = f[k][()], g[k][()]
            if x.shape != y.shape:
                return False, -1
            return bool(np.array_equal(x, y)), int((x != y).sum())
        prov_src, n_src = same("provenance/source_index")
        prov_box, n_box = same("provenance/crop_box")
        labels, _ = same("labels")
        cand, _ = same("candidates/crop_box")
        u8, n_u8 = same("images_uint8")
        soft = float(np.abs(f["soft_labels"][()] - g["soft_labels"][()]).max())
        sa, sb = f["candidates/shapley"][()], g["candidates/shapley"][()]
        shap = float(np.abs(sa - sb).max()) / max(float(np.abs(sb).max()), TINY) if sb.size else 0.0
        ka, kb = f["candidates/score"][()], g["candidates/score"][()]
        both = np.isfinite(ka) & np.isfinite(kb)
        nan_same = bool(np.array_equal(np.isnan(ka), np.isnan(kb)))
        score = float((np.abs(ka - kb)[both] / np.maximum(np.abs(kb[both]), TINY)).max()) if both.any() else 0.0
        n = f["provenance/source_index"].size
    ok = prov_src and prov_box and labels
    print(f"| {label} | {'yes' if prov_src else f'**no** ({n_src} of {n} tiles)'} | "
          f"{'yes' if prov_box else f'**no** ({n_box} coordinates)'} | {'yes' if labels else '**no**'} | "
          f"{'yes' if cand else 'no'} | {'yes' if u8 else f'no ({n_u8} pixels)'} | {fmt(soft)} | {fmt(shap)} | "
          f"{fmt(score)}{'' if nan_same else ' (NaN pattern differs)'} |")
    return 0 if ok else 1


def cmd_images(n, size, classes, out):
    """An HDF5 dataset (/images u8 [n,3,S,S], /labels) of a fixed pseudo-random pattern: speed
    does not depend on what the pixels show, and nothing has to be carried or decoded."""
    n, size, classes = int(n), int(size), int(classes)
    rng = np.random.default_rng(0)
    with h5py.File(out, "w") as f:
        f.create_dataset("images", data=rng.integers(0, 256, (n, 3, size, size), dtype=np.uint8))
        f.create_dataset("labels", data=(np.arange(n) % classes).astype(np.int64))
    return 0


def read_idx(path):
    with gzip.open(path, "rb") as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def cmd_tile(images_gz, n, out):
    """An HDF5 dataset (/images u8 [n,1,H,W], /labels) of an idx image file repeated to n."""
    x = read_idx(images_gz)
    y = read_idx(images_gz.replace("images-idx3", "labels-idx1")).astype(np.int64)
    n = int(n)
    reps = -(-n // len(x))
    with h5py.File(out, "w") as f:
        f.create_dataset("images", data=np.tile(x[:, None], (reps, 1, 1, 1))[:n])
        f.create_dataset("labels", data=np.tile(y, reps)[:n])
    return 0


def cmd_classes(k, out):
    with open(out, "w") as f:
        f.write("".join(f"class{i}\n" for i in range(int(k))))
    return 0


def cmd_util(csv, t0, t1):
    """Mean and max GPU utilisation and max memory in [t0, t1] (epoch seconds) of nvidia-smi's
    log: three table cells."""
    t0, t1 = float(t0), float(t1)
    u, m = [], []
    try:
        lines = open(csv).read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        parts = [p.strip() for p in line.split(",")]
        try:
            ts = datetime.datetime.strptime(parts[0], "%Y/%m/%d %H:%M:%S.%f").timestamp()
            ut, mem = float(parts[1].split()[0]), float(parts[2].split()[0])
        except (ValueError, IndexError):   # a header, a cut line
            continue
        if t0 <= ts <= t1:
            u.append(ut)
            m.append(mem)
    print("n/a | n/a | n/a" if not u else f"{np.mean(u):.0f} | {max(u):.0f} | {max(m):.0f}")
    return 0


def cmd_env():
    """The onnxruntime package of this Python: version, build, CUDA version, providers."""
    import onnxruntime as ort
    from onnxruntime.capi import build_and_package_info as info
    print(f"onnxruntime {ort.__version__} ({getattr(info, 'package_name', '?')}, "
          f"built with CUDA {getattr(info, 'cuda_version', '?')}); providers: "
          f"{', '.join(ort.get_available_providers())}")
    return 0


if __name__ == "__main__":
    sys.exit(globals()["cmd_" + sys.argv[1]](*sys.argv[2:]) or 0)
