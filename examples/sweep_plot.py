"""Issue 15's sensitivity pictures from scripts/sweep_fmnist.sh's results.

    python examples/sweep_plot.py out/sweep [--out docs/img]

Reads every student result NAME-ipcN-sS.json under out/sweep/ipcN/ (NAME is `alphaA` or
`cropsC`), and for each sweep (α, crops per image) draws validation top-1 against the value, one
line per IPC, mean ± sample std over seeds, to OUT/sweep-alpha.png and OUT/sweep-crops.png. Prints
a markdown table of the same numbers (with n) and the best point of each sweep and IPC. Needs
matplotlib (examples/requirements-student.txt).
"""
import argparse
import json
import re
import statistics
from collections import defaultdict
from pathlib import Path

NAME = re.compile(r"^(alpha|crops)([0-9.]+)-ipc(\d+)-s(\d+)\.json$")
# InfoUtil's defaults: the α sweep's default point is also the crops sweep's (5 crops), since the
# script changes one choice at a time; it is drawn in both.
DEFAULT = {"alpha": 2.0, "crops": 5.0}
AXIS = {"alpha": "noise scale α (σ = α·std of the pooled map)",
        "crops": "crops per image (the last one noise-free; * the default)"}


def load(folder):
    """{(sweep, ipc): {value: [best top-1 per seed]}}.

    Points are keyed by seed, so one seed is counted once at a value: the α sweep's default run
    stands in for the crops sweep's default point only where that seed has no explicit run of it.
    """
    seeds = defaultdict(lambda: defaultdict(dict))
    shared = []
    for path in sorted(Path(folder).glob("ipc*/*.json")):
        m = NAME.match(path.name)
        if not m:
            continue
        top1 = json.loads(path.read_text()).get("best_top1")
        if top1 is None:
            continue
        sweep, value, ipc, seed = m[1], float(m[2]), int(m[3]), int(m[4])
        seeds[(sweep, ipc)][value][seed] = top1
        if sweep == "alpha" and value == DEFAULT["alpha"]:
            shared.append((ipc, seed, top1))
    for ipc, seed, top1 in shared:
        seeds[("crops", ipc)][DEFAULT["crops"]].setdefault(seed, top1)
    cells = defaultdict(lambda: defaultdict(list))
    for key, points in seeds.items():
        for value, by_seed in points.items():
            cells[key][value] = [by_seed[s] for s in sorted(by_seed)]
    return cells


def mean_std(xs):
    return statistics.mean(xs), (statistics.stdev(xs) if len(xs) > 1 else 0.0)


def table(cells):
    lines = ["| sweep | IPC | value | validation top-1 (%) | n |", "|---|---|---|---|---|"]
    best = []
    for (sweep, ipc) in sorted(cells):
        points = cells[(sweep, ipc)]
        for v in sorted(points):
            m, s = mean_std(points[v])
            mark = " (default)" if v == DEFAULT[sweep] else ""
            lines.append(f"| {sweep} | {ipc} | {v:g}{mark} | {m:.2f} ± {s:.2f} | {len(points[v])} |")
        v = max(points, key=lambda v: statistics.mean(points[v]))
        best.append(f"best {sweep} at IPC {ipc}: {v:g} ({statistics.mean(points[v]):.2f} %)")
    return "\n".join(lines) + "\n\n" + "\n".join(best)


def draw(cells, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for sweep in ("alpha", "crops"):
        ipcs = sorted(ipc for (s, ipc) in cells if s == sweep)
        if not ipcs:
            continue
        fig, ax = plt.subplots(figsize=(5.5, 3.6), dpi=120)
        for ipc in ipcs:
            points = cells[(sweep, ipc)]
            xs = sorted(points)
            ms = [mean_std(points[x]) for x in xs]
            ns = sorted({len(points[x]) for x in xs})
            n = f"{ns[0]}" if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"
            ax.errorbar(xs, [m for m, _ in ms], yerr=[s for _, s in ms], marker="o", capsize=3,
                        label=f"IPC {ipc} (n = {n} seed{'s' if ns[-1] > 1 else ''})")
        if sweep == "crops":
            ax.set_xscale("log", base=2)
            ticks = sorted({x for ipc in ipcs for x in cells[(sweep, ipc)]})
            ax.set_xticks(ticks, [f"{x:g}" + ("*" if x == DEFAULT[sweep] else "") for x in ticks])
        ax.set_xlabel(AXIS[sweep])
        ax.set_ylabel("validation top-1 (%), ConvNet-3")
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = out / f"sweep-{sweep}.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    return written


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", help="scripts/sweep_fmnist.sh's output folder (out/sweep)")
    ap.add_argument("--out", default="docs/img", help="folder for the pictures (default docs/img)")
    args = ap.parse_args()
    cells = load(args.folder)
    if not cells:
        raise SystemExit(f"{args.folder}: no NAME-ipcN-sS.json student results (alpha*/crops*)")
    print(table(cells))
    for path in draw(cells, Path(args.out)):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
