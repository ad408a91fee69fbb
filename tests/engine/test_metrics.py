import numpy as np
import torch
from skimage import color as skcolor

from mlcore import metrics


def _rand(seed, shape=(2, 3, 16, 16)):
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def test_ciede2000_matches_scikit_image():
    lab1 = skcolor.rgb2lab(_rand(0).permute(0, 2, 3, 1).numpy())
    lab2 = skcolor.rgb2lab(_rand(1).permute(0, 2, 3, 1).numpy())
    ours = metrics.ciede2000(torch.from_numpy(lab1).permute(0, 3, 1, 2), torch.from_numpy(lab2).permute(0, 3, 1, 2))
    reference = skcolor.deltaE_ciede2000(lab1, lab2)
    assert np.abs(ours.numpy() - reference).max() < 1e-4


def test_identical_images_score_perfectly():
    x = _rand(2)
    m = metrics.image_metrics(x, x)
    assert torch.all(m["psnr"] > 90) and torch.allclose(m["ssim"], torch.ones(2))
    assert torch.all(m["de2000"] == 0) and torch.allclose(m["auc"], torch.ones(2))


def test_psnr_of_a_known_error():
    a = torch.zeros(1, 3, 4, 4)
    b = torch.full((1, 3, 4, 4), 10 / 255)
    assert abs(float(metrics.psnr(a, b)) - 10 * np.log10(255 ** 2 / 100)) < 1e-4


def test_colourfulness_is_zero_for_grey_and_grows_with_saturation():
    grey = _rand(3, (1, 1, 16, 16)).repeat(1, 3, 1, 1)
    assert float(metrics.colorfulness(grey)) == 0
    dull, vivid = _rand(4) * 0.2 + 0.4, _rand(4)
    assert metrics.colorfulness(vivid).mean() > metrics.colorfulness(dull).mean()


def test_summary_reports_the_colourfulness_gap():
    a, b = _rand(5), _rand(6) * 0.5
    s = metrics.summarize({k: [v] for k, v in metrics.image_metrics(b, a).items()})
    assert abs(s["dcf"] - abs(s["cf"] - s["cf_true"])) < 1e-9 and s["cf"] < s["cf_true"]


def test_auc_is_the_mean_accuracy_over_thresholds_0_to_150():
    a, b = _rand(7), _rand(8)
    err = (metrics._lab(a)[:, 1:] - metrics._lab(b)[:, 1:]).norm(dim=1).flatten(1)
    by_definition = torch.stack([(err <= t).float().mean(1) for t in range(151)]).mean(0)
    assert torch.allclose(metrics.image_metrics(a, b)["auc"], by_definition, atol=1e-6)
