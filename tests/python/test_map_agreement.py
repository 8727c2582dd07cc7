"""examples/map_agreement.py on small attribution files written here (h5py, numpy)."""
import os
import sys
import tempfile
import unittest

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "examples"))

import map_agreement  # noqa: E402


def write(path, index, maps, clean_crops, attribution=None):
    with h5py.File(path, "w") as h:
        h.attrs["config"] = "{}"
        g = h.create_group("attribution")
        g.attrs["grid"] = "2"
        if attribution:
            g.attrs["attribution"] = attribution
        g["source_index"] = np.array(index, dtype=np.int64)
        g["shapley"] = np.array(maps, dtype=np.float32).reshape(len(index), 2, 2)
        boxes = np.zeros((len(index), 2, 4), dtype=np.int32)
        boxes[:, -1] = clean_crops
        g["crop_box"] = boxes


class MapAgreement(unittest.TestCase):
    def test_rank_correlation_top_patch_and_clean_crop_over_common_records(self):
        with tempfile.TemporaryDirectory() as d:
            a, b = os.path.join(d, "a.h5"), os.path.join(d, "b.h5")
            # records 3 and 5 in common (7 and 9 are not): 3 ranks alike, 5 in reverse
            write(a, [3, 5, 7], [[1, 2, 3, 4], [1, 2, 3, 4], [0, 0, 0, 1]],
                  [[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 2, 2]])
            write(b, [3, 5, 9], [[10, 20, 30, 40], [4, 3, 2, 1], [1, 0, 0, 0]],
                  [[0, 0, 1, 1], [1, 1, 2, 2], [0, 0, 1, 1]], attribution="gradcam")
            r = map_agreement.agreement(map_agreement.read(a), map_agreement.read(b))
        self.assertEqual(r["files"], "shapley vs gradcam")
        self.assertEqual(r["images"], 2)
        self.assertAlmostEqual(r["spearman_mean"], 0.0)      # +1 and -1
        self.assertAlmostEqual(r["same_top_patch"], 0.5)
        self.assertAlmostEqual(r["same_clean_crop"], 0.5)
        self.assertEqual(r["blocks_seen"], 2)


if __name__ == "__main__":
    unittest.main()
