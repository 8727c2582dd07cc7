"""A Keras `.h5` as older TensorFlow wrote and read it (tf.keras = Keras 2, TensorFlow <= 2.15),
and the source framework's own logits on fixed images: the independent reference the Keras 3
recipe in export/README.md ("Keras") is held to. Runs in a TensorFlow 2.15 environment:

    python3.11 -m venv .venv-tf215     # TF 2.15 has no wheel for Python > 3.11
    .venv-tf215/bin/pip install "tensorflow==2.15.*" "tf2onnx==1.16.*" onnxruntime
    TF=.venv-tf215/bin/python
    $TF export/keras2_h5.py train --out export/runs/tf215/cnn.h5            # model.save("cnn.h5")
    $TF export/keras2_h5.py reference export/runs/tf215/cnn.h5 --pixels unit \
        --out export/runs/tf215/cnn.ref.h5
    $TF export/keras2_h5.py tf2onnx export/runs/tf215/cnn.h5 --out export/runs/tf215/cnn.tf2onnx.onnx

`train`: TensorFlow's own CNN tutorial network (Conv2D/MaxPooling2D x 2, Conv2D, Flatten, Dense,
Dense(10) logits) trained on Fashion-MNIST (Debian's dataset-fashion-mnist when installed, else
the embedded 300 images) and saved with `model.save("x.h5")`, the legacy HDF5 file TF 2.15 writes
for that suffix. `reference`: any `.h5` (also one from Keras 2.0) read with tf.keras, a final
softmax cut off (the logits before it, what a teacher must give), run on the first N images of an
idx file resized to the model's input (tf.image.resize, bilinear, half-pixel centres, rounded to
uint8); writes an infoutil HDF5 dataset (`/images` uint8 [N, C, H, W], `/labels`, `class_names`)
plus `/reference_logits` float64 and the versions (`--grad-norms`: and `/reference_grad_norms`,
TensorFlow's own float64 per-sample gradient norms over the trainable weights). `--labels model` labels each image with
the source's own top-1 (for a teacher whose classes are not the images'). `tf2onnx`: TF 2.15's
own route, `tf2onnx.convert.from_keras` (softmax cut off the same way). `compare REF.h5 EVAL.h5 ...`:
`infoutil teacher eval --out` files (any backend) against the reference (numpy and h5py only).
`branch MODEL REF.h5 EVAL.h5 --index I`: for the tutorial CNN, TensorFlow's float64 norm of
sample I with the ReLU decision nearest zero flipped, per layer, against the file's norm.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import infoutil_io  # noqa: E402  (the one idx reader)

FMNIST = "/usr/share/datasets/fashion-mnist"
MINI = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "fashion-mnist-mini")
PIXELS = {"unit": lambda x: x / 255.0, "symmetric": lambda x: x / 127.5 - 1.0, "raw255": lambda x: x}


def keras_version():
    import keras   # the Keras 2 package tf.keras is under TF 2.15
    return keras.__version__


def tutorial_cnn(tf):
    L = tf.keras.layers
    return tf.keras.Sequential([
        L.Conv2D(32, 3, activation="relu", input_shape=(28, 28, 1)), L.MaxPooling2D(),
        L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(), L.Conv2D(64, 3, activation="relu"),
        L.Flatten(), L.Dense(64, activation="relu"), L.Dense(10)])


def fmnist(split):
    root = FMNIST if os.path.isdir(FMNIST) else MINI
    x = infoutil_io.read_idx(f"{root}/{split}-images-idx3-ubyte.gz").astype(np.float32)[..., None] / 255.0
    return x, infoutil_io.read_idx(f"{root}/{split}-labels-idx1-ubyte.gz").astype(np.int64), root


def train(args, tf):
    tf.keras.utils.set_random_seed(0)
    model = tutorial_cnn(tf)
    model.compile(optimizer="adam", metrics=["accuracy"],
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y, root = fmnist("train")
    model.fit(x, y, epochs=args.epochs, batch_size=128, verbose=2)
    xt, yt, _ = fmnist("t10k")
    top1 = float(model.evaluate(xt, yt, verbose=0)[1])
    print(f"trained on {root} ({len(x)} images), test top-1 {top1:.4f} on {len(xt)}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    model.save(args.out)   # TF 2.15: a `.h5` suffix writes the legacy HDF5 format
    with open(args.out + ".json", "w") as f:
        json.dump({"tensorflow": tf.__version__, "keras": keras_version(), "data": root,
                   "train_images": len(x), "epochs": args.epochs, "test_top1": top1}, f, indent=1)
    print(f"wrote {args.out}")


def logits_model(path, tf):
    """The .h5 read as TF 2.15 reads it; a trailing softmax is cut off (its input is the logits)."""
    model = tf.keras.models.load_model(path, compile=False)
    last = model.layers[-1]
    if getattr(last, "activation", None) is tf.keras.activations.softmax:
        if isinstance(last, tf.keras.layers.Activation):
            print(f"{path}: cut off the final softmax layer `{last.name}`")
            return tf.keras.Model(model.inputs, last.input), model
        raise SystemExit(f"{path}: the last layer `{last.name}` has a built-in softmax; "
                         "rebuild it with a linear activation first")
    return model, model


def float64_grad_norms(model, x, labels, tf, batch=50):
    """Per-sample L2 norms of the gradient of cross-entropy(logits, label) over the model's
    trainable weights, computed by TensorFlow in float64 (the model rebuilt from its config
    in float64, the same weights). This is infoutil's parameter set only where the
    ONNX graph's initializers are exactly the Keras weights (no BatchNorm folded by tf2onnx)."""
    # every layer's config names its dtype: rebuild from the JSON config with float64 in its place
    m64 = tf.keras.models.model_from_json(model.to_json().replace('"float32"', '"float64"'))
    m64.set_weights([w.astype(np.float64) for w in model.get_weights()])
    assert all(w.dtype == tf.float64 for w in m64.weights), "float64 rebuild kept a float32 weight"
    out = []
    for i in range(0, len(x), batch):
        xb = tf.constant(x[i:i + batch], tf.float64)
        with tf.GradientTape(persistent=True) as tape:
            loss = tf.keras.losses.sparse_categorical_crossentropy(
                labels[i:i + batch], m64(xb, training=False), from_logits=True)
        jac = tape.jacobian(loss, m64.trainable_weights)
        out.append(np.sqrt(sum(np.square(j.numpy()).reshape(len(xb), -1).sum(1) for j in jac)))
    return np.concatenate(out), len(m64.trainable_weights)


