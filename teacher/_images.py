"""Image datasets through torchvision: MNIST, Fashion-MNIST, CIFAR-10 and any ImageFolder.

Every split is decoded once into a uint8 tensor (N, C, H, W) and cached on disk, keyed by the
source files' names, sizes and modification times, so an epoch never decodes an image again and a
second run starts in seconds. Pixels stay uint8 until a batch is drawn (`teacher.to_float`): 50,000 CIFAR
images are 150 MB as bytes and 600 MB as floats.

Where the data comes from, in order:
- MNIST / Fashion-MNIST: the four original `.gz` files in `<data-dir>/mnist/` (or
  `<data-dir>/fashion-mnist/`), or torchvision's own layout `<data-dir>/MNIST/raw/`. They are checked
  against torchvision's published md5s and read by `torchvision.datasets.MNIST`; with
  `download=True` torchvision fetches them from its mirrors instead.
- CIFAR-10: torchvision's original batches (`<data-dir>/cifar-10-batches-py`, fetched with
  `download=True`), else the lossy JPEG copy `<data-dir>/cifar-10-jpeg/{train,test}/<class>/` read
  as an ImageFolder. Figures from the copy are labelled "cifar10 (JPEG copy)".
- imagefolder: `<data-dir>/{train,test}/<class>/*` (or `val/` for the test split), any image size as
  long as all images of a dataset share it. Images are decoded as RGB (grayscale ones get 3
  channels); files whose extension is not an image's are skipped, as torchvision's ImageFolder does.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision
from torchvision import datasets
from tqdm.auto import tqdm

from teacher._apnea_io import resolve_data_dir
from teacher._files import sha256_file
from teacher._training import to_float

IMAGE_DATASETS = ("mnist", "fashion-mnist", "cifar10", "imagefolder")
CACHE_FORMAT = 1

# Per-channel mean and standard deviation of the training pixels in [0, 1]; the model normalises
# its input with them, so every consumer (student, generator, phone) feeds plain [0, 1] pixels.
PIXEL_STATS = {
    "mnist": ((0.1307,), (0.3081,)),
    "fashion-mnist": ((0.2860,), (0.3530,)),
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
}
FASHION_LABELS = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)


class ImageDataError(RuntimeError):
    """A missing, corrupt or inconsistent image dataset; the message names the file or folder."""


@dataclass
class ImageData:
    """One split of an image dataset, decoded.

    Attributes:
        images: (N, C, H, W) uint8 pixels.
        labels: (N,) int64 class ids.
        classes: class names, index = class id.
        source: where the pixels came from, e.g. "cifar10 (JPEG copy)": figures carry this label.
        provenance: what the artifact's manifest records about the files read.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    source: str
    provenance: dict

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])


