import numpy as np
import torch
from skimage import color as skcolor

from mlcore import color


def test_lab_matches_scikit_image_on_random_images():
    rgb = torch.rand(3, 3, 17, 23, generator=torch.Generator().manual_seed(0))
    L, ab = color.rgb_to_lab(rgb)
    ours = torch.cat([(L + 1) * 50, ab * 110], 1).permute(0, 2, 3, 1).numpy()
    reference = skcolor.rgb2lab(rgb.permute(0, 2, 3, 1).numpy().astype(np.float64))
    assert np.abs(ours - reference).max() < 0.05


def test_round_trip_returns_the_image():
    rgb = torch.rand(2, 3, 31, 9, generator=torch.Generator().manual_seed(1))
    L, ab = color.rgb_to_lab(rgb)
    assert L.min() >= -1 and L.max() <= 1 and ab.abs().max() <= 1
    assert torch.allclose(color.lab_to_rgb(L, ab), rgb, atol=1e-4)


def test_grey_rendering_has_no_colour():
    rgb = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    grey = color.grey_rgb(color.rgb_to_lab(rgb)[0])
    assert torch.allclose(grey[:, 0], grey[:, 1], atol=1e-3) and torch.allclose(grey[:, 1], grey[:, 2], atol=1e-3)


# --- The fast full-resolution path against kornia's conversions --------------------------------

def _kornia_L(rgb01):
    """kornia's normalised L of (N, 3) RGB in [0, 1]."""
    return color.rgb_to_lab(rgb01.t().reshape(1, 3, 1, -1))[0].reshape(-1)


def test_grey_lightness_table_is_kornias_L_for_every_8_bit_level():
    levels = torch.arange(256)
    kornia = _kornia_L((levels.float() / 255)[:, None].repeat(1, 3))
    table = color.grey_lightness(levels, 256)
    assert (table - kornia).abs().max() * 50 < 1e-4  # in L* units (0 to 100)


def test_grey_lightness_table_is_kornias_L_for_every_16_bit_level():
    levels = torch.arange(65536)
    kornia = _kornia_L((levels.double() / 65535).float()[:, None].repeat(1, 3))
    table = color.grey_lightness(levels, 65536)
    assert (table - kornia).abs().max() * 50 < 1e-4
    assert len(torch.unique(table)) > 60000  # 16-bit precision kept, not 256 levels


def test_rgb8_lightness_is_kornias_L():
    rgb = torch.randint(0, 256, (200_000, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))
    assert (color.rgb8_lightness(rgb) - _kornia_L(rgb.float() / 255)).abs().max() * 50 < 1e-4


def test_lab_to_rgb8_is_kornias_conversion_rounded():
    g = torch.Generator().manual_seed(4)
    n = 300_000
    L = torch.rand(n, generator=g) * 2 - 1
    ab = torch.rand(2, n, generator=g) * 2 - 1  # far out of gamut too: clipping must agree
    kornia = (color.lab_to_rgb(L.view(1, 1, 1, n), ab.view(1, 2, 1, n))[0].reshape(3, n) * 255).round()
    fast = color.lab_to_rgb8(L, ab)
    difference = (fast.float() - kornia).abs()
    # Off by one only where kornia's value lies within ~0.01 of a rounding boundary.
    assert fast.dtype == torch.uint8 and fast.shape == (3, n)
    assert difference.max() <= 1 and (difference > 0).float().mean() < 0.002
