"""The dynamo ONNX exporter as every graph of a package is made with it (forward, gradient and
Grad-CAM graphs alike): a symbolic batch dimension, no external data, and the one fix-up tract
needs. Below exporter.py and cam.py, which both call it."""
import warnings

import numpy as np
import onnx
import torch
from onnx import numpy_helper


def onnx_export(module, args, input_names, output_names):
    n = torch.export.Dim("N", min=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(module, args, dynamo=True, input_names=input_names,
                                 output_names=output_names,
                                 dynamic_shapes=tuple({0: n} for _ in args),
                                 external_data=False, verbose=False)
    return explicit_constant_of_shape(prog.model_proto)


def explicit_constant_of_shape(proto):
    """Give every ConstantOfShape without a `value` attribute the one ONNX defines for it, a
    float32 0 (the exporter writes `new_zeros` / `zeros` that way). tract 0.23.9 reads the
    missing attribute as an f64 0 (`rctensor0(0.0)` in tract-onnx's ops/array), so the zeros
    and everything computed from them become float64 and the graph fails to load ("Impossible
    to unify F64 with F32" at the next MatMul). Same meaning, so ONNX Runtime is unaffected.
    Modifies and returns `proto`."""
    zero = numpy_helper.from_array(np.zeros(1, np.float32), "value")
    graphs = [proto.graph] + list(proto.functions)
    while graphs:
        g = graphs.pop()
        for node in g.node:
            if node.op_type == "ConstantOfShape" and node.domain in ("", "ai.onnx") and \
                    not any(a.name == "value" for a in node.attribute):
                node.attribute.append(onnx.helper.make_attribute("value", zero))
            graphs += [a.g for a in node.attribute if a.type == onnx.AttributeProto.GRAPH]
            graphs += [sub for a in node.attribute if a.type == onnx.AttributeProto.GRAPHS
                       for sub in a.graphs]
    return proto