def pixel_stats(dataset: str, data: ImageData) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Known statistics for the standard datasets; measured on the training split otherwise."""
    if dataset in PIXEL_STATS:
        return PIXEL_STATS[dataset]
    sample = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:10000]  # all classes
    pixels = to_float(data.images[sample])
    return (
        tuple(round(v, 4) for v in pixels.mean(dim=(0, 2, 3)).tolist()),
        tuple(round(max(v, 1e-3), 4) for v in pixels.std(dim=(0, 2, 3)).tolist()),
    )


def cache_dir() -> Path:
    """Where decoded tensors are kept: $EDGEKIT_CACHE, else ~/.cache/edgekit."""
    return Path(os.environ.get("EDGEKIT_CACHE") or Path.home() / ".cache" / "edgekit")


def load_image_dataset(
    dataset: str,
    split: str,
    data_dir: str | os.PathLike | None = None,
    *,
    download: bool = False,
    progress: bool = True,
) -> ImageData:
    """The `split` ("train" or "test") of `dataset`, decoded (from the cache when it is fresh)."""
    if dataset not in IMAGE_DATASETS:
        raise ValueError(f"unknown image dataset {dataset!r}; known: {', '.join(IMAGE_DATASETS)}")
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    root = resolve_data_dir(data_dir)
    if dataset in ("mnist", "fashion-mnist"):
        return _load_mnist_like(dataset, split, root, download, progress)
    if dataset == "cifar10":
        if download or (root / "cifar-10-batches-py").is_dir():
            return _load_cifar10_batches(split, root, download)
        jpeg_root = root / "cifar-10-jpeg"
        if (jpeg_root / split).is_dir():
            return _load_image_folder(jpeg_root / split, "cifar10 (JPEG copy)", progress)
        raise ImageDataError(
            f"CIFAR-10 not found under {root}: expected torchvision's {root / 'cifar-10-batches-py'} "
            f"or a JPEG copy in {jpeg_root}/{{train,test}}/<class>/. Pass --download to fetch it "
            "(online), or --data-dir / EDGEKIT_DATA pointing at the folder that holds it."
        )
    folder = root / split
    if split == "test" and not folder.is_dir() and (root / "val").is_dir():
        folder = root / "val"
    if not folder.is_dir():
        raise ImageDataError(f"{folder}: no such folder; an imagefolder dataset needs {root}/{{train,test}}/<class>/")
    return _load_image_folder(folder, f"imagefolder {root.name}", progress)


# --- MNIST and Fashion-MNIST -------------------------------------------------------------------

_TORCHVISION_CLASSES = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}


def _load_mnist_like(dataset: str, split: str, root: Path, download: bool, progress: bool) -> ImageData:
    cls = _TORCHVISION_CLASSES[dataset]
    local = _find_mnist_files(cls, root)
    if local is None and not download:
        names = ", ".join(name for name, _ in cls.resources)
        raise ImageDataError(
            f"{dataset} not found under {root}: put {names} in {root / dataset}/ "
            f"(or torchvision's {root / cls.__name__ / 'raw'}/), or pass --download (online)."
        )
    if local is None:  # torchvision fetches into <root>/<Class>/raw and checks the md5s itself
        torchvision_root = root
        cls(str(root), train=True, download=True)
        local = _find_mnist_files(cls, root)
    else:
        torchvision_root = _stage_for_torchvision(cls, local, dataset)
    train = split == "train"
    fingerprint = _fingerprint([local[name] for name, _ in cls.resources])
    cache_file = cache_dir() / f"{dataset}-{split}-{fingerprint}.pt"

    def decode() -> ImageData:
        raw = cls(str(torchvision_root), train=train, download=False)
        files = [name for name, _ in cls.resources if name.startswith("train" if train else "t10k")]
        return ImageData(
            images=raw.data.unsqueeze(1).contiguous(),  # (N, 1, 28, 28) uint8
            labels=raw.targets.to(torch.int64),
            classes=tuple(FASHION_LABELS if dataset == "fashion-mnist" else (str(i) for i in range(10))),
            source=dataset,
            provenance={
                "dataset": dataset,
                "split": split,
                "source": f"torchvision {cls.__name__}, original idx files",
                "examples": len(raw.targets),
                "files": {name: sha256_file(local[name]) for name in files},
            },
        )

    return _cached(cache_file, decode)


def _find_mnist_files(cls, root: Path) -> dict[str, Path] | None:
    """The four original .gz files, in the shared layout or torchvision's, md5-checked."""
    folder_name = "mnist" if cls is datasets.MNIST else "fashion-mnist"
    for folder in (root / folder_name, root / cls.__name__ / "raw", root):
        paths = {name: folder / name for name, _ in cls.resources}
        if not all(path.is_file() for path in paths.values()):
            continue
        for name, md5 in cls.resources:
            if not torchvision.datasets.utils.check_integrity(str(paths[name]), md5):
                raise ImageDataError(
                    f"{paths[name]}: md5 differs from the published {md5}; the file is corrupt or "
                    "not the original. Replace it (or delete it and pass --download)."
                )
        return paths
    return None


def _stage_for_torchvision(cls, local: dict[str, Path], dataset: str) -> Path:
    """A root in torchvision's layout (<root>/<Class>/raw/*) built from the local files.

    The data directory may be read-only (a shared copy), so the uncompressed idx files that
    torchvision reads are written into the cache instead, once.
    """
    fingerprint = _fingerprint(list(local.values()))
    root = cache_dir() / f"torchvision-{dataset}-{fingerprint}"
    raw = root / cls.__name__ / "raw"
    marker = raw / ".complete"
    if not marker.exists():
        raw.mkdir(parents=True, exist_ok=True)
        for name, path in local.items():
            target = raw / name
            if not target.exists():
                shutil.copyfile(path, target)
            torchvision.datasets.utils.extract_archive(str(target), str(raw))
        marker.touch()
    return root


