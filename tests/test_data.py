"""Datasets: the IDX reader on files we write, verification, the cache, downloads, synthetic data."""

from __future__ import annotations

import gzip
import hashlib
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from lrsched.data import (
    DATASET_SIZES,
    ChecksumError,
    DatasetUnavailableError,
    IdxFormatError,
    load_dataset,
    load_idx_dataset,
    synthetic,
)
from lrsched.fetch import FASHION_MNIST, MNIST, DownloadError, RemoteFile, download_file
from lrsched.idx import parse_idx, read_idx, write_idx
from tests.helpers_idx import file_server, tiny_idx

# Fast retries: the tests' servers answer at once.
QUICK = {"timeout": 5.0, "retries": 1, "backoff": 0.0, "progress_bar": False}


def idx_bytes(type_code: int, dims: tuple[int, ...], data: bytes) -> bytes:
    """An IDX file built by hand (independent of lrsched.idx.write_idx)."""
    return struct.pack(f">HBB{len(dims)}I", 0, type_code, len(dims), *dims) + data


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


# --------------------------------------------------------------------------------------------------
# The IDX reader


def test_reads_a_good_file_plain_and_gzipped(tmp_path: Path) -> None:
    pixels = bytes(range(24))
    raw = idx_bytes(0x08, (2, 3, 4), pixels)
    for name, content in (("plain.idx", raw), ("packed.idx.gz", gzip.compress(raw))):
        (tmp_path / name).write_bytes(content)
        array = read_idx(tmp_path / name)
        assert array.dtype == np.uint8 and array.shape == (2, 3, 4)
        assert array.tobytes() == pixels


def test_reads_big_endian_wider_types() -> None:
    values = np.array([1, -2, 70000], dtype=">i4")
    array = parse_idx(idx_bytes(0x0C, (3,), values.tobytes()))
    assert array.dtype == np.dtype("int32") and array.tolist() == [1, -2, 70000]


def test_write_idx_round_trips(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28), dtype=np.uint8)
    write_idx(tmp_path / "x.gz", images)
    np.testing.assert_array_equal(read_idx(tmp_path / "x.gz"), images)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            idx_bytes(0x08, (2, 3, 4), bytes(23)),
            "truncated: its header declares dimensions (2, 3, 4)",
        ),
        (idx_bytes(0x08, (2, 3, 4), bytes(25)), "1 bytes after the 24"),
        (idx_bytes(0x08, (2, 3, 4), b"")[:9], "truncated inside its header"),
        (b"\x00\x00", "too few for an IDX header"),
        (b"\x12\x34\x08\x03" + bytes(100), "does not start with an IDX magic number"),
        (b"\x00\x00\x07\x01" + bytes(100), "does not start with an IDX magic number"),
        (b"\x00\x00\x08\x00" + bytes(100), "does not start with an IDX magic number"),
    ],
    ids=["data-truncated", "trailing-bytes", "header-truncated", "tiny", "magic", "type", "ndim"],
)
def test_refuses_malformed_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.idx"
    path.write_bytes(content)
    with pytest.raises(IdxFormatError, match=re.escape(message)):
        read_idx(path)


