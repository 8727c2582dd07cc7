"""Verification images as infoutil itself reads them, in any of its layouts, brought to the
teacher's input by the metadata being written.

Sources (`load`):
- an idx3 gzip file (Fashion-MNIST / MNIST), labels from the idx1 file alongside;
- a `.npy` array of uint8 pixels `[N, H, W]`, `[N, C, H, W]` or `[N, H, W, C]` (any C, any size);
- an HDF5 file with `/images` uint8 `[N, C, H, W]` or `[N, H, W]` and `/labels`, class names
  (optional) in the root attribute `class_names` (a JSON list), as `infoutil` reads it;
- an ImageFolder tree `root/<class>/<image>.png|jpg|jpeg`, grey images one channel, colour three.

Labels: a folder's (or an HDF5 file's) class names are matched to the teacher's without case or
punctuation ("T-shirt_top" is "T-shirt/top"), or read as class numbers when they are numbers, as
`infoutil`'s data sources do; a tree that matches neither is refused, naming the folders. A `.npy`
has none unless given (`labels=`).

Sizes: each image is resized as the Rust loader does (`src/data/preprocess.rs`): `stretch` is a
bilinear resize of the whole image to H x W, `shorter_side` S resizes the shorter side to S
(the longer to S * long / short, floored) and takes the centred H x W (offset rounded half to
even, as torchvision); bilinear with half-pixel centres and no antialiasing, on float pixels
(0..255, not rounded back). The channel count must match: converting grey to colour silently
would change what the teacher sees, so it is an error, as in `infoutil`.
"""
import json
import os
import re

import numpy as np
import torch
import torch.nn.functional as F

from .data import read_idx_images, read_idx_labels

EXTENSIONS = (".png", ".jpg", ".jpeg")


class ImageError(ValueError):
    """Bad verification images: the message names the file and what was expected."""


def _key(name):
    return re.sub(r"[^0-9a-z]", "", name.lower())


def match_classes(names, teacher_classes, where):
    """The teacher's class number of each name: by name (case and punctuation ignored), or the
    names' own numbers when they all are numbers."""
    keys = {_key(c): i for i, c in enumerate(teacher_classes)}
    if all(_key(n) in keys for n in names):
        return [keys[_key(n)] for n in names]
    if all(n.strip().isdigit() and int(n) < len(teacher_classes) for n in names):
        return [int(n) for n in names]
    bad = [n for n in names if _key(n) not in keys][:5]
    raise ImageError(f"{where}: class names {bad} are neither the teacher's class names "
                     f"({', '.join(teacher_classes[:5])}{', ...' if len(teacher_classes) > 5 else ''}) "
                     f"nor class numbers 0..{len(teacher_classes) - 1}")


def _folder(root, teacher_classes, limit):
    from PIL import Image
    folders = sorted(e for e in os.listdir(root)
                     if not e.startswith(".") and os.path.isdir(os.path.join(root, e)))
    if not folders:
        raise ImageError(f"{root}: not an image folder (expected root/<class>/<image>.png|jpg)")
    class_of = match_classes(folders, teacher_classes, root)
    images, labels, files = [], [], []
    for folder, label in zip(folders, class_of):
        d = os.path.join(root, folder)
        for f in sorted(os.listdir(d)):
            if f.startswith(".") or not f.lower().endswith(EXTENSIONS):
                continue
            path = os.path.join(d, f)
            try:
                im = Image.open(path)
                im = im.convert("L") if im.mode in ("L", "I;16", "I", "1", "LA") else im.convert("RGB")
            except OSError as e:
                raise ImageError(f"{path}: not a readable image ({e})") from e
            a = np.asarray(im)
            images.append(a[None] if a.ndim == 2 else a.transpose(2, 0, 1))
            labels.append(label)
            files.append(path)
            if len(images) >= limit:
                return images, np.asarray(labels), files
    if not images:
        raise ImageError(f"{root}: no .png / .jpg / .jpeg images in its class folders")
    return images, np.asarray(labels), files


