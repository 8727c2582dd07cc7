"""Teacher architectures trained in this folder."""
from collections import OrderedDict

import torch.nn as nn


def convnet3(in_channels=1, num_classes=10, width=128, image_size=28):
    """ConvNet-3 of the dataset-distillation literature, batch-norm variant:
    3 x [Conv 3x3 pad 1 -> BatchNorm -> ReLU -> AvgPool 2], then Flatten -> Linear.
    Named layers (conv1, bn1, ..., fc) so that parameter names in the metadata read well."""
    layers, c, s = [], in_channels, image_size
    for i in range(1, 4):
        layers += [(f"conv{i}", nn.Conv2d(c, width, 3, padding=1)),
                   (f"bn{i}", nn.BatchNorm2d(width)),
                   (f"relu{i}", nn.ReLU()),
                   (f"pool{i}", nn.AvgPool2d(2))]
        c, s = width, s // 2
    layers += [("flatten", nn.Flatten()), ("fc", nn.Linear(width * s * s, num_classes))]
    return nn.Sequential(OrderedDict(layers))
