"""The per-sample rules for embeddings (row lookups) and PReLU, end to end: small models exported
with exporter.export, the gradient graph run on ONNX Runtime, its per-sample norms held to an
independent float64 reference (a loop over the samples, one torch.autograd.grad each, on a
float64 copy of the model), 1e-4 relative, for the total norm and for each new parameter's own
column of sqnorms. Also: the same lookups arriving as ONNX Gather on an initializer (from_onnx.py:
onnx2torch turns Gather into advanced indexing, Tensor.__getitem__), and what is refused.

    python export/tests/test_lookup_prelu.py
"""
import json
import os
import sys
import tempfile

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
from infoutil_export import exporter, ghost, metadata, verify  # noqa: E402

TOL = 1e-4
SHAPE = (3, 8, 8)
K = 5


class TokenNet(nn.Module):
    """Pixels quantised into 8 levels are tokens (64 a sample, so every sample repeats tokens);
    level 0 is the padding row. A second table with scale_grad_by_freq, a position embedding
    looked up with constant ids (a buffer: a rearrangement of its rows), a raw parameter indexed
    along its second axis with per-sample indices (W[:, idx]), LayerNorm and a linear head."""

    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(8, 6, padding_idx=0)
        self.freq = nn.Embedding(8, 6, scale_grad_by_freq=True)
        self.pos = nn.Embedding(64, 6)
        self.table = nn.Parameter(torch.randn(3, 5, 4))
        self.register_buffer("ids", torch.arange(64))
        self.ln = nn.LayerNorm(6)
        self.fc = nn.Linear(6 + 12, K)

    def forward(self, x):
        idx = torch.clamp(x[:, 0] * 2.5 + 3.5, 0, 7).long().flatten(1)      # [N, 64]
        h = self.ln(self.tok(idx) + self.freq(idx.flip(1)) + self.pos(self.ids))
        j = torch.clamp(x[:, 1, 0, :4] * 2 + 2, 0, 4).long()                # [N, 4]
        t = self.table[:, j].permute(1, 2, 0, 3).mean(1).flatten(1)        # [N, 12]
        return self.fc(torch.cat([torch.tanh(h).mean(1), t], 1))


class GatherNet(nn.Module):
    """For the ONNX route: its forward file holds Gather(tok.weight, per-sample tokens) (ONNX has
    no padding_idx or scale_grad_by_freq, so neither is used) and the position table as an
    initializer of its own (the exporter folds the constant lookup)."""

    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(8, 6)
        self.pos = nn.Embedding(64, 6)
        self.register_buffer("ids", torch.arange(64))
        self.ln = nn.LayerNorm(6)
        self.fc = nn.Linear(6, K)

    def forward(self, x):
        idx = torch.clamp(x[:, 0] * 2.5 + 3.5, 0, 7).long().flatten(1)      # [N, 64]
        return self.fc(torch.tanh(self.ln(self.tok(idx) + self.pos(self.ids))).mean(1))


