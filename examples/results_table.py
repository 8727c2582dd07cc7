#!/usr/bin/env python3
"""Markdown results table from a folder of scripts/train_student.py result JSONs.

    python examples/results_table.py RESULTS_DIR [--out results.md]

Reads every *.json under RESULTS_DIR (recursively) whose "kind" is "infoutil-student-result"
and ignores the rest. One table per (student, test set, epochs): results on different test sets or
with different epoch counts are never averaged together. In a table:

  rows     = the distilled file's method plus the run's --variant label (e.g. infoutil,
             infoutil-no-noise, infoutil-loss, infoutil-last-layer, rded, random; the
             whole-training-set runs form their own row);
  columns  = IPC 1 / 10 / 50 (any other IPC found gets its own column; "all" for the
             whole training set);
  cell     = mean ± sample std of the best top-1 (%) over seeds, with n.

A second table gives the cost of each cell: distillation wall time and peak memory (when the
result JSON carries them: train_student.py reads the `infoutil distill` log beside the file, see
its --distill-log) and the student's training time (mean seconds, seconds per epoch). Below the
tables every row names its commands: the distill command (as given with --distill-command, else
rebuilt from the file's config, marked "rebuilt") and each train_student.py command line.
Standard library only.
"""
import argparse
import json
import math
import shlex
import sys
from collections import defaultdict
from pathlib import Path

RESULT_KIND = "infoutil-student-result"
ROW_ORDER = ["whole-training-set", "random", "rded", "infoutil", "infoutil-no-noise", "infoutil-loss",
             "infoutil-last-layer", "infoutil-tuned", "infoutil-gradcam"]
STD_IPCS = [1, 10, 50]
ESTIMATOR_NAMES = {"Exact": "exact", "LeverageShap": "leverage", "Permutation": "permutation"}


def load_results(folder):
    found, skipped = [], []
    for p in sorted(Path(folder).rglob("*.json")):
        try:
            d = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError, UnicodeDecodeError):
            skipped.append(p)
            continue
        if isinstance(d, dict) and d.get("kind") == RESULT_KIND:
            d["_path"] = str(p)
            found.append(d)
        else:
            skipped.append(p)
    return found, skipped


def mean_std(xs):
    n = len(xs)
    m = sum(xs) / n
    s = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)) if n > 1 else None
    return m, s


def row_key(r):
    method = r.get("method") or "?"
    variant = r.get("variant") or method
    return method, variant


def row_label(key):
    method, variant = key
    return variant if variant == method else f"{variant} ({method})"


def row_sort(key):
    method, variant = key
    rank = ROW_ORDER.index(variant) if variant in ROW_ORDER else len(ROW_ORDER)
    return rank, variant, method


def col_key(r):
    return "all" if r.get("ipc") is None else int(r["ipc"])


def col_sort(c):
    return (1, 0) if c == "all" else (0, c)


def col_label(c):
    return "whole training set" if c == "all" else f"IPC {c}"


def estimator_flag(e):
    if isinstance(e, str):
        return ESTIMATOR_NAMES.get(e, e.lower())
    if isinstance(e, dict) and "KernelShap" in e:
        return "kernel-enum" if (e["KernelShap"] or {}).get("enumerate_sizes") else "kernel"
    return None


def distill_command(r):
    """The distill command: as recorded, else rebuilt from the file's config (best effort)."""
    d = r.get("distilled") or {}
    if d.get("command"):
        return d["command"], False
    cfg = d.get("config") or {}
    o = cfg.get("distill") or {}
    parts = ["infoutil", "distill"]

    def add(flag, value):
        if value is not None:
            parts.extend([flag, str(value)])

    # Only the options the method reads: infoutil refuses any other given option (an RDED or
    # random run given --budget, a Grad-CAM run given --estimator, …).
    method = o.get("method")
    sh, cr = o.get("shapley") or {}, o.get("crops") or {}
    add("--method", method)
    add("--ipc", o.get("ipc"))
    add("--factor", o.get("factor"))
    if method in ("infoutil", "rded"):
        add("--candidates", o.get("candidates"))
        add("--crops-per-image", cr.get("per_image"))
    if method == "infoutil":
        attribution = o.get("attribution") or "shapley"
        add("--attribution", attribution)
        add("--score", o.get("score"))
        add("--grid", sh.get("grid"))
        if attribution == "shapley":
            add("--budget", sh.get("budget"))
            add("--estimator", estimator_flag(sh.get("estimator")))
            add("--baseline", sh.get("baseline"))
            add("--value", sh.get("value"))
        add("--alpha", cr.get("alpha"))
        add("--crop-span", cr.get("span"))
        if o.get("only_recognised"):
            parts.append("--only-recognised")
    add("--seed", o.get("seed"))
    add("--teacher", cfg.get("teacher"))
    add("--label-teacher", cfg.get("label_teacher"))
    add("--data", cfg.get("data"))
    add("--out", d.get("path"))
    return shlex.join(parts), True


def train_command(r):
    return shlex.join(["python"] + list(r.get("argv") or []))


def fmt_cell(rs):
    xs = [r["best_top1"] for r in rs if r.get("best_top1") is not None]
    if not xs:
        return "—"
    m, s = mean_std(xs)
    return f"{m:.2f} ± {s:.2f} (n={len(xs)})" if s is not None else f"{m:.2f} (n=1)"


def secs(v):
    return f"{v:.1f} s" if v < 10 else f"{v:.0f} s"


