"""The Grad-CAM graph, NAME.cam.onnx: (x, y) -> (activations, gradients) at one layer.

Contract (the Rust side reads exactly this):
  inputs   the image input, same name and layout as the forward graph (dynamic batch N), and
           y int64 [N], the class whose logit is explained;
  outputs  activations float32 [N, K, h, w], the chosen module's output A (channels-first, as
           PyTorch computes it, whatever the input layout), and
           gradients float32 [N, K, h, w] = d logit[n, y[n]] / d A[n], per sample (eval mode:
           samples do not interact, so the gradient of sum_n logit[n, y[n]] gives each its own);
  metadata the forward graph's infoutil.* keys (same weights_sha256), role "cam", and
           infoutil.cam_layer = the module's name in named_modules().

The layer: a module name, or by default the last module run after the last nn.Conv2d whose
output has that conv's spatial size (the block's BatchNorm / ReLU, before any pooling: relu3 for
ConvNet-3). Module order is the order in which forward hooks fire (a module finishes after its
children); a module run more than once counts by its last call, and so does its captured output.
"""
import torch
import torch.nn as nn
from torch.fx.experimental.proxy_tensor import make_fx
from torch.overrides import TorchFunctionMode

from . import decomps, ghost
from .torch_onnx import onnx_export

aten = torch.ops.aten


class CamLayerError(ValueError):
    """The requested (or default) layer cannot serve Grad-CAM; the message says why."""


def _shape(out):
    return list(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__


def module_calls(model, x):
    """Run model(x) with a forward hook on every module: [(name, module, output shape or type
    name)] in the order the hooks fired, each module once, at its LAST call."""
    calls = {}
    counter = [0]
    handles = []

    def hook_for(name):
        def hook(mod, inp, out):
            counter[0] += 1
            calls[name] = (counter[0], mod, _shape(out))
        return hook

    for name, mod in model.named_modules():
        handles.append(mod.register_forward_hook(hook_for(name)))
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return [(name, mod, shape) for name, (_, mod, shape) in
            sorted(calls.items(), key=lambda kv: kv[1][0])]


def _type_summary(calls, limit=12):
    counts = {}
    for _, mod, _ in calls:
        counts[type(mod).__name__] = counts.get(type(mod).__name__, 0) + 1
    items = sorted(counts.items(), key=lambda kv: -kv[1])
    text = ", ".join(f"{k} x{v}" if v > 1 else k for k, v in items[:limit])
    return text + (f", ... ({len(items) - limit} more types)" if len(items) > limit else "")


def find_layer(model, input_shape, layer=None):
    """The module Grad-CAM reads: `layer` (a name from named_modules()) checked, or the default
    rule. input_shape: the model's own input shape without N. Returns (name, output shape of one
    sample [K, h, w]). Raises CamLayerError naming what was found."""
    x = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(0))
    calls = module_calls(model, x)
    names = dict(model.named_modules())
    if layer is not None:
        if layer not in names:
            convs = [n for n, m in names.items() if isinstance(m, nn.Conv2d)]
            raise CamLayerError(
                f"--layer {layer!r}: no module of that name in the model (named_modules()); "
                f"its Conv2d modules are {convs[-8:] if convs else 'none'}"
                f"{' (last 8)' if len(convs) > 8 else ''}, and the last modules run in forward "
                f"are {[n or '(root)' for n, _, _ in calls[-8:]]}")
        ran = {n: s for n, _, s in calls}
        if layer not in ran:
            raise CamLayerError(f"--layer {layer!r} ({type(names[layer]).__name__}) never runs in "
                                "forward, so it has no activations to explain")
        shape = ran[layer]
        if not (isinstance(shape, list) and len(shape) == 4):
            raise CamLayerError(f"--layer {layer!r} ({type(names[layer]).__name__}) outputs "
                                f"{shape}, not a 4-D [N, K, h, w] tensor; Grad-CAM needs a "
                                "convolutional feature map")
        return layer, shape[1:]
    convs = [i for i, (_, mod, _) in enumerate(calls) if isinstance(mod, nn.Conv2d)]
    if not convs:
        raise CamLayerError(f"no nn.Conv2d runs in forward (the {len(calls)} modules run are: "
                            f"{_type_summary(calls)}); give --layer NAME, a module whose output "
                            "is a 4-D [N, K, h, w] feature map")
    i = convs[-1]
    conv_name, _, conv_shape = calls[i]
    if not (isinstance(conv_shape, list) and len(conv_shape) == 4):
        raise CamLayerError(f"the last Conv2d, {conv_name!r}, outputs {conv_shape}, not 4-D")
    same = [j for j in range(i, len(calls)) if isinstance(calls[j][2], list)
            and len(calls[j][2]) == 4 and calls[j][2][0] == conv_shape[0]
            and calls[j][2][2:] == conv_shape[2:]]
    name, _, shape = calls[same[-1]]
    return name, shape[1:]


