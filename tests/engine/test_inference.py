import io

import numpy as np
import pytest
import torch
from PIL import Image

from mlcore import color
from mlcore.inference import MAX_ASPECT, Colorizer, merge, to_rgb_array, working_size

from .conftest import synthetic_photo


@pytest.fixture(scope="module")
def colorizer(tiny_weights):
    return Colorizer.load(tiny_weights, device="cpu", size=32)


def _L(image):
    rgb = torch.from_numpy(to_rgb_array(image)).permute(2, 0, 1)[None]
    return (color.rgb_to_lab(rgb)[0][0, 0] + 1) * 50


def test_merge_keeps_the_full_resolution_L_exactly():
    L = torch.rand(1, 1, 97, 131) * 2 - 1
    L_small = torch.nn.functional.interpolate(L, size=(24, 33), mode="bilinear", antialias=True)
    lab = merge(L, L_small, torch.rand(1, 2, 24, 33) * 2 - 1)
    assert lab.shape == (1, 3, 97, 131)
    assert torch.equal(lab[:, :1], L)


def test_merged_colour_edges_follow_the_full_resolution_edges():
    # A dark left half and a bright right half, split at column 203 of 400 (not on the small grid).
    L = torch.full((1, 1, 40, 400), -0.6)
    L[..., 203:] = 0.6
    L_small = torch.nn.functional.interpolate(L, size=(4, 40), mode="bilinear", antialias=True)
    ab_small = torch.where(L_small > 0, 0.4, -0.4).repeat(1, 2, 1, 1)  # blue-ish left, orange-ish right
    ab = merge(L, L_small, ab_small)[0, 1]
    plain = torch.nn.functional.interpolate(ab_small, size=(40, 400), mode="bilinear")[0, 0]
    # Plain upsampling smears the colour over ~10 columns around the edge; the merge keeps it sharp.
    assert (plain[20, 193:213].abs() < 0.3).sum() >= 4
    assert torch.all(ab[20, :203] < -0.2) and torch.all(ab[20, 203:] > 0.3)
    assert ab[20, 203] - ab[20, 202] > 0.7  # the whole step in one column


def test_output_has_the_inputs_size_and_lightness(colorizer):
    photo = synthetic_photo(7, size=(301, 177))
    out = colorizer.colorize(photo)
    assert out.mode == "RGB" and out.size == (301, 177)
    # Equal up to 8-bit rounding and gamut clipping of the new colours.
    assert (_L(out) - _L(photo)).abs().mean() < 1.0


def test_detail_finer_than_the_working_resolution_survives(colorizer):
    stripes = np.zeros((200, 200), np.uint8)
    stripes[:, ::2] = 255  # one-pixel stripes: gone at 32 px, present in the result's L
    out = np.asarray(colorizer.colorize(Image.fromarray(stripes)).convert("L")).astype(int)
    assert np.abs(out[:, 0::2].mean() - out[:, 1::2].mean()) > 200


