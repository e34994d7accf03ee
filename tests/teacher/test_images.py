"""teacher._images: ImageFolder / MNIST / CIFAR-10 loading, the decode-once cache, its errors, and
the image augmentation of teacher._training."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pytest
import torch
import torchvision

import teacher
from teacher import ImageDataError, load_image_dataset
from teacher._training import AUGMENTATIONS, TrainConfig, augment_images, batch_transform, to_float

MNIST_FILES = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch) -> Path:
    """Every test decodes into its own cache, never into ~/.cache/edgekit."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("EDGEKIT_CACHE", str(cache))
    return cache


# --- ImageFolder written by the test -----------------------------------------------------------


def random_image(seed: int, size: tuple[int, int] = (6, 5)) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, *size), dtype=torch.uint8, generator=generator)


def write_folder(root: Path, layout: dict[str, dict[str, int]], size: tuple[int, int] = (6, 5)) -> dict:
    """root/<split>/<class>/<k>.png with seeded random RGB pixels; returns {(split, class, k): pixels}."""
    written, seed = {}, 0
    for split, per_class in layout.items():
        for name, count in per_class.items():
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for k in range(count):
                pixels = random_image(seed, size)
                torchvision.io.write_png(pixels, str(folder / f"{k:03d}.png"))
                written[(split, name, k)] = pixels
                seed += 1
    return written


@pytest.fixture
def folder_dataset(tmp_path) -> tuple[Path, dict]:
    root = tmp_path / "shapes"
    written = write_folder(root, {"train": {"cat": 3, "ant": 2, "dog": 4}, "test": {"cat": 1, "ant": 2, "dog": 1}})
    return root, written


def cache_files(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.pt")) if cache.is_dir() else []


def test_image_folder_loads_what_was_written(folder_dataset, private_cache):
    root, written = folder_dataset
    train = load_image_dataset("imagefolder", "train", root, progress=False)
    assert train.classes == ("ant", "cat", "dog")  # ImageFolder sorts class names
    assert train.images.dtype == torch.uint8 and train.labels.dtype == torch.int64
    assert train.images.shape == (9, 3, 6, 5) and train.shape == (3, 6, 5) and len(train) == 9
    assert train.labels.tolist() == [0, 0, 1, 1, 1, 2, 2, 2, 2]
    expected = [written[("train", name, k)] for name, count in (("ant", 2), ("cat", 3), ("dog", 4))
                for k in range(count)]
    assert torch.equal(train.images, torch.stack(expected))  # PNG is lossless: the very pixels
    assert train.source == f"imagefolder {root.name}"
    assert train.provenance["examples"] == 9
    assert train.provenance["per_class"] == {"ant": 2, "cat": 3, "dog": 4}
    assert len(train.provenance["content_sha256"]) == 64

    test = load_image_dataset("imagefolder", "test", root, progress=False)
    assert test.classes == train.classes
    assert test.labels.tolist() == [0, 0, 1, 2]
    assert torch.equal(test.images[2], written[("test", "cat", 0)])
    assert test.provenance["content_sha256"] != train.provenance["content_sha256"]
    assert len(cache_files(private_cache)) == 2  # one decoded tensor per split


def test_val_folder_stands_in_for_test(tmp_path):
    root = tmp_path / "data"
    written = write_folder(root, {"train": {"a": 1, "b": 1}, "val": {"a": 1, "b": 2}})
    test = load_image_dataset("imagefolder", "test", root, progress=False)
    assert test.labels.tolist() == [0, 1, 1]
    assert torch.equal(test.images[0], written[("val", "a", 0)])


def test_second_load_comes_from_the_cache(folder_dataset, private_cache, monkeypatch):
    root, written = folder_dataset
    first = load_image_dataset("imagefolder", "train", root, progress=False)
    [cache_file] = cache_files(private_cache)

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded an image although the cache is fresh")

    monkeypatch.setattr(torchvision.io, "decode_image", no_decoding)
    second = load_image_dataset("imagefolder", "train", root, progress=False)
    assert torch.equal(second.images, first.images) and torch.equal(second.labels, first.labels)
    assert second.classes == first.classes and second.provenance == first.provenance
    assert cache_files(private_cache) == [cache_file]


def test_adding_an_image_rebuilds_the_cache(folder_dataset, private_cache):
    root, _ = folder_dataset
    first = load_image_dataset("imagefolder", "train", root, progress=False)
    [old_cache] = cache_files(private_cache)
    new_pixels = random_image(seed=999)
    torchvision.io.write_png(new_pixels, str(root / "train" / "ant" / "002.png"))
    second = load_image_dataset("imagefolder", "train", root, progress=False)
    assert len(second) == len(first) + 1
    assert second.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 2]
    assert torch.equal(second.images[2], new_pixels)
    assert second.provenance["per_class"]["ant"] == 3
    assert old_cache in cache_files(private_cache) and len(cache_files(private_cache)) == 2


