"""Finding the `infoutil` binary and running it with the tool's messages passed through."""
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path


class Error(RuntimeError):
    """The infoutil command failed; the message is the tool's own (what it printed after
    `error:`), naming the file, sample or option to change."""

    def __init__(self, message, returncode=1, command=None):
        super().__init__(message)
        self.returncode = returncode
        self.command = command


def binary():
    """Path of the `infoutil` executable: $INFOUTIL_BIN, else the one pip installed beside this
    package (the environment's scripts folder, or the user scheme's), else a release build of
    the source tree this package sits in (a checkout), else `infoutil` on PATH."""
    if os.environ.get("INFOUTIL_BIN"):
        return os.environ["INFOUTIL_BIN"]
    name = "infoutil.exe" if os.name == "nt" else "infoutil"
    folders = [sysconfig.get_path("scripts")]
    user_scheme = f"{os.name}_user" if os.name == "nt" else "posix_user"
    folders.append(sysconfig.get_path("scripts", scheme=user_scheme))
    folders.append(str(Path(__file__).resolve().parents[2] / "target" / "release"))
    for folder in folders:
        exe = Path(folder) / name
        if exe.is_file() and os.access(exe, os.X_OK):
            return str(exe)
    found = shutil.which(name)
    if found:
        return found
    raise Error("the infoutil binary was not found: reinstall the wheel (pip install infoutil), "
                "build it (cargo build --release) or set INFOUTIL_BIN to its path")


def _version(path):
    """The numbers after libonnxruntime.so. as a tuple, for comparing versions as numbers."""
    tail = path.name[len("libonnxruntime.so"):]
    return tuple(int(p) for p in tail.split(".") if p.isdigit())


def _gpu_package_library():
    """The library onnxruntime-gpu installed (its RECORD names it), if it is installed and the
    file is there: with `infoutil[gpu]`, onnxruntime and onnxruntime-gpu share onnxruntime/capi/
    and only the GPU build has the CUDA provider (it runs the CPU one too); as the binary's own
    search (src/teacher/ort_engine.rs)."""
    try:
        from importlib import metadata
        files = metadata.distribution("onnxruntime-gpu").files or []
    except Exception:   # noqa: BLE001  (not installed, or metadata unreadable)
        return None
    libs = [Path(f.locate()) for f in files
            if str(f).replace("\\", "/").startswith("onnxruntime/capi/libonnxruntime.so")]
    libs = [p for p in libs if p.is_file()]
    return str(max(libs, key=_version)) if libs else None


def onnxruntime_library():
    """libonnxruntime.so* of the importable `onnxruntime` package (found without importing it),
    or None: onnxruntime-gpu's when installed, else the newest version in capi/. The binary finds
    the one installed beside it by itself; this covers layouts where the two live apart (pip
    --target, PYTHONPATH)."""
    gpu = _gpu_package_library()
    if gpu:
        return gpu
    try:
        spec = importlib.util.find_spec("onnxruntime")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        capi = Path(folder) / "capi"
        libs = sorted(capi.glob("libonnxruntime.so*"), key=_version) + sorted(capi.glob("onnxruntime.dll"))
        if libs:
            return str(libs[-1])
    return None


def nvidia_library_folders(ort_library):
    """The lib/ folders of the nvidia-* wheels (CUDA runtime, cuBLAS, cuDNN, ...) that
    onnxruntime-gpu[cuda,cudnn] installs beside the ONNX Runtime library ORT_LIBRARY, sorted.
    ONNX Runtime's CUDA provider dlopens those libraries by name; onnxruntime's Python package
    preloads them for its own process only, so a child process needs them on LD_LIBRARY_PATH."""
    parents = Path(ort_library).resolve().parents   # site-packages/onnxruntime/capi/lib...
    if len(parents) < 3:
        return []
    site = parents[2]
    return [str(p) for p in sorted((site / "nvidia").glob("*/lib")) if p.is_dir()]


def environment():
    """os.environ, with ORT_DYLIB_PATH pointing at the Python environment's ONNX Runtime unless
    the user has set it, and (for onnxruntime-gpu) the nvidia-* wheels' library folders added to
    LD_LIBRARY_PATH, so that `device="cuda"` finds CUDA without settings."""
    env = dict(os.environ)
    if not env.get("ORT_DYLIB_PATH"):
        lib = onnxruntime_library()
        if lib:
            env["ORT_DYLIB_PATH"] = lib
    if env.get("ORT_DYLIB_PATH") and os.name != "nt":
        have = [p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]
        extra = [p for p in nvidia_library_folders(env["ORT_DYLIB_PATH"]) if p not in have]
        if extra:
            env["LD_LIBRARY_PATH"] = os.pathsep.join(extra + have)
    return env


def _stream_fd(stream):
    """The OS file descriptor behind a Python stream, or None (Jupyter's streams have none)."""
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return None


def _forward(pipe, stream):
    for line in iter(pipe.readline, ""):
        stream.write(line)
        stream.flush()
    pipe.close()


def run(args):
    """Run `infoutil ARGS...`. Its output and progress go where this process's own go (the
    terminal, or a notebook's cells, line by line); a failure raises Error with its message."""
    cmd = [binary(), *map(str, args)]
    env = environment()
    with tempfile.TemporaryDirectory(prefix="infoutil-") as tmp:
        env["INFOUTIL_ERROR_FILE"] = os.path.join(tmp, "error.txt")
        targets = {"stdout": sys.stdout, "stderr": sys.stderr}
        fds = {k: _stream_fd(s) for k, s in targets.items()}
        pipes = {k: (None if fd is not None else subprocess.PIPE) for k, fd in fds.items()}
        for stream in targets.values():
            stream.flush()
        proc = subprocess.Popen(cmd, env=env, text=True, stdin=subprocess.DEVNULL,
                                stdout=pipes["stdout"] and subprocess.PIPE or fds["stdout"],
                                stderr=pipes["stderr"] and subprocess.PIPE or fds["stderr"])
        threads = [threading.Thread(target=_forward, args=(getattr(proc, k), targets[k]), daemon=True)
                   for k, p in pipes.items() if p is not None]
        for t in threads:
            t.start()
        code = proc.wait()
        for t in threads:
            t.join()
        if code != 0:
            try:
                message = Path(env["INFOUTIL_ERROR_FILE"]).read_text().strip()
            except OSError:
                message = f"infoutil exited with status {code} (see its output above)"
            raise Error(message, code, cmd)
