"""The backward decompositions against autograd, including the awkward pooling cases.

    python export/tests/test_decomps.py
"""
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from infoutil_export import decomps  # noqa: E402


def _grad(f, x, go):
    x = x.clone().requires_grad_(True)
    return torch.autograd.grad(f(x), x, go)[0]


def check_max_pool():
    worst = 0.0
    for k, s, p, d, ceil, H, W in MAX_POOL_CASES:
        for relu in (False, True):
            x = _pool_input(H, W, relu)
            f = lambda t: F.max_pool2d(t, k, s, p, d, ceil_mode=ceil)
            go = torch.randn_like(f(x))
            ref = _grad(f, x, go)
            idx = torch.ops.aten.max_pool2d_with_indices.default(x, [k], [s], [p], [d], ceil)[1]
            got = decomps.max_pool2d_backward(go, x, [k], [s], [p], [d], ceil, idx)
            err = (ref - got).abs().max().item()
            assert err < 1e-6, (k, s, p, d, ceil, H, W, relu, err)
            worst = max(worst, err)
    return worst


MAX_POOL_CASES = [  # k, s, p, d, ceil, H, W
    (2, 2, 0, 1, False, 8, 8), (2, 2, 0, 1, False, 7, 9), (3, 2, 1, 1, False, 16, 16),
    (3, 2, 1, 1, True, 15, 14), (3, 1, 1, 1, False, 6, 6), (2, 1, 0, 2, False, 9, 9),
    (3, 3, 0, 1, True, 10, 11),
    # positions no window reads (stride > kernel; dilation a multiple of the stride)
    (2, 3, 0, 1, False, 10, 10), (3, 2, 1, 2, False, 12, 12),
]


def _pool_input(H, W, relu):
    x = torch.randn(2, 3, H, W)
    x = x.clamp_min(0) if relu else x   # after a ReLU many windows tie at zero
    return x.round(decimals=1)          # ties at non-zero values too


def check_max_pool_onnx():
    """The max-pool backward as the gradient graph has it: traced with the decompositions, exported
    (the MaxPool's indices by torch_onnx's translation, made per-plane there) and run on ONNX
    Runtime, against autograd, for a batch other than the traced one."""
    from torch.fx.experimental.proxy_tensor import make_fx
    from infoutil_export import numerics, torch_onnx
    worst = 0.0
    for k, s, p, d, ceil, H, W in MAX_POOL_CASES:
        f = lambda t: F.max_pool2d(t, k, s, p, d, ceil_mode=ceil)

        def backward(x, go):
            with torch.enable_grad():
                x = x.detach().requires_grad_(True)
                return torch.autograd.grad(f(x), x, go)[0]
        x = torch.cat([_pool_input(H, W, relu) for relu in (False, True)])
        go = torch.randn_like(f(x))
        gm = make_fx(backward, tracing_mode="symbolic", _allow_non_fake_inputs=True,
                     decomposition_table=decomps.decomposition_table())(x, go)
        proto = torch_onnx.onnx_export(gm, (x, go), ["x", "go"], ["gi"])
        sess = numerics.ort_session(proto.SerializeToString())
        x3, go3 = torch.cat([x, x[:2]]), torch.cat([go, go[:2] * 2])
        got = sess.run(None, {"x": x3.numpy(), "go": go3.numpy()})[0]
        ref = _grad(f, x3, go3).numpy()
        err = abs(got - ref).max()
        assert err < 1e-6, (k, s, p, d, ceil, H, W, err)   # overlaps summed in another order
        assert not {n.op_type for n in proto.graph.node} & {"ScatterElements", "ScatterND"}
        worst = max(worst, err)
    return worst


def check_avg_pool():
    worst = 0.0
    cases = [(2, 2, 0, True, 7), (2, 2, 0, True, 28), (3, 2, 1, True, 9), (3, 1, 1, True, 8),
             (3, 2, 0, True, 11), (2, 2, 0, False, 14)]
    for k, s, p, cip, H in cases:
        x = torch.randn(3, 4, H, H)
        f = lambda t: F.avg_pool2d(t, k, s, p, count_include_pad=cip)
        go = torch.randn_like(f(x))
        ref = _grad(f, x, go)
        got = decomps.avg_pool2d_backward(go, x, [k], [s], [p], False, cip, None)
        err = (ref - got).abs().max().item()
        assert err < 1e-6, (k, s, p, H, err)
        worst = max(worst, err)
    for H, o in ((8, 2), (12, 3), (7, 7)):
        x = torch.randn(2, 3, H, H)
        f = lambda t: F.adaptive_avg_pool2d(t, o)
        go = torch.randn_like(f(x))
        got = decomps.adaptive_avg_pool2d_backward(go, x)
        worst = max(worst, (_grad(f, x, go) - got).abs().max().item())
    return worst


