"""Teachers for infoutil from your own training script (needs `pip install 'infoutil[torch]'`).

    import infoutil.export
    report = infoutil.export.from_torch(model, (1, 28, 28), mean=[0.286], std=[0.353],
                                        class_names=names, path="teachers/mine.onnx",
                                        images=x_val_uint8, labels=y_val)

writes teachers/mine.onnx (x -> logits) and mine.grad.onnx (per-sample gradient norms), with
the metadata infoutil reads, only after both pass the exporter's numerical checks against
PyTorch (the same code as export/export_module.py: infoutil_export.exporter, shipped in the
wheel unchanged). A Keras, JAX, TensorFlow or any other network: export its forward graph to
ONNX with its own tools (Keras 3: `model.export("m.onnx", format="onnx")`; tf2onnx; jax2onnx),
then

    report = infoutil.export.from_onnx("m.onnx", (1, 28, 28), mean=[0.286], std=[0.353],
                                       class_names=names, path="teachers/mine.onnx",
                                       images=x_val_uint8, labels=y_val)

(the code of export/from_onnx.py: infoutil_export.onnx_forward).
"""
import json
import os

__all__ = ["from_torch", "from_onnx", "VerificationError", "UnsupportedModelError"]


def _exporter():
    try:
        from infoutil_export import exporter, metadata
    except ImportError as e:
        raise ImportError("infoutil.export needs PyTorch and ONNX: pip install 'infoutil[torch]' "
                          f"({e})") from e
    return exporter, metadata


def _out_path(path):
    """(folder, name) of PATH, which must end in .onnx."""
    path = os.fspath(path)
    if not path.endswith(".onnx"):
        raise ValueError(f"path {path!r}: expected a name ending in .onnx")
    return os.path.dirname(path) or ".", os.path.basename(path)[:-len(".onnx")]


def _per_channel(mean, std, channels):
    """mean and std as per-channel lists (one value stands for every channel)."""
    mean, std = list(map(float, mean)), list(map(float, std))
    if len(mean) == 1 and len(std) == 1:
        mean, std = mean * channels, std * channels
    if len(mean) != channels or len(std) != channels:
        raise ValueError(f"mean and std need {channels} values (or 1), got {len(mean)} and {len(std)}")
    return mean, std


def __getattr__(name):
    if name in ("VerificationError", "UnsupportedModelError", "CamLayerError"):
        return getattr(_exporter()[0], name)
    raise AttributeError(name)


def _normalized(images, mean, std, shape):
    """uint8 pixels [N, C, H, W] or [N, H, W] -> float32 tensor in the network's input space."""
    import numpy as np
    import torch
    x = np.asarray(images)
    if x.ndim == 3:
        x = x[:, None]
    if x.dtype != np.uint8 or tuple(x.shape[1:]) != tuple(shape):
        raise ValueError(f"images: expected uint8 pixels [N, {', '.join(map(str, shape))}], got "
                         f"{x.dtype} {list(x.shape)}")
    m = torch.tensor(mean, dtype=torch.float32)[None, :, None, None]
    s = torch.tensor(std, dtype=torch.float32)[None, :, None, None]
    return (torch.from_numpy(x.astype(np.float32) / 255.0) - m) / s


def _verification(model, shape, mean, std, k, images, labels, n, seed):
    """(x, y) the exported graphs are checked on: the given images (labels, else the model's own
    predictions), else seeded standard-normal inputs with random labels."""
    import torch
    gen = torch.Generator().manual_seed(seed)
    if images is None:
        return torch.randn(n, *shape, generator=gen), torch.randint(0, k, (n,), generator=gen)
    x = _normalized(images, mean, std, shape)[:n]
    if labels is None:
        with torch.no_grad():
            y = model(x).argmax(1)
    else:
        y = torch.as_tensor(labels[:n], dtype=torch.int64)
    return x, y


def from_torch(model, input_shape, *, mean, std, class_names, path, images=None, labels=None,
               n=64, seed=0, cam=False, dataset=None, test_top1=None, log=print):
    """Export `model` (a torch.nn.Module returning logits [N, K]) as PATH and PATH's .grad.onnx
    (and .cam.onnx with cam=True, for Grad-CAM), verified; returns the exporter's report, also
    written to NAME.export.json. input_shape is (C, H, W); mean and std are per channel (or one
    value), applied after pixels / 255. Raises VerificationError, UnsupportedModelError or
    ValueError, and writes nothing, when the graphs cannot be made or disagree with PyTorch."""
    exporter, metadata = _exporter()
    import torch
    shape = tuple(int(v) for v in input_shape)
    if len(shape) != 3:
        raise ValueError(f"input_shape: expected (C, H, W), got {input_shape!r}")
    mean, std = _per_channel(mean, std, shape[0])
    names = [str(c) for c in class_names]
    model = model.eval()
    with torch.no_grad():
        out = model(torch.zeros(2, *shape))
    if out.dim() != 2 or out.shape[1] != len(names):
        raise ValueError(f"the model maps [2, {', '.join(map(str, shape))}] to {list(out.shape)}; "
                         f"expected logits [2, {len(names)}] for {len(names)} class names")
    x, y = _verification(model, shape, mean, std, len(names), images, labels, n, seed)
    out_dir, name = _out_path(path)
    report = exporter.export(model, out_dir, name, input_shape=shape, class_names=names,
                             normalization=metadata.mean_std(mean, std), verify_x=x, verify_y=y,
                             dataset=dataset, test_top1=test_top1, cam=cam, log=log)
    with open(os.path.join(out_dir, name + ".export.json"), "w") as f:
        json.dump(report, f, indent=1)
    return report


