"""Export a PyTorch network as the two ONNX files infoutil reads: NAME.onnx (x -> logits) and
NAME.grad.onnx (x, y -> norms, sqnorms), with verified numbers and the metadata contract; on
request a third, NAME.cam.onnx (x, y -> activations, gradients at one layer, for Grad-CAM; see
cam.py), also verified.

Nothing is written unless both graphs pass onnx.checker and the numerical checks: files are
written under temporary names and renamed at the very end.
"""
import copy
import os

import onnx
import torch
from torch.fx.experimental.proxy_tensor import make_fx

from . import cam as cam_graph
from . import ghost, metadata, verify
from .decomps import decomposition_table
from .torch_onnx import onnx_export
from .cam import CamLayerError  # noqa: F401  (re-exported)
from .ghost import GhostNorm, UnsupportedModelError  # noqa: F401  (re-exported)

# Max logit difference, absolute for logits up to 1 and relative to the largest logit above: two
# float32 implementations agree to ~1e-7 of the values they sum, and a deep net with random
# weights (ResNet-50 at 224 px) has logits in the hundreds.
FORWARD_TOL = 1e-4
GRAD_TOL = 1e-4      # max relative error of norms and sqnorms (see verify.py)
CAM_TOL = 1e-4       # max error of activations and gradients, relative to the sample's max |value|
CAM_BATCH_TOL = 1e-5  # batch of n vs each sample alone, same scale


class VerificationError(RuntimeError):
    pass


def check_supported(model, input_shape):
    """Refuse, naming each parameter and the torch call that reads it, anything the per-sample
    rules do not cover (all problems at once). Returns the classifier's sqnorms columns."""
    return ghost.check(prepare_model(model), tuple(input_shape))


def prepare_model(model):
    """A float32, eval-mode, frozen copy with in-place activations switched off (an in-place op
    would modify a tensor the gradient graph differentiates with respect to). The caller's model
    is left untouched."""
    m = copy.deepcopy(model).float().eval()
    for mod in m.modules():
        if getattr(mod, "inplace", False) is True:
            mod.inplace = False
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def graph_shape(input_shape, layout):
    """The graph's own input shape (without N) for a [C, H, W] teacher in `layout`."""
    c, h, w = input_shape
    return (c, h, w) if layout == "NCHW" else (h, w, c)


def forward_proto(model, shape, input_name="x"):
    return onnx_export(model, (torch.zeros(4, *shape),), [input_name], ["logits"])


def grad_proto(model, shape, input_name="x"):
    """make_fx traces the autograd backward into forward aten ops (with the decompositions that
    keep it exportable), with a symbolic batch; the dynamo exporter then turns it into ONNX."""
    g = GhostNorm(model)
    x4 = torch.zeros(4, *shape)
    y4 = torch.zeros(4, dtype=torch.int64)
    gm = make_fx(g, tracing_mode="symbolic", decomposition_table=decomposition_table(),
                 _allow_non_fake_inputs=True)(x4, y4)
    return onnx_export(gm, (x4, y4), [input_name, "y"], ["norms", "sqnorms"]), g.param_names


def check_cam_report(name, c, log=print):
    """Log the cam verification and raise VerificationError unless it passes."""
    if "error" in c:
        raise VerificationError(f"cam graph: {c['error']}")
    log(f"[{name}] cam ({c['layer']}, [K, h, w] = {c['shape']}): max rel err activations = "
        f"{c['act_max_rel_err']:.3g}, gradients = {c['grad_max_rel_err']:.3g} (tolerance "
        f"{CAM_TOL:g}, relative to each sample's max |value|, n={c['n']}); batch of {c['n']} vs "
        f"each sample alone: {c['batch_max_rel_diff']:.3g} (tolerance {CAM_BATCH_TOL:g}); "
        f"PyTorch's own float32: {c['torch_float32_act_max_rel_err']:.3g} / "
        f"{c['torch_float32_grad_max_rel_err']:.3g}")
    if c["act_max_rel_err"] > CAM_TOL or c["grad_max_rel_err"] > CAM_TOL:
        raise VerificationError(f"cam graph disagrees with float64 PyTorch autograd: {c}")
    if c["batch_max_rel_diff"] > CAM_BATCH_TOL:
        raise VerificationError(f"cam graph: a batch of {c['n']} gives different results from "
                                f"each sample alone ({c['batch_max_rel_diff']:.3g})")


