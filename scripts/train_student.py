#!/usr/bin/env python3
"""Train a student on a file that `infoutil distill` wrote, with RDED's evaluation protocol.

    python -m pip install -r examples/requirements-student.txt
    python scripts/train_student.py out/distilled.h5 --out out/student.json
    python scripts/train_student.py out/distilled.h5 --student resnet18 --seed 1 \\
        --test-images $FM/t10k-images-idx3-ubyte.gz --test-labels $FM/t10k-labels-idx1-ubyte.gz --out r.json
    python scripts/train_student.py --full-train-images $FM/train-images-idx3-ubyte.gz \\
        --full-train-labels $FM/train-labels-idx1-ubyte.gz --epochs 30 --out full.json

(FM: a folder with Fashion-MNIST's four idx files, e.g. where Debian's dataset-fashion-mnist
package puts them; scripts/results_env.sh names it.)

Protocol (RDED, CVPR 2024, `validation/main.py` of LINs-lab/RDED; followed by InfoUtil; see
docs/results.md "Students"). Every batch of distilled images is augmented and
then relabelled by the teacher; the stored /soft_labels are NOT used (they are what the distiller
reports; RDED recomputes labels for every augmented batch):

  1. ShufflePatches(factor), per image: the image is cut into `factor` vertical strips which are
     put back in a random order, then into `factor` horizontal strips, likewise (RDED's code:
     columns, transpose, columns, transpose back). For factor 2 and 28 px the result is always the
     four 14x14 quadrants rearranged (a row swap and/or a column swap of the 2x2 tile grid).
     Identity for factor 1. (RDED drops the remainder pixels when the side is not divisible by
     factor; here the last strip keeps them. Identical whenever factor divides the side.)
  2. RandomResizedCrop(size = full image, scale = (1/factor, 1), ratio = (3/4, 4/3)), per image:
     torchvision's own parameter draw (10 tries, then the centre-crop fallback), then the crop is
     resized with F.interpolate(mode="bilinear", align_corners=False, antialias=True), which is
     exactly what torchvision's RandomResizedCrop(antialias=True) does to a tensor (checked
     against torchvision.transforms.functional.resized_crop by --self-test when torchvision is
     installed). Implementation: per-sample crop + F.interpolate, not affine_grid/grid_sample.
     With factor 1 the scale is (1, 1): on a square image every draw (or the fallback) is the
     whole image, so this step is the identity, as in RDED (--self-test counts it).
  3. Horizontal flip with p = 0.5, per image.
  4. CutMix, beta = 1, once per batch, exactly RDED's: lam ~ Beta(1, 1), one box of side
     int(side * sqrt(1 - lam)) centred uniformly (clipped), pasted from a random permutation of
     the batch. No label mixing is needed: the teacher labels the mixed images.
  RDED applies steps 1-3 to [0, 1] pixels and normalises afterwards; the distilled /images are
  already normalised. Every step is a pixel permutation or a convex combination of pixels (the
  bilinear/antialias weights sum to 1), so it commutes with the per-channel affine
  normalisation: applying it in the normalised space gives the same images (up to rounding).

  Target softmax(teacher(x_aug) / T), T = 20; loss KLDivLoss(reduction="batchmean") of
  log_softmax(student(x_aug) / T) against it (no T^2 factor, as RDED). AdamW(lr 1e-3,
  betas (0.9, 0.999), weight decay 0.01 on the weights of dimension > 1 only, 0 on biases and
  norm parameters: RDED's get_parameters). lr factor 0.5 (1 + cos(pi e / (2 E))) in epoch
  e = 0..E-1 (RDED's LambdaLR stepped once per epoch). E = 300 (--epochs). Batch 10 / 50 / 100
  for IPC 1 / 10 / 50 (IPC <= 1 -> 10, <= 10 -> 50, else 100; --batch). Each epoch is one pass
  over the shuffled distilled images, last batch partial (DataLoader(shuffle=True)).
  Evaluation (student.eval(), real test set, top-1): after epoch e (0-based) when
  (e % 10 == 9 or e == E-1) and e > 0.8 E -- with E = 300 that is epochs 250, 260, ..., 300 --
  and always after the last epoch (so that --epochs <= 5 still gives one number). The reported
  number is the best of these evaluations. (RDED also runs the student once more in train mode
  on each batch just to print a train accuracy; that forward is skipped here. It only matters for
  BatchNorm running statistics, i.e. resnet18, where it would update them twice per batch.)
  Each evaluation runs an ONNX export of the student in eval mode, made in memory at that epoch,
  with ONNX Runtime (`--eval-backend ort`, the default; `--threads` threads): the same network
  and arithmetic as PyTorch's eval-mode forward (logits within ~1e-6), about twice as fast on
  one core. `--eval-backend torch` runs PyTorch's forward instead.

Relabelling teacher: by default the label teacher the distiller used, i.e. the `label_teacher`
path in the file's root `config` JSON (absolute, or relative to the repository root), checked
against `label_teacher_sha256`; `--teacher PATH.onnx` overrides. It runs through ONNX Runtime
(CPU, `--threads` threads), the very file whose hash the distilled file records.
`--check-teacher N` loads the PyTorch original (NAME.pt beside NAME.onnx, a state_dict of
`convnet3` from export/infoutil_export/nets.py) and prints max |logit difference| ONNX vs PyTorch
on the first N test images plus both accuracies; the shipped teachers agree to ~5e-6 (the export
verifies 1e-4 on 128 images), so the ONNX teacher is the one used for training.

Test images are normalised as the teacher's ONNX metadata says (`infoutil.normalization`:
mean/std applied to pixel/255, or "baked"), never hard-coded.

Students: convnet3 = ConvNet-3 of the DC/DSA/RDED literature: width 128, 3 x [Conv 3x3 ->
GroupNorm(128, 128) (instance norm, affine) -> ReLU -> AvgPool 2] -> Linear. As in those
codebases (RDED synthesize/models.py: `padding=3 if channel == 1 and d == 0`), a 1-channel 28 px
input gets padding 3 in the first conv, so the feature maps are 32 -> 16 -> 8 -> 4 and the
classifier sees 128*4*4 features, the network the published Fashion-MNIST numbers use.
resnet18 = torchvision's ResNet-18 (BasicBlock [2, 2, 2, 2], torchvision's initialisation,
BatchNorm), written out here, with the CIFAR-style stem: 3x3 stride-1 first conv, no max-pool,
input channels from the data.
vit = a small Vision Transformer for 28 px (issue 15's cross-architecture check, the paper's
ResNet -> Swin transfer in miniature): 4x4 patches (7x7 = 49 tokens) embedded to 128, a class
token and learned position embeddings, 6 pre-norm blocks of 4-head self-attention and a GELU
MLP of 256, LayerNorm, Linear head on the class token. mixer = an MLP-Mixer of the same size:
the same 49 patch tokens of 128, 6 blocks of a token-mixing MLP (49 -> 64 -> 49) and a
channel-mixing MLP (128 -> 256 -> 128), pre-norm, GELU, global average pool, Linear head. Both
pad to the patch size when the side is not a multiple of 4; initialisation as timm's (trunc
normal 0.02 for Linear weights and embeddings, zero biases, LayerNorm 1/0).

Output (--out RESULT.json): best top-1, every evaluation, per-epoch history, wall times, the
relabelling backend and teacher hash, the distilled file's path, root attributes and config, the
distillation's wall time and peak memory when found (see --distill-log), the full argument list,
versions. examples/results_table.py turns a folder of these into a Markdown table.
"""
import argparse
import json
import math
import os
import platform
import random
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "examples"))
import infoutil_io  # noqa: E402  (examples/infoutil_io.py: the shared idx reader and hash)
DEFAULT_TEST_IMAGES = "data/fashion-mnist-mini/t10k-images-idx3-ubyte.gz"
DEFAULT_TEST_LABELS = "data/fashion-mnist-mini/t10k-labels-idx1-ubyte.gz"
DEFAULT_FULL_TRAIN_TEACHER = "models/fmnist-convnet3.onnx"
RESULT_KIND = "infoutil-student-result"
TEMPERATURE = 20.0
LR = 1e-3
WEIGHT_DECAY = 0.01
CUTMIX_BETA = 1.0
RRC_RATIO = (3.0 / 4.0, 4.0 / 3.0)


