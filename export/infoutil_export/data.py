"""Fashion-MNIST in idx-gzip form, and the one input normalisation every tool here agrees on."""
import os
import sys

import numpy as np
import torch

# The one idx reader of the Python side (gzip CRC checked, errors naming the file).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "examples"))
import infoutil_io  # noqa: E402

FMNIST_DIR = "/usr/share/datasets/fashion-mnist"
FMNIST_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                  "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
# Mean/std of the 60k training pixels after /255 (0.2860, 0.3530), rounded as the Rust side uses them.
FMNIST_MEAN = 0.2860
FMNIST_STD = 0.3530


def read_idx_images(path):
    return infoutil_io.read_idx(path, 3)


def read_idx_labels(path):
    return infoutil_io.read_idx(path, 1).astype(np.int64)


def load_split(split, root=FMNIST_DIR):
    """-> (uint8 images [n, 28, 28], int64 labels [n]); split is "train" or "t10k"."""
    return (read_idx_images(f"{root}/{split}-images-idx3-ubyte.gz"),
            read_idx_labels(f"{root}/{split}-labels-idx1-ubyte.gz"))


def normalize(images_u8):
    """uint8 [n, H, W] -> float32 [n, 1, H, W]: float(pixel)/255, then (x - mean)/std.
    Done in float32 in this order so that the Rust preprocessing can match it bit for bit."""
    x = torch.from_numpy(np.array(images_u8, dtype=np.uint8)).to(torch.float32) / 255.0
    x = (x - FMNIST_MEAN) / FMNIST_STD
    return x.unsqueeze(1)
