import pytest
import torch

from mlcore.models import GENERATORS, ExtraBlock, PatchGAN, build_generator, count_parameters, grow
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
    deepest = {"hints": True, "extra_blocks": 2}  # the largest we train: its float16 file still fits
    path = save_generator(tmp_path / "g.safetensors", build_generator("resunet", **deepest), "resunet", deepest)
    assert path.stat().st_size < 24 * 2 ** 20


def test_unknown_generator_is_refused():
    with pytest.raises(ValueError, match="unknown generator 'vgg'"):
        build_generator("vgg")


def test_patchgan_scores_30x30_patches_at_256():
    out = PatchGAN()(torch.rand(1, 1, 256, 256), torch.rand(1, 2, 256, 256))
    assert out.shape == (1, 1, 30, 30)
    assert count_parameters(PatchGAN()) == 2_765_633


def _trained_a_little(generator):
    """Weights and batch-norm statistics off their initial values, as a trained net's are."""
    opt = torch.optim.Adam(generator.parameters(), lr=1e-2)
    for _ in range(3):
        generator(torch.rand(4, 1, 64, 64) * 2 - 1).square().mean().backward()
        opt.step()
        opt.zero_grad()
    return generator.eval()


def test_a_grown_generator_colours_exactly_as_before_until_trained():
    small = _trained_a_little(build_generator("resunet", ngf=8))
    big = grow(small, "resunet", {"ngf": 8, "hints": True, "extra_blocks": 2}).eval()
    assert count_parameters(big) > count_parameters(small) * 1.5
    L = torch.rand(2, 1, 96, 64) * 2 - 1
    with torch.no_grad():
        assert torch.equal(big(L), small(L))
        assert torch.equal(big(L, torch.rand(2, 3, 96, 64)), small(L))  # the hint input starts at zero
    # The new blocks learn: their zeroed scales get gradients, so training moves them off the identity.
    big.train()
    big(L).square().mean().backward()
    assert all(m.body[-1].weight.grad.abs().sum() > 0 for m in big.modules() if isinstance(m, ExtraBlock))


def test_a_trained_generator_cannot_be_grown_into_another_shape():
    with pytest.raises(ValueError, match="can only be grown by hints or extra_blocks"):
        grow(build_generator("resunet", ngf=8), "resunet", {"ngf": 16})
