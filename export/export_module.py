"""Your own PyTorch class (or any importable constructor) and its weights -> infoutil's verified
forward + gradient pair, with the metadata contract.

    python export/export_module.py --module torchvision.models:mobilenet_v3_small \
        --kwargs '{"num_classes": 10, "width_mult": 0.5}' --weights mnv3.pt \
        --input-shape 3,32,32 --mean 0.49,0.48,0.45 --std 0.25,0.24,0.26 \
        --class-names airplane,automobile,bird,cat,deer,dog,frog,horse,ship,truck \
        --out models/my-mnv3.onnx

--module pkg.mod:Name is imported from the current directory, from each --path, or from the
installed packages; Name (dotted for a nested attribute) is a class or a function returning an
nn.Module, called with the --kwargs JSON object. A kwargs value {"$import": "pkg.mod:Name"} is
replaced by that object (e.g. a block class: {"block": {"$import": "timm.models.resnet:BasicBlock"}}).
--weights is a state_dict (.pt / .pth), or a checkpoint dict holding one under "state_dict",
"model" or "model_state_dict"; loading is strict: a file that does not fit is refused, listing the
missing, unexpected and wrongly shaped keys. A "module." prefix on every key (DataParallel) is
dropped. Files are read with torch.load(weights_only=True) unless --trust-checkpoint.

Normalisation: --mean/--std (after pixels / 255), or --pixels unit|raw255|symmetric (what the
network takes: [0, 1], 0..255, [-1, 1]). Class names: a comma list, or a file (a JSON list or one
name a line); their number must be the network's output width.

Verification (exporter.export, as for every other path here): the forward graph on ONNX Runtime
against the module (max |logit diff| <= 1e-4, batches of n, 1 and 3) and the gradient graph
against float64 torch.func per-sample gradients (max relative error <= 1e-4). Its inputs:
--images (an image folder root/<class>/*.png|jpg with classes by name or number, an HDF5 file
with /images and /labels as infoutil reads it, idx3 gzip like Fashion-MNIST with its labels file
alongside, or a .npy of uint8 pixels [N, C, H, W] / [N, H, W, C] / [N, H, W] with --labels .npy
optional, else the network's own predictions; any size, resized and centre-cropped as the
metadata says, infoutil_export/images.py), normalised as the metadata says; without --images, seeded standard-normal inputs
and labels. Nothing is written unless it passes; then OUT (NAME.onnx), NAME.grad.onnx and
NAME.export.json (the report) in OUT's folder. Exit 1 on a refusal, 2 on a usage error.
"""
import argparse
import importlib
import json
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_teacher import verification_set  # noqa: E402
from from_onnx import PIXELS, normalized  # noqa: E402
from infoutil_export import exporter, images, metadata  # noqa: E402

CHECKPOINT_KEYS = ("state_dict", "model", "model_state_dict")


class CommandError(ValueError):
    """A refusal the user can act on (bad weights, class names that do not fit, ...)."""


