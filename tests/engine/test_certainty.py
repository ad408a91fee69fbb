import numpy as np
import pytest
import torch
from PIL import Image

from mlcore import certainty, color
from mlcore.inference import Colorizer, to_rgb_array
from mlcore.models import ab_to_bin

from .conftest import synthetic_photo


@pytest.fixture(scope="module")
def colorizer(tiny_weights):
    return Colorizer.load(tiny_weights, device="cpu", size=32)


def _chroma(image):
    rgb = torch.from_numpy(to_rgb_array(image)).permute(2, 0, 1)[None]
    return color.rgb_to_lab(rgb)[1].norm(dim=1) * color.AB_SCALE


def test_the_gain_is_linear_between_the_points_and_flat_beyond():
    curve = {"neutral_chroma": 12.0, "share": [0.2, 0.5, 0.9], "gain": [1.0, 1.3, 0.5]}
    share = torch.tensor([0.0, 0.2, 0.35, 0.5, 0.7, 0.9, 1.0])
    assert certainty.gain_at(curve, share).tolist() == pytest.approx([1.0, 1.0, 1.15, 1.3, 0.9, 0.5, 0.5])


def test_the_neutral_share_is_the_probability_on_near_grey_bins(colorizer):
    generator = colorizer.generator
    grey = int(ab_to_bin(torch.zeros(1, 2, 1, 1)))
    red = int(ab_to_bin(torch.tensor([0.6, 0.3]).view(1, 2, 1, 1)))
    logits = torch.full((1, len(generator.bin_centers), 1, 3), -30.0)
    logits[0, grey, 0, 0] = 30.0  # sure it is grey
    logits[0, red, 0, 1] = 30.0  # sure it is red
    logits[0, [grey, red], 0, 2] = 30.0  # half and half
    share = certainty.neutral_share(generator, logits)
    assert share.flatten().tolist() == pytest.approx([1.0, 0.0, 0.5], abs=1e-6)


def test_calibration_gives_a_curve_over_the_shares_scaled_to_its_surest_colour(colorizer):
    photos = [synthetic_photo(i, size=(32, 32)) for i in range(6)]
    curve = certainty.calibrate(colorizer, photos, points=5)
    assert len(curve["share"]) == len(curve["gain"]) == 5
    assert curve["share"] == sorted(curve["share"]) and 0 <= curve["share"][0] and curve["share"][-1] <= 1
    assert curve["gain"][0] == 1.0 and all(g >= 0 for g in curve["gain"])
    assert len(curve["lightness"]) == len(curve["lightness_gain"]) == 5
    assert curve["lightness"] == sorted(curve["lightness"]) and 0 <= curve["lightness"][0] <= curve["lightness"][-1] <= 100
    assert max(curve["lightness_gain"]) == 1.0 and all(g >= 0 for g in curve["lightness_gain"])


def test_the_colorizer_multiplies_its_colours_by_the_curve(tiny_weights):
    photo = synthetic_photo(3, size=(64, 48))
    uniform = Colorizer.load(tiny_weights, size=32)
    curved = Colorizer.load(tiny_weights, size=32)
    curved.certainty = {"neutral_chroma": 12.0, "share": [0.0, 1.0], "gain": [1.0, 1.0]}
    assert np.array_equal(np.asarray(curved.colorize(photo)), np.asarray(uniform.colorize(photo)))
    curved.certainty = {"neutral_chroma": 12.0, "share": [0.0, 1.0], "gain": [0.0, 0.0]}
    assert float(_chroma(curved.colorize(photo)).max()) < 1.0  # nothing it is sure of: grey
    assert float(_chroma(uniform.colorize(photo)).max()) > 1.0


def test_the_lightness_curve_takes_the_colour_out_of_the_shadows(tiny_weights):
    photo = Image.fromarray(np.tile(np.linspace(0, 255, 96).astype(np.uint8), (48, 1)))  # black to white
    curved = Colorizer.load(tiny_weights, size=32)
    curved.white_balance = None
    curved.certainty = {"neutral_chroma": 12.0, "share": [0.0, 1.0], "gain": [1.0, 1.0]}
    both = _chroma(curved.colorize(photo))[0]
    # Grey below L* 30, the share curve's colour in full above 40.
    curved.certainty.update(lightness=[30.0, 40.0], lightness_gain=[0.0, 1.0])
    shaded = _chroma(curved.colorize(photo))[0]
    L = color.rgb_to_lab(torch.from_numpy(to_rgb_array(photo)).permute(2, 0, 1)[None])[0][0, 0].add(1).mul(50)
    assert float(both[L < 25].mean()) > 1.0 and float(shaded[L < 25].max()) < 1.0
    assert torch.allclose(shaded[L > 45], both[L > 45], atol=1.0)


def test_a_model_without_a_colour_distribution_cannot_be_calibrated(tmp_path):
    from mlcore.models import build_generator
    from mlcore.weights import save_generator

    path = save_generator(tmp_path / "unet.safetensors", build_generator("unet", num_downs=5, ngf=8), "unet",
                          {"num_downs": 5, "ngf": 8})
    with pytest.raises(ValueError, match="predicts no colour distribution to be sure of"):
        certainty.calibrate(Colorizer.load(path, size=32), [synthetic_photo(0, size=(32, 32))])
