"""A teacher that exists only as a forward ONNX file (Keras, JAX, TensorFlow or PyTorch) becomes
infoutil's verified pair: the file itself, with the metadata added, is the forward graph; the
gradient graph is made by converting it to torch (onnx2torch) and running the same per-sample
rules as any PyTorch model. Used by export/from_onnx.py (the command line) and by
infoutil.export.from_onnx (the Python package), which differ only in how they are called.

The input's name is the graph's own; its layout (NCHW or NHWC) is read from the graph's static
shape, or given when the shape cannot tell. infoutil.* metadata already in SRC is kept unless
overridden. Every float initializer the converted graph computes with is a parameter (Keras's
Dense kernels and biases, folded BatchNorm scales and shifts): the norms are the gradient of the
ONNX function with respect to its initializers. Before conversion, Conv / MaxPool / AveragePool
auto_pad (SAME_UPPER, SAME_LOWER, VALID: how jax2onnx writes SAME padding) becomes explicit pads
(onnx2torch implements only those); the graph SRC ships as is. Checks: that prepared graph
reproduces SRC under ONNX Runtime (max |output diff| <= 1e-5), the converted module reproduces SRC
under ONNX Runtime (max |logit diff| <= 1e-4), and the gradient graph matches torch.func in
float64.
"""
import copy
import json
import os

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper, version_converter

from infoutil_export import exporter, images, metadata, verify

ONNX2TORCH_OPSET = 17   # onnx2torch 1.5 lacks several newer op versions (AveragePool-19, Cast-19)


AUTO_PAD_OPS = ("Conv", "MaxPool", "AveragePool")
PREPARED_TOL = 1e-5   # max |output diff|, ONNX Runtime, prepared graph against SRC


def same_pads(size, kernel, stride=1, dilation=1, mode="SAME_UPPER"):
    """(begin, end) padding of one spatial axis that ONNX's auto_pad means: the output has
    ceil(size / stride) positions (SAME_*) or no padding at all (VALID); SAME_UPPER puts the odd
    extra cell at the end, SAME_LOWER at the beginning."""
    if mode == "VALID":
        return 0, 0
    if mode not in ("SAME_UPPER", "SAME_LOWER"):
        raise ValueError(f"auto_pad {mode!r}")
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    small, large = total // 2, total - total // 2
    return (small, large) if mode == "SAME_UPPER" else (large, small)


def _static_dims(value_info):
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]


def explicit_pads(model):
    """Rewrite every Conv / MaxPool / AveragePool whose auto_pad is SAME_UPPER, SAME_LOWER or VALID
    into the explicit `pads` it stands for (onnx2torch implements only those; jax2onnx writes
    SAME padding as auto_pad=SAME_UPPER). The pads depend on the input's spatial size, read with
    onnx.shape_inference (the graph's input H and W must be static). Returns (model, number of
    nodes rewritten); the model is modified in place."""
    todo = [n for n in model.graph.node if n.op_type in AUTO_PAD_OPS and n.domain in ("", "ai.onnx")
            and any(a.name == "auto_pad" and a.s.decode() != "NOTSET" for a in n.attribute)]
    if not todo:
        return model, 0
    # inferred afresh: an exporter's own value_info can be wrong (jax2onnx 0.17 declares a
    # transposed layout for some NCHW tensors) and shape inference would keep it
    bare = copy.deepcopy(model)
    del bare.graph.value_info[:]
    inferred = onnx.shape_inference.infer_shapes(bare, data_prop=True)
    shapes = {}
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        shapes[vi.name] = _static_dims(vi)
    for t in model.graph.initializer:
        shapes[t.name] = list(t.dims)
    for node in todo:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        mode = attrs["auto_pad"].decode()
        dims = shapes.get(node.input[0])
        what = f"{node.op_type} node {node.name or '(unnamed)'!r} (input {node.input[0]!r})"
        if dims is None or len(dims) < 3 or any(d is None for d in dims[2:]):
            raise exporter.UnsupportedModelError(
                f"{what} has auto_pad={mode} but its input's spatial shape is unknown ({dims}): "
                "the explicit pads depend on it. Export the graph with static H and W (only the "
                "batch dimension dynamic), or with explicit padding instead of SAME")
        spatial = dims[2:]
        kernel = attrs.get("kernel_shape")
        if kernel is None and node.op_type == "Conv":
            w = shapes.get(node.input[1])
            kernel = w[2:] if w is not None and None not in w[2:] else None
        if kernel is None or len(kernel) != len(spatial):
            raise exporter.UnsupportedModelError(
                f"{what} has auto_pad={mode} but no static kernel shape for input {dims}: give "
                "the node a kernel_shape attribute or a constant weight")
        strides = attrs.get("strides", [1] * len(spatial))
        dilations = attrs.get("dilations", [1] * len(spatial))
        per_axis = [same_pads(s, k, st, d, mode)
                    for s, k, st, d in zip(spatial, kernel, strides, dilations)]
        pads = [b for b, _ in per_axis] + [e for _, e in per_axis]
        keep = [a for a in node.attribute if a.name not in ("auto_pad", "pads")]
        del node.attribute[:]
        node.attribute.extend(keep + [onnx.helper.make_attribute("pads", pads)])
        if node.op_type != "Conv" and "kernel_shape" not in attrs:
            node.attribute.append(onnx.helper.make_attribute("kernel_shape", list(kernel)))
    return model, len(todo)


