"""Numerical checks of exported graphs: ONNX Runtime against PyTorch.

Gradient norms are compared with an independent reference, torch.func vmap(grad) of the
cross-entropy, computed in float64 on a float64 copy of the model. The reference writes the loss
as softplus(logsumexp_{k != y}(z_k - z_y)), which equals cross-entropy but whose autograd keeps
its relative precision for confident samples (the usual form's 1 - p_y rounds to 0 in float64
once p_y > 1 - 1e-16, which would make the reference itself wrong for margins above ~37).

Relative error everywhere float32 can hold the value: |got - ref| / max(ref, TINY_FLOOR), where
TINY_FLOOR = 1e-41 is the smallest magnitude float32 stores to 1e-4 (subnormals are spaced
1.4e-45). Squared norms are judged relative to the sample's total squared norm, with the same
floor.

The Grad-CAM graph (check_cam) is held to a per-sample float64 autograd loop: activations and
gradients each relative to the largest |value| of that output for that sample.
"""
import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

from . import branches

# re-exported: the checks, scripts and tests name them as verify.*
from .numerics import TINY_FLOOR, ort_session, stable_cross_entropy  # noqa: F401
from .numerics import copy_as


def reference_grad_sqnorms(model, x, y, chunk=16, dtype=torch.float64, loss_fn=stable_cross_entropy):
    """Per-sample squared gradient norms [N, P] (named_parameters order) by torch.func in `dtype`
    (float64 by default), and the per-sample |softmax - onehot| [N]."""
    m64 = copy_as(model, dtype)
    params = {k: v.detach() for k, v in m64.named_parameters()}
    buffers = {k: v.detach() for k, v in m64.named_buffers()}

    def loss(p, xi, yi):
        logits = functional_call(m64, {**p, **buffers}, (xi[None],))
        return loss_fn(logits, yi[None])

    per_sample = vmap(grad(loss), in_dims=(None, 0, 0), chunk_size=chunk)
    x64 = x.to(dtype)
    sq = []
    for i in range(0, len(x64), chunk):
        g = per_sample(params, x64[i:i + chunk], y[i:i + chunk])
        # reshape, not flatten(1): a 0-d parameter's per-sample gradient is [chunk]
        sq.append(torch.stack([g[k].reshape(len(g[k]), -1).pow(2).sum(1) for k in params], 1))
    with torch.no_grad():
        probs = F.softmax(m64(x64), 1)
        delta = (probs - F.one_hot(y, probs.shape[1]).to(probs.dtype)).norm(dim=1)
    return torch.cat(sq).double().numpy(), delta.double().numpy()


def output_op(proto):
    """The op type of the node that makes the graph's first output (through Identity nodes)."""
    g = proto.graph
    name = g.output[0].name
    made_by = {o: n for n in g.node for o in n.output}
    while name in made_by:
        node = made_by[name]
        if node.op_type != "Identity":
            return node.op_type
        name = node.input[0]
    return None


def output_warning(logits):
    """Why outputs [N, K] do not look like logits, or None: rows that sum to 1 within 1e-3 with
    every value in [0, 1] (probabilities: a softmax at the end), or all values >= 0 (an
    activation at the end: ReLU, sigmoid). The gradient graph differentiates cross-entropy of
    softmax(outputs), so either makes the norms those of another loss."""
    z = np.asarray(logits, dtype=np.float64)
    if z.size == 0 or z.shape[1] < 2:
        return None
    if z.min() >= 0 and z.max() <= 1 and np.abs(z.sum(1) - 1).max() <= 1e-3:
        return "look like probabilities (every row sums to 1)"
    if z.min() >= 0:
        return "are all non-negative (like an activation's output)"
    return None


def check_forward(onnx_path, model, x, input_name="x", batch_sizes=(1, 3)):
    """max |logits_onnx - logits_torch| over x, and over a few other batch sizes (dynamic batch)."""
    sess = ort_session(onnx_path)
    with torch.no_grad():
        ref = model(x).numpy()
    got = sess.run(None, {input_name: x.numpy()})[0]
    err = float(np.abs(got - ref).max())
    for b in batch_sizes:
        got_b = sess.run(None, {input_name: x[:b].numpy()})[0]
        err = max(err, float(np.abs(got_b - ref[:b]).max()))
    rep = {"forward_max_abs_err": err, "logit_scale": float(np.abs(ref).max()), "n": len(x)}
    why = output_warning(ref)
    if why:
        import onnx
        op = output_op(onnx.load(onnx_path)) or "unknown"
        rep["output_warning"] = (
            f"the outputs on the {len(x)} verification inputs {why}; the last op is {op}. "
            "infoutil treats outputs as logits (cross-entropy of their softmax), so its gradient "
            "norms would be those of another loss: export the graph before that op")
    return rep


