"""Published dataset files: their checksums, their mirrors, and a verified, atomic download.

Where the files of an IDX dataset come from (:func:`fetch_idx_files`), in order:

1. ``data_dir`` ("use this directory"): the four files directly in it, or in ``data_dir/<name>/``.
   They are verified and read; nothing is downloaded there, and nothing there is deleted.
2. ``cache_dir/<name>/`` (default :func:`default_cache_dir`): verified files are used; a file that
   fails its checksum is removed (it is our cache) and fetched again.
3. The mirrors, one after another, each with a timeout and retries, when ``download`` is true. A
   download goes to a temporary file beside its target and is renamed into place only once its
   length and sha256 check out, so the cache never holds a half-written file.

With no files and no network, :class:`DatasetUnavailableError` says which files to put where.

Errors::

    DataError                    (lrsched.idx)
    ├── IdxFormatError           (lrsched.idx)
    ├── ChecksumError            (lrsched.idx)
    ├── DownloadError            every mirror failed for one file (each mirror's reason inside)
    └── DatasetUnavailableError  the files are neither present nor downloadable: what to put where
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm  # type: ignore[import-untyped]

from lrsched.idx import ChecksumError, DataError


class DownloadError(DataError):
    """Every mirror failed for one file."""


class DatasetUnavailableError(DataError):
    """The dataset's files are neither on disk nor downloadable."""


@dataclass(frozen=True)
class RemoteFile:
    """One published file: its name, its sha256 and its size in bytes."""

    name: str
    sha256: str
    size: int | None = None


@dataclass(frozen=True)
class IdxDataset:
    """A dataset published as four IDX files on a list of mirrors (base URLs ending in ``/``)."""

    name: str
    title: str
    train_images: RemoteFile
    train_labels: RemoteFile
    eval_images: RemoteFile
    eval_labels: RemoteFile
    mirrors: tuple[str, ...]

    @property
    def files(self) -> tuple[RemoteFile, ...]:
        return (self.train_images, self.train_labels, self.eval_images, self.eval_labels)


