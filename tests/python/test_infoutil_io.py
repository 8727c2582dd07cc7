"""examples/infoutil_io.py, the one idx reader / hash / normalisation helper of the Python side,
against independent readings of the shipped files."""
import gzip
import hashlib
import os
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "examples"))

try:
    import numpy as np
    import infoutil_io
except ImportError:  # the standard-library-only run reports these tests as skipped
    np = None

DATA = os.path.join(ROOT, "data", "fashion-mnist-mini")
TEACHER = os.path.join(ROOT, "models", "fmnist-convnet3.onnx")


@unittest.skipIf(np is None, "numpy not installed")
class InfoutilIo(unittest.TestCase):
    def test_idx_matches_a_byte_level_reading(self):
        path = os.path.join(DATA, "t10k-images-idx3-ubyte.gz")
        x = infoutil_io.read_idx(path, 3)
        raw = gzip.open(path).read()
        self.assertEqual(x.shape, (1000, 28, 28))
        self.assertEqual(bytes(x[3].tobytes()), raw[16 + 3 * 784:16 + 4 * 784])

    def test_a_flipped_byte_is_refused_by_the_crc(self):
        path = os.path.join(DATA, "t10k-labels-idx1-ubyte.gz")
        data = bytearray(open(path, "rb").read())
        data[len(data) // 2] ^= 1
        with tempfile.TemporaryDirectory() as d:
            bad = os.path.join(d, "bad-labels-idx1-ubyte.gz")
            open(bad, "wb").write(data)
            with self.assertRaises(infoutil_io.DataError) as e:
                infoutil_io.read_idx(bad, 1)
            self.assertIn("bad-labels-idx1-ubyte.gz", str(e.exception))
        with self.assertRaises(infoutil_io.DataError):
            infoutil_io.read_idx(os.path.join(DATA, "t10k-labels-idx1-ubyte.gz"), 3)

    def test_sha256_and_normalisation_from_the_teacher(self):
        self.assertEqual(infoutil_io.sha256_file(TEACHER),
                         hashlib.sha256(open(TEACHER, "rb").read()).hexdigest())
        try:
            mean, std = infoutil_io.normalization(TEACHER)
        except ImportError:
            self.skipTest("neither onnxruntime nor onnx installed")
        self.assertAlmostEqual(float(mean[0]), 0.286, places=6)
        self.assertAlmostEqual(float(std[0]), 0.353, places=6)
        x = infoutil_io.to_teacher_input(np.full((1, 28, 28), 255, np.uint8), TEACHER)
        self.assertEqual(x.shape, (1, 1, 28, 28))
        self.assertAlmostEqual(float(x[0, 0, 0, 0]), (1 - 0.286) / 0.353, places=5)


if __name__ == "__main__":
    unittest.main()
