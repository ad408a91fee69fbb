import pytest
import torch

from mlcore.models import build_generator
from mlcore.weights import WeightsError, load_generator, read_metadata, save_generator


def test_metadata_travels_with_the_weights(tmp_path):
    generator = build_generator("unet", num_downs=6, ngf=8)
    path = save_generator(tmp_path / "g.safetensors", generator, "unet", {"num_downs": 6, "ngf": 8},
                          training={"epochs": 3}, validation={"psnr": 23.1})
    loaded, meta = load_generator(path)
    assert meta["arch"] == "unet" and meta["config"] == {"num_downs": 6, "ngf": 8}
    assert meta["training"] == {"epochs": 3} and meta["validation"] == {"psnr": 23.1}
    for (name, a), b in zip(generator.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a.half().float(), b), name


def test_missing_file(tmp_path):
    with pytest.raises(WeightsError, match="weights file not found: .*nope.safetensors"):
        load_generator(tmp_path / "nope.safetensors")


def test_corrupt_file(tmp_path, tiny_weights):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(tiny_weights.read_bytes()[:5000])
    with pytest.raises(WeightsError, match="corrupt"):
        load_generator(bad)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"not weights at all")
    with pytest.raises(WeightsError, match="corrupt or not a safetensors file"):
        read_metadata(garbage)


def test_file_without_our_metadata(tmp_path):
    from safetensors.torch import save_file

    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(WeightsError, match="not a colorizer weights file"):
        load_generator(path)


def test_weights_that_do_not_fit_the_architecture(tmp_path):
    path = save_generator(tmp_path / "g.safetensors", build_generator("resunet", ngf=8), "resunet", {"ngf": 16})
    with pytest.raises(WeightsError, match="does not match architecture resunet: .*size mismatch"):
        load_generator(path)


def test_unknown_architecture(tmp_path):
    path = save_generator(tmp_path / "g.safetensors", build_generator("resunet", ngf=8), "transformer", {})
    with pytest.raises(WeightsError, match="names an architecture this code can't build"):
        load_generator(path)
