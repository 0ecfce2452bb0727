"""Datasets: Fashion-MNIST and MNIST from their verified IDX files, a synthetic set, and digits.

Every dataset comes as a :class:`Dataset` of ``uint8`` images (N, 28, 28) and ``int32`` labels, train
and eval splits, exactly as the files hold them; the training step divides by 255 (as the tutorial
does to its float32 copy, with the same result). Where the files come from, and the errors when
they cannot be had, is :mod:`lrsched.fetch`'s business; the IDX format is :mod:`lrsched.idx`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple

import numpy as np

from lrsched.fetch import (
    FASHION_MNIST,
    MNIST,
    DatasetUnavailableError,
    DownloadError,
    Heartbeat,
    IdxDataset,
    fetch_idx_files,
)
from lrsched.idx import ChecksumError, DataError, IdxFormatError, parse_idx

__all__ = [
    "DATASET_SIZES",
    "IDX_DATASETS",
    "ChecksumError",
    "DataError",
    "Dataset",
    "DatasetName",
    "DatasetSize",
    "DatasetUnavailableError",
    "DownloadError",
    "IdxFormatError",
    "digits",
    "load_dataset",
    "load_idx_dataset",
    "synthetic",
]

#: The names a training config may ask for.
DatasetName = Literal["fashion_mnist", "mnist", "synthetic", "digits"]

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10


class DatasetSize(NamedTuple):
    """How many examples each split of a dataset holds."""

    train: int
    eval: int


#: Train and eval counts of every dataset, known without loading it.
DATASET_SIZES: dict[str, DatasetSize] = {
    "fashion_mnist": DatasetSize(60_000, 10_000),
    "mnist": DatasetSize(60_000, 10_000),
    "synthetic": DatasetSize(60_000, 10_000),
    "digits": DatasetSize(1_437, 360),
}

IDX_DATASETS: dict[str, IdxDataset] = {FASHION_MNIST.name: FASHION_MNIST, MNIST.name: MNIST}


@dataclass(frozen=True, eq=False)
class Dataset:
    """Train and eval splits: ``uint8`` images (N, 28, 28) and ``int32`` labels in 0..9."""

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    eval_images: np.ndarray
    eval_labels: np.ndarray
    num_classes: int = NUM_CLASSES

    def __post_init__(self) -> None:
        for split in ("train", "eval"):
            images = getattr(self, f"{split}_images")
            labels = getattr(self, f"{split}_labels")
            if images.dtype != np.uint8 or images.ndim != 3 or labels.ndim != 1:
                raise ValueError(
                    f"{self.name}: {split} images must be uint8 (N, H, W) and labels (N,), got "
                    f"{images.dtype} {images.shape} and {labels.shape}"
                )
            if images.shape[0] != labels.shape[0]:
                raise ValueError(
                    f"{self.name}: {images.shape[0]} {split} images but {labels.shape[0]} labels"
                )
            if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
                raise ValueError(
                    f"{self.name}: {split} labels must lie in 0..{self.num_classes - 1}"
                )

    @property
    def image_shape(self) -> tuple[int, int]:
        return (int(self.train_images.shape[1]), int(self.train_images.shape[2]))

    def truncated(self, max_train: int | None, max_eval: int | None) -> Dataset:
        """The first `max_train` train and `max_eval` eval examples (None keeps a split whole)."""
        return Dataset(
            self.name,
            self.train_images[:max_train],
            self.train_labels[:max_train],
            self.eval_images[:max_eval],
            self.eval_labels[:max_eval],
            self.num_classes,
        )


def load_idx_dataset(
    spec: IdxDataset,
    *,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    download: bool = True,
    timeout: float = 30.0,
    retries: int = 2,
    backoff: float = 1.0,
    progress_bar: bool = True,
    heartbeat: Heartbeat | None = None,
) -> Dataset:
    """Fetch (see :func:`fetch_idx_files`, same arguments) and read an IDX dataset; check shapes."""
    paths = fetch_idx_files(
        spec,
        data_dir=data_dir,
        cache_dir=cache_dir,
        download=download,
        timeout=timeout,
        retries=retries,
        backoff=backoff,
        progress_bar=progress_bar,
        heartbeat=heartbeat,
    )
    arrays = [parse_idx(paths[f.name].read_bytes(), name=str(paths[f.name])) for f in spec.files]
    train_images, train_labels, eval_images, eval_labels = arrays
    for file, images, labels in (
        (spec.train_images, train_images, train_labels),
        (spec.eval_images, eval_images, eval_labels),
    ):
        if images.ndim != 3 or images.dtype != np.uint8:
            raise IdxFormatError(
                f"{paths[file.name]} holds {images.dtype} {images.shape}, not uint8 images"
            )
        if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
            raise IdxFormatError(
                f"{paths[file.name]} holds {images.shape[0]} images but its labels file holds "
                f"{labels.shape}; the two files are not a pair"
            )
    return Dataset(
        spec.name,
        train_images,
        train_labels.astype(np.int32),
        eval_images,
        eval_labels.astype(np.int32),
    )


_SYNTHETIC_BLOCK = 1024


def _synthetic_prototypes(seed: int) -> np.ndarray:
    """Ten smooth 32x32 class patterns (each a few Gaussian blobs), values in [0, 1]."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))
    grid = np.arange(32, dtype=np.float32)
    protos = np.zeros((NUM_CLASSES, 32, 32), dtype=np.float32)
    for c in range(NUM_CLASSES):
        for _ in range(4):
            cy, cx = rng.uniform(8, 24, size=2)
            sy, sx = rng.uniform(2.0, 5.0, size=2)
            amp = rng.uniform(0.5, 1.0)
            protos[c] += amp * np.exp(
                -(((grid[:, None] - cy) / sy) ** 2) - (((grid[None, :] - cx) / sx) ** 2)
            )
        protos[c] /= protos[c].max()
    return protos