# --- CIFAR-10 and ImageFolder ------------------------------------------------------------------


def _load_cifar10_batches(split: str, root: Path, download: bool) -> ImageData:
    try:
        raw = datasets.CIFAR10(str(root), train=split == "train", download=download)
    except RuntimeError as error:  # torchvision: "Dataset not found or corrupted"
        raise ImageDataError(f"{root / 'cifar-10-batches-py'}: {error}") from error
    return ImageData(
        images=torch.from_numpy(np.ascontiguousarray(raw.data.transpose(0, 3, 1, 2))),
        labels=torch.as_tensor(raw.targets, dtype=torch.int64),
        classes=tuple(raw.classes),
        source="cifar10",
        provenance={"dataset": "cifar10", "split": split, "source": "torchvision CIFAR10, original batches",
                    "examples": len(raw.targets)},
    )


def _load_image_folder(folder: Path, source: str, progress: bool) -> ImageData:
    """Every image under folder/<class>/, decoded once by torchvision.io into one uint8 tensor."""
    try:
        listing = datasets.ImageFolder(str(folder), loader=str)  # paths only: decoding happens below
    except (FileNotFoundError, RuntimeError) as error:
        raise ImageDataError(f"{folder}: {error}") from error
    paths = [Path(path) for path, _ in listing.samples]
    fingerprint = _fingerprint(paths)
    cache_file = cache_dir() / f"imagefolder-{hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:12]}-{fingerprint}.pt"

    def decode() -> ImageData:
        images, digest, shape = [], hashlib.sha256(), None
        for path in tqdm(paths, desc=f"decoding {folder.name}", unit="img", disable=not progress, mininterval=2):
            data = path.read_bytes()
            digest.update(path.relative_to(folder).as_posix().encode() + b"\0" + hashlib.sha256(data).digest())
            try:
                image = torchvision.io.decode_image(
                    torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=torchvision.io.ImageReadMode.RGB
                )
            except RuntimeError as error:
                raise ImageDataError(f"{path}: cannot be decoded as an image ({error})") from error
            if shape is None:
                shape = tuple(image.shape)
            elif tuple(image.shape) != shape:
                raise ImageDataError(
                    f"{path}: {tuple(image.shape[1:])} pixels where the first image had {shape[1:]}; "
                    "all images of a dataset must share one size"
                )
            images.append(image)
        if not images:
            raise ImageDataError(f"{folder}: no images found")
        return ImageData(
            images=torch.stack(images),
            labels=torch.as_tensor(listing.targets, dtype=torch.int64),
            classes=tuple(listing.classes),
            source=source,
            provenance={
                "dataset": source,
                "folder": folder.name,
                "source": "torchvision ImageFolder, decoded with torchvision.io",
                "examples": len(images),
                "per_class": {name: int((np.asarray(listing.targets) == i).sum()) for i, name in enumerate(listing.classes)},
                "content_sha256": digest.hexdigest(),
            },
        )

    return _cached(cache_file, decode)


# --- the decode-once cache ---------------------------------------------------------------------


def _fingerprint(paths: list[Path]) -> str:
    """Changes when any file is added, removed, resized or touched: the cache is then rebuilt."""
    digest = hashlib.sha256(f"format {CACHE_FORMAT}".encode())
    for path in sorted(paths):
        stat = path.stat()
        digest.update(f"{path.resolve()}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def _cached(cache_file: Path, decode) -> ImageData:
    if cache_file.exists():
        try:
            stored = torch.load(cache_file, weights_only=False)
            return ImageData(**stored)
        except Exception:  # a damaged cache is rebuilt, never trusted
            cache_file.unlink(missing_ok=True)
    data = decode()
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    temporary = cache_file.with_suffix(f".tmp{os.getpid()}")
    torch.save(data.__dict__, temporary)
    os.replace(temporary, cache_file)
    return data
