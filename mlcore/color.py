"""RGB <-> L*a*b* on torch tensors, normalised as the pix2pix colorization seed does.

The networks see L scaled to [-1, 1] (L/50 - 1) and predict a*b* scaled to
[-1, 1] (ab/110), so a tanh output covers the sRGB gamut.
"""
import kornia.color
import torch

L_SCALE = 50.0
AB_SCALE = 110.0


def rgb_to_lab(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, 3, H, W) sRGB in [0, 1] -> normalised L (B, 1, H, W) and ab (B, 2, H, W)."""
    lab = kornia.color.rgb_to_lab(rgb.float())
    return lab[:, :1] / L_SCALE - 1.0, lab[:, 1:] / AB_SCALE


def lab_to_rgb(L: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """Normalised L and ab -> sRGB in [0, 1], out-of-gamut colours clipped."""
    lab = torch.cat([(L.float() + 1.0) * L_SCALE, ab.float() * AB_SCALE], dim=1)
    return kornia.color.lab_to_rgb(lab, clip=True)


def grey_rgb(L: torch.Tensor) -> torch.Tensor:
    """The "no colour" rendering of L: what a grey photo looks like in sRGB."""
    # One channel repeated: exactly grey, where three converted channels differ by rounding.
    return lab_to_rgb(L, torch.zeros_like(L).repeat(1, 2, 1, 1))[:, :1].repeat(1, 3, 1, 1)
