"""python/infoutil without the binary: infoutil.load on files written here with h5py (the schema
version check, the layout check, the tile grids) and the keyword-argument -> command-line
mapping on a given option list (the list itself comes from the binary: tests/wheel)."""
import os
import sys
import tempfile
import unittest
from unittest import mock

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))

try:
    import h5py
    import numpy as np
    os.environ.setdefault("INFOUTIL_BIN", "/nonexistent/infoutil")   # no binary at import
    import infoutil
    from infoutil import _commands
except ImportError:  # the standard-library-only run reports these tests as skipped
    h5py = None


def distilled(path, version="1", factor=2, n=3, k=4, soft_layout="N,T,K"):
    t = factor * factor
    with h5py.File(path, "w") as f:
        f.attrs.update(schema_version=version, kind="distilled", created_by="infoutil 0.1.0",
                       config='{"backend": "tract (cpu)"}', class_names='["a","b","c","d"]',
                       ipc="1", factor=str(factor), seed="0", method="infoutil")
        rng = np.random.default_rng(0)
        for name, data, layout in [
                ("images", rng.normal(size=(n, 1, 8, 8)).astype("f4"), "NCHW"),
                ("images_uint8", rng.integers(0, 255, (n, 1, 8, 8), dtype="u1"), "NCHW"),
                ("labels", np.arange(n, dtype="i8"), "N"),
                ("soft_labels", rng.dirichlet(np.ones(k), (n, t)).astype("f4"), soft_layout),
                ("provenance/source_index", np.arange(n * t, dtype="i8").reshape(n, t), "N,T"),
                ("provenance/crop_box", np.ones((n, t, 4), "i4"), "N,T,4")]:
            f[name] = data
            f[name].attrs["layout"] = layout


@unittest.skipIf(h5py is None, "h5py/numpy not installed")
class Load(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "d.h5")

    def tearDown(self):
        self.dir.cleanup()

    def test_reads_arrays_attributes_and_tile_grids(self):
        distilled(self.path)
        d = infoutil.load(self.path)
        self.assertEqual((d.kind, d.factor, d.ipc, d.class_names), ("distilled", 2, 1, list("abcd")))
        self.assertEqual(d.config, {"backend": "tract (cpu)"})
        self.assertEqual(d.layouts["provenance/crop_box"], "N,T,4")
        with h5py.File(self.path, "r") as f:
            soft, src = f["soft_labels"][()], f["provenance/source_index"][()]
        # tile (r, c) is tile r * factor + c of the stored row-major list
        for r in range(2):
            for c in range(2):
                np.testing.assert_array_equal(d.soft_labels_grid[:, r, c], soft[:, 2 * r + c])
                np.testing.assert_array_equal(d.provenance.source_index_grid[:, r, c], src[:, 2 * r + c])

    def test_refuses_another_schema_version_naming_both(self):
        distilled(self.path, version="2")
        with self.assertRaises(infoutil.Error) as e:
            infoutil.load(self.path)
        self.assertIn("schema version 2", str(e.exception))
        self.assertIn("reads version 1", str(e.exception))
        self.assertIn(self.path, str(e.exception))

    def test_refuses_a_layout_that_does_not_fit_the_shape(self):
        distilled(self.path, soft_layout="N,K")
        with self.assertRaises(infoutil.Error) as e:
            infoutil.load(self.path)
        self.assertIn("/soft_labels", str(e.exception))

    def test_missing_and_non_hdf5_files(self):
        with self.assertRaises(infoutil.Error):
            infoutil.load(self.path)
        with open(self.path, "w") as f:
            f.write("not hdf5")
        with self.assertRaises(infoutil.Error) as e:
            infoutil.load(self.path)
        self.assertIn("not an HDF5 file", str(e.exception))


SPEC = {"distill": {"about": "Distil.", "args": [
    {"name": "ipc", "long": "ipc", "positional": False, "required": False, "kind": "value",
     "default": ["10"], "choices": [], "help": "Images per class."},
    {"name": "only_recognised", "long": "only-recognised", "positional": False, "required": False,
     "kind": "flag", "default": ["false"], "choices": [], "help": None},
    {"name": "out", "long": "out", "positional": False, "required": False, "kind": "value",
     "default": ["distilled.h5"], "choices": [], "help": None}]},
    "merge": {"about": None, "args": [
        {"name": "inputs", "long": None, "positional": True, "required": True, "kind": "list",
         "default": [], "choices": [], "help": None},
        {"name": "out", "long": "out", "positional": False, "required": True, "kind": "value",
         "default": [], "choices": [], "help": None}]}}


@unittest.skipIf(h5py is None, "h5py/numpy not installed")
class Arguments(unittest.TestCase):
    def setUp(self):
        patcher = mock.patch.object(_commands, "options", return_value=SPEC)
        patcher.start()
        self.addCleanup(patcher.stop)

    def test_keywords_become_options(self):
        argv = _commands.arguments("distill", (), {"ipc": 3, "only_recognised": True, "out": "x.h5"})
        self.assertEqual(argv, ["distill", "--ipc", "3", "--only-recognised", "--out", "x.h5"])
        argv = _commands.arguments("distill", (), {"only_recognised": False, "ipc": None})
        self.assertEqual(argv, ["distill"])

    def test_positionals_and_paths(self):
        from pathlib import Path
        argv = _commands.arguments("merge", (Path("a.h5"), "b.h5"), {"out": Path("all.h5")})
        self.assertEqual(argv, ["merge", "--out", "all.h5", "a.h5", "b.h5"])

    def test_an_unknown_keyword_lists_the_options(self):
        with self.assertRaises(TypeError) as e:
            _commands.arguments("distill", (), {"ipcs": 3})
        self.assertIn("'ipcs'", str(e.exception))
        self.assertIn("only_recognised", str(e.exception))

    def test_the_function_runs_the_command_and_returns_out(self):
        with mock.patch.object(_commands, "run") as run:
            out = _commands._command("distill")(ipc=1)
        run.assert_called_once_with(["distill", "--ipc", "1"])
        self.assertEqual(str(out), "distilled.h5")

    def test_a_failing_command_raises_error_with_its_message(self):
        from infoutil import _cli
        script = os.path.join(tempfile.mkdtemp(), "fake")
        with open(script, "w") as f:
            f.write('#!/bin/sh\necho "error: bad --ipc 0" >&2\nprintf "bad --ipc 0" > "$INFOUTIL_ERROR_FILE"\nexit 1\n')
        os.chmod(script, 0o755)
        with mock.patch.dict(os.environ, {"INFOUTIL_BIN": script}):
            with self.assertRaises(infoutil.Error) as e:
                _cli.run(["distill", "--ipc", "0"])
        self.assertEqual(str(e.exception), "bad --ipc 0")
        self.assertEqual(e.exception.returncode, 1)


