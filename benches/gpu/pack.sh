#!/usr/bin/env bash
# Build the package that benches/gpu/run.sh unpacks on a GPU machine, where nothing can be
# fetched and there is no cargo: the release binary with tract's CUDA runtime (feature
# cuda-tract) and HDF5 built in (hdf5-metno's static + zlib), stripped and xz-compressed, with a
# MANIFEST. The teachers and data the check uses are in the tracked tree, which travels anyway;
# the ResNet-18 of the throughput table is exported there. Refuses a package that would take the
# tracked tree and the package over the 64 MiB a run may carry.
#
#   bash benches/gpu/pack.sh            # writes gpu-pack/ (ignored by git)
#
# Needs CMake >= 3.26 on PATH for the static HDF5 (PyPI's `cmake` wheel; docs/backends.md).
# CARGO_TARGET_DIR (default target/gpu-pack) keeps this build apart from the default one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
PACK=gpu-pack
LIMIT=$((64 * 1024 * 1024))
FEATURES=cuda-tract,hdf5/static,hdf5/zlib
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/gpu-pack}

cmake_ok=$(cmake --version 2>/dev/null | awk 'NR == 1 { split($3, v, "."); print (v[1] > 3 || (v[1] == 3 && v[2] >= 26)) }')
[ "$cmake_ok" = 1 ] || { echo "pack.sh: the static HDF5 build needs CMake >= 3.26 on PATH (pip install cmake)" >&2; exit 2; }
git check-ignore -q "$PACK/MANIFEST" || { echo "pack.sh: $PACK/ must be ignored by git (.gitignore)" >&2; exit 2; }

cargo build --release --locked --features "$FEATURES"
bin=$CARGO_TARGET_DIR/release/infoutil
if ldd "$bin" | grep -E 'libhdf5|not found'; then
  echo "pack.sh: $bin links HDF5 dynamically or misses a library (above)" >&2
  exit 1
fi
rm -rf "$PACK.tmp" && mkdir -p "$PACK.tmp"
strip -o "$PACK.tmp/infoutil" "$bin"
sha=$(sha256sum "$PACK.tmp/infoutil" | cut -d' ' -f1)
raw=$(stat -c %s "$PACK.tmp/infoutil")
xz -9e -T1 -c "$PACK.tmp/infoutil" >"$PACK.tmp/infoutil.xz"
rm "$PACK.tmp/infoutil"
dirty=$(git status --porcelain --untracked-files=no | grep -q . && echo " (with uncommitted changes)" || true)
{
  echo "infoutil $(git rev-parse --short=12 HEAD)$dirty, built $(date -u '+%Y-%m-%d %H:%M UTC') on $(uname -m)"
  echo "features $FEATURES"
  echo "needs at run time: $(ldd "$bin" | awk '/=>/ { print $1 }' | sort | paste -sd' ' -) (+ the CUDA driver and libraries, loaded on use)"
  echo "binary $raw bytes stripped, $(stat -c %s "$PACK.tmp/infoutil.xz") bytes xz"
  echo "sha256 $sha"
} >"$PACK.tmp/MANIFEST"
rm -rf "$PACK" && mv "$PACK.tmp" "$PACK"

# What a run carries: the tracked tree, untracked files git does not ignore, and the package.
tree=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 -r stat -c %s -- 2>/dev/null | awk '{ s += $1 } END { print s + 0 }')
pack=$(du -cb "$PACK"/* | tail -1 | cut -f1)
total=$((tree + pack))
awk -v t="$tree" -v p="$pack" 'BEGIN { printf "tracked tree %d bytes + package %d bytes = %d bytes (%.1f of 64 MiB)\n", t, p, t + p, (t + p) / 1048576 }'
cat "$PACK/MANIFEST"
if [ "$total" -gt "$LIMIT" ]; then
  echo "pack.sh: over the 64 MiB a run may carry" >&2
  exit 1
fi
