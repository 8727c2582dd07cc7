"""Gradient graph for a teacher that exists only as a forward ONNX file (Keras, JAX, TensorFlow or
PyTorch): ONNX -> onnx2torch -> the same ghost-norm exporter and verification.

    python export/from_onnx.py SRC.onnx --out-dir models --name NAME \
        [--input-shape 1 28 28 --class-names a b ... --mean 0.286 --std 0.353]

Both output files are re-exported from the converted module (so their weights hash agrees);
infoutil.* metadata already in SRC is kept unless overridden. Checks, in order: the converted
module reproduces SRC under ONNX Runtime (max |logit diff| <= 1e-4), then the usual forward and
gradient verification against torch.func. Inputs for the checks: --images (idx gzip, normalised
with the metadata) or seeded standard-normal inputs.

Scope: the graph's parameters must become nn.Conv2d / BatchNorm2d / Linear under onnx2torch
(Conv, BatchNormalization, Gemm). Parameter-free onnx2torch ops (Reshape, Add of two activations,
...) are differentiated by autograd. A float initializer used by a generic op (Keras's
MatMul + Add dense layers) is refused by name: see export/README.md.
"""
import argparse
import json
import os
import sys

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper, version_converter

from infoutil_export import exporter, metadata, verify
from infoutil_export.data import read_idx_images, read_idx_labels

ONNX2TORCH_OPSET = 17   # onnx2torch 1.5 lacks several newer op versions (AveragePool-19, Cast-19)


def prepare_onnx(model):
    """Make an exporter's forward graph digestible for onnx2torch."""
    consts = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    consts[node.output[0]] = numpy_helper.to_array(a.t)
        # allowzero=1 (the dynamo exporter's choice) means the same as 0 when the target shape
        # holds no zero; onnx2torch implements only 0
        if node.op_type == "Reshape":
            shape = consts.get(node.input[1])
            for a in node.attribute:
                if a.name == "allowzero" and a.i == 1 and shape is not None and (shape != 0).all():
                    a.i = 0
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if opset > ONNX2TORCH_OPSET:
        model = version_converter.convert_version(model, ONNX2TORCH_OPSET)
    return model


class BatchReshape(nn.Module):
    """x.reshape(N, *tail): what a runtime-shape ONNX Reshape means for a batch-first CNN, and a
    form that symbolic tracing keeps batch-dynamic (onnx2torch reads the shape tensor's values,
    which stops torch.export with a data-dependent guard)."""

    def __init__(self, tail):
        super().__init__()
        self.tail = [int(v) for v in tail]

    def forward(self, x, shape=None):
        return x.reshape(x.shape[0], *self.tail)


def static_reshapes(tm, input_shape):
    """Replace every onnx2torch Reshape whose output is [batch, fixed...] at two batch sizes."""
    from onnx2torch.node_converters.reshape import OnnxReshape
    seen = {}
    hooks = [m.register_forward_hook(lambda m, i, o: seen.setdefault(m, []).append((i[0].shape, o.shape)))
             for m in tm.modules() if isinstance(m, OnnxReshape)]
    with torch.no_grad():
        for b in (2, 3):
            tm(torch.zeros(b, *input_shape))
    for h in hooks:
        h.remove()
    replaced = 0
    for name, m in list(tm.named_modules()):
        if m not in seen:
            continue
        (i2, o2), (i3, o3) = seen[m]
        if not (i2[0] == o2[0] == 2 and i3[0] == o3[0] == 3 and o2[1:] == o3[1:]):
            raise exporter.UnsupportedModelError(f"Reshape '{name}' does not keep the batch first")
        tm.add_submodule(name, BatchReshape(o2[1:]))
        for node in tm.graph.nodes:
            if node.op == "call_module" and node.target == name:
                node.args = (node.args[0],)   # drop the shape tensor: its producers become dead
        replaced += 1
    if replaced:
        tm.graph.eliminate_dead_code()
        tm.recompile()
    return replaced


def is_parameter_free_onnx_op(m):
    return (type(m).__module__.startswith("onnx2torch")
            and not any(True for _ in m.parameters(recurse=False)))


