"""Small CNNs for structured sparsity: LeNet-5 (Caffe variant) and VGG-16 with BatchNorm, width-scalable.

Both are plain `nn.Sequential`s built from keyword arguments (kept in `build_kwargs`), so a compacted copy can be
rebuilt from a JSON description (`sparsenets.compact.save_compact`).
"""

from __future__ import annotations

from torch import Tensor, nn

from sparsenets.errors import SparsenetsError

VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)


def _scaled(c: int, width: float) -> int:
    if not width > 0:  # also catches NaN
        raise SparsenetsError(
            f"width must be a positive multiplier (1.0 = the published widths); got {width}"
        )
    return max(1, round(c * width))


class LeNet5(nn.Sequential):
    """LeNet-5-Caffe for 1×28×28 inputs: conv 20 → pool → conv 50 → pool → fc 500 → fc classes.

    Args:
        num_classes: outputs.
        width: multiplier on every hidden width (1.0: 20, 50, 500).
    """

    def __init__(self, num_classes: int = 10, width: float = 1.0) -> None:
        c1, c2, f1 = _scaled(20, width), _scaled(50, width), _scaled(500, width)
        super().__init__(
            nn.Conv2d(1, c1, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 5),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(c2 * 16, f1),
            nn.ReLU(),
            nn.Linear(f1, num_classes),
        )
        self.build_kwargs = {"num_classes": num_classes, "width": width}


class VGG16BN(nn.Sequential):
    """VGG-16 with BatchNorm for small images (1×28×28 or 3×32×32): 13 conv-BN-ReLU blocks, four max-pools,
    global average pooling and one linear classifier (the CIFAR-style VGG of the HSPG/WGSEF experiments).

    Args:
        num_classes: outputs.
        in_channels: input channels.
        width: multiplier on every conv width (1.0: 64 … 512).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: float = 1.0) -> None:
        layers: list[nn.Module] = []
        c_in = in_channels
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            c = _scaled(int(v), width)
            layers += [nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), nn.ReLU()]
            c_in = c
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes)]
        super().__init__(*layers)
        self.build_kwargs = {"num_classes": num_classes, "in_channels": in_channels, "width": width}


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers with a residual add; a 1×1 conv-BN shortcut when the shape changes.

    Args:
        c_in: input channels.
        c_out: output channels.
        stride: stride of the first conv (and of the shortcut).
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out)
            )
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        """(N, c_in, H, W) -> (N, c_out, H / stride, W / stride)."""
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 for small images (CIFAR style: 3×3 stem, no max-pool), four stages of two `BasicBlock`s,
    global average pooling and one linear classifier. The residual adds tie channels across each stage, so its
    coupled groups (`sparsenets.groups.coupled_layouts`) span several layers.

    Args:
        num_classes: outputs.
        in_channels: input channels.
        width: multiplier on every width (1.0: 64, 128, 256, 512).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: float = 1.0) -> None:
        super().__init__()
        widths = [_scaled(c, width) for c in (64, 128, 256, 512)]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, widths[0], 3, padding=1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU()
        )
        blocks: list[nn.Module] = []
        c_in = widths[0]
        for i, c in enumerate(widths):
            blocks += [BasicBlock(c_in, c, stride=1 if i == 0 else 2), BasicBlock(c, c)]
            c_in = c
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, num_classes))
        self.build_kwargs = {"num_classes": num_classes, "in_channels": in_channels, "width": width}

    def forward(self, x: Tensor) -> Tensor:
        """(N, in_channels, H, W) -> (N, num_classes) logits."""
        return self.head(self.blocks(self.stem(x)))
