"""Carve a validation split out of an idx training set, for tuning distillation choices.

The last PER_CLASS images of each class (in file order) become the validation split; every other
image stays in the training split. Both are written as gzip idx files, so `infoutil distill --data`
and `train_student.py --test-images` read them like the originals. No randomness: the split is a
function of the input file alone. Standard library only.

    python3 examples/split_validation.py TRAIN-images-idx3-ubyte.gz TRAIN-labels-idx1-ubyte.gz OUTDIR [PER_CLASS]

writes OUTDIR/{train,val}-{images-idx3,labels-idx1}-ubyte.gz and prints the counts.
"""
import gzip
import os
import struct
import sys


def read(images_path, labels_path):
    with gzip.open(images_path) as f:
        magic, n, h, w = struct.unpack(">IIII", f.read(16))
        if magic != 2051:
            sys.exit(f"{images_path}: not an idx3 image file (magic {magic}, expected 2051)")
        images = [f.read(h * w) for _ in range(n)]
    with gzip.open(labels_path) as f:
        magic, n2 = struct.unpack(">II", f.read(8))
        if magic != 2049 or n2 != n:
            sys.exit(f"{labels_path}: expected an idx1 label file with {n} labels (magic 2049), "
                     f"found magic {magic} with {n2}")
        labels = f.read(n)
    return images, labels, h, w


def write(path_stem, images, labels, h, w):
    # mtime=0 keeps the files byte-identical from run to run.
    for suffix, header, body in (
        ("images-idx3-ubyte.gz", struct.pack(">IIII", 2051, len(images), h, w), b"".join(images)),
        ("labels-idx1-ubyte.gz", struct.pack(">II", 2049, len(labels)), bytes(labels)),
    ):
        final = f"{path_stem}-{suffix}"
        with open(final + ".tmp", "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
            f.write(header + body)
        os.replace(final + ".tmp", final)


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    images, labels, h, w = read(sys.argv[1], sys.argv[2])
    out, per_class = sys.argv[3], int(sys.argv[4]) if len(sys.argv) == 5 else 300
    val = set()
    taken = {}
    for i in reversed(range(len(labels))):
        if taken.get(labels[i], 0) < per_class:
            taken[labels[i]] = taken.get(labels[i], 0) + 1
            val.add(i)
    short = {c: k for c, k in taken.items() if k < per_class}
    if short:
        sys.exit(f"{sys.argv[2]}: classes {sorted(short)} have fewer than {per_class} images")
    os.makedirs(out, exist_ok=True)
    train_idx = [i for i in range(len(labels)) if i not in val]
    val_idx = sorted(val)
    write(f"{out}/train", [images[i] for i in train_idx], [labels[i] for i in train_idx], h, w)
    write(f"{out}/val", [images[i] for i in val_idx], [labels[i] for i in val_idx], h, w)
    print(f"train {len(train_idx)} images, val {len(val_idx)} images ({per_class} per class) in {out}")


if __name__ == "__main__":
    main()