@unittest.skipIf(h5py is None, "h5py/numpy not installed")
class OnnxRuntimeLibrary(unittest.TestCase):
    """Which libonnxruntime the Python functions hand the binary: with `infoutil[gpu]`,
    onnxruntime 1.32.0 and onnxruntime-gpu 1.31.1 share onnxruntime/capi/, and the GPU build
    (named in its RECORD) is the one with the CUDA provider; else the newest, as numbers."""

    def site(self, tmp, libs, gpu_record=None):
        capi = os.path.join(tmp, "onnxruntime", "capi")
        os.makedirs(capi)
        open(os.path.join(tmp, "onnxruntime", "__init__.py"), "w").close()
        for name in libs:
            open(os.path.join(capi, name), "w").close()
        if gpu_record is not None:
            info = os.path.join(tmp, "onnxruntime_gpu-1.31.1.dist-info")
            os.makedirs(info)
            with open(os.path.join(info, "METADATA"), "w") as f:
                f.write("Metadata-Version: 2.1\nName: onnxruntime-gpu\nVersion: 1.31.1\n")
            with open(os.path.join(info, "RECORD"), "w") as f:
                f.write("".join(f"onnxruntime/capi/{n},sha256=x,1\n" for n in gpu_record))
        return capi

    def found(self, tmp):
        from infoutil import _cli
        saved = sys.path[:]
        sys.path.insert(0, tmp)
        try:
            with mock.patch.dict(sys.modules):
                sys.modules.pop("onnxruntime", None)
                return _cli.onnxruntime_library()
        finally:
            sys.path[:] = saved

    def test_the_gpu_package_library_wins(self):
        with tempfile.TemporaryDirectory() as tmp:
            capi = self.site(tmp, ["libonnxruntime.so.1.32.0", "libonnxruntime.so.1.31.1"],
                             gpu_record=["libonnxruntime.so.1.31.1", "libonnxruntime_providers_cuda.so"])
            self.assertEqual(self.found(tmp), os.path.join(capi, "libonnxruntime.so.1.31.1"))

    def test_the_nvidia_wheels_libraries_go_on_the_child_library_path(self):
        from infoutil import _cli
        with tempfile.TemporaryDirectory() as tmp:
            capi = self.site(tmp, ["libonnxruntime.so.1.31.1"], gpu_record=["libonnxruntime.so.1.31.1"])
            for pkg in ("cudnn", "cublas", "cuda_runtime"):
                os.makedirs(os.path.join(tmp, "nvidia", pkg, "lib"))
            lib = os.path.join(capi, "libonnxruntime.so.1.31.1")
            with mock.patch.dict(os.environ, {"ORT_DYLIB_PATH": lib, "LD_LIBRARY_PATH": "/mine"}):
                env = _cli.environment()
            want = [os.path.realpath(os.path.join(tmp, "nvidia", p, "lib"))
                    for p in ("cublas", "cuda_runtime", "cudnn")]
            self.assertEqual(env["LD_LIBRARY_PATH"].split(os.pathsep), want + ["/mine"])
            self.assertEqual(env["ORT_DYLIB_PATH"], lib)   # the user's own setting stays

    def test_versions_compare_as_numbers(self):
        with tempfile.TemporaryDirectory() as tmp:
            capi = self.site(tmp, ["libonnxruntime.so.1.9.0", "libonnxruntime.so.1.10.0",
                                   "libonnxruntime_providers_shared.so"])
            self.assertEqual(self.found(tmp), os.path.join(capi, "libonnxruntime.so.1.10.0"))


class WheelLinks(unittest.TestCase):
    """The wheel takes the exporter and the shipped files through per-file links (maturin does
    not follow linked folders): every exporter module must have its link, and no link may dangle."""

    def test_every_exporter_module_is_linked(self):
        src = os.path.join(ROOT, "export", "infoutil_export")
        dst = os.path.join(ROOT, "python", "infoutil_export")
        modules = sorted(f for f in os.listdir(src) if f.endswith(".py"))
        self.assertEqual(sorted(f for f in os.listdir(dst) if f.endswith(".py")), modules,
                         "run: for f in export/infoutil_export/*.py; do ln -sfn ../../$f "
                         "python/infoutil_export/$(basename $f); done")
        for f in modules:
            self.assertTrue(os.path.samefile(os.path.join(src, f), os.path.join(dst, f)), f)

    def test_no_link_dangles(self):
        for folder in ("infoutil_export", "infoutil.data"):
            for root, _, files in os.walk(os.path.join(ROOT, "python", folder)):
                for f in files:
                    self.assertTrue(os.path.exists(os.path.join(root, f)), os.path.join(root, f))


if __name__ == "__main__":
    unittest.main()
