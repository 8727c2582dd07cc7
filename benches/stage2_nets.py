"""Networks of benches/stage2_torch.py that torchvision does not build as they are.

resnet18_gn: torchvision's ResNet-18 with GroupNorm in place of BatchNorm2d, the network Opacus
accepts (it refuses BatchNorm, whose running statistics it treats as a buffer it cannot follow per
sample). 32 groups, or fewer where the channel count is not a multiple of 32 (what
opacus.validators' fix does, with a gcd). Its blocks add the shortcut out of place: Opacus's
backward hooks refuse BasicBlock's `out += identity`. Same function, same state_dict keys.
"""
import math

import torch.nn as nn
from torchvision.models.resnet import BasicBlock, ResNet


def group_norm(channels):
    return nn.GroupNorm(math.gcd(32, channels), channels)


class OutOfPlaceBlock(BasicBlock):
    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


def resnet18_gn(num_classes=10):
    return ResNet(OutOfPlaceBlock, [2, 2, 2, 2], num_classes=num_classes, norm_layer=group_norm)
