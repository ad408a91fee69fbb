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
from .degrade import degrade_lightness
from .inference import Colorizer, to_rgb_array


def source_of(path) -> str:
    """The source prefix of a file named `<source>_<n>.jpg`, as the dev set names its photos."""
    stem = Path(path).stem
    return stem.rsplit("_", 1)[0] if "_" in stem else stem


def load_eval_images(folder, size: int, limit: int | None = None) -> tuple[list[Image.Image], list[str]]:
    """The photos, centre-cropped to size x size, and the source prefix of each."""
    paths = list_images(folder)
    if not paths:
        raise FileNotFoundError(f"no photos (JPEG, PNG, ...) in {folder}")
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


def true_colour_hints(image: Image.Image, count: int, rng: np.random.Generator, patch: int = 5) -> list[dict]:
    """`count` hints at random points, each the photo's true mean colour over a patch around it:
    what a person who remembers the colours would give (ideepcolor's evaluation protocol)."""
    rgb = np.asarray(image.convert("RGB"), dtype=np.float64)
    h, w = rgb.shape[:2]
    hints = []
    for y, x in zip(rng.integers(0, h, count).tolist(), rng.integers(0, w, count).tolist()):
        y0, x0 = max(0, y - patch // 2), max(0, x - patch // 2)
        mean = rgb[y0:y0 + patch, x0:x0 + patch].reshape(-1, 3).mean(0).round().astype(int)
        hints.append({"x": x, "y": y, "color": "#{:02x}{:02x}{:02x}".format(*mean)})
    return hints


def as_old_scans(L: torch.Tensor, rng: torch.Generator) -> list[Image.Image]:
    """Grey photos of lightness L (normalised, (B, 1, H, W)), each degraded as an old scan might
    be (mlcore.degrade: tone curve, fading, blur and grain, drawn per photo)."""
    grey = color.grey_rgb(degrade_lightness(L, rng, share=1.0))
    return [Image.fromarray(a) for a in grey.mul(255).round().byte().permute(0, 2, 3, 1).numpy()]


def evaluate(colorizer: Colorizer, images: list[Image.Image], sources: list[str] | None = None,
             hints: int = 0, degraded: bool = False, batch_size: int = 16) -> dict[str, dict]:
    """Set-level metrics for the colorizer and for the grey rendering of the same photos, and the
    same per source prefix under "by source", so that a regression on one kind of photo cannot
    hide in the mean. With `hints`, every photo gets that many true-colour hints; with
    `degraded`, the colorizer gets each photo as an old scan (`as_old_scans`) and its colours are
    scored on the photo's own lightness: how well they hold when the input is worn. Both draw
    from fixed seeds, the same on every call."""
    ours: dict[str, list] = {}
    grey: dict[str, list] = {}
    rng = np.random.default_rng(0)
    scan_rng = torch.Generator().manual_seed(0)
    for start in range(0, len(images), batch_size):
        chunk = images[start:start + batch_size]
        true = _tensor(chunk)
        L, _ = color.rgb_to_lab(true)
        chunk_hints = [true_colour_hints(im, hints, rng) for im in chunk] if hints else None
        pred = _tensor(colorizer.colorize_batch(as_old_scans(L, scan_rng) if degraded else chunk, hints=chunk_hints))
        if degraded:
            pred = color.lab_to_rgb(L, color.rgb_to_lab(pred)[1])
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
