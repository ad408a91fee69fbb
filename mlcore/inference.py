"""Colorize photos of any size and mode with a trained generator.

The network runs at a working resolution; its a*b* is upsampled and merged
with the ORIGINAL full-resolution L, so the result has the input's size and
all of its detail (its L channel is the input's).
"""
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from . import color
from .image_modes import DEEP_GREY_MODES, grey_levels
from .weights import DEFAULT_WEIGHTS, file_digest, load_generator

DEFAULT_SIZE = 256  # working resolution, short side
# The longer side at the working resolution is at most this many times `size`: a sliver of an
# image (1 x 50,000 px) must not reach the network at full length.
MAX_ASPECT = 30


def to_rgb_array(image: Image.Image) -> np.ndarray:
    """Any PIL image -> (H, W, 3) float32 sRGB in [0, 1], EXIF orientation applied.

    16-bit, 32-bit and float modes keep their precision, scaled by their bit depth
    (mlcore.image_modes.grey_levels); transparency is composited on
    white (how a scan with an alpha channel looks on paper); CMYK, P and the
    rest go through Pillow's RGB conversion.
    """
    image = ImageOps.exif_transpose(image)
    if image.mode in DEEP_GREY_MODES:
        return np.repeat(grey_levels(image)[..., None], 3, axis=2)
    if image.mode in ("LA", "RGBA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(white, rgba)
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0


def working_size(h: int, w: int, size: int) -> tuple[int, int]:
    """Scale so the shorter side is `size` and the longer at most MAX_ASPECT x `size`; never upscale."""
    scale = min(1.0, size / min(h, w), MAX_ASPECT * size / max(h, w))
    return max(1, round(h * scale)), max(1, round(w * scale))


def _box(x: torch.Tensor, r: int) -> torch.Tensor:
    return F.avg_pool2d(F.pad(x, (r, r, r, r), mode="replicate"), 2 * r + 1, stride=1)


def merge(L_full: torch.Tensor, L_small: torch.Tensor, ab_small: torch.Tensor,
          rows: tuple[int, int] | None = None, radius: int = 2, eps: float = 1e-3) -> torch.Tensor:
    """Put the predicted ab, brought to full size, beside the untouched full-resolution L.

    Plain upsampling would smear colour across edges (the net's ab is coarse), so ab is
    carried up by a fast guided filter (He & Sun 2015): at the working size, ab is fitted
    locally as a linear function of L; the fit's coefficients are upsampled and applied
    to the full-resolution L, so colour edges land on L's edges.

    Returns normalised Lab (B, 3, rows, W), for `rows` = (y0, y1) only when given: a
    50-megapixel photo done whole would take ~10 GB, in strips it takes a small fraction.
    """
    mean_L, mean_ab = _box(L_small, radius), _box(ab_small, radius)
    cov = _box(L_small * ab_small, radius) - mean_L * mean_ab
    var = _box(L_small * L_small, radius) - mean_L * mean_L
    a = cov / (var + eps)
    coefficients = torch.cat([_box(a, radius), _box(mean_ab - a * mean_L, radius)], dim=1)
    height, width = L_full.shape[-2:]
    y0, y1 = rows or (0, height)
    # Bilinear upsampling of just these rows: pixel centres in [-1, 1] (as F.interpolate, align_corners=False).
    ys = (2 * torch.arange(y0, y1) + 1) / height - 1
    xs = (2 * torch.arange(width) + 1) / width - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).expand(len(L_full), -1, -1, -1)
    a, b = F.grid_sample(coefficients, grid, mode="bilinear", padding_mode="border", align_corners=False).chunk(2, 1)
    L = L_full[..., y0:y1, :]
    return torch.cat([L, (a * L + b).clamp_(-1, 1)], dim=1)


STRIP_ROWS = 256  # full-resolution work is done this many rows at a time


class Colorizer:
    """Load once, colorize many. Thread-unsafe by design: one per worker process."""

    def __init__(self, generator, metadata: dict, version: str, device: torch.device, size: int,
                 chroma: float = 1.0):
        self.generator, self.metadata, self.version = generator, metadata, version
        self.device, self.size, self.chroma = device, size, chroma

    @classmethod
    def load(cls, path=DEFAULT_WEIGHTS, device: str = "auto", size: int | None = None) -> "Colorizer":
        """Working size and chroma gain come from the file's `inference` metadata unless given."""
        path = Path(path)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        generator, meta = load_generator(path, device)
        tuned = meta.get("inference", {})
        size = size or tuned.get("size") or DEFAULT_SIZE
        return cls(generator, meta, f"{meta['arch']}-{file_digest(path)[:8]}", torch.device(device), int(size),
                   chroma=tuned.get("chroma", 1.0))

    def colorize(self, image: Image.Image) -> Image.Image:
        return self.colorize_batch([image])[0]

    @torch.no_grad()
    def colorize_batch(self, images: list[Image.Image]) -> list[Image.Image]:
        """Colorize many images; those with the same working size share one forward pass."""
        rgbs = [to_rgb_array(im) for im in images]
        results: list[Image.Image | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, rgb in enumerate(rgbs):
            groups.setdefault(rgb.shape[:2], []).append(i)
        for (h, w), members in groups.items():
            # Colour input is desaturated: only its L is used.
            L_full = [_lightness(rgbs[i]) for i in members]
            L_small = torch.cat([F.interpolate(L, size=working_size(h, w, self.size), mode="bilinear",
                                               align_corners=False, antialias=True) for L in L_full])
            # A network trained for accuracy predicts the expected colour, which is duller than any
            # real one where it is unsure; the gain (chosen on val) trades a little accuracy for life.
            ab = (self.generator(L_small.to(self.device)).float().cpu() * self.chroma).clamp_(-1, 1)
            for k, i in enumerate(members):
                out = np.empty((h, w, 3), dtype=np.uint8)
                for y in range(0, h, STRIP_ROWS):
                    lab = merge(L_full[k], L_small[k:k + 1], ab[k:k + 1], rows=(y, min(h, y + STRIP_ROWS)))
                    rgb = color.lab_to_rgb(lab[:, :1], lab[:, 1:])[0]
                    out[y:y + STRIP_ROWS] = (rgb.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
                results[i] = Image.fromarray(out)
        return results


def _lightness(rgb: np.ndarray) -> torch.Tensor:
    """Normalised L (1, 1, H, W) of an (H, W, 3) image, converted a strip at a time."""
    L = torch.empty(1, 1, *rgb.shape[:2])
    for y in range(0, rgb.shape[0], STRIP_ROWS):
        strip = torch.from_numpy(rgb[y:y + STRIP_ROWS]).permute(2, 0, 1)[None]
        L[..., y:y + STRIP_ROWS, :] = color.rgb_to_lab(strip)[0]
    return L
