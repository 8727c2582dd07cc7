"""A saved Keras model (`.keras`, or an `.h5` from any TensorFlow: Keras 2.0 to Keras 3) -> a forward
ONNX graph of its logits, with Keras 3's own `model.export(format="onnx")` (tf2onnx). Runs in a
Keras 3 + TensorFlow environment, standard Keras only (no infoutil import):

    python3 -m venv .venv-tf && .venv-tf/bin/pip install "tensorflow-cpu==2.21.*" keras "tf2onnx==1.17.*"
    .venv-tf/bin/python export/keras_to_onnx.py cnn.h5 cnn.onnx

then `export/from_onnx.py cnn.onnx ...` (export/README.md, "Keras"). What it does beyond the three
lines of the plain recipe, each for a file people really have:
- `compile=False`: an old `.h5`'s optimizer config (Keras 2's `lr`, ...) is not read;
- `DepthwiseConv2D` / `SeparableConv2D` written by TF 2.x's Keras 2 carry `groups` (and
  `kernel_initializer` / `_regularizer` / `_constraint` for SeparableConv2D) that Keras 3 refuses
  ("Unrecognized keyword arguments passed to SeparableConv2D"); they are dropped when they are
  Keras 2's no-op defaults (groups 1; the separable layer never had a single kernel), refused
  otherwise;
- a final softmax (a layer `Activation("softmax")` or a `Dense(..., activation="softmax")`) is cut
  off: a teacher gives logits, and cross-entropy on probabilities is not the loss it was trained
  with. A Dense with a built-in softmax is rebuilt linear with the same weights;
- a model read from `.h5` is called once on zeros before the export (Keras refuses a model
  "never called").
"""
import argparse
import os
import sys

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras  # noqa: E402
import numpy as np  # noqa: E402


def _no_op_groups(cls_name, groups):
    if groups not in (None, 1):
        raise ValueError(f"{cls_name} with groups={groups}: Keras 3 has no such layer; not dropped")


class DepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """Keras 3's layer, reading the `groups` key TF 2.x wrote (always 1 for this layer)."""

    def __init__(self, groups=None, **kw):
        _no_op_groups("DepthwiseConv2D", groups)
        super().__init__(**kw)


class SeparableConv2D(keras.layers.SeparableConv2D):
    """Keras 3's layer, reading the keys TF 2.x's SeparableConv2D inherited from Conv2D: `groups`
    (1) and the unused single-kernel `kernel_initializer` / `_regularizer` / `_constraint`."""

    def __init__(self, groups=None, kernel_initializer=None, kernel_regularizer=None,
                 kernel_constraint=None, **kw):
        _no_op_groups("SeparableConv2D", groups)
        super().__init__(**kw)


LENIENT = {"DepthwiseConv2D": DepthwiseConv2D, "SeparableConv2D": SeparableConv2D}


def logits_model(model):
    """(model giving logits, what was cut or None)."""
    last = model.layers[-1]
    act = last.get_config().get("activation")
    if act != "softmax":
        return model, None
    if isinstance(last, keras.layers.Activation):
        return keras.Model(model.inputs, last.input), f"the final softmax layer `{last.name}`"
    if isinstance(last, keras.layers.Dense):
        cfg = dict(last.get_config(), activation="linear", name=last.name + "_logits")
        dense = keras.layers.Dense.from_config(cfg)
        out = dense(last.input)
        dense.set_weights(last.get_weights())
        return keras.Model(model.inputs, out), f"the softmax of `{last.name}` (rebuilt linear)"
    raise SystemExit(f"the last layer `{last.name}` ({type(last).__name__}) ends in a softmax that "
                     "this script cannot cut off; export the layer before it")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("src", help="a .keras or .h5 file")
    ap.add_argument("out", help="forward ONNX path")
    ap.add_argument("--keep-softmax", action="store_true", help="export the outputs as they are")
    args = ap.parse_args(argv)
    model = keras.models.load_model(args.src, compile=False, custom_objects=LENIENT)
    if not args.keep_softmax:
        model, cut = logits_model(model)
        if cut:
            print(f"{args.src}: cut off {cut}; the ONNX output is the logits before it")
    shape = model.inputs[0].shape
    if any(d is None for d in shape[1:]):
        raise SystemExit(f"{args.src}: input shape {tuple(shape)} is not static; infoutil needs [N, H, W, C]")
    model(np.zeros((1,) + tuple(shape[1:]), "float32"))
    model.export(args.out, format="onnx")
    print(f"wrote {args.out} (Keras {keras.__version__}, input {tuple(shape)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
