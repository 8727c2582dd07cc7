#!/usr/bin/env python
"""What a float16 teacher (export/convert_precision.py) costs in Shapley accuracy: `infoutil
attribute` with the float32 teacher and its float16 copy on the same real images, exact values
(all 2^16 coalitions) and the default estimator at a budget, every map compared with the float32
exact values (relative L2 error of the 4x4 map, arg-max agreement), and the wall time of each run
(ONNX Runtime, side by side in one run).

  python benches/precision_error.py --fp32 models/fmnist-convnet3.onnx \\
      --fp16 out/fp16/fmnist-convnet3-fp16.onnx --indices 0-3 --budget 128
  # needs h5py and numpy, and ORT_DYLIB_PATH (source scripts/setup.sh)

Images: the embedded Fashion-MNIST test images unless --data is given.
"""
import argparse
import os
import subprocess
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def attribute(binary, teacher, out, args, extra):
    cmd = [binary, "attribute", "--teacher", teacher, "--backend", "ort", "--indices", args.indices,
           "--seed", "0", "--out", out, *extra]
    if args.data:
        cmd += ["--data", args.data]
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    secs = time.perf_counter() - t
    with h5py.File(out) as f:
        return f["attribution/shapley"][()].astype(np.float64), secs, " ".join(cmd)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fp32", required=True)
    ap.add_argument("--fp16", required=True)
    ap.add_argument("--data")
    ap.add_argument("--indices", default="0-3")
    ap.add_argument("--budget", type=int, default=128)
    ap.add_argument("--binary", default=str(Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release/infoutil"))
    args = ap.parse_args()
    runs = {}
    with tempfile.TemporaryDirectory() as tmp:
        for est, extra in (("exact", ["--estimator", "exact"]), (f"budget {args.budget}", ["--budget", str(args.budget)])):
            for prec, teacher in (("fp32", args.fp32), ("fp16", args.fp16)):
                runs[(prec, est)] = attribute(args.binary, teacher, f"{tmp}/{prec}-{est[0]}.h5", args, extra)
    ref = runs[("fp32", "exact")][0]
    n = len(ref)
    flat_ref = ref.reshape(n, -1)
    print(f"{n} images ({args.indices}{' of ' + args.data if args.data else ', embedded test images'}); "
          "reference: float32 exact Shapley values\n")
    print("| teacher | estimator | rel. L2 error vs fp32 exact (median, max) | arg-max patch agrees | wall (s) |")
    print("|---|---|---:|---:|---:|")
    for (prec, est), (maps, secs, _) in runs.items():
        flat = maps.reshape(n, -1)
        err = np.linalg.norm(flat - flat_ref, axis=1) / np.linalg.norm(flat_ref, axis=1)
        agree = (flat.argmax(1) == flat_ref.argmax(1)).mean()
        print(f"| {prec} | {est} | {np.median(err):.2e}, {err.max():.2e} | {agree * 100:.0f} % | {secs:.1f} |")
    print("\nCommands:\n")
    for _, _, cmd in runs.values():
        print(f"    {cmd}")


if __name__ == "__main__":
    main()
