"""A PyTorch Dataset over a distilled file (torch is optional: `pip install infoutil[torch]`).

    from infoutil.torch import DistilledDataset
    ds = DistilledDataset("distilled.h5")
    image, label, soft = ds[0]   # [C,H,W] float32 (teacher space), int64, [factor², K] float32
    loader = torch.utils.data.DataLoader(ds, batch_size=64, shuffle=True)

Each item is what a student trains on: the distilled image in the teacher's input space (or as
uint8 pixels with `uint8=True`), its class, and the label teacher's soft labels of its
factor × factor tiles, row-major (`ds.factor`, `ds.tiles` say how they lie). The whole file is
read once into memory: distilled sets are small by design.
"""
try:
    import torch
    from torch.utils.data import Dataset
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("infoutil.torch needs PyTorch: pip install 'infoutil[torch]' "
                      "(or torch from pytorch.org)") from e

from ._load import load


class DistilledDataset(Dataset):
    """(image, label, soft_labels) triples of a file written by `infoutil distill`; `transform`
    is applied to each image tensor. Attributes: `file` (everything infoutil.load read),
    `factor`, `tiles` (factor²), `class_names`, `num_classes`."""

    def __init__(self, path, *, uint8=False, transform=None):
        self.file = load(path)
        if self.file.kind != "distilled":
            from ._cli import Error
            raise Error(f"{path}: kind = {self.file.kind!r}; expected a file written by "
                        f"`infoutil distill` (kind = \"distilled\")")
        pixels = self.file.images_uint8 if uint8 else self.file.images
        self.images = torch.from_numpy(pixels)
        self.labels = torch.from_numpy(self.file.labels.astype("int64"))
        self.soft_labels = torch.from_numpy(self.file.soft_labels)
        self.factor = self.file.factor
        self.tiles = self.factor * self.factor
        self.class_names = self.file.class_names
        self.num_classes = self.soft_labels.shape[-1]
        self.transform = transform

    def __len__(self):
        return self.images.shape[0]

    def __getitem__(self, i):
        image = self.images[i]
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[i], self.soft_labels[i]
