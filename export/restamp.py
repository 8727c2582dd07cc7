#!/usr/bin/env python
"""Bind the graphs of a teacher package exported before packages were bound by hash:

    python export/restamp.py models/fmnist-convnet3.onnx          # + .grad.onnx, .cam.onnx
    python export/restamp.py models/fmnist-convnet3.onnx --check  # only say whether it is bound

Each graph of the package (NAME.onnx and, where they exist, NAME.grad.onnx and NAME.cam.onnx) gets
infoutil.graph_weights_sha256, the hash of its own floating-point weights, and the forward graph
gets infoutil.sibling_weights_sha256, the list of its siblings' hashes by role; infoutil refuses a
sibling its forward graph does not list (src/teacher/binding.rs, docs/reliability.md). Only
metadata is written (each file in place, atomically, siblings first); the weights and the graphs
are untouched, so the logits and gradient norms stay what they were, but the files' bytes change:
results made with the old files (resume, --maps-from, merge) no longer match them. A second run
writes the same bytes.

Re-stamping says that these files come from one export: this script can check that each sibling
declares the forward graph's weights_sha256, input and classes, and that the forward graph's
weights hash to what it declares, but not that a sibling was exported from the same checkpoint
(a sibling's weights are not the forward's: batch-norm is folded in the forward graph only). Where
that is in doubt, export the teacher again instead (export/export_teacher.py, export_module.py).
Exit 1 on a refusal, with nothing written.
"""
import argparse
import json
import os
import sys

import onnx

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from infoutil_export import metadata  # noqa: E402

# the keys a sibling must share with its forward graph (besides weights_sha256), with their
# defaults where the contract has one
SHARED = {"input_shape": None, "normalization": None, "class_names": None, "layout": "NCHW"}


class Refused(Exception):
    pass


def package(forward):
    """[(role, path)] of the package's graphs that exist, the forward graph first."""
    if not forward.endswith(".onnx") or forward.endswith((".grad.onnx", ".cam.onnx")):
        raise Refused(f"{forward}: give the forward graph, NAME.onnx")
    if not os.path.isfile(forward):
        raise Refused(f"{forward}: no such file")
    stem = forward[:-len(".onnx")]
    found = [("forward", forward)]
    for role in ("grad", "cam"):
        if os.path.isfile(f"{stem}.{role}.onnx"):
            found.append((role, f"{stem}.{role}.onnx"))
    return found


def check_forward(path, meta, proto):
    p = metadata.PREFIX
    if meta.get(p + "role") != "forward":
        raise Refused(f"{path}: infoutil.role is {meta.get(p + 'role')!r}, not 'forward'")
    if meta.get(p + "precision", "fp32") == "fp16":
        key, got = "converted_weights_sha256", metadata.weights_sha256(proto, onnx.TensorProto.FLOAT16)
    else:
        key, got = "weights_sha256", metadata.weights_sha256(proto)
    if meta.get(p + key) != got:
        raise Refused(f"{path}: its weights hash to {key} {got}, its metadata declares "
                      f"{meta.get(p + key)}: the file was changed after export; export it again")


def check_sibling(role, path, meta, fmeta, forward):
    p = metadata.PREFIX
    if meta.get(p + "role") != role:
        raise Refused(f"{path}: infoutil.role is {meta.get(p + 'role')!r}, expected {role!r}")
    for key, default in {"weights_sha256": None, **SHARED}.items():
        mine, theirs = meta.get(p + key, default), fmeta.get(p + key, default)
        if mine != theirs:
            raise Refused(f"{path}: infoutil.{key} is {mine!r} here but {theirs!r} in "
                          f"{forward}: not a graph of this package")


def restamp(forward, check_only=False, log=print):
    """Bind the package of `forward`; returns {role: own hash}. With check_only, write nothing
    and raise Refused unless the package is bound as this script would bind it."""
    graphs = package(forward)
    full = {role: onnx.load(path) for role, path in graphs}   # external data read, for hashing
    metas = {role: metadata.read(full[role]) for role, _ in graphs}
    check_forward(forward, metas["forward"], full["forward"])
    for role, path in graphs[1:]:
        check_sibling(role, path, metas[role], metas["forward"], forward)
    own = {role: metadata.graph_weights_sha256(full[role]) for role, _ in graphs}
    listed = json.dumps(dict(sorted((r, h) for r, h in own.items() if r != "forward")))
    p = metadata.PREFIX
    want = {role: {p + "graph_weights_sha256": own[role]} for role in own}
    want["forward"][p + "sibling_weights_sha256"] = listed
    stale = [path for role, path in graphs
             if any(metas[role].get(k) != v for k, v in want[role].items())]
    if check_only:
        if stale:
            raise Refused(f"not bound: {', '.join(stale)} (run without --check to re-stamp)")
        return own
    for role, path in graphs[1:] + graphs[:1]:   # the forward graph last
        if path not in stale:
            continue
        proto = onnx.load(path, load_external_data=False)   # keeps external data where it is
        for key, value in want[role].items():
            metadata._set(proto, key[len(p):], value)
        metadata.write_atomic(proto, path)
        log(f"{path}: {role} graph, graph_weights_sha256 {own[role][:16]}…")
    if not stale:
        log(f"{forward}: already bound")
    return own


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("forward", metavar="NAME.onnx", help="the package's forward graph")
    ap.add_argument("--check", action="store_true", help="write nothing; exit 1 unless bound")
    args = ap.parse_args(argv)
    try:
        own = restamp(args.forward, args.check)
    except Refused as e:
        print(f"restamp: REFUSED: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"forward": args.forward, "graph_weights_sha256": own}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
