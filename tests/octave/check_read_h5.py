"""examples/read_h5.m under GNU Octave, against h5py: Octave reads a distilled file with the
example reader, saves what it returned (in the documented axis order) to HDF5, and every array
must equal h5py's reading of the original, value for value, with the same shape.

    .venv/bin/python tests/octave/check_read_h5.py out/test-distilled.h5

Exits 0 after printing SKIP when octave is not installed (apt-get install --no-install-recommends
octave), non-zero on any difference.
"""
import os
import shutil
import subprocess
import sys
import tempfile

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# What read_h5.m returns -> the dataset of the file it must equal.
FIELDS = {"images": "images", "images_uint8": "images_uint8", "labels": "labels",
          "soft_labels": "soft_labels", "source_index": "provenance/source_index",
          "crop_box": "provenance/crop_box"}


def octave_read(path, out):
    names = ", ".join(f"'{k}'" for k in FIELDS)
    script = (f"addpath('{ROOT}/examples'); d = read_h5('{path}'); "
              f"assert(strcmp(d.kind, 'distilled')); "
              + "".join(f"{k} = d.{k}; " for k in FIELDS)
              + f"save('-hdf5', '{out}', {names});")
    proc = subprocess.run(["octave", "--no-gui", "--no-window-system", "--quiet", "--eval", script],
                          capture_output=True, text=True, timeout=300)
    print(proc.stdout, end="")
    if proc.returncode != 0:
        sys.exit(f"FAILED: octave read_h5.m on {path}:\n{proc.stderr}")


def main(path):
    if shutil.which("octave") is None:
        print("SKIP: examples/read_h5.m under Octave (octave not installed: "
              "apt-get install --no-install-recommends octave)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "octave.h5")
        octave_read(os.path.abspath(path), out)
        with h5py.File(path, "r") as ref, h5py.File(out, "r") as got:
            for field, dataset in FIELDS.items():
                want = ref[dataset][()]
                # Octave stores its column-major arrays with the axes reversed, as it reads them.
                value = got[field]["value"][()].T
                if want.ndim == 1:
                    value = value.reshape(-1)
                assert value.shape == want.shape, (field, value.shape, want.shape)
                assert np.array_equal(value.astype(want.dtype), want), f"{field} differs"
                assert value.dtype.kind == want.dtype.kind, (field, value.dtype, want.dtype)
    print(f"ok: examples/read_h5.m under Octave reads {path} as h5py does "
          f"({', '.join(FIELDS)}: shapes and values equal)")


if __name__ == "__main__":
    main(sys.argv[1])
