"""The Grad-CAM graph (NAME.cam.onnx): its numbers against float64 references computed another
way than the graph and the export check compute them, the default layer rule, and the refusals
of export_cam.py (a module that does not exist or is not a feature map, weights that are not the
forward file's), with nothing written.

    python export/tests/test_cam.py

The references: the network split at the layer by hand (ConvNet-3 is an nn.Sequential:
A = net[:k](x), logits = net[k:](A)), or a forward hook that REPLACES the layer's output (at its
last call) by a given A'; then torch.func.grad of logit_y(A') per sample, in float64, itself
checked against central finite differences along random directions in A-space. The graph and
verify.check_cam instead capture A with a hook and run torch.autograd.grad on it.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import torch
import torch.nn as nn
from torchvision.models.resnet import BasicBlock

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, ".."))
from infoutil_export import cam, exporter, metadata, numerics, verify  # noqa: E402
from infoutil_export.nets import convnet3  # noqa: E402

COMMAND = os.path.join(HERE, "..", "export_cam.py")
TRACT_PY = os.environ.get("INFOUTIL_TRACT_PYTHON", "/tmp/venv-tract/bin/python")


def randomise_bn(net, seed=0):
    """Eval-mode BatchNorm that is not the identity."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.rand(m.num_features, generator=gen) * 0.6 - 0.3)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=gen) * 0.4 - 0.2)
    return net.eval()


class TinyResNet(nn.Module):
    """torchvision's BasicBlock (one ReLU module called twice, `out += identity` in place on
    bn2's output), a strided block with a 1x1 downsample (the last Conv2d to run), global pooling."""

    def __init__(self, classes=5):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = nn.Sequential(BasicBlock(8, 8))
        down = nn.Sequential(nn.Conv2d(8, 16, 1, stride=2, bias=False), nn.BatchNorm2d(16))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, stride=2, downsample=down))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x):
        x = self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def split_reference(net, k, x, y):
    """ConvNet-3 split by hand at Sequential index k: A = net[:k+1](x), f(A) = net[k+1:](A)[y]."""
    m = numerics.copy_as(net, torch.float64)
    head, tail = m[:k + 1], m[k + 1:]
    acts, grads = [], []
    for i in range(len(x)):
        with torch.no_grad():
            a = head(x[i:i + 1].double())
        f = lambda a_, i=i: tail(a_)[0, int(y[i])]  # noqa: E731
        acts.append(a[0])
        grads.append(torch.func.grad(f)(a)[0])
        fd_check(f, a, grads[-1][None])
    return torch.stack(acts).detach().numpy(), torch.stack(grads).detach().numpy()


def replace_reference(net, layer, x, y):
    """Any network: a hook that returns a given A' in place of the module's output at its last
    call; the gradient of logit_y with respect to A'."""
    m = numerics.copy_as(net, torch.float64)
    target = dict(m.named_modules())[layer]
    state = {"calls": 0, "last": None, "a": None, "replace": None}

    def hook(mod, inp, out):
        state["calls"] += 1
        if state["calls"] == state["last"]:
            if state["replace"] is not None:
                return state["replace"].clone()
            state["a"] = out.detach().clone()
        return None

    h = target.register_forward_hook(hook)
    acts, grads = [], []
    try:
        for i in range(len(x)):
            xi = x[i:i + 1].double()
            state.update(calls=0, last=None, replace=None)
            with torch.no_grad():
                m(xi)
            state.update(last=state["calls"], calls=0)   # the last call is the one that counts
            with torch.no_grad():
                m(xi)
            a = state["a"]

            def f(a_, i=i, xi=xi):
                state.update(calls=0, replace=a_)
                out = m(xi)[0, int(y[i])]
                state["replace"] = None
                return out

            g = torch.func.grad(f)(a)
            with torch.no_grad():
                fd_check(f, a, g)
            acts.append(a[0])
            grads.append(g[0])
    finally:
        h.remove()
    return torch.stack(acts).detach().numpy(), torch.stack(grads).detach().numpy()