def _normalization(onnx_forward, metadata, own, channels, mean, std, pixels, baked):
    """The normalisation the graph takes: exactly one of mean/std, pixels, baked, else SRC's own
    metadata."""
    given = [k for k, v in (("mean/std", mean is not None or std is not None),
                            ("pixels", pixels is not None), ("baked", baked)) if v]
    if len(given) > 1:
        raise ValueError(f"give one of mean/std, pixels or baked, not {' and '.join(given)}")
    if baked:
        return metadata.BAKED
    if pixels is not None:
        if pixels not in onnx_forward.PIXELS:
            raise ValueError(f"pixels={pixels!r}: expected one of {sorted(onnx_forward.PIXELS)}")
        return onnx_forward.PIXELS[pixels](channels)
    if mean is not None or std is not None:
        if mean is None or std is None:
            raise ValueError("mean and std go together")
        return metadata.mean_std(*_per_channel(mean, std, channels))
    if own["normalization"] is None:
        raise ValueError("the ONNX file declares no normalisation: give mean= and std=, "
                         "pixels='raw255'|'unit'|'symmetric' or baked=True")
    return own["normalization"]


def _check_outputs(src_path, input_name, shape, k):
    """The graph maps a batch of 2 to logits [2, K], K the number of class names (ONNX Runtime on
    zeros): a mismatch is refused before the slow conversion, writing nothing."""
    import numpy as np
    from infoutil_export import verify
    outs = verify.ort_session(src_path).run(None, {input_name: np.zeros((2, *shape), np.float32)})
    if len(outs) != 1 or outs[0].shape != (2, k):
        raise ValueError(f"the graph maps [2, {', '.join(map(str, shape))}] to "
                         f"{[list(o.shape) for o in outs]}; expected one output, logits [2, {k}] "
                         f"for {k} class names")


def from_onnx(src, input_shape=None, *, path, class_names=None, mean=None, std=None, pixels=None,
              baked=False, layout=None, images=None, labels=None, n=64, seed=0,
              resize_shorter=None, dataset=None, log=print):
    """Make a forward ONNX graph from any framework (SRC: a file, or an onnx.ModelProto as
    tf2onnx returns it) a verified infoutil teacher: PATH (SRC with the metadata), PATH's
    .grad.onnx and .export.json; returns the report. input_shape is (C, H, W) whatever the
    graph's layout, which is read from its input's static dims (or layout="NCHW"/"NHWC").
    Normalisation: mean and std per channel (or one value), applied after pixels / 255; or
    pixels="raw255" | "unit" | "symmetric"; or baked=True (the graph normalises [0, 1] itself).
    input_shape, class_names and the normalisation default to SRC's own infoutil.* metadata.
    images: verification pixels, uint8 [N, C, H, W] (or [N, H, W]) or a path (an image folder,
    HDF5, .npy or idx gzip), resized to H x W (resize_shorter=S: shorter side to S, then the
    centre); labels, else the source's, else SRC's own predictions. Without images, n seeded
    standard-normal inputs. Raises VerificationError, UnsupportedModelError or ValueError, and
    writes nothing, when the graphs cannot be made or disagree."""
    exporter, metadata = _exporter()
    import tempfile
    import onnx
    from infoutil_export import onnx_forward
    out_dir, name = _out_path(path)
    with tempfile.TemporaryDirectory() as tmp:
        if isinstance(src, onnx.ModelProto):
            src_path = os.path.join(tmp, name + ".src.onnx")
            onnx.save_model(src, src_path)
        else:
            src_path = os.fspath(src)
        proto = onnx.load(src_path)
        own = onnx_forward.source_metadata(proto)
        shape = tuple(int(v) for v in (input_shape or own["input_shape"] or ()))
        if len(shape) != 3:
            raise ValueError(f"input_shape: expected (C, H, W), got {input_shape!r} (and "
                             f"{src_path} declares {own['input_shape']})")
        names = [str(c) for c in (class_names or own["class_names"] or [])]
        if not names:
            raise ValueError(f"class_names: none given, and {src_path} declares none")
        norm = _normalization(onnx_forward, metadata, own, shape[0], mean, std, pixels, baked)
        input_name, layout = onnx_forward.graph_input(proto, shape, layout or own["layout"])
        _check_outputs(src_path, input_name, exporter.graph_shape(shape, layout), len(names))
        resize = metadata.shorter_side(resize_shorter) if resize_shorter else own["resize"]
        x, y, how = onnx_forward.verification_inputs(
            src_path, input_shape=shape, class_names=names, normalization=norm, layout=layout,
            resize=resize, pixels=images, labels=labels, n=n, seed=seed)
        log(f"[{name}] verification inputs: {how}")
        report = onnx_forward.export_onnx(
            src_path, out_dir, name, input_shape=shape, class_names=names, normalization=norm,
            verify_x=x, verify_y=y, layout=layout, dataset=dataset, resize=resize, log=log)
    with open(os.path.join(out_dir, name + ".export.json"), "w") as f:
        json.dump(report, f, indent=1)
    return report
