"""Add the Grad-CAM graph, NAME.cam.onnx, to an existing teacher, without touching its gradient
file or its forward graph's weights:

    python export/export_cam.py models/fmnist-convnet3.onnx      # + models/fmnist-convnet3.pt

NAME.cam.onnx takes the forward graph's image input (same name, layout, dynamic batch N) and
y int64 [N]; it returns activations [N, K, h, w] (the output of one module, channels-first) and
gradients [N, K, h, w] = d logit[n, y[n]] / d activations[n]. Its metadata is the forward file's
(same weights_sha256), with infoutil.role = "cam" and infoutil.cam_layer = the module's name.
The forward file's metadata is then re-stamped (written in place, atomically) to list the new
graph's weights hash in infoutil.sibling_weights_sha256: infoutil refuses a Grad-CAM graph its
forward graph does not list. That changes the forward file's bytes (not its weights), so results
made before with it (resume, --maps-from, merge) no longer match it. A forward file from before
the binding, with a gradient graph beside it, is refused: re-stamp the package first
(export/restamp.py).

The network: --module pkg.mod:Name with --kwargs (as in export_module.py), else the forward
file's own infoutil.source / infoutil.source_kwargs (teachers exported by export_module.py),
else the project's ConvNet-3 (export_teacher.py's teachers). Its weights: --checkpoint, default
NAME.pt beside the forward file, loaded strictly. The weights must be the forward file's: the
forward graph is re-exported from them and its initializers must hash to the forward file's
infoutil.weights_sha256, else the command refuses before any other work.

--layer NAME: a module name from named_modules(); default: the last module run after the last
nn.Conv2d whose output has that conv's spatial size (relu3 for ConvNet-3; see
infoutil_export/cam.py). Verification (nothing is written unless it passes): ONNX Runtime
against a float64 PyTorch autograd loop, one sample at a time, max error <= 1e-4 relative to
each sample's largest |value| (activations and gradients each), and a batch of n against each
sample alone, on --n real images (--images, default: the repository's 1000 Fashion-MNIST test
images for a fashion-mnist 1x28x28 teacher; random ones plus the most and least confident) or
seeded standard-normal inputs. Exit 1 on a refusal.
"""
import argparse
import json
import os
import sys
import time

import onnx
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from export_module import CommandError, build, load_weights, verification_inputs  # noqa: E402
from infoutil_export import cam, exporter, metadata  # noqa: E402

DEFAULT_MODULE = "infoutil_export.nets:convnet3"
MINI_IMAGES = os.path.normpath(os.path.join(HERE, "..", "data", "fashion-mnist-mini",
                                            "t10k-images-idx3-ubyte.gz"))
# the forward metadata keys metadata.build takes as arguments; any other infoutil.* key is
# carried over as it is (extra)
BUILT = {"schema", "role", "input_shape", "normalization", "class_names", "framework",
         "weights_sha256", "layout", "input_name", "checkpoint_epoch", "epochs_total", "dataset",
         "test_top1", "param_names", "last_layer_params", "cam_layer", "graph_weights_sha256",
         "sibling_weights_sha256"}


def forward_metadata(path):
    if not os.path.isfile(path):
        raise CommandError(f"{path}: no such file")
    if path.endswith(".grad.onnx") or path.endswith(".cam.onnx") or not path.endswith(".onnx"):
        raise CommandError(f"{path}: give the forward graph, NAME.onnx")
    meta = metadata.read(path)
    p = metadata.PREFIX
    if meta.get(p + "role", "forward") != "forward":
        raise CommandError(f"{path}: infoutil.role is {meta[p + 'role']!r}, not 'forward'")
    for key in ("weights_sha256", "input_shape", "normalization", "class_names"):
        if p + key not in meta:
            raise CommandError(f"{path}: no infoutil.{key} metadata (not an infoutil teacher?)")
    grad = path[:-len(".onnx")] + ".grad.onnx"
    if p + "sibling_weights_sha256" not in meta and os.path.exists(grad):
        raise CommandError(f"{path}: its package was exported before its graphs were bound by "
                           f"hash (no infoutil.sibling_weights_sha256), and {grad} is beside it: "
                           f"re-stamp the package first with `python export/restamp.py {path}`")
    return {k[len(p):]: v for k, v in meta.items() if k.startswith(p)}