class UsageError(Exception):
    """A problem with the inputs, reported as one line without a traceback."""


def log(msg):
    print(msg, flush=True)


# ----------------------------------------------------------------------------- files

def repo_path(p):
    """A default path relative to the repository root, or a path as given if it exists."""
    p = Path(p)
    if p.is_absolute() or p.exists():
        return p
    return REPO / p


def read_idx(path, expect_dims):
    try:
        return infoutil_io.read_idx(path, expect_dims)
    except infoutil_io.DataError as e:
        raise UsageError(str(e)) from e


def load_idx_pair(images_path, labels_path):
    try:
        return infoutil_io.load_idx_pair(images_path, labels_path)
    except infoutil_io.DataError as e:
        raise UsageError(str(e)) from e


sha256_file = infoutil_io.sha256_file


def load_distilled(path):
    """-> (images float32 [N,C,H,W], labels int64 [N], root attrs dict, config dict), read by
    infoutil.torch.DistilledDataset (python/infoutil: the schema's conventions and version check)."""
    try:
        import infoutil
    except ImportError:   # a checkout without the wheel installed: the package's source
        sys.path.insert(0, str(REPO / "python"))
        import infoutil
    from infoutil.torch import DistilledDataset
    path = Path(path)
    expected = ("expected a file written by `infoutil distill` (HDF5, root attribute "
                "kind = \"distilled\", datasets /images [N,C,H,W] float32 and /labels [N])")
    if not path.exists():
        raise UsageError(f"{path}: no such file; {expected}")
    try:
        ds = DistilledDataset(path)
    except infoutil.Error as e:
        raise UsageError(f"{e}; {expected}") from None
    except (AttributeError, KeyError) as e:
        raise UsageError(f"{path}: missing {e}; {expected}") from None
    f = ds.file
    missing = [a for a in ("ipc", "factor", "method", "config") if not hasattr(f, a)]
    if missing:
        raise UsageError(f"{path}: missing {', '.join(missing)}; {expected}")
    images = ds.images.numpy()
    if images.ndim != 4 or images.dtype != np.float32:
        raise UsageError(f"{path}: /images is {images.dtype} {images.shape}; {expected}")
    attrs = {k: getattr(f, k) for k in ("kind", "method", "ipc", "factor", "seed", "teacher_sha256",
                                        "created_by", "schema_version") if hasattr(f, k)}
    return images, ds.labels.numpy(), attrs, f.config


def find_distill_stats(h5_path, explicit_log=None):
    """Wall time and peak memory of the distillation, from the line `infoutil distill` prints
    ("time 66.3 s: ...; peak memory 244160 kB; ...") in --distill-log or a sibling log
    (NAME.log or NAME.h5.log), or from a sibling JSON (NAME.distill.json with wall_s and
    peak_memory_kib). None when nothing is found."""
    h5_path = Path(h5_path)
    candidates = [Path(explicit_log)] if explicit_log else [
        h5_path.with_suffix(".log"), Path(str(h5_path) + ".log"),
        h5_path.with_suffix(".distill.json")]
    for p in candidates:
        if not p.exists():
            continue
        text = p.read_text(errors="replace")
        if p.suffix == ".json":
            try:
                d = json.loads(text)
                return {"wall_s": d.get("wall_s"), "peak_memory_kib": d.get("peak_memory_kib"),
                        "source": str(p)}
            except json.JSONDecodeError:
                continue
        m = re.search(r"time ([0-9.]+) s:.*?peak memory ([0-9]+) kB", text)
        if m:
            return {"wall_s": float(m.group(1)), "peak_memory_kib": int(m.group(2)),
                    "source": str(p), "line": m.group(0)}
        if explicit_log:
            raise UsageError(f"{p}: no 'time ... s: ...; peak memory ... kB' line from infoutil distill")
    if explicit_log:
        raise UsageError(f"{explicit_log}: no such file")
    return None


# ----------------------------------------------------------------------------- teacher