class PReLUNet(nn.Module):
    """PReLU with one weight per channel (after a conv, and on [N, C] features) and with a single
    shared weight, with negative slopes too."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 3, padding=1)
        self.a1 = nn.PReLU(6)
        self.c2 = nn.Conv2d(6, 8, 3, stride=2)
        self.a2 = nn.PReLU()
        self.fc1 = nn.Linear(8, 7)
        self.a3 = nn.PReLU(7)
        self.fc2 = nn.Linear(7, K)

    def forward(self, x):
        h = self.a2(self.c2(self.a1(self.c1(x)))).mean((2, 3))
        return self.fc2(self.a3(self.fc1(h)))


def seeded(net, seed=0):
    torch.manual_seed(seed)
    net = net()
    with torch.no_grad():
        for k, p in net.named_parameters():
            if p.dim() <= 1 and k.startswith("a"):        # slopes in (-0.5, 1)
                p.copy_(torch.rand(p.shape) * 1.5 - 0.5)
            elif k.startswith(("ln.",)):
                p.add_(torch.randn(p.shape) * 0.3)
    return net.eval()


def inputs(n=12, seed=1):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, *SHAPE, generator=gen), torch.randint(0, K, (n,), generator=gen)


def loop_reference(model, x, y):
    """Per-sample squared gradient norms [N, P] (named_parameters order): one sample at a time,
    torch.autograd.grad of cross-entropy in float64. No torch.func, no ghost formulas."""
    m = exporter.prepare_model(model).double()
    params = [p for _, p in m.named_parameters()]
    for p in params:
        p.requires_grad_(True)
    rows = []
    for i in range(len(x)):
        loss = F.cross_entropy(m(x[i:i + 1].double()), y[i:i + 1])
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        rows.append([0.0 if g is None else float(g.pow(2).sum()) for g in grads])
    return np.array(rows)


def errors(grad_path, model, x, y, columns):
    """max over samples of the relative error of the norms, and of each named column's own
    squared norm, ONNX Runtime against the loop reference."""
    names = json.loads(metadata.read(grad_path)["infoutil.param_names"])
    sess = verify.ort_session(grad_path)
    norms, sq = sess.run(["norms", "sqnorms"], {sess.get_inputs()[0].name: x.numpy(),
                                                "y": y.numpy()})
    ref = loop_reference(model, x, y)
    assert names == [k for k, _ in model.named_parameters()], names
    out = {"norms": float((np.abs(norms - np.sqrt(ref.sum(1))) / np.sqrt(ref.sum(1))).max())}
    for c in columns:
        j = names.index(c)
        assert (ref[:, j] > 0).all(), (c, ref[:, j])
        out[c] = float((np.abs(sq[:, j] - ref[:, j]) / ref[:, j]).max())
    return out


def export(net, d, name):
    x, y = inputs()
    return exporter.export(net, d, name, input_shape=SHAPE, class_names=list("abcde"),
                           normalization=metadata.BAKED, verify_x=x, verify_y=y,
                           log=lambda *a: None)


def test_embedding():
    net = seeded(TokenNet)
    x, y = inputs()
    idx = torch.clamp(x[:, 0] * 2.5 + 3.5, 0, 7).long().flatten(1)
    # every sample repeats tokens and holds padding tokens (whose row gets no gradient)
    assert all(len(set(r)) < len(r) for r in idx.tolist()) and bool((idx == 0).any(1).all())
    with tempfile.TemporaryDirectory() as d:
        rep = export(net, d, "tok")
        err = errors(f"{d}/tok.grad.onnx", net, x, y,
                     ["tok.weight", "freq.weight", "pos.weight", "table"])
    assert rep["grad"]["norm_max_rel_err"] <= TOL
    assert all(v <= TOL for v in err.values()), err
    return err


def test_onnx_gather():
    """The forward file of GatherNet through from_onnx.py: onnx2torch turns Gather on an
    initializer into Tensor.__getitem__ with an index tensor, the per-sample tokens' lookup; the
    norms are with respect to the file's initializers, which are GatherNet's parameters (the
    position table folded into its own initializer, the same values), so the loop reference on
    GatherNet holds."""
    from from_onnx import export_onnx, torch_module
    net = seeded(GatherNet)
    x, y = inputs()
    with tempfile.TemporaryDirectory() as d:
        export(net, d, "src")
        ops = [(n.op_type, list(n.input)) for n in onnx.load(f"{d}/src.onnx").graph.node]
        assert ("Gather", ["tok.weight", "view"]) in ops, ops
        tm = torch_module(f"{d}/src.onnx", SHAPE, "NCHW", log=lambda *a: None)
        rec, _ = ghost.GhostNorm(exporter.prepare_model(tm)).record(x)
        assert any(u.func is torch.Tensor.__getitem__ for u in rec.uses), [u.func for u in rec.uses]
        rep = export_onnx(f"{d}/src.onnx", d, "rt", input_shape=SHAPE, class_names=list("abcde"),
                          normalization=metadata.BAKED, verify_x=x, verify_y=y, module=tm,
                          log=lambda *a: None)
        sess = verify.ort_session(f"{d}/rt.grad.onnx")
        norms = sess.run(["norms"], {sess.get_inputs()[0].name: x.numpy(), "y": y.numpy()})[0]
    ref = np.sqrt(loop_reference(net, x, y).sum(1))
    err = {"norms": float((np.abs(norms - ref) / ref).max())}
    assert rep["grad"]["norm_max_rel_err"] <= TOL and err["norms"] <= TOL, (rep["grad"], err)
    return err


def test_prelu():
    net = seeded(PReLUNet)
    x, y = inputs()
    with tempfile.TemporaryDirectory() as d:
        rep = export(net, d, "prelu")
        err = errors(f"{d}/prelu.grad.onnx", net, x, y, ["a1.weight", "a2.weight", "a3.weight"])
    assert rep["grad"]["norm_max_rel_err"] <= TOL
    assert all(v <= TOL for v in err.values()), err
    return err


def test_token_sq_forms():
    """Both forms of the lookup rule (one-hot product, Gram with the equality mask), with and
    without padding_idx and scale_grad_by_freq, against the per-sample gradient itself (index_add
    of the output gradient rows, float64)."""
    gen = torch.Generator().manual_seed(3)
    N, T, V, D = 5, 12, 7, 4
    idx = torch.randint(0, V, (N, T), generator=gen)
    idx[:, :3] = idx[:, 3:6]                                    # repeats in every sample
    G = torch.randn(N, T, D, generator=gen, dtype=torch.float64)
    worst = 0.0
    for pad in (None, 2):
        for freq in (False, True):
            want = []
            for n in range(N):
                rows = G[n] / torch.bincount(idx[n], minlength=V)[idx[n]][:, None] if freq else G[n]
                dW = torch.zeros(V, D, dtype=torch.float64).index_add_(0, idx[n], rows)
                if pad is not None:
                    dW[pad] = 0
                want.append(dW.pow(2).sum())
            want = torch.stack(want)
            for limit in (1 << 20, 0):                          # 0: the Gram form always
                got = ghost._token_sq(idx, G, V, pad, freq, max_materialised=limit)
                worst = max(worst, float(((got - want).abs() / want).max()))
    assert worst < 1e-12, worst
    return worst


def test_call_variants_eager():
    """The other spellings, through GhostNorm run eagerly in float64 against the loop reference:
    torch.embedding (weight first, padding_idx -1 for none, negative padding_idx via
    nn.Embedding), Tensor.prelu on [N, C, L], a single-weight PReLU on [N, C]."""
    class Variants(nn.Module):
        def __init__(self):
            super().__init__()
            self.W = nn.Parameter(torch.randn(9, 4))
            self.E = nn.Embedding(9, 4, padding_idx=-1)
            self.a = nn.Parameter(torch.rand(3) - 0.5)
            self.b = nn.PReLU(init=-0.2)
            self.fc = nn.Linear(4 + 3, K)

        def forward(self, x):
            idx = torch.clamp(x[:, 0, 0] * 3 + 4, 0, 8).long()                   # [N, 8]
            h = torch.embedding(self.W, idx, -1, False, False) + self.E(idx)
            c = x[:, :, 1].prelu(self.a).mean(2)                                   # [N, 3]
            return self.fc(self.b(torch.cat([h.mean(1), c], 1)))

    net = seeded(Variants)
    x, y = inputs()
    g = ghost.GhostNorm(exporter.prepare_model(net).double())
    _, sq = g(x.double(), y)
    ref = loop_reference(net, x, y)
    err = float((np.abs(sq.numpy() - ref) / ref.sum(1, keepdims=True)).max())
    assert err < 1e-12, err
    return err


def test_refusals():
    """max_norm, shared position ids computed in the forward, constant ids that repeat a row, and
    advanced indexing with two index tensors are refused by name, all at once."""
    class Bad(nn.Module):
        def __init__(self):
            super().__init__()
            self.renorm = nn.Embedding(8, 4, max_norm=1.0)
            self.pos = nn.Embedding(4, 4)
            self.rep = nn.Embedding(4, 4)
            self.grid = nn.Parameter(torch.randn(4, 4, 4))
            self.register_buffer("twice", torch.tensor([0, 1, 1, 2]))
            self.fc = nn.Linear(4, K)

        def forward(self, x):
            idx = torch.clamp(x[:, 0, 0, :4] * 2 + 4, 0, 7).long()
            h = self.renorm(idx) + self.pos(torch.arange(4)) + self.rep(self.twice)
            h = h + self.grid[idx % 4, idx % 4]
            return self.fc(h.mean(1))

    net = Bad()
    with torch.no_grad():
        net.renorm.weight.mul_(10)          # rows far above max_norm: a renorm would show
    before = net.renorm.weight.detach().clone()
    try:
        exporter.check_supported(net, SHAPE)
    except exporter.UnsupportedModelError as e:
        msg = str(e)
    else:
        raise AssertionError("refused lookups were accepted")
    for needle in ("renorm.weight is read by torch.nn.functional.embedding with max_norm",
                   "pos.weight is read by torch.nn.functional.embedding with indices that neither "
                   "have a single batch dimension nor are constants",
                   "rep.weight is read by torch.nn.functional.embedding with constant indices",
                   "grid is read by Tensor.__getitem__ with advanced indexing"):
        assert needle in msg, (needle, msg)
    assert torch.equal(net.renorm.weight, before)       # the caller's weight is not renormed
    return msg


if __name__ == "__main__":
    import time
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    for name, test in (("embedding", test_embedding), ("ONNX Gather (from_onnx.py)", test_onnx_gather),
                       ("prelu", test_prelu)):
        t0 = time.time()
        err = test()
        print(f"{name}: max rel err vs the float64 per-sample autograd loop: "
              + ", ".join(f"{k} {v:.3g}" for k, v in err.items()) + f" ({time.time() - t0:.0f} s)")
    print(f"lookup rule, both forms x padding_idx x scale_grad_by_freq vs index_add (float64): "
          f"max rel err {test_token_sq_forms():.3g}")
    print(f"torch.embedding, Tensor.prelu, single-weight PReLU, eager float64: max rel err "
          f"{test_call_variants_eager():.3g}")
    print("refused:\n ", test_refusals().replace("\n", "\n  "))
    print("ok")
