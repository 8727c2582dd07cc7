#!/usr/bin/env python3
"""Synthetic one-class shards of ImageNet shape, for timing `infoutil merge` (issue 13).

Used by examples/slurm/bench-merge-imagenet.sh; needs h5py and numpy.

    imagenet_shards.py make  REAL.h5 DIR N [--noise SIGMA] [--jobs J]
    imagenet_shards.py check MERGED.h5 SHARD_DIR N_MERGED
    imagenet_shards.py evict FILE...

make: writes DIR/shard-0.h5 ... DIR/shard-(N-1).h5. Shard K is what `infoutil distill
--classes K` of a 1000-class ImageNet teacher (IPC 10, factor 1, 300 candidates per class,
4x4 Shapley grid, 5 crops per candidate) would write. It keeps REAL.h5's schema: every root
attribute (config with distill.classes = [K]; class_names = 1000 names "n%08d"), the same
datasets and groups with their `layout`/`description` attributes, dtypes, fill values and
filters (shuffle + gzip level 4, no fletcher32, read from REAL.h5's dataset creation
properties) and the chunk rule of src/store/mod.rs (first axis chunked to about 1 MiB per
chunk; the script asserts that this rule reproduces REAL.h5's own chunks). Only the shapes
differ (ImageNet's) and the values are synthetic:

  /images            float32 [10,3,224,224]   /images_uint8 uint8 [10,3,224,224]
  /labels            int64 [10] = K
  /soft_labels, /soft_logits   float32 [10,1,1000]  (logits N(0,2) + 8 on class K; softmax)
  /provenance/source_index int64 [10,1], /provenance/crop_box int32 [10,1,4]
  /candidates/source_index int64 [300] (300 sorted records of 1300 of class K)
  /candidates/label int64 [300] = K, /candidates/crop_box int32 [300,5,4],
  /candidates/score float32 [300,5], /candidates/shapley float32 [300,4,4]

Image content (what gzip sees): image i of shard K starts from the real 28x28 distilled image
(K + i) mod 10 of REAL.h5 (its uint8 pixels), upsampled bilinearly (half-pixel centres) to
224x224, randomly flipped and rolled, one copy per channel with its own random gain and offset
(a colour tint) plus a random linear brightness ramp, plus i.i.d. Gaussian noise of SIGMA grey
levels (default 4) added in float; /images_uint8 is that rounded and clipped to 0..255, and
/images the float value normalised with ImageNet's mean/std (so /images is continuous, like a
real distilled float image, not just the uint8 values rescaled). Every shard draws from its own
seed (K), so no two shards hold the same bytes.

check: asserts that MERGED.h5 holds N_MERGED classes 0..N_MERGED-1: images [10*N,3,224,224]
(float32 and uint8), labels 0..N-1 ten times each in class order, every other dataset at 10*N
or 300*N rows, and that the rows of a few shards equal the shard files byte for byte.

evict: sync, then posix_fadvise(POSIX_FADV_DONTNEED) each FILE, dropping its clean pages from
the page cache without root and without touching other files' pages (for a cold-ish run); with
util-linux `fincore` on PATH it prints how many of their bytes are still cached.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
from multiprocessing import Pool

import h5py
import numpy as np

CLASSES = 1000
IPC = 10
SIZE = 224
CANDIDATES = 300
CROPS = 5
GRID = 4
TILES = 1
RECORDS_PER_CLASS = 1300
CHUNK_BYTES = 1 << 20  # src/store/mod.rs CHUNK_BYTES
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)

SHAPES = {
    "images": (IPC, 3, SIZE, SIZE),
    "images_uint8": (IPC, 3, SIZE, SIZE),
    "labels": (IPC,),
    "soft_labels": (IPC, TILES, CLASSES),
    "soft_logits": (IPC, TILES, CLASSES),
    "provenance/source_index": (IPC, TILES),
    "provenance/crop_box": (IPC, TILES, 4),
    "candidates/source_index": (CANDIDATES,),
    "candidates/label": (CANDIDATES,),
    "candidates/crop_box": (CANDIDATES, CROPS, 4),
    "candidates/score": (CANDIDATES, CROPS),
    "candidates/shapley": (CANDIDATES, GRID, GRID),
}
PER_CLASS = {k: v[0] for k, v in SHAPES.items()}


def chunks_for(shape, itemsize):
    """src/store/mod.rs Writer::builder: first axis chunked to about CHUNK_BYTES."""
    row = int(np.prod(shape[1:], dtype=np.int64)) * itemsize
    rows = min(max(CHUNK_BYTES // max(row, 1), 1), shape[0])
    return (rows,) + tuple(shape[1:])


def datasets(f):
    out = {}

    def visit(name, obj):
        if isinstance(obj, h5py.Dataset):
            out[name] = obj

    f.visititems(visit)
    return out


def template(real_path):
    """Everything of REAL.h5 a shard keeps: root attributes and per dataset its properties."""
    with h5py.File(real_path, "r") as f:
        attrs = {k: f.attrs[k] for k in f.attrs}
        props = {}
        for name, ds in datasets(f).items():
            if name not in SHAPES:
                sys.exit(f"{real_path}: dataset {name} is not in this script's table; update SHAPES")
            dcpl = ds.id.get_create_plist()
            assert ds.chunks == chunks_for(ds.shape, ds.dtype.itemsize), (name, ds.chunks)
            props[name] = dict(
                dtype=ds.dtype,
                compression=ds.compression,
                compression_opts=ds.compression_opts,
                shuffle=ds.shuffle,
                fletcher32=ds.fletcher32,
                fillvalue=ds.fillvalue,
                track_times=dcpl.get_obj_track_times(),
                attrs={k: ds.attrs[k] for k in ds.attrs},
            )
        missing = set(SHAPES) - set(props)
        if missing:
            sys.exit(f"{real_path} lacks {sorted(missing)}; is it a default InfoUtil distill?")
        base = f["images_uint8"][:, 0].astype(np.float32)  # [10, 28, 28]
    return attrs, props, base


def upsample_matrix(n_in, n_out):
    """Bilinear resize along one axis with half-pixel centres (clamped at the edges)."""
    x = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    x = np.clip(x, 0, n_in - 1)
    lo = np.floor(x).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    w = x - lo
    m = np.zeros((n_out, n_in), np.float32)
    m[np.arange(n_out), lo] += 1 - w
    m[np.arange(n_out), hi] += w
    return m


def images_for(k, base, noise):
    rng = np.random.default_rng(1_000_003 + k)
    up = upsample_matrix(base.shape[1], SIZE)
    px = np.empty((IPC, 3, SIZE, SIZE), np.float32)
    ramp_y, ramp_x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32) / SIZE - 0.5
    for i in range(IPC):
        img = up @ base[(k + i) % len(base)] @ up.T  # [224, 224], 0..255
        if rng.random() < 0.5:
            img = img[:, ::-1]
        img = np.roll(img, rng.integers(-24, 25, size=2), axis=(0, 1))
        for c in range(3):
            gain, offset = rng.uniform(0.6, 1.0), rng.uniform(-30, 30)
            gy, gx = rng.uniform(-40, 40, size=2)
            px[i, c] = gain * img + offset + gy * ramp_y + gx * ramp_x
    px += rng.normal(0, noise, size=px.shape).astype(np.float32)
    px = np.clip(px, 0, 255)
    u8 = np.rint(px).astype(np.uint8)
    fl = ((px / 255 - MEAN[None, :, None, None]) / STD[None, :, None, None]).astype(np.float32)
    return fl, u8


def values_for(k, base, noise):
    rng = np.random.default_rng(k)
    fl, u8 = images_for(k, base, noise)
    logits = rng.normal(0, 2, size=SHAPES["soft_logits"]).astype(np.float32)
    logits[:, :, k] += 8
    e = np.exp(logits - logits.max(axis=-1, keepdims=True))
    soft = (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)
    cand = np.sort(rng.choice(RECORDS_PER_CLASS, CANDIDATES, replace=False)) + k * RECORDS_PER_CLASS

    def boxes(shape):
        h = rng.integers(56, SIZE + 1, size=shape)
        w = rng.integers(56, SIZE + 1, size=shape)
        y0 = rng.integers(0, SIZE - h + 1)
        x0 = rng.integers(0, SIZE - w + 1)
        return np.stack([y0, x0, y0 + h, x0 + w], axis=-1).astype(np.int32)

    chosen = rng.choice(cand, IPC, replace=False)
    return {
        "images": fl,
        "images_uint8": u8,
        "labels": np.full(IPC, k, np.int64),
        "soft_labels": soft,
        "soft_logits": logits,
        "provenance/source_index": chosen.reshape(IPC, TILES).astype(np.int64),
        "provenance/crop_box": boxes((IPC, TILES)),
        "candidates/source_index": cand.astype(np.int64),
        "candidates/label": np.full(CANDIDATES, k, np.int64),
        "candidates/crop_box": boxes((CANDIDATES, CROPS)),
        "candidates/score": rng.gamma(2.0, 30.0, size=(CANDIDATES, CROPS)).astype(np.float32),
        "candidates/shapley": rng.normal(0.3, 0.5, size=(CANDIDATES, GRID, GRID)).astype(np.float32),
    }


def write_shard(args):
    k, out_dir, real_path, noise = args
    attrs, props, base = TEMPLATE
    values = values_for(k, base, noise)
    path = os.path.join(out_dir, f"shard-{k}.h5")
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        config = json.loads(attrs["config"])
        config["distill"]["classes"] = [k]
        for name, v in attrs.items():
            if name == "config":
                v = json.dumps(config, separators=(",", ":"))
            elif name == "class_names":
                v = json.dumps([f"n{c:08d}" for c in range(CLASSES)], separators=(",", ":"))
            f.attrs[name] = v
        for name, p in props.items():
            data = values[name]
            assert data.shape == SHAPES[name] and data.dtype == p["dtype"], name
            ds = f.create_dataset(
                name,
                data=data,
                chunks=chunks_for(data.shape, data.dtype.itemsize),
                compression=p["compression"],
                compression_opts=p["compression_opts"],
                shuffle=p["shuffle"],
                fletcher32=p["fletcher32"],
                fillvalue=p["fillvalue"],
                track_times=p["track_times"],
            )
            for a, v in p["attrs"].items():
                ds.attrs[a] = v
    os.replace(tmp, path)
    return k


TEMPLATE = None


def init(real_path):
    global TEMPLATE
    TEMPLATE = template(real_path)


def make(a):
    os.makedirs(a.dir, exist_ok=True)
    init(a.real)
    todo = [k for k in range(a.n) if not os.path.exists(os.path.join(a.dir, f"shard-{k}.h5"))]
    jobs = a.jobs or os.cpu_count() or 1
    with Pool(jobs, initializer=init, initargs=(a.real,)) as pool:
        for _ in pool.imap_unordered(
            write_shard, [(k, a.dir, a.real, a.noise) for k in todo], chunksize=4
        ):
            pass
    # Compression achieved on the images, for the log.
    with h5py.File(os.path.join(a.dir, "shard-0.h5"), "r") as f:
        for name in ("images", "images_uint8"):
            ds = f[name]
            raw = ds.size * ds.dtype.itemsize
            print(
                f"{name}: chunks {ds.chunks}, {ds.compression} {ds.compression_opts}, shuffle "
                f"{ds.shuffle}: {raw} B raw -> {ds.id.get_storage_size()} B stored "
                f"({ds.id.get_storage_size() / raw:.1%}) in shard-0"
            )
    print(f"made {len(todo)} shards (of {a.n}) in {a.dir}, noise sigma {a.noise}, {jobs} processes")


def check(a):
    n = a.n
    with h5py.File(a.merged, "r") as f:
        ds = datasets(f)
        assert set(ds) == set(SHAPES), sorted(set(ds) ^ set(SHAPES))
        for name, shape in SHAPES.items():
            want = (shape[0] * n,) + shape[1:]
            assert ds[name].shape == want, (name, ds[name].shape, want)
        assert f["images"].shape == (IPC * n, 3, SIZE, SIZE) and f["images"].dtype == np.float32
        assert f["images_uint8"].shape == (IPC * n, 3, SIZE, SIZE)
        assert f["images_uint8"].dtype == np.uint8
        labels = f["labels"][...]
        assert np.array_equal(labels, np.repeat(np.arange(n), IPC)), "labels not 0..n-1 x10 in order"
        assert np.array_equal(np.bincount(labels, minlength=n), np.full(n, IPC))
        cl = f["candidates/label"][...]
        assert np.array_equal(cl, np.repeat(np.arange(n), CANDIDATES))
        assert len(json.loads(f.attrs["class_names"])) == CLASSES
        cfg = json.loads(f.attrs["config"])
        assert cfg["distill"]["classes"] == list(range(n)), "config classes"
        assert len(cfg["merged_from"]) == n
        for k in sorted({0, n // 2, n - 1}):
            with h5py.File(os.path.join(a.shard_dir, f"shard-{k}.h5"), "r") as s:
                for name, rows in PER_CLASS.items():
                    got = f[name][k * rows : (k + 1) * rows]
                    assert np.array_equal(got, s[name][...], equal_nan=got.dtype.kind == "f"), (k, name)
        chunks = {name: ds[name].chunks for name in ("images", "soft_labels", "candidates/shapley")}
    print(
        f"check ok: {a.merged}: {IPC * n} images of 3x{SIZE}x{SIZE} (float32 and uint8), labels "
        f"0..{n - 1} x{IPC} each, {CANDIDATES * n} candidates, shards 0/{n // 2}/{n - 1} byte-equal; "
        f"merged chunks {chunks}"
    )


def evict(a):
    os.sync()
    for p in a.files:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    if shutil.which("fincore"):
        out = subprocess.run(
            ["fincore", "-b", "-n", "-o", "RES,SIZE", *a.files], capture_output=True, text=True
        ).stdout.split()
        res = sum(int(x) for x in out[0::2])
        size = sum(int(x) for x in out[1::2])
        print(f"evicted {len(a.files)} files: {res} of {size} bytes still in the page cache")
    else:
        print(f"evicted {len(a.files)} files (fincore not found: residency not checked)")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    m = sub.add_parser("make")
    m.add_argument("real")
    m.add_argument("dir")
    m.add_argument("n", type=int)
    m.add_argument("--noise", type=float, default=4.0)
    m.add_argument("--jobs", type=int, default=0)
    c = sub.add_parser("check")
    c.add_argument("merged")
    c.add_argument("shard_dir")
    c.add_argument("n", type=int)
    e = sub.add_parser("evict")
    e.add_argument("files", nargs="+")
    a = p.parse_args()
    {"make": make, "check": check, "evict": evict}[a.cmd](a)


if __name__ == "__main__":
    main()
