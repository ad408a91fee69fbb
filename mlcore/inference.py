"""Colorize photos of any size and mode with a trained generator.

The network runs at a working resolution; its a*b* is upsampled and merged
with the ORIGINAL full-resolution L, so the result has the input's size and
all of its detail (its L channel is the input's).
"""
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import ExifTags, Image, ImageOps

from . import color
from .image_modes import DEEP_GREY_MODES, grey_levels, grey_scale
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
    height, width = L_full.shape[-2:]
    y0, y1 = rows or (0, height)
    slopes, offsets = _upsample_rows(_coefficients(L_small, ab_small, radius, eps), y0, y1, height, width).chunk(2, 1)
    L = L_full[..., y0:y1, :]
    return torch.cat([L, torch.addcmul(offsets, slopes, L).clamp_(-1, 1)], dim=1)


def _coefficients(L_small: torch.Tensor, ab_small: torch.Tensor, radius: int = 2, eps: float = 1e-3) -> torch.Tensor:
    """The guided filter's fit at the working size: (B, 4, h, w), the slopes of a and b, then their offsets."""
    mean_L, mean_ab = _box(L_small, radius), _box(ab_small, radius)
    cov = _box(L_small * ab_small, radius) - mean_L * mean_ab
    var = _box(L_small * L_small, radius) - mean_L * mean_L
    a = cov / (var + eps)
    return torch.cat([_box(a, radius), _box(mean_ab - a * mean_L, radius)], dim=1)


def _upsample_rows(small: torch.Tensor, y0: int, y1: int, height: int, width: int) -> torch.Tensor:
    """Rows y0:y1 of `small` (B, C, h, w) bilinearly resized to (height, width), as F.interpolate
    (align_corners=False) would give them: the two source rows of each row mixed first, then
    each row resized on its own, so strips of rows compose exactly into the whole."""
    h = small.shape[-2]
    ys = torch.arange(y0, y1, device=small.device, dtype=torch.float32)
    src = ((ys + 0.5) * (h / height) - 0.5).clamp_(min=0)
    top = src.long().clamp_(max=h - 1)
    weight = (src - top)[:, None]
    mixed = torch.lerp(small[:, :, top], small[:, :, (top + 1).clamp_(max=h - 1)], weight)
    batch, channels, rows, w = mixed.shape
    out = F.interpolate(mixed.reshape(batch, channels * rows, w), size=width, mode="linear", align_corners=False)
    return out.view(batch, channels, rows, width)


class _Pixels:
    """A photo as the colorizer reads it: upright, on white, L made a strip of rows at a time.

    Only strips are ever converted to float, so a 50-megapixel photo costs no float copy of
    itself. Grey photos (8- or 16-bit, or RGB with three equal channels) get L from a table of
    their levels; colour ones from their linear luminance.
    """

    def __init__(self, image: Image.Image):
        orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
        if orientation not in (0, 1):  # exif_transpose copies even an upright image: only when needed
            image = ImageOps.exif_transpose(image)
        mode = image.mode
        if mode in ("LA", "RGBA", "PA") or (mode == "P" and "transparency" in image.info):
            rgba = image.convert("RGBA")  # transparency is composited on white, as paper shows it
            image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba).convert("RGB")
        elif mode == "1":
            image = image.convert("L")
        elif mode not in ("L", "RGB", *DEEP_GREY_MODES):
            image = image.convert("RGB")  # CMYK, P and the rest: Pillow's conversion
        self.width, self.height = image.size
        self.array = np.asarray(image)  # read-only; strips are copied from it
        self.levels = 256 if image.mode == "L" else "rgb"
        if image.mode in DEEP_GREY_MODES:
            # Scaled by their range, as to_rgb_array does: 8 or 16 bits of integers by a table,
            # anything else (floats, stretched 32-bit) by the formula.
            self.low, self.span = grey_scale(image)
            whole = image.mode != "F" and self.low == 0 and self.span in (255.0, 65535.0)
            self.levels = int(self.span) + 1 if whole else None
        if image.mode == "RGB" and _is_grey(self.array):  # a grey scan saved as RGB: L as its grey version
            self.array, self.levels = self.array[..., 0], 256

    def lightness(self, y0: int, y1: int, device: torch.device) -> torch.Tensor:
        """Normalised L of rows y0:y1, (rows, W) float32 on `device`."""
        strip = self.array[y0:y1]
        if self.levels == "rgb":
            return color.rgb8_lightness(torch.from_numpy(np.array(strip)).to(device))
        if self.levels is None:  # levels in [0, 1] by the formula, no table
            v = (torch.from_numpy(np.array(strip, np.float32)).to(device) - self.low).div_(self.span).clamp_(0, 1)
            return color.luminance_lightness(torch.where(v > 0.04045, ((v + 0.055) / 1.055) ** 2.4, v / 12.92))
        if strip.dtype != np.uint8:  # 16-bit in any byte order, or 32-bit: native 32-bit integers for torch
            strip = strip.astype(np.int32)
        return color.grey_lightness(torch.from_numpy(np.array(strip)).to(device), self.levels)


