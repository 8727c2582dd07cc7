"""The zoo's JAX member: a Flax (nnx) CNN trained briefly on Fashion-MNIST, exported to a forward
ONNX with jax2onnx, plus its logits as computed by JAX itself (the reference the Rust tests hold
the ONNX graph to). Runs in its own environment (JAX and PyTorch do not share one here):

    python3 -m venv /work/venv-jax && /work/venv-jax/bin/pip install -r export/requirements-jax.txt
    /work/venv-jax/bin/python export/zoo_jax.py --out export/runs/zoo/flax-cnn.src.onnx

export/zoo.py then turns the ONNX file into the verified pair (export/from_onnx.py's route).
"""
import argparse
import json
import os
import sys
import time

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "examples"))
import infoutil_io  # noqa: E402  (the one idx reader)

FMNIST = "/usr/share/datasets/fashion-mnist"


def idx(path):
    return infoutil_io.read_idx(path)


class CNN(nnx.Module):
    """NHWC, as Flax has it: conv-BN-relu, a depthwise conv, average pooling, dense layers."""

    def __init__(self, rngs):
        self.c1 = nnx.Conv(1, 16, (3, 3), padding="SAME", rngs=rngs)
        self.bn1 = nnx.BatchNorm(16, rngs=rngs)
        self.dw = nnx.Conv(16, 16, (3, 3), feature_group_count=16, padding="SAME", rngs=rngs)
        self.c2 = nnx.Conv(16, 32, (3, 3), strides=(2, 2), padding="SAME", rngs=rngs)
        self.fc1 = nnx.Linear(32 * 7 * 7, 64, rngs=rngs)
        self.fc2 = nnx.Linear(64, 10, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.bn1(self.c1(x)))
        x = nnx.relu(self.dw(x))
        # 2x2 average pooling as a reshape and a mean (jax2onnx's avg_pool plugin does not
        # match this flax version)
        x = x.reshape(x.shape[0], 14, 2, 14, 2, x.shape[-1]).mean((2, 4))
        x = nnx.relu(self.c2(x))
        x = x.reshape(x.shape[0], -1)
        return self.fc2(nnx.relu(self.fc1(x)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, help="forward ONNX path; logits go beside it as .json")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--reference-images", default="data/fashion-mnist-mini/t10k-images-idx3-ubyte.gz")
    ap.add_argument("--reference-n", type=int, default=16)
    args = ap.parse_args()
    # before the training, so that a path that cannot be written fails now, not minutes later
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    x = idx(f"{FMNIST}/train-images-idx3-ubyte.gz").astype(np.float32)[..., None] / 255.0
    y = idx(f"{FMNIST}/train-labels-idx1-ubyte.gz").astype(np.int32)
    model = CNN(nnx.Rngs(0))
    opt = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)

    @nnx.jit
    def step(model, opt, xb, yb):
        def loss_fn(m):
            return optax.softmax_cross_entropy_with_integer_labels(m(xb), yb).mean()
        loss, grads = nnx.value_and_grad(loss_fn)(model)
        opt.update(model, grads)
        return loss

    t0 = time.time()
    order = np.random.default_rng(0).permutation(len(x))
    for epoch in range(args.epochs):
        for i in range(0, len(x), 128):
            b = order[i:i + 128]
            loss = step(model, opt, jnp.asarray(x[b]), jnp.asarray(y[b]))
        print(f"epoch {epoch + 1}: last batch loss {float(loss):.3f} ({time.time() - t0:.0f} s)")
    model.eval()
    xt = idx(f"{FMNIST}/t10k-images-idx3-ubyte.gz").astype(np.float32)[..., None] / 255.0
    yt = idx(f"{FMNIST}/t10k-labels-idx1-ubyte.gz")
    pred = np.concatenate([np.asarray(model(jnp.asarray(xt[i:i + 1000]))).argmax(1)
                           for i in range(0, len(xt), 1000)])
    top1 = float((pred == yt).mean())
    print(f"test top-1 (JAX, {len(xt)} images): {top1:.4f}")

    from jax2onnx import to_onnx
    # opset 18: what tract 0.23 and ONNX Runtime 1.31 both read
    proto = to_onnx(model, [("B", 28, 28, 1)], model_name="flax_cnn", opset=18)
    import onnx
    onnx.save_model(proto, args.out)
    xr = idx(args.reference_images)[:args.reference_n].astype(np.float32)[..., None] / 255.0
    logits = np.asarray(model(jnp.asarray(xr)), dtype=np.float64)
    with open(args.out.replace(".onnx", ".json"), "w") as f:
        json.dump({"framework": f"jax {jax.__version__}, flax {flax.__version__} (nnx), "
                                f"jax2onnx {proto.producer_version}",
                   "test_top1": top1, "epochs": args.epochs,
                   "reference_logits": logits.tolist()}, f)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
