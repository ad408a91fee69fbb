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

A second curve, over lightness, is fitted the same way on what the first leaves: the network paints
shadows more colour than they have (on `photos/val` the least-squares scale after the share curve
is about three quarters in the darkest tenth of pixels, against the midtones'), and on
`photos_dev` that extra colour on dark road, foliage and walls was most of CamVid's loss to grey
(docs/MODEL.md, "Stop 15"). It is scaled so that its largest gain is 1.
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


def _piecewise_linear(xs: list[float], ys: list[float], x: torch.Tensor) -> torch.Tensor:
    """The curve through the points (xs, ys) at x, linear between them and flat beyond its ends."""
    xs = torch.tensor(xs, dtype=x.dtype, device=x.device)
    ys = torch.tensor(ys, dtype=x.dtype, device=x.device)
    x = x.clamp(xs[0], xs[-1])
    i = torch.bucketize(x, xs[1:-1])
    x0, x1, y0, y1 = xs[i], xs[i + 1], ys[i], ys[i + 1]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0).clamp_min(1e-6)


def gain_at(curve: dict, share: torch.Tensor) -> torch.Tensor:
    """The share curve's gain at each share."""
    return _piecewise_linear(curve["share"], curve["gain"], share)


def gain_map(generator, logits: torch.Tensor, curve: dict, size: tuple[int, int]) -> torch.Tensor:
    """(B, 1, H, W) share-curve gains for a network output of `size`."""
    return _to_output_size(generator, gain_at(curve, neutral_share(generator, logits, curve["neutral_chroma"])), size)


def lightness_gain(curve: dict, L: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) lightness-curve gains at normalised lightness L (B, 1, H, W); 1 for a curve
    calibrated before stop 15, which has none."""
    if "lightness" not in curve:
        return torch.ones_like(L)
    return _piecewise_linear(curve["lightness"], curve["lightness_gain"], _lightness(L))


def _lightness(L: torch.Tensor) -> torch.Tensor:
    return (L + 1) * color.L_SCALE


def _to_output_size(generator, x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Upsampled as the network's own a*b* is: its logits cover the input padded to its multiple."""
    m = generator.multiple
    padded = (-(-size[0] // m) * m, -(-size[1] // m) * m)
    return F.interpolate(x, size=padded, mode="bilinear", align_corners=False)[..., :size[0], :size[1]]


@torch.no_grad()
def calibrate(colorizer, images: list[Image.Image], points: int = 10, batch_size: int = 32) -> dict:
    """The gain curves for `colorizer` (its network at its temperature, no hints) from colour photos
    of one size, the size the network will see them at: pixels are split into `points` equal groups
    by neutral share, and each group's gain is the least-squares scale of the predicted a*b* onto
    the true a*b*; then into `points` groups by lightness, each group's gain the least-squares scale
    of the a*b* that the share curve makes."""
    generator = colorizer.generator
    if not hasattr(generator, "bin_centers"):
        raise ValueError(f"model {colorizer.version} predicts no colour distribution to be sure of")
    shares, lightness, predictions, truths = [], [], [], []
    for start in range(0, len(images), batch_size):
        rgb = np.stack([np.asarray(im.convert("RGB")) for im in images[start:start + batch_size]])
        L, ab = color.rgb_to_lab(torch.from_numpy(rgb).permute(0, 3, 1, 2).to(colorizer.device) / 255)
        predicted, logits = generator(L, return_logits=True)
        predicted = predicted.float()
        share = _to_output_size(generator, neutral_share(generator, logits), L.shape[-2:])
        shares.append(share.flatten().cpu())
        lightness.append(_lightness(L).flatten().cpu())
        predictions.append(predicted.transpose(0, 1).flatten(1).cpu())
        truths.append(ab.transpose(0, 1).flatten(1).cpu())
    share, lightness = torch.cat(shares), torch.cat(lightness)
    predicted, ab = torch.cat(predictions, 1), torch.cat(truths, 1)
    xs, ys = _least_squares_gains(share, predicted, ab, points)
    scale = ys[0] if ys[0] > 0 else 1.0
    curve = {"neutral_chroma": NEUTRAL_CHROMA, "share": xs, "gain": [round(y / scale, 4) for y in ys]}
    xs, ys = _least_squares_gains(lightness, predicted * gain_at(curve, share), ab, points)
    scale = max(ys) if max(ys) > 0 else 1.0
    return {**curve, "lightness": xs, "lightness_gain": [round(y / scale, 4) for y in ys]}


def _least_squares_gains(x: torch.Tensor, predicted: torch.Tensor, true: torch.Tensor, points: int):
    """Pixels split into `points` equal groups by x: each group's mean x, and the least-squares
    scale of its predicted a*b* (2, N) onto the true ones."""
    dot, norm = (predicted * true).sum(0), (predicted * predicted).sum(0)
    groups = [g for g in torch.tensor_split(torch.argsort(x), points) if len(g)]
    # A negative least-squares gain (colour against the truth's) means grey is best there.
    return ([round(float(x[g].mean()), 4) for g in groups],
            [max(0.0, float(dot[g].sum() / norm[g].sum().clamp_min(1e-12))) for g in groups])
