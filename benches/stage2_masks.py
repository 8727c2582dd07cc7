#!/usr/bin/env python
"""How a gradient graph's activation masks run on ONNX Runtime's CPU provider: ReLU's and ReLU6's
backward as torch's decompositions write them (compares, then a Where with a scalar 0) against
the exporter's (the same compares, a Cast and a Mul: infoutil_export/decomps.py `_masked`), on one
activation-sized tensor, the runs interleaved, medians. Both forms' outputs are compared.

    .venv-torch/bin/python benches/stage2_masks.py --shape 16,96,112,112 --reps 9

Used for docs/benchmarks.md (issue 35, third round)."""
import argparse
import statistics
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto as T
from onnx import helper as h


def node(op, ins, out, **attrs):
    return h.make_node(op, ins, [out], **attrs)


# each form: (nodes from x (the activation's input or output) and g (its output gradient) to out)
FORMS = {
    "ReLU, Where (torch's)": [node("LessOrEqual", ["x", "zero"], "c"),
                              node("Where", ["c", "zero", "g"], "out")],
    "ReLU, Cast and Mul": [node("Greater", ["x", "zero"], "c"),
                           node("Cast", ["c"], "m", to=T.FLOAT), node("Mul", ["g", "m"], "out")],
    "ReLU6, Where (torch's)": [node("LessOrEqual", ["x", "zero"], "a"),
                               node("GreaterOrEqual", ["x", "six"], "b"),
                               node("Or", ["a", "b"], "c"), node("Where", ["c", "zero", "g"], "out")],
    "ReLU6, Cast and Mul": [node("Greater", ["x", "zero"], "a"), node("Less", ["x", "six"], "b"),
                            node("And", ["a", "b"], "c"), node("Cast", ["c"], "m", to=T.FLOAT),
                            node("Mul", ["g", "m"], "out")],
}


def session(nodes, shape, threads):
    io = [h.make_tensor_value_info(n, T.FLOAT, shape) for n in ("x", "g")]
    used = {i for n in nodes for i in n.input}
    consts = [h.make_tensor(name, T.FLOAT, [], [v]) for name, v in (("zero", 0.0), ("six", 6.0))
              if name in used]
    graph = h.make_graph(nodes, "mask", io, [h.make_tensor_value_info("out", T.FLOAT, shape)],
                         initializer=consts)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", 18)])
    model.ir_version = 9   # what ONNX Runtime 1.31 reads
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shape", default="16,96,112,112")
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    shape = [int(d) for d in args.shape.split(",")]
    rng = np.random.default_rng(0)
    feed = {"x": (4 * rng.standard_normal(shape)).astype(np.float32),   # both sides of 0 and 6
            "g": rng.standard_normal(shape).astype(np.float32)}
    runs = {name: (session(nodes, shape, args.threads), []) for name, nodes in FORMS.items()}
    outs = {name: s.run(None, feed)[0] for name, (s, _) in runs.items()}   # warm-up
    for _ in range(args.reps):
        for s, times in runs.values():
            start = time.perf_counter()
            s.run(None, feed)
            times.append(time.perf_counter() - start)
    for name, (_, times) in runs.items():
        print(f"{1e3 * statistics.median(times):8.1f} ms (min {1e3 * min(times):.1f})  {name}")
    for act in ("ReLU", "ReLU6"):
        same = np.array_equal(outs[f"{act}, Where (torch's)"], outs[f"{act}, Cast and Mul"])
        print(f"{act}: the two forms' outputs are {'equal' if same else 'DIFFERENT'}")


if __name__ == "__main__":
    main()