def export_cam(model, path, *, input_shape, meta_common, verify_x, verify_y, layer=None,
               layout="NCHW", input_name="x", forward_path=None, log=print):
    """Write the Grad-CAM graph to `path` (NAME.cam.onnx) for `model`: traced, verified on ONNX
    Runtime against float64 autograd, then renamed into place. meta_common: the keyword
    arguments of metadata.build shared with the forward file (weights_hash included).
    layer: a module name, or None for the default rule (cam.find_layer). forward_path: the
    forward graph of the package, re-stamped (metadata only, written in place atomically after
    the Grad-CAM graph) to list the new graph's weights hash, without which infoutil refuses it;
    None writes the Grad-CAM graph alone. Returns the report."""
    shape = graph_shape(tuple(int(v) for v in input_shape), layout)
    model = prepare_model(model)
    layer, _ = cam_graph.find_layer(model, shape, layer)
    proto = cam_graph.cam_proto(model, shape, layer, input_name)
    metadata.attach(proto, metadata.build("cam", cam_layer=layer, **meta_common))
    forward = None
    if forward_path is not None:
        forward = onnx.load(forward_path, load_external_data=False)
        metadata.bind(forward, {"cam": proto})
    else:
        metadata.stamp_own(proto)
    out_dir = os.path.dirname(os.path.abspath(path))
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        onnx.save_model(proto, tmp, save_as_external_data=False)
        onnx.checker.check_model(tmp)
        report = dict(verify.check_cam(tmp, model, verify_x, verify_y, layer, input_name), layer=layer)
        check_cam_report(os.path.basename(path)[:-len(".cam.onnx")], report, log)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    if forward is not None:
        metadata.write_atomic(forward, forward_path)
    report["file"] = {"path": path, "bytes": os.path.getsize(path)}
    return report


