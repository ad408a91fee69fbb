"""Greyscale deeper than 8 bits as levels a screen or the network can use (numpy and Pillow only, no torch).

Pillow's own conversions clip 16-bit, 32-bit and float greyscale to 0..255 instead of scaling
them (a 16-bit scan turns white, an 8-bit one stored as 32-bit is right only by luck).
"""

import numpy as np
from PIL import Image

# Greyscale with more than 8 bits, or floats.
DEEP_GREY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def grey_scale(image: Image.Image) -> tuple[float, float]:
    """(low, span) of a DEEP_GREY_MODES image: (value - low) / span is its level in [0, 1],
    scaled by its bit depth. Read from the image's extrema, without a copy of its pixels.

    16-bit modes say their depth. "I" (32-bit integers) and "F" (floats) do not, so the values
    tell: a float image within 0..1 is taken as is, one within 0..255 or 0..65535 (however it was
    stored) as 8 or 16 bits; anything else is stretched from its minimum to its maximum.
    """
    if image.mode.startswith("I;16"):
        return 0.0, 65535.0
    low, high = (float(v) for v in image.getextrema()) if image.width * image.height else (0.0, 0.0)
    ranges = ((1.0,) if image.mode == "F" else ()) + (255.0, 65535.0)
    top = next((top for top in ranges if low >= 0 and high <= top), None)
    if top is None:
        return (low, high - low) if high > low else (low, 1.0)  # a flat image is black
    return 0.0, top


def grey_levels(image: Image.Image) -> np.ndarray:
    """(H, W) float32 in [0, 1] of a DEEP_GREY_MODES image, scaled by grey_scale."""
    low, span = grey_scale(image)
    values = np.asarray(image, dtype=np.float32)
    return (values - low) / span
