import io
import zlib

import numpy as np
import pytest
from PIL import Image

from mlcore import png

from .conftest import synthetic_photo


def _noisy(size, mode="RGB", seed=0):
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)


@pytest.mark.parametrize("image", [
    synthetic_photo(1, size=(301, 177)),
    synthetic_photo(2, size=(64, 48)).convert("L"),
    _noisy((1, 1)),
    _noisy((3, 700)),  # many strips of one row each
    _noisy((1500, 1500)),  # several strips and IDAT chunks
    _noisy((1200, 300), mode="L"),
], ids=["photo", "grey", "1x1", "tall", "large", "grey-large"])
def test_any_reader_decodes_the_same_pixels(image):
    data = png.encode(image)
    decoded = Image.open(io.BytesIO(data))
    decoded.load()  # Pillow checks every chunk's CRC and the zlib stream
    assert decoded.format == "PNG" and decoded.mode == image.mode and decoded.size == image.size
    assert np.array_equal(np.asarray(decoded), np.asarray(image))


def test_the_same_image_gives_the_same_bytes():
    image = synthetic_photo(3, size=(640, 480))
    assert png.encode(image) == png.encode(image.copy())


def test_other_modes_are_written_as_rgb():
    image = synthetic_photo(4, size=(40, 30)).convert("CMYK")
    decoded = Image.open(io.BytesIO(png.encode(image)))
    assert decoded.mode == "RGB"
    assert np.array_equal(np.asarray(decoded), np.asarray(image.convert("RGB")))


def test_it_works_without_isal(monkeypatch):
    image = synthetic_photo(5, size=(90, 60))
    monkeypatch.setattr(png, "_deflate", zlib)
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png.encode(image)))), np.asarray(image))


def test_it_compresses_like_a_png_should():
    # A smooth photo: well under the raw size (the Up filter and deflate do their job).
    image = synthetic_photo(6, size=(800, 600))
    assert len(png.encode(image)) < 800 * 600 * 3 / 10
