"""Training data: any folder tree of colour photos, decoded once into a cache.

Two CPU cores can't afford JPEG decoding per step, so every photo is decoded
once, resized so its shorter side is `cache_size`, centre-cropped square, and
kept as uint8 RGB in a numpy memmap. Steps then only crop, flip and convert
the batch to L*a*b* (a batched kornia op, cheap next to the network).
Several folders pool into one more memmap, so that every training process maps
the same file instead of holding its own copy.

`pack_photos` writes a random subset of the photos as small JPEGs, to carry
to a machine with a GPU.
"""
import hashlib
import io
import uuid
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
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
    _write_npy(path, kept, (len(kept), size, size, 3))
    print(f"cached {len(kept)} colour photos of {len(files)} ({len(files) - len(kept)} grey or unreadable skipped)")
    return np.load(path, mmap_mode="r")


def _write_npy(path: Path, rows, shape):
    """Write uint8 rows as a .npy file that appears whole or not at all. The temporary name is
    unique, so processes on machines sharing the cache folder can't write into each other's."""
    tmp = path.with_suffix(f".{uuid.uuid4().hex[:8]}.tmp.npy")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=shape)
    for i, rgb in enumerate(rows):
        out[i] = rgb
    out.flush()
    del out
    tmp.replace(path)


def pooled_cache(roots, size: int, cache_dir) -> np.ndarray:
    """The folders' colour photos, in order, as one (N, size, size, 3) uint8 memmap: a folder's
    own cache, or for several a file pooled from theirs (built on first use)."""
    caches = [build_cache(root, size, cache_dir) for root in roots]
    if len(caches) == 1:
        return caches[0]
    key = hashlib.sha1("|".join(Path(c.filename).name for c in caches).encode())
    path = Path(cache_dir) / f"pool-{size}-{key.hexdigest()[:12]}.npy"
    if not path.exists():
        _write_npy(path, (rgb for c in caches for rgb in c), (sum(len(c) for c in caches), size, size, 3))
    return np.load(path, mmap_mode="r")


def random_batches(photos: np.ndarray, batch_size: int, crop: int, rng: torch.Generator,
                   rank: int = 0, world: int = 1, min_side: int | None = None):
    """One epoch of (B, 3, crop, crop) float RGB batches: shuffled, randomly cropped and flipped.

    With `min_side`, each crop's side is drawn between `min_side` and the whole cached photo and
    resized to `crop`: the same scenes at other scales (zoomed in, or the whole photo as a
    colorizer sees it), which the fixed crop never shows.

    With `world` processes, `batch_size` is the global batch and each yields this `rank`'s
    share, B / world photos. Every rank draws the same permutation, crops and flips (its `rng`
    is in the same state as the others') and keeps every `world`-th photo from `rank` on: over
    an epoch, DistributedSampler's shard (order[rank::world], reshuffled every epoch), and
    together the ranks see exactly the batches one process would. A rank reads only its photos.
    """
    n, size = photos.shape[0], photos.shape[1]
    order = torch.randperm(n, generator=rng)
    for start in range(0, n - batch_size + 1, batch_size):
        idx = order[start:start + batch_size]
        if min_side:
            sides = torch.randint(min_side, size + 1, (len(idx),), generator=rng)
        else:
            sides = torch.full((len(idx),), crop)
        offsets = (torch.rand(len(idx), 2, generator=rng) * (size - sides + 1)[:, None]).long()
        flips = torch.rand(len(idx), generator=rng) < 0.5
        idx, sides, offsets, flips = idx[rank::world], sides[rank::world], offsets[rank::world], flips[rank::world]
        batch = torch.empty((len(idx), 3, crop, crop))
        for j, (i, side, (y, x), flip) in enumerate(zip(idx.tolist(), sides.tolist(), offsets.tolist(), flips.tolist())):
            tile = torch.from_numpy(np.array(photos[i, y:y + side, x:x + side])).permute(2, 0, 1).float()
            if side != crop:
                tile = F.interpolate(tile[None], size=(crop, crop), mode="bilinear", antialias=True,
                                     align_corners=False)[0].clamp_(0, 255)
            batch[j] = tile.flip(-1) if flip else tile
        yield batch.div_(255)


def centre_batches(photos: np.ndarray, batch_size: int, crop: int):
    """Deterministic centre crops, for validation."""
    off = (photos.shape[1] - crop) // 2
    for start in range(0, photos.shape[0], batch_size):
        tile = np.ascontiguousarray(photos[start:start + batch_size, off:off + crop, off:off + crop])
        yield torch.from_numpy(tile).permute(0, 3, 1, 2).float().div_(255)


def pack_photos(roots, out, size: int = 128, max_bytes: int = 55 << 20, quality: int = 90, seed: int = 0) -> list[Path]:
    """A random subset of the folders' colour photos as size x size JPEGs (the training cache's
    resize and centre crop) in `out`, at most `max_bytes` together: a training set small enough
    to carry to a GPU machine. Drawn at random from all folders pooled, so every source is
    represented in proportion; stops before the photo that would overflow the budget."""
    out = Path(out)
    if out.is_dir() and list_images(out):
        raise ValueError(f"{out} already holds images; pack into an empty or new folder")
    files = [f for root in roots for f in list_images(root)]
    if not files:
        raise ValueError(f"no images found under {', '.join(map(str, roots))}")
    out.mkdir(parents=True, exist_ok=True)
    written, total = [], 0
    for i in tqdm(np.random.default_rng(seed).permutation(len(files)), desc=f"packing into {out}", unit="img"):
        try:
            rgb = load_square(files[i], size)
        except OSError as exc:
            tqdm.write(f"skipping unreadable {files[i]}: {exc}")
            continue
        if is_grey(rgb):
            continue
        jpeg = io.BytesIO()
        Image.fromarray(rgb).save(jpeg, "JPEG", quality=quality)
        if total + jpeg.tell() > max_bytes:
            break
        path = out / f"{len(written):06d}.jpg"
        path.write_bytes(jpeg.getvalue())
        written.append(path)
        total += jpeg.tell()
    return written
