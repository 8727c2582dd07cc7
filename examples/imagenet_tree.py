#!/usr/bin/env python3
"""A synthetic ImageNet-shaped image folder, for measuring infoutil at ImageNet's shape without
ImageNet: CLASSES folders named like ImageNet's (n00000000, n00000001, ...), each with PER_CLASS
JPEG files of ImageNet's typical sizes (500x375, 500x333, 375x500, 500x500, 333x500, 640x480 and
a few larger), quality 90, RGB. Each image is a smooth random field with a class-dependent hue
and a few bright blobs, so that it compresses and decodes like a photo rather than like noise.

    python examples/imagenet_tree.py OUT_DIR [--classes 10] [--per-class 300] [--seed 0]

Deterministic for a seed (same files, same bytes, with the same Pillow). Prints the number of
files and bytes; the class list (folder names, one a line) goes to OUT_DIR/classes.txt, the form
`export/export_module.py --class-names` reads, so a teacher's class names match the folders.
Needs numpy and Pillow.
"""
import argparse
import os
import sys

import numpy as np
from PIL import Image

SIZES = [(500, 375), (500, 333), (375, 500), (500, 500), (333, 500), (640, 480), (800, 600),
         (1024, 683)]
# Roughly ImageNet's mix: most images are about 500 px on the long side, landscape.
WEIGHTS = [0.35, 0.2, 0.12, 0.1, 0.08, 0.08, 0.04, 0.03]


def image(rng, width, height, hue):
    """A smooth RGB field: coarse noise upsampled bilinearly, tinted, plus a few blobs."""
    coarse = rng.random((height // 32 + 2, width // 32 + 2, 3))
    field = np.asarray(Image.fromarray((coarse * 255).astype(np.uint8)).resize(
        (width, height), Image.BILINEAR), dtype=np.float32)
    tint = np.array([np.cos(hue), np.cos(hue + 2.1), np.cos(hue + 4.2)]) * 60
    yy, xx = np.mgrid[0:height, 0:width]
    for _ in range(3):
        cy, cx = rng.random() * height, rng.random() * width
        r = (0.05 + 0.15 * rng.random()) * min(width, height)
        field += 120 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))[..., None]
    return Image.fromarray(np.clip(field * 0.7 + tint, 0, 255).astype(np.uint8), "RGB")


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--per-class", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.classes < 1 or args.per_class < 1:
        ap.error("--classes and --per-class must be at least 1")
    names = [f"n{c:08d}" for c in range(args.classes)]
    files = size = 0
    for c, name in enumerate(names):
        folder = os.path.join(args.out, name)
        os.makedirs(folder, exist_ok=True)
        rng = np.random.default_rng([args.seed, c])
        hue = 2 * np.pi * c / args.classes
        for i in range(args.per_class):
            w, h = SIZES[rng.choice(len(SIZES), p=WEIGHTS)]
            path = os.path.join(folder, f"{name}_{i:05d}.JPEG")
            tmp = path + ".tmp"
            image(rng, w, h, hue).save(tmp, "JPEG", quality=90)
            os.replace(tmp, path)
            files += 1
            size += os.path.getsize(path)
    with open(os.path.join(args.out, "classes.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    print(f"{files} JPEG files in {args.classes} classes, {size / 1e6:.1f} MB -> {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])