def check_prepared(original, prepared, n=3, seed=0):
    """Max |output difference| of the prepared graph against the original on ONNX Runtime, on
    n seeded standard-normal batches (of 2 for a symbolic batch); refused above PREPARED_TOL."""
    inits = {t.name for t in original.graph.initializer}
    inputs = [i for i in original.graph.input if i.name not in inits]
    rng = np.random.default_rng(seed)
    feeds = []
    for _ in range(n):
        feed = {}
        for i in inputs:
            dims = _static_dims(i) or []
            if any(d is None for d in dims[1:]):
                raise exporter.UnsupportedModelError(
                    f"input {i.name!r} has dims {dims}: the prepared graph cannot be checked "
                    "without static non-batch dimensions")
            feed[i.name] = rng.standard_normal([dims[0] or 2] + dims[1:]).astype(np.float32)
        feeds.append(feed)
    sessions = [verify.ort_session(m.SerializeToString()) for m in (original, prepared)]
    err = 0.0
    for feed in feeds:
        try:
            a = sessions[0].run(None, feed)
        except Exception as e:   # noqa: BLE001  (e.g. ORT refuses dilation with SAME auto_pad)
            raise exporter.UnsupportedModelError(
                f"ONNX Runtime cannot run the source graph itself, which is what would ship as "
                f"the forward graph: {e}") from e
        b = sessions[1].run(None, feed)
        err = max([err] + [float(np.abs(u.astype(np.float64) - v).max()) for u, v in zip(a, b)])
    if not err <= PREPARED_TOL:
        raise exporter.VerificationError(
            f"the graph prepared for onnx2torch (explicit pads, opset {ONNX2TORCH_OPSET}) gives "
            f"outputs {err:.3g} away from the source on ONNX Runtime (tolerance {PREPARED_TOL:g})")
    return err


def prepare_onnx(model, check=True, log=None):
    """Make an exporter's forward graph digestible for onnx2torch. When auto_pad nodes were
    rewritten (and check is true), the prepared graph is held to the original on ONNX Runtime."""
    original = copy.deepcopy(model) if check else None
    model, rewritten = explicit_pads(model)
    if rewritten and log:
        log(f"auto_pad made explicit on {rewritten} node(s)")
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    consts[node.output[0]] = numpy_helper.to_array(a.t)
        # allowzero=1 (the dynamo exporter's choice) means the same as 0 when the target shape
        # holds no zero; onnx2torch implements only 0
        if node.op_type == "Reshape":
            shape = consts.get(node.input[1])
            for a in node.attribute:
                if a.name == "allowzero" and a.i == 1 and shape is not None and (shape != 0).all():
                    a.i = 0
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset > ONNX2TORCH_OPSET:
        model = version_converter.convert_version(model, ONNX2TORCH_OPSET)
    if rewritten and check:
        err = check_prepared(original, model)
        if log:
            log(f"prepared graph vs source on ONNX Runtime: max |output diff| = {err:.3g} "
                f"(tolerance {PREPARED_TOL:g})")
    return model


