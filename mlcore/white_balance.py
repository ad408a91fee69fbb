"""White balance of the predicted colours: what the network paints nearly grey averages grey.

A grey photo does not show its camera's white balance, so the network paints the cast its training
photos have on average, which is warm. Photos from elsewhere have casts of their own (CamVid's
frames are cool), and a tint the photo did not have costs most where the scene has little colour:
asphalt, overcast sky, concrete, white walls. As a camera's grey-world white balance does, each
photo's colours are shifted so that the pixels the network paints nearly grey average grey; the
colours it is sure of keep their hue, moved by the same small shift. In the shadows the shift fades
out: a camera's cast scales with the light, and there a shift is a strong tint of near-black (on
`photos_dev`, shifting the shadows in full cost SSIM 0.005). On `photos_dev` the balance took
dE2000 down on every source (docs/MODEL.md, "Stop 12").

A hint is a colour the person knows, and the photo's cast is in it: with N hints the strength is
divided by 1 + N. On `photos_dev` that kept one hint's gain from the balance (dE2000 7.63, against
7.70 balanced in full and 7.83 not at all) without fighting five hints (5.89; 6.35 in full, 5.92
not at all).
"""
import torch

from . import color

NEUTRAL_CHROMA = 10.0  # a*b* units: predicted colours this close to grey set the photo's cast
SHADOWS = 30.0  # L*: below it the shift fades out linearly, to none at black


def balanced(L: torch.Tensor, ab: torch.Tensor, strength: torch.Tensor | float,
             neutral_chroma: float = NEUTRAL_CHROMA) -> torch.Tensor:
    """Normalised ab (B, 2, h, w) of lightness L (B, 1, h, w) less `strength` (a number, or one per
    image, (B,)) times each image's cast: the mean ab of its pixels whose chroma is under
    `neutral_chroma`, shifted in full above `SHADOWS`. An image with no such pixel has no cast to
    remove."""
    near_grey = (ab.norm(dim=1, keepdim=True) * color.AB_SCALE < neutral_chroma).to(ab.dtype)
    cast = (ab * near_grey).sum((2, 3), keepdim=True) / near_grey.sum((2, 3), keepdim=True).clamp_min(1)
    strength = torch.as_tensor(strength, dtype=ab.dtype, device=ab.device).reshape(-1, 1, 1, 1)
    lit = ((L.to(ab.dtype) + 1) * color.L_SCALE / SHADOWS).clamp(0, 1)
    return ab - strength * cast * lit
