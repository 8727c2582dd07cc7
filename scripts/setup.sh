# Sourced by scripts/demo and scripts/test: install what the build and the tests need, from the
# package registries only, and point infoutil at ONNX Runtime. Safe to run again: each step is
# skipped when its result is already there.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "[setup] $*" >&2; }

# Python side, from PyPI into .venv (no root): CMake >= 3.26 for the build (HDF5 is compiled
# from source and linked statically; Debian 12's CMake is 3.25), ONNX Runtime (its shared library
# serves the Rust `ort` backend), h5py for the readers, Pillow for examples/imagenet_tree.py,
# maturin and auditwheel for the wheel's test. Without CMake the build cannot run: that failure
# stops here; a missing ONNX Runtime leaves the tract backend working (ORT tests then say SKIP).
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import onnxruntime, h5py, numpy, PIL, cmake, maturin" 2>/dev/null; then
  say "creating .venv with cmake, onnxruntime, h5py, numpy, pillow, maturin (PyPI)"
  [ -x .venv/bin/python ] || python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements.txt \
    || say "pip install failed: continuing with what installed"
fi
if [ -z "${CMAKE:-}" ]; then
  [ -x .venv/bin/cmake ] || { say "no CMake in .venv (pip install cmake failed): the HDF5 build needs CMake >= 3.26"; exit 1; }
  export CMAKE="$PWD/.venv/bin/cmake"   # read by the cmake crate that builds HDF5
fi

if [ -z "${ORT_DYLIB_PATH:-}" ] && [ -x .venv/bin/python ]; then
  ORT_DYLIB_PATH=$(.venv/bin/python - <<'PY' 2>/dev/null || true
import glob, os, onnxruntime
print(sorted(glob.glob(os.path.join(os.path.dirname(onnxruntime.__file__), "capi", "libonnxruntime.so*")))[0])
PY
)
  [ -n "$ORT_DYLIB_PATH" ] && export ORT_DYLIB_PATH
fi
if [ -n "${ORT_DYLIB_PATH:-}" ]; then
  say "ONNX Runtime: $ORT_DYLIB_PATH"
else
  say "ONNX Runtime not found: the tract backend will run"
fi
