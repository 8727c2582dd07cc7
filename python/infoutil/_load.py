"""Reading a file infoutil wrote (docs/hdf5-schema.md) into numpy arrays, with the schema's
conventions applied: JSON attributes parsed, counts as ints, each dataset's `layout` checked
against its shape, per-tile arrays also given on the factor × factor grid of tiles."""
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from ._cli import Error

#: The schema this reader understands; files of another version are refused.
SCHEMA_VERSION = "1"
_JSON_ATTRS = ("config", "class_names")
_INT_ATTRS = ("ipc", "factor", "seed")
_FLOAT_ATTRS = ("top1",)


class Loaded(SimpleNamespace):
    """One file's contents: root attributes as fields (`kind`, `config` as a dict, `class_names`
    as a list, `ipc`/`factor`/`seed` as ints), every dataset as a numpy array under its name,
    groups as nested namespaces (`provenance.crop_box`, `candidates.shapley`), and `layouts`,
    each dataset's documented axes (`{"images": "NCHW", ...}`). A distilled file also has
    `soft_labels_grid` and `soft_logits_grid` [N, factor, factor, K] and
    `provenance.source_index_grid` [N, factor, factor]: tile (r, c) of each image."""


def _attr(value):
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _layout_axes(layout):
    return layout.split(",") if "," in layout else list(layout)


def _read_group(path, group, layouts, prefix=""):
    import h5py
    out = SimpleNamespace()
    for name, obj in group.items():
        full = prefix + name
        if isinstance(obj, h5py.Group):
            setattr(out, name, _read_group(path, obj, layouts, full + "/"))
            continue
        data = obj[()]
        layout = _attr(obj.attrs.get("layout", ""))
        if layout and len(_layout_axes(layout)) != data.ndim:
            raise Error(f"{path}: /{full} has shape {data.shape} but its layout attribute says "
                        f"{layout!r} ({len(_layout_axes(layout))} axes); the file is damaged or not "
                        f"written by infoutil")
        layouts[full] = layout
        setattr(out, name, data)
    return out


def _root_attrs(path, f):
    attrs = {k: _attr(v) for k, v in f.attrs.items()}
    version = attrs.get("schema_version")
    if version is None:
        raise Error(f"{path}: no root attribute schema_version; not a file infoutil wrote")
    if str(version) != SCHEMA_VERSION:
        raise Error(f"{path}: schema version {version}, but this infoutil package reads version "
                    f"{SCHEMA_VERSION}; install the infoutil that wrote the file "
                    f"({attrs.get('created_by', 'unknown')}) to read it")
    for key in _JSON_ATTRS:
        if key in attrs:
            try:
                attrs[key] = json.loads(attrs[key])
            except (TypeError, json.JSONDecodeError) as e:
                raise Error(f"{path}: root attribute {key!r} is not JSON ({e})") from None
    for key in _INT_ATTRS:
        if key in attrs:
            attrs[key] = int(attrs[key])
    for key in _FLOAT_ATTRS:
        if key in attrs:
            attrs[key] = float(attrs[key])
    return attrs


def _tile_grids(d):
    """Per-tile arrays [N, T, ...] as [N, factor, factor, ...]: tiles are stored row-major."""
    f = d.factor
    n = d.labels.shape[0]
    if d.soft_labels.shape[:2] != (n, f * f):
        raise Error(f"/soft_labels has shape {d.soft_labels.shape}, expected [{n}, {f * f}, K] "
                    f"for factor {f}")
    d.soft_labels_grid = d.soft_labels.reshape(n, f, f, -1)
    if hasattr(d, "soft_logits"):
        d.soft_logits_grid = d.soft_logits.reshape(n, f, f, -1)
    d.provenance.source_index_grid = d.provenance.source_index.reshape(n, f, f)
    d.provenance.crop_box_grid = d.provenance.crop_box.reshape(n, f, f, 4)


def load(path):
    """Every attribute and dataset of an infoutil HDF5 file (see Loaded). Raises Error naming
    the file when it is missing, not HDF5, of another schema version or inconsistent."""
    import h5py
    path = Path(path)
    if not path.exists():
        raise Error(f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise Error(f"{path}: not an HDF5 file ({e})") from None
    with f:
        attrs = _root_attrs(path, f)
        layouts = {}
        data = _read_group(path, f, layouts)
    d = Loaded(**attrs, **vars(data), layouts=layouts, path=path)
    if d.kind == "distilled":
        try:
            _tile_grids(d)
        except (AttributeError, ValueError) as e:
            raise Error(f"{path}: {e}") from None
    return d
