"""Teachers for infoutil from your own training script (needs `pip install 'infoutil[torch]'`).

    import infoutil.export
    report = infoutil.export.from_torch(model, (1, 28, 28), mean=[0.286], std=[0.353],
                                        class_names=names, path="teachers/mine.onnx",
                                        images=x_val_uint8, labels=y_val)

writes teachers/mine.onnx (x -> logits) and mine.grad.onnx (per-sample gradient norms), with
the metadata infoutil reads, only after both pass the exporter's numerical checks against
PyTorch (the same code as export/export_module.py: infoutil_export.exporter, shipped in the
wheel unchanged). A Keras or JAX network: export its forward graph to ONNX with its own tools,
then use export/from_onnx.py from a checkout (not yet part of this package).
"""
import json
import os

__all__ = ["from_torch", "VerificationError", "UnsupportedModelError"]


def _exporter():
    try:
        from infoutil_export import exporter, metadata
    except ImportError as e:
        raise ImportError("infoutil.export needs PyTorch and ONNX: pip install 'infoutil[torch]' "
                          f"({e})") from e
    return exporter, metadata


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
    mean, std = list(map(float, mean)), list(map(float, std))
    if len(mean) == 1 and len(std) == 1:
        mean, std = mean * shape[0], std * shape[0]
    if len(mean) != shape[0] or len(std) != shape[0]:
        raise ValueError(f"mean and std need {shape[0]} values (or 1), got {len(mean)} and {len(std)}")
    names = [str(c) for c in class_names]
    model = model.eval()
    with torch.no_grad():
        out = model(torch.zeros(2, *shape))
    if out.dim() != 2 or out.shape[1] != len(names):
        raise ValueError(f"the model maps [2, {', '.join(map(str, shape))}] to {list(out.shape)}; "
                         f"expected logits [2, {len(names)}] for {len(names)} class names")
    x, y = _verification(model, shape, mean, std, len(names), images, labels, n, seed)
    path = os.fspath(path)
    if not path.endswith(".onnx"):
        raise ValueError(f"path {path!r}: expected a name ending in .onnx")
    out_dir, name = os.path.dirname(path) or ".", os.path.basename(path)[:-len(".onnx")]
    report = exporter.export(model, out_dir, name, input_shape=shape, class_names=names,
                             normalization=metadata.mean_std(mean, std), verify_x=x, verify_y=y,
                             dataset=dataset, test_top1=test_top1, cam=cam, log=log)
    with open(os.path.join(out_dir, name + ".export.json"), "w") as f:
        json.dump(report, f, indent=1)
    return report