def fd_check(f, a, g, directions=3, seed=0):
    """Central differences of f along random directions d against <g, d> (float64)."""
    gen = torch.Generator().manual_seed(seed)
    for _ in range(directions):
        d = torch.randn(a.shape, generator=gen, dtype=torch.float64)
        eps = 1e-6 * float(a.abs().max().clamp(min=1.0))
        with torch.no_grad():
            fd = (f(a + eps * d) - f(a - eps * d)) / (2 * eps)
        g = g.detach()
        want = float((g * d).sum())
        assert abs(float(fd) - want) <= 1e-6 * max(1.0, float((g.abs() * d.abs()).sum())), (float(fd), want)


def rel_err(got, ref):
    n = len(ref)
    diff = np.abs(got.astype(np.float64) - ref).reshape(n, -1).max(1)
    return float((diff / np.maximum(np.abs(ref).reshape(n, -1).max(1), 1e-41)).max())


def common_meta(shape, classes):
    return dict(input_shape=shape, normalization=metadata.BAKED, class_names=list(classes),
                framework="pytorch test", weights_hash="0" * 64, checkpoint_epoch=1,
                epochs_total=1, dataset="test")


def run_graph(path, x, y):
    return verify.ort_session(path).run(None, {"x": x.numpy(), "y": y.numpy()})


def check_file(path, layer, weights_hash):
    m = onnx.load(path)
    meta = metadata.read(m)
    assert meta["infoutil.role"] == "cam" and meta["infoutil.cam_layer"] == layer, meta
    assert meta["infoutil.weights_sha256"] == weights_hash
    assert m.ir_version <= 10
    assert [i.name for i in m.graph.input] == ["x", "y"]
    assert [o.name for o in m.graph.output] == ["activations", "gradients"]
    assert all(i.type.tensor_type.shape.dim[0].dim_param for i in m.graph.input), "batch not dynamic"
    ops = {n.op_type for n in m.graph.node}
    assert not ops & {"ScatterElements", "ScatterND", "GatherElements"}, ops
    assert all(any(a.name == "value" for a in n.attribute)
               for n in m.graph.node if n.op_type == "ConstantOfShape")
    return meta


