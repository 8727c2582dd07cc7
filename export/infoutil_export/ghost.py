"""Per-sample gradient norms over ALL parameters, without per-sample gradients of the big tensors.

In eval mode the samples of a batch are independent, so one batched backward of the loss with
respect to the OUTPUT of every operation that reads a parameter gives every sample's own output
gradient g_n. The per-sample gradient of that parameter is then a closed form of the operation's
other inputs and g_n, so no module type needs to be known: the rules are keyed by the torch
FUNCTION that reads the parameter, found by intercepting every torch call during the forward
(a TorchFunctionMode). The same rules serve torchvision, timm, a hand-written model and a graph
converted from ONNX (Keras, JAX), whose parameters are initializers read by MatMul / Add / Mul.

  linear, matmul  dW_n = G_n^T A_n over the token dims: |dW_n|^2 by the product or the Gram form
  conv1d/conv2d   any groups, stride, padding (also "same"), dilation: dW_n = G_n U_n^T per group,
                  U_n = im2col(a_n); the product or the Gram form, whichever is cheaper
  batch_norm      dgamma_n = sum g_n * xhat_n, dbeta_n = sum g_n (running statistics)
  layer_norm,     the same with the sample's own statistics
  group_norm
  elementwise     add, sub, mul, div, where, expand, ... with the parameter broadcast over the
                  batch: the op is re-run with a per-sample copy of the parameter and autograd
                  gives its per-sample gradient (small tensors: biases, scales, tokens)
  embedding,      row lookups out[n, t] = W[idx[n, t]] with per-sample indices (F.embedding,
  W[idx]          torch.embedding; W[idx] / W[:, idx], which is what onnx2torch makes of an ONNX
                  Gather on an initializer): |dW_n|^2 = sum_{t,t'} [idx_t = idx_t'] <g_t, g_t'>,
                  a Gram form with an equality mask, exact with repeated tokens (or the one-hot
                  product when the table has no more rows than the sample has tokens);
                  padding_idx's row gets no gradient; scale_grad_by_freq divides each token by
                  its index's count in the sample (PyTorch's backward of that sample alone);
                  max_norm is refused before the call runs (it renormalises the weight in place)
  prelu           torch.prelu (= F.prelu, nn.PReLU), one weight or one per channel (dim 1):
                  dW_n[c] = sum over channel c of g_n * min(a_n, 0)

Parameter-free operations (activations, padding, pooling, attention's softmax, residual adds...)
need nothing: autograd differentiates them. A pure rearrangement of a parameter (view, transpose,
basic slicing, and a lookup with constant indices that are all different, e.g. position ids held
in a buffer) keeps its identity. Anything else that reads a parameter is refused by name.

While the gradient graph is traced, F.adaptive_avg_pool2d to 1 x 1 runs as the mean over H, W
(SUBSTITUTE): ATen restrides a channels-last input's pooled result in place (as_strided_), whose
backward, an as_strided_scatter, has no ONNX translation (ConvNeXt's blocks end in a permute).
"""
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

T = torch.Tensor


class UnsupportedModelError(ValueError):
    pass


# ---------------------------------------------------------------------------------------------
# where the batch is


def _is_batch(d, n):
    from torch.fx.experimental.symbolic_shapes import statically_known_true
    return d is n or statically_known_true(d == n)


def _batch_first(t, n):
    """t with its batch dimension moved to the front, or None when no single dim is the batch."""
    dims = [i for i, d in enumerate(t.shape) if _is_batch(d, n)]
    if len(dims) != 1 or any(not _is_batch(d, n) and _mentions(d, n) for d in t.shape):
        return None
    return t if dims[0] == 0 else t.movedim(dims[0], 0)


def _mentions(d, n):
    """A size that is an expression of the (symbolic) batch, e.g. T * N after a merge."""
    syms = getattr(getattr(d, "node", None), "expr", None)
    base = getattr(getattr(n, "node", None), "expr", None)
    return syms is not None and base is not None and bool(syms.free_symbols & base.free_symbols)


# ---------------------------------------------------------------------------------------------
# closed forms


# What a float64 multiply-add of the Gram forms costs against a float32 one of the product form,
# casts and transposes included: ONNX Runtime's CPU MatMul runs float64 at about a third of
# float32's rate (7.4 against 22.8 GMAC/s on 2 cores, the [16, 2304, 196] x [196, 256] of
# ResNet-18's layer3), and the operands are cast and transposed at twice the bytes.
F64_COST = 4
# What one kernel offset of _activation_gram_sq costs per entry of its [L, L] Gram, in float32
# product-form multiply-adds: the strided slices of P (one per spatial dim, each materialised),
# the product and the sum, on float64: ~2.9 ns an entry against ~0.04 ns a multiply-add of the
# product's matmul (ONNX Runtime, ResNet-18's layer3 at 224 px, 2 cores). So the form only wins
# where L is small (layer4 at 224 px: 49 positions), not at L = 196 (layer3).
OFFSET_COST = 400