class BatchReshape(nn.Module):
    """x.reshape(N, *tail) (or a fixed shape, for a reshape of a constant such as a kernel): what
    a runtime-shape ONNX Reshape means for a batch-first network, in a form that symbolic tracing
    keeps batch-dynamic (onnx2torch reads the shape tensor's values, which stops tracing with a
    data-dependent guard)."""

    def __init__(self, tail, batched=True):
        super().__init__()
        self.tail, self.batched = [int(v) for v in tail], batched

    def forward(self, x, shape=None):
        return x.reshape(x.shape[0], *self.tail) if self.batched else x.reshape(*self.tail)


def static_reshapes(tm, shape):
    """Replace every onnx2torch Reshape whose output is [batch, fixed...] at two batch sizes."""
    from onnx2torch.node_converters.reshape import OnnxReshape
    seen = {}
    hooks = [m.register_forward_hook(lambda m, i, o: seen.setdefault(m, []).append((i[0].shape, o.shape)))
             for m in tm.modules() if isinstance(m, OnnxReshape)]
    with torch.no_grad():
        for b in (2, 3):
            tm(torch.zeros(b, *shape))
    for h in hooks:
        h.remove()
    replaced = 0
    for name, m in list(tm.named_modules()):
        if m not in seen:
            continue
        (i2, o2), (i3, o3) = seen[m]
        if i2 == i3 and o2 == o3:   # reshapes a constant (a kernel), not the batch
            replacement = BatchReshape(o2, batched=False)
        elif not (i2[0] == o2[0] == 2 and i3[0] == o3[0] == 3 and o2[1:] == o3[1:]):
            raise exporter.UnsupportedModelError(
                f"Reshape '{name}' maps {list(i2)} to {list(o2)} at batch 2 and {list(i3)} to "
                f"{list(o3)} at batch 3: it does not keep the batch first, so the per-sample "
                "gradient graph cannot be built")
        else:
            replacement = BatchReshape(o2[1:])
        tm.add_submodule(name, replacement)
        for node in tm.graph.nodes:
            if node.op == "call_module" and node.target == name:
                node.args = (node.args[0],)   # drop the shape tensor: its producers become dead
        replaced += 1
    if replaced:
        tm.graph.eliminate_dead_code()
        tm.recompile()
    return replaced


def static_squeezes(tm):
    """Replace every onnx2torch Squeeze whose axes come from a constant (opset 13 takes them as an
    input; tf2onnx writes GlobalAveragePooling2D's Squeeze so) with the static-axes form: the
    dynamic one loops over the axes tensor's values, which stops symbolic tracing with a
    data-dependent guard. Unsqueeze is already converted static by onnx2torch when it can be."""
    from onnx2torch.node_converters.squeeze import OnnxSqueezeDynamicAxes, OnnxSqueezeStaticAxes
    replaced = 0
    for node in tm.graph.nodes:
        if node.op != "call_module" or not isinstance(tm.get_submodule(node.target), OnnxSqueezeDynamicAxes):
            continue
        axes = node.args[1] if len(node.args) > 1 else node.kwargs.get("axes")
        if axes is None:
            continue
        if not (isinstance(axes, torch.fx.Node) and axes.op == "get_attr"):
            raise exporter.UnsupportedModelError(
                f"Squeeze '{node.target}' takes its axes from a computed tensor; the per-sample "
                "gradient graph needs them constant")
        value = tm.get_parameter(axes.target) if axes.target in dict(tm.named_parameters()) \
            else tm.get_buffer(axes.target)
        tm.add_submodule(node.target, OnnxSqueezeStaticAxes(axes=[int(a) for a in value.flatten()]))
        node.args, node.kwargs = (node.args[0],), {}
        replaced += 1
    if replaced:
        tm.graph.eliminate_dead_code()
        tm.recompile()
    return replaced


