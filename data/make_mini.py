"""Build the embedded Fashion-MNIST subset shipped in this folder.

The first PER_CLASS[split] images of each class, in file order, from the full Fashion-MNIST files that
Debian's `dataset-fashion-mnist` package installs. Written as gzip idx files, like the originals,
so the same loader reads both. Standard library only.

    python3 data/make_mini.py [/usr/share/datasets/fashion-mnist]
"""
import gzip, os, struct, sys

SRC = sys.argv[1] if len(sys.argv) > 1 else "/usr/share/datasets/fashion-mnist"
DST = os.path.dirname(os.path.abspath(__file__)) + "/fashion-mnist-mini"
# The test subset checks teachers (1 000 images); the training subset is what the no-argument
# `infoutil distill` distils, small enough for that to finish within a minute on 2 cores with tract.
PER_CLASS = {"train": 30, "t10k": 100}


def read(split):
    with gzip.open(f"{SRC}/{split}-images-idx3-ubyte.gz") as f:
        magic, n, h, w = struct.unpack(">IIII", f.read(16))
        assert magic == 2051
        images = [f.read(h * w) for _ in range(n)]
    with gzip.open(f"{SRC}/{split}-labels-idx1-ubyte.gz") as f:
        magic, n2 = struct.unpack(">II", f.read(8))
        assert magic == 2049 and n2 == n
        labels = f.read(n)
    return images, labels, h, w


def write(split, images, labels, h, w):
    # mtime=0 keeps the files byte-identical from run to run.
    with open(f"{DST}/{split}-images-idx3-ubyte.gz", "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(struct.pack(">IIII", 2051, len(images), h, w))
        f.writelines(images)
    with open(f"{DST}/{split}-labels-idx1-ubyte.gz", "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(struct.pack(">II", 2049, len(labels)))
        f.write(bytes(labels))


os.makedirs(DST, exist_ok=True)
for split in ("train", "t10k"):
    images, labels, h, w = read(split)
    count, keep = [0] * 10, []
    for i, y in enumerate(labels):
        if count[y] < PER_CLASS[split]:
            count[y] += 1
            keep.append(i)
    write(split, [images[i] for i in keep], [labels[i] for i in keep], h, w)
    print(split, len(keep), "images; source indices", keep[:5], "...")