def reference(args, tf):
    import h5py
    model, full = logits_model(args.model, tf)
    _, H, W, C = model.input_shape
    imgs = infoutil_io.read_idx(args.images)[:args.n]
    x = tf.image.resize(imgs[..., None].astype(np.float32), (H, W), method="bilinear", antialias=False)
    x = np.clip(np.round(x.numpy()), 0, 255).astype(np.uint8)
    if C != 1:
        raise SystemExit(f"{args.model}: {C} input channels; this script feeds grey idx images")
    logits = model.predict(PIXELS[args.pixels](x.astype(np.float32)), verbose=0).astype(np.float64)
    if args.labels == "model":
        labels = logits.argmax(1)
    else:
        labels = infoutil_io.read_idx(args.images.replace("images-idx3", "labels-idx1"))[:args.n]
    names = args.class_names or [str(k) for k in range(logits.shape[1])]
    if args.grad_norms:
        if any(isinstance(layer, tf.keras.layers.BatchNormalization) for layer in model.layers):
            print(f"{args.model}: note: tf2onnx folds BatchNormalization, so these norms (over the "
                  "Keras weights) are not over the ONNX graph's initializers; compare logits only")
        norms, n_params = float64_grad_norms(model, PIXELS[args.pixels](x.astype(np.float64)), labels, tf)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with h5py.File(args.out, "w") as f:
        f["images"] = x.transpose(0, 3, 1, 2)
        f["labels"] = labels.astype(np.int64)
        f["reference_logits"] = logits
        if args.grad_norms:
            f["reference_grad_norms"] = norms
            f.attrs["reference_grad_params"] = n_params
        f.attrs["class_names"] = json.dumps(names)
        f.attrs["source"] = json.dumps({
            "model": os.path.basename(args.model), "tensorflow": tf.__version__,
            "keras": keras_version(), "pixels": args.pixels, "labels": args.labels,
            "softmax_cut": model is not full})
    acc = float((logits.argmax(1) == labels).mean())
    print(f"wrote {args.out}: {len(x)} images {C}x{H}x{W}, top-1 vs labels {acc:.4f}, "
          f"logits in [{logits.min():.3g}, {logits.max():.3g}]")