def check_conv():
    """Every route of the input gradient: stride 1 (a flipped-kernel Conv, grouped too, and
    padding beyond the kernel, which keeps the ConvTranspose), strided (a ConvTranspose: both
    parities of the size, kernels smaller than the stride, non-square, dilated); depthwise and
    grouped."""
    worst = 0.0
    cases = [  # (kh, kw), (sy, sx), (py, px), d, (H, W), groups
        ((3, 3), (1, 1), (1, 1), 1, (8, 8), 1), ((3, 3), (2, 2), (1, 1), 1, (9, 9), 1),
        ((1, 1), (2, 2), (0, 0), 1, (8, 8), 1), ((7, 7), (2, 2), (3, 3), 1, (16, 16), 1),
        ((3, 3), (1, 1), (2, 2), 2, (10, 10), 1), ((3, 3), (2, 2), (1, 1), 1, (8, 8), 1),
        ((3, 3), (2, 2), (1, 1), 1, (7, 10), 4), ((3, 3), (1, 1), (1, 1), 1, (7, 6), 4),
        ((3, 3), (2, 2), (1, 1), 1, (12, 12), 2), ((2, 2), (3, 3), (0, 0), 1, (11, 10), 1),
        ((1, 3), (2, 3), (0, 1), 1, (9, 13), 1), ((5, 5), (3, 2), (2, 1), 1, (13, 12), 1),
        ((3, 3), (1, 1), (3, 3), 1, (6, 6), 1), ((3, 3), (2, 2), (1, 1), 2, (11, 11), 4),
        ((4, 4), (4, 4), (0, 0), 1, (16, 17), 1),
    ]
    for k, s, p, d, (H, W), groups in cases:
        x = torch.randn(2, 4, H, W)
        w = torch.randn(4 if groups == 4 else 6, 4 // groups, *k)
        f = lambda t: F.conv2d(t, w, None, s, p, d, groups)
        go = torch.randn_like(f(x))
        gi, _, gb = decomps.convolution_backward(go, x, w, [w.shape[0]], list(s), list(p), [d],
                                                 False, [0, 0], groups, [True, False, True])
        ref = _grad(f, x, go)
        err = max((ref - gi).abs().max().item() / ref.abs().max().item(),
                  (go.sum([0, 2, 3]) - gb).abs().max().item() / gb.abs().max().item())
        assert gi.shape == x.shape and err < 1e-6, (k, s, p, d, H, W, groups, err)
        worst = max(worst, err)
    return worst


def check_constant_pad_nd():
    """Negative amounts (a crop) as a Slice and a Pad of the rest, against aten itself."""
    x = torch.randn(2, 3, 7, 6)
    worst = 0.0
    for pad in ([0, -1, 0, -1], [1, -2, -1, 0], [-1, -1, 2, 1], [0, 0, -3, 0], [2, -1]):
        ref = torch.ops.aten.constant_pad_nd.default(x, pad, 0.5)
        got = decomps.constant_pad_nd(x, pad, 0.5)
        assert got.shape == ref.shape, (pad, got.shape, ref.shape)
        worst = max(worst, (got - ref).abs().max().item())
    assert decomps.constant_pad_nd(x, [1, 0, 0, 2]) is NotImplemented   # left to aten
    assert worst == 0.0, worst
    return worst


def check_select_backward():
    """x.select(dim, index) backward (a class token) as a Pad, against autograd; every dim and
    index, negative ones too."""
    x = torch.randn(2, 5, 4, 3)
    worst = 0.0
    for dim in range(-4, 4):
        for index in (0, 2, -1):
            if index >= x.shape[dim]:
                continue
            f = lambda t: t.select(dim, index)
            go = torch.randn_like(f(x))
            ref = _grad(f, x, go)
            got = decomps.select_backward(go, list(x.shape), dim, index)
            assert got.shape == ref.shape, (dim, index, got.shape)
            worst = max(worst, (got - ref).abs().max().item())
    assert worst == 0.0, worst
    return worst


def check_activation_masks():
    """ReLU's and ReLU6's backward as a Cast and a Mul, against autograd, to the bit: inputs on
    the boundaries themselves (0 and 6, where the gradient is 0) and either side of them."""
    edges = torch.tensor([-1.0, -1e-30, 0.0, 1e-30, 1.0, 6.0 - 1e-6, 6.0, 6.0 + 1e-6, 7.0])
    x = torch.cat([edges, torch.randn(400) * 4]).reshape(1, 1, 409)
    go = torch.randn_like(x)
    for name, f, got in (
            ("relu", F.relu, lambda: decomps.threshold_backward(go, F.relu(x), 0.0)),
            ("relu6", F.relu6, lambda: decomps.hardtanh_backward(go, x, 0.0, 6.0)),
            ("hardtanh", lambda t: F.hardtanh(t, -1.0, 1.0),
             lambda: decomps.hardtanh_backward(go, x, -1.0, 1.0))):
        ref = _grad(f, x, go)
        assert torch.equal(got(), ref), (name, (got() - ref).abs().max())
    return 0.0


if __name__ == "__main__":
    torch.manual_seed(0)
    print(f"max_pool2d_backward max abs err {check_max_pool():.3g}")
    print(f"max_pool2d_backward exported, on ONNX Runtime, max abs err {check_max_pool_onnx():.3g}")
    print(f"avg_pool2d_backward max abs err {check_avg_pool():.3g}")
    print(f"convolution_backward max rel err {check_conv():.3g}")
    print(f"constant_pad_nd with negative pads max abs err {check_constant_pad_nd():.3g}")
    print(f"select_backward as a Pad max abs err {check_select_backward():.3g}")
    print(f"ReLU, ReLU6, Hardtanh backward masks max abs err {check_activation_masks():.3g}")
    print("ok")