class OnnxTeacher:
    """The forward ONNX graph (input `x` [N,C,H,W] -> `logits` [N,K]) on ONNX Runtime, CPU."""

    def __init__(self, path, threads):
        import onnxruntime as ort
        self.path = Path(path)
        if not self.path.exists():
            raise UsageError(f"{self.path}: teacher ONNX file not found")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        if "x" not in inputs or "logits" not in outputs:
            raise UsageError(f"{self.path}: expected a forward graph with input 'x' and output "
                             f"'logits', found inputs {inputs} and outputs {outputs}")
        meta = self.session.get_modelmeta().custom_metadata_map
        self.meta = dict(meta)
        if meta.get("infoutil.role", "forward") != "forward":
            raise UsageError(f"{self.path}: infoutil.role is {meta['infoutil.role']!r}; give the forward graph NAME.onnx")
        try:
            self.input_shape = tuple(json.loads(meta["infoutil.input_shape"]))
            self.normalization = json.loads(meta["infoutil.normalization"])
            self.class_names = json.loads(meta["infoutil.class_names"])
        except KeyError as e:
            raise UsageError(f"{self.path}: ONNX metadata lacks {e.args[0]} (see export/README.md, "
                             "'Metadata contract'); the normalisation must come from the teacher") from None
        self.sha256 = sha256_file(self.path)
        self.backend = f"onnxruntime {ort.__version__} (CPUExecutionProvider, {threads} thread(s))"

    @property
    def num_classes(self):
        return len(self.class_names)

    def __call__(self, x):
        out = self.session.run(["logits"], {"x": np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)})[0]
        return torch.from_numpy(out)

    def normalize(self, images_u8):
        """uint8 [N,H,W] or [N,C,H,W] -> float32 [N,C,H,W] in the teacher's input space:
        pixel/255 then (x - mean_c)/std_c in float32, in that order (as export/infoutil_export/data.py)."""
        x = torch.from_numpy(np.array(images_u8, dtype=np.uint8)).to(torch.float32)
        if x.ndim == 3:
            x = x.unsqueeze(1)
        x = x / 255.0
        kind = self.normalization.get("kind")
        if kind == "mean_std":
            c = x.shape[1]
            mean = torch.tensor(self.normalization["mean"], dtype=torch.float32)
            std = torch.tensor(self.normalization["std"], dtype=torch.float32)
            if len(mean) not in (1, c) or len(std) not in (1, c):
                raise UsageError(f"{self.path}: normalisation has {len(mean)} means for {c}-channel images")
            x = (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)
        elif kind != "baked":
            raise UsageError(f"{self.path}: unknown normalisation kind {kind!r}")
        return x


def resolve_label_teacher(config, h5_path):
    """The label teacher recorded in a distilled file's config: its path relative to the file's
    own folder (label_teacher_from_output, so the file works from any directory), else the path
    as recorded (absolute, or relative to the repository root where `infoutil distill` runs, or
    to the current directory), else a file of that name beside the distilled file. The caller
    checks the SHA-256 (label_teacher_sha256), so a file found by name is not taken on trust."""
    p = config.get("label_teacher") or config.get("teacher")
    if not p:
        raise UsageError(f"{h5_path}: its config names no label_teacher; pass --teacher PATH.onnx")
    p, here = Path(p), Path(h5_path).resolve().parent
    rel = config.get("label_teacher_from_output")
    tries = [here / rel] if rel else []
    tries += [p] if p.is_absolute() else [REPO / p, Path.cwd() / p]
    tries.append(here / p.name)
    for t in tries:
        if t.exists():
            return t
    raise UsageError(f"{h5_path}: its label teacher {p} is not found (tried {', '.join(map(str, tries))}); "
                     "pass --teacher PATH.onnx")


def check_teacher(teacher, test_x, test_y, n):
    """ONNX vs the PyTorch state_dict it was exported from, on the first n test images."""
    sys.path.insert(0, str(REPO / "export"))
    from infoutil_export.nets import convnet3
    pt = teacher.path.with_suffix(".pt")
    if not pt.exists():
        raise UsageError(f"--check-teacher: {pt} (the PyTorch state_dict beside {teacher.path}) not found")
    c, h, w = teacher.input_shape
    model = convnet3(in_channels=c, num_classes=teacher.num_classes, image_size=h)
    try:
        model.load_state_dict(torch.load(pt, map_location="cpu", weights_only=True))
    except RuntimeError as e:
        raise UsageError(f"--check-teacher: {pt} is not a convnet3 state_dict ({str(e).splitlines()[0]})") from None
    model.eval()
    n = min(n, len(test_x))
    x, y = test_x[:n], test_y[:n]
    t0 = time.time()
    lo = torch.cat([teacher(x[i:i + 500]) for i in range(0, n, 500)])
    t_onnx = time.time() - t0
    t0 = time.time()
    with torch.no_grad():
        lp = torch.cat([model(x[i:i + 500]) for i in range(0, n, 500)])
    t_torch = time.time() - t0
    diff = (lo - lp).abs().max().item()
    res = {"n": n, "max_abs_logit_diff": diff, "pytorch": str(pt),
           "top1_onnx": 100.0 * (lo.argmax(1) == y).float().mean().item(),
           "top1_pytorch": 100.0 * (lp.argmax(1) == y).float().mean().item(),
           "argmax_agree": 100.0 * (lo.argmax(1) == lp.argmax(1)).float().mean().item(),
           "seconds_onnx": round(t_onnx, 3), "seconds_pytorch": round(t_torch, 3)}
    log(f"teacher check on {n} test images: max |logit ONNX - PyTorch| = {diff:.3g}; "
        f"top-1 ONNX {res['top1_onnx']:.2f}%, PyTorch {res['top1_pytorch']:.2f}%; "
        f"argmax agree {res['argmax_agree']:.2f}% (ONNX {t_onnx:.2f} s, PyTorch {t_torch:.2f} s)")
    return res


# ----------------------------------------------------------------------------- students

