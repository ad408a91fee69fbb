"""What scanning and age do to a photo's lightness, simulated for training and evaluation.

People bring scans of old prints and frames of old video: soft, grainy, faded, with a tone curve
unlike a modern camera's. The scene's colours are the same, so the generator learns to give them
from a degraded L as from a clean one: only its input is degraded, the target ab is untouched.
"""
import math

import kornia.filters
import torch

MAX_GAMMA = 1.5  # tone curve L ** g, g from 1/1.5 to 1.5
MIN_CONTRAST = 0.6  # faded: the spread around the photo's mean shrinks to this share at most
MAX_BLUR = 1.5  # Gaussian sigma, px at the training size
MAX_GRAIN = 0.03  # noise std on the 0-1 lightness scale


def degrade_lightness(L: torch.Tensor, rng: torch.Generator, share: float) -> torch.Tensor:
    """A `share` of the normalised lightness maps L (B, 1, H, W) in [-1, 1] get a random tone
    curve, fading, blur and grain, each drawn on its own; the rest come back unchanged. Every
    draw comes from `rng`, on the CPU, so a run resumes and shards exactly."""
    b = len(L)
    picked = (torch.rand(b, generator=rng) < share).float()
    gamma = torch.exp((torch.rand(b, generator=rng) * 2 - 1) * math.log(MAX_GAMMA))
    contrast = 1 - torch.rand(b, generator=rng) * (1 - MIN_CONTRAST)
    sigma = torch.rand(b, generator=rng) * MAX_BLUR
    grain = torch.rand(b, generator=rng) * MAX_GRAIN
    noise = torch.randn(L.shape, generator=rng)
    if not picked.any():
        return L
    clean = L.float().cpu()
    x = ((clean + 1) / 2).clamp(0, 1) ** gamma.view(-1, 1, 1, 1)
    mean = x.mean((2, 3), keepdim=True)
    x = mean + (x - mean) * contrast.view(-1, 1, 1, 1)
    x = kornia.filters.gaussian_blur2d(x, (7, 7), sigma.clamp_min(1e-3)[:, None].expand(b, 2))
    x = (x + noise * grain.view(-1, 1, 1, 1)).clamp(0, 1)
    out = torch.lerp(clean, x * 2 - 1, picked.view(-1, 1, 1, 1))
    return out.to(L.device, L.dtype)