def common_metadata(meta):
    """metadata.build's keyword arguments that reproduce the forward file's keys."""
    return dict(
        input_shape=json.loads(meta["input_shape"]),
        normalization=json.loads(meta["normalization"]),
        class_names=json.loads(meta["class_names"]),
        framework=meta.get("framework") or f"pytorch {torch.__version__.split('+')[0]}",
        weights_hash=meta["weights_sha256"],
        checkpoint_epoch=meta.get("checkpoint_epoch"), epochs_total=meta.get("epochs_total"),
        dataset=meta.get("dataset"),
        test_top1=float(meta["test_top1"]) if "test_top1" in meta else None,
        layout=meta.get("layout", "NCHW"), input_name=meta.get("input_name", "x"),
        extra={k: v for k, v in meta.items() if k not in BUILT})


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("forward", metavar="NAME.onnx", help="the teacher's forward graph")
    ap.add_argument("--checkpoint", help="its PyTorch weights (default: NAME.pt beside it)")
    ap.add_argument("--layer", help="module name (named_modules()); default: see above")
    ap.add_argument("--module", metavar="PKG.MOD:NAME",
                    help="the network's class or constructor (default: the forward file's "
                         f"infoutil.source, else {DEFAULT_MODULE})")
    ap.add_argument("--kwargs", help="JSON object for --module's constructor")
    ap.add_argument("--path", action="append", default=[], help="added to sys.path (repeatable)")
    ap.add_argument("--trust-checkpoint", action="store_true",
                    help="torch.load(weights_only=False): for checkpoints holding pickled objects")
    ap.add_argument("--out", help="default: NAME.cam.onnx beside the forward file")
    ap.add_argument("--images", help="verification images: idx3 gzip (labels alongside) or .npy uint8")
    ap.add_argument("--labels", help=".npy int labels for --images")
    ap.add_argument("--max-images", type=int, default=10000, help="read at most this many")
    ap.add_argument("--n", type=int, default=64, help="verification batch")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    for p in [os.getcwd()] + args.path:
        sys.path.insert(0, os.path.abspath(p))

    name = os.path.basename(args.forward)[:-len(".onnx")] if args.forward.endswith(".onnx") \
        else os.path.basename(args.forward)
    t0 = time.time()
    try:
        meta = forward_metadata(args.forward)
        out = args.out or args.forward[:-len(".onnx")] + ".cam.onnx"
        if not out.endswith(".cam.onnx"):
            raise CommandError(f"--out {out}: must end in .cam.onnx")
        checkpoint = args.checkpoint or args.forward[:-len(".onnx")] + ".pt"
        if args.module:
            spec, kwargs_text = args.module, args.kwargs or "{}"
        elif "source" in meta:
            spec, kwargs_text = meta["source"], args.kwargs or meta.get("source_kwargs", "{}")
        else:
            spec, kwargs_text = DEFAULT_MODULE, args.kwargs or "{}"
        try:
            kwargs = json.loads(kwargs_text)
            assert isinstance(kwargs, dict)
        except (json.JSONDecodeError, AssertionError):
            raise CommandError(f"kwargs {kwargs_text!r}: expected a JSON object") from None
        what = f"{spec}(**{json.dumps(kwargs)})"
        model = build(spec, kwargs)
        n_keys = load_weights(model, checkpoint, what, args.trust_checkpoint)
        model.eval()
        common = common_metadata(meta)
        layout, input_name = common["layout"], common["input_name"]
        shape = exporter.graph_shape(tuple(common["input_shape"]), layout)
        # the same network: the forward graph re-exported from these weights hashes as the file
        prepared = exporter.prepare_model(model)
        got = metadata.weights_sha256(exporter.forward_proto(prepared, shape, input_name))
        if got != meta["weights_sha256"]:
            raise CommandError(
                f"the weights in {checkpoint} are not the network of {args.forward}: exported as "
                f"a forward graph they hash to weights_sha256 {got[:16]}…, the forward file's "
                f"infoutil.weights_sha256 is {meta['weights_sha256'][:16]}… (another checkpoint, "
                f"or another architecture than {what}; a forward file written by another "
                f"exporter version than pytorch {torch.__version__.split('+')[0]} can also fold "
                f"its BatchNorm differently: its framework is {meta.get('framework')!r})")
        src = onnx.load(args.forward, load_external_data=False)
        inputs = [i.name for i in src.graph.input]
        if inputs[:1] != [input_name]:
            raise CommandError(f"{args.forward}: its input is {inputs}, the metadata says {input_name!r}")
        print(f"[{name}] {what}: {n_keys} tensors loaded strictly from {checkpoint}; weights_sha256 "
              f"{got[:16]}… = the forward file's", flush=True)
        layer, kshape = cam.find_layer(prepared, shape, args.layer)
        print(f"[{name}] layer {layer!r} ({type(dict(prepared.named_modules())[layer]).__name__}, "
              f"[K, h, w] = {kshape}){'' if args.layer else ' (default rule)'}", flush=True)
        if not args.images and meta.get("dataset") == "fashion-mnist" and \
                common["input_shape"] == [1, 28, 28] and os.path.exists(MINI_IMAGES):
            args.images = MINI_IMAGES
        c, h, w = common["input_shape"]
        vx, vy, how = verification_inputs(args, model if layout == "NCHW" else _nchw(model),
                                          (c, h, w), common["normalization"],
                                          common["class_names"],
                                          json.loads(meta["resize"]) if meta.get("resize") else None)
        if layout == "NHWC":
            vx = vx.permute(0, 2, 3, 1).contiguous()
        print(f"[{name}] verification on {len(vx)} inputs: {how}", flush=True)
        report = exporter.export_cam(model, out, input_shape=common["input_shape"],
                                     meta_common=common, verify_x=vx, verify_y=vy, layer=layer,
                                     layout=layout, input_name=input_name,
                                     forward_path=args.forward,
                                     log=lambda m: print(m, flush=True))
    except (CommandError, cam.CamLayerError, exporter.VerificationError) as e:
        print(f"[{name}] REFUSED: {e}", file=sys.stderr)
        return 1
    report.update(export_seconds=round(time.time() - t0, 1), torch=torch.__version__,
                  weights_sha256=meta["weights_sha256"], verification_inputs=how)
    print(json.dumps(report))
    print(f"[{name}] wrote {out} ({report['file']['bytes'] / 1e6:.2f} MB) in "
          f"{report['export_seconds']} s")
    return 0


class _nchw(torch.nn.Module):
    """An NHWC model seen as taking NCHW (for picking verification images by confidence)."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x.permute(0, 2, 3, 1))


if __name__ == "__main__":
    sys.exit(main())
