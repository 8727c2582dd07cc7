"""scripts/check_restamped.py: the results in docs/data name teacher files that were re-stamped
(metadata only) after their runs; each result's `restamped` entry gives the files' hashes now,
and the check proves from git history that the versions differ only in their metadata."""
import importlib.util
import subprocess
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("check_restamped", ROOT / "scripts" / "check_restamped.py")
check = importlib.util.module_from_spec(spec)
spec.loader.exec_module(check)


def field(number, payload):
    """A length-delimited protobuf field (number < 16, payload < 128 bytes)."""
    return bytes([number << 3 | 2, len(payload)]) + payload


class MetadataOnly(unittest.TestCase):
    def test_metadata_is_set_aside_and_nothing_else(self):
        model = (ROOT / "models" / "fmnist-convnet3.onnx").read_bytes()
        plain = check.without_metadata(model)
        self.assertLess(len(plain), len(model))
        self.assertEqual(check.without_metadata(model + field(14, field(1, b"k") + field(2, b"v"))), plain)
        # A byte of the weights (the middle of the file lies in the graph's initializers).
        flipped = bytearray(model)
        flipped[len(model) // 2] ^= 1
        self.assertNotEqual(check.without_metadata(bytes(flipped)), plain)
        early = (ROOT / "models" / "fmnist-convnet3-early.onnx").read_bytes()
        self.assertNotEqual(check.without_metadata(early), plain)
        with self.assertRaises((ValueError, IndexError)):
            check.without_metadata(model[: len(model) // 3])

    def test_every_kept_result_is_proved_and_its_entry_is_the_files_now(self):
        inside = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--git-dir"], capture_output=True)
        if inside.returncode != 0:
            self.skipTest("not a git checkout: the recorded versions are in git history")
        self.assertEqual(check.main([]), 0)


if __name__ == "__main__":
    unittest.main()