def fmt_cost(rs):
    parts = []
    ds = [r["distill_stats"] for r in rs if r.get("distill_stats")]
    walls = [d["wall_s"] for d in ds if d.get("wall_s") is not None]
    mems = [d["peak_memory_kib"] for d in ds if d.get("peak_memory_kib") is not None]
    if walls:
        parts.append(f"distil {secs(sum(walls) / len(walls))}")
    if mems:
        parts.append(f"{max(mems) / 1024:.0f} MiB peak")
    train = [r["train_seconds"] for r in rs if r.get("train_seconds") is not None]
    spe = [r["seconds_per_epoch"] for r in rs if r.get("seconds_per_epoch") is not None]
    if train:
        s = f"student {secs(sum(train) / len(train))}"
        if spe:
            s += f" ({sum(spe) / len(spe):.2f} s/epoch)"
        parts.append(s)
    evals = [r["eval_seconds"] for r in rs if r.get("eval_seconds") is not None]
    if evals:
        parts.append(f"eval {secs(sum(evals) / len(evals))}")
    return "; ".join(parts) if parts else "—"


def table_key(r):
    test = r.get("test") or {}
    return (r.get("student") or "?", test.get("images") or "?", int(test.get("n_images") or 0),
            int(r.get("epochs") or 0))


def render(results, skipped, folder):
    out = [f"# Student results ({len(results)} runs from {folder})", ""]
    if skipped:
        out += [f"{len(skipped)} other JSON file(s) under the folder are not student results and were ignored.", ""]
    groups = defaultdict(list)
    for r in results:
        groups[table_key(r)].append(r)
    for (student, test_images, n_test, epochs), rs in sorted(groups.items()):
        cells = defaultdict(list)
        for r in rs:
            cells[(row_key(r), col_key(r))].append(r)
        rows = sorted({k for k, _ in cells}, key=row_sort)
        cols = sorted({c for _, c in cells} | set(STD_IPCS), key=col_sort)
        relabel = sorted({(r.get("relabel") or {}).get("backend", "?") for r in rs})
        out += [f"## Student {student}, {epochs} epochs, test set {test_images} ({n_test} images)", "",
                "Best top-1 (%) among the protocol's evaluations, mean ± std over seeds (n runs). "
                f"Teacher relabelling: {'; '.join(relabel)}.", ""]
        out.append("| method / variant | " + " | ".join(col_label(c) for c in cols) + " | commands |")
        out.append("|---" * (len(cols) + 2) + "|")
        for i, row in enumerate(rows, 1):
            out.append(f"| {row_label(row)} | " + " | ".join(fmt_cell(cells.get((row, c), [])) for c in cols)
                       + f" | [{student}-{epochs}-{i}] |")
        out += ["", "Cost per run (mean over the cell's runs): distillation wall time and peak memory "
                "(from the distill log, when recorded), student training time, evaluation time.", ""]
        out.append("| method / variant | " + " | ".join(col_label(c) for c in cols) + " |")
        out.append("|---" * (len(cols) + 1) + "|")
        for row in rows:
            out.append(f"| {row_label(row)} | " + " | ".join(fmt_cost(cells.get((row, c), [])) for c in cols) + " |")
        out.append("")
        for (row, c), crs in sorted(cells.items(), key=lambda kv: (row_sort(kv[0][0]), col_sort(kv[0][1]))):
            runs = defaultdict(list)
            for r in crs:
                runs[((r.get("distilled") or r.get("full_train") or {}).get("path")
                      or (r.get("full_train") or {}).get("images"), r.get("seed"))].append(r["_path"])
            for (path, seed), files in runs.items():
                if len(files) > 1:
                    out.append(f"Note: {row_label(row)}, {col_label(c)}: {len(files)} runs of the same file and "
                               f"seed {seed} are each counted in n ({', '.join(files)}).")
                    out.append("")
        out += ["### Commands", ""]
        for i, row in enumerate(rows, 1):
            out.append(f"**[{student}-{epochs}-{i}]** {row_label(row)}")
            out.append("")
            for c in cols:
                crs = sorted(cells.get((row, c), []), key=lambda r: (r.get("seed", 0), r["_path"]))
                if not crs:
                    continue
                out.append(f"- {col_label(c)}:")
                seen = set()
                for r in crs:
                    dc, rebuilt = distill_command(r) if r.get("distilled") else (None, False)
                    if dc and dc not in seen:
                        seen.add(dc)
                        out.append(f"  - distil{' (rebuilt from the file config)' if rebuilt else ''}: `{dc}`")
                    top = r.get("best_top1")
                    out.append(f"  - train (seed {r.get('seed')}, top-1 "
                               f"{'—' if top is None else f'{top:.2f}'}): `{train_command(r)}`")
            out.append("")
    return "\n".join(out) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("folder", help="folder with result JSONs (searched recursively)")
    ap.add_argument("--out", help="write the Markdown here (default: stdout)")
    args = ap.parse_args(argv)
    if not Path(args.folder).is_dir():
        print(f"error: {args.folder}: not a folder", file=sys.stderr)
        return 2
    results, skipped = load_results(args.folder)
    if not results:
        print(f"error: no train_student.py result JSONs (kind \"{RESULT_KIND}\") under {args.folder}",
              file=sys.stderr)
        return 2
    text = render(results, skipped, args.folder)
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out} ({len(results)} runs)")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
