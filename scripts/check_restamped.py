#!/usr/bin/env python3
"""The student results kept in docs/data/ and the teacher files they name: the shipped teacher
packages were re-stamped (export/restamp.py, the package binding of issue 32), which rewrote each
file's metadata and so its SHA-256, but nothing else. The results keep the hashes their runs
recorded; each also holds a `restamped` entry with the hash of each file now. This script proves
the entry honest: for every teacher file a result names, the file as it was when recorded (found
in git history by that hash) and the file now are the same bytes once the ONNX model's
`metadata_props` (field 14 of ModelProto) are set aside: same graph, weights, opsets, producer.

    python3 scripts/check_restamped.py            # check (exit 1 on any mismatch)
    python3 scripts/check_restamped.py --write    # add or renew the `restamped` entries

Standard library only (the protobuf's top level is split by hand), and git for the history.
"""
import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTE = ("The shipped teacher files were re-stamped after this run (export/restamp.py: the hash "
        "binding of a teacher package, issue 32), which changed their metadata only. The hashes "
        "recorded above are the files' as the run used them; `files` gives each file's hash now. "
        "scripts/check_restamped.py shows that the two versions of each file are the same bytes "
        "apart from the ONNX metadata_props: same graph and weights.")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def varint(buf, i):
    value, shift = 0, 0
    while True:
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, i


def without_metadata(model):
    """The ModelProto's bytes with its top-level field 14 (metadata_props) records left out."""
    out, i = bytearray(), 0
    while i < len(model):
        start = i
        key, i = varint(model, i)
        field, wire = key >> 3, key & 7
        if wire == 0:
            _, i = varint(model, i)
        elif wire == 1:
            i += 8
        elif wire == 2:
            n, i = varint(model, i)
            i += n
        elif wire == 5:
            i += 4
        else:
            raise ValueError(f"wire type {wire} at byte {start}: not an ONNX model")
        if i > len(model):
            raise ValueError("the model breaks off")
        if field != 14:
            out += model[start:i]
    return bytes(out)


def git(*args):
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, check=True).stdout


def version_with_hash(path, wanted):
    """The bytes of `path` (repository-relative) at the commit where they hash to `wanted`."""
    for commit in git("log", "--format=%H", "--", path).decode().split():
        data = git("show", f"{commit}:{path}")
        if sha256(data) == wanted:
            return data
    return None


def recorded_files(result):
    """{repository path of a teacher file: the SHA-256 the result recorded for it}."""
    d = result.get("distilled") or {}
    config, attrs = d.get("config") or {}, d.get("attrs") or {}
    relabel = result.get("relabel") or {}
    pairs = [(config.get("teacher"), attrs.get("teacher_sha256")),
             (config.get("label_teacher"), config.get("label_teacher_sha256")),
             (relabel.get("teacher"), relabel.get("sha256"))]
    files = {}
    for path, digest in pairs:
        if path and digest:
            # Paths were recorded from the checkout the run used: models/NAME.onnx in any case.
            rel = "models/" + Path(path).name
            if files.setdefault(rel, digest) != digest:
                raise ValueError(f"two hashes recorded for {rel}")
    return files


def results():
    return sorted((ROOT / "docs" / "data").rglob("*.json"))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--write", action="store_true", help="add or renew the `restamped` entries")
    args = ap.parse_args(argv)
    now, proved, problems, written = {}, {}, [], 0
    for path in results():
        result = json.loads(path.read_text())
        files = recorded_files(result)
        entry = {}
        for rel, recorded in files.items():
            current = (ROOT / rel).read_bytes()
            now.setdefault(rel, sha256(current))
            if recorded == now[rel]:
                continue
            if (rel, recorded) not in proved:
                old = version_with_hash(rel, recorded)
                proved[(rel, recorded)] = old is not None and without_metadata(old) == without_metadata(current)
                print(f"{rel}: recorded {recorded[:12]}…, now {now[rel][:12]}…: "
                      + ("same bytes but metadata" if proved[(rel, recorded)]
                         else "NOT the same model" if old else "recorded version not in git history"))
            if not proved[(rel, recorded)]:
                problems.append(f"{path.relative_to(ROOT)}: {rel} {recorded[:12]}… is not the file now but its metadata")
            entry[rel] = {"recorded": recorded, "now": now[rel]}
        want = {"note": NOTE, "files": entry} if entry else None
        if args.write and want and not problems:
            if result.get("restamped") != want:
                result["restamped"] = want
                path.write_text(json.dumps(result, indent=1) + "\n")
                written += 1
        elif result.get("restamped") != want:
            problems.append(f"{path.relative_to(ROOT)}: its `restamped` entry is not {json.dumps(want)[:200]}…")
    for p in problems[:20]:
        print("error:", p, file=sys.stderr)
    n = len(results())
    print(f"{n} results, {len(proved)} recorded versions of teacher files that differ from the files now, "
          f"{sum(proved.values())} of them proved metadata-only; {written} files written; {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
