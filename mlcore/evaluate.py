"""The metrics table: our colorizer against the "no colour" baseline on a folder of photos.

Photos are centre-cropped square and resized to `size`, as the hold-out
protocol does; the colorizer sees them as a user's upload (colour input is
desaturated by the colorizer itself).
"""
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from . import color, metrics
from .data import list_images
from .inference import Colorizer, to_rgb_array


def source_of(path) -> str:
    """The source prefix of a file named `<source>_<n>.jpg`, as the dev set names its photos."""
    stem = Path(path).stem
    return stem.rsplit("_", 1)[0] if "_" in stem else stem


def load_eval_images(folder, size: int, limit: int | None = None) -> tuple[list[Image.Image], list[str]]:
    """The photos, centre-cropped to size x size, and the source prefix of each."""
    paths = list_images(folder)
    if limit and limit < len(paths):
        # Evenly spread: a folder sorted by name is sorted by source, and the first N would be one source.
        paths = [paths[i * len(paths) // limit] for i in range(limit)]
    images = []
    for path in paths:
        with Image.open(path) as im:
            images.append(ImageOps.fit(ImageOps.exif_transpose(im).convert("RGB"), (size, size),
                                       Image.Resampling.BICUBIC))
    return images, [source_of(p) for p in paths]


def _tensor(images):
    return torch.from_numpy(np.stack([to_rgb_array(im) for im in images])).permute(0, 3, 1, 2)


def evaluate(colorizer: Colorizer, images: list[Image.Image], sources: list[str] | None = None,
             batch_size: int = 16) -> dict[str, dict]:
    """Set-level metrics for the colorizer and for the grey rendering of the same photos, and the
    same per source prefix under "by source", so that a regression on one kind of photo cannot
    hide in the mean."""
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
    ours = {k: torch.cat(v) for k, v in ours.items()}
    grey = {k: torch.cat(v) for k, v in grey.items()}
    by_source = {}
    for source in sorted(set(sources or [])):
        picked = torch.tensor([s == source for s in sources])
        by_source[source] = {name: metrics.summarize({k: [v[picked]] for k, v in store.items()})
                             for name, store in (("ours", ours), ("no colour", grey))}
        by_source[source]["images"] = int(picked.sum())
    return {"ours": metrics.summarize({k: [v] for k, v in ours.items()}),
            "no colour": metrics.summarize({k: [v] for k, v in grey.items()}), "by source": by_source}


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


def format_sources(by_source: dict[str, dict]) -> str:
    """Per source prefix, ours against no colour: the bar asks that no source loses to grey."""
    lines = ["| source | photos | PSNR ours / grey | dE2000 ours / grey | AuC ours / grey | CF ours / truth |",
             "|---|---|---|---|---|---|"]
    for source, r in by_source.items():
        o, g = r["ours"], r["no colour"]
        lines.append(f"| {source} | {r['images']} | {o['psnr']:.2f} / {g['psnr']:.2f} | {o['de2000']:.2f} / "
                     f"{g['de2000']:.2f} | {o['auc']:.3f} / {g['auc']:.3f} | {o['cf']:.1f} / {o['cf_true']:.1f} |")
    return "\n".join(lines)


def sample_grid(colorizer: Colorizer, images: list[Image.Image], count: int = 8) -> Image.Image:
    """One photo per row, spread over the set: grey | ours | truth."""
    picked = [images[i * len(images) // count] for i in range(min(count, len(images)))]
    rows = []
    for true, ours in zip(picked, colorizer.colorize_batch(picked)):
        rows.append(np.concatenate([np.asarray(true.convert("L").convert("RGB")), np.asarray(ours), np.asarray(true)], 1))
    return Image.fromarray(np.concatenate(rows, 0))
