"""Hold zoo members to their NAME.reference.json on tract from Python, as tests/it/zoo.rs does in
Rust: logits within 1e-4 of the source framework's, gradient norms within 1e-4 relative of the
float64 reference, for a micro-batch plan of 16 (the Rust engine's fast path) and a symbolic
batch N. Needs only tract's Python bindings (the crate's version), numpy and onnx:

    python3 -m venv /tmp/venv-tract && /tmp/venv-tract/bin/pip install tract==0.23.9 numpy onnx
    /tmp/venv-tract/bin/python export/check_tract.py models/zoo            # every member
    /tmp/venv-tract/bin/python export/check_tract.py models/zoo/vit-tiny   # one

Loaded as the Rust loader does: the files' value_info and output shapes are ignored, the inputs
get f32 [B, ...dims in the graph's layout] and i64 [B]. Exit 1 when a member fails to load, run,
or match.

Grad-CAM graphs (NAME.cam.onnx, export_cam.py; a folder's are checked with its members, or give
one) run on the same two plans and are held to ONNX Runtime (which export_cam.py held to float64
PyTorch autograd), so this needs `pip install onnxruntime` in that environment too: activations
and gradients within 1e-4 of ONNX Runtime's, relative to each sample's largest |value|, on the
first 64 embedded Fashion-MNIST test images with their labels (a 1x28x28 teacher) or on 32
seeded standard-normal inputs with seeded labels:

    /tmp/venv-tract/bin/pip install onnxruntime
    /tmp/venv-tract/bin/python export/check_tract.py models/fmnist-convnet3.cam.onnx
"""
import gzip
import json
import os
import sys
import tempfile
import time

import numpy as np
import onnx
import tract

TOL = 1e-4
FLOOR = 1e-41


def idx_images(path):
    d = gzip.open(path).read()
    nd = d[3]
    dims = [int.from_bytes(d[4 + 4 * i:8 + 4 * i], "big") for i in range(nd)]
    return np.frombuffer(d, np.uint8, offset=4 + 4 * nd).reshape(dims)


def runnable(path, batch, dims, with_labels, tmp):
    m = onnx.load(path)
    del m.graph.value_info[:]                       # with_ignore_value_info(true)
    for o in m.graph.output:                        # with_ignore_output_shapes(true)
        o.type.tensor_type.ClearField("shape")
    bare = os.path.join(tmp, os.path.basename(path))
    onnx.save(m, bare)
    t = tract.onnx().load(bare)
    t.set_input_fact(0, ",".join([str(batch)] + [str(d) for d in dims]) + ",f32")
    if with_labels:
        t.set_input_fact(1, f"{batch},i64")
    return t.into_model().into_runnable()


def check(base, tmp):
    ref = json.load(open(base + ".reference.json"))
    fwd = onnx.load(base + ".onnx", load_external_data=False)
    meta = {p.key: p.value for p in fwd.metadata_props}
    c, h, w = json.loads(meta["infoutil.input_shape"])
    layout = meta.get("infoutil.layout", "NCHW")
    norm = json.loads(meta["infoutil.normalization"])
    n = ref["n"]
    x = idx_images(ref["images"])[:n].astype(np.float32)[:, None] / np.float32(255.0)
    if norm["kind"] == "mean_std":
        x = (x - np.float32(norm["mean"]).reshape(1, -1, 1, 1)) / np.float32(norm["std"]).reshape(1, -1, 1, 1)
    x = np.ascontiguousarray(x.transpose(0, 2, 3, 1) if layout == "NHWC" else x, np.float32)
    dims = (h, w, c) if layout == "NHWC" else (c, h, w)
    y = np.array(ref["labels"], np.int64)
    want_logits, want_norms = np.array(ref["logits"]), np.array(ref["grad_norms"])
    rows = []
    for batch in (16, "N"):
        t0 = time.time()
        f = runnable(base + ".onnx", batch, dims, False, tmp)
        g = runnable(base + ".grad.onnx", batch, dims, True, tmp)
        logits, norms = [], []
        step = 16 if batch == 16 else n
        for i in range(0, n, step):
            xb, yb = x[i:i + step], y[i:i + step]
            k = len(xb)
            if batch == 16 and k < 16:   # pad the last micro-batch, as the Rust engine does
                xb = np.concatenate([xb, np.zeros((16 - k,) + xb.shape[1:], np.float32)])
                yb = np.concatenate([yb, np.zeros(16 - k, np.int64)])
            logits.append(f.run([xb])[0].to_numpy()[:k])
            norms.append(g.run([xb, yb])[0].to_numpy()[:k])
        logit_err = float(np.abs(np.concatenate(logits) - want_logits).max())
        norm_err = float((np.abs(np.concatenate(norms) - want_norms) / np.maximum(want_norms, FLOOR)).max())
        rows.append({"batch": batch, "logits_max_abs_err": logit_err, "norm_max_rel_err": norm_err,
                     "seconds": round(time.time() - t0, 2)})
    return rows


MINI = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "fashion-mnist-mini")


