"""Training data: any folder tree of colour photos, decoded once into a cache.

Two CPU cores can't afford JPEG decoding per step, so every photo is decoded
once, resized so its shorter side is `cache_size`, centre-cropped square, and
kept as uint8 RGB in a numpy memmap. Steps then only crop, flip and convert
the batch to L*a*b* (a batched kornia op, cheap next to the network).
"""
import hashlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from tqdm import tqdm

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff"}
GREY_TOLERANCE = 4.0  # mean |R-G| + |G-B| below this (0-255) is a grey photo: nothing to learn from


def list_images(root) -> list[Path]:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"image folder not found: {root}")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def load_square(path, size: int) -> np.ndarray:
    """An RGB photo resized (shorter side = size) and centre-cropped to size x size, uint8."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        return np.asarray(ImageOps.fit(im, (size, size), Image.Resampling.BICUBIC))


def is_grey(rgb: np.ndarray) -> bool:
    x = rgb.astype(np.int16)
    return float(np.abs(x[..., 0] - x[..., 1]).mean() + np.abs(x[..., 1] - x[..., 2]).mean()) < GREY_TOLERANCE


def build_cache(root, size: int, cache_dir) -> np.ndarray:
    """The folder's colour photos as a (N, size, size, 3) uint8 memmap, built on first use."""
    files = list_images(root)
    if not files:
        raise ValueError(f"no images found under {root}")
    key = hashlib.sha1(f"{Path(root).resolve()}|{size}".encode())
    for f in files:
        key.update(f"{f.name}|{f.stat().st_size}|{f.stat().st_mtime_ns}".encode())
    path = Path(cache_dir) / f"photos-{size}-{key.hexdigest()[:12]}.npy"
    if path.exists():
        return np.load(path, mmap_mode="r")
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = []
    for f in tqdm(files, desc=f"caching {root}", unit="img"):
        try:
            rgb = load_square(f, size)
        except OSError as exc:
            tqdm.write(f"skipping unreadable {f}: {exc}")
            continue
        if not is_grey(rgb):
            kept.append(rgb)
    if not kept:
        raise ValueError(f"no colour images under {root}")
    tmp = path.with_suffix(".tmp.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(kept), size, size, 3))
    for i, rgb in enumerate(kept):
        out[i] = rgb
    out.flush()
    del out
    tmp.replace(path)
    print(f"cached {len(kept)} colour photos of {len(files)} ({len(files) - len(kept)} grey or unreadable skipped)")
    return np.load(path, mmap_mode="r")


def random_batches(photos: np.ndarray, batch_size: int, crop: int, rng: torch.Generator):
    """One epoch of (B, 3, crop, crop) float RGB batches: shuffled, randomly cropped and flipped."""
    n, size = photos.shape[0], photos.shape[1]
    order = torch.randperm(n, generator=rng)
    for start in range(0, n - batch_size + 1, batch_size):
        idx = order[start:start + batch_size]
        offsets = torch.randint(0, size - crop + 1, (len(idx), 2), generator=rng)
        flips = torch.rand(len(idx), generator=rng) < 0.5
        batch = np.empty((len(idx), crop, crop, 3), dtype=np.uint8)
        for j, (i, (y, x), flip) in enumerate(zip(idx.tolist(), offsets.tolist(), flips.tolist())):
            tile = photos[i, y:y + crop, x:x + crop]
            batch[j] = tile[:, ::-1] if flip else tile
        yield torch.from_numpy(batch).permute(0, 3, 1, 2).float().div_(255)


def centre_batches(photos: np.ndarray, batch_size: int, crop: int):
    """Deterministic centre crops, for validation."""
    off = (photos.shape[1] - crop) // 2
    for start in range(0, photos.shape[0], batch_size):
        tile = np.ascontiguousarray(photos[start:start + batch_size, off:off + crop, off:off + crop])
        yield torch.from_numpy(tile).permute(0, 3, 1, 2).float().div_(255)
