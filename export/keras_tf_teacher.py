"""A Keras 3 CNN trained with the TensorFlow backend on Fashion-MNIST and exported to a forward
ONNX with `model.export(format="onnx")` (tf2onnx), plus the logits Keras itself computes for the
first images of the embedded test set. Runs in its own environment (TensorFlow and PyTorch do not
share one here):

    python3 -m venv /work/venv-tf && /work/venv-tf/bin/pip install "tensorflow-cpu==2.21.*" keras "tf2onnx==1.17.*"
    /work/venv-tf/bin/python export/keras_tf_teacher.py --out export/runs/keras-tf/cnn.src.onnx
    $PY export/from_onnx.py export/runs/keras-tf/cnn.src.onnx --out-dir /tmp/keras-tf --name keras-tf-cnn \
        --input-shape 1 28 28 --pixels unit --class-names a b c d e f g h i j \
        --images data/fashion-mnist-mini/t10k-images-idx3-ubyte.gz --n 1000
    $PY export/branch_check.py export/runs/keras-tf/cnn.src.onnx --input-shape 1 28 28 --pixels unit \
        --images data/fashion-mnist-mini/t10k-images-idx3-ubyte.gz --n 1000

The `--arch plain` network (Conv2D / BatchNormalization / ReLU / MaxPooling2D x 2, a third conv
block, GlobalAveragePooling2D, Dense) trained for one epoch is the issue-16 teacher that
from_onnx.py refuses on 1000 images (export/README.md, "Verification"); `--arch zoo` is the
zoo's keras-cnn architecture (DepthwiseConv2D, ReLU6). TensorFlow's CPU kernels are not
bit-reproducible across machines, so the weights (and which samples sit on a ReLU / max-pool
branch point) differ from run to run elsewhere.
"""
import argparse
import json
import os
import sys

os.environ["KERAS_BACKEND"] = "tensorflow"
import keras  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import infoutil_io  # noqa: E402  (the one idx reader)

FMNIST = "/usr/share/datasets/fashion-mnist"


def network(arch):
    L = keras.layers
    if arch == "zoo":
        layers = [L.Conv2D(16, 3, padding="same"), L.BatchNormalization(), L.ReLU(),
                  L.DepthwiseConv2D(3, padding="same"), L.ReLU(max_value=6.0),
                  L.MaxPooling2D(), L.Conv2D(32, 3), L.BatchNormalization(), L.Activation("relu"),
                  L.GlobalAveragePooling2D(), L.Dense(64, activation="relu"), L.Dense(10)]
    else:
        layers = [L.Conv2D(32, 3, padding="same"), L.BatchNormalization(), L.ReLU(), L.MaxPooling2D(),
                  L.Conv2D(64, 3, padding="same"), L.BatchNormalization(), L.ReLU(), L.MaxPooling2D(),
                  L.Conv2D(64, 3), L.BatchNormalization(), L.ReLU(),
                  L.GlobalAveragePooling2D(), L.Dense(64, activation="relu"), L.Dense(10)]
    return keras.Sequential([keras.Input((28, 28, 1))] + layers)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="forward ONNX path; facts and logits go beside it as .json")
    ap.add_argument("--arch", choices=["plain", "zoo"], default="plain")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--reference-images", default="data/fashion-mnist-mini/t10k-images-idx3-ubyte.gz")
    ap.add_argument("--reference-n", type=int, default=16)
    args = ap.parse_args()
    keras.utils.set_random_seed(0)
    model = network(args.arch)
    model.compile(optimizer="adam", metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    read = infoutil_io.read_idx
    x = read(f"{FMNIST}/train-images-idx3-ubyte.gz").astype(np.float32)[..., None] / 255.0
    y = read(f"{FMNIST}/train-labels-idx1-ubyte.gz").astype(np.int64)
    model.fit(x, y, epochs=args.epochs, batch_size=128, verbose=2)
    xt = read(f"{FMNIST}/t10k-images-idx3-ubyte.gz").astype(np.float32)[..., None] / 255.0
    yt = read(f"{FMNIST}/t10k-labels-idx1-ubyte.gz").astype(np.int64)
    top1 = float(model.evaluate(xt, yt, verbose=0)[1])
    print(f"test top-1 (Keras, {len(xt)} images): {top1:.4f}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    model.export(args.out, format="onnx")
    xr = read(args.reference_images)[:args.reference_n].astype(np.float32)[..., None] / 255.0
    import tensorflow as tf
    import tf2onnx
    with open(args.out.replace(".onnx", ".json"), "w") as f:
        json.dump({"framework": f"keras {keras.__version__} (tensorflow {tf.__version__} backend), "
                                f"tf2onnx {tf2onnx.__version__}",
                   "arch": args.arch, "test_top1": top1, "epochs": args.epochs,
                   "reference_logits": np.asarray(model.predict(xr, verbose=0), np.float64).tolist()}, f)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