def _product_sq(G, U):
    """|G U^T|^2 per sample by the product itself, in float32: its error grows as eps * R (see
    _gram_sq), as autograd's does."""
    # |G U^T| = |U G^T|: transpose the smaller of the two (a conv's U is kh*kw times the
    # larger), in case the runtime materialises the transposed operand. On 3-D operands
    # ([N*B, ., L]) so that the Transpose feeds the MatMul directly: a 4-D matmul is exported as
    # Transpose, Reshape, MatMul, which ONNX Runtime does not fuse, and its transposes then took
    # ~3 % of ResNet-18's 224-px gradient graph; fused, MatMul reads the operand transposed.
    # bmm, not matmul: matmul broadcasts its batch dimensions first, and where the batch N*B is
    # symbolic (a depthwise conv's B = C groups) that is an Expand to a shape computed at run
    # time, which copies the whole unfold (22 % of MobileNetV2's 224-px graph)
    N = G.shape[0]
    G3, U3 = G.flatten(0, 1), U.flatten(0, 1)
    if U.shape[2] > G.shape[2]:
        return torch.bmm(U3, G3.transpose(1, 2)).pow(2).reshape(N, -1).sum(1)
    return torch.bmm(G3, U3.transpose(1, 2)).pow(2).reshape(N, -1).sum(1)


def _gram_sq(G, U):
    """|G U^T|^2 per sample by the Gram form <G^T G, U^T U>, in float64: it sums L^2 products
    that cancel down to |G U^T|^2 wherever the per-position terms g_l u_l^T cancel (a uniform
    background under a gradient of both signs), so its float32 error grows as eps * R^2,
    R = sum_l |g_l| |u_l| / |G U^T|, where the product form's (and autograd's) grows as eps * R:
    at R ~ 700, 1.4e-3 against 1.7e-6. In float64 it is as accurate as its float32 inputs allow.
    Only these two matmuls pay for it."""
    N = G.shape[0]
    Gd, Ud = G.flatten(0, 1).double(), U.flatten(0, 1).double()   # 3-D, bmm: see _product_sq
    gram = torch.bmm(Gd.transpose(1, 2), Gd) * torch.bmm(Ud.transpose(1, 2), Ud)
    return gram.reshape(N, -1).sum(1).to(G.dtype)


def _frobenius_sq_of_product(G, U, max_materialised=1 << 20):
    """|G U^T|^2 per sample for G [N, B, O, L], U [N, B, K, L] (B independent blocks, e.g. conv
    groups): materialise the [O, K] products or use the Gram form <G^T G, U^T U> ([L, L]),
    whichever costs less (the Gram form's multiply-adds are float64 ones, F64_COST each), unless
    the products would exceed max_materialised values per sample (memory at large batches)."""
    B, O, K, L = G.shape[1], G.shape[2], U.shape[2], U.shape[3]
    if O * K * L <= F64_COST * L * L * (O + K) and B * O * K <= max_materialised:
        return _product_sq(G, U)
    return _gram_sq(G, U)


def _sq(t):
    """|t_n|^2 per sample of [N, ...]; [N] is the per-sample gradient of a 0-d parameter (a
    scalar initializer, e.g. the divisor of a mean that jax2onnx lowers to ReduceSum / Div)."""
    return t.pow(2) if t.dim() == 1 else t.flatten(1).pow(2).sum(1)


def _arg(args, kwargs, i, name, default=None):
    if name in kwargs:
        return kwargs[name]
    return args[i] if len(args) > i else default


def rule_linear(use, g):
    """F.linear(a, W, b): a [N, ..., in], W [out, in]."""
    a = _batch_first(_arg(use.args, use.kwargs, 0, "input").detach(), use.n)
    g = _batch_first(g, use.n)
    if a is None or g is None:
        return use.refuse("its input has no single batch dimension (samples merged with tokens?)")
    N = a.shape[0]
    A = a.reshape(N, 1, -1, a.shape[-1]).transpose(-1, -2)   # [N, 1, in, T]
    G = g.reshape(N, 1, -1, g.shape[-1]).transpose(-1, -2)   # [N, 1, out, T]
    out = {}
    for pos, key in use.params:
        if pos == (1,) or pos == ("weight",):
            out[key] = ("sq", _frobenius_sq_of_product(G, A))
        else:
            out[key] = ("grad", G.sum(-1).reshape(N, -1))
    return out


def rule_matmul(use, g):
    """matmul(a, W) with W [in, out] a parameter (Keras's Dense), or matmul(W, a)."""
    (pos, key), = use.params
    if use.args[pos[0]].dim() != 2:
        return use.refuse("only a 2-D parameter matrix has a per-sample rule in matmul")
    a = _batch_first(use.args[1 - pos[0]].detach(), use.n)
    g = _batch_first(g, use.n)
    if a is None or g is None or a.dim() < 2:
        return use.refuse("its other input has no single batch dimension")
    N = a.shape[0]
    if pos[0] == 1:   # out = a W: rows are tokens, columns features
        A = a.reshape(N, 1, -1, a.shape[-1]).transpose(-1, -2)
        G = g.reshape(N, 1, -1, g.shape[-1]).transpose(-1, -2)
    else:             # out = W a: columns are tokens
        A = a.reshape(N, 1, a.shape[-2], -1)
        G = g.reshape(N, 1, g.shape[-2], -1)
    return {key: ("sq", _frobenius_sq_of_product(G, A))}


