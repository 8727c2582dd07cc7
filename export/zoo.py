"""The teacher zoo: architectures and frameworks nobody here designed, exported to infoutil's
forward + gradient pair and verified (gradient norms against float64 torch.func, logits against
the source framework).

    KERAS_BACKEND=torch python export/zoo.py --tier ci --out models/zoo
    KERAS_BACKEND=torch python export/zoo.py --tier imagenet --out export/runs/zoo-imagenet

`ci`: Fashion-MNIST-shaped members (1 x 28 x 28, 10 classes) small enough to commit; the Rust
tests (tests/it/zoo.rs) run them on tract and ONNX Runtime, and `teacher eval` / `distill` end to end.
Each gets NAME.reference.json: the first 16 embedded test images' labels, logits from the source
framework, and float64 reference gradient norms. The Keras and JAX members are trained briefly on
the full Fashion-MNIST training set (their accuracy is the source framework's); the torchvision
and timm members keep seeded random weights (numerics need no training).
`imagenet`: 224-px torchvision / timm networks, exported and verified into --out (too large to
commit), one table row each.

The JAX member's forward ONNX comes from export/zoo_jax.py (its own environment); this script
converts it when export/runs/zoo/flax-cnn.src.onnx exists.
"""
import argparse
import json
import os
import sys
import time

os.environ.setdefault("KERAS_BACKEND", "torch")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402

from from_onnx import export_onnx, normalized, torch_module  # noqa: E402
from infoutil_export import exporter, metadata, verify  # noqa: E402
from infoutil_export.data import FMNIST_CLASSES, FMNIST_DIR, load_split, read_idx_images, \
    read_idx_labels  # noqa: E402

MINI = "data/fashion-mnist-mini/t10k-images-idx3-ubyte.gz"
REFERENCE_N = 16


