"""Numerical checks of exported graphs: ONNX Runtime against PyTorch.

Gradient norms are compared with an independent reference, torch.func vmap(grad) of the same
cross-entropy, computed in float64 on a float64 copy of the model.

Relative error, with a floor only for underflow. The gradient graph forms the loss gradient
delta = softmax(z) - onehot(y) so that float32 keeps its relative precision however confident the
sample is (see ghost.cross_entropy_logit_grad): its norm then carries about the relative error of the
logits themselves (~1e-6), not the ~6e-8 / |delta| of a naive p_y - 1. Only when the other classes'
probabilities leave float32's normal range (|delta| < DELTA_FLOOR = 1e-30) is a sample judged
against the norm it would have at |delta| = DELTA_FLOOR (norm * DELTA_FLOOR / |delta|), i.e. with an
absolute tolerance on the scale of its own Jacobian. The report also gives the unfloored maximum.
"""
import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap

DELTA_FLOOR = 1e-30


def ort_session(path, threads=2):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def reference_grad_sqnorms(model, x, y, chunk=16, dtype=torch.float64):
    """Per-sample squared gradient norms [N, P] (named_parameters order) by torch.func in `dtype`
    (float64 by default), and the per-sample |softmax - onehot| [N]."""
    m64 = _copy_as(model, dtype)
    params = {k: v.detach() for k, v in m64.named_parameters()}
    buffers = {k: v.detach() for k, v in m64.named_buffers()}

    def loss(p, xi, yi):
        logits = functional_call(m64, {**p, **buffers}, (xi[None],))
        return F.cross_entropy(logits, yi[None])

    per_sample = vmap(grad(loss), in_dims=(None, 0, 0), chunk_size=chunk)
    x64 = x.to(dtype)
    sq = []
    for i in range(0, len(x64), chunk):
        g = per_sample(params, x64[i:i + chunk], y[i:i + chunk])
        sq.append(torch.stack([g[k].flatten(1).pow(2).sum(1) for k in params], 1))
    with torch.no_grad():
        probs = F.softmax(m64(x64), 1)
        delta = (probs - F.one_hot(y, probs.shape[1]).to(probs.dtype)).norm(dim=1)
    return torch.cat(sq).double().numpy(), delta.double().numpy()


def _copy_as(model, dtype):
    import copy
    return copy.deepcopy(model).to(dtype).eval()


def check_forward(onnx_path, model, x, batch_sizes=(1, 3)):
    """max |logits_onnx - logits_torch| over x, and over a few other batch sizes (dynamic batch)."""
    sess = ort_session(onnx_path)
    with torch.no_grad():
        ref = model(x).numpy()
    got = sess.run(["logits"], {"x": x.numpy()})[0]
    err = float(np.abs(got - ref).max())
    for b in batch_sizes:
        got_b = sess.run(["logits"], {"x": x[:b].numpy()})[0]
        err = max(err, float(np.abs(got_b - ref[:b]).max()))
    return {"forward_max_abs_err": err, "n": len(x)}


def check_grad(onnx_path, model, x, y, batch_sizes=(1, 3)):
    """Errors of the grad graph's norms [N] and sqnorms [N, P] against the float64 reference."""
    sess = ort_session(onnx_path)
    ref_sq, delta = reference_grad_sqnorms(model, x, y)
    ref = np.sqrt(ref_sq.sum(1))
    norms, sqnorms = sess.run(["norms", "sqnorms"], {"x": x.numpy(), "y": y.numpy()})
    for b in batch_sizes:
        nb, sb = sess.run(["norms", "sqnorms"], {"x": x[:b].numpy(), "y": y[:b].numpy()})
        if not (np.allclose(nb, norms[:b], rtol=1e-5, atol=0) and
                np.allclose(sb, sqnorms[:b], rtol=1e-4, atol=1e-12 + 1e-6 * float(ref_sq.max()))):
            return {"batch_consistency_error": f"batch {b} gives different results from batch {len(x)}"}
    scale = ref * np.maximum(1.0, DELTA_FLOOR / np.maximum(delta, 1e-300))
    rel = np.abs(norms.astype(np.float64) - ref) / scale
    sq_rel = np.abs(sqnorms.astype(np.float64) - ref_sq) / (scale ** 2)[:, None]
    plain = np.abs(norms.astype(np.float64) - ref) / ref
    confident = delta < DELTA_FLOOR
    # what float32 itself allows: PyTorch's own float32 per-sample gradients vs float64
    sq32, _ = reference_grad_sqnorms(model, x, y, dtype=torch.float32)
    f32 = np.abs(np.sqrt(sq32.sum(1)) - ref) / scale
    return {
        "torch_func_float32_max_rel_err": float(f32.max()),
        "n": len(x),
        "norm_max_rel_err": float(rel.max()),
        "sqnorm_max_rel_err": float(sq_rel.max()),
        "norm_max_rel_err_unfloored": float(plain.max()),
        "n_below_floor": int(confident.sum()),
        "norm_max_rel_err_above_floor": float(plain[~confident].max()) if (~confident).any() else None,
        "ref_norm_min": float(ref.min()), "ref_norm_median": float(np.median(ref)),
        "ref_norm_max": float(ref.max()),
    }
