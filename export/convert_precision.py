#!/usr/bin/env python
"""A reduced-precision copy of a teacher package: the forward graph in float16, for Stage 1 (the
Shapley game: budget forwards per image, nearly all of the work) on providers with fast float16
(CUDA). The copy's input and logits stay float32 (casts at the edges), so infoutil reads it like
any teacher; its gradient graph (and Grad-CAM graph) are copied unchanged, since per-sample
squared gradient norms overflow float16 (max 65504) and utility scoring is a small share of the
work.

  python export/convert_precision.py models/fmnist-convnet3.onnx --to fp16 \\
      --out models/fmnist-convnet3-fp16.onnx \\
      --images /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz

Writes OUT (the float16 forward graph), OUT's .grad.onnx and .cam.onnx (copies, where the source
has them) and OUT's .convert.json (the check below). Metadata: everything of the source, plus
`infoutil.precision` = "fp16" and `infoutil.converted_weights_sha256` (the hash of the float16
weights, which the Rust loader recomputes); `infoutil.weights_sha256` stays the float32 weights'
hash, which ties the copy to its gradient graph.

Checked before anything is written (float32 source against the float16 copy on ONNX Runtime's CPU
provider): every logit finite, and top-1 agreement on the check images at least --min-agreement
(default 0.99); else nothing is written and the exit status is 1. The check images are --images
(idx3 gzip or .npy uint8 [N, H, W] or [N, H, W, C], at the teacher's size) or, without them,
seeded standard-normal inputs. bfloat16 is not offered yet: onnxconverter-common converts to
float16 only (docs/backends.md, "Float16 teachers").
"""
import argparse
import gzip
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
from infoutil_export import metadata  # noqa: E402


def read_images(path, n):
    if path.endswith(".npy"):
        return np.load(path)[:n]
    with gzip.open(path, "rb") as f:
        data = f.read()
    count, rows, cols = (int.from_bytes(data[i:i + 4], "big") for i in (4, 8, 12))
    return np.frombuffer(data, np.uint8, offset=16).reshape(count, rows, cols)[:n]


def check_inputs(meta, images, n, seed):
    """[N, C, H, W] float32 inputs in the teacher's normalised space (NCHW as declared)."""
    c, h, w = json.loads(meta["infoutil.input_shape"])
    if images is None:
        x = np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(np.float32)
        return x, "seeded standard-normal inputs"
    px = read_images(images, n)
    px = px[..., None] if px.ndim == 3 else px
    if px.shape[1:3] != (h, w) or px.shape[3] != c:
        sys.exit(f"{images}: images of shape {px.shape[1:]}, the teacher takes {h}x{w}x{c}")
    x = px.astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    norm = json.loads(meta["infoutil.normalization"])
    if norm["kind"] == "mean_std":
        x = (x - np.array(norm["mean"], np.float32)[:, None, None]) / np.array(norm["std"], np.float32)[:, None, None]
    return x, f"{len(x)} images of {images}"


def logits(model_bytes, x, layout, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    sess = ort.InferenceSession(model_bytes, opts, providers=["CPUExecutionProvider"])
    feed = x.transpose(0, 2, 3, 1) if layout == "NHWC" else x
    return np.concatenate([sess.run(None, {sess.get_inputs()[0].name: feed[i:i + 256]})[0]
                           for i in range(0, len(feed), 256)])


def to_fp16(model):
    from onnxconverter_common import float16
    import warnings
    with warnings.catch_warnings():   # values below float16's range are flushed; reported below
        warnings.simplefilter("ignore")
        return float16.convert_float_to_float16(model, keep_io_types=True)


def write_atomic(path, data):
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o644)   # mkstemp's 0600 would hide the teacher from other users
    os.replace(tmp, path)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("teacher", type=Path, help="the forward graph NAME.onnx of a teacher package")
    ap.add_argument("--to", choices=["fp16"], required=True)
    ap.add_argument("--out", type=Path, required=True, metavar="DIR/NAME.onnx")
    ap.add_argument("--images", help="check images: idx3 gzip or .npy uint8")
    ap.add_argument("--n", type=int, default=10000, help="check images used (at most)")
    ap.add_argument("--min-agreement", type=float, default=0.99)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    src = onnx.load(str(args.teacher))
    meta = metadata.read(src)
    if meta.get("infoutil.role") != "forward":
        sys.exit(f"{args.teacher}: not the forward graph of a teacher (infoutil.role is "
                 f"{meta.get('infoutil.role')!r})")
    if meta.get("infoutil.precision", "fp32") != "fp32":
        sys.exit(f"{args.teacher}: already converted (infoutil.precision = {meta['infoutil.precision']})")
    half = to_fp16(src)
    props = {k: v for k, v in meta.items() if k.startswith(metadata.PREFIX)}
    props[metadata.PREFIX + "precision"] = args.to
    props[metadata.PREFIX + "converted_weights_sha256"] = metadata.weights_sha256(half, onnx.TensorProto.FLOAT16)
    half = metadata.attach(half, props)
    # its own weights hash is the float16 weights' (sibling_weights_sha256 is kept: the gradient
    # and Grad-CAM graphs copied beside it stay those of the float32 export)
    metadata.stamp_own(half)
    half_bytes = half.SerializeToString()

    x, what = check_inputs(meta, args.images, args.n, args.seed)
    layout = meta.get("infoutil.layout", "NCHW")
    ref = logits(args.teacher.read_bytes(), x, layout, args.threads)
    got = logits(half_bytes, x, layout, args.threads)
    report = {
        "source": str(args.teacher), "precision": args.to, "check": what,
        "finite": bool(np.isfinite(got).all()),
        "top1_agreement": float((ref.argmax(1) == got.argmax(1)).mean()),
        "max_abs_logit_diff": float(np.abs(ref - got).max()),
        "max_abs_logit": float(np.abs(ref).max()),
        "bytes": len(half_bytes),
    }
    print(json.dumps(report))
    if not report["finite"] or report["top1_agreement"] < args.min_agreement:
        sys.exit(f"refused: the {args.to} copy is not finite or agrees with the float32 teacher on "
                 f"{report['top1_agreement']:.4f} of the check images (--min-agreement "
                 f"{args.min_agreement}); nothing written")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    stem = str(args.teacher)[:-len(".onnx")]
    out_stem = str(args.out)[:-len(".onnx")]
    for part in ("grad", "cam"):
        if os.path.exists(f"{stem}.{part}.onnx"):
            tmp = f"{out_stem}.{part}.onnx.tmp"
            shutil.copyfile(f"{stem}.{part}.onnx", tmp)
            os.replace(tmp, f"{out_stem}.{part}.onnx")
    write_atomic(Path(f"{out_stem}.convert.json"), (json.dumps(report, indent=1) + "\n").encode())
    write_atomic(args.out, half_bytes)   # last: a package is complete once its forward exists
    print(f"wrote {args.out} ({len(half_bytes) / 1e6:.2f} MB) and its gradient graph copy")


if __name__ == "__main__":
    main()
