"""Colour hints: points whose colour the user knows, as the network's hint map.

The map is ideepcolor's input (Zhang et al. 2017): channels 0-1 hold the
normalised ab of hinted pixels, channel 2 a 0/1 mask of them. Training
simulates hints from the truth; inference draws the user's points.
"""
import math
import re

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


# ---------------------------------------------------------------------------
# A user's hints: {"x", "y", "color": "#rrggbb"} in pixels of the upright photo
# ---------------------------------------------------------------------------

MAX_HINTS = 64
# A user's point becomes a square patch of this many pixels at the network's working size:
# within the 1-9 px that training simulates, and the 5x5 patches evaluation uses.
HINT_PATCH = 5
_HEX = re.compile(r"#[0-9a-fA-F]{6}")


class HintError(ValueError):
    """A hint that can't be used; the message names it (by its position in the list) and says why."""


def parse_color(value) -> tuple[int, int, int]:
    """'#rrggbb' -> (r, g, b) in 0..255."""
    if not isinstance(value, str) or not _HEX.fullmatch(value):
        raise HintError(f"{value!r} is not a colour as #rrggbb")
    return tuple(int(value[i:i + 2], 16) for i in (1, 3, 5))


def check_hints(hints, width: int, height: int) -> list[tuple[int, int, tuple[int, int, int]]]:
    """The hints as (x, y, (r, g, b)), checked against an upright photo of width x height px.

    Raises HintError naming the first bad one: more than MAX_HINTS, not a point with a colour,
    outside the photo, or a colour that is not #rrggbb.
    """
    hints = list(hints or [])
    if len(hints) > MAX_HINTS:
        raise HintError(f"{len(hints)} hints; at most {MAX_HINTS} are allowed")
    checked = []
    for i, hint in enumerate(hints):
        if not isinstance(hint, dict) or not {"x", "y", "color"} <= set(hint):
            raise HintError(f"hint {i}: needs x, y and color, got {hint!r}")
        x, y = hint["x"], hint["y"]
        for name, value, size in (("x", x, width), ("y", y, height)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise HintError(f"hint {i}: {name} must be a whole number of pixels, got {value!r}")
            if not 0 <= value < size:
                raise HintError(f"hint {i}: {name}={value} is outside the photo (0 to {size - 1})")
        try:
            rgb = parse_color(hint["color"])
        except HintError as exc:
            raise HintError(f"hint {i}: {exc}") from None
        checked.append((x, y, rgb))
    return checked


def hint_map(hints, size: tuple[int, int], working: tuple[int, int], patch: int = HINT_PATCH) -> torch.Tensor:
    """The network's hint map (1, 3, h, w) at the working size `working` = (h, w) for a user's
    hints on an upright photo of `size` = (height, width) px.

    Each point lands at its scaled position as a `patch` x `patch` square holding the normalised
    ab of its colour (the colour's own lightness is dropped: the photo's L stays). Later hints
    paint over earlier ones where they overlap.
    """
    from .color import rgb_to_lab

    height, width = size
    h, w = working
    checked = check_hints(hints, width, height)
    hints_out = torch.zeros(1, HINT_CHANNELS, h, w)
    if not checked:
        return hints_out
    rgb = torch.tensor([c for _, _, c in checked], dtype=torch.float32) / 255.0
    _, ab = rgb_to_lab(rgb.T.reshape(1, 3, -1, 1))
    ab = ab[0, :, :, 0].T  # (N, 2)
    for (x, y, _), colour in zip(checked, ab):
        # Pixel centres map to pixel centres, as the image's own resizing does.
        cx = min(w - 1, max(0, round((x + 0.5) * w / width - 0.5)))
        cy = min(h - 1, max(0, round((y + 0.5) * h / height - 0.5)))
        x0, y0 = max(0, cx - patch // 2), max(0, cy - patch // 2)
        x1, y1 = min(w, cx - patch // 2 + patch), min(h, cy - patch // 2 + patch)
        hints_out[0, :2, y0:y1, x0:x1] = colour[:, None, None]
        hints_out[0, 2, y0:y1, x0:x1] = 1.0
    return hints_out


class HintsNotSupported(ValueError):
    """Hints given to a model that was trained without the hint input."""
