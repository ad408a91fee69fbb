"""Colorization quality metrics, shared by training validation and evaluation.

Every function takes batches of sRGB images in [0, 1], (B, 3, H, W), and
returns one value per image; `summarize` turns the per-image values of a
whole set into the table's numbers.
"""
import kornia.color
import kornia.metrics
import torch

AUC_THRESHOLDS = 151  # ab-distance thresholds 0, 1, ..., 150, as Zhang et al. 2016


def _to_255(rgb):
    # Scored as the 8-bit images a user gets.
    return (rgb.float().clamp(0, 1) * 255).round()


def psnr(pred, true):
    mse = (_to_255(pred) - _to_255(true)).square().flatten(1).mean(1)
    return 10 * torch.log10(255.0 ** 2 / mse.clamp_min(1e-10))


def ssim(pred, true):
    return kornia.metrics.ssim(_to_255(pred) / 255, _to_255(true) / 255, window_size=11).flatten(1).mean(1)


def colorfulness(rgb):
    """Hasler & Suesstrunk 2003, on 0-255 RGB."""
    r, g, b = _to_255(rgb).unbind(1)
    rg, yb = (r - g).flatten(1), (0.5 * (r + g) - b).flatten(1)
    std = (rg.var(1, unbiased=False) + yb.var(1, unbiased=False)).sqrt()
    mean = (rg.mean(1).square() + yb.mean(1).square()).sqrt()
    return std + 0.3 * mean


def ciede2000(lab1, lab2):
    """Per-pixel CIEDE2000 (Sharma et al. 2005) between Lab tensors (B, 3, H, W)."""
    L1, a1, b1 = lab1.unbind(1)
    L2, a2, b2 = lab2.unbind(1)
    c_bar = (torch.hypot(a1, b1) + torch.hypot(a2, b2)) / 2
    g = 0.5 * (1 - torch.sqrt(c_bar ** 7 / (c_bar ** 7 + 25.0 ** 7)))
    a1p, a2p = a1 * (1 + g), a2 * (1 + g)
    c1p, c2p = torch.hypot(a1p, b1), torch.hypot(a2p, b2)
    h1p = torch.rad2deg(torch.atan2(b1, a1p)) % 360
    h2p = torch.rad2deg(torch.atan2(b2, a2p)) % 360
    dL, dC = L2 - L1, c2p - c1p
    dh = h2p - h1p
    dh = torch.where(dh > 180, dh - 360, torch.where(dh < -180, dh + 360, dh))
    dh = torch.where(c1p * c2p == 0, torch.zeros_like(dh), dh)
    dH = 2 * torch.sqrt(c1p * c2p) * torch.sin(torch.deg2rad(dh) / 2)
    L_bar, c_bar_p = (L1 + L2) / 2, (c1p + c2p) / 2
    h_sum = h1p + h2p
    h_bar = torch.where((h1p - h2p).abs() > 180, torch.where(h_sum < 360, h_sum + 360, h_sum - 360), h_sum) / 2
    h_bar = torch.where(c1p * c2p == 0, h_sum, h_bar)
    t = (1 - 0.17 * torch.cos(torch.deg2rad(h_bar - 30)) + 0.24 * torch.cos(torch.deg2rad(2 * h_bar))
         + 0.32 * torch.cos(torch.deg2rad(3 * h_bar + 6)) - 0.20 * torch.cos(torch.deg2rad(4 * h_bar - 63)))
    d_theta = 30 * torch.exp(-(((h_bar - 275) / 25) ** 2))
    r_c = 2 * torch.sqrt(c_bar_p ** 7 / (c_bar_p ** 7 + 25.0 ** 7))
    s_l = 1 + 0.015 * (L_bar - 50) ** 2 / torch.sqrt(20 + (L_bar - 50) ** 2)
    s_c, s_h = 1 + 0.045 * c_bar_p, 1 + 0.015 * c_bar_p * t
    r_t = -torch.sin(torch.deg2rad(2 * d_theta)) * r_c
    return torch.sqrt((dL / s_l) ** 2 + (dC / s_c) ** 2 + (dH / s_h) ** 2 + r_t * (dC / s_c) * (dH / s_h))


def _lab(rgb):
    return kornia.color.rgb_to_lab(_to_255(rgb) / 255)


def image_metrics(pred, true) -> dict[str, torch.Tensor]:
    """Per-image PSNR, SSIM, colourfulness of both, mean CIEDE2000 and AuC."""
    lab_p, lab_t = _lab(pred), _lab(true)
    ab_err = (lab_p[:, 1:] - lab_t[:, 1:]).norm(dim=1).flatten(1)  # (B, HW)
    # Share of thresholds t in 0..150 with err <= t, per pixel: the area under the accuracy curve.
    auc = (AUC_THRESHOLDS - torch.ceil(ab_err)).clamp(0, AUC_THRESHOLDS).mean(1) / AUC_THRESHOLDS
    return {
        "psnr": psnr(pred, true),
        "ssim": ssim(pred, true),
        "cf": colorfulness(pred),
        "cf_true": colorfulness(true),
        "de2000": ciede2000(lab_p, lab_t).flatten(1).mean(1),
        "auc": auc,
    }


def summarize(per_image: dict[str, list]) -> dict[str, float]:
    """Set-level numbers: means, and |dCF| as the gap between mean colourfulness."""
    means = {k: float(torch.cat([torch.as_tensor(v).flatten() for v in vals]).mean()) for k, vals in per_image.items()}
    means["dcf"] = abs(means["cf"] - means["cf_true"])
    return means


COLUMNS = ["psnr", "ssim", "de2000", "auc", "cf", "dcf"]
