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
from .hints import HintsNotSupported, hint_map
from .image_modes import DEEP_GREY_MODES, grey_levels
from .models import AB_BINS_PER_AXIS
from .palette import DEFAULT_K, PaletteGrid
from .weights import DEFAULT_WEIGHTS, file_digest, load_generator

DEFAULT_SIZE = 256  # working resolution, short side
MAX_VIVIDNESS = 2.0  # the most a person may multiply the tuned chroma gain by
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

    @property
    def takes_hints(self) -> bool:
        """Whether the network was built to take colour hints (see mlcore.hints)."""
        return bool(getattr(self.generator, "hints", False))

    @property
    def proposes_colours(self) -> bool:
        """Whether the network predicts a colour distribution, which `palettes` draws from."""
        return hasattr(self.generator, "bin_centers")

    def colorize(self, image: Image.Image, hints=None, vividness: float = 1.0) -> Image.Image:
        """`hints`: [{"x", "y", "color": "#rrggbb"}, ...] in pixels of the upright image (after
        EXIF rotation); `vividness` multiplies the tuned chroma gain, 0 (grey) to 2."""
        return self.colorize_batch([image], hints=[hints], vividness=vividness)[0]

    @torch.no_grad()
    def colorize_batch(self, images: list[Image.Image], hints=None, vividness: float = 1.0) -> list[Image.Image]:
        """Colorize many images; those with the same working size share one forward pass.
        `hints`, when given, has one list of hints (or None) per image."""
        hints = self._check_settings(images, hints, vividness)
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
            maps = self._hint_maps([hints[i] for i in members], (h, w), L_small.shape[-2:])
            ab = (self._predict(L_small, maps) * (self.chroma * vividness)).clamp_(-1, 1)
            for k, i in enumerate(members):
                out = np.empty((h, w, 3), dtype=np.uint8)
                for y in range(0, h, STRIP_ROWS):
                    lab = merge(L_full[k], L_small[k:k + 1], ab[k:k + 1], rows=(y, min(h, y + STRIP_ROWS)))
                    rgb = color.lab_to_rgb(lab[:, :1], lab[:, 1:])[0]
                    out[y:y + STRIP_ROWS] = (rgb.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
                results[i] = Image.fromarray(out)
        return results

    def _check_settings(self, images, hints, vividness):
        if not 0.0 <= vividness <= MAX_VIVIDNESS:  # NaN fails too
            raise ValueError(f"vividness must be between 0 and {MAX_VIVIDNESS:g}, got {vividness}")
        hints = list(hints) if hints is not None else [None] * len(images)
        if len(hints) != len(images):
            raise ValueError(f"{len(hints)} lists of hints for {len(images)} images")
        if any(hints) and not self.takes_hints:
            raise HintsNotSupported(f"model {self.version} was trained without colour hints; "
                                    "colorize without hints, or load a model that takes them")
        return hints

    def _hint_maps(self, hints, size, working):
        """The hint maps (B, 3, h, w) of images of one size, or None when none has a hint."""
        if not any(hints):
            return None
        maps = torch.cat([hint_map(h or [], size, tuple(working)) for h in hints])
        # The network's colour is multiplied by the chroma gain; a hint asks for its colour divided
        # by it, so that (at vividness 1) a hinted colour comes out as picked, not `chroma` times stronger.
        maps[:, :2] = (maps[:, :2] / self.chroma).clamp_(-1, 1)
        return maps

    def _predict(self, L_small, maps, **kwargs):
        """The network's normalised ab for L (and hint maps, when there are any), on the CPU."""
        args = (L_small.to(self.device),) if maps is None else (L_small.to(self.device), maps.to(self.device))
        out = self.generator(*args, **kwargs)
        if kwargs.get("return_logits"):
            return out[0].float().cpu(), out[1].float().cpu()
        return out.float().cpu()

    def palette(self, image: Image.Image, x: int, y: int, k: int = DEFAULT_K, hints=None) -> list[str]:
        """The model's `k` most plausible colours at pixel (x, y) of the upright image, as
        '#rrggbb', most likely first: what an eyedropper offers for that point."""
        return [c["color"] for c in self.palettes(image, hints=hints, k=k).at(x, y)]

    @torch.no_grad()
    def palettes(self, image: Image.Image, hints=None, k: int = DEFAULT_K) -> PaletteGrid:
        """The model's plausible colours for every point of the image (with these hints): per
        4x4-px cell of the working size, the `k` heaviest clusters of the predicted bin distribution,
        each drawn at the cell's lightness, with its probability."""
        if not self.proposes_colours:
            raise ValueError(f"model {self.version} predicts no colour distribution to propose colours from")
        self._check_settings([image], [hints], 1.0)
        upright = ImageOps.exif_transpose(image)
        w, h = upright.size
        hs, ws = working_size(h, w, self.size)
        # Only L at the working size matters here: shrink to about twice that first, rather than
        # convert a photo of many megapixels whole (seconds on a CPU, for nothing).
        shrink = max(1, min(h, w) // (2 * min(hs, ws)))
        if shrink > 1:
            if upright.mode in ("P", "PA"):  # palette indices cannot be averaged
                upright = upright.convert("RGBA")
            upright = upright.resize((w // shrink, h // shrink), Image.Resampling.BOX)
        L_small = F.interpolate(_lightness(to_rgb_array(upright)), size=(hs, ws), mode="bilinear",
                                align_corners=False, antialias=True)
        _, logits = self._predict(L_small, self._hint_maps([hints], (h, w), (hs, ws)), return_logits=True)
        cell = PaletteGrid.CELL
        rows, cols = -(-hs // cell), -(-ws // cell)
        p = torch.softmax(logits[0, :, :rows, :cols], dim=0).flatten(1).T  # (cells, bins)
        ab, probability = _heaviest_clusters(p, self.generator.bin_centers.float().cpu(), k)  # (k, cells, ...)
        L_cells = F.avg_pool2d(F.pad(L_small, (0, cols * cell - ws, 0, rows * cell - hs), mode="replicate"), cell)
        rgb = color.lab_to_rgb(L_cells.flatten()[None, None, None].expand(1, 1, k, -1), ab.permute(2, 0, 1)[None])[0]
        rgba = torch.cat([rgb, probability.clamp(0, 1)[None]]).mul(255).round().to(torch.uint8)  # (4, k, cells)
        tiles = rgba.permute(1, 2, 0).reshape(k * rows, cols, 4).numpy()
        return PaletteGrid(Image.fromarray(tiles), k, size=(w, h), working=(ws, hs))


def _heaviest_clusters(p: torch.Tensor, centres: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For bin distributions p (cells, bins) with their ab `centres` (bins, 2): per cell, the ab
    (k, cells, 2) and probability (k, cells) of the k heaviest clusters, a cluster being a bin and
    its neighbours on the a*b* grid (one colour, shaded), taken greedily so that the choices differ."""
    step = 2.0 / AB_BINS_PER_AXIS
    neighbours = ((centres[:, None] - centres[None]).abs().amax(-1) < 1.5 * step).float()
    colours, probabilities = [], []
    for _ in range(k):
        best = (p @ neighbours).argmax(1)  # the central bin of the heaviest cluster left
        weights = p * neighbours[best]
        total = weights.sum(1)
        mean = (weights @ centres) / total.clamp_min(1e-12)[:, None]
        colours.append(torch.where((total > 0)[:, None], mean, centres[best]))
        probabilities.append(total)
        p = p - weights
    return torch.stack(colours), torch.stack(probabilities)


def _lightness(rgb: np.ndarray) -> torch.Tensor:
    """Normalised L (1, 1, H, W) of an (H, W, 3) image, converted a strip at a time."""
    L = torch.empty(1, 1, *rgb.shape[:2])
    for y in range(0, rgb.shape[0], STRIP_ROWS):
        strip = torch.from_numpy(rgb[y:y + STRIP_ROWS]).permute(2, 0, 1)[None]
        L[..., y:y + STRIP_ROWS, :] = color.rgb_to_lab(strip)[0]
    return L