def _synthetic_split(seed: int, split: int, count: int) -> tuple[np.ndarray, np.ndarray]:
    """`count` examples of one split, made block by block so that any prefix is the same."""
    protos = _synthetic_prototypes(seed)
    images = np.empty((count, 28, 28), dtype=np.uint8)
    labels = np.empty(count, dtype=np.int32)
    offsets = np.arange(28)
    for start in range(0, count, _SYNTHETIC_BLOCK):
        block = np.random.SeedSequence([seed, split, start // _SYNTHETIC_BLOCK])
        rng = np.random.default_rng(block)
        n = _SYNTHETIC_BLOCK
        label = rng.integers(0, NUM_CLASSES, size=n)
        # Each image: its class pattern shifted by up to 2 pixels, a second class's pattern faintly
        # over it, scaled, plus noise. Learnable, but not in one step.
        other = rng.integers(0, NUM_CLASSES, size=n)
        dy, dx = rng.integers(0, 5, size=(2, n))
        rows = (dy[:, None, None] + offsets[None, :, None]).astype(np.intp)
        cols = (dx[:, None, None] + offsets[None, None, :]).astype(np.intp)
        own = protos[label[:, None, None], rows, cols]
        mixed = protos[other[:, None, None], rows[:, ::-1], cols]
        scale = rng.uniform(0.6, 1.0, size=(n, 1, 1)).astype(np.float32)
        noise = rng.standard_normal((n, 28, 28), dtype=np.float32) * np.float32(0.3)
        pixels = scale * (own + np.float32(0.5) * mixed) + noise
        stop = min(start + n, count)
        images[start:stop] = np.clip(pixels * 200.0, 0, 255).astype(np.uint8)[: stop - start]
        labels[start:stop] = label[: stop - start]
    return images, labels


def synthetic(seed: int = 0, n_train: int = 60_000, n_eval: int = 10_000) -> Dataset:
    """A learnable dataset with Fashion-MNIST's shape, deterministic from `seed`.

    Ten classes, each a smooth pattern of blobs, jittered, overlaid with a faint other pattern, and
    noisy; a CNN climbs well above chance (10 %) within an epoch or two. The first ``k`` examples
    do not depend on how many are asked for, so a truncated run sees a prefix of the full set.
    """
    train_images, train_labels = _synthetic_split(seed, 1, n_train)
    eval_images, eval_labels = _synthetic_split(seed, 2, n_eval)
    return Dataset("synthetic", train_images, train_labels, eval_images, eval_labels)


def digits() -> Dataset:
    """scikit-learn's bundled handwritten digits (8x8, 0..16), scaled to 0..255 and padded to 28x28.

    The first 1,437 images train and the last 360 evaluate (an 80/20 split in the file's order).
    Needs scikit-learn; no network.
    """
    from sklearn.datasets import load_digits  # type: ignore[import-untyped]  # heavy: only here

    bunch = load_digits()
    images = np.rint(np.asarray(bunch.images, dtype=np.float64) * (255.0 / 16.0)).astype(np.uint8)
    images = np.pad(images, ((0, 0), (10, 10), (10, 10)))
    labels = np.asarray(bunch.target, dtype=np.int32)
    n_train = DATASET_SIZES["digits"].train
    return Dataset("digits", images[:n_train], labels[:n_train], images[n_train:], labels[n_train:])


def load_dataset(
    name: str,
    *,
    data_dir: Path | None = None,
    cache_dir: Path | None = None,
    download: bool = True,
    max_train_examples: int | None = None,
    max_eval_examples: int | None = None,
    seed: int = 0,
    progress_bar: bool = True,
    heartbeat: Heartbeat | None = None,
) -> Dataset:
    """Load a dataset by name, keeping the first `max_train_examples` / `max_eval_examples`.

    Args:
        name: ``fashion_mnist``, ``mnist``, ``synthetic`` or ``digits``.
        data_dir: read the IDX files from this directory (or its ``<name>/``); never download.
        cache_dir: where downloads are kept (default :func:`default_cache_dir`).
        download: whether missing files may be fetched from the mirrors.
        seed: the synthetic dataset's seed (other datasets ignore it).
        progress_bar: show a progress bar while downloading.
        heartbeat: called now and then while downloading.

    Raises:
        DatasetUnavailableError, ChecksumError, IdxFormatError: see the module docstring.
        ValueError: an unknown name.
    """
    if name == "synthetic":
        sizes = DATASET_SIZES["synthetic"]
        n_train = (
            sizes.train if max_train_examples is None else min(max_train_examples, sizes.train)
        )
        n_eval = sizes.eval if max_eval_examples is None else min(max_eval_examples, sizes.eval)
        return synthetic(seed, n_train, n_eval)
    if name == "digits":
        return digits().truncated(max_train_examples, max_eval_examples)
    if name not in IDX_DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASET_SIZES)}")
    dataset = load_idx_dataset(
        IDX_DATASETS[name],
        data_dir=data_dir,
        cache_dir=cache_dir,
        download=download,
        progress_bar=progress_bar,
        heartbeat=heartbeat,
    )
    return dataset.truncated(max_train_examples, max_eval_examples)
