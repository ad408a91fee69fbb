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
