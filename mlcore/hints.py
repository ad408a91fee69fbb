"""Colour hints: points whose colour the user knows, as the network's hint map.

The map is ideepcolor's input (Zhang et al. 2017): channels 0-1 hold the
normalised ab of hinted pixels, channel 2 a 0/1 mask of them. Training
simulates hints from the truth; inference draws the user's points.
"""
import math

import torch

from .models import HINT_CHANNELS


def simulate_hints(ab: torch.Tensor, rng: torch.Generator, share: float, p: float = 1 / 8,
                   max_points: int = 64, max_patch: int = 9) -> torch.Tensor:
    """Hint maps (B, 3, H, W) for a batch of true ab, as ideepcolor trains: a `share` of the
    samples get a geometric number of points (success probability `p`), each a square patch of
    1-`max_patch` px filled with the truth's mean colour over it; the rest get none, so the
    same network stays an automatic colorizer."""
    b, _, h, w = ab.shape
    hints = torch.zeros(b, HINT_CHANNELS, h, w)
    ab = ab.float().cpu()
    for i in range(b):
        u = torch.rand(2, generator=rng)
        if u[0] >= share:
            continue
        # Inverse CDF of the geometric distribution on 1, 2, 3, ...
        count = min(max_points, 1 + int(math.log(max(u[1].item(), 1e-12)) / math.log(1 - p)))
        sizes = torch.randint(1, max_patch + 1, (count,), generator=rng).tolist()
        ys = (torch.rand(count, generator=rng) * h).long().tolist()
        xs = (torch.rand(count, generator=rng) * w).long().tolist()
        for s, y, x in zip(sizes, ys, xs):
            y0, x0 = max(0, y - s // 2), max(0, x - s // 2)
            y1, x1 = min(h, y0 + s), min(w, x0 + s)
            hints[i, :2, y0:y1, x0:x1] = ab[i, :, y0:y1, x0:x1].mean((1, 2))[:, None, None]
            hints[i, 2, y0:y1, x0:x1] = 1.0
    return hints