def check_cam(path, tmp):
    """The cam graph on tract (micro-batch 16, padded, and symbolic N) against ONNX Runtime."""
    import onnxruntime as ort
    m = onnx.load(path, load_external_data=False)
    meta = {p.key: p.value for p in m.metadata_props}
    c, h, w = json.loads(meta["infoutil.input_shape"])
    layout = meta.get("infoutil.layout", "NCHW")
    norm = json.loads(meta["infoutil.normalization"])
    k = len(json.loads(meta["infoutil.class_names"]))
    if [c, h, w] == [1, 28, 28]:
        n = 64
        x = idx_images(os.path.join(MINI, "t10k-images-idx3-ubyte.gz"))[:n].astype(np.float32)[:, None] / np.float32(255.0)
        if norm["kind"] == "mean_std":
            x = (x - np.float32(norm["mean"]).reshape(1, -1, 1, 1)) / np.float32(norm["std"]).reshape(1, -1, 1, 1)
        y = idx_images(os.path.join(MINI, "t10k-labels-idx1-ubyte.gz"))[:n].astype(np.int64) % k
    else:
        n = 32
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        y = rng.integers(0, k, n).astype(np.int64)
    x = np.ascontiguousarray(x.transpose(0, 2, 3, 1) if layout == "NHWC" else x, np.float32)
    dims = (h, w, c) if layout == "NHWC" else (c, h, w)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    want = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"]).run(
        ["activations", "gradients"], {meta.get("infoutil.input_name", "x"): x, "y": y})
    scales = [np.maximum(np.abs(a).reshape(n, -1).max(1), FLOOR) for a in want]
    rows = []
    for batch in (16, "N"):
        t0 = time.time()
        g = runnable(path, batch, dims, True, tmp)
        outs = [[], []]
        step = 16 if batch == 16 else n
        for i in range(0, n, step):
            xb, yb = x[i:i + step], y[i:i + step]
            kb = len(xb)
            if batch == 16 and kb < 16:
                xb = np.concatenate([xb, np.zeros((16 - kb,) + xb.shape[1:], np.float32)])
                yb = np.concatenate([yb, np.zeros(16 - kb, np.int64)])
            res = g.run([xb, yb])
            for j in range(2):
                outs[j].append(res[j].to_numpy()[:kb])
        errs = []
        for j in range(2):
            got = np.concatenate(outs[j])
            if got.shape != want[j].shape:
                raise ValueError(f"output {j} has shape {list(got.shape)}, ONNX Runtime's {list(want[j].shape)}")
            errs.append(float((np.abs(got - want[j]).reshape(n, -1).max(1) / scales[j]).max()))
        rows.append({"batch": batch, "act_max_rel_err": errs[0], "grad_max_rel_err": errs[1],
                     "shape": list(want[0].shape[1:]), "n": n, "seconds": round(time.time() - t0, 2)})
    return rows


def main(paths):
    bases, cams = [], []
    for p in paths or ["models/zoo"]:
        if os.path.isdir(p):
            bases += sorted(os.path.join(p, f[:-len(".reference.json")]) for f in os.listdir(p)
                            if f.endswith(".reference.json"))
            cams += sorted(os.path.join(p, f) for f in os.listdir(p) if f.endswith(".cam.onnx"))
        elif p.endswith(".cam.onnx"):
            cams.append(p)
        else:
            bases.append(p[:-len(".onnx")] if p.endswith(".onnx") else p)
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for path in cams:
            name = os.path.basename(path)
            try:
                rows = check_cam(path, tmp)
            except Exception as e:  # noqa: BLE001
                print(f"[{name}] FAILED on tract {tract.version()}: {str(e).split('Stack backtrace')[0].strip()}")
                failed += 1
                continue
            for r in rows:
                ok = r["act_max_rel_err"] <= TOL and r["grad_max_rel_err"] <= TOL
                failed += not ok
                print(f"[{name}] tract {tract.version()}, batch {r['batch']}: [K, h, w] = "
                      f"{r['shape']}, vs ONNX Runtime (n={r['n']}): activations max rel err = "
                      f"{r['act_max_rel_err']:.3g}, gradients = {r['grad_max_rel_err']:.3g} "
                      f"(tolerance {TOL:g}; load + run {r['seconds']} s){'' if ok else '  FAIL'}")
        for base in bases:
            name = os.path.basename(base)
            try:
                rows = check(base, tmp)
            except Exception as e:  # noqa: BLE001
                print(f"[{name}] FAILED on tract {tract.version()}: {str(e).split('Stack backtrace')[0].strip()}")
                failed += 1
                continue
            for r in rows:
                ok = r["logits_max_abs_err"] <= TOL and r["norm_max_rel_err"] <= TOL
                failed += not ok
                print(f"[{name}] tract {tract.version()}, batch {r['batch']}: max |logit diff| = "
                      f"{r['logits_max_abs_err']:.3g}, grad norms max rel err = "
                      f"{r['norm_max_rel_err']:.3g} (tolerance {TOL:g}; load + run "
                      f"{r['seconds']} s){'' if ok else '  FAIL'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