def test_colour_input_is_desaturated_first(colorizer):
    photo = synthetic_photo(3, size=(64, 64))
    L, _ = color.rgb_to_lab(torch.from_numpy(to_rgb_array(photo)).permute(2, 0, 1)[None])
    grey = Image.fromarray((color.grey_rgb(L)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
    a, b = np.asarray(colorizer.colorize(photo), int), np.asarray(colorizer.colorize(grey), int)
    assert np.abs(a - b).max() <= 2  # same L (to 8-bit rounding), so the same prediction


def _modes():
    base = synthetic_photo(5, size=(40, 30))
    grey16 = Image.fromarray((np.asarray(base.convert("L"), np.uint16) * 257).astype(np.uint16))
    cases = {
        "L": base.convert("L"), "LA": base.convert("LA"), "RGB": base, "RGBA": base.convert("RGBA"),
        "P": base.convert("P"), "CMYK": base.convert("CMYK"), "I;16": grey16, "I": base.convert("I"),
        "1": base.convert("1"),
    }
    return cases


@pytest.mark.parametrize("mode", list(_modes()))
def test_every_image_mode(colorizer, mode):
    image = _modes()[mode]
    out = colorizer.colorize(image)
    assert out.mode == "RGB" and out.size == image.size


def test_16_bit_input_keeps_its_precision():
    ramp = np.linspace(0, 65535, 4096).astype(np.uint16).reshape(64, 64)
    rgb = to_rgb_array(Image.fromarray(ramp))
    assert len(np.unique(rgb[..., 0])) > 1000  # not squeezed into 256 levels


@pytest.mark.parametrize("mode", ["I", "F"])
def test_8_bit_values_in_deep_modes_keep_their_brightness(colorizer, mode):
    grey = synthetic_photo(6, size=(40, 30)).convert("L")
    deep = Image.fromarray(np.asarray(grey).astype(np.int32 if mode == "I" else np.float32))
    assert deep.mode == mode

    out = colorizer.colorize(deep)

    # Read as 8-bit, not as a sliver of 16 bits: as bright as the same photo in L (not near black).
    assert (_L(out) - _L(grey)).abs().mean() < 1.0
    assert np.allclose(to_rgb_array(deep)[..., 0], np.asarray(grey) / 255)


def test_deep_modes_are_scaled_by_their_range():
    sixteen_bit = Image.fromarray(np.array([[0, 65535]], np.int32))
    unit_floats = Image.fromarray(np.array([[0.0, 0.5]], np.float32))
    out_of_range = Image.fromarray(np.array([[-1000, 99000]], np.int32))
    assert np.allclose(to_rgb_array(sixteen_bit)[0, :, 0], [0, 1])
    assert np.allclose(to_rgb_array(unit_floats)[0, :, 0], [0, 0.5])
    assert np.allclose(to_rgb_array(out_of_range)[0, :, 0], [0, 1])


def test_transparency_is_composited_on_white():
    clear = Image.new("RGBA", (4, 4), (255, 0, 0, 0))
    assert np.allclose(to_rgb_array(clear), 1.0)


def test_exif_orientation_is_honoured(colorizer):
    photo = synthetic_photo(9, size=(60, 20))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    buf = io.BytesIO()
    photo.save(buf, "JPEG", exif=exif)
    out = colorizer.colorize(Image.open(io.BytesIO(buf.getvalue())))
    assert out.size == (20, 60)


def test_a_batch_of_mixed_sizes_matches_one_by_one(colorizer):
    photos = [synthetic_photo(i, size=s) for i, s in enumerate([(40, 40), (64, 48), (40, 40)])]
    batch = colorizer.colorize_batch(photos)
    for photo, out in zip(photos, batch):
        single = colorizer.colorize(photo)
        assert out.size == photo.size
        assert np.abs(np.asarray(out, int) - np.asarray(single, int)).max() <= 1


def test_version_names_arch_and_file(colorizer, tiny_weights):
    assert colorizer.version.startswith("resunet-") and len(colorizer.version) == len("resunet-") + 8


def test_chroma_gain_makes_colours_more_saturated(tiny_weights):
    from mlcore.metrics import colorfulness

    photo = synthetic_photo(4, size=(64, 64))
    plain = Colorizer.load(tiny_weights, size=32)
    vivid = Colorizer.load(tiny_weights, size=32)
    vivid.chroma = 2.0

    def cf(image):
        return float(colorfulness(torch.from_numpy(to_rgb_array(image)).permute(2, 0, 1)[None]))

    assert cf(vivid.colorize(photo)) > 1.5 * cf(plain.colorize(photo))


def test_strips_of_rows_give_exactly_the_whole_merge():
    L = torch.rand(1, 1, 97, 131) * 2 - 1
    L_small = torch.nn.functional.interpolate(L, size=(24, 33), mode="bilinear", antialias=True)
    ab = torch.rand(1, 2, 24, 33) * 2 - 1
    strips = torch.cat([merge(L, L_small, ab, rows=(y, min(97, y + 10))) for y in range(0, 97, 10)], dim=2)
    assert torch.equal(strips, merge(L, L_small, ab))


# --- The fast full-resolution path against the one it replaced --------------------------------
# The previous implementation, kept here as the reference: float RGB of the whole image, kornia's
# RGB -> Lab, the merge by grid_sample, kornia's Lab -> RGB, rounding.

def _reference_merge(L_full, L_small, ab_small, rows, radius=2, eps=1e-3):
    from mlcore.inference import _box

    mean_L, mean_ab = _box(L_small, radius), _box(ab_small, radius)
    cov = _box(L_small * ab_small, radius) - mean_L * mean_ab
    var = _box(L_small * L_small, radius) - mean_L * mean_L
    a = cov / (var + eps)
    coefficients = torch.cat([_box(a, radius), _box(mean_ab - a * mean_L, radius)], dim=1)
    height, width = L_full.shape[-2:]
    y0, y1 = rows
    ys = (2 * torch.arange(y0, y1) + 1) / height - 1
    xs = (2 * torch.arange(width) + 1) / width - 1
    grid = torch.stack(torch.meshgrid(xs, ys, indexing="xy"), dim=-1).expand(len(L_full), -1, -1, -1)
    a, b = torch.nn.functional.grid_sample(coefficients, grid, mode="bilinear", padding_mode="border",
                                           align_corners=False).chunk(2, 1)
    L = L_full[..., y0:y1, :]
    return torch.cat([L, (a * L + b).clamp_(-1, 1)], dim=1)


@torch.no_grad()
def _reference_colorize(colorizer, image):
    from mlcore.inference import working_size

    rgb = to_rgb_array(image)
    h, w = rgb.shape[:2]
    L = color.rgb_to_lab(torch.from_numpy(rgb).permute(2, 0, 1)[None])[0]
    L_small = torch.nn.functional.interpolate(L, size=working_size(h, w, colorizer.size), mode="bilinear",
                                              align_corners=False, antialias=True)
    ab = (colorizer.generator(L_small).float() * colorizer.chroma).clamp_(-1, 1)
    lab = _reference_merge(L, L_small, ab, rows=(0, h))
    out = (color.lab_to_rgb(lab[:, :1], lab[:, 1:])[0].permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    return Image.fromarray(out)


def _lab(image):
    rgb = torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)[None]
    L, ab = color.rgb_to_lab(rgb)
    return (L[0, 0] + 1) * 50, ab[0] * 110


@pytest.fixture(scope="module")
def shipped():
    from mlcore.weights import DEFAULT_WEIGHTS

    colorizer = Colorizer.load(DEFAULT_WEIGHTS, device="cpu", size=64)
    colorizer.chroma = max(colorizer.chroma, 2.0)  # vivid colours: differences would show
    # The pixel path is compared here; the reference has one gain for all and the network's own cast.
    colorizer.certainty = colorizer.white_balance = None
    return colorizer


def _comparison_images():
    grey16 = (np.asarray(synthetic_photo(22, size=(157, 211)).convert("L"), np.uint16) * 257
              + np.arange(211)[:, None].astype(np.uint16))
    grey8 = np.asarray(synthetic_photo(24, size=(140, 180)).convert("L"))
    return {
        "colour": synthetic_photo(20, size=(333, 250)),
        "grey": synthetic_photo(21, size=(250, 333)).convert("L"),
        "grey as RGB": synthetic_photo(21, size=(250, 333)).convert("L").convert("RGB"),
        "16-bit": Image.fromarray(grey16),
        # 32-bit and float greys are scaled by their range (mlcore.image_modes.grey_scale).
        "32-bit of 8-bit values": Image.fromarray(grey8.astype(np.int32), "I"),
        "32-bit stretched": Image.fromarray(grey8.astype(np.int32) * 1000 - 50_000, "I"),
        "float of 8-bit values": Image.fromarray(grey8.astype(np.float32), "F"),
        "float in 0..1": Image.fromarray(grey8.astype(np.float32) / 255, "F"),
        "RGBA": synthetic_photo(23, size=(97, 300)).convert("RGBA"),
        "stripes": Image.fromarray(np.tile(np.array([0, 255], np.uint8), (120, 150))),
    }


@pytest.mark.parametrize("name", list(_comparison_images()))
def test_the_fast_path_gives_the_previous_result(shipped, name):
    image = _comparison_images()[name]
    fast, reference = shipped.colorize(image), _reference_colorize(shipped, image)
    assert fast.size == reference.size and fast.mode == "RGB"
    difference = np.abs(np.asarray(fast, int) - np.asarray(reference, int))
    # Float rounding (kornia's pow against tables, grid_sample against interpolate) moves a value
    # across an 8-bit rounding boundary now and then: by one level, on a few pixels.
    assert difference.max() <= 1 and (difference > 0).mean() < 0.01
    (fast_L, fast_ab), (ref_L, ref_ab) = _lab(fast), _lab(reference)
    assert (fast_ab - ref_ab).abs().max() < 1.5  # a*b* units, of rounded 8-bit results
    assert (fast_L - ref_L).abs().max() < 0.6


def test_a_grey_scan_saved_as_rgb_gives_exactly_its_grey_result(shipped):
    grey = synthetic_photo(30, size=(120, 90)).convert("L")
    assert np.array_equal(np.asarray(shipped.colorize(grey)), np.asarray(shipped.colorize(grey.convert("RGB"))))


def test_16_bit_levels_reach_the_result(shipped):
    # Two 16-bit images one 8-bit level apart at most: their results differ where the levels do.
    ramp = (np.linspace(20000, 20256, 200 * 150) .reshape(150, 200)).astype(np.uint16)
    out = np.asarray(shipped.colorize(Image.fromarray(ramp)), int)
    assert len(np.unique(out.sum(axis=2))) > 2  # 257 levels of 16 bits -> more than one 8-bit level


def test_working_size_lightness_is_computed_in_strips_exactly():
    from mlcore.inference import _Pixels, _small_lightness

    image = synthetic_photo(31, size=(1031, 517))
    pixels = _Pixels(image)
    L = color.rgb_to_lab(torch.from_numpy(to_rgb_array(image)).permute(2, 0, 1)[None])[0]
    whole = torch.nn.functional.interpolate(L, size=(64, 128), mode="bilinear", align_corners=False, antialias=True)
    strips = _small_lightness(pixels, (64, 128), torch.device("cpu"))
    assert (whole - strips).abs().max() < 1e-5  # kornia's L against the table's: float rounding


def test_the_working_size_caps_the_longer_side_too():
    # A sliver of an image must not reach the network at full length.
    assert working_size(50_000_000, 1, 256) == (256 * MAX_ASPECT, 1)
    assert working_size(1, 1_000_000, 256) == (1, 256 * MAX_ASPECT)
    # Photos are scaled by their shorter side alone, as before; never upscaled.
    assert working_size(3000, 4000, 256) == (256, 341)
    assert working_size(256, 7680, 256) == (256, 7680)
    assert working_size(100, 50, 256) == (100, 50)
