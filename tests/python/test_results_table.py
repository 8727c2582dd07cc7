"""examples/results_table.py on hand-made result JSONs (standard library only).

    python3 -m unittest discover -s tests/python

The expected cells are computed here with `statistics`, not by the module under test.
"""
import contextlib
import importlib.util
import io
import json
import statistics
import tempfile
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("results_table", ROOT / "examples" / "results_table.py")
results_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(results_table)

TEST_SET = "/data/t10k-images-idx3-ubyte.gz"


def result(method, ipc, seed, top1, student="convnet3", epochs=300, variant=None, path=None):
    """The fields of a train_student.py result JSON that the table reads."""
    distilled = None if ipc is None else {
        "path": path or f"out/{variant or method}-ipc{ipc}-s{seed}.h5",
        "command": f"infoutil distill --method {method} --ipc {ipc} --seed {seed}"}
    return {
        "kind": results_table.RESULT_KIND, "schema": 1, "method": method, "variant": variant or method,
        "ipc": ipc, "seed": seed, "student": student, "epochs": epochs, "best_top1": top1,
        "test": {"images": TEST_SET, "n_images": 10000},
        "argv": ["scripts/train_student.py", "--seed", str(seed)],
        "distilled": distilled,
        "full_train": {"images": "/data/train-images-idx3-ubyte.gz"} if ipc is None else None,
        "train_seconds": 20.0 + seed, "seconds_per_epoch": 0.07, "eval_seconds": 200.0,
        "relabel": {"backend": "onnxruntime (test)"},
    }


def table_of(results, extra_files=()):
    """Writes the JSONs into a temporary folder and returns results_table's Markdown."""
    with tempfile.TemporaryDirectory() as d:
        for i, r in enumerate(results):
            sub = Path(d) / r["student"]
            sub.mkdir(exist_ok=True)
            (sub / f"r{i}.json").write_text(json.dumps(r))
        for name, text in extra_files:
            (Path(d) / name).write_text(text)
        out = Path(d) / "table.md"
        with contextlib.redirect_stdout(io.StringIO()):
            code = results_table.main([d, "--out", str(out)])
        assert code == 0, code
        return out.read_text()


def section(md, title_start):
    """The lines of the table section whose heading starts with title_start."""
    parts = md.split("\n## ")
    hits = [p for p in parts if p.startswith(title_start)]
    assert len(hits) == 1, f"{len(hits)} sections start with {title_start!r}"
    return hits[0].splitlines()


def row(lines, label):
    hits = [l for l in lines if l.startswith(f"| {label} |")]
    assert hits, f"no row {label!r} in:\n" + "\n".join(lines)
    return [c.strip() for c in hits[0].strip("|").split("|")]


