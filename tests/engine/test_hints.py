"""Steering the colour: hints placed on the network's input, vividness, and the eyedropper's palette."""
import io
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from mlcore import color
from mlcore.hints import MAX_HINTS, HintError, HintsNotSupported, check_hints, hint_map
from mlcore.inference import Colorizer, to_rgb_array
from mlcore.metrics import colorfulness
from mlcore.models import ab_bin_centers
from mlcore.palette import PaletteGrid
from mlcore.weights import DEFAULT_WEIGHTS

from .conftest import synthetic_photo

BLUE = "#3a5fcd"


@pytest.fixture(scope="module")
def colorizer(tiny_weights):
    return Colorizer.load(tiny_weights, device="cpu", size=40)


def spy_on(colorizer, monkeypatch):
    """Record what the network is called with (the hint map among it)."""
    calls = []
    forward = colorizer.generator.forward

    def recording(*args, **kwargs):
        calls.append((args, kwargs))
        return forward(*args, **kwargs)

    monkeypatch.setattr(colorizer.generator, "forward", recording)
    return calls


def rotated_jpeg(size=(200, 80)):
    """A JPEG stored `size` wide and high that EXIF turns a quarter (orientation 6) on display."""
    exif = Image.Exif()
    exif[0x0112] = 6
    buffer = io.BytesIO()
    synthetic_photo(2, size=size).save(buffer, "JPEG", exif=exif)
    return Image.open(io.BytesIO(buffer.getvalue()))


def ab_of(hex_colour):
    rgb = torch.tensor([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]).reshape(1, 3, 1, 1)
    return color.rgb_to_lab(rgb)[1].flatten()


def test_a_hint_reaches_the_network_at_its_place_on_the_upright_photo(colorizer, monkeypatch):
    calls = spy_on(colorizer, monkeypatch)
    photo = rotated_jpeg()  # 80 wide and 200 high once upright; 40 x 100 at the working size

    out = colorizer.colorize(photo, hints=[{"x": 70, "y": 30, "color": BLUE}])

    assert out.size == (80, 200)
    [((L, hints), _)] = calls
    assert L.shape == hints.shape[:1] + (1,) + hints.shape[2:] == (1, 1, 100, 40)
    mask = hints[0, 2]
    # (70.5, 30.5) of 80 x 200 is (35.25, 15.25) of 40 x 100: a 5x5 patch around column 35, row 15.
    assert mask.sum() == 25 and mask[13:18, 33:38].all()
    assert torch.allclose(hints[0, :2, 15, 35], ab_of(BLUE), atol=1e-4)
    assert hints[0, :2][:, mask == 0].abs().max() == 0


def test_no_hints_means_an_empty_map_or_none(colorizer, monkeypatch):
    calls = spy_on(colorizer, monkeypatch)
    colorizer.colorize(synthetic_photo(1), hints=[])
    colorizer.colorize(synthetic_photo(1))
    assert [len(args) for args, _ in calls] == [1, 1]  # L alone: the network's automatic mode


def test_in_a_batch_each_image_gets_its_own_hints(colorizer, monkeypatch):
    calls = spy_on(colorizer, monkeypatch)
    photos = [synthetic_photo(3, size=(48, 40)), synthetic_photo(4, size=(48, 40))]

    colorizer.colorize_batch(photos, hints=[[{"x": 10, "y": 10, "color": "#ff0000"}], None])

    [((_, hints), _)] = calls  # one forward pass for both
    assert hints[0, 2].sum() == 25 and hints[1].abs().sum() == 0
    with torch.no_grad():  # the untrained network does read them, if too little to see in 8 bits
        L = torch.zeros(1, 1, 40, 48)
        assert not torch.equal(colorizer.generator(L, hints[:1]), colorizer.generator(L, hints[1:]))


class HintEcho(nn.Module):
    """What a trained hint network does, reduced to its essence: it spreads each hint's colour
    over the neighbourhood (a normalised blur of the hint map) and predicts grey elsewhere."""

    hints = True

    def forward(self, L, hints=None):
        if hints is None:
            return L.new_zeros(L.shape[0], 2, *L.shape[2:])
        kernel = torch.ones(1, 1, 9, 9)
        mask = F.conv2d(hints[:, 2:], kernel, padding=4)
        ab = torch.cat([F.conv2d(hints[:, c:c + 1], kernel, padding=4) for c in (0, 1)], 1)
        return torch.where(mask > 0, ab / mask.clamp_min(1e-6), 0.0)


def result_ab(image):
    return color.rgb_to_lab(torch.from_numpy(to_rgb_array(image)).permute(2, 0, 1)[None])[1][0]


