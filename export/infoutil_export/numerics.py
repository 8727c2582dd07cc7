"""The numerical pieces every check shares: the floor of relative errors, an ONNX Runtime CPU
session, the cross-entropy written to keep its precision for confident samples, and a model
copied into another float type. Below verify.py and branches.py, which both use them.

TINY_FLOOR = 1e-41 is the smallest magnitude float32 stores to 1e-4 (subnormals are spaced
1.4e-45): relative errors are |got - ref| / max(ref, TINY_FLOOR).
"""
import copy

import onnxruntime as ort
import torch
import torch.nn.functional as F

TINY_FLOOR = 1e-41

def ort_session(path, threads=2):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])


def stable_cross_entropy(logits, y):
    """cross-entropy of one sample, as softplus(logsumexp_{k != y} (z_k - z_y))."""
    onehot = torch.arange(logits.shape[-1], device=logits.device) == y[..., None]
    others = (logits - (logits * onehot).sum(-1, keepdim=True)).masked_fill(onehot, float("-inf"))
    return F.softplus(torch.logsumexp(others, -1)).sum()


def copy_as(model, dtype):
    """The model in `dtype`, including casts inside it (a converted graph's Cast-to-float32
    nodes, onnx2torch's `torch_dtype`, would otherwise drop the reference back to float32)."""
    m = copy.deepcopy(model).to(dtype).eval()
    for mod in m.modules():
        if getattr(mod, "torch_dtype", None) in (torch.float16, torch.float32, torch.float64):
            mod.torch_dtype = dtype
    return m