def to_onnx(args, tf):
    import tf2onnx
    model, _ = logits_model(args.model, tf)
    spec = [tf.TensorSpec((None,) + tuple(model.input_shape[1:]), tf.float32, name="x")]
    tf2onnx.convert.from_keras(model, input_signature=spec, opset=args.opset, output_path=args.out)
    print(f"wrote {args.out} (tf2onnx {tf2onnx.__version__}, opset {args.opset})")


def tiny_nets(tf):
    """Two small networks in the shapes a TF 2.15 user saves: the tutorial CNN (Flatten, which
    Keras 3 exports as a dynamic Shape/Gather/Concat reshape) and a mini-Xception block (fer's
    emotion model: SeparableConv2D, BatchNormalization that tf2onnx folds, a strided 1x1
    residual, MaxPooling2D `same`, Add, GlobalAveragePooling2D, a final softmax to cut off) with
    a MobileNet-style DepthwiseConv2D + ReLU6. TF 2.15 writes `groups` (and, for SeparableConv2D,
    `kernel_*`) into those two layers' configs, which Keras 3 refuses to read."""
    L = tf.keras.layers
    cnn = tf.keras.Sequential([
        L.Conv2D(4, 3, activation="relu", input_shape=(28, 28, 1)), L.MaxPooling2D(),
        L.Conv2D(6, 3, strides=2, activation="relu"), L.Flatten(), L.Dense(8, activation="relu"),
        L.Dense(10)])
    inp = L.Input((28, 28, 1))
    x = L.Activation("relu")(L.BatchNormalization()(L.Conv2D(4, 3, use_bias=False)(inp)))
    x = L.ReLU(6.0)(L.BatchNormalization()(L.DepthwiseConv2D(3, padding="same", use_bias=False)(x)))
    res = L.BatchNormalization()(L.Conv2D(8, 1, strides=2, padding="same", use_bias=False)(x))
    x = L.Activation("relu")(L.BatchNormalization()(L.SeparableConv2D(8, 3, padding="same", use_bias=False)(x)))
    x = L.BatchNormalization()(L.SeparableConv2D(8, 3, padding="same", use_bias=False)(x))
    x = L.Add()([L.MaxPooling2D(3, strides=2, padding="same")(x), res])
    x = L.GlobalAveragePooling2D()(L.Conv2D(10, 3, padding="same")(x))
    xception = tf.keras.Model(inp, L.Activation("softmax", name="predictions")(x))
    return {"tiny-cnn": cnn, "tiny-xception": xception}


