# Sourced by scripts/demo and scripts/test: install what the build and the tests need, from the
# package registries only, and point infoutil at ONNX Runtime. Safe to run again: each step is
# skipped when its result is already there.

set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

say() { echo "[setup] $*" >&2; }

# HDF5 C library for the hdf5-metno crate (found through pkg-config).
if ! pkg-config --exists hdf5 2>/dev/null; then
  say "installing libhdf5-dev and pkg-config (Debian packages)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq libhdf5-dev pkg-config >/dev/null
fi

# Python side: ONNX Runtime (its shared library serves the Rust `ort` backend), h5py for the
# reader example, Pillow for examples/imagenet_tree.py. A failure here leaves the tract backend
# working; ORT tests then say SKIP.
if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import onnxruntime, h5py, numpy, PIL" 2>/dev/null; then
  say "creating .venv with onnxruntime, h5py, numpy, pillow (PyPI)"
  python3 -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r scripts/requirements.txt \
    || say "pip install failed: continuing without ONNX Runtime"
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