def test_refuses_a_truncated_gzip_stream(tmp_path: Path) -> None:
    packed = gzip.compress(idx_bytes(0x08, (50, 28, 28), bytes(range(256)) * 153 + bytes(88)))
    path = tmp_path / "cut.gz"
    path.write_bytes(packed[: len(packed) // 2])
    with pytest.raises(IdxFormatError, match="not a complete gzip file"):
        read_idx(path)


def test_refuses_a_wrong_sha256(tmp_path: Path) -> None:
    path = tmp_path / "x.idx"
    path.write_bytes(idx_bytes(0x08, (1,), b"\x07"))
    good = hashlib.sha256(path.read_bytes()).hexdigest()
    assert read_idx(path, sha256=good).tolist() == [7]
    with pytest.raises(ChecksumError, match="has sha256") as caught:
        read_idx(path, sha256="0" * 64)
    assert caught.value.actual == good and caught.value.expected == "0" * 64


# --------------------------------------------------------------------------------------------------
# "Use this directory", the cache, and downloads


def test_loads_from_a_named_directory_both_layouts(tmp_path: Path) -> None:
    tiny = tiny_idx(tmp_path)
    for folder in (tmp_path / "flat", tmp_path / "nested"):
        tiny.write(folder if folder.name == "flat" else folder / "tiny")
        dataset = load_idx_dataset(tiny.spec(), data_dir=folder, **QUICK)
        assert dataset.train_images.shape == (60, 28, 28)
        assert dataset.eval_labels.dtype == np.int32
        np.testing.assert_array_equal(
            dataset.train_images, tiny.arrays["train-images-idx3-ubyte.gz"]
        )


def test_a_named_directory_with_a_corrupt_file_is_refused(tmp_path: Path) -> None:
    tiny = tiny_idx(tmp_path)
    folder = tiny.write(tmp_path / "data")
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not it")
    with pytest.raises(ChecksumError, match=r"t10k-labels-idx1-ubyte\.gz has sha256"):
        load_idx_dataset(tiny.spec(), data_dir=folder, **QUICK)
    assert (folder / "t10k-labels-idx1-ubyte.gz").exists()  # never deletes the user's files


def test_downloads_into_the_cache_then_reads_it_offline(tmp_path: Path) -> None:
    tiny = tiny_idx(tmp_path)
    cache = tmp_path / "cache"
    with file_server() as server:
        mirror = server.serve("m", tiny.files)
        dataset = load_idx_dataset(tiny.spec((mirror,)), cache_dir=cache, **QUICK)
    assert leftovers(cache) == sorted(["tiny", *tiny.files])
    assert dataset.eval_images.shape == (20, 28, 28)
    # The server is gone: the verified cache is enough.
    again = load_idx_dataset(tiny.spec((mirror,)), cache_dir=cache, download=False, **QUICK)
    np.testing.assert_array_equal(again.train_labels, dataset.train_labels)


def test_a_download_that_breaks_halfway_leaves_nothing(tmp_path: Path) -> None:
    tiny = tiny_idx(tmp_path)
    cache = tmp_path / "cache"
    with file_server() as server:
        broken = server.serve("broken", tiny.files, "half")
        with pytest.raises(DatasetUnavailableError) as caught:
            load_idx_dataset(tiny.spec((broken,)), cache_dir=cache, **QUICK)
        assert server.hits[f"/broken/{tiny.spec().train_images.name}"] == 2  # retried once
    assert "connection closed after" in str(caught.value)
    assert leftovers(cache) == ["tiny"]  # the folder, and not one file in it
    for name in tiny.files:
        assert name in str(caught.value)  # says which files to put where
    assert str(cache / "tiny") in str(caught.value)


def test_a_bad_mirror_falls_back_to_the_next(tmp_path: Path) -> None:
    tiny = tiny_idx(tmp_path)
    cache = tmp_path / "cache"
    with file_server() as server:
        mirrors = (
            server.serve("missing", {}, "missing"),
            server.serve("garbage", tiny.files, "garbage"),
            server.serve("half", tiny.files, "half"),
            server.serve("good", tiny.files),
        )
        dataset = load_idx_dataset(tiny.spec(mirrors), cache_dir=cache, **QUICK)
        assert server.hits.get(f"/missing/{tiny.spec().train_images.name}") == 1  # 404: no retry
    assert dataset.train_images.shape[0] == 60
    assert leftovers(cache) == sorted(["tiny", *tiny.files])


def test_a_download_with_the_wrong_bytes_is_refused(tmp_path: Path) -> None:
    payload = b"published bytes"
    remote = RemoteFile("f.bin", hashlib.sha256(payload).hexdigest(), len(payload))
    with file_server() as server:
        mirror = server.serve("g", {"f.bin": payload}, "garbage")
        with pytest.raises(DownloadError, match="is not the published"):
            download_file(remote, tmp_path / "f.bin", [mirror], retries=0, progress_bar=False)
    assert leftovers(tmp_path) == []


def test_a_corrupt_cached_file_is_fetched_again(tmp_path: Path) -> None:
    tiny = tiny_idx(tmp_path)
    cache = tmp_path / "cache"
    tiny.write(cache / "tiny")
    (cache / "tiny" / "train-labels-idx1-ubyte.gz").write_bytes(b"rotten")
    with file_server() as server:
        mirror = server.serve("m", tiny.files)
        load_idx_dataset(tiny.spec((mirror,)), cache_dir=cache, **QUICK)
        assert list(server.hits) == ["/m/train-labels-idx1-ubyte.gz"]


def test_unreachable_mirrors_and_no_files_say_what_to_put_where(tmp_path: Path) -> None:
    tiny = tiny_idx(tmp_path)
    with file_server() as server:
        url = server.url
    # The server is closed: connections are refused.
    with pytest.raises(DatasetUnavailableError) as caught:
        load_idx_dataset(tiny.spec((f"{url}/m/",)), cache_dir=tmp_path / "c", **QUICK)
    text = str(caught.value)
    assert "could not be fetched" in text and "data_dir" in text
    assert all(f"{name} (sha256 " in text for name in tiny.files)


@pytest.mark.parametrize("spec", [FASHION_MNIST, MNIST], ids=lambda s: s.name)
def test_real_datasets_without_files_or_network_explain(tmp_path: Path, spec: object) -> None:
    with pytest.raises(DatasetUnavailableError) as caught:
        load_dataset(spec.name, data_dir=tmp_path)
    text = str(caught.value)
    assert str(tmp_path) in text
    for file in spec.files:
        assert f"{file.name} (sha256 {file.sha256})" in text
    with pytest.raises(DatasetUnavailableError, match="downloads are off"):
        load_dataset(spec.name, cache_dir=tmp_path / "cache", download=False)


def test_published_checksums_look_like_sha256() -> None:
    for spec in (FASHION_MNIST, MNIST):
        assert len({f.sha256 for f in spec.files}) == 4
        assert all(len(f.sha256) == 64 and int(f.sha256, 16) >= 0 for f in spec.files)
        assert spec.mirrors and all(m.endswith("/") for m in spec.mirrors)


# --------------------------------------------------------------------------------------------------
# Synthetic and digits


def test_synthetic_is_deterministic_and_prefix_stable() -> None:
    a = synthetic(seed=7, n_train=3000, n_eval=500)
    b = synthetic(seed=7, n_train=1100, n_eval=100)
    np.testing.assert_array_equal(a.train_images[:1100], b.train_images)
    np.testing.assert_array_equal(a.train_labels[:1100], b.train_labels)
    np.testing.assert_array_equal(a.eval_images[:100], b.eval_images)
    c = synthetic(seed=8, n_train=100, n_eval=10)
    assert not np.array_equal(a.train_images[:100], c.train_images)
    assert not np.array_equal(a.train_images[:500], a.eval_images[:500])  # splits differ
    counts = np.bincount(a.train_labels, minlength=10)
    assert counts.min() > 200  # every class present, roughly balanced


def test_synthetic_has_fashion_mnists_shape_and_size() -> None:
    full = load_dataset("synthetic")
    assert full.train_images.shape == (60_000, 28, 28) and full.train_images.dtype == np.uint8
    assert full.eval_images.shape == (10_000, 28, 28)
    assert (full.train_images.shape[0], full.eval_images.shape[0]) == DATASET_SIZES["synthetic"]
    assert 0 < full.train_images.mean() < 255


def test_digits_are_padded_to_28x28() -> None:
    pytest.importorskip("sklearn")
    dataset = load_dataset("digits", max_eval_examples=100)
    assert dataset.train_images.shape == (DATASET_SIZES["digits"].train, 28, 28)
    assert dataset.eval_images.shape == (100, 28, 28)
    assert (
        dataset.train_images[:, :10].max() == 0
        and dataset.train_images[:, 10:18, 10:18].max() == 255
    )
    assert set(np.unique(dataset.train_labels)) == set(range(10))
