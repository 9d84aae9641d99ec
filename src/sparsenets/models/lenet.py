"""The Turbo-VBI studies' small nets: LeNet-300-100 (MNIST MLP) and the Turbo-VBI demo's 4-conv CNN for
1-channel 28×28 images (Fashion-MNIST). LeNet-5-Caffe (conv 20, conv 50, fc 800-500-10) is
`sparsenets.models.cnn.LeNet5`.

Both are plain `nn.Sequential`s built from keyword arguments (kept in `build_kwargs`), so a compacted copy can
be rebuilt from its JSON description (`sparsenets.compact.save_compact`).
"""

from __future__ import annotations

from torch import nn

from sparsenets.errors import ConfigError

# (c_in, c_out, k) of the demo's convs, with 1 input channel
DEMO_CONVS = ((1, 6, 7), (6, 16, 5), (16, 32, 3), (32, 64, 3))
DEMO_POOLED = (0, 1, 3)  # the demo max-pools after convs 1, 2 and 4 (3×3, stride 2, VALID)
DEMO_FC = (120, 84)


def pooled_side(side: int, pools: int, kernel: int = 3, stride: int = 2) -> int:
    """Spatial side after `pools` VALID max-pools (SAME convs keep the side): ⌊(s − k)/stride⌋ + 1 each."""
    for _ in range(pools):
        side = (side - kernel) // stride + 1
    return side


class LeNet300100(nn.Sequential):
    """LeNet-300-100: flatten → fc 300 → ReLU → fc 100 → ReLU → fc classes, for (N, 1, 28, 28) or (N, 784).

    Args:
        num_classes: outputs.
        in_features: flattened input size (784 for 28×28).
        hidden: the two hidden widths.
    """

    def __init__(
        self, num_classes: int = 10, in_features: int = 784, hidden: tuple[int, int] = (300, 100)
    ) -> None:
        if len(hidden) != 2 or min(hidden) < 1:
            raise ConfigError(f"LeNet-300-100 needs two positive hidden widths; got {hidden}")
        h1, h2 = (int(h) for h in hidden)
        super().__init__(
            nn.Flatten(),
            nn.Linear(in_features, h1),
            nn.ReLU(),
            nn.Linear(h1, h2),
            nn.ReLU(),
            nn.Linear(h2, num_classes),
        )
        self.build_kwargs = {"num_classes": num_classes, "in_features": in_features, "hidden": [h1, h2]}


class DemoCNN(nn.Sequential):
    """The Turbo-VBI demo's CNN with one input channel: convs 7×7×1×6, 5×5×6×16, 3×3×16×32, 3×3×32×64 (SAME
    padding, leaky ReLU 0.1 as in the demo), 3×3/2 VALID max-pools after convs 1, 2 and 4, then fc 256-120-84-10.

    On 28×28 inputs the pools give 28 → 13 → 6 → 2, so the flattened size is 2·2·64 = 256 (the demo's 576 is
    3·3·64 from 32×32 CIFAR images). The demo also applies leaky ReLU to the logits; here the last layer is linear.

    Args:
        num_classes: outputs.
        in_channels: input channels (1: Fashion-MNIST).
        side: input height = width (28).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, side: int = 28) -> None:
        flat_side = pooled_side(side, len(DEMO_POOLED))
        if flat_side < 1:
            raise ConfigError(f"DemoCNN: a {side}×{side} input is too small for three 3×3/2 pools; use ≥ 15")
        layers: list[nn.Module] = []
        for i, (_, c_out, k) in enumerate(DEMO_CONVS):
            c_in = in_channels if i == 0 else DEMO_CONVS[i - 1][1]
            layers += [nn.Conv2d(c_in, c_out, k, padding=k // 2), nn.LeakyReLU(0.1)]
            if i in DEMO_POOLED:
                layers.append(nn.MaxPool2d(3, stride=2))
        width = DEMO_CONVS[-1][1] * flat_side * flat_side
        layers.append(nn.Flatten())
        for h in DEMO_FC:
            layers += [nn.Linear(width, h), nn.LeakyReLU(0.1)]
            width = h
        layers.append(nn.Linear(width, num_classes))
        super().__init__(*layers)
        self.build_kwargs = {"num_classes": num_classes, "in_channels": in_channels, "side": side}