def export(model, out_dir, name, *, input_shape, class_names, normalization, verify_x, verify_y,
           checkpoint_epoch=None, epochs_total=None, dataset=None, test_top1=None, extra=None,
           layout="NCHW", input_name="x", forward=None, framework=None, cam=False, log=print):
    """Write OUT_DIR/NAME.onnx and OUT_DIR/NAME.grad.onnx; return the verification report.
    input_shape: [C, H, W]; layout: how the graph takes it ("NCHW" or "NHWC"); verify_x: real,
    already-normalised inputs in the graph's layout; verify_y: their labels [n].
    forward: an existing forward ModelProto to ship instead of re-exporting the model (a graph
    from another framework, whose input name and layout the metadata then declares).
    cam: also write OUT_DIR/NAME.cam.onnx, the Grad-CAM graph (cam.py): True for the default
    layer, or a module name; verified like the others, all files renamed into place together."""
    if layout not in ("NCHW", "NHWC"):
        raise ValueError(f"layout must be NCHW or NHWC, not {layout!r}")
    if cam is not False and cam is not True and not isinstance(cam, str):
        raise ValueError(f"cam must be False, True or a module name, not {cam!r}")
    input_shape = tuple(int(v) for v in input_shape)
    shape = graph_shape(input_shape, layout)
    last = check_supported(model, shape)
    model = prepare_model(model)
    cam_layer = None
    if cam is not False:   # a bad layer is refused before the slow work
        cam_layer, _ = cam_graph.find_layer(model, shape, None if cam is True else cam)

    fwd = forward if forward is not None else forward_proto(model, shape, input_name)
    grd, param_names = grad_proto(model, shape, input_name)
    common = dict(input_shape=input_shape, normalization=normalization, class_names=class_names,
                  framework=framework or f"pytorch {torch.__version__.split('+')[0]}",
                  weights_hash=metadata.weights_sha256(fwd), checkpoint_epoch=checkpoint_epoch,
                  epochs_total=epochs_total, dataset=dataset, test_top1=test_top1,
                  layout=layout, input_name=input_name, extra=extra)
    metadata.attach(fwd, metadata.build("forward", **common))
    metadata.attach(grd, metadata.build("grad", param_names=param_names, last_layer_params=last,
                                        **common))
    protos = [("forward", fwd), ("grad", grd)]
    if cam_layer is not None:
        cmp = cam_graph.cam_proto(model, shape, cam_layer, input_name)
        metadata.attach(cmp, metadata.build("cam", cam_layer=cam_layer, **common))
        protos.append(("cam", cmp))
    metadata.bind(fwd, {role: proto for role, proto in protos if role != "forward"})

    os.makedirs(out_dir, exist_ok=True)
    final = {"forward": os.path.join(out_dir, name + ".onnx"),
             "grad": os.path.join(out_dir, name + ".grad.onnx")}
    if cam_layer is not None:
        final["cam"] = os.path.join(out_dir, name + ".cam.onnx")
    tmp = {k: os.path.join(out_dir, f".{os.path.basename(v)}.tmp-{os.getpid()}")
           for k, v in final.items()}
    try:
        for role, proto in protos:
            onnx.save_model(proto, tmp[role], save_as_external_data=False)
            onnx.checker.check_model(tmp[role])
            reloaded = onnx.load(tmp[role])
            if role == "forward" and metadata.weights_sha256(reloaded) != common["weights_hash"]:
                raise VerificationError("forward initializers changed on save")
        report = {"forward": verify.check_forward(tmp["forward"], model, verify_x, input_name),
                  "grad": verify.check_grad(tmp["grad"], model, verify_x, verify_y, input_name,
                                           tol=GRAD_TOL)}
        fwd = report["forward"]
        fwd_tol = FORWARD_TOL * max(1.0, fwd["logit_scale"])
        log(f"[{name}] forward: max |logit diff| = {fwd['forward_max_abs_err']:.3g} "
            f"(tolerance {fwd_tol:.3g} = {FORWARD_TOL:g} x max(1, max |logit| {fwd['logit_scale']:.3g}), "
            f"n={fwd['n']})")
        if "output_warning" in fwd:
            log(f"[{name}] WARNING: {fwd['output_warning']}")
        g = report["grad"]
        if "batch_consistency_error" in g:
            raise VerificationError(g["batch_consistency_error"])
        log(f"[{name}] grad: max rel err norms = {g['norm_max_rel_err']:.3g}, sqnorms = "
            f"{g['sqnorm_max_rel_err']:.3g} (tolerance {GRAD_TOL:g}, n={g['n']}, "
            f"reference norms {g['ref_norm_min']:.3g} … {g['ref_norm_max']:.3g}; PyTorch's own "
            f"float32 torch.func: {g['torch_func_float32_max_rel_err']:.3g})")
        if "n_over_tol_plain" in g:
            log(f"[{name}] grad: {g['n_over_tol_plain']} sample(s) over {GRAD_TOL:g} against plain "
                f"float64; " + (f"own branches not replayable: {g['own_branch_error']}"
                                if "own_branch_error" in g else
                                f"{g['n_branch_flipped']} of them take another ReLU / Clip / "
                                f"MaxPool branch in the graph's float32 forward than in float64 "
                                f"({g['n_decisions_flipped']} decisions); against float64 on the "
                                f"graph's own branches: max rel err norms = "
                                f"{g['own_branch_norm_max_rel_err']:.3g}, sqnorms = "
                                f"{g['own_branch_sqnorm_max_rel_err']:.3g}; unexplained: "
                                f"{g['n_unexplained']}"))
        if fwd["forward_max_abs_err"] > fwd_tol:
            raise VerificationError(f"forward graph disagrees with PyTorch: {report['forward']}")
        if not g["verified"]:   # over tol against float64, and not explained by a branch flip
            raise VerificationError(f"gradient graph disagrees with torch.func: {g}")
        if cam_layer is not None:
            report["cam"] = dict(verify.check_cam(tmp["cam"], model, verify_x, verify_y,
                                                  cam_layer, input_name), layer=cam_layer)
            check_cam_report(name, report["cam"], log)
        for role in final:
            os.replace(tmp[role], final[role])
    finally:
        for path in tmp.values():
            if os.path.exists(path):
                os.remove(path)
    report["files"] = {k: {"path": v, "bytes": os.path.getsize(v)} for k, v in final.items()}
    report["weights_sha256"] = common["weights_hash"]
    return report
