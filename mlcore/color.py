"""RGB <-> L*a*b* on torch tensors, normalised as the pix2pix colorization seed does.

The networks see L scaled to [-1, 1] (L/50 - 1) and predict a*b* scaled to
[-1, 1] (ab/110), so a tanh output covers the sRGB gamut.
"""
import functools

import kornia.color
import numpy as np
import torch

L_SCALE = 50.0
AB_SCALE = 110.0


def rgb_to_lab(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, H, W) sRGB in [0, 1] -> normalised L (B, 1, H, W) and ab (B, 2, H, W)."""
    lab = kornia.color.rgb_to_lab(rgb.float())
    return lab[:, :1] / L_SCALE - 1.0, lab[:, 1:] / AB_SCALE


def lab_to_rgb(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Normalised L and ab -> sRGB in [0, 1], out-of-gamut colours clipped."""
    lab = torch.cat([(L.float() + 1.0) * L_SCALE, ab.float() * AB_SCALE], dim=1)
    return kornia.color.lab_to_rgb(lab, clip=True)


def grey_rgb(L: torch.Tensor) -> torch.Tensor:
    """The "no colour" rendering of L: what a grey photo looks like in sRGB."""
    # One channel repeated: exactly grey, where three converted channels differ by rounding.
    return lab_to_rgb(L, torch.zeros_like(L).repeat(1, 2, 1, 1))[:, :1].repeat(1, 3, 1, 1)


# --- The full-resolution path -------------------------------------------------------------
# A 50-megapixel photo through kornia makes a dozen float temporaries of the image's size and
# spends most of its time in pow(). Below: the same formulas (kornia's constants), fused, in
# float32, on strips small enough to stay in cache, with lookup tables where the input has
# few levels. Each matches kornia within float rounding (tests/engine/test_color.py).

_LAB_T = 0.2068966  # kornia's threshold of the inverse of Lab's f (6/29)
_Y_T = 0.008856  # and of f itself
_WHITE = (0.95047, 1.0, 1.08883)  # D65
_RGB_TO_Y = (0.212671, 0.715160, 0.072169)
_XYZ_TO_RGB = (
    (3.2404813432005266, -1.5371515162713185, -0.4985363261688878),
    (-0.9692549499965682, 1.8759900014898907, 0.0415559265582928),
    (0.0556466391351772, -0.2040413383665112, 1.0573110696453443),
)
# sRGB encoding and 8-bit rounding as one table, indexed by sqrt(linear): the table's steps are
# then at most ~0.01 of an 8-bit level, so it gives round(255 * encode(x)) except within that
# distance of a rounding boundary (off by one there).
_ENCODE_STEPS = 65535


def _srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v > 0.04045, ((v + 0.055) / 1.055) ** 2.4, v / 12.92)


def _lab_f(t: np.ndarray) -> np.ndarray:
    return np.where(t > _Y_T, np.cbrt(t), 7.787 * t + 4.0 / 29.0)


@functools.cache
def grey_lightness_table(levels: int, device: str = "cpu") -> torch.Tensor:
    """Normalised L of every level of a grey image (256 for 8-bit, 65,536 for 16-bit).

    A grey pixel's L depends on its value alone, so the whole RGB -> Lab conversion of a grey
    photo is one table look-up per pixel. Computed in float64 from kornia's formulas.
    """
    v = np.arange(levels, dtype=np.float64) / (levels - 1)
    lab_L = 116.0 * _lab_f(_srgb_to_linear(v) * sum(_RGB_TO_Y)) - 16.0
    return torch.from_numpy((lab_L / L_SCALE - 1.0).astype(np.float32)).to(device)


def grey_lightness(grey: torch.Tensor, levels: int) -> torch.Tensor:
    """Normalised L of integer grey values (any shape, 0 to levels - 1): grey_lightness_table."""
    table = grey_lightness_table(levels, str(grey.device))
    return torch.index_select(table, 0, grey.reshape(-1).to(torch.int32)).view(grey.shape)


