"""auto_pad (SAME_UPPER / SAME_LOWER / VALID) made explicit for onnx2torch: the pads from_onnx
computes are the ones ONNX Runtime itself uses for the auto_pad node (found by brute force over
every candidate padding), the rewritten graph gives ONNX Runtime's outputs, an unknown spatial
shape is refused by node name, and a converted SAME_UPPER stride-2 network exports end to end with
a gradient graph free of negative Pad amounts (which tract 0.23 cannot run). Dilated SAME
convolutions, which ONNX Runtime refuses, are held to onnx's reference implementation.

    python export/tests/test_auto_pad.py
"""
import itertools
import json
import os
import sys
import tempfile
import warnings

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import from_onnx  # noqa: E402
from infoutil_export import exporter, metadata, verify  # noqa: E402


def one_node(op, size, kernel, stride, dilation=1, channels=2, batch="N", **attrs):
    """A one-node model x [N, C, H, W] -> op(x): a Conv with a seeded weight, or a pooling."""
    hw = size if isinstance(size, tuple) else (size, size)
    rng = np.random.default_rng([*hw, kernel, stride, dilation])
    inits, inputs = [], ["x"]
    if op == "Conv":
        w = rng.standard_normal((3, channels, kernel, kernel)).astype(np.float32)
        inits.append(numpy_helper.from_array(w, "w"))
        inputs.append("w")
    else:
        attrs["kernel_shape"] = [kernel, kernel]
    attrs["strides"] = [stride, stride]
    if op != "AveragePool" and dilation != 1:
        attrs["dilations"] = [dilation, dilation]
    node = helper.make_node(op, inputs, ["y"], name=f"the_{op.lower()}", **attrs)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [batch, channels, *hw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def run(model, x):
    return verify.ort_session(model.SerializeToString()).run(None, {"x": x})[0]


def with_pads(model, pads):
    m = onnx.ModelProto()
    m.CopyFrom(model)
    node = m.graph.node[0]
    keep = [a for a in node.attribute if a.name != "auto_pad"]
    del node.attribute[:]
    node.attribute.extend(keep + [helper.make_attribute("pads", list(pads))])
    return m


def brute_force_pads(model, x, kernel, dilation):
    """Every explicit (top, left, bottom, right) whose ONNX Runtime output equals the auto_pad
    node's own output."""
    want = run(model, x)
    span = (kernel - 1) * dilation + 1
    found = []
    for p in itertools.product(range(span), repeat=4):
        try:
            got = run(with_pads(model, p), x)
        except Exception:   # noqa: BLE001  (a padding ORT refuses, e.g. bigger than the kernel)
            continue
        if got.shape == want.shape and np.allclose(got, want, rtol=0, atol=1e-6):
            found.append(list(p))
    return found, want


CASES = [  # op, size, kernel, stride, dilation, mode
    ("Conv", 28, 3, 1, 1, "SAME_UPPER"), ("Conv", 7, 3, 1, 1, "SAME_UPPER"),
    ("Conv", 14, 3, 2, 1, "SAME_UPPER"), ("Conv", 15, 3, 2, 1, "SAME_UPPER"),
    ("Conv", 8, 4, 1, 1, "SAME_UPPER"), ("Conv", 9, 4, 2, 1, "SAME_UPPER"),
    ("Conv", 10, 2, 2, 1, "SAME_UPPER"), ("Conv", 11, 5, 3, 1, "SAME_UPPER"),
    ("Conv", 14, 3, 2, 1, "SAME_LOWER"), ("Conv", 8, 4, 1, 1, "SAME_LOWER"),
    ("Conv", 13, 3, 2, 1, "VALID"),
    ("MaxPool", 14, 3, 2, 1, "SAME_UPPER"), ("MaxPool", 9, 2, 2, 1, "SAME_UPPER"),
    ("MaxPool", 10, 3, 2, 1, "SAME_LOWER"), ("AveragePool", 14, 3, 2, 1, "SAME_UPPER"),
    ("AveragePool", 7, 2, 1, 1, "SAME_UPPER"),
]


# ONNX Runtime refuses dilation with SAME auto_pad ("Dilation not supported"): these are held to
# onnx's reference implementation of the auto_pad node instead (and to torch's padding="same",
# which also puts the odd cell at the end, for stride 1)
DILATED = [(9, 3, 1, 2, "SAME_UPPER"), (9, 2, 1, 3, "SAME_UPPER"), (12, 3, 2, 2, "SAME_UPPER"),
           (11, 2, 2, 3, "SAME_LOWER")]


def test_pads_match_onnxruntime():
    """For every case the computed pads are the smallest explicit padding whose ONNX Runtime
    output equals the auto_pad node's (random inputs), and the rewritten graph reproduces it."""
    worst = 0.0
    for op, size, k, s, d, mode in CASES:
        model = one_node(op, size, k, s, d, auto_pad=mode)
        x = np.random.default_rng(size).standard_normal((2, 2, size, size)).astype(np.float32)
        if op == "MaxPool":
            x -= 3.0   # all negative: a zero-padded max would show
        found, want = brute_force_pads(model, x, k, d)
        lo, hi = from_onnx.same_pads(size, k, s, d, mode)
        # with a stride, extra end padding past the last window changes nothing: the auto_pad
        # padding is the smallest of those that give ONNX Runtime's output
        ours = [lo, lo, hi, hi]
        assert ours in found and all(sum(p) > sum(ours) for p in found if p != ours), \
            (op, size, k, s, d, mode, (lo, hi), found)
        if mode != "VALID":
            assert want.shape[2] == -(-size // s), (op, size, k, s, mode, want.shape)
        prepared, n = from_onnx.explicit_pads(onnx.load_from_string(model.SerializeToString()))
        node = prepared.graph.node[0]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        assert n == 1 and "auto_pad" not in attrs and attrs["pads"] == [lo, lo, hi, hi], attrs
        worst = max(worst, float(np.abs(run(prepared, x) - want).max()))
    assert worst <= 1e-6, worst
    return worst


def test_dilated_pads_match_the_onnx_reference():
    from onnx.reference import ReferenceEvaluator
    worst = 0.0
    for size, k, s, d, mode in DILATED:
        model = one_node("Conv", size, k, s, d, auto_pad=mode)
        x = np.random.default_rng(size).standard_normal((2, 2, size, size)).astype(np.float32)
        want = ReferenceEvaluator(model).run(None, {"x": x})[0]
        prepared, _ = from_onnx.explicit_pads(onnx.load_from_string(model.SerializeToString()))
        got = run(prepared, x)
        assert got.shape == want.shape == (2, 3, -(-size // s), -(-size // s)), (got.shape, want.shape)
        worst = max(worst, float(np.abs(got - want).max()))
        if s == 1 and mode == "SAME_UPPER":
            w = torch.from_numpy(numpy_helper.to_array(model.graph.initializer[0]).copy())
            with warnings.catch_warnings():   # "may require a zero-padded copy": it may
                warnings.simplefilter("ignore")
                same = torch.nn.functional.conv2d(torch.from_numpy(x), w, dilation=d, padding="same")
            worst = max(worst, float(np.abs(got - same.numpy()).max()))
    assert worst <= 1e-5, worst
    return worst


def test_non_square_and_formula():
    """Height and width get their own pads; the closed form on a few hand-checked values."""
    assert from_onnx.same_pads(28, 3, 1) == (1, 1)
    assert from_onnx.same_pads(14, 3, 2) == (0, 1)            # SAME_UPPER: extra at the end
    assert from_onnx.same_pads(14, 3, 2, mode="SAME_LOWER") == (1, 0)
    assert from_onnx.same_pads(15, 3, 2) == (1, 1)
    assert from_onnx.same_pads(4, 1, 2) == (0, 0)              # total would be negative
    assert from_onnx.same_pads(9, 3, 1, 2) == (2, 2)            # dilation
    assert from_onnx.same_pads(9, 3, 1, mode="VALID") == (0, 0)
    model = one_node("Conv", (14, 15), 3, 2, auto_pad="SAME_UPPER")
    x = np.random.default_rng(0).standard_normal((2, 2, 14, 15)).astype(np.float32)
    prepared, _ = from_onnx.explicit_pads(onnx.load_from_string(model.SerializeToString()))
    pads = helper.get_attribute_value([a for a in prepared.graph.node[0].attribute
                                       if a.name == "pads"][0])
    assert pads == [0, 1, 1, 1], pads
    assert np.abs(run(prepared, x) - run(model, x)).max() <= 1e-6


def test_unknown_shape_is_refused_by_name():
    model = one_node("Conv", 14, 3, 2, auto_pad="SAME_UPPER")
    for d in model.graph.input[0].type.tensor_type.shape.dim[2:]:
        d.Clear()
        d.dim_param = "H"
    try:
        from_onnx.explicit_pads(model)
    except exporter.UnsupportedModelError as e:
        msg = str(e)
        assert "the_conv" in msg and "static H and W" in msg, msg
        return msg
    raise AssertionError("a SAME_UPPER Conv with unknown H/W was accepted")


def same_upper_net():
    """x [N, 1, 10, 10] -> Conv SAME_UPPER -> Relu -> Conv SAME_UPPER stride 2 (pads (0, 1) per
    axis: onnx2torch's asymmetric Pad, whose backward is a negative Pad) -> Relu -> Flatten -> Gemm:
    4 classes. The first Conv has parameters, so the gradient flows back through the Pad; the Div
    by a 0-d initializer gives a 0-d parameter."""
    rng = np.random.default_rng(0)
    arr = lambda shape, scale: numpy_helper.from_array(  # noqa: E731
        (rng.standard_normal(shape) * scale).astype(np.float32))
    inits = [arr((3, 1, 3, 3), 0.5), arr(3, 0.1), arr((4, 3, 3, 3), 0.5), arr(4, 0.1),
             arr((4 * 5 * 5, 4), 0.2), arr(4, 0.1)]
    for t, name in zip(inits, ["w1", "b1", "w2", "b2", "fc", "fcb"]):
        t.name = name
    # a 0-d initializer, as jax2onnx writes a mean's divisor: a parameter like any other
    inits.append(numpy_helper.from_array(np.array(4.0, np.float32), "four"))
    nodes = [helper.make_node("Conv", ["x", "w1", "b1"], ["c1"], auto_pad="SAME_UPPER"),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], strides=[2, 2], auto_pad="SAME_UPPER"),
             helper.make_node("Relu", ["c2"], ["r2"]), helper.make_node("Div", ["r2", "four"], ["q"]),
             helper.make_node("Flatten", ["q"], ["f"]),
             helper.make_node("Gemm", ["f", "fc", "fcb"], ["logits"])]
    graph = helper.make_graph(nodes, "same_upper_net",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 1, 10, 10])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 4])],
                              inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model