def test_rewriting_an_image_rebuilds_the_cache(folder_dataset):
    root, written = folder_dataset
    path = root / "train" / "cat" / "000.png"
    load_image_dataset("imagefolder", "train", root, progress=False)
    replacement = 255 - written[("train", "cat", 0)]
    torchvision.io.write_png(replacement, str(path))
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a later save, whatever the clock
    again = load_image_dataset("imagefolder", "train", root, progress=False)
    assert torch.equal(again.images[2], replacement)


def test_a_damaged_cache_file_is_rebuilt(folder_dataset, private_cache):
    root, _ = folder_dataset
    first = load_image_dataset("imagefolder", "train", root, progress=False)
    [cache_file] = cache_files(private_cache)
    cache_file.write_bytes(b"not a torch file")
    again = load_image_dataset("imagefolder", "train", root, progress=False)
    assert torch.equal(again.images, first.images)
    assert torch.load(cache_file, weights_only=False)["labels"].tolist() == first.labels.tolist()


def test_a_file_that_is_not_an_image_is_named(folder_dataset):
    root, _ = folder_dataset
    bad = root / "train" / "dog" / "broken.png"
    bad.write_bytes(b"this is text, not a PNG")
    with pytest.raises(ImageDataError, match="broken.png") as error:
        load_image_dataset("imagefolder", "train", root, progress=False)
    assert str(bad) in str(error.value)
    assert "decoded" in str(error.value)


def test_images_of_different_sizes_are_refused(folder_dataset):
    root, _ = folder_dataset
    odd = root / "train" / "dog" / "big.png"
    torchvision.io.write_png(random_image(seed=7, size=(9, 9)), str(odd))
    with pytest.raises(ImageDataError, match="big.png") as error:
        load_image_dataset("imagefolder", "train", root, progress=False)
    assert "size" in str(error.value) and "(9, 9)" in str(error.value)


def test_a_missing_folder_is_an_image_data_error(tmp_path, private_cache):
    missing = tmp_path / "nothing-here"
    with pytest.raises(ImageDataError, match="no such folder") as error:
        load_image_dataset("imagefolder", "train", missing, progress=False)
    assert str(missing / "train") in str(error.value)
    assert not missing.exists() and cache_files(private_cache) == []


def test_a_class_folder_without_images_is_an_image_data_error(tmp_path):
    root = tmp_path / "data"
    write_folder(root, {"train": {"a": 1}})
    (root / "train" / "empty").mkdir()
    with pytest.raises(ImageDataError, match="empty"):
        load_image_dataset("imagefolder", "train", root, progress=False)


def test_unknown_dataset_and_split_are_value_errors(tmp_path):
    with pytest.raises(ValueError, match="imagefolder"):
        load_image_dataset("svhn", "train", tmp_path)
    with pytest.raises(ValueError, match="'train' or 'test'"):
        load_image_dataset("imagefolder", "valid", tmp_path)


# --- MNIST from the shared data ----------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_dir(data_root: Path) -> Path:
    folder = data_root / "mnist"
    missing = [name for name in MNIST_FILES if not (folder / name).is_file()]
    if missing:
        pytest.skip(f"{folder} lacks {', '.join(missing)}: the MNIST tests need the four original .gz files")
    return folder


