import numpy as np
import pytest
import torch

from mlcore import color
from mlcore.inference import Colorizer, to_rgb_array
from mlcore.weights import DEFAULT_WEIGHTS
from mlcore.white_balance import balanced

from .conftest import synthetic_photo


def _ab(*pixels):
    """A 1-row image of normalised ab from a*b* pairs."""
    return torch.tensor(pixels, dtype=torch.float32).T.reshape(1, 2, 1, -1) / color.AB_SCALE


def _lit(ab, lightness=60.0):
    """Normalised L for `ab`, every pixel at L* = `lightness`."""
    return torch.full_like(ab[:, :1], lightness / 50 - 1)


def test_what_is_painted_nearly_grey_averages_grey_and_everything_moves_with_it():
    # Two near-grey pixels with a warm cast (mean +1, +4) and one sure red.
    ab = _ab((0, 3), (2, 5), (40, 20))
    out = balanced(_lit(ab), ab, 1.0, neutral_chroma=10) * color.AB_SCALE
    assert out[0, :, 0].T.flatten().tolist() == pytest.approx([-1, -1, 1, 1, 39, 16], abs=1e-4)
    half = balanced(_lit(ab), ab, 0.5, neutral_chroma=10) * color.AB_SCALE
    assert half[0, :, 0, 0].tolist() == pytest.approx([-0.5, 1], abs=1e-4)


def test_each_image_has_its_own_cast_and_strength():
    ab = torch.cat([_ab((0, 3), (2, 5)), _ab((-4, -2), (-2, -2)), _ab((1, 1), (3, 3))])
    out = balanced(_lit(ab), ab, torch.tensor([1.0, 1.0, 0.0]), neutral_chroma=10) * color.AB_SCALE
    assert out[:2].mean((2, 3)).flatten().tolist() == pytest.approx([0, 0, 0, 0], abs=1e-4)
    assert torch.equal(out[2], ab[2] * color.AB_SCALE)  # strength 0: as painted


def test_an_image_with_nothing_nearly_grey_is_left_as_it_is():
    ab = _ab((40, 20), (-30, 35))
    assert torch.equal(balanced(_lit(ab), ab, 1.0, neutral_chroma=10), ab)


def test_the_shift_fades_out_in_the_shadows():
    ab = _ab((0, 4), (0, 4), (0, 4))
    L = torch.tensor([0.0, 15.0, 45.0]).view(1, 1, 1, 3) / 50 - 1  # black, half way to SHADOWS (30), lit
    out = balanced(L, ab, 1.0, neutral_chroma=10) * color.AB_SCALE
    assert out[0, 1, 0].tolist() == pytest.approx([4, 2, 0], abs=1e-4)


def _near_grey_cast(image, neutral_chroma=10):
    """The mean a*b* of a result's pixels with chroma under `neutral_chroma`."""
    rgb = torch.from_numpy(to_rgb_array(image)).permute(2, 0, 1)[None]
    ab = color.rgb_to_lab(rgb)[1][0] * color.AB_SCALE
    near_grey = ab.norm(dim=0) < neutral_chroma
    return ab[:, near_grey].mean(1)


@pytest.fixture(scope="module")
def colorizers():
    """The shipped network without and with the balance (its own network paints a cast to remove)."""
    plain, balancing = (Colorizer.load(DEFAULT_WEIGHTS, device="cpu", size=64) for _ in range(2))
    plain.white_balance = None
    balancing.white_balance = {"strength": 1.0, "neutral_chroma": 10.0}
    return plain, balancing


def test_the_colorizer_takes_the_cast_out_of_what_it_paints_nearly_grey(colorizers):
    plain, balancing = colorizers
    photo = synthetic_photo(5, size=(160, 120)).convert("L")
    before, after = _near_grey_cast(plain.colorize(photo)), _near_grey_cast(balancing.colorize(photo))
    assert before.norm() > 1.0  # a visible cast in a*b* units
    assert after.norm() < before.norm() / 2


def test_hints_weaken_the_balance_of_their_photo(colorizers):
    plain, balancing = colorizers
    photo = synthetic_photo(6, size=(120, 90)).convert("L")
    hints = [{"x": 10, "y": 10, "color": "#c0a080"}, {"x": 100, "y": 70, "color": "#405060"}]
    tripled = Colorizer.load(DEFAULT_WEIGHTS, device="cpu", size=64)
    tripled.white_balance = {"strength": 3.0, "neutral_chroma": 10.0}  # with two hints: in full
    casts = [_near_grey_cast(c.colorize(photo, hints=hints)).norm() for c in (plain, balancing, tripled)]
    assert casts[0] > casts[1] > casts[2] and casts[2] < casts[0] / 2
    with_hints, without = balancing.colorize_batch([photo, photo], hints=[hints, None])
    # Alone or in a batch, each photo gets its own strength (up to a level of rounding: the network's
    # arithmetic differs a little with the batch's size).
    assert _levels_apart(with_hints, balancing.colorize(photo, hints=hints)) <= 1
    assert _levels_apart(without, balancing.colorize(photo)) <= 1
    assert _levels_apart(with_hints, tripled.colorize(photo, hints=hints)) > 1


def _levels_apart(a, b):
    return int(np.abs(np.asarray(a).astype(int) - np.asarray(b).astype(int)).max())
