"""Export a PyTorch CNN as the two ONNX files infoutil reads: NAME.onnx (x -> logits) and
NAME.grad.onnx (x, y -> norms, sqnorms), with verified numbers and the metadata contract.

Nothing is written unless both graphs pass onnx.checker and the numerical checks: files are
written under temporary names and renamed at the very end.
"""
import copy
import os
import warnings

import onnx
import torch
import torch.nn as nn
from torch.fx.experimental.proxy_tensor import make_fx

from . import metadata, verify
from .decomps import decomposition_table
from .ghost import GhostNorm, PARAM_LAYERS

SUPPORTED = (nn.Conv2d, nn.BatchNorm2d, nn.Linear, nn.ReLU, nn.MaxPool2d, nn.AvgPool2d,
             nn.AdaptiveAvgPool2d, nn.Flatten, nn.Identity, nn.Dropout)
SUPPORTED_NAMES = ", ".join(t.__name__ for t in SUPPORTED)
# parameter-free leaf types a caller vouches for (from_onnx.py: onnx2torch's functional ops);
# autograd differentiates them and the numerical verification checks the result
ALLOWED_EXTRA = set()
FORWARD_TOL = 1e-4   # max abs logit difference
GRAD_TOL = 1e-4      # max relative error of norms and sqnorms (see verify.py)


class UnsupportedModelError(ValueError):
    pass


class VerificationError(RuntimeError):
    pass


def check_supported(model):
    """Refuse, by layer name, anything the gradient rules do not cover."""
    problems = []
    for name, m in model.named_modules():
        label = f"layer '{name or '<root>'}' is {type(m).__name__}"
        has_children = any(True for _ in m.children())
        if has_children:
            # containers (Sequential, ResNet blocks...) are fine if they own no parameters;
            # their forward code (residual additions, flatten) is differentiated by autograd
            own = [k for k, _ in m.named_parameters(recurse=False)]
            if own and not isinstance(m, PARAM_LAYERS):
                problems.append(f"{label} with its own parameters {own}, which the gradient "
                                "exporter does not support")
            continue
        if not isinstance(m, SUPPORTED):
            if type(m) in ALLOWED_EXTRA and not any(True for _ in m.parameters(recurse=False)):
                continue
            problems.append(f"{label}, which the gradient exporter does not support")
        elif isinstance(m, nn.Conv2d):
            if m.groups != 1:
                problems.append(f"{label} with groups={m.groups}; only groups=1 is supported")
            if m.padding_mode != "zeros":
                problems.append(f"{label} with padding_mode={m.padding_mode!r}; only 'zeros'")
        elif isinstance(m, nn.BatchNorm2d) and m.running_mean is None:
            problems.append(f"{label} without running statistics (track_running_stats=False): "
                            "eval-mode samples would not be independent")
        elif isinstance(m, nn.MaxPool2d) and m.return_indices:
            problems.append(f"{label} with return_indices=True")
        elif isinstance(m, nn.AvgPool2d):
            pad = m.padding if isinstance(m.padding, (tuple, list)) else (m.padding,)
            if m.ceil_mode or (any(pad) and not m.count_include_pad and m.divisor_override is None):
                problems.append(f"{label} with a variable divisor (ceil_mode or padding without "
                                "count_include_pad)")
    seen = {}
    for name, m in model.named_modules():
        for pname, p in m.named_parameters(recurse=False):
            if id(p) in seen:
                problems.append(f"parameter '{name}.{pname}' is shared with '{seen[id(p)]}'")
            seen[id(p)] = f"{name}.{pname}"
    if problems:
        raise UnsupportedModelError("cannot export a gradient graph:\n  " + "\n  ".join(problems)
                                    + f"\nsupported layers: {SUPPORTED_NAMES}")


def prepare_model(model):
    """A float32, eval-mode, frozen copy without in-place ReLU (in-place ops break the output
    hooks of the gradient graph). The caller's model is left untouched."""
    m = copy.deepcopy(model).float().eval()
    for mod in m.modules():
        if isinstance(mod, nn.ReLU):
            mod.inplace = False
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def last_layer_columns(model, input_shape):
    """sqnorms columns of the last parameterised layer that runs in forward (the classifier)."""
    order = []
    hooks = [m.register_forward_hook(lambda mod, i, o, n=n: order.append(n))
             for n, m in model.named_modules()
             if isinstance(m, PARAM_LAYERS) and any(True for _ in m.parameters(recurse=False))]
    with torch.no_grad():
        model(torch.zeros(2, *input_shape))
    for h in hooks:
        h.remove()
    last = order[-1]
    prefix = last + "." if last else ""
    names = [k for k, _ in model.named_parameters()]
    own = {prefix + k for k, _ in model.get_submodule(last).named_parameters(recurse=False)}
    return [i for i, k in enumerate(names) if k in own]