def test_same_upper_network_exports():
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "src.onnx")
        onnx.save_model(same_upper_net(), src)
        x = torch.randn(24, 1, 10, 10)
        y = torch.randint(0, 4, (24,))
        rep = from_onnx.export_onnx(src, d, "t", input_shape=(1, 10, 10), class_names=list("abcd"),
                                    normalization=metadata.BAKED, verify_x=x, verify_y=y,
                                    log=lambda *a: None)
        grad = onnx.load(os.path.join(d, "t.grad.onnx"))
        consts = {t.name: numpy_helper.to_array(t) for t in grad.graph.initializer}
        consts.update({n.output[0]: numpy_helper.to_array(n.attribute[0].t)
                       for n in grad.graph.node if n.op_type == "Constant"})
        pads = [consts[n.input[1]] for n in grad.graph.node if n.op_type == "Pad"]
        assert all((p >= 0).all() for p in pads), ("negative Pad", pads)
        slices = [n for n in grad.graph.node if n.op_type == "Slice"]
        assert slices, "the Pad's backward should be a Slice"
        names = json.loads(metadata.read(grad)["infoutil.param_names"])
        assert len(names) == 7, names   # 2 convs, the Gemm (weight, bias) and the divisor
        fwd = onnx.load(os.path.join(d, "t.onnx"))   # the source itself ships, auto_pad kept
        assert [a.s for a in fwd.graph.node[0].attribute if a.name == "auto_pad"] == [b"SAME_UPPER"]
    assert rep["grad"]["norm_max_rel_err"] <= 1e-4, rep["grad"]
    return rep["grad"]["norm_max_rel_err"], rep["forward"]["forward_max_abs_err"]


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    print(f"pads match ONNX Runtime in {len(CASES)} cases: max |diff| {test_pads_match_onnxruntime():.3g}")
    print(f"dilated pads match onnx.reference in {len(DILATED)} cases: max |diff| "
          f"{test_dilated_pads_match_the_onnx_reference():.3g}")
    test_non_square_and_formula()
    print("non-square and closed form: ok")
    print("unknown shape refused:", test_unknown_shape_is_refused_by_name()[:100], "...")
    g, f = test_same_upper_network_exports()
    print(f"SAME_UPPER stride-2 network: grad max rel err {g:.3g}, forward {f:.3g}, no negative Pad")
    print("ok")