class ConvNet3(nn.Module):
    """ConvNet-3 of DC/DSA/RDED with instance norm (GroupNorm(width, width), affine)."""

    def __init__(self, in_channels, num_classes, image_size, width=128, depth=3):
        super().__init__()
        side = 32 if image_size == 28 else image_size  # first conv pads 3 for 1-channel 28 px
        layers = []
        c = in_channels
        for d in range(depth):
            pad = 3 if in_channels == 1 and image_size == 28 and d == 0 else 1
            layers += [nn.Conv2d(c, width, 3, padding=pad), nn.GroupNorm(width, width, affine=True),
                       nn.ReLU(inplace=True), nn.AvgPool2d(2, 2)]
            c, side = width, side // 2
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(width * side * side, num_classes)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False),
                                            nn.BatchNorm2d(planes))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet18(nn.Module):
    """torchvision.models.resnet18 (same module names, same initialisation) with the small-image
    stem: conv1 3x3 stride 1 padding 1 from `in_channels`, maxpool = Identity."""

    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        inplanes = 64
        for i, (planes, stride) in enumerate([(64, 1), (128, 2), (256, 2), (512, 2)], start=1):
            blocks = nn.Sequential(BasicBlock(inplanes, planes, stride), BasicBlock(planes, planes, 1))
            setattr(self, f"layer{i}", blocks)
            inplanes = planes
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class PatchTokens(nn.Module):
    """Non-overlapping `patch` x `patch` patches (the image zero-padded to a multiple) as tokens."""

    def __init__(self, in_channels, image_size, dim, patch=4):
        super().__init__()
        self.patch, self.pad = patch, (-image_size) % patch
        self.proj = nn.Conv2d(in_channels, dim, patch, patch)
        self.tokens = ((image_size + self.pad) // patch) ** 2

    def forward(self, x):
        if self.pad:
            x = F.pad(x, (0, self.pad, 0, self.pad))
        return self.proj(x).flatten(2).transpose(1, 2)          # [N, tokens, dim]


def _init_transformer(module):
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d)):
            nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class Attention(nn.Module):
    """Multi-head self-attention written out (one qkv Linear, softmax), so it exports plainly."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads, self.scale = heads, (dim // heads) ** -0.5
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x):
        n, t, d = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        return self.proj((a @ v).transpose(1, 2).reshape(n, t, d))


def mlp(dim, hidden):
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class ViT(nn.Module):
    def __init__(self, in_channels, num_classes, image_size, dim=128, depth=6, heads=4, hidden=256):
        super().__init__()
        self.embed = PatchTokens(in_channels, image_size, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, self.embed.tokens + 1, dim))
        self.blocks = nn.ModuleList(nn.ModuleDict(dict(norm1=nn.LayerNorm(dim), attn=Attention(dim, heads),
                                                       norm2=nn.LayerNorm(dim), mlp=mlp(dim, hidden)))
                                    for _ in range(depth))
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, num_classes)
        _init_transformer(self)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)

    def forward(self, x):
        t = self.embed(x)
        t = torch.cat([self.cls_token.expand(t.shape[0], -1, -1), t], 1) + self.pos_embed
        for b in self.blocks:
            t = t + b["attn"](b["norm1"](t))
            t = t + b["mlp"](b["norm2"](t))
        return self.head(self.norm(t)[:, 0])


class Mixer(nn.Module):
    def __init__(self, in_channels, num_classes, image_size, dim=128, depth=6, token_hidden=64,
                 channel_hidden=256):
        super().__init__()
        self.embed = PatchTokens(in_channels, image_size, dim)
        n = self.embed.tokens
        self.blocks = nn.ModuleList(nn.ModuleDict(dict(norm1=nn.LayerNorm(dim), tokens=mlp(n, token_hidden),
                                                       norm2=nn.LayerNorm(dim), channels=mlp(dim, channel_hidden)))
                                    for _ in range(depth))
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, num_classes)
        _init_transformer(self)

    def forward(self, x):
        t = self.embed(x)
        for b in self.blocks:
            t = t + b["tokens"](b["norm1"](t).transpose(1, 2)).transpose(1, 2)
            t = t + b["channels"](b["norm2"](t))
        return self.head(self.norm(t).mean(1))


STUDENTS = {
    "convnet3": lambda c, size, k: ConvNet3(c, k, size),
    "resnet18": lambda c, size, k: ResNet18(c, k),
    "vit": lambda c, size, k: ViT(c, k, size),
    "mixer": lambda c, size, k: Mixer(c, k, size),
}


def make_student(name, in_channels, image_size, num_classes):
    if name not in STUDENTS:
        raise UsageError(f"unknown student {name!r}")
    return STUDENTS[name](in_channels, image_size, num_classes)


def rded_param_groups(model, weight_decay):
    """RDED's get_parameters: weight decay on '*weight*' tensors of dimension > 1, none elsewhere."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (decay if "weight" in name and p.ndim > 1 else no_decay).append(p)
    return [dict(params=decay, weight_decay=weight_decay), dict(params=no_decay, weight_decay=0.0)]


# ----------------------------------------------------------------------------- augmentation

def _strip_bounds(n, factor):
    t = n // factor
    return [i * t for i in range(factor)] + [n]


def shuffle_patches(x, factor, gen):
    """RDED's ShufflePatches on a batch: per image, a random order of the `factor` vertical strips,
    then of the `factor` horizontal strips. x [B,C,H,W] -> same shape (a gather, no copies per
    image)."""
    if factor <= 1:
        return x
    B, C, H, W = x.shape

    def index(n):
        bounds = _strip_bounds(n, factor)
        ranges = [torch.arange(bounds[i], bounds[i + 1]) for i in range(factor)]
        perms = torch.argsort(torch.rand(B, factor, generator=gen), dim=1)
        return torch.stack([torch.cat([ranges[p] for p in perm]) for perm in perms.tolist()])

    cols = index(W)  # RDED: columns first, then (transposed) rows
    x = x.gather(3, cols.view(B, 1, 1, W).expand(B, C, H, W))
    rows = index(H)
    return x.gather(2, rows.view(B, 1, H, 1).expand(B, C, H, W))


def rrc_params(H, W, scale, ratio, gen):
    """torchvision.transforms.RandomResizedCrop.get_params, drawing from `gen`."""
    area = H * W
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1], generator=gen).item()
        aspect = math.exp(torch.empty(1).uniform_(log_ratio[0], log_ratio[1], generator=gen).item())
        w = int(round(math.sqrt(target_area * aspect)))
        h = int(round(math.sqrt(target_area / aspect)))
        if 0 < w <= W and 0 < h <= H:
            i = int(torch.randint(0, H - h + 1, size=(1,), generator=gen).item())
            j = int(torch.randint(0, W - w + 1, size=(1,), generator=gen).item())
            return i, j, h, w
    in_ratio = W / H
    if in_ratio < min(ratio):
        w, h = W, int(round(W / min(ratio)))
    elif in_ratio > max(ratio):
        h, w = H, int(round(H * max(ratio)))
    else:
        w, h = W, H
    return (H - h) // 2, (W - w) // 2, h, w


def resized_crop(x, i, j, h, w, size):
    """Crop rows i..i+h, cols j..j+w of x [B,C,H,W] and resize to `size` as torchvision does for
    tensors (bilinear, align_corners=False, antialias=True)."""
    crop = x[:, :, i:i + h, j:j + w]
    if (h, w) == tuple(size):
        return crop
    return F.interpolate(crop, size=size, mode="bilinear", align_corners=False, antialias=True)


def random_resized_crop(x, factor, gen, boxes=None):
    B, C, H, W = x.shape
    scale = (1.0 / factor, 1.0)
    out = torch.empty_like(x)
    for b in range(B):
        i, j, h, w = rrc_params(H, W, scale, RRC_RATIO, gen)
        if boxes is not None:
            boxes.append((i, j, h, w))
        out[b:b + 1] = resized_crop(x[b:b + 1], i, j, h, w, (H, W))
    return out


def random_hflip(x, gen):
    flip = torch.rand(x.shape[0], generator=gen) < 0.5
    return torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)