@functools.cache
def _luminance_table(device: str) -> tuple[torch.Tensor, torch.Tensor]:
    # (768,): each channel's 256 levels linearised and weighted by its share of Y; and where
    # each channel's part of the table starts.
    linear = _srgb_to_linear(np.arange(256, dtype=np.float64) / 255.0)
    table = torch.from_numpy(np.concatenate([w * linear for w in _RGB_TO_Y]).astype(np.float32))
    return table.to(device), torch.tensor([0, 256, 512], dtype=torch.int32, device=device)


def rgb8_lightness(rgb: torch.Tensor) -> torch.Tensor:
    """(..., 3) uint8 sRGB -> normalised L (...) in float32: rgb_to_lab(rgb / 255)'s L."""
    table, offsets = _luminance_table(str(rgb.device))
    index = (rgb.to(torch.int32) + offsets).reshape(-1)
    y = torch.index_select(table, 0, index).view(rgb.shape).sum(-1)
    return luminance_lightness(y)


def luminance_lightness(y: torch.Tensor) -> torch.Tensor:
    """Relative luminance Y (float32, any shape) -> normalised L, as kornia's rgb_to_lab.

    L = 116 f(Y) - 16 with f the cube root above a threshold and linear below; written
    without a branch: cbrt(max(Y, t)) + 7.787 (min(Y, t) - t).
    """
    y = y.float()
    f = y.clamp(max=_Y_T).sub_(_Y_T).mul_(7.787).add_(y.clamp(min=_Y_T).pow_(1.0 / 3.0))
    return f.mul_(116.0 / L_SCALE).sub_(16.0 / L_SCALE + 1.0)


@functools.cache
def _rgb8_encoding(device: str) -> tuple[torch.Tensor, torch.Tensor]:
    # Entry i: the 8-bit sRGB code of linear x with floor(sqrt(x) * STEPS) = i, taken at the
    # middle of that interval.
    s = (np.arange(_ENCODE_STEPS + 1, dtype=np.float64) + 0.5) / _ENCODE_STEPS
    x = np.minimum(s * s, 1.0)
    encoded = np.where(x > 0.0031308, 1.055 * np.power(np.maximum(x, 0.0031308), 1 / 2.4) - 0.055, 12.92 * x)
    table = torch.from_numpy(np.round(np.clip(encoded, 0, 1) * 255).astype(np.uint8)).to(device)
    # XYZ -> linear RGB, with the white point folded in (columns scaled by it) and the table's
    # scale (rows by STEPS^2, so that sqrt gives the index straight away).
    matrix = [[m * w * _ENCODE_STEPS ** 2 for m, w in zip(row, _WHITE)] for row in _XYZ_TO_RGB]
    return table, torch.tensor(matrix, dtype=torch.float32, device=device)


def lab_to_rgb8(L: torch.Tensor, ab: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """Normalised L (n,) and ab (2, n), float32 -> sRGB (3, n) uint8.

    What `(lab_to_rgb(L, ab) * 255).round()` gives (gamut clipping included), fused: no pow()
    (cubes, then a table for the sRGB curve) and a few float32 arrays of n values. Equal to
    that except within ~0.01 of a level of an 8-bit rounding boundary, where it may be off by one.
    """
    table, matrix = _rgb8_encoding(str(L.device))
    f = torch.empty(3, L.shape[0], dtype=torch.float32, device=L.device)  # fx, fy, fz
    fy = torch.mul(L, L_SCALE / 116.0, out=f[1]).add_((L_SCALE + 16.0) / 116.0)
    torch.add(fy, ab[0], alpha=AB_SCALE / 500.0, out=f[0])
    torch.add(fy, ab[1], alpha=-AB_SCALE / 200.0, out=f[2]).clamp_(min=0.0)
    # Inverse of f without a branch: max(f, t)^3 plus the linear part below t (zero above).
    xyz = f.clamp(max=_LAB_T).sub_(_LAB_T).mul_(1 / 7.787)
    f.clamp_(min=_LAB_T)
    xyz.addcmul_(f.mul(f), f)
    index = torch.mm(matrix, xyz, out=f).clamp_(0.0, _ENCODE_STEPS ** 2).sqrt_().to(torch.int32)
    if out is None:
        out = torch.empty(index.shape, dtype=torch.uint8, device=L.device)
    return torch.index_select(table, 0, index.view(-1), out=out.view(-1)).view(index.shape)