def test_convnet3_against_split_reference(d):
    """A small random ConvNet-3 (width 8, 16 px): the default layer (relu3) and relu2 (whose
    gradient goes back through pool3, conv3, bn3 and relu3 and so depends on the image)."""
    torch.manual_seed(0)
    net = randomise_bn(convnet3(in_channels=1, width=8, image_size=16))
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(10, 1, 16, 16, generator=gen)
    y = torch.randint(0, 10, (10,), generator=gen)
    out = {}
    for layer, k in (("relu3", 10), ("relu2", 6)):
        path = os.path.join(d, f"c3-{layer}.cam.onnx")
        rep = exporter.export_cam(net, path, input_shape=(1, 16, 16),
                                  meta_common=common_meta((1, 16, 16), range(10)),
                                  verify_x=x, verify_y=y, layer=None if layer == "relu3" else layer,
                                  log=lambda *a: None)
        assert rep["layer"] == layer, rep
        check_file(path, layer, "0" * 64)
        ref_a, ref_g = split_reference(net, k, x, y)
        a, g = run_graph(path, x, y)
        assert a.shape == (10, 8, 16 >> (k // 4), 16 >> (k // 4)) == g.shape, (a.shape, g.shape)
        out[layer] = (rel_err(a, ref_a), rel_err(g, ref_g))
        assert max(out[layer]) < 1e-4, (layer, out[layer])
        if layer == "relu2":   # not the same for every sample of a class
            assert np.abs(g[0] - g[1]).max() > 1e-3 * np.abs(g).max()
    return out


def test_reused_relu_against_replace_reference(d):
    """TinyResNet: the default layer is layer2 (the last block's output, after the reused ReLU's
    second call), and layer2.0.bn2 (whose output the block then changes in place: the graph
    must still report bn2's own output and its gradient). An image-dependent gradient is
    test_convnet3_against_split_reference's relu2; two layers here keep the test short in CI."""
    torch.manual_seed(0)
    net = randomise_bn(TinyResNet())
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(8, 3, 16, 16, generator=gen)
    y = torch.randint(0, 5, (8,), generator=gen)
    assert cam.find_layer(exporter.prepare_model(net), (3, 16, 16)) == ("layer2", [16, 8, 8])
    out = {}
    for layer in ("layer2", "layer2.0.bn2"):
        path = os.path.join(d, f"res-{layer}.cam.onnx")
        exporter.export_cam(net, path, input_shape=(3, 16, 16),
                            meta_common=common_meta((3, 16, 16), "abcde"), verify_x=x,
                            verify_y=y, layer=None if layer == "layer2" else layer,
                            log=lambda *a: None)
        check_file(path, layer, "0" * 64)
        ref_a, ref_g = replace_reference(net, layer, x, y)
        a, g = run_graph(path, x, y)
        out[layer] = (rel_err(a, ref_a), rel_err(g, ref_g))
        assert max(out[layer]) < 1e-4, (layer, out[layer])
    # bn2's output is not the block's output (the identity is added, then the ReLU)
    a_bn2, _ = run_graph(os.path.join(d, "res-layer2.0.bn2.cam.onnx"), x, y)
    a_out, _ = run_graph(os.path.join(d, "res-layer2.cam.onnx"), x, y)
    assert np.abs(a_bn2 - a_out).max() > 0.1
    return out


def test_default_layer_rule():
    prepared = exporter.prepare_model(convnet3())
    assert cam.find_layer(prepared, (1, 28, 28)) == ("relu3", [128, 7, 7])

    class Plain(nn.Module):   # the last conv's output itself when nothing after it keeps 7x7
        def __init__(self):
            super().__init__()
            self.c = nn.Conv2d(1, 4, 3, padding=1)
            self.fc = nn.Linear(4 * 14 * 14, 3)

        def forward(self, x):
            return self.fc(nn.functional.avg_pool2d(self.c(x), 2).flatten(1))

    assert cam.find_layer(Plain().eval(), (1, 28, 28)) == ("c", [4, 28, 28])
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(784, 32), nn.ReLU(), nn.Linear(32, 10))
    try:
        cam.find_layer(mlp, (1, 28, 28))
    except cam.CamLayerError as e:
        msg = str(e)
        assert "no nn.Conv2d" in msg and "Linear x2" in msg and "--layer" in msg, msg
    else:
        raise AssertionError("a network without Conv2d got a default layer")
    for bad, needle in (("layer3", "no module of that name"), ("fc", "not a 4-D")):
        try:
            cam.find_layer(TinyResNet().eval(), (3, 16, 16), bad)
        except cam.CamLayerError as e:
            assert repr(bad) in str(e) and needle in str(e), str(e)
        else:
            raise AssertionError(f"--layer {bad} accepted")
    return msg


def run(args, subprocess_=False):
    """export_cam.py with `args`: as a subprocess from the repository root (as a user runs it),
    or in this process (main(argv), no second torch import) -> (exit code, stdout + stderr)."""
    if subprocess_:
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        p = subprocess.run([sys.executable, COMMAND] + args, cwd=ROOT, capture_output=True,
                           text=True, env=env, timeout=300)
        return p.returncode, p.stdout + p.stderr
    import contextlib
    import io
    sys.path.insert(0, os.path.join(HERE, ".."))
    import export_cam
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        code = export_cam.main(args)
    return code, buf.getvalue()


def small_teacher(d):
    """A forward file and checkpoint as export_module.py leaves them (infoutil.source names the
    constructor): ConvNet-3 of width 8 at Fashion-MNIST's shape, random weights."""
    torch.manual_seed(3)
    net = randomise_bn(convnet3(width=8))
    fwd = exporter.forward_proto(exporter.prepare_model(net), (1, 28, 28))
    wh = metadata.weights_sha256(fwd)
    metadata.attach(fwd, metadata.build(
        "forward", input_shape=(1, 28, 28), normalization=metadata.mean_std([0.286], [0.353]),
        class_names=[str(i) for i in range(10)], framework="pytorch test", weights_hash=wh,
        dataset="fashion-mnist", test_top1=0.1,
        extra={"source": "infoutil_export.nets:convnet3", "source_kwargs": '{"width": 8}'}))
    onnx.save(fwd, os.path.join(d, "tiny.onnx"))
    torch.save(net.state_dict(), os.path.join(d, "tiny.pt"))
    return os.path.join(d, "tiny.onnx"), wh


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def test_command(d):
    """export_cam.py end to end, byte-identical on a rerun, the forward file's weights untouched
    and its list of siblings holding the new graph; then the refusals, each with nothing
    written."""
    fwd, wh = small_teacher(d)
    code, text = run([fwd], subprocess_=True)
    assert code == 0, text
    assert "weights_sha256" in text and "layer 'relu3'" in text and "max rel err activations" in text, text
    cam_path = os.path.join(d, "tiny.cam.onnx")
    meta = check_file(cam_path, "relu3", wh)
    fmeta = metadata.read(fwd)
    bound = ("infoutil.graph_weights_sha256", "infoutil.sibling_weights_sha256")
    assert {k: v for k, v in meta.items() if k not in ("infoutil.role", "infoutil.cam_layer") + bound} == \
        {k: v for k, v in fmeta.items() if k not in ("infoutil.role",) + bound}, (meta, fmeta)
    own = metadata.graph_weights_sha256(onnx.load(cam_path))
    assert meta["infoutil.graph_weights_sha256"] == own
    assert json.loads(fmeta["infoutil.sibling_weights_sha256"]) == {"cam": own}, fmeta
    assert metadata.weights_sha256(onnx.load(fwd)) == wh == fmeta["infoutil.graph_weights_sha256"]
    before = sha(fwd)
    first = sha(cam_path)
    os.rename(cam_path, cam_path + ".first")
    code, text = run([fwd])
    assert code == 0, text
    assert sha(cam_path) == first, "a rerun wrote a different file"
    os.remove(cam_path + ".first")
    assert sha(fwd) == before
    report = json.loads(next(ln for ln in text.splitlines() if ln.startswith("{")))

    refusals = {}
    out_dir = os.path.join(d, "refused")
    os.makedirs(out_dir)
    out = os.path.join(out_dir, "x.cam.onnx")
    # (c) a module that does not exist, and one that is not a feature map
    for layer, needle in (("relu9", "no module of that name"), ("fc", "not a 4-D")):
        code, text = run([fwd, "--layer", layer, "--out", out])
        assert code == 1 and "REFUSED" in text and repr(layer) in text and needle in text, text
        refusals[layer] = text.strip().splitlines()[-1]
    # (d) the weights of another network: the small teacher's file with a perturbed checkpoint
    sd = torch.load(os.path.join(d, "tiny.pt"), weights_only=True)
    sd["conv2.weight"][0, 0, 0, 0] += 1e-3
    torch.save(sd, os.path.join(d, "perturbed.pt"))
    code, text = run([fwd, "--checkpoint", os.path.join(d, "perturbed.pt"), "--out", out])
    assert code == 1 and "are not the network of" in text and "weights_sha256" in text, text
    refusals["one weight changed by 1e-3"] = text.strip().splitlines()[-1]
    assert os.listdir(out_dir) == [], os.listdir(out_dir)
    return report, refusals


def test_export_option(d):
    """exporter.export(cam=...) writes the third file beside the pair, with their hash."""
    torch.manual_seed(0)
    net = randomise_bn(convnet3(in_channels=1, width=8, image_size=16))
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(8, 1, 16, 16, generator=gen)
    y = torch.randint(0, 10, (8,), generator=gen)
    out = os.path.join(d, "opt")
    rep = exporter.export(net, out, "t", input_shape=(1, 16, 16), class_names=list("abcdefghij"),
                          normalization=metadata.BAKED, verify_x=x, verify_y=y, cam="relu2",
                          log=lambda *a: None)
    assert sorted(os.listdir(out)) == ["t.cam.onnx", "t.grad.onnx", "t.onnx"], os.listdir(out)
    check_file(os.path.join(out, "t.cam.onnx"), "relu2", rep["weights_sha256"])
    listed = json.loads(metadata.read(os.path.join(out, "t.onnx"))["infoutil.sibling_weights_sha256"])
    assert sorted(listed) == ["cam", "grad"], listed
    assert listed["cam"] == metadata.graph_weights_sha256(onnx.load(os.path.join(out, "t.cam.onnx")))
    assert rep["cam"]["grad_max_rel_err"] < 1e-4
    try:
        exporter.export(net, os.path.join(d, "none"), "t", input_shape=(1, 16, 16),
                        class_names=list("abcdefghij"), normalization=metadata.BAKED,
                        verify_x=x, verify_y=y, cam="conv7", log=lambda *a: None)
    except cam.CamLayerError as e:
        assert "'conv7'" in str(e)
    else:
        raise AssertionError("cam='conv7' accepted")
    assert not os.path.exists(os.path.join(d, "none"))
    return rep["cam"]


def test_on_tract(d):
    """The test's cam graphs on tract 0.23.9 (check_tract.py), where its Python bindings and
    onnxruntime are installed (INFOUTIL_TRACT_PYTHON, default /tmp/venv-tract/bin/python)."""
    if not os.path.exists(TRACT_PY) or subprocess.run(
            [TRACT_PY, "-c", "import tract, onnxruntime"], capture_output=True).returncode:
        return f"SKIP: tract check ({TRACT_PY} lacks tract or onnxruntime; see export/check_tract.py)"
    paths = [os.path.join(d, f) for f in sorted(os.listdir(d)) if f.endswith(".cam.onnx")]
    p = subprocess.run([TRACT_PY, os.path.join(HERE, "..", "check_tract.py")] + paths,
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout.strip()


def test_metadata_role():
    common = common_meta((1, 8, 8), "ab")
    assert metadata.build("cam", cam_layer="relu3", **common)["infoutil.cam_layer"] == "relu3"
    for bad in (dict(role="cam"), dict(role="forward", cam_layer="relu3")):
        role = bad.pop("role")
        try:
            metadata.build(role, **bad, **common)
        except ValueError:
            continue
        raise AssertionError(f"metadata.build({role!r}, {bad}) accepted")


if __name__ == "__main__":
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    test_metadata_role()
    with tempfile.TemporaryDirectory() as d:
        for layer, (ea, eg) in test_convnet3_against_split_reference(d).items():
            print(f"convnet3 {layer} vs the split network (torch.func.grad, float64): "
                  f"activations {ea:.3g}, gradients {eg:.3g}")
        for layer, (ea, eg) in test_reused_relu_against_replace_reference(d).items():
            print(f"TinyResNet {layer} vs the replaced-output reference: activations {ea:.3g}, "
                  f"gradients {eg:.3g}")
        print("default rule: relu3 (ConvNet-3), layer2 (TinyResNet), the conv itself; no Conv2d:\n ",
              test_default_layer_rule())
        print(test_on_tract(d))
        shutil.rmtree(d)
        os.makedirs(d)
        c = test_export_option(d)
        print(f"exporter.export(cam='relu2'): activations {c['act_max_rel_err']:.3g}, "
              f"gradients {c['grad_max_rel_err']:.3g}")
        report, refusals = test_command(d)
        print(f"export_cam.py: activations {report['act_max_rel_err']:.3g}, gradients "
              f"{report['grad_max_rel_err']:.3g}, {report['file']['bytes']} bytes, byte-identical rerun")
        for k, v in refusals.items():
            print(f"refused ({k}): {v}")
    print("ok")
