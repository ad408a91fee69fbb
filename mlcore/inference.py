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
from .certainty import gain_map, lightness_gain
from .hints import HintsNotSupported, hint_map
from .image_modes import DEEP_GREY_MODES, grey_levels, grey_scale
from .models import AB_BINS_PER_AXIS
from .palette import DEFAULT_K, PaletteGrid
from .weights import DEFAULT_WEIGHTS, file_digest, load_generator
from .white_balance import balanced

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
                 chroma: float = 1.0, certainty: dict | None = None, white_balance: dict | None = None):
        self.generator, self.metadata, self.version = generator, metadata, version
        self.device, self.size, self.chroma = device, size, chroma
        self.certainty = certainty  # a gain curve from mlcore.certainty.calibrate, or None: uniform gain
        # {"strength", "neutral_chroma"} for mlcore.white_balance.balanced, or None: the network's own cast
        self.white_balance = white_balance

    @classmethod
    def load(cls, path=DEFAULT_WEIGHTS, device: str = "auto", size: int | None = None) -> "Colorizer":
        """Working size, chroma gain, certainty curve and white balance come from the file's
        `inference` metadata unless given."""
        path = Path(path)
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        generator, meta = load_generator(path, device)
        tuned = meta.get("inference", {})
        size = size or tuned.get("size") or DEFAULT_SIZE
        return cls(generator, meta, f"{meta['arch']}-{file_digest(path)[:8]}", torch.device(device), int(size),
                   chroma=tuned.get("chroma", 1.0), certainty=tuned.get("certainty"),
                   white_balance=tuned.get("white_balance"))

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
            maps = self._hint_maps([hints[i] for i in members], (h, w), L_small)
            ab = self._predict(L_small, maps) * self.chroma
            if self.white_balance:
                # Every hint is a colour the person knows, cast included: the more hints, the less balance.
                strength = torch.tensor([self.white_balance["strength"] / (1 + len(hints[i] or [])) for i in members],
                                        dtype=ab.dtype, device=ab.device)
                ab = balanced(L_small, ab, strength, self.white_balance["neutral_chroma"])
            ab = (ab * vividness).clamp_(-1, 1)
            for k, i in enumerate(members):
                # The full-resolution path runs where the network does (a GPU worker's too).
                results[i] = _full_resolution(pixels[i], L_small[k:k + 1], ab[k:k + 1], self.device)
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

    def _hint_maps(self, hints, size, L_small):
        """The hint maps (B, 3, h, w) of images of one size, or None when none has a hint."""
        if not any(hints):
            return None
        maps = torch.cat([hint_map(h or [], size, tuple(L_small.shape[-2:])) for h in hints])
        # The network's colour is multiplied by the chroma gain and by the lightness curve; a hint
        # asks for its colour divided by both, so that (at vividness 1) a hinted colour comes out as
        # picked, not `chroma` times stronger, nor duller in the shadows.
        gain = self.chroma * (lightness_gain(self.certainty, L_small.cpu().float()) if self.certainty else 1.0)
        maps[:, :2] = (maps[:, :2] / gain).clamp_(-1, 1)
        return maps

    def _predict(self, L_small, maps, **kwargs):
        """The network's normalised ab for L (and hint maps, when there are any), float32 on the
        colorizer's device: the full-resolution path runs there too."""
        args = (L_small.to(self.device),) if maps is None else (L_small.to(self.device), maps.to(self.device))
        if kwargs.get("return_logits"):
            ab, logits = self.generator(*args, **kwargs)
            return ab.float(), logits.float()
        if self.certainty:
            # Hinted points come out as picked: the model is sure of them, where the share curve is 1.
            ab, logits = self.generator(*args, return_logits=True)
            gain = gain_map(self.generator, logits, self.certainty, L_small.shape[-2:])
            return ab.float() * gain * lightness_gain(self.certainty, args[0].float())
        return self.generator(*args).float()

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
        L_small = _small_lightness(_Pixels(upright), (hs, ws), torch.device("cpu"))
        _, logits = self._predict(L_small, self._hint_maps([hints], (h, w), L_small), return_logits=True)
        cell = PaletteGrid.CELL
        rows, cols = -(-hs // cell), -(-ws // cell)
        p = torch.softmax(logits[0, :, :rows, :cols].cpu(), dim=0).flatten(1).T  # (cells, bins)
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