def initializers_to_parameters(tm):
    """Every float ONNX initializer the graph still computes with becomes a parameter (onnx2torch
    keeps those outside Conv/Gemm/BatchNormalization as buffers). Constant nodes (clip bounds,
    epsilons, shape values) stay constants, and so do BatchNormalization's running statistics."""
    tm.delete_all_unused_submodules()
    container = dict(tm.named_children()).get("initializers")
    used = {n.target for n in tm.graph.nodes if n.op == "get_attr"}
    for m in [container] if container is not None else []:
        for k, b in list(m.named_buffers(recurse=False)):
            if f"initializers.{k}" not in used:
                continue
            if b.is_floating_point():
                delattr(m, k)
                m.register_parameter(k, nn.Parameter(b.detach().clone(), requires_grad=False))
    return tm


PIXELS = {"raw255": lambda c: metadata.mean_std([0.0] * c, [1 / 255] * c),      # 0..255 floats
          "unit": lambda c: metadata.BAKED,                                    # 0..1
          "symmetric": lambda c: metadata.mean_std([0.5] * c, [0.5] * c)}       # -1..1


def graph_input(src, input_shape, layout=None):
    """(name, layout) of SRC's image input; the layout from its static dims where they tell."""
    inputs = [i for i in src.graph.input if i.name not in {t.name for t in src.graph.initializer}]
    if len(inputs) != 1:
        raise exporter.UnsupportedModelError(
            f"SRC has {len(inputs)} inputs {[i.name for i in inputs]}; a teacher takes one image batch")
    dims = [d.dim_value if d.HasField("dim_value") else None
            for d in inputs[0].type.tensor_type.shape.dim]
    fits = [lay for lay in ("NCHW", "NHWC")
            if len(dims) == 4 and all(a in (None, b) for a, b in
                                      zip(dims[1:], exporter.graph_shape(input_shape, lay)))]
    if layout is None:
        if len(fits) != 1:
            raise exporter.UnsupportedModelError(
                f"cannot tell the layout of input {inputs[0].name!r} with dims {dims} for "
                f"[C, H, W] = {list(input_shape)}: give --layout NCHW or --layout NHWC")
        layout = fits[0]
    elif layout not in fits:
        raise exporter.UnsupportedModelError(
            f"input {inputs[0].name!r} has dims {dims}, which is not {layout} for [C, H, W] = "
            f"{list(input_shape)}")
    return inputs[0].name, layout


def source_metadata(src):
    """SRC's own infoutil.* metadata as values: input_shape, class_names, normalization, layout,
    resize (each None when SRC does not declare it)."""
    meta = metadata.read(src)
    get = lambda k: meta.get(metadata.PREFIX + k)  # noqa: E731
    parsed = {k: json.loads(get(k)) if get(k) else None
              for k in ("input_shape", "class_names", "normalization", "resize")}
    return {**parsed, "layout": get("layout")}


def pixel_array(pixels, input_shape, resize_meta=None):
    """Verification pixels given as an array: uint8 [N, C, H, W] (or [N, H, W] for one channel)
    -> float32 [N, C, H, W] in 0..255 at the teacher's size, as images.load returns them."""
    x = np.asarray(pixels)
    if x.ndim == 3:
        x = x[:, None]
    c, h, w = input_shape
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1] != c:
        raise images.ImageError(f"images: expected uint8 pixels [N, {c}, H, W] (or [N, H, W] with "
                                f"one channel), got {x.dtype} {list(x.shape)}")
    t = torch.from_numpy(np.ascontiguousarray(x)).float()
    if tuple(x.shape[2:]) == (h, w):
        return t
    return torch.stack([images.resize(a, (h, w), resize_meta) for a in t])


