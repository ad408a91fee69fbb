import pytest
import torch

from mlcore.models import GENERATORS, PatchGAN, build_generator, count_parameters
from mlcore.weights import save_generator

CONFIGS = {"unet": {"num_downs": 8, "ngf": 8}, "resunet": {"ngf": 8}}


@pytest.mark.parametrize("arch", sorted(GENERATORS))
@pytest.mark.parametrize("size", [(256, 256), (128, 96), (67, 45), (20, 300)])
def test_generators_map_L_to_ab_of_the_same_size(arch, size):
    generator = build_generator(arch, **CONFIGS[arch]).eval()
    with torch.no_grad():
        ab = generator(torch.rand(2, 1, *size) * 2 - 1)
    assert ab.shape == (2, 2, *size)
    assert ab.abs().max() <= 1


def test_parameter_counts_of_the_default_generators(tmp_path):
    counts = {arch: count_parameters(build_generator(arch)) for arch in GENERATORS}
    assert counts["unet"] == 54_409_858  # the seed's U-Net at ngf 64, as pix2pix's
    assert counts["resunet"] == 6_759_334
    path = save_generator(tmp_path / "g.safetensors", build_generator("resunet"), "resunet", {})
    assert path.stat().st_size < 24 * 2 ** 20


def test_unknown_generator_is_refused():
    with pytest.raises(ValueError, match="unknown generator 'vgg'"):
        build_generator("vgg")


def test_patchgan_scores_30x30_patches_at_256():
    out = PatchGAN()(torch.rand(1, 1, 256, 256), torch.rand(1, 2, 256, 256))
    assert out.shape == (1, 1, 30, 30)
    assert count_parameters(PatchGAN()) == 2_765_633