#: Fashion-MNIST (Zalando Research); sha256 of the gzip files as published (their MD5 values match
#: the project's README), the first mirror being the one the tutorial's Keras loader uses.
FASHION_MNIST = IdxDataset(
    name="fashion_mnist",
    title="Fashion-MNIST",
    train_images=RemoteFile(
        "train-images-idx3-ubyte.gz",
        "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        26_421_880,
    ),
    train_labels=RemoteFile(
        "train-labels-idx1-ubyte.gz",
        "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        29_515,
    ),
    eval_images=RemoteFile(
        "t10k-images-idx3-ubyte.gz",
        "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        4_422_102,
    ),
    eval_labels=RemoteFile(
        "t10k-labels-idx1-ubyte.gz",
        "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        5_148,
    ),
    mirrors=(
        "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
)

#: MNIST (LeCun, Cortes, Burges); sha256 of the original gzip files.
MNIST = IdxDataset(
    name="mnist",
    title="MNIST",
    train_images=RemoteFile(
        "train-images-idx3-ubyte.gz",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        9_912_422,
    ),
    train_labels=RemoteFile(
        "train-labels-idx1-ubyte.gz",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        28_881,
    ),
    eval_images=RemoteFile(
        "t10k-images-idx3-ubyte.gz",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        1_648_877,
    ),
    eval_labels=RemoteFile(
        "t10k-labels-idx1-ubyte.gz",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        4_542,
    ),
    mirrors=(
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
)

#: Called now and then while waiting on the network (a heartbeat for long downloads).
Heartbeat = Callable[[], object]


def default_cache_dir() -> Path:
    """Where downloaded datasets are kept unless told otherwise: ``~/.cache/lrsched/datasets``."""
    return Path.home() / ".cache" / "lrsched" / "datasets"


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch_once(
    url: str,
    dest: Path,
    remote: RemoteFile,
    *,
    timeout: float,
    progress_bar: bool,
    heartbeat: Heartbeat | None,
) -> None:
    """Download `url` to `dest` through a temporary file; verify length and sha256, then rename."""
    handle, temp_name = tempfile.mkstemp(prefix=f".{remote.name}.", suffix=".part", dir=dest.parent)
    temp = Path(temp_name)
    try:
        digest = hashlib.sha256()
        received = 0
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as reply:
            length_header = reply.headers.get("Content-Length")
            declared = int(length_header) if length_header and length_header.isdigit() else None
            with tqdm(
                total=declared or remote.size,
                unit="B",
                unit_scale=True,
                desc=remote.name,
                disable=not progress_bar,
                leave=False,
            ) as bar:
                while block := reply.read(1 << 16):
                    out.write(block)
                    digest.update(block)
                    received += len(block)
                    bar.update(len(block))
                    if heartbeat is not None:
                        heartbeat()
        if declared is not None and received != declared:
            raise DownloadError(
                f"{url}: the connection closed after {received} of {declared} bytes"
            )
        if remote.size is not None and received != remote.size:
            raise DownloadError(
                f"{url}: got {received} bytes, the published file has {remote.size}"
            )
        actual = digest.hexdigest()
        if actual != remote.sha256:
            raise DownloadError(f"{url}: sha256 {actual} is not the published {remote.sha256}")
        temp.chmod(0o644)  # mkstemp makes it 0600; a shared cache should be readable
        os.replace(temp, dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def download_file(
    remote: RemoteFile,
    dest: Path,
    mirrors: Sequence[str],
    *,
    timeout: float = 30.0,
    retries: int = 2,
    backoff: float = 1.0,
    progress_bar: bool = True,
    heartbeat: Heartbeat | None = None,
) -> Path:
    """Fetch `remote` from the first mirror that serves it intact, into `dest` (a file path).

    Each mirror is tried ``retries + 1`` times, waiting ``backoff * 2**attempt`` seconds between
    tries. `dest` appears only complete and verified; a failed try leaves nothing behind.

    Raises:
        DownloadError: every try on every mirror failed; the message lists each mirror's reason.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    failures: list[str] = []
    for mirror in mirrors:
        url = mirror + remote.name
        for attempt in range(retries + 1):
            try:
                _fetch_once(
                    url,
                    dest,
                    remote,
                    timeout=timeout,
                    progress_bar=progress_bar,
                    heartbeat=heartbeat,
                )
                return dest
            except (OSError, http.client.HTTPException, DownloadError, ValueError) as error:
                # urllib's errors: URLError, HTTPError and timeouts are OSErrors, a connection cut
                # short is an HTTPException, a bad URL a ValueError; anything else propagates.
                reason = str(error) if isinstance(error, DownloadError) else f"{url}: {error!r}"
                failures.append(reason)
                if isinstance(error, urllib.error.HTTPError) and error.code == 404:
                    break
                if attempt < retries:
                    time.sleep(backoff * 2**attempt)
    raise DownloadError(f"could not download {remote.name}: " + "; ".join(failures))


def _find(directory: Path, dataset_name: str, file: str) -> Path | None:
    for candidate in (directory / file, directory / dataset_name / file):
        if candidate.is_file():
            return candidate
    return None


def _where_to_put(spec: IdxDataset, folder: Path, missing: Sequence[RemoteFile]) -> str:
    listing = ", ".join(f"{f.name} (sha256 {f.sha256})" for f in missing)
    return (
        f"put these {spec.title} files into {folder}: {listing}; they are published at "
        + ", ".join(spec.mirrors)
    )


def fetch_idx_files(
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
) -> dict[str, Path]:
    """The verified local path of each of `spec`'s files, downloading into the cache if needed.

    Returns:
        A mapping from file name to its path, every file's sha256 checked.

    Raises:
        ChecksumError: a file in `data_dir` is not the published file.
        DatasetUnavailableError: files are missing and cannot be downloaded; says what to put where.
    """
    paths: dict[str, Path] = {}
    if data_dir is not None:
        data_dir = Path(data_dir).expanduser()
        missing = [f for f in spec.files if _find(data_dir, spec.name, f.name) is None]
        if missing:
            raise DatasetUnavailableError(
                f"{spec.title} is not complete in {data_dir} (the data_dir you named): "
                + _where_to_put(spec, data_dir, missing)
            )
        for file in spec.files:
            path = _find(data_dir, spec.name, file.name)
            assert path is not None
            actual = sha256_file(path)
            if actual != file.sha256:
                raise ChecksumError(path, file.sha256, actual)
            paths[file.name] = path
        return paths

    folder = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    folder = folder / spec.name
    errors: list[str] = []
    for file in spec.files:
        path = folder / file.name
        if path.is_file():
            if sha256_file(path) == file.sha256:
                paths[file.name] = path
                continue
            path.unlink()  # our own cache: a corrupt copy is dropped and fetched again
        if not download:
            continue
        try:
            paths[file.name] = download_file(
                file,
                path,
                spec.mirrors,
                timeout=timeout,
                retries=retries,
                backoff=backoff,
                progress_bar=progress_bar,
                heartbeat=heartbeat,
            )
        except DownloadError as error:
            errors.append(str(error))
    missing = [f for f in spec.files if f.name not in paths]
    if missing:
        how = f" (downloads failed: {'; '.join(errors)})" if errors else " (downloads are off)"
        raise DatasetUnavailableError(
            f"{spec.title} is not in the cache {folder} and could not be fetched{how}. Either "
            + _where_to_put(spec, folder, missing)
            + ", or pass data_dir= a directory that holds them"
        )
    return paths