def _conv_padding(padding, k, dilation):
    """Explicit (F.pad amounts, symmetric conv padding) for an int/tuple or "same"/"valid"."""
    nd = len(k)
    if padding == "valid":
        return None, [0] * nd
    if padding == "same":
        total = [dilation[i] * (k[i] - 1) for i in range(nd)]
        lo = [t // 2 for t in total]
        if all(t % 2 == 0 for t in total):
            return None, lo
        pads = []
        for i in reversed(range(nd)):
            pads += [lo[i], total[i] - lo[i]]
        return pads, [0] * nd
    p = list(padding) if isinstance(padding, (tuple, list)) else [padding] * nd
    return None, p


def _tuple(v, nd):
    return list(v) if isinstance(v, (tuple, list)) else [v] * nd


def rule_conv(use, g):
    """F.conv1d / F.conv2d(a, W, b, stride, padding, dilation, groups), any groups."""
    args, kw = use.args, use.kwargs
    a = _arg(args, kw, 0, "input").detach()
    W = _arg(args, kw, 1, "weight")
    nd = W.dim() - 2
    if nd == 1:   # conv1d as a conv2d over [N, C, 1, L]
        a, g = a.unsqueeze(2), g.unsqueeze(2)
    stride = _tuple(_arg(args, kw, 3, "stride", 1), nd)
    dilation = _tuple(_arg(args, kw, 5, "dilation", 1), nd)
    groups = _arg(args, kw, 6, "groups", 1)
    k = list(W.shape[2:])
    pads, padding = _conv_padding(_arg(args, kw, 4, "padding", 0), k, dilation)
    if nd == 1:
        stride, dilation, padding, k = [1] + stride, [1] + dilation, [0] + padding, [1] + k
        pads = None if pads is None else pads + [0, 0]
    if pads is not None:
        a = F.pad(a, pads)
    N, O = a.shape[0], W.shape[0]
    Gm = g.reshape(N, groups, O // groups, -1)                # [N, G, O/G, L]
    out = {}
    for pos, key in use.params:
        if pos in ((1,), ("weight",)):
            out[key] = ("sq", _conv_weight_sq(a, Gm, k, stride, padding, dilation, g.shape[2:]))
        else:
            out[key] = ("grad", Gm.sum(-1).reshape(N, O))
    return out


def _unfold(a, k, stride, padding, dilation, groups):
    """im2col of a [N, C, H, W]: [N, G, C/G*kh*kw, L], as a grouped conv with one-hot kernels."""
    N, C = a.shape[0], a.shape[1]
    kk = k[0] * k[1]
    eye = torch.eye(kk, dtype=a.dtype, device=a.device).reshape(kk, 1, k[0], k[1])
    U = F.conv2d(a, eye.repeat(C, 1, 1, 1), None, stride, padding, dilation, groups=C)
    return U.reshape(N, groups, (C // groups) * kk, -1)


def _conv_weight_sq(a, Gm, k, stride, padding, dilation, out_hw, max_materialised=1 << 20):
    """|dW_n|^2 of a conv, a [N, C, H, W] its (explicitly padded) input, Gm [N, G, O/G, L] its
    output gradient, by the cheapest of three forms (per-sample multiply-adds; float64 ones cost
    F64_COST): the product G U^T, the Gram form over the unfold U (both _frobenius_sq_of_product),
    or the Gram form over the activation itself (_activation_gram_sq), which never unfolds and
    wins where the image is small and the channels many (ResNet's last stages at 224 px)."""
    N, B, Og, L = Gm.shape
    C, kk = a.shape[1], k[0] * k[1]
    Kg = C // B * kk
    hw_p = (a.shape[2] + 2 * padding[0]) * (a.shape[3] + 2 * padding[1])
    product = B * Og * Kg * L if B * Og * Kg <= max_materialised else float("inf")
    gram = F64_COST * B * L * L * (Og + Kg)
    act = F64_COST * (C * hw_p * hw_p + B * Og * L * L) + OFFSET_COST * B * kk * L * L \
        if B * hw_p * hw_p <= max_materialised else float("inf")
    if act < min(product, gram):
        return _activation_gram_sq(a, Gm, k, stride, padding, dilation, out_hw)
    return _frobenius_sq_of_product(Gm, _unfold(a, k, stride, padding, dilation, B),
                                    max_materialised)


def _activation_gram_sq(a, Gm, k, stride, padding, dilation, out_hw):
    """The Gram form without the unfold: U^T U [L, L] sums, over the kernel offsets (i, j), the
    Gram P = A^T A of the padded activation ([H'W', H'W'] over the channels) at the positions the
    offset reads, P[s*l + d*(i, j), s*l' + d*(i, j)]; so |dW_n|^2 = sum_ij <G^T G, P_ij>, in
    float64 for the reason _gram_sq gives. Costs C (H'W')^2 + O L^2 multiply-adds, against
    (C kh kw + O) L^2 over the unfold and O C kh kw L for the product."""
    N, B = Gm.shape[0], Gm.shape[1]
    Ho, Wo = int(out_hw[0]), int(out_hw[1])
    if any(padding):
        a = F.pad(a, [padding[1], padding[1], padding[0], padding[0]])
    Hp, Wp = a.shape[2], a.shape[3]
    A = a.reshape(N * B, -1, Hp * Wp)
    P = torch.matmul(A.transpose(1, 2).double(), A.double()).reshape(N * B, Hp, Wp, Hp, Wp)
    G = Gm.reshape(N * B, -1, Ho * Wo)
    GG = torch.matmul(G.transpose(1, 2).double(), G.double()).reshape(N * B, Ho, Wo, Ho, Wo)
    total = None
    for i in range(k[0]):
        for j in range(k[1]):
            y, x = i * dilation[0], j * dilation[1]
            ys = slice(y, y + stride[0] * (Ho - 1) + 1, stride[0])
            xs = slice(x, x + stride[1] * (Wo - 1) + 1, stride[1])
            term = P[:, ys, xs, ys, xs] * GG
            total = term if total is None else total + term
    return total.sum((1, 2, 3, 4)).reshape(N, B).sum(1).to(Gm.dtype)


def _affine_grads(use, g, xhat, reduce_dims, weight_pos, bias_pos):
    out = {}
    for pos, key in use.params:
        if pos in weight_pos:
            out[key] = ("grad", (g * xhat).sum(reduce_dims) if reduce_dims else g * xhat)
        elif pos in bias_pos:
            out[key] = ("grad", g.sum(reduce_dims) if reduce_dims else g)
        else:
            return use.refuse("a parameter in a position other than weight or bias")
    return out


def rule_batch_norm(use, g):
    """F.batch_norm(a, running_mean, running_var, weight, bias, training, momentum, eps)."""
    args, kw = use.args, use.kwargs
    if _arg(args, kw, 5, "training", False):
        return use.refuse("batch statistics (training=True, or no running statistics): "
                          "eval-mode samples would not be independent")
    a = _arg(args, kw, 0, "input").detach()
    shape = [1, -1] + [1] * (a.dim() - 2)
    mean, var = _arg(args, kw, 1, "running_mean"), _arg(args, kw, 2, "running_var")
    xhat = (a - mean.reshape(shape)) * torch.rsqrt(var.reshape(shape) + _arg(args, kw, 7, "eps", 1e-5))
    return _affine_grads(use, g, xhat, list(range(2, a.dim())), ((3,), ("weight",)), ((4,), ("bias",)))


def rule_layer_norm(use, g):
    """F.layer_norm(a, normalized_shape, weight, bias, eps): a [N, ..., *normalized_shape]."""
    args, kw = use.args, use.kwargs
    a = _arg(args, kw, 0, "input").detach()
    shape = list(_arg(args, kw, 1, "normalized_shape"))
    xhat = F.layer_norm(a, shape, None, None, _arg(args, kw, 4, "eps", 1e-5))
    return _affine_grads(use, g, xhat, list(range(1, a.dim() - len(shape))),
                         ((2,), ("weight",)), ((3,), ("bias",)))


def rule_group_norm(use, g):
    """F.group_norm(a, num_groups, weight, bias, eps): a [N, C, ...]."""
    args, kw = use.args, use.kwargs
    a = _arg(args, kw, 0, "input").detach()
    xhat = F.group_norm(a, _arg(args, kw, 1, "num_groups"), None, None, _arg(args, kw, 4, "eps", 1e-5))
    return _affine_grads(use, g, xhat, list(range(2, a.dim())), ((2,), ("weight",)), ((3,), ("bias",)))


def _token_sq(idx, G, vocab, padding_idx=None, scale_grad_by_freq=False, max_materialised=1 << 20):
    """|dW_n|^2 for a row lookup out[n, t] = W[idx[n, t]] (embedding, ONNX Gather): idx [N, T]
    integer, G [N, T, D] the output gradient rows, vocab = W's row count. dW_n[v] = sum of G_n[t]
    over the tokens t with idx = v, so |dW_n|^2 = sum_{t,t'} [idx_t = idx_t'] <G_t, G_t'>: the
    Gram form with an equality mask (exact with repeated tokens; Equal and MatMul, no Scatter),
    or the one-hot product form when the vocabulary is no larger than the sequence. A padding
    row gets no gradient (its tokens are masked out); scale_grad_by_freq divides each token's row
    by its index's count in the sample (what PyTorch's backward gives the sample alone)."""
    if scale_grad_by_freq or vocab > idx.shape[1] or vocab * G.shape[2] > max_materialised:
        mask = (idx[:, :, None] == idx[:, None, :]).to(G.dtype)          # [N, T, T]
    else:
        mask = None
    if scale_grad_by_freq:
        G = G / mask.sum(2, keepdim=True)
    if padding_idx is not None:
        G = G * (idx != padding_idx).to(G.dtype)[:, :, None]
    if mask is None:   # one-hot [N, V, T] @ G: the per-sample gradient itself, V x D per sample
        onehot = (torch.arange(vocab, device=idx.device)[None, :, None] == idx[:, None, :]).to(G.dtype)
        return torch.matmul(onehot, G).pow(2).sum((1, 2))
    return (mask * torch.matmul(G, G.transpose(1, 2))).sum((1, 2))


def _lookup_sq(use, idx, g, vocab, trailing, padding_idx=None, scale_grad_by_freq=False):
    """A row lookup whose output is idx.shape + trailing (the looked-up rows' own dims): the batch
    must be a dim of idx; returns the ("sq", [N]) value."""
    dims = [i for i, d in enumerate(idx.shape) if _is_batch(d, use.n)]
    if len(dims) != 1:
        return None
    b = dims[0]
    idx, g = idx.movedim(b, 0), g.movedim(b, 0)
    N = idx.shape[0]
    return ("sq", _token_sq(idx.reshape(N, -1), g.reshape(N, idx[0].numel(), trailing), vocab,
                           padding_idx, scale_grad_by_freq))


def _lookup(func, args, kwargs, params, n):
    """How a call that looks rows of a parameter up (F.embedding, torch.embedding, W[...]) is
    handled, decided when it runs: "basic" (W[...] with ints and slices only: a rearrangement),
    "distinct" (indices that are constants without the batch, all different: the result's rows
    are the parameter's, a rearrangement too, e.g. position ids), "rule" (per-sample indices: the
    closed form), or why it is refused."""
    (pos, _), = params if len(params) == 1 else [((), None)]
    if func is T.__getitem__:
        if pos != (0,):
            return "a parameter used as an index"
        adv = _advanced_index(args[1])
        if adv is None:
            return "basic"
        if adv == "other":
            return ("advanced indexing other than one integer index tensor after full slices "
                    "(W[idx], W[:, idx])")
        axis, idx = adv
        size, pad = args[0].shape[axis], None
    else:
        torch_order = func is torch.embedding
        if pos not in (((0,), ("weight",)) if torch_order else ((1,), ("weight",))):
            return "a parameter in a position other than the weight"
        if not torch_order and _arg(args, kwargs, 3, "max_norm") is not None:
            return ("max_norm: F.embedding renormalises the looked-up rows of the weight in "
                    "place at every call, so each call computes with a different weight; export "
                    "with max_norm=None (after a forward pass has applied it, if it should)")
        idx = _arg(args, kwargs, 1 if torch_order else 0, "indices" if torch_order else "input")
        W = _get(args, kwargs, pos)
        size, pad = W.shape[0], _padding_idx(func, args, kwargs, W)
    if sum(_is_batch(d, n) for d in idx.shape) == 1:
        return "rule"
    values = _constant_values(idx)
    if values is not None:
        values = [v % size for v in values]
        if len(set(values)) == len(values) and pad not in values:
            return "distinct"
        return ("constant indices without the batch that repeat a row or hold the padding row "
                "(their rows' per-sample gradients would need a scatter)")
    return ("indices that neither have a single batch dimension nor are constants (position ids "
            "computed in the forward: keep them in a buffer, or expand them to [N, T]; or the "
            "batch merged with the tokens)")


def _constant_values(idx):
    """The values of an index tensor that is a real constant (a buffer, a converted graph's
    initializer) even while make_fx traces; None for one computed in the forward."""
    from torch._subclasses.fake_tensor import is_fake
    from torch.utils._python_dispatch import _disable_current_modes
    if is_fake(idx) or not all(isinstance(d, int) for d in idx.shape):
        return None
    try:
        with _disable_current_modes():
            return [int(v) for v in idx.reshape(-1).tolist()]
    except Exception:   # a tracer's tensor after all
        return None


def _padding_idx(func, args, kwargs, W):
    """The row that gets no gradient, as a non-negative index, or None."""
    if func is torch.embedding:
        pad = _arg(args, kwargs, 2, "padding_idx", -1)
        return None if pad is None or pad < 0 else pad
    pad = _arg(args, kwargs, 2, "padding_idx")
    return W.shape[0] + pad if pad is not None and pad < 0 else pad


def rule_embedding(use, g):
    """F.embedding(idx, W, padding_idx, max_norm, norm_type, scale_grad_by_freq, sparse), also
    torch.embedding(W, idx, padding_idx, scale_grad_by_freq, sparse): idx [N, T...] integer with
    the batch as one of its dims (max_norm is refused when the call runs, see _lookup)."""
    torch_order = use.func is torch.embedding
    (pos, key), = use.params
    args, kw = use.args, use.kwargs
    idx = _arg(args, kw, 1 if torch_order else 0, "indices" if torch_order else "input")
    W = _get(args, kw, pos)
    freq = _arg(args, kw, 3 if torch_order else 5, "scale_grad_by_freq", False)
    value = _lookup_sq(use, idx.detach(), g, W.shape[0], W[0].numel(),
                       _padding_idx(use.func, args, kw, W), freq)
    return {key: value} if value is not None else use.refuse("indices without a single batch dimension")


def _advanced_index(index):
    """For W[index]: None when the index is basic (ints, slices, None, Ellipsis: a rearrangement);
    else (axis, idx) for the one form with a rule, full slices then one integer tensor (plain
    W[idx], and onnx2torch's Gather, `W[:, ..., :, idx]`), or "other"."""
    items = index if isinstance(index, tuple) else (index,)
    adv = [i for i, v in enumerate(items)
           if isinstance(v, (torch.Tensor, list)) or (isinstance(v, bool))]
    if not adv:
        return None
    a = adv[0]
    idx = items[a]
    full = lambda v: isinstance(v, slice) and v == slice(None)  # noqa: E731
    if len(adv) > 1 or not all(full(v) for v in items[:a]) or \
            not all(full(v) or v is Ellipsis for v in items[a + 1:]):
        return "other"
    if isinstance(idx, list):
        idx = torch.tensor(idx)
    if not isinstance(idx, torch.Tensor) or idx.dtype in (torch.bool, torch.uint8) or \
            idx.is_floating_point():
        return "other"
    return a, idx


def rule_take(use, g):
    """W[idx] / W[:, idx] (advanced indexing with one integer tensor, e.g. onnx2torch's ONNX
    Gather on an initializer) with per-sample indices: a row lookup along that axis."""
    W, index = use.args[0], use.args[1]
    axis, idx = _advanced_index(index)
    # out = W.shape[:axis] + idx.shape + W.shape[axis+1:]: bring idx's dims to the front
    k = idx.dim()
    g = g.movedim(tuple(range(axis, axis + k)), tuple(range(k)))
    value = _lookup_sq(use, idx.detach() % W.shape[axis], g, W.shape[axis], W.numel() // W.shape[axis])
    if value is None:
        return use.refuse("indices without a single batch dimension")
    (_, key), = use.params
    return {key: value}


def rule_prelu(use, g):
    """torch.prelu(a, W) = max(a, 0) + W * min(a, 0), W with 1 element or one per channel
    (dim 1): dW_n[c] = sum of g_n * min(a_n, 0) over channel c (over everything when W has one)."""
    (pos, key), = use.params
    if pos not in ((1,), ("weight",)):
        return use.refuse("a parameter in a position other than the weight")
    a = _arg(use.args, use.kwargs, 0, "input").detach()
    W = _get(use.args, use.kwargs, pos)
    if a.dim() == 0 or not _is_batch(a.shape[0], use.n):
        return use.refuse("an input that does not have the batch as its first dimension")
    gx = g * torch.clamp(a, max=0)
    N = a.shape[0]
    if W.numel() == 1:
        d = gx.reshape(N, -1).sum(1)
    elif a.dim() >= 2 and W.numel() == a.shape[1]:
        d = gx.sum(tuple(range(2, a.dim()))) if a.dim() > 2 else gx
    else:
        return use.refuse(f"a weight of {W.numel()} elements for an input of shape {list(a.shape)}")
    return {key: ("grad", d.reshape(N, *W.shape))}


def rule_elementwise(use, g):
    """An op that broadcasts the parameter over the batch: re-run it with a per-sample copy
    [N, ...] of the parameter; autograd's own broadcast reduction gives the per-sample gradient."""
    if use.out.dim() == 0 or not _is_batch(use.out.shape[0], use.n):
        return use.refuse("its result does not have the batch as its first dimension")
    N, k = use.out.shape[0], use.out.dim()
    out = {}
    for pos, key in use.params:
        p = _get(use.args, use.kwargs, pos)
        if p.dim() > k or (p.dim() == k and p.shape[0] != 1):
            return use.refuse(f"a parameter of shape {list(p.shape)} that is not broadcast over the batch")
        ps = [1] * (k - p.dim()) + list(p.shape)
        pe = p.detach().reshape(ps).expand(N, *ps[1:]).contiguous().requires_grad_(True)
        args, kwargs = _put(use.args, use.kwargs, pos, pe)
        with torch.enable_grad():
            res = OUT_OF_PLACE.get(use.func, use.func)(*args, **kwargs)
            d, = torch.autograd.grad(res, pe, g)
        out[key] = ("grad", d.reshape(N, *p.shape))
    return out


# torch functions by the rule that reads their parameters
ELEMENTWISE = [torch.add, T.add, T.__add__, T.__radd__, T.__iadd__,
               torch.sub, T.sub, T.__sub__, T.__rsub__, T.__isub__, torch.rsub,
               torch.mul, T.mul, T.__mul__, T.__rmul__,
               torch.div, T.div, T.__truediv__, T.__rtruediv__,
               torch.where, torch.maximum, torch.minimum,
               T.expand, T.expand_as, torch.broadcast_to, T.broadcast_to]
RULES = {F.linear: rule_linear, torch.matmul: rule_matmul, T.matmul: rule_matmul,
         T.__matmul__: rule_matmul, torch.mm: rule_matmul, T.mm: rule_matmul,
         F.conv1d: rule_conv, F.conv2d: rule_conv, torch.conv1d: rule_conv, torch.conv2d: rule_conv,
         F.batch_norm: rule_batch_norm, F.layer_norm: rule_layer_norm,
         F.group_norm: rule_group_norm, F.embedding: rule_embedding, torch.embedding: rule_embedding,
         T.__getitem__: rule_take, torch.prelu: rule_prelu, T.prelu: rule_prelu}
# row lookups of a parameter: decided at the call (see _lookup)
LOOKUPS = {F.embedding, torch.embedding, T.__getitem__}
RULES.update({f: rule_elementwise for f in ELEMENTWISE})
# pure rearrangements of a parameter: the result stands for the same parameter, norm unchanged
REARRANGE = {T.view, T.reshape, torch.reshape, T.transpose, torch.transpose, T.permute,
             torch.permute, T.t, torch.t, T.flatten, torch.flatten, T.unflatten, T.squeeze,
             torch.squeeze, T.unsqueeze, torch.unsqueeze, T.contiguous, T.clone, torch.clone,
             T.float, T.to, T.type_as, T.T.__get__, T.mT.__get__, T.movedim,
             torch.movedim, T.view_as, T.reshape_as}
# `x += b` rebinds x to what the call returns, so the recorded copy is what flows on
OUT_OF_PLACE = {T.__iadd__: T.add, T.__isub__: T.sub}


def _get(args, kwargs, pos):
    v = kwargs if isinstance(pos[0], str) else args
    for i in pos:
        v = v[i]
    return v


def _put(args, kwargs, pos, value):
    if isinstance(pos[0], str):
        kwargs = dict(kwargs)
        kwargs[pos[0]] = _replace(kwargs[pos[0]], pos[1:], value)
        return args, kwargs
    return _replace(tuple(args), pos, value), kwargs


def _replace(v, pos, value):
    if not pos:
        return value
    items = list(v)
    items[pos[0]] = _replace(items[pos[0]], pos[1:], value)
    return type(v)(items)


def _tensors(v, pos=()):
    if isinstance(v, torch.Tensor):
        yield pos, v
    elif isinstance(v, (list, tuple)):
        for i, item in enumerate(v):
            yield from _tensors(item, pos + (i,))


def _name(func):
    owner = getattr(func, "__objclass__", None) or getattr(func, "__self__", None)
    mod = getattr(func, "__module__", None) or ""
    base = getattr(func, "__name__", None) or getattr(func, "__qualname__", None) or repr(func)
    if owner in (torch.Tensor, torch._C.TensorBase) or (owner is None and not mod):
        return f"Tensor.{base}"
    return f"{mod}.{base}" if mod and not mod.startswith("torch._C") else f"torch.{base}"


class Use:
    """One call of a torch function that read parameters."""

    def __init__(self, func, args, kwargs, params, out, n, problems):
        self.func, self.args, self.kwargs, self.params = func, args, kwargs, params
        self.out, self.n, self._problems = out, n, problems

    def refuse(self, why):
        keys = ", ".join(k for _, k in self.params)
        self._problems.append(f"parameter {keys} is read by {_name(self.func)} with {why}")
        return {}


class Recorder(TorchFunctionMode):
    """Records every torch call that reads a parameter, and hands downstream a fresh tensor whose
    gradient is then that call's output gradient."""

    def __init__(self, names, n):
        super().__init__()
        self.names = dict(names)     # id(tensor) -> parameter name (parameters and rearrangements)
        self.keep = []               # rearranged views stay alive so that their ids stay unique
        self.n = n
        self.uses, self.problems = [], []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        params = [(pos, self.names[id(t)]) for pos, t in _tensors(args)
                  if id(t) in self.names]
        params += [((k,) + pos, self.names[id(t)]) for k, v in kwargs.items()
                   for pos, t in _tensors(v) if id(t) in self.names]
        lookup = _lookup(func, args, kwargs, params, self.n) if params and func in LOOKUPS else None
        if lookup not in (None, "basic", "distinct", "rule"):
            Use(func, args, kwargs, params, None, self.n, self.problems).refuse(lookup)
            lookup = "refused"
        if lookup == "refused" and func is F.embedding:   # the plain lookup: tracing goes on,
            args, kwargs = args[:3], {**kwargs, "max_norm": None}   # the weight stays as it is
        out = SUBSTITUTE.get(func, func)(*args, **kwargs)
        if not params or not isinstance(out, torch.Tensor) or lookup == "refused":
            return out
        if (func in REARRANGE and len(params) == 1 and params[0][0] == (0,)) or \
                lookup in ("basic", "distinct"):
            self.names[id(out)] = params[0][1]
            self.keep.append(out)
            return out
        rule = RULES.get(func)
        use = Use(func, args, kwargs, params, out, self.n, self.problems)
        if rule is None:
            use.refuse("no per-sample gradient rule")
            return out
        if _in_place(func) and func not in OUT_OF_PLACE:
            use.refuse("an in-place update")
            return out
        use.rule = rule
        use.out = out.clone() if out.requires_grad else out.detach().requires_grad_(True)
        self.uses.append(use)
        return use.out


def _global_avg_pool2d(input, output_size):
    """F.adaptive_avg_pool2d to a 1 x 1 output as the mean over H, W, the same values. ATen takes
    that route itself, but then restrides a channels-last input's result in place (as_strided_),
    and the backward of that is an as_strided_scatter, which no ONNX translation exists for
    (ConvNeXt: its blocks end in a permute from NHWC, so the pooled tensor is channels-last)."""
    size = output_size if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(size) == 2 and all(v == 1 for v in size):
        return input.mean((-1, -2), keepdim=True)   # ATen's own reduction, dims in its order
    return F.adaptive_avg_pool2d(input, output_size)


# parameter-free functions run in an equivalent form while the gradient graph is traced
SUBSTITUTE = {F.adaptive_avg_pool2d: _global_avg_pool2d}


def _in_place(func):
    nm = getattr(func, "__name__", "")
    return (nm.endswith("_") and not nm.endswith("__")) or (nm.startswith("__i") and nm.endswith("__"))


def cross_entropy_logit_grad(logits, y):
    """d CE / d logits = s * delta~, computed so that float32 keeps its RELATIVE precision at any
    confidence: s = 1 - p_y = sum of the other classes' probabilities, taken in log space as
    log s = -softplus(z_y - logsumexp_{k != y} z_k) (never as 1 - p_y, which rounds to 0 once
    p_y > 1 - 6e-8), and delta~ = softmax over the other classes minus onehot(y), whose entries
    are O(1) however small s is. The backward runs on delta~; s scales the norms at the end, in
    log space, so neither the backward nor the squares underflow before the result does.
    Returns (delta~ [N, K], log s [N]). The one-hot mask uses Equal, not Gather/Scatter."""
    onehot = torch.arange(logits.shape[1], device=logits.device)[None, :] == y[:, None]
    others = logits.masked_fill(onehot, float("-inf"))
    margin = (logits * onehot.to(logits.dtype)).sum(1) - torch.logsumexp(others, 1)
    return torch.softmax(others, 1) - onehot.to(logits.dtype), -F.softplus(margin)


class GhostNorm(torch.nn.Module):
    """forward(x [N, ...] float32, y [N] int64) -> (norms [N], sqnorms [N, P]).

    Columns of sqnorms follow `param_names` (= model.named_parameters() order). The model must be
    a prepared copy (see exporter.prepare_model): eval mode, frozen parameters."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.param_names = [k for k, _ in model.named_parameters()]
        self.last_layer = None   # set by forward: columns of the last weight-bearing call onward

    def record(self, x):
        names = {id(p): k for k, p in self.model.named_parameters()}
        rec = Recorder(names, x.shape[0])
        # attention by its math form: the fused CPU kernel's backward has no ONNX translation
        from torch.nn.attention import SDPBackend, sdpa_kernel
        with torch.enable_grad(), sdpa_kernel([SDPBackend.MATH]):
            # parameters are frozen: x carries requires_grad so that outputs join the graph
            with rec:
                logits = self.model(x.detach().requires_grad_(True))
        return rec, logits

    def forward(self, x, y):
        rec, logits = self.record(x)
        problems = list(rec.problems) + coverage_problems(rec, self.param_names)
        if problems:
            raise UnsupportedModelError(refusal(problems))
        delta, log_s = cross_entropy_logit_grad(logits.detach(), y)
        with torch.enable_grad():
            gouts = torch.autograd.grad(logits, [u.out for u in rec.uses], grad_outputs=delta,
                                        allow_unused=True)
        parts = {}
        for use, g in zip(rec.uses, gouts):
            g = torch.zeros_like(use.out) if g is None else g
            for key, value in use.rule(use, g).items():
                parts.setdefault(key, []).append(value)
        if rec.problems:
            raise UnsupportedModelError(refusal(rec.problems))
        sq = torch.stack([_combine(k, parts[k]) for k in self.param_names], 1)
        # scale by s in log space: norms and squares are formed only at their final size (the
        # backward of delta~ is O(1), so sq itself neither underflows nor overflows)
        self.last_layer = last_layer_columns(rec, self.param_names)
        norms = torch.exp(log_s + 0.5 * torch.log(sq.sum(1)))
        return norms, torch.exp(2 * log_s[:, None] + torch.log(sq))


def _combine(key, values):
    if len(values) == 1:
        kind, v = values[0]
        return v if kind == "sq" else _sq(v)
    if any(kind == "sq" for kind, _ in values) or len({tuple(v.shape) for _, v in values}) > 1:
        raise UnsupportedModelError(refusal([
            f"parameter {key} is read by {len(values)} calls (a shared or repeated layer); "
            "per-sample norms of a shared weight matrix have no closed form here"]))
    return _sq(sum(v for _, v in values))


WEIGHT_RULES = (rule_linear, rule_matmul, rule_conv)


def coverage_problems(rec, param_names):
    """Parameters never seen, and weight matrices read more than once (shared layers)."""
    seen = {k for u in rec.uses for _, k in u.params}
    # refused reads count as seen ("parameter a, b is read by ..." names every key of the call)
    seen |= {k for p in rec.problems if p.startswith("parameter ") and " is read by " in p
             for k in p[len("parameter "):p.index(" is read by ")].split(", ")}
    problems = [f"parameter {k} is never read by a torch function during forward (unused, or "
                "read through torch.ops / a C++ extension, which the exporter cannot see)"
                for k in param_names if k not in seen]
    reads = {}
    for u in rec.uses:
        for _, k in u.params:
            reads.setdefault(k, []).append(u.rule)
    problems += [f"parameter {k} is read by {len(r)} calls (a shared or repeated layer); "
                 "per-sample norms of a shared weight matrix have no closed form here"
                 for k, r in reads.items() if len(r) > 1 and any(f in WEIGHT_RULES for f in r)]
    return problems


def last_layer_columns(rec, param_names):
    """sqnorms columns of the classifier: the last weight-bearing call (linear, matmul, conv)
    that runs in forward, and every parameter read after it (e.g. a separate bias Add)."""
    idx = max((i for i, u in enumerate(rec.uses) if u.rule in WEIGHT_RULES),
              default=len(rec.uses) - 1)
    keys = {k for u in rec.uses[idx:] for _, k in u.params}
    return [i for i, k in enumerate(param_names) if k in keys]


def refusal(problems):
    lines = "\n  ".join(dict.fromkeys(problems))
    return ("cannot export a gradient graph:\n  " + lines +
            "\nper-sample rules exist for parameters read by: linear, matmul (2-D weight), "
            "conv1d/conv2d (any groups, stride, padding, dilation), batch_norm (running "
            "statistics), layer_norm, group_norm, embedding and W[idx] (per-sample indices, "
            "padding_idx, scale_grad_by_freq), prelu, and elementwise ops that broadcast the "
            "parameter over the batch (add, sub, mul, div, where, expand); parameter-free "
            "layers of any kind need no rule. See export/README.md, 'Exporting any PyTorch network'.")


def check(model, input_shape):
    """Trace the forward once (symbolic batch, as the export will) and raise
    UnsupportedModelError listing every problem at once, before anything slow runs."""
    from torch.fx.experimental.proxy_tensor import make_fx
    g = GhostNorm(model)
    found = {}

    def forward_only(x):
        found["rec"], logits = g.record(x)
        return logits

    make_fx(forward_only, tracing_mode="symbolic", _allow_non_fake_inputs=True)(
        torch.zeros(4, *input_shape))
    rec = found["rec"]
    problems = list(rec.problems) + coverage_problems(rec, g.param_names)
    if problems:
        raise UnsupportedModelError(refusal(problems))
    return last_layer_columns(rec, g.param_names)
