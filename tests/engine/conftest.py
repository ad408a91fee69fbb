import numpy as np
import pytest
from PIL import Image


def synthetic_photo(seed: int, size=(48, 40)) -> Image.Image:
    """A smooth colourful picture: colour gradients and a bright disc, different per seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    base = rng.uniform(0.2, 0.8, 3)
    slope = rng.uniform(-0.5, 0.5, (2, 3))
    rgb = base + x[..., None] * slope[0] + y[..., None] * slope[1]
    cy, cx, r = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7), rng.uniform(0.1, 0.25)
    disc = (y - cy) ** 2 + (x - cx) ** 2 < r ** 2
    rgb[disc] = rng.uniform(0, 1, 3)
    return Image.fromarray((np.clip(rgb, 0, 1) * 255).astype(np.uint8))


@pytest.fixture
def photo_folder(tmp_path, monkeypatch):
    """A folder of 12 colour photos and 2 grey ones (which training must skip), cache in tmp."""
    monkeypatch.setenv("MLCORE_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "photos"
    (folder / "nested").mkdir(parents=True)
    for i in range(12):
        synthetic_photo(i).save(folder / ("nested" if i % 2 else ".") / f"p{i}.png")
    for i in range(2):
        synthetic_photo(100 + i).convert("L").convert("RGB").save(folder / f"grey{i}.jpg")
    return folder


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory):
    from mlcore.weights import save_untrained

    return save_untrained(tmp_path_factory.mktemp("weights") / "tiny.safetensors", ngf=8, hints=True)


@pytest.fixture(scope="session")
def hintless_weights(tmp_path_factory):
    from mlcore.weights import save_untrained

    return save_untrained(tmp_path_factory.mktemp("weights") / "hintless.safetensors", ngf=8)
