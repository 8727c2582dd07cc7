#!/usr/bin/env bash
# The wheel as a new user gets it: build it with maturin (reusing the release build's compiled
# dependencies: same profile, same features, so only the infoutil crate is compiled again), check
# its platform tag with auditwheel and its binary with ldd, install it into a fresh venv, and run
# it where no cargo is on PATH, no libhdf5 is visible to the loader and ORT_DYLIB_PATH is unset
# (tests/wheel/check.py). Called by scripts/test after the Rust tests, from the repository root,
# with setup.sh's environment. Prints the wheel's build time and size.
set -euo pipefail
say() { echo "[wheel] $*" >&2; }
out=out/wheel
rm -rf "$out" && mkdir -p "$out/dist"

# The cargo-built binary, kept before maturin links its own (stripped) one at the same path.
cp target/release/infoutil "$out/cargo-infoutil"

start=$(date +%s)
.venv/bin/maturin build --release --quiet --out "$out/dist" 2> "$out/build.log" \
  || { tail -n 20 "$out/build.log" >&2; exit 1; }
wheel=$(ls "$out"/dist/infoutil-*.whl)
say "built $(basename "$wheel") in $(( $(date +%s) - start )) s, $(du -k "$wheel" | cut -f1) KiB"

# The tag must be one auditwheel accepts for this binary (it checks the glibc symbol versions and
# the libraries it links against the manylinux policies).
.venv/bin/auditwheel show "$wheel" > "$out/auditwheel.txt" 2>&1 || { cat "$out/auditwheel.txt" >&2; exit 1; }
tag=$(basename "$wheel" .whl | rev | cut -d- -f1 | rev)
grep -q "consistent with the following platform tag: \"$tag\"" "$out/auditwheel.txt" \
  || grep -q "\"$tag\"" "$out/auditwheel.txt" \
  || { say "auditwheel does not accept the tag $tag:"; cat "$out/auditwheel.txt" >&2; exit 1; }
say "auditwheel: $tag accepted"

python3 -m venv "$out/venv"
"$out/venv/bin/pip" install -q --disable-pip-version-check "$wheel"
exe="$out/venv/bin/infoutil"
if ldd "$exe" | grep -Ei "hdf5|libz\.so"; then say "the installed binary links a shared HDF5 or zlib"; exit 1; fi

# The reference: the cargo-built binary on the same command and the same ONNX Runtime library.
ort=$(ls "$out"/venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* | head -1)
mkdir -p "$out/reference"
(cd "$out/reference" && ORT_DYLIB_PATH="$PWD/../../../$ort" ../cargo-infoutil \
   distill --candidates 10 --budget 64 --ipc 2 --out distilled.h5 > log.txt 2>&1) \
  || { cat "$out/reference/log.txt" >&2; exit 1; }

# A user's shell: only the system's folders and the venv on PATH (no cargo, no .venv), no
# ORT_DYLIB_PATH or LD_LIBRARY_PATH. As root, Debian's libhdf5 files (if any) are also hidden in a
# private mount namespace, so a binary that still needed them would fail to start.
hide=""
libs=$(ls /usr/lib/*/libhdf5*.so* 2>/dev/null || true)
if [ -n "$libs" ] && [ "$(id -u)" = 0 ] && unshare -m true 2>/dev/null; then
  hide="for f in $(echo $libs); do mount --bind /dev/null \$f; done;"
else
  [ -z "$libs" ] || say "libhdf5 is installed and cannot be hidden here (not root): ldd's check stands alone"
fi
empty=$(mktemp -d)
trap 'rm -rf "$empty"' EXIT
user() {   # check.py ARGS in the empty folder, in that user's shell
  env -i HOME="$HOME" PATH="$PWD/$out/venv/bin:/usr/bin:/bin" LANG=C.UTF-8 \
    ${hide:+unshare -m} sh -c "$hide cd $empty && exec $PWD/$out/venv/bin/python $PWD/tests/wheel/check.py $*"
}
user "$PWD/$out/reference/distilled.h5"

# The same wheel with onnxruntime-gpu beside onnxruntime, as `pip install "infoutil[gpu]"` has it,
# but without the nvidia-* wheels (2.5 GB): on this machine without a GPU, `--device cuda` must get
# to the CUDA provider's start and fail there clearly (check.py --gpu-library). 256 MB from PyPI
# (INFOUTIL_SKIP_GPU_WHEEL=1 skips it; without network it is a visible SKIP).
if [ "${INFOUTIL_SKIP_GPU_WHEEL:-0}" = 1 ]; then
  echo "SKIP: tests/wheel with onnxruntime-gpu (INFOUTIL_SKIP_GPU_WHEEL=1)"
else
  start=$(date +%s)
  if "$out/venv/bin/pip" install -q --disable-pip-version-check --no-deps "onnxruntime-gpu>=1.31" \
       > "$out/gpu-install.log" 2>&1; then
    say "onnxruntime-gpu installed in $(( $(date +%s) - start )) s"
    user --gpu-library
    say "the onnxruntime-gpu step took $(( $(date +%s) - start )) s"
  else
    echo "SKIP: tests/wheel with onnxruntime-gpu (pip could not install it: $(tail -n 1 "$out/gpu-install.log"))"
  fi
fi