def randomise_norm_stats(model, seed=0):
    """Non-trivial running statistics and affine parameters, as in a trained network, so that
    eval-mode normalisation is exercised."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=gen) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
            if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.LayerNorm, nn.GroupNorm)) \
                    and m.weight is not None:
                m.weight.copy_(torch.rand(m.weight.shape, generator=gen) + 0.5)
                m.bias.copy_(torch.rand(m.bias.shape, generator=gen) * 0.4 - 0.2)
    return model.eval()


def grey_stem(model, path):
    """Swap the first 3-channel convolution at `path` for a 1-channel one (Fashion-MNIST)."""
    parent, attr = model.get_submodule(".".join(path[:-1])), path[-1]
    old = getattr(parent, attr) if not attr.isdigit() else parent[int(attr)]
    new = nn.Conv2d(1, old.out_channels, old.kernel_size, old.stride, old.padding,
                    bias=old.bias is not None)
    if attr.isdigit():
        parent[int(attr)] = new
    else:
        setattr(parent, attr, new)
    return model


# ---------------------------------------------------------------------------------------------
# members: name -> builder returning (model or None, facts)


def mobilenet_v3_small():
    import torchvision
    torch.manual_seed(0)
    m = torchvision.models.mobilenet_v3_small(weights=None, num_classes=10, width_mult=0.5)
    return randomise_norm_stats(grey_stem(m, ["features", "0", "0"])), "torchvision MobileNetV3-Small (width 0.5): depthwise, Hardswish, squeeze-excitation"


def efficientnet_b0():
    import torchvision
    from torchvision.models.efficientnet import _efficientnet_conf
    torch.manual_seed(0)
    setting, last = _efficientnet_conf("efficientnet_b0", width_mult=0.25, depth_mult=0.34)
    m = torchvision.models.EfficientNet(setting, 0.2, last_channel=last, num_classes=10)
    return randomise_norm_stats(grey_stem(m, ["features", "0", "0"])), "torchvision EfficientNet-B0 blocks (width 0.25, depth 0.34): depthwise, SiLU, squeeze-excitation, stochastic depth"


def convnext():
    import torchvision
    from torchvision.models.convnext import CNBlockConfig
    torch.manual_seed(0)
    m = torchvision.models.ConvNeXt([CNBlockConfig(16, 32, 1), CNBlockConfig(32, None, 1)],
                                    num_classes=10)
    return randomise_norm_stats(grey_stem(m, ["features", "0", "0"])), "torchvision ConvNeXt (2 stages, 16/32 channels): 7x7 depthwise, LayerNorm2d, GELU, layer scale"


def vit_tiny():
    import timm
    torch.manual_seed(0)
    m = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=28, patch_size=4,
                          in_chans=1, depth=2, num_classes=10)
    return randomise_norm_stats(m), "timm ViT-Tiny (2 blocks, 28 px, patch 4): attention, LayerNorm, GELU, class token, position embedding"


def keras_cnn(epochs=1):
    """A Keras 3 CNN (NHWC) trained on Fashion-MNIST, exported with Keras's own ONNX export."""
    import keras
    keras.utils.set_random_seed(0)
    L = keras.layers
    model = keras.Sequential([
        keras.Input((28, 28, 1)),
        L.Conv2D(16, 3, padding="same"), L.BatchNormalization(), L.ReLU(),
        L.DepthwiseConv2D(3, padding="same"), L.ReLU(max_value=6.0),
        L.MaxPooling2D(), L.Conv2D(32, 3), L.BatchNormalization(), L.Activation("relu"),
        L.GlobalAveragePooling2D(), L.Dense(64, activation="relu"), L.Dense(10)])
    model.compile(optimizer="adam", metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x_u8, y = load_split("train", FMNIST_DIR)
    model.fit(np.asarray(x_u8, np.float32)[..., None] / 255.0, y, epochs=epochs, batch_size=128,
              verbose=2)
    xt, yt = load_split("t10k", FMNIST_DIR)
    top1 = float(model.evaluate(np.asarray(xt, np.float32)[..., None] / 255.0, yt, verbose=0)[1])
    return model, top1, f"keras {keras.__version__} ({keras.backend.backend()} backend)"


def reference_images():
    x_u8 = torch.from_numpy(np.array(read_idx_images(MINI))).unsqueeze(1)
    y = torch.from_numpy(np.array(read_idx_labels(MINI.replace("images-idx3", "labels-idx1"))))
    return x_u8, y


def write_reference(out, name, model, x, y, layout, source_logits, source):
    """NAME.reference.json: what the Rust tests hold both backends to."""
    sq, _ = verify.reference_grad_sqnorms(exporter.prepare_model(model), x, y)
    ref = {"images": MINI, "n": len(x), "labels": y.tolist(), "layout": layout,
           "logits": np.asarray(source_logits, np.float64).tolist(), "logits_source": source,
           "grad_norms": np.sqrt(sq.sum(1)).tolist(), "grad_norms_source": "torch.func vmap(grad), float64"}
    with open(os.path.join(out, name + ".reference.json"), "w") as f:
        json.dump(ref, f)


def verification_set(model, x, y, n=64):
    """The first n embedded test images and the 16 the teacher is most confident about."""
    with torch.no_grad():
        loss = nn.functional.cross_entropy(model(x), y, reduction="none")
    confident = loss.argsort()[:16]
    first = torch.arange(n)
    idx = torch.cat([first, confident[~torch.isin(confident, first)]])
    return x[idx], y[idx]


def ci_member(out, name, build, rows):
    model, what = build()
    x_u8, y = reference_images()
    x = normalized(x_u8, metadata.BAKED, "NCHW")
    t0 = time.time()
    vx, vy = verification_set(model, x, y)
    rep = exporter.export(model, out, name, input_shape=(1, 28, 28), class_names=FMNIST_CLASSES,
                          normalization=metadata.BAKED, verify_x=vx, verify_y=vy,
                          dataset="random weights (Fashion-MNIST shape)")
    with torch.no_grad():
        logits = model(x[:REFERENCE_N]).double().numpy()
    write_reference(out, name, model, x[:REFERENCE_N], y[:REFERENCE_N], "NCHW", logits,
                    f"pytorch {torch.__version__.split('+')[0]}")
    rows.append(row(name, what, rep, time.time() - t0, model, vx, vy, "NCHW"))


def onnx_member(out, name, src, what, model_logits_fn, test_top1, dataset, rows):
    """A forward ONNX from another framework -> the pair, verified; logits from the framework."""
    x_u8, y = reference_images()
    x = normalized(x_u8, metadata.BAKED, "NHWC")
    t0 = time.time()
    # converted once: the gradient graph and the reference norms are of the same function
    tm = torch_module(src, (1, 28, 28), "NHWC")
    rep = export_onnx(src, out, name, input_shape=(1, 28, 28), class_names=FMNIST_CLASSES,
                      normalization=metadata.BAKED, verify_x=x[:80], verify_y=y[:80],
                      dataset=dataset, layout="NHWC", module=tm)
    fwd = os.path.join(out, name + ".onnx")
    import onnx
    proto = onnx.load(fwd)
    if test_top1 is not None:   # untrained members (random weights) have no accuracy to record
        metadata.attach(proto, {**metadata.read(proto), "infoutil.test_top1": f"{test_top1:.4f}"})
        onnx.save_model(proto, fwd)
    source_logits = np.asarray(model_logits_fn(x[:REFERENCE_N]), np.float64)
    # the shipped forward graph on ONNX Runtime against the source framework's own logits (what
    # the Rust tests hold both backends to)
    sess = verify.ort_session(fwd)
    got = sess.run(None, {sess.get_inputs()[0].name: x[:REFERENCE_N].numpy()})[0]
    source_err = float(np.abs(got.astype(np.float64) - source_logits).max())
    print(f"[{name}] forward on ONNX Runtime vs {what}: max |logit diff| = {source_err:.3g} "
          f"(tolerance {exporter.FORWARD_TOL:g}, n={REFERENCE_N})", flush=True)
    if not source_err <= exporter.FORWARD_TOL:
        raise exporter.VerificationError(
            f"{name}: the forward graph's logits differ from {what}'s by {source_err:.3g}")
    write_reference(out, name, tm, x[:REFERENCE_N], y[:REFERENCE_N], "NHWC", source_logits, what)
    rows.append(row(name, what, rep, time.time() - t0, tm, x[:64], y[:64], "NHWC",
                    top1=test_top1, source_logits_max_abs_err=source_err))


def row(name, what, rep, seconds, model, x, y, layout, top1=None, **extra):
    g = rep["grad"]
    speed = throughput(rep["files"]["grad"]["path"], exporter.prepare_model(model), x, y, layout)
    return {"name": name, "what": what, "layout": layout, "test_top1": top1,
            "norm_max_rel_err": g["norm_max_rel_err"], "ref_norm_range": [g["ref_norm_min"], g["ref_norm_max"]],
            "forward_max_abs_err": rep["forward"]["forward_max_abs_err"],
            "logit_scale": rep["forward"].get("logit_scale"),
            "forward_mb": rep["files"]["forward"]["bytes"] / 1e6, "grad_mb": rep["files"]["grad"]["bytes"] / 1e6,
            "export_s": round(seconds, 1), **extra, **speed}


def throughput(grad_path, model, x, y, layout, reps=3):
    """Gradient norms per second: the grad graph on ONNX Runtime against torch.func vmap(grad)
    in float32 on the same network and batch (2 threads each; median of `reps`)."""
    sess = verify.ort_session(grad_path)
    name = sess.get_inputs()[0].name
    feed = {name: x.numpy(), "y": y.numpy()}
    t_ort = median_time(lambda: sess.run(["norms"], feed), reps)
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}
    from torch.func import functional_call, grad, vmap

    def loss(p, xi, yi):
        return nn.functional.cross_entropy(functional_call(model, {**p, **buffers}, (xi[None],)), yi[None])

    per_sample = vmap(grad(loss), in_dims=(None, 0, 0))
    t_vmap = median_time(lambda: per_sample(params, x, y), reps)
    return {"batch": len(x), "ort_norms_per_s": len(x) / t_ort, "vmap_norms_per_s": len(x) / t_vmap}