def verification_inputs(src_path, *, input_shape, class_names, normalization, layout, resize=None,
                        pixels=None, labels=None, n=64, seed=0):
    """(x in the graph's layout, y, how): the first n images of PIXELS (a path images.load
    reads: a folder, HDF5, .npy or idx gzip; or a uint8 array), normalised as the metadata says,
    with LABELS (else the source's labels, else SRC's own predictions on ONNX Runtime); without
    PIXELS, n seeded standard-normal inputs with random labels."""
    if pixels is None:
        gen = torch.Generator().manual_seed(seed)
        x = torch.randn(n, *exporter.graph_shape(input_shape, layout), generator=gen)
        y = torch.randint(0, len(class_names), (n,), generator=gen)
        return x, y, f"{n} seeded standard-normal inputs"
    if isinstance(pixels, (str, os.PathLike)):
        px, y, how = images.load(os.fspath(pixels), input_shape, class_names, resize, limit=n)
    else:
        px, y, how = pixel_array(pixels, input_shape, resize)[:n], None, "the given pixel array"
    x = normalized(px, normalization, layout)
    if labels is not None:
        y = torch.as_tensor(np.asarray(labels)[:len(x)], dtype=torch.int64)
        if len(y) != len(x):
            raise images.ImageError(f"labels: {len(y)} for {len(x)} images")
    if y is None:
        feed = graph_input(onnx.load(src_path), input_shape, layout)[0]
        y = torch.from_numpy(verify.ort_session(src_path).run(None, {feed: x.numpy()})[0].argmax(1))
        how += ", labelled with SRC's own predictions"
    return x, y, how


def normalized(pixels, norm, layout):
    """uint8 [N, C, H, W] -> the teacher's input in its layout, as the Rust loader computes it."""
    x = pixels.float() / 255.0
    if norm["kind"] == "mean_std":
        x = (x - torch.tensor(norm["mean"]).reshape(1, -1, 1, 1)) / torch.tensor(norm["std"]).reshape(1, -1, 1, 1)
    return x.permute(0, 2, 3, 1).contiguous() if layout == "NHWC" else x


def torch_module(src_path, input_shape, layout, log=print):
    """SRC as a torch module whose initializers are parameters, batch kept symbolic."""
    import onnx2torch
    tm = onnx2torch.convert(prepare_onnx(onnx.load(src_path), log=log)).eval()
    static_reshapes(tm, exporter.graph_shape(input_shape, layout))
    static_squeezes(tm)
    return initializers_to_parameters(tm)


def export_onnx(src_path, out_dir, name, *, input_shape, class_names, normalization, verify_x,
                verify_y, layout=None, dataset=None, module=None, resize=None, log=print):
    """SRC_PATH (a forward ONNX) -> OUT_DIR/NAME.onnx (SRC with metadata) + NAME.grad.onnx.
    module: SRC already converted by torch_module (else it is converted here)."""

    src = onnx.load(src_path)
    get = lambda k: metadata.read(src).get(metadata.PREFIX + k)  # noqa: E731
    input_name, layout = graph_input(src, input_shape, layout)
    tm = module if module is not None else torch_module(src_path, input_shape, layout, log=log)
    producer = " ".join(v for v in (src.producer_name, src.producer_version) if v) or "unknown"
    return exporter.export(
        tm, out_dir, name, input_shape=input_shape, class_names=class_names,
        normalization=normalization, verify_x=verify_x, verify_y=verify_y, layout=layout,
        input_name=input_name, forward=src, framework=get("framework") or producer,
        checkpoint_epoch=get("checkpoint_epoch"), epochs_total=get("epochs_total"),
        dataset=dataset or get("dataset"),
        test_top1=float(get("test_top1")) if get("test_top1") else None,
        extra={"source": os.path.basename(src_path), **({"resize": resize} if resize else {})},
        log=log)