class ResultsTable(unittest.TestCase):
    def test_mean_and_sample_std_over_seeds(self):
        tops = [60.0, 62.0, 67.0]
        md = table_of([result("rded", 1, s, t) for s, t in enumerate(tops)] + [result("random", 1, 0, 55.5)])
        lines = section(md, "Student convnet3, 300 epochs")
        want = f"{statistics.mean(tops):.2f} ± {statistics.stdev(tops):.2f} (n=3)"
        self.assertEqual(row(lines, "rded")[1], want)
        self.assertEqual(row(lines, "random")[1], "55.50 (n=1)")
        self.assertEqual(row(lines, "rded")[2], "—")  # IPC 10 always has a column; no runs there

    def test_rows_follow_the_documented_order_and_name_the_method(self):
        md = table_of([result("infoutil", 1, 0, 30.0, variant="infoutil-loss"), result("random", 1, 0, 60.0),
                       result("infoutil", 1, 0, 33.0), result("rded", 1, 0, 65.0)])
        labels = [l.split("|")[1].strip() for l in section(md, "Student convnet3")
                  if l.startswith("| ") and "[convnet3-" in l]
        self.assertEqual(labels, ["random", "rded", "infoutil", "infoutil-loss (infoutil)"])

    def test_students_and_epoch_counts_are_never_averaged_together(self):
        md = table_of([result("rded", 1, 0, 60.0), result("rded", 1, 0, 40.0, student="resnet18"),
                       result("rded", 1, 1, 90.0, epochs=30, path="out/rded-e30.h5")])
        self.assertEqual(row(section(md, "Student convnet3, 300 epochs"), "rded")[1], "60.00 (n=1)")
        self.assertEqual(row(section(md, "Student convnet3, 30 epochs"), "rded")[1], "90.00 (n=1)")
        self.assertEqual(row(section(md, "Student resnet18, 300 epochs"), "rded")[1], "40.00 (n=1)")

    def test_whole_training_set_gets_its_own_row_and_column(self):
        md = table_of([result("whole-training-set", None, 0, 92.0), result("rded", 1, 0, 60.0)])
        lines = section(md, "Student convnet3")
        header = [c.strip() for c in next(l for l in lines if l.startswith("| method")).strip("|").split("|")]
        self.assertEqual(header[-2], "whole training set")
        whole = row(lines, "whole-training-set")
        self.assertEqual(whole[header.index("whole training set")], "92.00 (n=1)")
        self.assertEqual(whole[header.index("IPC 1")], "—")

    def test_every_run_names_its_commands(self):
        md = table_of([result("rded", 10, s, 80.0 + s) for s in range(2)])
        for s in range(2):
            self.assertIn(f"distil: `infoutil distill --method rded --ipc 10 --seed {s}`", md)
            self.assertIn(f"train (seed {s}, top-1 {80.0 + s:.2f}): `python scripts/train_student.py --seed {s}`", md)

    def test_a_repeated_run_of_one_file_and_seed_is_flagged(self):
        md = table_of([result("rded", 1, 0, 60.0), result("rded", 1, 0, 61.0)])
        self.assertIn("2 runs of the same file and seed 0 are each counted in n", md)

    def test_other_json_is_ignored_and_counted(self):
        md = table_of([result("rded", 1, 0, 60.0)], extra_files=[("config.json", '{"kind": "other"}'),
                                                                  ("broken.json", "{")])
        self.assertIn("2 other JSON file(s) under the folder are not student results", md)

    def test_a_rebuilt_command_gives_only_the_options_its_method_reads(self):
        # infoutil distill refuses an option the method does not read (DistillConfig's check).
        distill = {"ipc": 1, "factor": 1, "candidates": 300, "seed": 0, "score": "grad-norm",
                   "attribution": "gradcam", "only_recognised": True,
                   "shapley": {"grid": 4, "budget": 128, "estimator": "LeverageShap",
                               "baseline": "zero", "value": "logit"},
                   "crops": {"alpha": 2.0, "span": 2, "per_image": 5}}
        commands = {}
        for method in ("infoutil", "rded", "random"):
            r = {"distilled": {"config": {"distill": dict(distill, method=method)}}}
            commands[method] = results_table.distill_command(r)[0].split()
        self.assertFalse({"--candidates", "--budget", "--grid", "--crops-per-image"} & set(commands["random"]))
        self.assertTrue({"--candidates", "--crops-per-image"} <= set(commands["rded"]))
        self.assertFalse({"--budget", "--alpha", "--score", "--attribution"} & set(commands["rded"]))
        self.assertTrue({"--attribution", "--grid", "--only-recognised"} <= set(commands["infoutil"]))
        self.assertFalse({"--budget", "--estimator", "--baseline", "--value"} & set(commands["infoutil"]))

    def test_a_folder_without_results_is_an_error(self):
        with tempfile.TemporaryDirectory() as d, contextlib.redirect_stderr(io.StringIO()) as err:
            self.assertEqual(results_table.main([d]), 2)
        self.assertIn("no train_student.py result JSONs", err.getvalue())


if __name__ == "__main__":
    unittest.main()