def check_converted(tm):
    """Every float tensor the graph computes with must be a parameter of a supported layer."""
    stray = []
    for name, m in tm.named_modules():
        for k, b in m.named_buffers(recurse=False):
            if b.is_floating_point() and not isinstance(m, nn.BatchNorm2d):
                stray.append(f"{name}.{k}" if name else k)
    if stray:
        raise exporter.UnsupportedModelError(
            "float initializers used by generic ops (not Conv/BatchNormalization/Gemm), whose "
            f"gradient the exporter has no rule for: {stray}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--input-shape", type=int, nargs=3)
    ap.add_argument("--class-names", nargs="+")
    ap.add_argument("--mean", type=float, nargs="+")
    ap.add_argument("--std", type=float, nargs="+")
    ap.add_argument("--baked", action="store_true", help="the graph normalises its [0,1] input itself")
    ap.add_argument("--images", help="idx3 gzip images for the checks (labels file alongside)")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import onnx2torch

    src = onnx.load(args.src)
    meta = metadata.read(src)
    get = lambda k: meta.get(metadata.PREFIX + k)  # noqa: E731
    input_shape = args.input_shape or (json.loads(get("input_shape")) if get("input_shape") else None)
    class_names = args.class_names or (json.loads(get("class_names")) if get("class_names") else None)
    if args.baked:
        norm = metadata.BAKED
    elif args.mean and args.std:
        norm = metadata.mean_std(args.mean, args.std)
    else:
        norm = json.loads(get("normalization")) if get("normalization") else None
    if input_shape is None or class_names is None or norm is None:
        ap.error("SRC has no infoutil metadata: give --input-shape, --class-names and --mean/--std or --baked")

    tm = onnx2torch.convert(prepare_onnx(src)).eval()
    check_converted(tm)
    static_reshapes(tm, input_shape)
    for name, m in tm.named_modules():
        if is_parameter_free_onnx_op(m) or isinstance(m, BatchReshape) or (
                name == "initializers" and not any(True for _ in m.children())):
            exporter.ALLOWED_EXTRA.add(type(m))

    if args.images:
        x_u8 = read_idx_images(args.images)[:args.n]
        y = torch.from_numpy(read_idx_labels(args.images.replace("images-idx3", "labels-idx1"))[:args.n])
        x = torch.from_numpy(np.array(x_u8, dtype=np.float32) / 255.0).unsqueeze(1)
        if norm["kind"] == "mean_std":
            mean = torch.tensor(norm["mean"]).reshape(1, -1, 1, 1)
            std = torch.tensor(norm["std"]).reshape(1, -1, 1, 1)
            x = (x - mean) / std
    else:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(args.n, *input_shape, generator=gen)
        y = torch.randint(0, len(class_names), (args.n,), generator=gen)

    # the conversion itself must be faithful before anything else is checked
    with torch.no_grad():
        converted = tm(x).numpy()
    original = verify.ort_session(args.src).run(None, {src.graph.input[0].name: x.numpy()})[0]
    conv_err = float(np.abs(converted - original).max())
    print(f"[{args.name}] onnx2torch conversion: max |logit diff| vs SRC = {conv_err:.3g}")
    if conv_err > exporter.FORWARD_TOL:
        print(f"[{args.name}] REFUSED: the converted module does not reproduce {args.src}", file=sys.stderr)
        return 1

    passthrough = {k[len(metadata.PREFIX):]: get(k[len(metadata.PREFIX):]) for k in meta
                   if k.startswith(metadata.PREFIX)}
    try:
        report = exporter.export(
            tm, args.out_dir, args.name, input_shape=input_shape, class_names=class_names,
            normalization=norm, verify_x=x, verify_y=y,
            checkpoint_epoch=passthrough.get("checkpoint_epoch"),
            epochs_total=passthrough.get("epochs_total"), dataset=passthrough.get("dataset"),
            test_top1=float(passthrough["test_top1"]) if passthrough.get("test_top1") else None,
            extra={"source": os.path.basename(args.src)})
    except (exporter.UnsupportedModelError, exporter.VerificationError) as e:
        print(f"[{args.name}] REFUSED: {e}", file=sys.stderr)
        return 1
    report["conversion_max_abs_err"] = conv_err
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
