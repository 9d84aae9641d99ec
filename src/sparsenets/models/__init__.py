"""Model definitions shared by experiments: plain `nn.Module`s, readable top to bottom."""

from sparsenets.models.cnn import VGG16BN, LeNet5, ResNet18
from sparsenets.models.mlp import MLP

__all__ = ["MLP", "VGG16BN", "LeNet5", "ResNet18"]