def _is_grey(rgb: np.ndarray) -> bool:
    # A few rows first: a colour photo is told at once, a grey one costs one pass.
    sample = rgb[:: max(1, len(rgb) // 8)]
    return all(np.array_equal(part[..., 0], part[..., c]) for part in (sample, rgb) for c in (1, 2))


def _strip_rows(width: int, device: torch.device) -> int:
    # About 128K pixels on a CPU (the few float arrays of a strip stay in its caches), 4M on a GPU.
    return max(1, (STRIP_PIXELS_GPU if device.type == "cuda" else STRIP_PIXELS) // width)


def _small_lightness(pixels: _Pixels, size: tuple[int, int], device: torch.device) -> torch.Tensor:
    """L at the working size, (1, 1, h, w): what F.interpolate (antialiased) gives for the
    full-resolution L, bit for bit, done a strip at a time (each strip's rows shrunk in width,
    then the columns in height: the same separable filter)."""
    h, w = size
    narrow = torch.empty(1, 1, pixels.height, w, device=device)
    step = max(1, STRIP_PIXELS_GPU // pixels.width)  # few torch calls: L is made and dropped
    for y in range(0, pixels.height, step):
        y1 = min(pixels.height, y + step)
        L = pixels.lightness(y, y1, device)[None, None]
        narrow[..., y:y1, :] = F.interpolate(L, size=(y1 - y, w), mode="bilinear", align_corners=False, antialias=True)
    return F.interpolate(narrow, size=(h, w), mode="bilinear", align_corners=False, antialias=True)


def _full_resolution(pixels: _Pixels, L_small: torch.Tensor, ab_small: torch.Tensor,
                     device: torch.device) -> Image.Image:
    """The predicted colour merged with the full-resolution L and turned into 8-bit sRGB, a
    strip at a time, straight into the result."""
    coefficients = _coefficients(L_small.to(device), ab_small.to(device))
    height, width = pixels.height, pixels.width
    result = Image.new("RGB", (width, height))
    step = _strip_rows(width, device)
    for y in range(0, height, step):
        y1 = min(height, y + step)
        L = pixels.lightness(y, y1, device).reshape(-1)
        slopes, offsets = _upsample_rows(coefficients, y, y1, height, width).reshape(2, 2, -1)
        ab = torch.addcmul(offsets, slopes, L).clamp_(-1, 1)
        planes = color.lab_to_rgb8(L, ab).cpu().numpy()
        # Pillow interleaves the three planes as it stores them.
        strip = [Image.frombuffer("L", (width, y1 - y), plane, "raw", "L", 0, 1) for plane in planes]
        result.paste(Image.merge("RGB", strip), (0, y))
    return result


STRIP_PIXELS = 1 << 17  # full-resolution work is done this many pixels at a time (CPU)
STRIP_PIXELS_GPU = 1 << 22


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
        pixels = [_Pixels(im) for im in images]
        results: list[Image.Image | None] = [None] * len(images)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, p in enumerate(pixels):
            groups.setdefault((p.height, p.width), []).append(i)
        for (h, w), members in groups.items():
            # Colour input is desaturated: only its L is used.
            L_small = torch.cat([_small_lightness(pixels[i], working_size(h, w, self.size), self.device)
                                 for i in members])
            # A network trained for accuracy predicts the expected colour, which is duller than any
            # real one where it is unsure; the gain (chosen on val) trades a little accuracy for life.
            ab = (self.generator(L_small.to(self.device)).float() * self.chroma).clamp_(-1, 1)
            for k, i in enumerate(members):
                # The full-resolution path runs where the network does (a GPU worker's too).
                results[i] = _full_resolution(pixels[i], L_small[k:k + 1], ab[k:k + 1], self.device)
        return results
