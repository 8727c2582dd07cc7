#!/usr/bin/env python3
"""Do two attribution files rank the same patches? For files of `infoutil attribute` on the same
records (e.g. --attribution shapley and --attribution gradcam):

    python examples/map_agreement.py out/attr-shapley.h5 out/attr-gradcam.h5

Prints, over the images both explain: the median and mean Spearman rank correlation of their
patch maps, how often their most informative patch is the same, and how often their noise-free
crop (the last crop box) is the same block; and, for scale, the chance of the last for a uniformly
random block. Reads only the two files (h5py, numpy).
"""
import sys

import h5py
import numpy as np


def read(path):
    with h5py.File(path, "r") as h:
        g = h["attribution"]
        name = g.attrs.get("attribution", "shapley")
        return (name if isinstance(name, str) else name.decode(), g["source_index"][:],
                g["shapley"][:].reshape(len(g["source_index"]), -1), g["crop_box"][:, -1, :],
                int(g.attrs["grid"]), h.attrs["config"])


def ranks(maps):
    return np.argsort(np.argsort(maps, axis=1), axis=1).astype(np.float64)


def agreement(a, b):
    (name_a, idx_a, maps_a, crop_a, grid, _), (name_b, idx_b, maps_b, crop_b, grid_b, _) = a, b
    if grid != grid_b:
        raise SystemExit(f"the files use different grids ({grid} and {grid_b})")
    common, ia, ib = np.intersect1d(idx_a, idx_b, return_indices=True)
    if len(common) == 0:
        raise SystemExit("the files explain no record in common")
    ra, rb = ranks(maps_a[ia]), ranks(maps_b[ib])
    rho = np.array([np.corrcoef(x, y)[0, 1] for x, y in zip(ra, rb)])
    blocks = len({tuple(c) for c in np.concatenate([crop_a[ia], crop_b[ib]])})
    return {
        "files": f"{name_a} vs {name_b}",
        "images": len(common),
        "spearman_median": float(np.nanmedian(rho)),
        "spearman_mean": float(np.nanmean(rho)),
        "same_top_patch": float((maps_a[ia].argmax(1) == maps_b[ib].argmax(1)).mean()),
        "same_clean_crop": float((crop_a[ia] == crop_b[ib]).all(1).mean()),
        "blocks_seen": blocks,
    }


def main(argv):
    if len(argv) != 2:
        raise SystemExit(__doc__)
    r = agreement(read(argv[0]), read(argv[1]))
    print(f"{r['files']} on {r['images']} images: Spearman rank correlation of the patch maps "
          f"median {r['spearman_median']:.2f} (mean {r['spearman_mean']:.2f}); same most "
          f"informative patch {100 * r['same_top_patch']:.0f} %; same noise-free crop "
          f"{100 * r['same_clean_crop']:.0f} % (chance ≈ {100 / max(r['blocks_seen'], 1):.0f} % "
          f"over the {r['blocks_seen']} blocks either chose)")


if __name__ == "__main__":
    main(sys.argv[1:])
