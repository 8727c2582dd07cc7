"""What one depthwise layer's per-sample weight-gradient norms cost on ONNX Runtime's CPU provider,
by two unfold-free routes, against the layer's own forward: MobileNetV2's first depthwise layer at
224 px (32 channels, 112 x 112, 3 x 3, stride 1, padding 1), batch 16. Both routes are checked
against a float64 numpy sum.

  dW[n, c, i, j] = sum_{y, x} g[n, c, y, x] * a_pad[n, c, y + i, x + j];  out[n] = sum dW^2

  slices: nine shifted slices of the padded activation, each times g, summed over the image
  conv:   one Conv with N*C groups, the activation [1, N*C, H, W] as input and the output gradient
          [N*C, 1, H, W] as its kernel (the output is the 3 x 3 weight gradient itself)

    .venv-torch/bin/python benches/stage2_depthwise_routes.py   (needs onnx and onnxruntime)
"""
import statistics
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

N, C, H, W, K = 16, 32, 112, 112, 3


def ints(name, values):
    return helper.make_tensor(name, TensorProto.INT64, [len(values)], values)


def value(name, shape):
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, shape)


def model(nodes, inputs, inits, out_shape):
    graph = helper.make_graph(nodes, "g", [value(i, [N, C, H, W]) for i in inputs],
                              [value("out", out_shape)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def slices_route():
    nodes, sums = [helper.make_node("Pad", ["a", "pads"], ["ap"])], []
    inits = [ints("pads", [0, 0, 1, 1, 0, 0, 1, 1]), ints("hw", [2, 3]), ints("ch", [1])]
    for i in range(K):
        for j in range(K):
            k = f"{i}{j}"
            inits += [ints("st" + k, [i, j]), ints("en" + k, [i + H, j + W])]
            nodes += [helper.make_node("Slice", ["ap", "st" + k, "en" + k, "hw"], ["s" + k]),
                      helper.make_node("Mul", ["s" + k, "g"], ["m" + k]),
                      helper.make_node("ReduceSum", ["m" + k, "hw"], ["r" + k], keepdims=0)]
            sums.append("r" + k)
    nodes += [helper.make_node("Concat", sums, ["dw"], axis=1),
              helper.make_node("Mul", ["dw", "dw"], ["dw2"]),
              helper.make_node("ReduceSum", ["dw2", "ch"], ["out"], keepdims=0)]
    return model(nodes, ["a", "g"], inits, [N])


def conv_route():
    nodes = [helper.make_node("Reshape", ["a", "s1"], ["a1"]),
             helper.make_node("Reshape", ["g", "s2"], ["g1"]),
             helper.make_node("Conv", ["a1", "g1"], ["c"], group=N * C, pads=[1, 1, 1, 1]),
             helper.make_node("Reshape", ["c", "s3"], ["c3"]),
             helper.make_node("Mul", ["c3", "c3"], ["c2"]),
             helper.make_node("ReduceSum", ["c2", "ch"], ["out"], keepdims=0)]
    inits = [ints("s1", [1, N * C, H, W]), ints("s2", [N * C, 1, H, W]),
             ints("s3", [N, C * K * K]), ints("ch", [1])]
    return model(nodes, ["a", "g"], inits, [N])


def forward(weight):
    nodes = [helper.make_node("Conv", ["a", "w"], ["out"], group=C, pads=[1, 1, 1, 1])]
    return model(nodes, ["a"], [numpy_helper.from_array(weight, "w")], [N, C, H, W])


def main(reps=9):
    rng = np.random.default_rng(0)
    a, g = (rng.standard_normal((N, C, H, W), np.float32) for _ in range(2))
    ap = np.pad(a.astype(np.float64), ((0, 0), (0, 0), (1, 1), (1, 1)))
    ref = sum((ap[:, :, i:i + H, j:j + W] * g).sum((2, 3)) ** 2
              for i in range(K) for j in range(K)).sum(1)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    runs = {"forward (the layer's depthwise Conv)": (forward(rng.standard_normal((C, 1, K, K), np.float32)), {"a": a}),
            "per-sample norms, slices": (slices_route(), {"a": a, "g": g}),
            "per-sample norms, grouped conv": (conv_route(), {"a": a, "g": g})}
    sessions = {k: ort.InferenceSession(m.SerializeToString(), opts, providers=["CPUExecutionProvider"])
                for k, (m, _) in runs.items()}
    times = {k: [] for k in runs}
    for _ in range(reps):   # interleaved, so a change of load hits every route alike
        for k, s in sessions.items():
            start = time.perf_counter()
            out = s.run(None, runs[k][1])[0]
            times[k].append(time.perf_counter() - start)
            if "norms" in k:
                err = float(np.max(np.abs(out - ref) / ref))
                assert err < 1e-4, f"{k}: {err:.1e} from float64"
    fwd = statistics.median(times["forward (the layer's depthwise Conv)"])
    for k, t in times.items():
        print(f"{k}: {statistics.median(t) * 1e3:.1f} ms (median of {reps}), "
              f"{statistics.median(t) / fwd:.1f}x the forward")


if __name__ == "__main__":
    main()
