"""Verification on the user's own images, in the layouts infoutil reads: an RGB teacher exported
by export_module.py and by from_onnx.py, each verified on a folder of PNGs of other sizes
(class folders named by the teacher's class names in another case, resized by the metadata's
shorter-side resize and centre crop), and the same pixels read from a .npy [N, H, W, C] and from
an HDF5 file whose class_names attribute lists the classes in another order.

    python export/tests/test_images.py
"""
import json
import os
import sys
import tempfile

import h5py
import numpy as np
import torch
import torch.nn as nn
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import export_module  # noqa: E402
import from_onnx  # noqa: E402
from infoutil_export import images, metadata  # noqa: E402

CLASSES = ["Red Car", "green_tree", "blue-sky"]
SHAPE = (3, 12, 12)
SIZES = [(15, 20), (20, 14), (13, 13)]   # landscape, portrait, square: all need the resize


def write_folder(root):
    """root/<class>/<i>.png: folder names spelled unlike the class names ('RED-CAR'), colour
    pictures of three sizes, 2 per class. Returns the pixels [C, h, w] and labels in read order."""
    rng = np.random.default_rng(0)
    pics, labels = [], []
    folders = {"RED-CAR": 0, "Green Tree": 1, "blue_sky": 2}
    for folder in sorted(folders):   # the order infoutil (and images.load) reads them in
        k = folders[folder]
        os.makedirs(os.path.join(root, folder))
        for i in range(2):
            h, w = SIZES[(k + i) % 3]
            a = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            a[..., k] = 255 - a[..., k] // 4   # the class's colour dominates
            Image.fromarray(a).save(os.path.join(root, folder, f"{i}.png"))
            pics.append(a.transpose(2, 0, 1))
            labels.append(k)
    return pics, labels


def test_resize_is_torchvision_resize_and_centre_crop():
    """images.resize for shorter_side against torchvision's Resize(S) + CenterCrop (no
    antialiasing, as the Rust loader), and stretch against a plain bilinear resize."""
    from torchvision.transforms.v2 import functional as TF
    img = torch.rand(3, 15, 20) * 255
    for s in (12, 13, 16):
        got = images.resize(img, (12, 12), metadata.shorter_side(s))
        want = TF.center_crop(TF.resize(img, s, antialias=False), [12, 12])
        assert got.shape == (3, 12, 12) and torch.allclose(got, want, atol=1e-4), s
    got = images.resize(img, (12, 12), None)
    want = TF.resize(img, [12, 12], antialias=False)
    assert torch.allclose(got, want, atol=1e-4)


def test_layouts_read_the_same(d, pics, labels):
    """The folder, a .npy [N, h, w, C] of the same pixels (one size) and an HDF5 file with its
    own class order: the same labels (by name) and pixels; a grey image is refused by name."""
    folder = os.path.join(d, "folder")
    px, y, how = images.load(folder, SHAPE, CLASSES, metadata.shorter_side(13))
    assert px.shape == (6, *SHAPE) and y.tolist() == labels and "resized" in how, (px.shape, y, how)
    same = np.stack([p for p in pics if p.shape[1:] == (15, 20)])
    np.save(os.path.join(d, "x.npy"), same.transpose(0, 2, 3, 1))
    npx, ny, _ = images.load(os.path.join(d, "x.npy"), SHAPE, CLASSES, metadata.shorter_side(13))
    assert ny is None and npx.shape == (len(same), *SHAPE)
    first = [i for i, p in enumerate(pics) if p.shape[1:] == (15, 20)]
    assert torch.equal(npx, px[first])
    order = [2, 0, 1]   # the file's class k is the teacher's order[k]
    with h5py.File(os.path.join(d, "x.h5"), "w") as f:
        f["images"] = same
        f["labels"] = np.array([order.index(labels[i]) for i in first], np.int64)
        f.attrs["class_names"] = json.dumps([CLASSES[k].upper() for k in order])
    hx, hy, _ = images.load(os.path.join(d, "x.h5"), SHAPE, CLASSES, metadata.shorter_side(13))
    assert torch.equal(hx, npx) and hy.tolist() == [labels[i] for i in first], hy
    os.makedirs(os.path.join(d, "grey", "red car"))
    Image.fromarray(np.zeros((12, 12), np.uint8)).save(os.path.join(d, "grey", "red car", "g.png"))
    try:
        images.load(os.path.join(d, "grey"), SHAPE, CLASSES)
    except images.ImageError as e:
        assert "g.png" in str(e) and "1 channel" in str(e) and "expects 3" in str(e), e
    else:
        raise AssertionError("a grey image was given to an RGB teacher")
    try:
        images.load(folder, SHAPE, ["cat", "dog", "bird"])
    except images.ImageError as e:
        assert "RED-CAR" in str(e), e
    else:
        raise AssertionError("folders that match no class were accepted")


NET = '''
import torch.nn as nn

class RGBNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.relu = nn.ReLU()
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        h = self.relu(self.conv(x))
        return self.head(h.mean((2, 3)))
'''


def test_export_module_and_from_onnx_on_a_folder(d):
    with open(os.path.join(d, "rgbnet.py"), "w") as f:
        f.write(NET)
    sys.path.insert(0, d)
    from rgbnet import RGBNet
    torch.manual_seed(0)
    torch.save(RGBNet().state_dict(), os.path.join(d, "w.pt"))
    folder = os.path.join(d, "folder")
    out = os.path.join(d, "out", "rgb.onnx")
    rc = export_module.main(["--module", "rgbnet:RGBNet", "--path", d, "--weights",
                             os.path.join(d, "w.pt"), "--input-shape", "3,12,12", "--mean",
                             "0.5", "--std", "0.25", "--resize-shorter", "13", "--class-names",
                             ",".join(CLASSES), "--out", out, "--images", folder, "--threads", "1"])
    assert rc == 0
    rep = json.load(open(os.path.join(d, "out", "rgb.export.json")))
    assert rep["grad"]["n"] == 6 and rep["grad"]["verified"], rep["grad"]
    assert "folder: 6 images resized" in rep["verification_inputs"], rep["verification_inputs"]
    meta = metadata.read(out)
    assert json.loads(meta["infoutil.resize"]) == metadata.shorter_side(13), meta
    # from_onnx.py on the forward file just written: its metadata (shape, classes, mean/std,
    # resize) describe the folder's preprocessing
    rc = from_onnx.main([out, "--out-dir", os.path.join(d, "out2"), "--name", "rgb2", "--images",
                         folder, "--threads", "1"])
    assert rc == 0
    meta2 = metadata.read(os.path.join(d, "out2", "rgb2.grad.onnx"))
    assert json.loads(meta2["infoutil.resize"]) == metadata.shorter_side(13), meta2
    return rep["grad"]


if __name__ == "__main__":
    torch.set_num_threads(1)
    test_resize_is_torchvision_resize_and_centre_crop()
    with tempfile.TemporaryDirectory() as d:
        pics, labels = write_folder(os.path.join(d, "folder"))
        test_layouts_read_the_same(d, pics, labels)
        g = test_export_module_and_from_onnx_on_a_folder(d)
        print(f"export_module.py and from_onnx.py on a folder of 6 PNGs (3 sizes, shorter-side "
              f"resize): verified, grad max rel err {g['norm_max_rel_err']:.3g}")
    print("ok")