def resolve(spec):
    """'pkg.mod:Name.Attr' -> the object."""
    if spec.count(":") != 1:
        raise CommandError(f"--module {spec!r}: expected pkg.module:Name")
    mod_name, attr = spec.split(":")
    try:
        obj = importlib.import_module(mod_name)
    except ImportError as e:
        raise CommandError(f"cannot import {mod_name!r} ({e}); searched the current directory, "
                           f"--path and the installed packages") from e
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise CommandError(f"{mod_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def imports_in(v):
    """kwargs with every {"$import": "pkg.mod:Name"} replaced by the object."""
    if isinstance(v, dict):
        if set(v) == {"$import"}:
            return resolve(v["$import"])
        return {k: imports_in(x) for k, x in v.items()}
    if isinstance(v, list):
        return [imports_in(x) for x in v]
    return v


def build(spec, kwargs):
    ctor = resolve(spec)
    if not callable(ctor):
        raise CommandError(f"{spec} is not a class or function")
    try:
        model = ctor(**imports_in(kwargs))
    except TypeError as e:   # e.g. an unknown keyword argument
        raise CommandError(f"{spec}(**{json.dumps(kwargs)}) failed: {e}") from e
    if not isinstance(model, nn.Module):
        raise CommandError(f"{spec}(**kwargs) returned {type(model).__name__}, not a torch.nn.Module")
    return model


def read_state_dict(path, trust=False):
    """A state_dict from a .pt/.pth: the file itself, a checkpoint's "state_dict" / "model" /
    "model_state_dict" entry, or a pickled module's state_dict (--trust-checkpoint only)."""
    import pickle
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as e:
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln).strip() for ln in str(e).splitlines()]
        why = next((ln for ln in lines if "Unsupported global" in ln), lines[0] if lines else "")
        raise CommandError(f"{path}: torch.load(weights_only=True) refuses it ({why}); if you "
                           "trust the file (it can run code when unpickled), add --trust-checkpoint") from e
    except FileNotFoundError as e:
        raise CommandError(f"{path}: no such file") from e
    except Exception as e:  # noqa: BLE001  (torch raises many kinds for a file that is not its own)
        raise CommandError(f"{path}: cannot read it as a torch file ({type(e).__name__}: {e})") from e
    where = "the file"
    if isinstance(obj, dict) and not all(isinstance(v, torch.Tensor) for v in obj.values()):
        for key in CHECKPOINT_KEYS:
            if key in obj and isinstance(obj[key], (dict, nn.Module)):
                obj, where = obj[key], f"its {key!r} entry"
                break
        else:
            raise CommandError(f"{path} is a dict with non-tensor values but none of the keys "
                               f"{list(CHECKPOINT_KEYS)}: top-level keys {sorted(map(str, obj))[:20]}")
    if isinstance(obj, nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, dict):
        raise CommandError(f"{path}: {where} is a {type(obj).__name__}, not a state_dict")
    return dict(obj), where


def _listing(keys, limit=20):
    keys = sorted(keys)
    more = f", ... ({len(keys) - limit} more)" if len(keys) > limit else ""
    return f"{len(keys)} key{'s' if len(keys) != 1 else ''}: " + ", ".join(keys[:limit]) + more


def load_weights(model, path, what, trust=False, log=print):
    """Strict loading; on any mismatch a CommandError listing the keys."""
    sd, where = read_state_dict(path, trust)
    want = model.state_dict()
    if sd and all(k.startswith("module.") for k in sd) and not any(k.startswith("module.") for k in want):
        sd = {k[len("module."):]: v for k, v in sd.items()}
        log(f"dropped the 'module.' prefix of every key in {path}")
    missing = [k for k in want if k not in sd]
    unexpected = [k for k in sd if k not in want]
    shapes = [f"{k}: file {list(sd[k].shape)}, model {list(want[k].shape)}" for k in want
              if k in sd and isinstance(sd[k], torch.Tensor) and tuple(sd[k].shape) != tuple(want[k].shape)]
    if missing or unexpected or shapes:
        lines = [f"the weights in {path} ({where}) do not fit {what} (strict loading):"]
        if missing:
            lines.append("  missing (in the model, not in the file): " + _listing(missing))
        if unexpected:
            lines.append("  unexpected (in the file, not in the model): " + _listing(unexpected))
        if shapes:
            lines.append("  wrong shape: " + "; ".join(shapes[:20]))
        raise CommandError("\n".join(lines))
    model.load_state_dict(sd, strict=True)
    return len(sd)


def floats(values):
    out = []
    for v in values:
        out += [float(p) for p in str(v).replace(",", " ").split()]
    return out


def class_names(arg):
    if os.path.isfile(arg):
        text = open(arg, encoding="utf-8").read()
        try:
            names = json.loads(text)
        except json.JSONDecodeError:
            names = [ln.strip() for ln in text.splitlines() if ln.strip()]
        if not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
            raise CommandError(f"{arg}: expected a JSON list of strings or one name a line")
        return names
    return [n.strip() for n in arg.split(",")]


