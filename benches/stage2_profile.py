#!/usr/bin/env python
"""ONNX Runtime's own profile of a gradient graph (NAME.grad.onnx), by op type and by node.

  python benches/stage2_profile.py models/x.grad.onnx --batch 16 --threads 2 --runs 3 \
      [--opt-level extended]

Runs the graph `--runs` times on seeded standard-normal inputs (labels 0) with profiling on, drops
the first run (allocation, kernel selection) and prints the time per op type (summed over the
rest, divided by their count), per kind of work (what the kernels are for in a gradient graph,
from their op, attributes, weights and output type: `kinds`), and the slowest nodes with their
output shapes.
"""
import argparse
import collections
import json
import os
import tempfile

import numpy as np
import onnxruntime as ort


LEVELS = {"all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
          "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
          "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC}


def profile(path, batch, threads, runs, level="all"):
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.graph_optimization_level = LEVELS[level]
    so.enable_profiling = True
    so.profile_file_prefix = os.path.join(tempfile.mkdtemp(), "prof")
    sess = ort.InferenceSession(path, so, providers=["CPUExecutionProvider"])
    xi, yi = sess.get_inputs()[:2]
    shape = [batch] + [int(d) for d in xi.shape[1:]]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    y = np.zeros(batch, np.int64)
    for _ in range(runs):
        sess.run(None, {xi.name: x, yi.name: y})
    return json.load(open(sess.end_profiling()))


def tables(events, runs):
    runs_seen = [e for e in events if e.get("name") == "model_run"]
    keep = runs_seen[1:]
    lo = min(e["ts"] for e in keep)
    by_op, by_node = collections.Counter(), collections.Counter()
    shapes = {}
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time") or e["ts"] < lo:
            continue
        op = e["args"].get("op_name", "?")
        by_op[op] += e["dur"]
        node = e["name"][:-len("_kernel_time")]
        by_node[(op, node)] += e["dur"]
        shapes[node] = e["args"].get("output_type_shape")
    total_run = sum(e["dur"] for e in keep) / len(keep)
    return by_op, by_node, shapes, total_run, len(keep)


def _one_hot(init):
    """A Conv weight of 0s and 1s with one 1 a kernel: the exporter's unfold (im2col)."""
    if init is None:
        return False
    from onnx import numpy_helper
    w = numpy_helper.to_array(init)
    return bool(np.isin(w, (0, 1)).all() and (w.reshape(w.shape[0], -1).sum(1) == 1).all())


def kinds(path, by_node, shapes):
    """Kernel time by kind of work: Conv (forward and input gradient; grouped ones included, which
    are the network's own depthwise convs), ConvTranspose (strided input gradients), unfold (a
    grouped Conv with one-hot weights), per-sample products (float32 MatMul), float64 Gram forms
    (double MatMul, Mul, Cast and the casts' transposes), layout reorders, and the rest by op
    (elementwise backward, pooling masks, slices...)."""
    import onnx
    m = onnx.load(path, load_external_data=False)
    inits = {i.name: i for i in m.graph.initializer}
    nodes = {n.name: n for n in m.graph.node}
    out = collections.Counter()
    for (op, node), us in by_node.items():
        base = nodes.get(node) or nodes.get(node.replace("_nchwc", "")) or \
            nodes.get(node.split("/")[0])
        double = "double" in json.dumps(shapes.get(node))
        if op == "Conv":
            w = inits.get(base.input[1]) if base is not None and len(base.input) > 1 else None
            kind = "unfold (grouped one-hot Conv)" if _one_hot(w) else "Conv (forward, input gradient)"
        elif op == "ConvTranspose":
            kind = "ConvTranspose (strided input gradient)"
        elif op in ("MatMul", "FusedMatMul", "Gemm"):
            kind = "float64 Gram forms" if double else "per-sample products (float32 MatMul)"
        elif op.startswith("Reorder"):
            kind = "layout reorders (NCHWc)"
        elif double or op == "Cast":
            kind = "float64 Gram forms"
        else:
            kind = f"other: {op}"
        out[kind] += us
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("graph")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--top", type=int, default=25)
    ap.add_argument("--opt-level", choices=list(LEVELS), default="all",
                    help="ONNX Runtime's graph optimisation level (all: with its NCHWc layout)")
    args = ap.parse_args()
    ev = profile(args.graph, args.batch, args.threads, args.runs, args.opt_level)
    by_op, by_node, shapes, run, n = tables(ev, args.runs)
    tot = sum(by_op.values()) / n
    print(f"{args.graph}: batch {args.batch}, {args.threads} threads: {run / 1e6:.3f} s a run "
          f"(mean of {n} after the first), kernels {tot / 1e6:.3f} s")
    print("| op | s a run | share |\n|---|---:|---:|")
    for op, us in by_op.most_common():
        print(f"| {op} | {us / n / 1e6:.3f} | {100 * us / n / tot:.1f} % |")
    print("\n| kind | s a run | share |\n|---|---:|---:|")
    for kind, us in kinds(args.graph, by_node, shapes).most_common():
        print(f"| {kind} | {us / n / 1e6:.3f} | {100 * us / n / tot:.1f} % |")
    print(f"\nslowest {args.top} nodes:")
    for (op, node), us in by_node.most_common(args.top):
        print(f"  {us / n / 1e6:7.3f} s  {op:18s} {node[:60]:60s} {json.dumps(shapes[node])[:120]}")


if __name__ == "__main__":
    main()
