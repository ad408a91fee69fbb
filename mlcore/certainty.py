"""Colour where the model is sure: a chroma gain per pixel, calibrated on held-out photos.

The uniform chroma gain strengthens wrong colours as much as right ones. What tells them apart is
how much of the predicted distribution lies on near-grey bins (the "neutral share"): where it is
high, the model is unsure whether the pixel has any colour at all, and the truth mostly has little.
Measured on `photos/val` with the first hint-capable model, the least-squares gain of the annealed
mean was 0.88 where the share is under 0.15, 1.1-1.17 between 0.2 and 0.45, and 0.45-0.6 above
0.8; the share's entropy-based cousin told right from wrong much less (docs/MODEL.md).

`calibrate` measures that curve for a colorizer on photos it was not trained on; the colorizer
multiplies its colours by the curve at each pixel's share, then by its uniform chroma gain. The
curve is scaled so that its most confident point is 1: a colour the model is sure of (a hinted
one, say) is left as the uniform gain makes it.
"""
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from . import color

NEUTRAL_CHROMA = 12.0  # a*b* units: bins this close to grey count as "no colour"


def neutral_share(generator, logits: torch.Tensor, neutral_chroma: float = NEUTRAL_CHROMA) -> torch.Tensor:
    """(B, 1, h, w): the probability the predicted distribution puts on near-grey bins."""
    neutral = (generator.bin_centers.norm(dim=1) * color.AB_SCALE < neutral_chroma).float()
    return torch.einsum("bqhw,q->bhw", torch.softmax(logits.float(), 1), neutral)[:, None]


def gain_at(curve: dict, share: torch.Tensor) -> torch.Tensor:
    """The curve's gain at each share, linear between its points and flat beyond its ends."""
    xs = torch.tensor(curve["share"], dtype=share.dtype, device=share.device)
    ys = torch.tensor(curve["gain"], dtype=share.dtype, device=share.device)
    share = share.clamp(xs[0], xs[-1])
    i = torch.bucketize(share, xs[1:-1])
    x0, x1, y0, y1 = xs[i], xs[i + 1], ys[i], ys[i + 1]
    return y0 + (y1 - y0) * (share - x0) / (x1 - x0).clamp_min(1e-6)


def gain_map(generator, logits: torch.Tensor, curve: dict, size: tuple[int, int]) -> torch.Tensor:
    """(B, 1, H, W) gains for a network output of `size`."""
    return _to_output_size(generator, gain_at(curve, neutral_share(generator, logits, curve["neutral_chroma"])), size)


def _to_output_size(generator, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Upsampled as the network's own a*b* is: its logits cover the input padded to its multiple."""
    m = generator.multiple
    padded = (-(-size[0] // m) * m, -(-size[1] // m) * m)
    return F.interpolate(x, size=padded, mode="bilinear", align_corners=False)[..., :size[0], :size[1]]


@torch.no_grad()
def calibrate(colorizer, images: list[Image.Image], points: int = 10, batch_size: int = 32) -> dict:
    """The gain curve for `colorizer` (its network at its temperature, no hints) from colour photos
    of one size, the size the network will see them at: pixels are split into `points` equal groups
    by neutral share, and each group's gain is the least-squares scale of the predicted a*b* onto
    the true a*b*."""
    generator = colorizer.generator
    if not hasattr(generator, "bin_centers"):
        raise ValueError(f"model {colorizer.version} predicts no colour distribution to be sure of")
    shares, dots, norms = [], [], []
    for start in range(0, len(images), batch_size):
        rgb = np.stack([np.asarray(im.convert("RGB")) for im in images[start:start + batch_size]])
        L, ab = color.rgb_to_lab(torch.from_numpy(rgb).permute(0, 3, 1, 2).to(colorizer.device) / 255)
        predicted, logits = generator(L, return_logits=True)
        predicted = predicted.float()
        share = _to_output_size(generator, neutral_share(generator, logits), L.shape[-2:])
        shares.append(share.flatten().cpu())
        dots.append((predicted * ab).sum(1).flatten().cpu())
        norms.append((predicted * predicted).sum(1).flatten().cpu())
    share, dot, norm = torch.cat(shares), torch.cat(dots), torch.cat(norms)
    order = torch.argsort(share)
    groups = [g for g in torch.tensor_split(order, points) if len(g)]
    xs = [float(share[g].mean()) for g in groups]
    # A negative least-squares gain (colour against the truth's) means grey is best there.
    ys = [max(0.0, float(dot[g].sum() / norm[g].sum().clamp_min(1e-12))) for g in groups]
    scale = ys[0] if ys[0] > 0 else 1.0
    return {"neutral_chroma": NEUTRAL_CHROMA, "share": [round(x, 4) for x in xs],
            "gain": [round(y / scale, 4) for y in ys]}
