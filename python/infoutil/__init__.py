"""infoutil from Python: run the distiller and read what it writes.

    import infoutil
    path = infoutil.distill(ipc=10, out="distilled.h5")      # the `infoutil distill` command
    d = infoutil.load(path)                                   # its arrays, schema applied
    d.images.shape, d.labels, d.soft_labels, d.config["distill"]

`distill`, `attribute`, `teacher_eval` and `merge` take the command line's options as keyword
arguments (`--batch-size 32` is `batch_size=32`, a flag is `=True`); the list of options is read
from the installed binary itself (`infoutil options-json`), so it is always the binary's. A
failing command raises `infoutil.Error` with the tool's message. `infoutil.torch` has a PyTorch
Dataset over a distilled file, `infoutil.export` writes teachers from PyTorch.
"""
from ._cli import Error, binary, run
from ._commands import attribute, distill, merge, teacher_eval
from ._load import SCHEMA_VERSION, Loaded, load

__all__ = [
    "Error", "binary", "run", "distill", "attribute", "teacher_eval", "merge", "load", "Loaded",
    "SCHEMA_VERSION",
]
