"""The metrics table: our colorizer against the "no colour" baseline on a folder of photos.

Photos are centre-cropped square and resized to `size`, as the hold-out
protocol does; the colorizer sees them as a user's upload (colour input is
desaturated by the colorizer itself).
"""
import numpy as np
import torch
from PIL import Image, ImageOps

from . import color, metrics
from .data import list_images
from .inference import Colorizer, to_rgb_array


def load_eval_images(folder, size: int, limit: int | None = None) -> list[Image.Image]:
    paths = list_images(folder)
    if limit and limit < len(paths):
        # Evenly spread: a folder sorted by name is sorted by source, and the first N would be one source.
        paths = [paths[i * len(paths) // limit] for i in range(limit)]
    images = []
    for path in paths:
        with Image.open(path) as im:
            images.append(ImageOps.fit(ImageOps.exif_transpose(im).convert("RGB"), (size, size),
                                       Image.Resampling.BICUBIC))
    return images


def _tensor(images):
    return torch.from_numpy(np.stack([to_rgb_array(im) for im in images])).permute(0, 3, 1, 2)


def evaluate(colorizer: Colorizer, images: list[Image.Image], batch_size: int = 16) -> dict[str, dict]:
    """Set-level metrics for the colorizer and for the grey rendering of the same photos."""
    ours: dict[str, list] = {}
    grey: dict[str, list] = {}
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        true = _tensor(chunk)
        pred = _tensor(colorizer.colorize_batch(chunk))
        L, _ = color.rgb_to_lab(true)
        for store, out in ((ours, pred), (grey, color.grey_rgb(L))):
            for k, v in metrics.image_metrics(out, true).items():
                store.setdefault(k, []).append(v)
    return {"ours": metrics.summarize(ours), "no colour": metrics.summarize(grey)}


def format_table(rows: dict[str, dict]) -> str:
    """A Markdown table, one row per model, with the truth's colourfulness for reference."""
    head = "| model | PSNR | SSIM | dE2000 | AuC | CF (dCF) |"
    lines = [head, "|---|---|---|---|---|---|"]
    for name, m in rows.items():
        lines.append(f"| {name} | {m['psnr']:.2f} | {m['ssim']:.3f} | {m['de2000']:.2f} | {m['auc']:.3f} "
                      f"| {m['cf']:.1f} ({m['dcf']:.1f}) |")
    truth_cf = next(iter(rows.values()))["cf_true"]
    lines.append(f"\nTruth's colourfulness: {truth_cf:.1f}")
    return "\n".join(lines)


def sample_grid(colorizer: Colorizer, images: list[Image.Image], count: int = 8) -> Image.Image:
    """One photo per row, spread over the set: grey | ours | truth."""
    picked = [images[i * len(images) // count] for i in range(min(count, len(images)))]
    rows = []
    for true, ours in zip(picked, colorizer.colorize_batch(picked)):
        rows.append(np.concatenate([np.asarray(true.convert("L").convert("RGB")), np.asarray(ours), np.asarray(true)], 1))
    return Image.fromarray(np.concatenate(rows, 0))
