"""examples/sweep_plot.py's reading and table (standard library only; the drawing needs
matplotlib and is left to the real run)."""
import json
import os
import sys
import tempfile
import unittest
from pathlib import Path

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "examples"))

import sweep_plot  # noqa: E402


class SweepPlot(unittest.TestCase):
    def write(self, folder, name, top1):
        path = Path(folder) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"best_top1": top1}))

    def test_cells_group_seeds_by_sweep_ipc_and_value(self):
        with tempfile.TemporaryDirectory() as d:
            self.write(d, "ipc1/alpha0.5-ipc1-s0.json", 60.0)
            self.write(d, "ipc1/alpha0.5-ipc1-s1.json", 64.0)
            self.write(d, "ipc1/alpha2-ipc1-s0.json", 50.0)
            self.write(d, "ipc10/crops16-ipc10-s2.json", 70.0)
            self.write(d, "ipc1/rded-ipc1-s0.json", 99.0)          # not a sweep point
            self.write(d, "ipc1/alpha5-ipc1-s0.json", None)        # a run without evaluations
            cells = sweep_plot.load(d)
        # the α sweep's default run (α 2) is also the crops sweep's default point (5 crops)
        self.assertEqual(set(cells), {("alpha", 1), ("crops", 1), ("crops", 10)})
        self.assertEqual(cells[("alpha", 1)][0.5], [60.0, 64.0])
        self.assertEqual(dict(cells[("crops", 1)]), {5.0: [50.0]})
        self.assertNotIn(5.0, cells[("crops", 10)])
        self.assertNotIn(5.0, cells[("alpha", 1)])
        text = sweep_plot.table(cells)
        self.assertIn("| alpha | 1 | 0.5 | 62.00 ± 2.83 | 2 |", text)
        self.assertIn("| alpha | 1 | 2 (default) | 50.00 ± 0.00 | 1 |", text)
        self.assertIn("| crops | 1 | 5 (default) | 50.00 ± 0.00 | 1 |", text)
        self.assertIn("best alpha at IPC 1: 0.5 (62.00 %)", text)
        self.assertIn("best crops at IPC 10: 16 (70.00 %)", text)

    def test_an_explicit_default_run_is_not_counted_twice(self):
        with tempfile.TemporaryDirectory() as d:
            self.write(d, "ipc1/alpha2-ipc1-s0.json", 50.0)
            self.write(d, "ipc1/alpha2-ipc1-s1.json", 52.0)
            self.write(d, "ipc1/crops5-ipc1-s1.json", 58.0)        # seed 1 ran 5 crops itself
            cells = sweep_plot.load(d)
        self.assertEqual(cells[("crops", 1)][5.0], [50.0, 58.0])
        self.assertEqual(cells[("alpha", 1)][2.0], [50.0, 52.0])


if __name__ == "__main__":
    unittest.main()