class _Substitute(TorchFunctionMode):
    """ghost.SUBSTITUTE while tracing (global average pooling as a mean: no as_strided_scatter
    in the backward of a channels-last pooled map)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        return ghost.SUBSTITUTE.get(func, func)(*args, **(kwargs or {}))


class CamGraph(nn.Module):
    """forward(x, y) -> (A, dlogit_y/dA). `model`: a prepared copy (exporter.prepare_model:
    eval, float32, frozen, in-place activations off). The hook keeps the module's output A and
    hands the rest of the network a copy, so an in-place op downstream (`out += identity`)
    cannot change A. The backward is seeded with onehot(y) over the logits (the same as
    differentiating logits.gather(1, y[:, None]).sum(), without Gather / Scatter in the graph)."""

    def __init__(self, model, layer):
        super().__init__()
        self.model = model
        self.layer = layer
        self.target = dict(model.named_modules())[layer]

    def forward(self, x, y):
        from torch.nn.attention import SDPBackend, sdpa_kernel
        store = {}

        def hook(mod, inp, out):
            store["a"] = out
            return out.clone()

        handle = self.target.register_forward_hook(hook)
        try:
            # parameters are frozen: x carries requires_grad so that A joins the graph
            with torch.enable_grad(), sdpa_kernel([SDPBackend.MATH]), _Substitute():
                logits = self.model(x.detach().requires_grad_(True))
                a = store["a"]
                onehot = (torch.arange(logits.shape[1], device=logits.device)[None, :]
                          == y[:, None]).to(logits.dtype)
                g, = torch.autograd.grad(logits, a, grad_outputs=onehot)
        finally:
            handle.remove()
        return a.detach(), g


def _avg_pool2d_backward(grad_output, self, kernel_size, stride, padding, ceil_mode,
                         count_include_pad, divisor_override=None):
    """decomps.avg_pool2d_backward, but non-overlapping windows as an Expand instead of a Mul
    by a broadcast ones tensor. With the Mul, ConvNet-3's cam graph (MatMul of onehot(y) and the
    classifier weight -> Reshape -> Div -> Reshape -> Mul(ones [1,1,1,2,1,2]) -> Reshape -> Pad,
    the output) fails to load on tract 0.23.9: "fuse node #47 node_div.prefused OptMatMul: Trying
    to substitute a 16,128,3,2,3,2 by 16,128,3,1,3,1 as output #0 of node_mul" (it drops the
    broadcast of the uniform ones). The gradient graph holds the same chain after its classifier
    MatMul and loads, so what triggers it here is not pinned down (here the chain runs straight
    into an output); the gradient graph keeps the Mul, which ONNX Runtime runs faster than a
    6-D Expand."""
    k = decomps._pair(kernel_size)
    s = decomps._pair(stride, k)
    p = decomps._pair(padding)
    if ceil_mode or k != s or p != [0, 0]:
        return decomps.avg_pool2d_backward(grad_output, self, kernel_size, stride, padding,
                                           ceil_mode, count_include_pad, divisor_override)
    N, C, H, W = self.shape
    Ho, Wo = grad_output.shape[2], grad_output.shape[3]
    g = grad_output / float(divisor_override or k[0] * k[1])
    g = g.reshape(N, C, Ho, 1, Wo, 1).expand(-1, -1, -1, k[0], -1, k[1])
    g = g.reshape(N, C, Ho * k[0], Wo * k[1])
    if Ho * k[0] != H or Wo * k[1] != W:  # floor mode: trailing rows/cols get no gradient
        g = aten.constant_pad_nd.default(g, [0, W - Wo * k[1], 0, H - Ho * k[0]], 0.0)
    return g


def _adaptive_avg_pool2d_backward(grad_output, self):
    N, C, H, W = self.shape
    Ho, Wo = grad_output.shape[2], grad_output.shape[3]
    if H % Ho or W % Wo:
        return decomps.adaptive_avg_pool2d_backward(grad_output, self)   # refuses
    k = [H // Ho, W // Wo]
    return _avg_pool2d_backward(grad_output, self, k, k, [0, 0], False, True, None)


def decomposition_table():
    """The gradient graph's decompositions (decomps.py), with the average-pooling backwards
    that tract runs after a MatMul."""
    table = decomps.decomposition_table()
    table[aten.avg_pool2d_backward.default] = _avg_pool2d_backward
    table[aten._adaptive_avg_pool2d_backward.default] = _adaptive_avg_pool2d_backward
    return table


def check_graph_module(model, layer, input_shape):
    """Run CamGraph eagerly once; a layer the logits do not depend on is refused here."""
    x = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(0))
    y = torch.zeros(2, dtype=torch.int64)
    try:
        a, g = CamGraph(model, layer)(x, y)
    except RuntimeError as e:
        raise CamLayerError(f"layer {layer!r}: the logits cannot be differentiated with respect "
                            f"to its output ({str(e).splitlines()[0]})") from e
    return a, g


def cam_proto(model, shape, layer, input_name="x"):
    """make_fx (symbolic batch, the project's decompositions) of CamGraph, then the dynamo ONNX
    exporter, as exporter.grad_proto does for the gradient graph."""
    check_graph_module(model, layer, shape)
    x4 = torch.zeros(4, *shape)
    y4 = torch.zeros(4, dtype=torch.int64)
    gm = make_fx(CamGraph(model, layer), tracing_mode="symbolic",
                 decomposition_table=decomposition_table(), _allow_non_fake_inputs=True)(x4, y4)
    return onnx_export(gm, (x4, y4), [input_name, "y"], ["activations", "gradients"])
