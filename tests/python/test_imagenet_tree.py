"""examples/imagenet_tree.py: the folder layout, ImageNet-like JPEG sizes and determinism
(numpy, Pillow)."""
import hashlib
import os
import sys
import tempfile
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "examples"))

import imagenet_tree  # noqa: E402
from PIL import Image  # noqa: E402


def digest(folder):
    h = hashlib.sha256()
    for root, _, files in sorted(os.walk(folder)):
        for f in sorted(files):
            h.update(f.encode() + open(os.path.join(root, f), "rb").read())
    return h.hexdigest()


class ImagenetTree(unittest.TestCase):
    def test_layout_sizes_and_determinism(self):
        with tempfile.TemporaryDirectory() as d:
            a, b = os.path.join(d, "a"), os.path.join(d, "b")
            imagenet_tree.main([a, "--classes", "3", "--per-class", "4", "--seed", "1"])
            imagenet_tree.main([b, "--classes", "3", "--per-class", "4", "--seed", "1"])
            self.assertEqual(digest(a), digest(b))
            names = sorted(n for n in os.listdir(a) if os.path.isdir(os.path.join(a, n)))
            self.assertEqual(names, ["n00000000", "n00000001", "n00000002"])
            with open(os.path.join(a, "classes.txt")) as f:
                self.assertEqual(f.read().split(), names)
            for n in names:
                files = sorted(os.listdir(os.path.join(a, n)))
                self.assertEqual(len(files), 4)
                for f in files:
                    with Image.open(os.path.join(a, n, f)) as im:
                        self.assertEqual((im.format, im.mode), ("JPEG", "RGB"))
                        self.assertIn(im.size, imagenet_tree.SIZES)
            c = os.path.join(d, "c")
            imagenet_tree.main([c, "--classes", "3", "--per-class", "4", "--seed", "2"])
            self.assertNotEqual(digest(a), digest(c))


if __name__ == "__main__":
    unittest.main()