def test_mnist_from_the_shared_data(mnist_dir, private_cache):
    train = load_image_dataset("mnist", "train", mnist_dir.parent, progress=False)
    test = load_image_dataset("mnist", "test", mnist_dir.parent, progress=False)
    assert len(train) == 60000 and len(test) == 10000
    for split in (train, test):
        assert split.images.dtype == torch.uint8 and split.images.shape[1:] == (1, 28, 28)
        assert split.labels.dtype == torch.int64
        assert split.classes == tuple(str(i) for i in range(10))
        assert split.source == "mnist"
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert test.labels[:5].tolist() == [7, 2, 1, 0, 4]
    assert sorted(torch.bincount(train.labels).tolist())[0] > 5000  # every digit is there
    assert 33.0 < train.images.float().mean().item() < 34.0  # mean pixel 0.1307 * 255 = 33.3
    assert train.provenance["examples"] == 60000
    assert set(train.provenance["files"]) == {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"}
    # The (read-only) shared folder is never written: the idx files are staged in the cache.
    assert any(path.name.startswith("torchvision-mnist-") for path in private_cache.iterdir())
    assert sorted(path.name for path in mnist_dir.iterdir()) == sorted(MNIST_FILES)


def test_a_changed_byte_fails_the_md5_check(mnist_dir, tmp_path):
    copy = tmp_path / "data" / "mnist"
    copy.mkdir(parents=True)
    for name in MNIST_FILES:
        shutil.copyfile(mnist_dir / name, copy / name)
    damaged = copy / "t10k-labels-idx1-ubyte.gz"
    content = bytearray(damaged.read_bytes())
    content[len(content) // 2] ^= 0x01
    damaged.write_bytes(bytes(content))
    for split in ("train", "test"):  # all four files are checked, whichever split is asked for
        with pytest.raises(ImageDataError, match="md5") as error:
            load_image_dataset("mnist", split, copy.parent, progress=False)
        assert str(damaged) in str(error.value)


def test_mnist_in_torchvision_layout_is_found(mnist_dir, tmp_path):
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        shutil.copyfile(mnist_dir / name, raw / name)
    (raw / "train-images-idx3-ubyte.gz").symlink_to(mnist_dir / "train-images-idx3-ubyte.gz")
    test = load_image_dataset("mnist", "test", tmp_path / "data", progress=False)
    assert len(test) == 10000 and test.labels[:3].tolist() == [7, 2, 1]


def test_missing_mnist_without_download_says_where_to_put_it(tmp_path, private_cache):
    root = tmp_path / "empty"
    root.mkdir()
    with pytest.raises(ImageDataError) as error:
        load_image_dataset("mnist", "train", root, progress=False)
    message = str(error.value)
    assert str(root / "mnist") in message and "--download" in message
    for name in MNIST_FILES:
        assert name in message
    assert list(root.iterdir()) == []  # nothing fetched, nothing created


def test_missing_fashion_mnist_names_its_own_folder(tmp_path):
    with pytest.raises(ImageDataError) as error:
        load_image_dataset("fashion-mnist", "test", tmp_path, progress=False)
    assert str(tmp_path / "fashion-mnist") in str(error.value)


# --- CIFAR-10 --------------------------------------------------------------------------------------


def test_cifar10_jpeg_copy_is_labelled_as_such(data_root):
    if not (data_root / "cifar-10-jpeg" / "test").is_dir():
        pytest.skip(f"{data_root / 'cifar-10-jpeg'} absent: no CIFAR-10 JPEG copy to read")
    if (data_root / "cifar-10-batches-py").is_dir():
        pytest.skip("the original batches are present, so the JPEG copy is not the source read")
    test = load_image_dataset("cifar10", "test", data_root, progress=False)
    assert "JPEG copy" in test.source
    assert test.images.shape == (10000, 3, 32, 32) and test.images.dtype == torch.uint8
    assert test.classes == ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
                            "truck")
    assert torch.bincount(test.labels).tolist() == [1000] * 10


def test_missing_cifar10_names_both_layouts(tmp_path):
    with pytest.raises(ImageDataError) as error:
        load_image_dataset("cifar10", "train", tmp_path, progress=False)
    message = str(error.value)
    assert "cifar-10-batches-py" in message and "cifar-10-jpeg" in message and "--download" in message


# --- augmentation --------------------------------------------------------------------------------


def known_images(batch: int = 16, channels: int = 2, size: int = 6) -> torch.Tensor:
    """Distinct positive values everywhere, so every window of the zero-padded image is unique."""
    return (torch.arange(batch * channels * size * size, dtype=torch.float32) + 1).view(batch, channels, size, size)


def test_no_padding_no_flip_is_the_identity():
    images = known_images()
    out = augment_images(images, 0, False, torch.Generator().manual_seed(0))
    assert torch.equal(out, images)


@pytest.mark.parametrize("padding", [1, 2, 4])
def test_crops_are_windows_of_the_zero_padded_image(padding):
    images = known_images(batch=32, size=6)
    out = augment_images(images, padding, False, torch.Generator().manual_seed(0))
    assert out.shape == images.shape
    padded = torch.nn.functional.pad(images, (padding,) * 4)
    offsets = set()
    for i in range(len(images)):
        matches = [
            (dy, dx)
            for dy in range(2 * padding + 1)
            for dx in range(2 * padding + 1)
            if torch.equal(out[i], padded[i, :, dy : dy + 6, dx : dx + 6])  # both channels, one offset
        ]
        assert len(matches) == 1, f"image {i} is not a window of its padded self"
        offsets.add(matches[0])
    assert len(offsets) > 3  # the offsets are drawn per image, not once per batch


def test_shifted_crop_moves_the_content():
    image = torch.zeros(1, 1, 5, 5)
    image[0, 0, 2, 2] = 1.0  # one bright pixel in the centre
    positions = set()
    for seed in range(40):
        out = augment_images(image, 2, False, torch.Generator().manual_seed(seed))
        nonzero = out[0, 0].nonzero().tolist()
        assert len(nonzero) == 1 and out.sum().item() == 1.0  # moved within reach: never lost or doubled
        positions.add(tuple(nonzero[0]))
    assert len(positions) > 5  # of the 25 shifts by -2..2 in each direction


def test_flip_mirrors_some_images_and_keeps_the_rest():
    images = known_images(batch=64)
    out = augment_images(images, 0, True, torch.Generator().manual_seed(0))
    flipped = [torch.equal(out[i], images[i].flip(-1)) for i in range(len(images))]
    kept = [torch.equal(out[i], images[i]) for i in range(len(images))]
    assert all(f != k for f, k in zip(flipped, kept))  # each image exactly one of the two
    assert 10 < sum(flipped) < 54
    first = flipped.index(True)
    assert torch.equal(out[first, 0, 0], images[first, 0, 0].flip(0))  # row order reversed
    assert torch.equal(out[first, :, :, 0], images[first, :, :, -1])  # first column = last column


def test_augmentation_is_deterministic_for_a_seed():
    images = known_images(batch=32)
    for padding, flip in AUGMENTATIONS.values():
        a = augment_images(images, padding, flip, torch.Generator().manual_seed(5))
        b = augment_images(images, padding, flip, torch.Generator().manual_seed(5))
        assert torch.equal(a, b)
    a = augment_images(images, 4, True, torch.Generator().manual_seed(5))
    c = augment_images(images, 4, True, torch.Generator().manual_seed(6))
    assert not torch.equal(a, c)


def test_batch_transform_converts_pixels_and_refuses_unknown_augmentations():
    pixels = torch.tensor([0, 51, 255], dtype=torch.uint8).view(1, 1, 1, 3)
    transform = batch_transform(TrainConfig(dataset="imagefolder", augment="none"))
    out = transform(pixels, torch.Generator().manual_seed(0))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, torch.tensor([0.0, 0.2, 1.0]).view(1, 1, 1, 3))
    torch.testing.assert_close(to_float(pixels), out)
    with pytest.raises(ValueError, match="crop-flip"):
        batch_transform(TrainConfig(dataset="imagefolder", augment="rotate"))
    assert AUGMENTATIONS["shift"] == (2, False)  # digits are never mirrored
    assert AUGMENTATIONS["crop-flip"] == (4, True)


def test_image_datasets_are_known_to_the_cli_list():
    assert set(teacher.IMAGE_DATASETS) == {"mnist", "fashion-mnist", "cifar10", "imagefolder"}
    assert set(teacher.DATASETS) == {"apnea-ecg", *teacher.IMAGE_DATASETS}
