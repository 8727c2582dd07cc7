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
                                 custom_translation_table=translations(),
                                 external_data=False, verbose=False)
    return explicit_constant_of_shape(prog.model_proto)


def translations():
    """aten ops whose ONNX translation here replaces the exporter's own."""
    return {torch.ops.aten.max_pool2d_with_indices.default: max_pool2d_with_indices}


def max_pool2d_with_indices(self, kernel_size, stride=(), padding=(0, 0), dilation=(1, 1),
                            ceil_mode=False):
    """MaxPool with its Indices output, made per-plane as aten's are (the max-pool backward
    routes by them, decomps.max_pool2d_backward) by subtracting each (n, c) plane's start,
    (n * C + c) * H * W, made by a Range over the planes. The exporter's own translation finds
    those starts with a second MaxPool, 1 x 1 with indices over the whole input (ResNet-18 at
    224 px, batch 16: int64 indices of [16, 64, 112, 112], 2 / 3 of its pooling's time)."""
    from onnxscript.onnx_opset import opset18 as op
    from .decomps import _pair   # aten's 1-or-2-values convention, as the backward reads it
    k = _pair(kernel_size)
    values, indices = op.MaxPool(self, ceil_mode=int(bool(ceil_mode)),
                                 dilations=_pair(dilation, (1, 1)), kernel_shape=k,
                                 pads=_pair(padding, (0, 0)) * 2, strides=_pair(stride, k))
    shape = op.Shape(self)
    planes = op.ReduceProd(op.Slice(shape, [0], [2]), keepdims=0)
    plane_size = op.ReduceProd(op.Slice(shape, [2], [4]), keepdims=0)
    starts = op.Mul(op.Range(op.Constant(value_int=0), planes, op.Constant(value_int=1)),
                    plane_size)
    starts = op.Reshape(starts, op.Concat(op.Slice(shape, [0], [2]),
                                          op.Constant(value_ints=[1, 1]), axis=0))
    return values, op.Sub(indices, starts)


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