def median_time(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


# members that do not export yet run only when named with --only, so that a plain `--tier ci` run
# gets through (none now: convnext, whose backward stopped at an as_strided_scatter, exports since
# ghost.SUBSTITUTE traces global average pooling as a mean)
NOT_YET = set()


def ci_tier(out, rows, only):
    for name, build in (("mobilenetv3-small", mobilenet_v3_small), ("efficientnet-b0", efficientnet_b0),
                        ("convnext", convnext), ("vit-tiny", vit_tiny)):
        if (not only and name not in NOT_YET) or (only and name in only):
            ci_member(out, name, build, rows)
    if not only or "keras-cnn" in only:
        model, top1, source = keras_cnn()
        src = os.path.join("export", "runs", "zoo", "keras-cnn.src.onnx")
        os.makedirs(os.path.dirname(src), exist_ok=True)
        model.export(src, format="onnx")
        onnx_member(out, "keras-cnn", src, source,
                    lambda x: np.asarray(model.predict(x.numpy(), verbose=0), np.float64), top1,
                    "fashion-mnist", rows)
    keras2_members(out, rows, only)
    jax_src = os.path.join("export", "runs", "zoo", "flax-cnn.src.onnx")
    if only and "flax-cnn" in only and not os.path.exists(jax_src):
        # named, so its absence is an error, not the silent skip of a plain `--tier ci` run
        raise SystemExit(f"flax-cnn: {jax_src} not found; make it first in the JAX environment: "
                         f"python export/zoo_jax.py --out {jax_src}")
    if (not only or "flax-cnn" in only) and os.path.exists(jax_src):
        facts = json.load(open(jax_src.replace(".onnx", ".json")))
        ref = np.asarray(facts["reference_logits"])
        onnx_member(out, "flax-cnn", jax_src, facts["framework"], lambda x: ref[:len(x)],
                    facts["test_top1"], "fashion-mnist", rows)


def keras2_members(out, rows, only):
    """`.h5` files written by TensorFlow 2.15 (tf.keras = Keras 2), exported by Keras 3
    (tests/data/keras2_h5/, export/keras2_h5.py fixture): logits from TensorFlow 2.15 itself."""
    folder = os.path.join("tests", "data", "keras2_h5")
    with open(os.path.join(folder, "reference.json")) as f:
        facts = json.load(f)
    what = (f"tf.keras {facts['keras']} (TensorFlow {facts['tensorflow']}) .h5, "
            "Keras 3 export (export/keras_to_onnx.py)")
    # TensorFlow's logits are of fixed images: they must be the ones onnx_member feeds
    _, y = reference_images()
    if (facts["images"] != MINI or facts["n"] < REFERENCE_N
            or facts["labels"][:REFERENCE_N] != y[:REFERENCE_N].tolist()):
        raise SystemExit(f"{folder}/reference.json: TensorFlow's logits are of {facts['n']} images "
                         f"of {facts['images']}; the zoo needs the first {REFERENCE_N} of {MINI} "
                         "(rerun export/keras2_h5.py fixture)")
    for net, entry in facts["nets"].items():
        if only and "keras2-" + net not in only:
            continue
        if entry["pixels"] != "unit":   # onnx_member feeds pixels / 255
            raise SystemExit(f"{folder}/reference.json: {net} takes pixels {entry['pixels']!r}, "
                             "the zoo feeds 'unit' (pixels / 255)")
        ref = np.asarray(entry["logits"])
        # seeded weights, not trained: no test accuracy, and the dataset says so
        onnx_member(out, "keras2-" + net, os.path.join(folder, net + ".onnx"), what,
                    lambda x, r=ref: r[:len(x)], None, "random weights (Fashion-MNIST shape)", rows)


def imagenet_tier(out, rows, only, n=8):
    import timm
    import torchvision
    members = {
        "resnet18": lambda: torchvision.models.resnet18(weights=None),
        "resnet50": lambda: torchvision.models.resnet50(weights=None),
        "mobilenet_v3_small": lambda: torchvision.models.mobilenet_v3_small(weights=None),
        "efficientnet_b0": lambda: torchvision.models.efficientnet_b0(weights=None),
        "convnext_tiny": lambda: torchvision.models.convnext_tiny(weights=None),
        "vit_tiny_patch16_224": lambda: timm.create_model("vit_tiny_patch16_224", pretrained=False),
    }
    for name, build in members.items():
        if only and name not in only:
            continue
        torch.manual_seed(0)
        model = randomise_norm_stats(build())
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(n, 3, 224, 224, generator=gen)
        y = torch.randint(0, 1000, (n,), generator=gen)
        t0 = time.time()
        rep = exporter.export(model, out, name, input_shape=(3, 224, 224),
                              class_names=[str(i) for i in range(1000)],
                              normalization=metadata.mean_std([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
                              verify_x=x, verify_y=y, dataset="random weights (ImageNet shape)")
        rows.append(row(name, type(model).__module__.split(".")[0], rep, time.time() - t0, model,
                        x, y, "NCHW"))
        print(json.dumps(rows[-1]), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tier", choices=["ci", "imagenet"], required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", nargs="*", help="member names (default: all of the tier)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    rows = []
    try:
        (ci_tier if args.tier == "ci" else imagenet_tier)(args.out, rows, args.only)
    finally:   # rows of earlier runs of other members stay
        path = os.path.join(args.out, f"zoo-{args.tier}.json")
        old = json.load(open(path)) if os.path.exists(path) else []
        done = {r["name"] for r in rows}
        with open(path, "w") as f:
            json.dump([r for r in old if r["name"] not in done] + rows, f, indent=1)
    for r in rows:
        print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    sys.exit(main())
