"""Model definitions shared by experiments: plain `nn.Module`s, readable top to bottom."""

from sparsenets.models.cnn import VGG16BN, LeNet5, ResNet18
from sparsenets.models.lenet import DemoCNN, LeNet300100
from sparsenets.models.mlp import MLP

__all__ = ["MLP", "VGG16BN", "DemoCNN", "LeNet5", "LeNet300100", "ResNet18"]