def _h5(path, teacher_classes):
    import h5py
    with h5py.File(path, "r") as f:
        if "images" not in f or "labels" not in f:
            raise ImageError(f"{path}: expected datasets /images and /labels")
        a, labels = f["images"][()], f["labels"][()].astype(np.int64)
        names = f.attrs.get("class_names")
    if a.ndim == 3:
        a = a[:, None]
    if names is not None:
        names = json.loads(names if isinstance(names, str) else names.decode())
        class_of = np.asarray(match_classes(names, teacher_classes, f"{path} (class_names)"))
        labels = class_of[labels]
    return list(a), labels


def _npy(path, channels):
    a = np.load(path)
    if a.ndim == 3:
        a = a[:, None]
    elif a.ndim == 4 and a.shape[1] != channels and a.shape[3] == channels:
        a = a.transpose(0, 3, 1, 2)
    if a.ndim != 4:
        raise ImageError(f"{path}: expected [N, H, W], [N, C, H, W] or [N, H, W, C], got {list(a.shape)}")
    return list(a), None


def resize(img, spec_hw, resize_meta):
    """float32 [C, h, w] (0..255) -> [C, H, W] as the Rust loader's InputSpec does it."""
    H, W = spec_hw
    c, h, w = img.shape
    if (h, w) == (H, W):
        return img
    if (resize_meta or {}).get("kind", "stretch") == "stretch":
        rh, rw, oy, ox = H, W, 0, 0
    else:
        s = int(resize_meta["size"])
        short = max(min(h, w), 1)
        rh, rw = (s, s * w // short) if h <= w else (s * h // short, s)
        half = lambda e: round(e / 2)   # noqa: E731 (Python's round: half to even)
        oy, ox = half(max(rh - H, 0)), half(max(rw - W, 0))
    out = F.interpolate(img[None], size=(rh, rw), mode="bilinear", align_corners=False,
                        antialias=False)[0]
    return out[:, oy:oy + H, ox:ox + W]


def load(path, input_shape, teacher_classes, resize_meta=None, limit=10000):
    """(pixels float32 [N, C, H, W] in 0..255 as the teacher sees them before normalisation,
    labels int64 [N] or None, a description). Raises ImageError naming the file."""
    c, H, W = input_shape
    files = None
    if os.path.isdir(path):
        images, labels, files = _folder(path, teacher_classes, limit)
    elif path.endswith((".h5", ".hdf5")):
        images, labels = _h5(path, teacher_classes)
    elif path.endswith(".npy"):
        images, labels = _npy(path, c)
    else:
        images = list(np.asarray(read_idx_images(path))[:, None])
        lab = path.replace("images-idx3", "labels-idx1")
        labels = read_idx_labels(lab) if lab != path and os.path.exists(lab) else None
    images = images[:limit]
    out = []
    for i, a in enumerate(images):
        where = files[i] if files else f"{path}: image {i}"
        if a.dtype != np.uint8:
            raise ImageError(f"{where} holds {a.dtype}, expected uint8 pixels (0..255)")
        if a.shape[0] != c:
            raise ImageError(f"{where} has {a.shape[0]} channel(s) ({'x'.join(map(str, a.shape))}) "
                             f"but the teacher expects {c} ({c}x{H}x{W})")
        out.append(resize(torch.from_numpy(np.ascontiguousarray(a)).float(), (H, W), resize_meta))
    if labels is not None:
        labels = torch.as_tensor(np.asarray(labels)[:len(out)], dtype=torch.int64)
        if int(labels.max()) >= len(teacher_classes) or int(labels.min()) < 0:
            raise ImageError(f"{path}: labels outside 0..{len(teacher_classes) - 1}")
    sizes = {tuple(a.shape[1:]) for a in images}
    how = (f"{path}: {len(out)} images" + (f" resized from {len(sizes)} size(s) ({resize_meta or 'stretch'})"
                                           if sizes != {(H, W)} else ""))
    return torch.stack(out), labels, how
