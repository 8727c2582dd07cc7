"""aten decompositions that rewrite the backward ops appearing in a gradient graph into forward ops
that the dynamo ONNX exporter translates to standard ai.onnx ops (Conv, ConvTranspose, Slice,
Pad, Equal, ...). Without them the exporter stops at e.g. "No ONNX function found for
aten.convolution_backward" (torchlib has no translation for it, nor for avg_pool2d_backward).

Pooling backwards put values back at strided positions, summing overlaps: a sum per phase plane
of the input (row y = s*q + r) and an interleave of the planes, a stack and a reshape
(_scatter_windows), in a fixed order on every runtime (no ScatterElements, whose CUDA kernel adds
by atomics). Max pooling's sends each window's gradient to the kernel offset its forward MaxPool
recorded as the maximum.
"""
import torch
from torch._decomp import get_decompositions

aten = torch.ops.aten


def _pair(v, default=None):
    v = list(v) if isinstance(v, (list, tuple)) else [v]
    if not v:
        return list(default)
    return v * 2 if len(v) == 1 else v


def _scatter_windows(contribs, k, s, d, canvas_hw):
    """contribs: one [N, C, Ho, Wo] map per kernel offset (row-major) -> [N, C, *canvas_hw]: each
    value added at its window position (padded-input coordinates), overlaps summed.

    By phases, not by a ConvTranspose: offset (i, j) writes the canvas rows s*y + d*i, i.e. the
    rows of phase (d*i) mod s, shifted by (d*i) div s within that phase; so each of the s*s phase
    planes is a sum of zero-padded (shifted) maps, and the canvas interleaves the planes (a
    stack and a reshape). Only copies and adds: the grouped one-hot ConvTranspose it replaces
    multiplied every value by kh*kw kernel entries (ONNX Runtime: 0.17 s of ResNet-18's 224-px
    gradient graph, batch 16, for the stem's max pooling, against ~0.05 s)."""
    N, C, Ho, Wo = contribs[0].shape
    mh, mw = -(-canvas_hw[0] // s[0]), -(-canvas_hw[1] // s[1])   # phase plane size (ceil)
    planes = {}
    for idx, c in enumerate(contribs):
        i, j = divmod(idx, k[1])
        (qy, ry), (qx, rx) = divmod(d[0] * i, s[0]), divmod(d[1] * j, s[1])
        placed = aten.constant_pad_nd.default(c, [qx, mw - Wo - qx, qy, mh - Ho - qy], 0.0)
        planes[ry, rx] = placed if (ry, rx) not in planes else planes[ry, rx] + placed
    zero = None
    rows = []
    for ry in range(s[0]):
        cols = []
        for rx in range(s[1]):
            if (ry, rx) not in planes and zero is None:
                zero = aten.constant_pad_nd.default(contribs[0] * 0.0, [0, mw - Wo, 0, mh - Ho], 0.0)
            cols.append(planes.get((ry, rx), zero))
        rows.append(torch.stack(cols, -1) if s[1] > 1 else cols[0].unsqueeze(-1))   # [N, C, mh, mw, sx]
    g = torch.stack(rows, 3) if s[0] > 1 else rows[0].unsqueeze(3)                # [N, C, mh, sy, mw, sx]
    g = g.reshape(N, C, mh * s[0], mw * s[1])
    return g[:, :, :canvas_hw[0], :canvas_hw[1]]


def convolution_backward(grad_output, input, weight, bias_sizes, stride, padding, dilation,
                         transposed, output_padding, groups, output_mask):
    """2-D, non-transposed convolution. grad_input = ConvTranspose(grad_output, weight), a plain
    Conv at stride 1; grad_bias = ReduceSum. The weight gradient is never requested: the
    gradient graph freezes the parameters and asks autograd only for gradients with respect to
    layer outputs.

    A strided one stays a ConvTranspose: written as s*s plain Convs, one per phase of the input
    (tried for issue 35), it ran no faster on ONNX Runtime (ResNet's 3 x 3 stride-2 blocks: the
    phases' small kernels, the interleave and the crop cost what ConvTranspose did; a depthwise
    stride-2 one was slower)."""
    if transposed or input.dim() != 4:
        raise NotImplementedError("gradient export: only 2-D non-transposed convolutions")
    if output_mask[1]:
        raise NotImplementedError("gradient export: convolution weight gradient requested "
                                  "(parameters must be frozen in the gradient graph)")
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    gi = gb = None
    if output_mask[0]:
        k = [weight.shape[2], weight.shape[3]]
        full_pad = [dilation[i] * (k[i] - 1) - padding[i] for i in range(2)]
        if stride == [1, 1] and min(full_pad) >= 0:
            # stride 1: the transposed convolution is a plain convolution with the kernel
            # flipped and its in/out channels swapped (per group); ONNX runtimes run Conv much
            # faster than ConvTranspose (ONNX Runtime: ~3x here)
            gi = aten.convolution.default(grad_output, _swapped(weight, groups).flip([2, 3]),
                                          None, [1, 1], full_pad, dilation, False, [0, 0], groups)
        else:
            op = [input.shape[2 + i] - ((grad_output.shape[2 + i] - 1) * stride[i] - 2 * padding[i]
                                        + dilation[i] * (k[i] - 1) + 1) for i in range(2)]
            gi = aten.convolution.default(grad_output, weight, None, stride, padding, dilation,
                                          True, op, groups)
    if output_mask[2]:
        gb = grad_output.sum([0, 2, 3])
    return gi, None, gb


def _swapped(weight, groups):
    """[O, C/G, kh, kw] -> [C, O/G, kh, kw]: in and out channels swapped within each group."""
    O, Cg, kh, kw = weight.shape
    return weight.reshape(groups, O // groups, Cg, kh, kw).transpose(1, 2) \
        .reshape(Cg * groups, O // groups, kh, kw)


def max_pool2d_backward(grad_output, self, kernel_size, stride, padding, dilation, ceil_mode,
                        indices):
    """Each output gradient routed to its window's recorded maximum, `indices` (per (n, c) plane,
    row-major, from the forward's MaxPool; PyTorch and ONNX Runtime both record the first maximum
    of a window; torch_onnx.max_pool2d_with_indices makes ONNX's per-plane cheaply): per kernel
    offset, the windows whose index is that offset's position (a small map of constants) pass
    their gradient, and _scatter_windows adds them into place. The routing this replaced found
    every window's first maximum again from 18 strided slices of the padded input and compares:
    the same values to the bit, ResNet-18's 224-px gradient graph 1.07x slower (batch 16,
    benches/stage2_side_by_side.py). One ScatterElements with reduction add would be faster still
    (1.07x again), but ONNX Runtime's CUDA kernel adds by atomics, in no fixed order, where three
    or four windows share a maximum: the same inputs would not always give the same file."""
    k = _pair(kernel_size)
    s = _pair(stride, k)
    p, d = _pair(padding), _pair(dilation)
    N, C, H, W = self.shape
    Ho, Wo = grad_output.shape[2], grad_output.shape[3]
    span = [(Ho - 1) * s[0] + d[0] * (k[0] - 1) + 1, (Wo - 1) * s[1] + d[1] * (k[1] - 1) + 1]
    # right/bottom padding: p, plus the ceil_mode overhang of the last window
    rp = [p[0] + max(0, span[0] - H - 2 * p[0]), p[1] + max(0, span[1] - W - 2 * p[1])]
    dev = grad_output.device
    rows = [(torch.arange(Ho, device=dev) * s[0] + (d[0] * i - p[0]))[:, None]
            for i in range(k[0])]
    cols = [(torch.arange(Wo, device=dev) * s[1] + (d[1] * j - p[1]))[None, :]
            for j in range(k[1])]
    contribs = []
    for r in rows:
        for c in cols:
            # the plane position of each window's offset (i, j); -1, which no recorded index
            # equals, on padding
            at = torch.where((r >= 0) & (r < H) & (c >= 0) & (c < W), r * W + c, -1)
            contribs.append(_masked(grad_output, indices == at))
    g = _scatter_windows(contribs, k, s, d, [H + p[0] + rp[0], W + p[1] + rp[1]])
    return g[:, :, p[0]:p[0] + H, p[1]:p[1] + W]


def _masked(grad, keep):
    """grad where `keep`, else 0, as a Cast and a Mul: ONNX Runtime's CPU Where broadcasting a
    scalar 0 ran 1.75x slower than the two together on a [16, 96, 112, 112] ReLU6 mask, quiet
    machine (benches/stage2_masks.py). A non-finite grad at a position not kept would give NaN where
    Where gives 0; the gradient graph's values are finite by construction (ghost.py scales the
    loss's gradient in log space), and the norms are checked for finiteness where they are read."""
    return grad * keep.to(grad.dtype)


def threshold_backward(grad_output, self, threshold):
    """ReLU's backward (self is its output): torch's own is a Where with a scalar 0."""
    return _masked(grad_output, self > threshold)


def hardtanh_backward(grad_output, self, min_val, max_val):
    """ReLU6's (MobileNet's) and Hardtanh's backward: torch's own is a Where with a scalar 0."""
    return _masked(grad_output, (self > min_val) & (self < max_val))


def avg_pool2d_backward(grad_output, self, kernel_size, stride, padding, ceil_mode,
                        count_include_pad, divisor_override=None):
    """Constant-divisor average pooling (the window area, or divisor_override). Variable divisors
    (ceil_mode, or padding without count_include_pad) are refused before export."""
    k = _pair(kernel_size)
    s = _pair(stride, k)
    p = _pair(padding)
    if ceil_mode or (p != [0, 0] and not count_include_pad and divisor_override is None):
        raise NotImplementedError("gradient export: AvgPool2d with ceil_mode=True, or with padding "
                                  "and count_include_pad=False, is not supported")
    N, C, H, W = self.shape
    Ho, Wo = grad_output.shape[2], grad_output.shape[3]
    g = grad_output / float(divisor_override or k[0] * k[1])
    if k == s and p == [0, 0]:
        # non-overlapping windows: a broadcast, cheaper than a ConvTranspose
        # a broadcasting Mul rather than Expand: ONNX Runtime's 6-D Expand is slow
        ones = torch.ones(1, 1, 1, k[0], 1, k[1], dtype=g.dtype, device=g.device)
        g = (g.reshape(N, C, Ho, 1, Wo, 1) * ones).reshape(N, C, Ho * k[0], Wo * k[1])
        if Ho * k[0] != H or Wo * k[1] != W:  # floor mode: trailing rows/cols get no gradient
            g = aten.constant_pad_nd.default(g, [0, W - Wo * k[1], 0, H - Ho * k[0]], 0.0)
        return g
    full = _scatter_windows([g] * (k[0] * k[1]), k, s, [1, 1], [H + 2 * p[0], W + 2 * p[1]])
    return full[:, :, p[0]:p[0] + H, p[1]:p[1] + W]


def adaptive_avg_pool2d_backward(grad_output, self):
    """Only the cases that are a plain average pooling: output size divides the input size.
    (Output 1x1, as in ResNet, never gets here: PyTorch computes it as a mean.)"""
    N, C, H, W = self.shape
    Ho, Wo = grad_output.shape[2], grad_output.shape[3]
    if H % Ho or W % Wo:
        raise NotImplementedError(f"gradient export: AdaptiveAvgPool2d from {H}x{W} to {Ho}x{Wo} "
                                  "(output size must divide input size)")
    k = [H // Ho, W // Wo]
    return avg_pool2d_backward(grad_output, self, k, k, [0, 0], False, True, None)


def constant_pad_nd(input, pad, value=0.0):
    """A pad with negative amounts (the backward of an asymmetric F.pad, e.g. a converted
    Conv auto_pad=SAME_UPPER) as a Slice, then a Pad of the non-negative amounts: ONNX allows
    negative Pad amounts, but tract 0.23 panics on them. Non-negative pads are left as they are."""
    if all(p >= 0 for p in pad):
        return NotImplemented
    x = input
    for i in range(len(pad) // 2):
        dim, lo, hi = input.dim() - 1 - i, pad[2 * i], pad[2 * i + 1]
        start, end = max(-lo, 0), x.shape[dim] + min(hi, 0)
        if start or hi < 0:
            x = aten.slice.Tensor(x, dim, start, end)
    rest = [max(p, 0) for p in pad]
    return aten.constant_pad_nd.default(x, rest, value) if any(rest) else x.clone()


def select_backward(grad_output, input_sizes, dim, index):
    """The backward of x.select(dim, index) (a ViT's class token, `x[:, 0]`) as a Pad of the
    unsqueezed gradient: zeros on both sides of `index` along `dim`. The exporter's own
    translation writes new_zeros + select_scatter, i.e. ConstantOfShape + ScatterElements.
    A symbolic size along `dim` (the batch) keeps that translation."""
    dim = dim % len(input_sizes)
    size = input_sizes[dim]
    if not isinstance(size, int):
        return NotImplemented
    index = index + size if index < 0 else index
    pad = [0, 0] * (len(input_sizes) - 1 - dim) + [index, size - 1 - index]
    return aten.constant_pad_nd.default(grad_output.unsqueeze(dim), pad, 0.0)


# backwards the ONNX exporter translates better itself: torch's decompositions of the view
# backwards (select, slice, unfold, diagonal) and of padding write through as_strided_scatter
KEEP = {"select_backward", "slice_backward", "unfold_backward", "diagonal_backward",
        "embedding_dense_backward", "reflection_pad1d_backward", "reflection_pad2d_backward",
        "reflection_pad3d_backward"}


def _base(op):
    return op.name().split("::")[-1].split(".")[0]


def decomposition_table():
    """Every backward op torch knows a decomposition for (activations of every kind, norms,
    softmax, padding, ...) becomes forward ops; the ones above replace torch's own where it would
    need ops ONNX runtimes run badly (ScatterElements) or where torch has none."""
    from torch._decomp import decomposition_table as known
    backward = [op for op in known if _base(op).endswith(("_backward", "_backward_data"))
                and _base(op) not in KEEP]
    table = get_decompositions(backward + [aten._native_batch_norm_legit_no_training])
    table[aten.convolution_backward.default] = convolution_backward
    table[aten.max_pool2d_with_indices_backward.default] = max_pool2d_backward
    table[aten.avg_pool2d_backward.default] = avg_pool2d_backward
    table[aten._adaptive_avg_pool2d_backward.default] = adaptive_avg_pool2d_backward
    table[aten.constant_pad_nd.default] = constant_pad_nd
    table[aten.select_backward.default] = select_backward
    table[aten.threshold_backward.default] = threshold_backward
    table[aten.hardtanh_backward.default] = hardtanh_backward
    return table