def fixture(args, tf):
    """The tiny networks with seeded weights (BatchNorm statistics too, so folding them matters),
    saved as TF 2.15 saves `.h5`, and TF 2.15's own logits (and, where the ONNX parameters are
    the Keras weights, float64 gradient norms) on the first N embedded test images, pixels / 255,
    with their own labels (what the zoo's Rust test feeds): reference.json."""
    tf.keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = infoutil_io.read_idx(os.path.join(MINI, "t10k-images-idx3-ubyte.gz"))[:args.n, :, :, None]
    labels = infoutil_io.read_idx(os.path.join(MINI, "t10k-labels-idx1-ubyte.gz"))[:args.n].astype(np.int64)
    out = {"tensorflow": tf.__version__, "keras": keras_version(),
           "images": "data/fashion-mnist-mini/t10k-images-idx3-ubyte.gz", "n": len(x),
           "labels": labels.tolist(), "nets": {}}
    os.makedirs(args.out_dir, exist_ok=True)
    pixels = "unit"
    for name, model in tiny_nets(tf).items():
        for w in model.weights:   # kernels keep Keras's seeded init; the rest made non-trivial
            kind = w.name.split("/")[-1].split(":")[0]
            draw = {"bias": (0.1, 0.1), "gamma": (1.0, 0.2), "beta": (0.0, 0.2),
                    "moving_mean": (0.0, 0.2), "moving_variance": (0.0, 0.5)}.get(kind)
            if draw:
                v = rng.normal(*draw, w.shape)
                w.assign(np.abs(v) + 0.5 if kind == "moving_variance" else v)
        path = os.path.join(args.out_dir, name + ".h5")
        model.save(path)
        logits_m, _ = logits_model(path, tf)   # read back as a user would, softmax cut off
        xin = PIXELS[pixels](x.astype(np.float64))
        entry = {"pixels": pixels, "logits": logits_m.predict(xin.astype(np.float32), verbose=0).tolist()}
        if not any(isinstance(layer, tf.keras.layers.BatchNormalization) for layer in logits_m.layers):
            entry["grad_norms_float64"], entry["grad_params"] = (
                lambda n, p: (n.tolist(), p))(*float64_grad_norms(logits_m, xin, labels, tf))
        out["nets"][name] = entry
    with open(os.path.join(args.out_dir, "reference.json"), "w") as f:
        json.dump(out, f)
    print(f"wrote {args.out_dir}: {', '.join(out['nets'])}")


def plain_forward(model, weights, x, flip, tf):
    """float64 forward of a Sequential Conv2D(valid)/Dense/MaxPooling2D/Flatten network (the
    tutorial CNN) with every ReLU decision explicit; in layer `flip` the unit nearest zero takes
    the other branch. Returns (logits, that unit's pre-activation)."""
    h, k, at = x, 0, None
    for li, layer in enumerate(model.layers):
        if isinstance(layer, (tf.keras.layers.Conv2D, tf.keras.layers.Dense)):
            w, b = weights[k], weights[k + 1]
            k += 2
            conv = isinstance(layer, tf.keras.layers.Conv2D)
            z = (tf.nn.conv2d(h, w, 1, "VALID") if conv else tf.matmul(h, w)) + b
            if layer.activation is tf.keras.activations.relu:
                mask = (z.numpy() > 0).astype(np.float64)
                if li == flip:
                    j = np.unravel_index(np.abs(z.numpy()).argmin(), z.shape)
                    mask[j], at = 1 - mask[j], float(z.numpy()[j])
                z = z * mask
            h = z
        elif isinstance(layer, tf.keras.layers.MaxPooling2D):
            h = tf.nn.max_pool2d(h, 2, 2, "VALID")
        elif isinstance(layer, tf.keras.layers.Flatten):
            h = tf.reshape(h, (h.shape[0], -1))
        else:
            raise SystemExit(f"branch: {type(layer).__name__} is not in the tutorial CNN's layers")
    return h, at