def _onnx_export(module, args, input_names, output_names):
    n = torch.export.Dim("N", min=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(module, args, dynamo=True, input_names=input_names,
                                 output_names=output_names,
                                 dynamic_shapes=tuple({0: n} for _ in args),
                                 external_data=False, verbose=False)
    return prog.model_proto


def forward_proto(model, input_shape):
    return _onnx_export(model, (torch.zeros(4, *input_shape),), ["x"], ["logits"])


def grad_proto(model, input_shape):
    """make_fx traces the autograd backward into forward aten ops (with the decompositions that
    keep it exportable), with a symbolic batch; the dynamo exporter then turns it into ONNX."""
    ghost = GhostNorm(model)
    x4 = torch.zeros(4, *input_shape)
    y4 = torch.zeros(4, dtype=torch.int64)
    gm = make_fx(ghost, tracing_mode="symbolic", decomposition_table=decomposition_table(),
                 _allow_non_fake_inputs=True)(x4, y4)
    return _onnx_export(gm, (x4, y4), ["x", "y"], ["norms", "sqnorms"]), ghost.param_names


def export(model, out_dir, name, *, input_shape, class_names, normalization, verify_x, verify_y,
           checkpoint_epoch=None, epochs_total=None, dataset=None, test_top1=None, extra=None,
           log=print):
    """Write OUT_DIR/NAME.onnx and OUT_DIR/NAME.grad.onnx; return the verification report.
    verify_x: real, already-normalised inputs [n, C, H, W]; verify_y: their labels [n]."""
    check_supported(model)
    model = prepare_model(model)
    input_shape = tuple(int(v) for v in input_shape)

    fwd = forward_proto(model, input_shape)
    grd, param_names = grad_proto(model, input_shape)
    common = dict(input_shape=input_shape, normalization=normalization, class_names=class_names,
                  framework=f"pytorch {torch.__version__.split('+')[0]}",
                  weights_hash=metadata.weights_sha256(fwd), checkpoint_epoch=checkpoint_epoch,
                  epochs_total=epochs_total, dataset=dataset, test_top1=test_top1, extra=extra)
    last = last_layer_columns(model, input_shape)
    metadata.attach(fwd, metadata.build("forward", **common))
    metadata.attach(grd, metadata.build("grad", param_names=param_names, last_layer_params=last,
                                        **common))

    os.makedirs(out_dir, exist_ok=True)
    final = {"forward": os.path.join(out_dir, name + ".onnx"),
             "grad": os.path.join(out_dir, name + ".grad.onnx")}
    tmp = {k: os.path.join(out_dir, f".{os.path.basename(v)}.tmp-{os.getpid()}")
           for k, v in final.items()}
    try:
        for role, proto in (("forward", fwd), ("grad", grd)):
            onnx.save_model(proto, tmp[role], save_as_external_data=False)
            onnx.checker.check_model(tmp[role])
            reloaded = onnx.load(tmp[role])
            if role == "forward" and metadata.weights_sha256(reloaded) != common["weights_hash"]:
                raise VerificationError("forward initializers changed on save")
        report = {"forward": verify.check_forward(tmp["forward"], model, verify_x),
                  "grad": verify.check_grad(tmp["grad"], model, verify_x, verify_y)}
        log(f"[{name}] forward: max |logit diff| = {report['forward']['forward_max_abs_err']:.3g} "
            f"(tolerance {FORWARD_TOL:g}, n={report['forward']['n']})")
        g = report["grad"]
        if "batch_consistency_error" in g:
            raise VerificationError(g["batch_consistency_error"])
        log(f"[{name}] grad: max rel err norms = {g['norm_max_rel_err']:.3g}, sqnorms = "
            f"{g['sqnorm_max_rel_err']:.3g} (tolerance {GRAD_TOL:g}, n={g['n']}, "
            f"{g['n_below_floor']} below the underflow floor; unfloored max "
            f"{g['norm_max_rel_err_unfloored']:.3g}; PyTorch's own float32 torch.func: "
            f"{g['torch_func_float32_max_rel_err']:.3g})")
        if report["forward"]["forward_max_abs_err"] > FORWARD_TOL:
            raise VerificationError(f"forward graph disagrees with PyTorch: {report['forward']}")
        if g["norm_max_rel_err"] > GRAD_TOL or g["sqnorm_max_rel_err"] > GRAD_TOL:
            raise VerificationError(f"gradient graph disagrees with torch.func: {g}")
        for role in ("forward", "grad"):
            os.replace(tmp[role], final[role])
    finally:
        for path in tmp.values():
            if os.path.exists(path):
                os.remove(path)
    report["files"] = {k: {"path": v, "bytes": os.path.getsize(v)} for k, v in final.items()}
    report["weights_sha256"] = common["weights_hash"]
    return report