def normalisation(args, channels, ap):
    given = [bool(args.pixels), args.mean is not None or args.std is not None]
    if sum(given) != 1:
        ap.error("give either --mean and --std, or --pixels")
    if args.pixels:
        return PIXELS[args.pixels](channels)
    mean, std = floats(args.mean or []), floats(args.std or [])
    if len(mean) == 1 and len(std) == 1:
        mean, std = mean * channels, std * channels
    if len(mean) != channels or len(std) != channels:
        ap.error(f"--mean and --std need {channels} values (or 1), got {len(mean)} and {len(std)}")
    return metadata.mean_std(mean, std)


def verification_inputs(args, model, shape, norm, names, resize=None):
    """(x normalised [n, C, H, W], y [n]): real images when given (any layout images.load reads,
    resized as the metadata says; random ones plus the most and least confident,
    export_teacher.verification_set), else seeded standard-normal inputs."""
    if isinstance(names, int):   # a class count (the signature before names were needed)
        names = [str(i) for i in range(names)]
    k = len(names)
    gen = torch.Generator().manual_seed(args.seed)
    if not args.images:
        x = torch.randn(args.n, *shape, generator=gen)
        return x, torch.randint(0, k, (args.n,), generator=gen), "seeded standard-normal inputs, random labels"
    try:
        px, labels, read = images.load(args.images, shape, names, resize, args.max_images)
    except images.ImageError as e:
        raise CommandError(str(e)) from e
    x = normalized(px, norm, "NCHW")
    with torch.no_grad():
        logits = torch.cat([model(x[i:i + 256]) for i in range(0, len(x), 256)])
    if args.labels:
        labels = np.load(args.labels)
    if labels is not None:
        y = torch.as_tensor(np.asarray(labels)[:len(x)], dtype=torch.int64)
        how = f"{read}, with their labels"
    else:
        y = logits.argmax(1)
        how = f"{read}, labelled with the network's own predictions"
    if int(y.max()) >= k or int(y.min()) < 0:
        raise CommandError(f"labels outside 0..{k - 1}")
    if len(x) <= args.n:
        return x, y, how
    idx = verification_set(logits, y, args.n, args.seed)
    return x[idx], y[idx], how


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--module", required=True, metavar="PKG.MOD:NAME")
    ap.add_argument("--path", action="append", default=[], help="added to sys.path (repeatable)")
    ap.add_argument("--kwargs", default="{}", help="JSON object for the constructor")
    ap.add_argument("--weights", help="state_dict or checkpoint (.pt / .pth)")
    ap.add_argument("--constructor-weights", action="store_true",
                    help="no --weights: export the weights the constructor made (e.g. random init)")
    ap.add_argument("--trust-checkpoint", action="store_true",
                    help="torch.load(weights_only=False): for checkpoints holding pickled objects")
    ap.add_argument("--input-shape", required=True, metavar="C,H,W")
    ap.add_argument("--mean", nargs="+", help="per channel, after pixels / 255 (commas or spaces)")
    ap.add_argument("--std", nargs="+")
    ap.add_argument("--pixels", choices=sorted(PIXELS),
                    help="instead of mean/std: unit (0..1), raw255 (0..255), symmetric (-1..1)")
    ap.add_argument("--resize-shorter", type=int, metavar="S",
                    help="images of other sizes: shorter side to S, then the centred H x W "
                         "(torchvision's Resize(S) + CenterCrop; e.g. 256 for 224-px ImageNet "
                         "teachers). Default: the whole image resized to H x W")
    ap.add_argument("--class-names", required=True, metavar="FILE|a,b,c")
    ap.add_argument("--out", required=True, metavar="DIR/NAME.onnx")
    ap.add_argument("--images", help="verification images: an image folder (root/<class>/*.png|jpg), "
                    "an HDF5 file (/images, /labels), a .npy of uint8 pixels or idx3 gzip")
    ap.add_argument("--labels", help=".npy int labels for --images")
    ap.add_argument("--max-images", type=int, default=10000, help="read at most this many")
    ap.add_argument("--n", type=int, default=64, help="verification batch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dataset")
    ap.add_argument("--epoch", type=int)
    ap.add_argument("--epochs-total", type=int)
    ap.add_argument("--test-top1", type=float)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cam", nargs="?", const=True, default=False, metavar="LAYER",
                    help="also write NAME.cam.onnx, the Grad-CAM graph, at LAYER (a module name) "
                         "or by the default rule (see export_cam.py)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    out_dir, base = os.path.split(os.path.abspath(args.out))
    if not base.endswith(".onnx") or base.endswith(".grad.onnx"):
        ap.error("--out must be DIR/NAME.onnx (the gradient graph goes to DIR/NAME.grad.onnx)")
    name = base[:-len(".onnx")]
    try:
        shape = tuple(int(v) for v in args.input_shape.split(","))
        assert len(shape) == 3 and min(shape) > 0
    except (ValueError, AssertionError):
        ap.error(f"--input-shape {args.input_shape!r}: expected C,H,W")
    if args.resize_shorter is not None and args.resize_shorter < max(shape[1:]):
        ap.error(f"--resize-shorter {args.resize_shorter} is smaller than the {shape[1]}x{shape[2]} "
                 f"centre crop; it must be at least {max(shape[1:])}")
    try:
        kwargs = json.loads(args.kwargs)
        assert isinstance(kwargs, dict)
    except (json.JSONDecodeError, AssertionError):
        ap.error(f"--kwargs {args.kwargs!r}: expected a JSON object")
    if bool(args.weights) == args.constructor_weights:
        ap.error("give --weights FILE, or --constructor-weights to export the constructor's own")
    norm = normalisation(args, shape[0], ap)
    for p in [os.getcwd()] + args.path:
        sys.path.insert(0, os.path.abspath(p))

    what = f"{args.module}(**{json.dumps(kwargs)})"
    try:
        t0 = time.time()
        model = build(args.module, kwargs)
        n_keys = None
        if args.weights:
            n_keys = load_weights(model, args.weights, what, args.trust_checkpoint)
            print(f"[{name}] {what}: {n_keys} tensors loaded strictly from {args.weights}")
        model.eval()
        names = class_names(args.class_names)
        with torch.no_grad():
            out = model(torch.zeros(2, *shape))
        if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[0] != 2:
            raise CommandError(f"{what} maps [2, {', '.join(map(str, shape))}] to "
                               f"{getattr(out, 'shape', type(out).__name__)}; a teacher returns logits [N, K]")
        if out.shape[1] != len(names):
            raise CommandError(f"{len(names)} class names for {out.shape[1]} outputs")
        resize = metadata.shorter_side(args.resize_shorter) if args.resize_shorter else None
        vx, vy, how = verification_inputs(args, model, shape, norm, names, resize)
        print(f"[{name}] verification on {len(vx)} inputs: {how}")
        report = exporter.export(
            model, out_dir, name, input_shape=shape, class_names=names, normalization=norm,
            verify_x=vx, verify_y=vy, checkpoint_epoch=args.epoch, epochs_total=args.epochs_total,
            dataset=args.dataset, test_top1=args.test_top1,
            extra={"source": args.module, "source_kwargs": args.kwargs,
                   "weights": os.path.basename(args.weights) if args.weights else "constructor",
                   **({"resize": metadata.shorter_side(args.resize_shorter)}
                      if args.resize_shorter else {})},
            cam=args.cam, log=lambda m: print(m, flush=True))
    except (CommandError, exporter.UnsupportedModelError, exporter.VerificationError,
            exporter.CamLayerError) as e:
        print(f"[{name}] REFUSED: {e}", file=sys.stderr)
        return 1
    report.update(module=args.module, kwargs=kwargs, weights=args.weights, verification_inputs=how,
                  export_seconds=round(time.time() - t0, 1), torch=torch.__version__)
    with open(os.path.join(out_dir, name + ".export.json"), "w") as f:
        json.dump(report, f, indent=1)
    files = report["files"]
    print(f"[{name}] wrote {files['forward']['path']} ({files['forward']['bytes'] / 1e6:.2f} MB) and "
          f"{files['grad']['path']} ({files['grad']['bytes'] / 1e6:.2f} MB)"
          + (f" and {files['cam']['path']} ({files['cam']['bytes'] / 1e6:.2f} MB)" if "cam" in files else "")
          + f" in {report['export_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