def branch(args, tf):
    """Is a sample's norm off because the backend's float32 forward took the other side of a ReLU?
    TensorFlow's float64 norm with the decision nearest zero flipped, layer by layer, against the
    norm an `infoutil teacher eval --out` file holds for that sample."""
    import h5py
    model = tf.keras.models.load_model(args.model, compile=False)
    weights = [tf.Variable(w.astype(np.float64)) for w in model.get_weights()]
    with h5py.File(args.reference) as f:
        x = f["images"][args.index:args.index + 1].transpose(0, 2, 3, 1).astype(np.float64)
        y = f["labels"][args.index:args.index + 1].astype(np.int64)
    with h5py.File(args.eval) as f:
        got = float(f["grad_norms"][list(f["source_index"][()]).index(args.index)])
    x = tf.constant(PIXELS[args.pixels](x))
    print(f"image {args.index}: {args.eval} norm {got:.8g}")
    for li in [None] + [i for i, layer in enumerate(model.layers)
                        if getattr(layer, "activation", None) is tf.keras.activations.relu]:
        with tf.GradientTape() as tape:
            logits, at = plain_forward(model, weights, x, li, tf)
            loss = tf.nn.sparse_softmax_cross_entropy_with_logits(y, logits)
        norm = float(np.sqrt(sum(float(tf.reduce_sum(g ** 2)) for g in tape.gradient(loss, weights))))
        what = "as float64 decides" if li is None else \
            f"{model.layers[li].name}'s unit nearest zero ({at:.2g}) flipped"
        print(f"  float64, {what}: {norm:.8g}, rel diff to the file's {abs(norm - got) / got:.2g}")


def compare(args):
    """`infoutil teacher eval --out` files against the reference: logits (and gradient norms,
    where the reference has them), row by row through `source_index`."""
    import h5py
    with h5py.File(args.reference) as f:
        ref = f["reference_logits"][()]
        ref_norms = f["reference_grad_norms"][()] if "reference_grad_norms" in f else None
    for path in args.evals:
        with h5py.File(path) as f:
            idx, logits = f["source_index"][()], f["logits"][()]
            norms = f["grad_norms"][()] if "grad_norms" in f else None
        r = ref[idx]
        line = (f"{path}: {len(idx)} images, max |logit diff| {np.abs(logits - r).max():.3g} "
                f"(largest |logit| {np.abs(r).max():.3g}), top-1 agreement "
                f"{(logits.argmax(1) == r.argmax(1)).mean():.4f}")
        if ref_norms is not None and norms is not None:
            rel = np.abs(norms - ref_norms[idx]) / ref_norms[idx]
            line += (f", grad norms max rel err {rel.max():.3g} (reference {ref_norms[idx].min():.3g}"
                     f" … {ref_norms[idx].max():.3g})")
        print(line)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train")
    t.add_argument("--out", required=True)
    t.add_argument("--epochs", type=int, default=2)
    r = sub.add_parser("reference")
    r.add_argument("model")
    r.add_argument("--out", required=True)
    r.add_argument("--images", default=os.path.join(MINI, "t10k-images-idx3-ubyte.gz"))
    r.add_argument("--n", type=int, default=1000)
    r.add_argument("--pixels", choices=sorted(PIXELS), required=True)
    r.add_argument("--labels", choices=["idx", "model"], default="idx")
    r.add_argument("--class-names", nargs="+")
    r.add_argument("--grad-norms", action="store_true",
                   help="also float64 per-sample gradient norms over the trainable weights")
    o = sub.add_parser("tf2onnx")
    o.add_argument("model")
    o.add_argument("--out", required=True)
    o.add_argument("--opset", type=int, default=17)
    fx = sub.add_parser("fixture")
    fx.add_argument("--out-dir", required=True)
    fx.add_argument("--n", type=int, default=16)
    b = sub.add_parser("branch")
    b.add_argument("model")
    b.add_argument("reference", help="the reference HDF5 the eval ran on")
    b.add_argument("eval", help="an infoutil teacher eval --out file")
    b.add_argument("--index", type=int, required=True)
    b.add_argument("--pixels", choices=sorted(PIXELS), required=True)
    c = sub.add_parser("compare")
    c.add_argument("reference")
    c.add_argument("evals", nargs="+")
    args = ap.parse_args()
    if args.cmd == "compare":
        return compare(args)
    import tensorflow as tf
    {"train": train, "reference": reference, "tf2onnx": to_onnx, "fixture": fixture,
     "branch": branch}[args.cmd](args, tf)


if __name__ == "__main__":
    main()
