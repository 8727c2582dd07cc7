"""A teacher that exists only as a forward ONNX file (Keras, JAX, TensorFlow or PyTorch) becomes
infoutil's verified pair (the code: infoutil_export/onnx_forward.py; from a Python script, the
same through `infoutil.export.from_onnx`).

    python export/from_onnx.py SRC.onnx --out-dir models --name NAME \
        --class-names a b ... --mean 0.49 0.48 0.45 --std 0.25 0.24 0.26   # or --pixels raw255

The input's name is the graph's own; its layout (NCHW or NHWC) is read from the graph's static
shape, or given with --layout when the shape cannot tell. infoutil.* metadata already in SRC is
kept unless overridden. Checks: the graph prepared for onnx2torch reproduces SRC under ONNX
Runtime (max |output diff| <= 1e-5), the converted module reproduces SRC under ONNX Runtime (max
|logit diff| <= 1e-4), and the gradient graph matches torch.func in float64. Inputs for the
checks: --images (an image folder, an HDF5 file, a .npy or idx gzip, any size and channel count
the teacher takes, resized and normalised as the metadata says: infoutil_export/images.py) or
seeded standard-normal inputs.
"""
import argparse
import json
import sys

import torch

from infoutil_export import exporter, images, metadata
# the names other scripts and tests import from here (`from from_onnx import ...`)
from infoutil_export.onnx_forward import (  # noqa: F401
    AUTO_PAD_OPS, ONNX2TORCH_OPSET, PIXELS, PREPARED_TOL, BatchReshape, check_prepared,
    explicit_pads, export_onnx, graph_input, initializers_to_parameters, normalized, prepare_onnx,
    same_pads, source_metadata, static_reshapes, static_squeezes, torch_module,
    verification_inputs)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src")
    ap.add_argument("--out-dir", required=True)
    ap.add_argument("--name", required=True)
    ap.add_argument("--input-shape", type=int, nargs=3, metavar=("C", "H", "W"))
    ap.add_argument("--layout", choices=["NCHW", "NHWC"], help="default: read from the graph")
    ap.add_argument("--class-names", nargs="+")
    ap.add_argument("--mean", type=float, nargs="+")
    ap.add_argument("--std", type=float, nargs="+")
    ap.add_argument("--pixels", choices=sorted(PIXELS),
                    help="what the graph takes instead of mean/std: raw255 (0-255), unit (0-1), "
                         "symmetric (-1..1)")
    ap.add_argument("--baked", action="store_true", help="the graph normalises its [0,1] input itself")
    ap.add_argument("--images", help="verification images: an image folder (root/<class>/*.png|jpg), "
                    "an HDF5 file (/images, /labels), a .npy of uint8 pixels or idx3 gzip "
                    "(labels file alongside); resized as the metadata says")
    ap.add_argument("--labels", help=".npy int labels for a .npy --images (else the network's "
                    "own predictions)")
    ap.add_argument("--resize-shorter", type=int, metavar="S",
                    help="images of other sizes: shorter side to S, then the centred H x W "
                         "(written to the metadata). Default: SRC's own, else the whole image "
                         "resized to H x W")
    ap.add_argument("--dataset", help="what the teacher was trained on (metadata)")
    ap.add_argument("--n", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    try:
        report = convert(args, ap)
    except (exporter.UnsupportedModelError, exporter.VerificationError) as e:
        print(f"[{args.name}] REFUSED: {e}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=1))
    return 0


def convert(args, ap):
    import numpy as np
    import onnx
    own = source_metadata(onnx.load(args.src))
    input_shape = args.input_shape or own["input_shape"]
    class_names = args.class_names or own["class_names"]
    if args.baked:
        norm = metadata.BAKED
    elif args.pixels:
        norm = PIXELS[args.pixels](input_shape[0]) if input_shape else None
    elif args.mean and args.std:
        norm = metadata.mean_std(args.mean, args.std)
    else:
        norm = own["normalization"]
    if input_shape is None or class_names is None or norm is None:
        ap.error("SRC has no infoutil metadata: give --input-shape, --class-names and "
                 "--mean/--std, --pixels or --baked")
    _, layout = graph_input(onnx.load(args.src), input_shape, args.layout or own["layout"])
    resize = metadata.shorter_side(args.resize_shorter) if args.resize_shorter else own["resize"]
    try:
        x, y, how = verification_inputs(
            args.src, input_shape=input_shape, class_names=class_names, normalization=norm,
            layout=layout, resize=resize, pixels=args.images, n=args.n,
            labels=np.load(args.labels) if args.labels else None)
    except images.ImageError as e:
        raise exporter.VerificationError(str(e)) from e
    if args.images:
        print(f"[{args.name}] verification images: {how}")
    return export_onnx(args.src, args.out_dir, args.name, input_shape=input_shape,
                       class_names=class_names, normalization=norm, verify_x=x, verify_y=y,
                       layout=layout, dataset=args.dataset, resize=resize)


if __name__ == "__main__":
    sys.exit(main())