def check_grad(onnx_path, model, x, y, input_name="x", batch_sizes=(1, 3), tol=None):
    """Errors of the grad graph's norms [N] and sqnorms [N, P] against the float64 reference.
    With tol: the samples over it (or NaN) are checked again against float64 replaying the
    graph's own float32 branch decisions (branches.own_branch_check), whose entries are added
    (only then); "verified" is True when no sample is over tol, or every one over it flipped a
    decision and is within tol of its own-branch reference."""
    sess = ort_session(onnx_path)
    ref_sq, delta = reference_grad_sqnorms(model, x, y)
    ref = np.sqrt(ref_sq.sum(1))
    feed = lambda b: {input_name: x[:b].numpy(), "y": y[:b].numpy()}  # noqa: E731
    norms, sqnorms = sess.run(["norms", "sqnorms"], feed(len(x)))
    for b in batch_sizes:
        nb, sb = sess.run(["norms", "sqnorms"], feed(b))
        if not (np.allclose(nb, norms[:b], rtol=1e-5, atol=0) and
                np.allclose(sb, sqnorms[:b], rtol=1e-4, atol=1e-12 * float(ref_sq.max()))):
            return {"batch_consistency_error": f"batch {b} gives different results from batch {len(x)}"}
    scale = np.maximum(ref, TINY_FLOOR)
    rel = np.abs(norms.astype(np.float64) - ref) / scale
    sq_rel = np.abs(sqnorms.astype(np.float64) - ref_sq) / np.maximum(ref ** 2, TINY_FLOOR)[:, None]
    # what float32 itself allows: PyTorch's own float32 per-sample gradients of the ordinary
    # cross-entropy vs the float64 reference
    sq32, _ = reference_grad_sqnorms(model, x, y, dtype=torch.float32,
                                     loss_fn=lambda z, t: F.cross_entropy(z, t))
    f32 = np.abs(np.sqrt(sq32.sum(1)) - ref) / scale
    report = {
        "torch_func_float32_max_rel_err": float(f32.max()),
        "n": len(x),
        "norm_max_rel_err": float(rel.max()),
        "sqnorm_max_rel_err": float(sq_rel.max()),
        "n_zero_norms": int((norms == 0).sum()),
        "n_ref_below_float32": int((ref < 1.4e-45).sum()),   # float32's smallest subnormal
        "ref_norm_min": float(ref.min()), "ref_norm_median": float(np.median(ref)),
        "ref_norm_max": float(ref.max()),
    }
    if tol is not None:
        over = ~((rel <= tol) & (sq_rel.max(1, initial=0.0) <= tol))   # NaN counts as over
        if over.any():
            report.update(branches.own_branch_check(onnx_path, model, x, y, input_name,
                                                    np.flatnonzero(over), norms, sqnorms, tol))
        report["verified"] = bool(not over.any() or report["n_unexplained"] == 0)
    return report


def reference_cam(model, x, y, layer, dtype=torch.float64):
    """(A, dlogit_y/dA) [N, K, h, w] in `dtype`, one sample at a time: the model in `dtype`, a
    forward hook keeping the module's output at its last call (the rest of the network gets a
    copy, so that an in-place op after the module, `out += identity`, leaves A as the module
    returned it), torch.autograd.grad of the sample's logit y."""
    m = copy_as(model, dtype)
    target = dict(m.named_modules())[layer]
    store = {}

    def hook(mod, inp, out):
        store["a"] = out
        return out.clone()

    handle = target.register_forward_hook(hook)
    acts, grads = [], []
    try:
        for i in range(len(x)):
            xi = x[i:i + 1].to(dtype).requires_grad_(True)
            with torch.enable_grad():
                logits = m(xi)
                g, = torch.autograd.grad(logits[0, int(y[i])], store["a"])
            acts.append(store["a"].detach()[0])
            grads.append(g[0])
    finally:
        handle.remove()
    return torch.stack(acts).double().numpy(), torch.stack(grads).double().numpy()


def _per_sample_rel(got, ref):
    """max over samples of max |got - ref| / max |ref| (that sample's largest value)."""
    n = len(ref)
    diff = np.abs(got.astype(np.float64) - ref).reshape(n, -1).max(1)
    scale = np.abs(ref).reshape(n, -1).max(1)
    return float((diff / np.maximum(scale, TINY_FLOOR)).max()), scale


def check_cam(onnx_path, model, x, y, layer, input_name="x"):
    """ONNX Runtime's activations and gradients against the float64 per-sample reference, and
    the big batch against each sample run alone. x in the graph's own layout."""
    sess = ort_session(onnx_path)
    names = [o.name for o in sess.get_outputs()]
    if names != ["activations", "gradients"]:
        return {"error": f"outputs are {names}, not ['activations', 'gradients']"}
    ref_a, ref_g = reference_cam(model, x, y, layer)
    a, g = sess.run(None, {input_name: x.numpy(), "y": y.numpy()})
    if a.shape != ref_a.shape or g.shape != ref_g.shape or a.dtype != np.float32 or g.dtype != np.float32:
        return {"error": f"outputs {a.dtype}{list(a.shape)} / {g.dtype}{list(g.shape)}, reference "
                         f"float32{list(ref_a.shape)}"}
    act_err, act_scale = _per_sample_rel(a, ref_a)
    grad_err, grad_scale = _per_sample_rel(g, ref_g)
    batch_err = 0.0
    for i in range(len(x)):
        ai, gi = sess.run(None, {input_name: x[i:i + 1].numpy(), "y": y[i:i + 1].numpy()})
        batch_err = max(batch_err,
                        float(np.abs(ai - a[i:i + 1]).max() / max(act_scale[i], TINY_FLOOR)),
                        float(np.abs(gi - g[i:i + 1]).max() / max(grad_scale[i], TINY_FLOOR)))
    # what float32 itself gives: the same loop in PyTorch float32
    a32, g32 = reference_cam(model, x, y, layer, dtype=torch.float32)
    return {
        "n": len(x), "shape": list(a.shape[1:]),
        "act_max_rel_err": act_err, "grad_max_rel_err": grad_err,
        "batch_max_rel_diff": batch_err,
        "torch_float32_act_max_rel_err": _per_sample_rel(a32, ref_a)[0],
        "torch_float32_grad_max_rel_err": _per_sample_rel(g32, ref_g)[0],
        "ref_act_max": float(act_scale.max()),
        "ref_grad_max_min": [float(grad_scale.min()), float(grad_scale.max())],
    }