@pytest.mark.parametrize("chroma", [1.0, 1.6])
def test_the_hinted_colour_appears_near_the_hint_as_picked_and_not_far_away(chroma):
    colorizer = Colorizer(HintEcho(), {}, "echo", torch.device("cpu"), size=64, chroma=chroma)
    grey = Image.new("L", (400, 256), 128)
    hints = [{"x": 300, "y": 60, "color": BLUE}]

    dull = [{"x": 300, "y": 60, "color": "#6b7a99"}]

    ab = result_ab(colorizer.colorize(grey, hints=hints))
    stronger = result_ab(colorizer.colorize(grey, hints=dull, vividness=1.5))

    # As picked whatever the model's tuned gain; vividness strengthens it like every other colour.
    assert torch.allclose(ab[:, 60, 300], ab_of(BLUE), atol=0.03)
    assert torch.allclose(ab[:, 58:63, 297:304].mean((1, 2)), ab_of(BLUE), atol=0.03)
    assert torch.allclose(stronger[:, 60, 300], 1.5 * ab_of("#6b7a99"), atol=0.03)
    assert ab[:, 200, 60].abs().max() < 0.01  # far away: still grey


class SureHintEcho(HintEcho):
    """HintEcho with a colour-bin head, so that the certainty curves apply to it."""

    multiple = 4

    def __init__(self):
        super().__init__()
        self.register_buffer("bin_centers", ab_bin_centers())

    def forward(self, L, hints=None, return_logits=False):
        ab = super().forward(L, hints)
        logits = L.new_zeros(L.shape[0], len(self.bin_centers), L.shape[2] // 4, L.shape[3] // 4)
        return (ab, logits) if return_logits else ab


def test_a_hinted_colour_in_the_shadows_comes_out_as_picked_though_the_lightness_curve_dulls_them():
    curves = {"neutral_chroma": 12.0, "share": [0.0, 1.0], "gain": [1.0, 1.0],
              "lightness": [20.0, 40.0], "lightness_gain": [0.5, 1.0]}
    colorizer = Colorizer(SureHintEcho(), {}, "echo", torch.device("cpu"), size=64, chroma=1.6, certainty=curves)
    shadow = Image.new("L", (256, 256), 70)  # L* 29: the curve's gain there is about 0.7
    navy = "#1c2c6c"

    ab = result_ab(colorizer.colorize(shadow, hints=[{"x": 128, "y": 128, "color": navy}]))

    assert torch.allclose(ab[:, 128, 128], ab_of(navy), atol=0.03)
    assert torch.allclose(ab[:, 126:131, 124:133].mean((1, 2)), ab_of(navy), atol=0.03)


def test_vividness_zero_is_grey_and_two_is_more_colourful(colorizer):
    photo = synthetic_photo(4, size=(64, 64))

    def cf(image):
        return float(colorfulness(torch.from_numpy(to_rgb_array(image)).permute(2, 0, 1)[None]))

    grey = np.asarray(colorizer.colorize(photo, vividness=0.0)).astype(int)
    assert np.abs(grey[..., 0] - grey[..., 1]).max() <= 1 and np.abs(grey[..., 2] - grey[..., 1]).max() <= 1
    assert cf(colorizer.colorize(photo, vividness=2.0)) > 1.5 * cf(colorizer.colorize(photo))


@pytest.mark.parametrize("vividness", [-0.1, 2.01, float("nan")])
def test_vividness_outside_zero_to_two_is_refused(colorizer, vividness):
    with pytest.raises(ValueError, match="vividness must be between 0 and 2"):
        colorizer.colorize(synthetic_photo(1), vividness=vividness)


@pytest.mark.parametrize(("hints", "message"), [
    ([{"x": 48, "y": 0, "color": BLUE}], r"hint 0: x=48 is outside the photo \(0 to 47\)"),
    ([{"x": 0, "y": 0, "color": BLUE}, {"x": 0, "y": -1, "color": BLUE}], r"hint 1: y=-1 is outside"),
    ([{"x": 0, "y": 0, "color": "blue"}], r"hint 0: 'blue' is not a colour as #rrggbb"),
    ([{"x": 0.5, "y": 0, "color": BLUE}], r"hint 0: x must be a whole number"),
    ([{"x": 0, "y": 0}], r"hint 0: needs x, y and color"),
    ([{"x": 0, "y": 0, "color": BLUE}] * (MAX_HINTS + 1), r"65 hints; at most 64"),
])
def test_bad_hints_are_refused_by_name(colorizer, hints, message):
    with pytest.raises(HintError, match=message):
        colorizer.colorize(synthetic_photo(1, size=(48, 40)), hints=hints)


def test_hints_to_a_model_without_the_hint_input_are_refused_clearly(hintless_weights):
    colorizer = Colorizer.load(hintless_weights, device="cpu", size=32)
    assert not colorizer.takes_hints
    with pytest.raises(HintsNotSupported, match=r"model resunet-\w{8} was trained without colour hints"):
        colorizer.colorize(synthetic_photo(1), hints=[{"x": 1, "y": 1, "color": BLUE}])
    assert colorizer.colorize(synthetic_photo(1), hints=[]).size == (48, 40)


def test_hint_map_clips_patches_at_the_edges():
    hints = [{"x": 0, "y": 0, "color": "#ff0000"}, {"x": 99, "y": 49, "color": "#00ff00"}]
    mask = hint_map(hints, size=(50, 100), working=(25, 50))[0, 2]
    assert mask[:3, :3].all() and mask[-3:, -3:].all() and mask.sum() == 18
    assert check_hints(hints, 100, 50) == [(0, 0, (255, 0, 0)), (99, 49, (0, 255, 0))]


class PeakedBins(nn.Module):
    """A generator whose bin distribution is known: left half all on two neighbouring blue bins,
    right half 70% red, 30% green."""

    hints = False

    def __init__(self):
        super().__init__()
        self.register_buffer("bin_centers", ab_bin_centers())

    def _bin(self, a, b):
        return int(((self.bin_centers - torch.tensor([a, b])) ** 2).sum(1).argmin())

    def forward(self, L, return_logits=False):
        h, w = -(-L.shape[-2] // 32) * 32 // 4, -(-L.shape[-1] // 32) * 32 // 4
        p = torch.full((1, len(self.bin_centers), h, w), 1e-9)
        blue_1, blue_2 = self._bin(0.05, -0.45), self._bin(0.05, -0.54)
        p[:, blue_1, :, : w // 2] = p[:, blue_2, :, : w // 2] = 0.5
        p[:, self._bin(0.6, 0.4), :, w // 2:] = 0.7
        p[:, self._bin(-0.6, 0.5), :, w // 2:] = 0.3
        ab = L.new_zeros(1, 2, *L.shape[2:])
        return (ab, p.log()) if return_logits else ab


def test_the_palette_offers_the_likely_colours_merging_neighbouring_bins():
    colorizer = Colorizer(PeakedBins(), {}, "peaked", torch.device("cpu"), size=64)
    photo = Image.new("L", (256, 128), 140)

    left = colorizer.palettes(photo, k=3).at(20, 60)
    right = colorizer.palettes(photo, k=3).at(230, 60)

    assert left[0]["probability"] == 1.0 and left[1]["probability"] == 0.0  # two bins, one blue
    r, g, b = (int(left[0]["color"][i:i + 2], 16) for i in (1, 3, 5))
    assert b > r + 60 and b > g + 60
    assert [p["probability"] for p in right[:2]] == [pytest.approx(0.7, abs=0.005), pytest.approx(0.3, abs=0.005)]
    assert colorizer.palette(photo, 230, 60, k=3) == [p["color"] for p in right]
    r, g, b = (int(right[0]["color"][i:i + 2], 16) for i in (1, 3, 5))
    assert r > g + 60 and r > b + 60


def test_palettes_of_the_shipped_kind_of_model(colorizer):
    photo = rotated_jpeg(size=(120, 60))  # 60 wide, 120 high upright

    grid = colorizer.palettes(photo, hints=[{"x": 5, "y": 100, "color": BLUE}])

    assert grid.size == (60, 120) and grid.working == (40, 80) and grid.cells == (10, 20)
    colours = grid.at(59, 119)
    assert len(colours) == 6 and all(len(c["color"]) == 7 and c["color"].startswith("#") for c in colours)
    assert sum(c["probability"] for c in colours) <= 1.01
    assert PaletteGrid.from_png(grid.to_png()).at(59, 119) == colours
    with pytest.raises(ValueError, match=r"\(60, 0\) is outside the photo \(60 x 120 px\)"):
        grid.at(60, 0)


def test_the_palette_format_needs_neither_torch_nor_numpy():
    code = "import sys, mlcore.palette; print(sorted({'torch', 'numpy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("colour", [BLUE, "#b22222"])
def test_the_shipped_model_follows_a_hint(colour):
    colorizer = Colorizer.load(DEFAULT_WEIGHTS, device="cpu")
    if not colorizer.takes_hints:
        pytest.skip(f"the shipped model ({colorizer.version}) has no hint input yet")
    photo = synthetic_photo(6, size=(256, 192)).convert("L")
    target = ab_of(colour)

    automatic = result_ab(colorizer.colorize(photo))[:, 96, 128]
    hinted = result_ab(colorizer.colorize(photo, hints=[{"x": 128, "y": 96, "color": colour}]))[:, 96, 128]

    assert (hinted - target).norm() < 0.5 * (automatic - target).norm()


@pytest.mark.parametrize("mode", ["LA", "PA", "I;16", "RGBA", "P"])
def test_palettes_of_a_large_photo_in_any_mode_are_drawn_at_its_lightness(mode):
    colorizer = Colorizer(PeakedBins(), {}, "peaked", torch.device("cpu"), size=64)
    grey = Image.new("L", (1000, 800), 140)  # shrunk before its L is taken
    image = Image.fromarray(np.full((800, 1000), 140 * 257, np.uint16)) if mode == "I;16" else grey.convert(mode)

    assert colorizer.palettes(image).at(100, 400) == colorizer.palettes(grey).at(100, 400)
