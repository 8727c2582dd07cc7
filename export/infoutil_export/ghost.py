"""Per-sample gradient norms over ALL parameters, without per-sample gradients ("ghost norm").

In eval mode the samples of a batch are independent, so one backward of the SUMMED loss with respect
to each parameterised layer's OUTPUT gives every sample's own output gradient g_n. A layer's
per-sample parameter gradient is then a closed form of its input a_n and g_n, and so is its
squared norm:

  Linear     dW_n = g_n^T a_n (summed over any extra token dims)   |db_n|^2 = |sum_t g_n|^2
  Conv2d     dW_n = G_n U_n^T, U_n = im2col(a_n) [C*kh*kw, L], G_n = g_n [O, L]
             |dW_n|^2 = |G_n U_n^T|^2, or <G_n^T G_n, U_n^T U_n> when that is cheaper
  BatchNorm  dgamma_n = sum_hw g_n * xhat_n,  dbeta_n = sum_hw g_n  (running statistics)

Only a batched backward and small matrix products: this exports to standard ONNX ops and is
faster than materialising per-sample gradients with vmap(grad).
"""
import torch
import torch.nn as nn
import torch.nn.functional as F

PARAM_LAYERS = (nn.Conv2d, nn.Linear, nn.BatchNorm2d)


def im2col(a, conv):
    """[N, C, H, W] -> [N, C*kh*kw, L] with a one-hot grouped convolution (an ONNX Conv)."""
    C = conv.in_channels
    kh, kw = conv.kernel_size
    eye = torch.eye(kh * kw, dtype=a.dtype, device=a.device).reshape(kh * kw, 1, kh, kw)
    u = F.conv2d(a, eye.repeat(C, 1, 1, 1), None, conv.stride, conv.padding, conv.dilation, groups=C)
    return u.reshape(u.shape[0], C * kh * kw, -1)


def _frobenius_sq_of_product(G, U, max_materialised=1 << 20):
    """|G U^T|^2 per sample for G [N, O, L], U [N, K, L]: materialise the [O, K] product or use
    the Gram form <G^T G, U^T U> ([L, L]), whichever needs fewer multiply-adds, unless the product
    would exceed max_materialised values per sample (memory at large batches)."""
    O, K, L = G.shape[1], U.shape[1], U.shape[2]
    if O * K * L <= L * L * (O + K) and O * K <= max_materialised:
        return torch.bmm(G, U.transpose(1, 2)).pow(2).sum((1, 2))
    return (torch.bmm(G.transpose(1, 2), G) * torch.bmm(U.transpose(1, 2), U)).sum((1, 2))


def layer_sqnorms(name, m, a, g):
    """{param name: [N] squared norm of that parameter's per-sample gradient}."""
    N = a.shape[0]
    out = {}
    if isinstance(m, nn.Linear):
        if a.dim() == 2:
            g2 = g.pow(2).sum(1)
            out[name + "weight"] = g2 * a.pow(2).sum(1)
            gb = g
        else:  # [N, ..., features]: sum over the token dims
            G = g.reshape(N, -1, g.shape[-1]).transpose(1, 2)   # [N, out, T]
            A = a.reshape(N, -1, a.shape[-1]).transpose(1, 2)   # [N, in, T]
            out[name + "weight"] = _frobenius_sq_of_product(G, A)
            gb = G.sum(2)
        if m.bias is not None:
            out[name + "bias"] = gb.pow(2).sum(1)
    elif isinstance(m, nn.Conv2d):
        G = g.reshape(N, g.shape[1], -1)
        out[name + "weight"] = _frobenius_sq_of_product(G, im2col(a, m))
        if m.bias is not None:
            out[name + "bias"] = G.sum(2).pow(2).sum(1)
    elif isinstance(m, nn.BatchNorm2d):
        if m.affine:
            xhat = (a - m.running_mean[None, :, None, None]) * torch.rsqrt(
                m.running_var[None, :, None, None] + m.eps)
            out[name + "weight"] = (g * xhat).sum((2, 3)).pow(2).sum(1)
            out[name + "bias"] = g.sum((2, 3)).pow(2).sum(1)
    else:
        raise TypeError(f"no per-sample gradient rule for {type(m).__name__}")
    return out


def cross_entropy_logit_grad(logits, y):
    """d CE / d logits = softmax(z) - onehot(y), computed so that float32 keeps its RELATIVE
    precision for confident samples: the true-class entry p_y - 1 is formed as -(sum of the other
    probabilities), not by subtracting two numbers near 1 (which leaves ~6e-8 absolute noise and,
    for a sample with |p - onehot| ~ 1e-6, a 10 % error in its gradient norm). The one-hot mask
    uses Equal rather than Gather/Scatter: simpler ONNX, friendlier to tract."""
    onehot = (torch.arange(logits.shape[1], device=logits.device)[None, :] == y[:, None])
    onehot = onehot.to(logits.dtype)
    p_other = torch.exp(F.log_softmax(logits, 1)) * (1.0 - onehot)
    return p_other - onehot * p_other.sum(1, keepdim=True)


class GhostNorm(nn.Module):
    """forward(x [N, C, H, W] float32, y [N] int64) -> (norms [N], sqnorms [N, P]).

    Columns of sqnorms follow `param_names` (= model.named_parameters() order). The model must be
    a prepared copy (see exporter.prepare_model): eval mode, frozen parameters, no in-place ReLU."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.param_names = [k for k, _ in model.named_parameters()]
        self.layers = [(n, m) for n, m in model.named_modules()
                       if isinstance(m, PARAM_LAYERS) and any(True for _ in m.parameters(recurse=False))]

    def forward(self, x, y):
        record = {}

        def hook_for(name):
            def hook(mod, inputs, output):
                if name in record:
                    raise RuntimeError(f"layer '{name}' is called more than once per forward; "
                                       "shared layers are not supported by the gradient exporter")
                record[name] = (inputs[0], output)
                # hand a copy downstream so that later in-place ops (ResNet's `out += identity`)
                # cannot modify the tensor we differentiate with respect to
                return output.clone()
            return hook

        hooks = [m.register_forward_hook(hook_for(n)) for n, m in self.layers]
        try:
            with torch.enable_grad():
                # parameters are frozen: x carries requires_grad so that layer outputs join the graph
                logits = self.model(x.detach().requires_grad_(True))
                missing = [n for n, _ in self.layers if n not in record]
                if missing:
                    raise RuntimeError(f"layers never called in forward: {missing}")
                outs = [record[n][1] for n, _ in self.layers]
                # backpropagate d CE / d logits (a constant of the backward pass): equal to the
                # gradient of the summed cross-entropy, but accurate for confident samples
                delta = cross_entropy_logit_grad(logits.detach(), y)
                gouts = torch.autograd.grad(logits, outs, grad_outputs=delta)
        finally:
            for h in hooks:
                h.remove()

        sq = {}
        for (n, m), g in zip(self.layers, gouts):
            sq.update(layer_sqnorms(n + "." if n else "", m, record[n][0].detach(), g))
        missing = [k for k in self.param_names if k not in sq]
        if missing:
            raise RuntimeError(f"parameters outside supported layers: {missing}")
        sqnorms = torch.stack([sq[k] for k in self.param_names], 1)
        return sqnorms.sum(1).sqrt(), sqnorms