def cutmix_box(H, W, lam, rng):
    """RDED's rand_bbox (written for square images; rows and columns named properly here)."""
    cut_rat = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(H * cut_rat), int(W * cut_rat)
    cy, cx = int(rng.integers(H)), int(rng.integers(W))
    r1, r2 = np.clip(cy - cut_h // 2, 0, H), np.clip(cy + cut_h // 2, 0, H)
    c1, c2 = np.clip(cx - cut_w // 2, 0, W), np.clip(cx + cut_w // 2, 0, W)
    return int(r1), int(c1), int(r2), int(c2)


def cutmix(x, rng, gen, beta=CUTMIX_BETA):
    """One Beta(beta, beta) box per batch, pasted from a random permutation of the batch."""
    B, C, H, W = x.shape
    perm = torch.randperm(B, generator=gen)
    lam = float(rng.beta(beta, beta))
    r1, c1, r2, c2 = cutmix_box(H, W, lam, rng)
    x = x.clone()
    x[:, :, r1:r2, c1:c2] = x[perm, :, r1:r2, c1:c2]
    return x, (r1, c1, r2, c2), lam, perm


def augment(x, factor, gen, rng):
    x = shuffle_patches(x, factor, gen)
    x = random_resized_crop(x, factor, gen)
    x = random_hflip(x, gen)
    x, _, _, _ = cutmix(x, rng, gen)
    return x


# ----------------------------------------------------------------------------- training

def default_batch(ipc):
    return 10 if ipc <= 1 else 50 if ipc <= 10 else 100


def lr_factor(epoch, epochs):
    return 0.5 * (1.0 + math.cos(math.pi * epoch / epochs / 2))


def evaluate_now(epoch, epochs):
    """RDED: after epoch e when (e % 10 == 9 or e == E-1) and e > 0.8 E; plus always the last."""
    last = epoch == epochs - 1
    return ((epoch % 10 == 9 or last) and epoch > epochs * 0.8) or last


def onnx_session(model, sample, threads):
    """ONNX Runtime session of `model`'s eval-mode forward, exported in memory (batch axis free)."""
    import io
    import warnings
    import onnxruntime as ort
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, sample, buf, input_names=["x"], output_names=["logits"],
                          dynamic_axes={"x": {0: "n"}, "logits": {0: "n"}}, dynamo=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    return ort.InferenceSession(buf.getvalue(), opts, providers=["CPUExecutionProvider"])


def check_eval_backend(backend, sample, threads):
    """Fail before training, not at the first evaluation 250 epochs in, when `backend` cannot run.

    Exports a parameter-free module (no random numbers drawn, so the student's seed stream is
    untouched) through the same path as `onnx_session` and checks its output."""
    if backend != "ort":
        return
    try:
        flat = onnx_session(torch.nn.Flatten(), sample, threads).run(None, {"x": sample.numpy()})[0]
    except Exception as e:  # any failure here would stop the run at its first evaluation
        raise UsageError(f"--eval-backend ort cannot export a network to ONNX Runtime ({type(e).__name__}: {e}); "
                         "install examples/requirements-student.txt, or pass --eval-backend torch") from e
    if not np.array_equal(flat, sample.flatten(1).numpy()):
        raise UsageError("--eval-backend ort: ONNX Runtime returned wrong values for a Flatten; "
                         "pass --eval-backend torch")


@torch.no_grad()
def logits_of(model, x, backend="ort", threads=1, batch=500):
    """`model`'s eval-mode logits on `x`, in batches, by PyTorch or by ONNX Runtime."""
    model.eval()
    if backend == "torch":
        return torch.cat([model(x[i:i + batch]) for i in range(0, len(x), batch)])
    session = onnx_session(model, x[:2], threads)
    xs = x.numpy()
    return torch.from_numpy(np.concatenate(
        [session.run(None, {"x": xs[i:i + batch]})[0] for i in range(0, len(xs), batch)]))


def evaluate(model, x, y, backend="ort", threads=1):
    """Top-1 (%) of `model` in eval mode on (x, y)."""
    return 100.0 * (logits_of(model, x, backend, threads).argmax(1) == y).sum().item() / len(x)


def train(args, student, teacher, images, labels, test_x, test_y, factor, batch):
    gen = torch.Generator().manual_seed(args.seed)          # order, crops, flips, permutations
    rng = np.random.default_rng(args.seed)                  # CutMix lam and box (numpy, as RDED)
    opt = torch.optim.AdamW(rded_param_groups(student, WEIGHT_DECAY), lr=LR, betas=(0.9, 0.999))
    E, n = args.epochs, len(images)
    history, evaluations = [], []
    t_train = t_eval = t_relabel = 0.0
    steps_per_epoch = math.ceil(n / batch)
    for epoch in range(E):
        lr = LR * lr_factor(epoch, E)
        for g in opt.param_groups:
            g["lr"] = lr
        student.train()
        t0 = time.time()
        order = torch.randperm(n, generator=gen)
        loss_sum = 0.0
        for s, start in enumerate(range(0, n, batch)):
            idx = order[start:start + batch]
            x = augment(images[idx], factor, gen, rng)
            t1 = time.time()
            with torch.no_grad():
                target = F.softmax(teacher(x) / TEMPERATURE, dim=1)
            t_relabel += time.time() - t1
            out = F.log_softmax(student(x) / TEMPERATURE, dim=1)
            loss = F.kl_div(out, target, reduction="batchmean")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            if steps_per_epoch >= 200 and (s + 1) % 100 == 0:
                log(f"  epoch {epoch + 1} step {s + 1}/{steps_per_epoch} loss {loss.item():.6g} "
                    f"({time.time() - t0:.0f} s)")
        dt = time.time() - t0
        t_train += dt
        rec = {"epoch": epoch + 1, "loss": loss_sum / n, "lr": lr, "seconds": round(dt, 3)}
        msg = f"epoch {epoch + 1:4d}/{E} loss {rec['loss']:.6g} lr {lr:.3g} time {dt:.2f} s"
        if evaluate_now(epoch, E):
            t0 = time.time()
            top1 = evaluate(student, test_x, test_y, args.eval_backend, args.threads)
            de = time.time() - t0
            t_eval += de
            evaluations.append({"epoch": epoch + 1, "top1": top1, "seconds": round(de, 3)})
            rec["top1"] = top1
            msg += f" | test top-1 {top1:.2f}% ({len(test_x)} images, {de:.1f} s)"
        history.append(rec)
        log(msg)
    return history, evaluations, t_train, t_eval, t_relabel


# ----------------------------------------------------------------------------- self-test

def self_test():
    """Checks of the pieces that have an exact definition (python scripts/train_student.py --self-test)."""
    gen = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    B, H, W = 64, 28, 28
    x = torch.randn(B, 1, H, W, generator=gen)

    # The eval backend's check before training: passes here, refuses with the fix named when the
    # exporter's onnx package is missing (the failure it exists for: a run lost at epoch 250).
    check_eval_backend("ort", x[:2], 1)
    saved = sys.modules.get("onnx")
    sys.modules["onnx"] = None  # makes `import onnx` raise ImportError
    try:
        check_eval_backend("ort", x[:2], 1)
        raise AssertionError("check_eval_backend accepted a missing onnx package")
    except UsageError as e:
        assert "requirements-student.txt" in str(e), e
    finally:
        if saved is None:
            del sys.modules["onnx"]
        else:
            sys.modules["onnx"] = saved
    print("eval backend check: ONNX Runtime export works; a missing onnx is refused before training")

    # ShufflePatches: factor 1 is the identity; factor 2 rearranges the four 14x14 quadrants by a
    # row swap and/or a column swap of the 2x2 tile grid, all four arrangements occur.
    assert torch.equal(shuffle_patches(x, 1, gen), x)
    y = shuffle_patches(x, 2, gen)
    quads = lambda t: [t[:, :, r:r + 14, c:c + 14] for r in (0, 14) for c in (0, 14)]
    qx, qy = quads(x), quads(y)
    seen = set()
    for b in range(B):
        src = []
        for k in range(4):
            hits = [m for m in range(4) if torch.equal(qy[k][b], qx[m][b])]
            assert len(hits) == 1, "a 14x14 output quadrant is not exactly one input quadrant"
            src.append(hits[0])
        assert sorted(src) == [0, 1, 2, 3], src
        seen.add(tuple(src))
    assert seen == {(0, 1, 2, 3), (1, 0, 3, 2), (2, 3, 0, 1), (3, 2, 1, 0)}, seen
    y3 = shuffle_patches(x, 3, gen)  # 28 = 9 + 9 + 10: still a permutation of each image's pixels
    assert torch.equal(y3.flatten(1).sort(1).values, x.flatten(1).sort(1).values)
    print(f"ShufflePatches: factor 2 permutes the 14x14 quadrants ({len(seen)} arrangements seen over {B} "
          "images: identity, column swap, row swap, both); factor 3 permutes pixels; factor 1 identity")

    # RandomResizedCrop parameters: torchvision's draw, reproduced from the same seed.
    try:
        import torchvision.transforms as T
        import torchvision.transforms.functional as TF
    except ImportError:
        T = TF = None
    for factor in (1, 2, 4):
        mine = [rrc_params(H, W, (1 / factor, 1.0), RRC_RATIO, torch.Generator().manual_seed(s)) for s in range(200)]
        if T is not None:
            ref = []
            for s in range(200):
                torch.manual_seed(s)
                ref.append(tuple(T.RandomResizedCrop.get_params(torch.zeros(1, H, W), [1 / factor, 1.0],
                                                                 list(RRC_RATIO))))
            assert mine == ref, f"factor {factor}: parameters differ from torchvision"
        areas = np.array([h * w for _, _, h, w in mine]) / (H * W)
        full = np.mean([(h, w) == (H, W) for _, _, h, w in mine])
        print(f"RandomResizedCrop factor {factor}: crop area/image {areas.min():.3f}-{areas.max():.3f} "
              f"(mean {areas.mean():.3f}), whole image {100 * full:.0f}% of draws"
              + ("; identical to torchvision's get_params" if T is not None else ""))
    # resize: equal to torchvision's resized_crop on tensors, and commutes with normalisation
    x01 = torch.rand(8, 1, H, W, generator=gen)
    for (i, j, h, w) in [(3, 5, 14, 14), (0, 0, 20, 17), (7, 2, 21, 26), (0, 0, 28, 28)]:
        a = resized_crop(x01, i, j, h, w, (H, W))
        if TF is not None:
            b = TF.resized_crop(x01, i, j, h, w, [H, W], antialias=True)
            assert torch.allclose(a, b, atol=1e-6), (a - b).abs().max()
        n = lambda t: (t - 0.286) / 0.353
        assert torch.allclose(resized_crop(n(x01), i, j, h, w, (H, W)), n(a), atol=1e-5)
    print("resized crop: matches torchvision.transforms.functional.resized_crop(antialias=True)"
          if TF is not None else "resized crop: torchvision not installed, not compared",
          "and commutes with the mean/std normalisation (1e-5)")

    # horizontal flip: each image flipped or not, about half flipped
    f = random_hflip(x, gen)
    flipped = [torch.equal(f[b], x[b].flip(2)) for b in range(B)]
    same = [torch.equal(f[b], x[b]) for b in range(B)]
    assert all(a or b for a, b in zip(flipped, same))
    print(f"hflip: {sum(flipped)}/{B} flipped")

    # CutMix: the box is pasted from x[perm] and nothing else changes; area = clipped (1-lam) HW
    fr, ex = [], []
    for _ in range(2000):
        m, (r1, c1, r2, c2), lam, perm = cutmix(x, rng, gen)
        mask = torch.zeros(H, W, dtype=torch.bool)
        mask[r1:r2, c1:c2] = True
        assert torch.equal(m[:, :, mask], x[perm][:, :, mask]) and torch.equal(m[:, :, ~mask], x[:, :, ~mask])
        cut = int(H * math.sqrt(1 - lam))
        assert r2 - r1 <= 2 * (cut // 2) and c2 - c1 <= 2 * (cut // 2)
        fr.append((r2 - r1) * (c2 - c1) / (H * W))
        ex.append((2 * (cut // 2)) ** 2 / (H * W))
    fr, ex = np.array(fr), np.array(ex)
    print(f"CutMix: mean box area {fr.mean():.3f} of the image (unclipped side 2*floor(cut/2): {ex.mean():.3f}; "
          f"(1-lam) with lam~U(0,1): 0.5); box equals the permuted batch, the rest unchanged")

    # schedule, evaluation epochs, batch sizes, loss
    assert lr_factor(0, 300) == 1.0 and abs(lr_factor(300, 300) - 0.5) < 1e-12
    ev = [e + 1 for e in range(300) if evaluate_now(e, 300)]
    assert ev == [250, 260, 270, 280, 290, 300], ev
    assert [e + 1 for e in range(3) if evaluate_now(e, 3)] == [3]
    assert [e + 1 for e in range(20) if evaluate_now(e, 20)] == [20]
    assert [e + 1 for e in range(50) if evaluate_now(e, 50)] == [50]
    assert [e + 1 for e in range(100) if evaluate_now(e, 100)] == [90, 100]
    assert (default_batch(1), default_batch(10), default_batch(50)) == (10, 50, 100)
    s, t = torch.randn(7, 10, generator=gen), torch.randn(7, 10, generator=gen)
    p = F.softmax(t / TEMPERATURE, 1)
    kl = F.kl_div(F.log_softmax(s / TEMPERATURE, 1), p, reduction="batchmean")
    manual = (p * (p.log() - F.log_softmax(s / TEMPERATURE, 1))).sum() / 7
    assert torch.allclose(kl, manual, atol=1e-7)
    print(f"schedule: lr factor 1 at epoch 1 -> {lr_factor(299, 300):.4f} at epoch 300; evaluations (E=300) {ev}; "
          "batch 10/50/100; KL batchmean checked")

    # students
    cn = ConvNet3(1, 10, 28)
    assert cn(torch.zeros(2, 1, 28, 28)).shape == (2, 10) and cn.classifier.in_features == 128 * 4 * 4
    rn = ResNet18(1, 10)
    msg = f"students: convnet3 {sum(p.numel() for p in cn.parameters()):,} parameters; resnet18 " \
          f"{sum(p.numel() for p in rn.parameters()):,}"
    try:
        import torchvision
        tv = torchvision.models.resnet18(num_classes=10)
        tv.conv1 = nn.Conv2d(1, 64, 3, 1, 1, bias=False)
        tv.maxpool = nn.Identity()
        sd_tv, sd = tv.state_dict(), rn.state_dict()
        assert list(sd_tv) == list(sd) and all(sd_tv[k].shape == sd[k].shape for k in sd)
        rn.load_state_dict(sd_tv)
        rn.eval(), tv.eval()
        xx = torch.randn(3, 1, 28, 28, generator=gen)
        with torch.no_grad():
            d = (rn(xx) - tv(xx)).abs().max().item()
        assert d < 1e-5, d
        msg += f" (same modules as torchvision's resnet18 with the 3x3 stem; outputs agree to {d:.1g})"
    except ImportError:
        pass
    print(msg)

    # evaluation: ONNX Runtime on the in-memory export gives PyTorch's logits and top-1
    xe, ye = torch.randn(64, 1, 28, 28, generator=gen), torch.randint(0, 10, (64,), generator=gen)
    vit, mixer = make_student("vit", 1, 28, 10), make_student("mixer", 1, 28, 10)
    for name, net in (("vit", vit), ("mixer", mixer)):
        assert net(torch.zeros(2, 1, 28, 28)).shape == (2, 10), name
        net.zero_grad()
        net(torch.randn(2, 1, 28, 28, generator=gen)).sum().backward()
        dead = [k for k, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
        assert not dead, (name, dead)                 # every parameter is used and gets a gradient
        print(f"students: {name} {sum(p.numel() for p in net.parameters()):,} parameters, "
              f"{net.embed.tokens} tokens of 4x4 patches")
    for name, net in (("convnet3", cn), ("resnet18", rn), ("vit", vit), ("mixer", mixer)):
        a, b = logits_of(net, xe, "torch"), logits_of(net, xe, "ort")
        d = (a - b).abs().max().item()
        assert d < 1e-4 and evaluate(net, xe, ye, "ort") == evaluate(net, xe, ye, "torch"), (name, d)
        print(f"evaluation: {name} ONNX Runtime logits agree with PyTorch to {d:.1g}, same top-1")
    print("self-test ok")
    return None


# ----------------------------------------------------------------------------- main

def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter,
                                 epilog="The protocol, the augmentations and the output are described at the top of this file.")
    ap.add_argument("distilled", nargs="?", help="HDF5 file written by `infoutil distill`")
    ap.add_argument("--out", help="write the result JSON here")
    ap.add_argument("--student", choices=sorted(STUDENTS), default="convnet3")
    ap.add_argument("--eval-backend", choices=["ort", "torch"], default="ort",
                    help="what runs the test-set evaluations: ONNX Runtime on an in-memory export "
                         "of the student (default, about 2x faster on one core) or PyTorch")
    ap.add_argument("--variant", help="label of this run's row in results_table.py "
                    "(e.g. infoutil, infoutil-no-noise, infoutil-loss, infoutil-last-layer, rded, random; "
                    "default: the file's method, or 'whole-training-set')")
    ap.add_argument("--epochs", type=int, default=300, help="training epochs (default 300, RDED's)")
    ap.add_argument("--batch", type=int, help="batch size (default 10/50/100 for IPC 1/10/50; 100 with --full-train-*)")
    ap.add_argument("--teacher", help="relabelling teacher, forward ONNX (default: the file's label_teacher; "
                    f"{DEFAULT_FULL_TRAIN_TEACHER} with --full-train-*)")
    ap.add_argument("--check-teacher", type=int, metavar="N", default=0,
                    help="compare the ONNX teacher with its PyTorch state_dict NAME.pt on N test images first")
    ap.add_argument("--test-images", default=DEFAULT_TEST_IMAGES, help="idx3 file, gz or raw (default: the shipped mini test set)")
    ap.add_argument("--test-labels", default=DEFAULT_TEST_LABELS, help="idx1 file, gz or raw")
    ap.add_argument("--full-train-images", help="train on this real training set (idx3) instead of a distilled file")
    ap.add_argument("--full-train-labels", help="its labels (idx1)")
    ap.add_argument("--distill-log", help="stdout of the `infoutil distill` run, for its wall time and peak memory "
                    "(default: DISTILLED.log or DISTILLED.h5.log beside the file, if present)")
    ap.add_argument("--distill-command", help="the exact `infoutil distill ...` command line, stored for the table")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=1, help="torch and ONNX Runtime threads (default 1)")
    ap.add_argument("--self-test", action="store_true",
                    help="check the augmentations, schedule, loss and students, then exit (no data needed)")
    args = ap.parse_args(argv)
    if args.self_test:
        return args
    full = args.full_train_images or args.full_train_labels
    if full and not (args.full_train_images and args.full_train_labels):
        ap.error("--full-train-images and --full-train-labels go together")
    if full and args.distilled:
        ap.error("give either a distilled file or --full-train-images/--full-train-labels, not both")
    if not full and not args.distilled:
        ap.error("give a distilled file (or --full-train-images/--full-train-labels)")
    if args.epochs < 0 or (args.batch is not None and args.batch < 1) or args.threads < 1:
        ap.error("--epochs must be >= 0, --batch and --threads >= 1")
    return args


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    started = time.time()
    torch.set_num_threads(args.threads)
    if args.self_test:
        return self_test()
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True, warn_only=True)

    result = {"kind": RESULT_KIND, "schema": 1, "argv": [sys.argv[0]] + list(argv), "args": vars(args)}

    # training data
    distilled = full_train = distill_stats = None
    if args.distilled:
        images_np, labels_np, attrs, config = load_distilled(args.distilled)
        ipc, factor, method = attrs["ipc"], attrs["factor"], str(attrs["method"])
        teacher_path = Path(args.teacher) if args.teacher else resolve_label_teacher(config, args.distilled)
        distill_stats = find_distill_stats(args.distilled, args.distill_log)
        distilled = {"path": str(Path(args.distilled).resolve()),
                     "attrs": {k: attrs.get(k) for k in ("kind", "method", "ipc", "factor", "seed", "teacher_sha256",
                                                          "created_by", "schema_version")},
                     "config": config, "n_images": int(len(images_np)),
                     "command": args.distill_command}
        variant = args.variant or method
    else:
        ipc, factor, method = None, 1, "whole-training-set"
        teacher_path = repo_path(args.teacher or DEFAULT_FULL_TRAIN_TEACHER)
        variant = args.variant or "whole-training-set"

    teacher = OnnxTeacher(teacher_path, args.threads)
    if args.distilled:
        recorded = config.get("label_teacher_sha256")
        if recorded and recorded != teacher.sha256:
            if not args.teacher:
                raise UsageError(f"{teacher.path}: SHA-256 {teacher.sha256[:16]}… differs from the label teacher "
                                 f"{args.distilled} was made with ({recorded[:16]}…); pass --teacher to use it anyway")
            log(f"note: --teacher {teacher.path} is not the file's label teacher (SHA-256 {recorded[:16]}…)")
        images = torch.from_numpy(images_np)
        labels = torch.from_numpy(labels_np)
    else:
        x_u8, y_np = load_idx_pair(args.full_train_images, args.full_train_labels)
        images, labels = teacher.normalize(x_u8), torch.from_numpy(y_np)
        full_train = {"images": str(Path(args.full_train_images).resolve()),
                      "labels": str(Path(args.full_train_labels).resolve()), "n_images": int(len(images))}
    if tuple(images.shape[1:]) != teacher.input_shape:
        raise UsageError(f"training images are {tuple(images.shape[1:])} but the teacher {teacher.path} "
                         f"takes {teacher.input_shape}")
    if labels.numel() and (labels.min() < 0 or labels.max() >= teacher.num_classes):
        raise UsageError(f"labels outside 0..{teacher.num_classes - 1}")
    batch = args.batch or (default_batch(ipc) if ipc is not None else 100)

    test_images, test_labels = repo_path(args.test_images), repo_path(args.test_labels)
    tx_u8, ty_np = load_idx_pair(test_images, test_labels)
    test_x, test_y = teacher.normalize(tx_u8), torch.from_numpy(ty_np)
    if tuple(test_x.shape[1:]) != teacher.input_shape:
        raise UsageError(f"{test_images}: images are {tuple(test_x.shape[1:])}, the teacher takes {teacher.input_shape}")

    log(f"training data: {args.distilled or args.full_train_images} ({len(images)} images, "
        f"method {method}, ipc {ipc}, factor {factor}); variant {variant}")
    log(f"relabelling teacher: {teacher.path} on {teacher.backend}; sha256 {teacher.sha256[:16]}…; "
        f"normalisation {json.dumps(teacher.normalization)}")
    log(f"test set: {test_images} ({len(test_x)} images); student {args.student}; epochs {args.epochs}; "
        f"batch {batch}; T {TEMPERATURE:g}; threads {args.threads}; seed {args.seed}")

    check_eval_backend(args.eval_backend, test_x[:2], args.threads)
    check = check_teacher(teacher, test_x, test_y, args.check_teacher) if args.check_teacher > 0 else None

    c, h, _ = teacher.input_shape
    student = make_student(args.student, c, h, teacher.num_classes)
    n_params = sum(p.numel() for p in student.parameters())
    history, evaluations, t_train, t_eval, t_relabel = train(
        args, student, teacher, images, labels, test_x, test_y, factor, batch)
    best = max(evaluations, key=lambda e: e["top1"]) if evaluations else None
    if best:
        log(f"best test top-1 {best['top1']:.2f}% at epoch {best['epoch']} "
            f"(evaluations at {[e['epoch'] for e in evaluations]}); training {t_train:.1f} s "
            f"({t_train / max(1, args.epochs):.2f} s/epoch, of which relabelling {t_relabel:.1f} s), "
            f"evaluation {t_eval:.1f} s")

    import onnxruntime
    result.update({
        "variant": variant, "method": method, "ipc": ipc, "factor": factor, "seed": args.seed,
        "student": args.student, "student_params": n_params,
        "best_top1": best["top1"] if best else None, "best_epoch": best["epoch"] if best else None,
        "evaluations": evaluations, "history": history,
        "epochs": args.epochs, "batch": batch,
        "train_seconds": round(t_train, 3), "relabel_seconds": round(t_relabel, 3),
        "eval_seconds": round(t_eval, 3), "wall_seconds": round(time.time() - started, 3),
        "seconds_per_epoch": round(t_train / args.epochs, 4) if args.epochs else None,
        "relabel": {"backend": teacher.backend, "teacher": str(teacher.path.resolve()),
                    "sha256": teacher.sha256, "metadata": teacher.meta,
                    "normalization": teacher.normalization, "check": check},
        "distilled": distilled, "full_train": full_train, "distill_stats": distill_stats,
        "test": {"images": str(Path(test_images).resolve()), "labels": str(Path(test_labels).resolve()),
                 "n_images": int(len(test_x))},
        "protocol": {"temperature": TEMPERATURE, "lr": LR, "weight_decay": WEIGHT_DECAY, "cutmix_beta": CUTMIX_BETA,
                     "schedule": "0.5*(1+cos(pi*e/(2E))) per epoch", "optimizer": "AdamW(0.9, 0.999)",
                     "augment": f"ShufflePatches({factor}) -> RandomResizedCrop(scale {1 / factor:g}-1, crop+F.interpolate "
                                "bilinear antialias) -> hflip -> CutMix(beta 1); teacher relabels every batch",
                     "eval": "after epoch e when (e%10==9 or last) and e > 0.8E, and after the last"},
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        "threads": args.threads, "eval_backend": args.eval_backend, "host": platform.node(),
    })
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        os.replace(tmp, out)
        log(f"wrote {out}")
    return result


if __name__ == "__main__":
    try:
        main()
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
