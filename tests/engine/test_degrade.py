import torch

from mlcore.degrade import degrade_lightness


def _lightness(seed=0):
    # A smooth ramp with an edge: blur and fading show on it.
    x = torch.linspace(-0.8, 0.8, 32)
    L = x.view(1, 1, 1, -1).expand(4, 1, 32, 32).clone()
    L[..., 12:20, 12:20] = 0.9
    return L


def test_share_zero_leaves_every_input_as_it_was():
    L = _lightness()
    assert degrade_lightness(L, torch.Generator().manual_seed(0), 0.0).equal(L)


def test_share_one_degrades_every_input_and_keeps_it_a_lightness():
    L = _lightness()
    out = degrade_lightness(L, torch.Generator().manual_seed(0), 1.0)
    assert out.shape == L.shape and out.dtype == L.dtype
    assert out.min() >= -1 and out.max() <= 1
    for before, after in zip(L, out):
        assert not after.equal(before)
        # Still the same picture: degraded, not replaced.
        assert torch.corrcoef(torch.stack([before.flatten(), after.flatten()]))[0, 1] > 0.8


def test_the_same_rng_state_gives_the_same_degradation():
    L = _lightness()
    first = degrade_lightness(L, torch.Generator().manual_seed(3), 0.5)
    again = degrade_lightness(L, torch.Generator().manual_seed(3), 0.5)
    assert first.equal(again)


def test_every_call_draws_the_same_amount_from_the_rng_whatever_it_picks():
    # Resumed and multi-process runs stay in step only if the draws do not depend on the picks.
    L = _lightness()
    states = []
    for share in (0.0, 0.5, 1.0):
        rng = torch.Generator().manual_seed(5)
        degrade_lightness(L, rng, share)
        states.append(rng.get_state())
    assert all(s.equal(states[0]) for s in states)


def test_a_half_share_degrades_about_half_of_a_batch():
    L = _lightness().repeat(50, 1, 1, 1)
    out = degrade_lightness(L, torch.Generator().manual_seed(1), 0.5)
    changed = sum(not a.equal(b) for a, b in zip(out, L))
    assert 70 <= changed <= 130
