import csv

import numpy as np
import pytest
import torch

from PIL import Image

from mlcore import data, report
from mlcore.models import build_generator
from mlcore.train import TrainConfig, Trainer, train
from mlcore.weights import load_generator, save_generator

from .conftest import synthetic_photo


def _photos(n=4, size=40):
    return np.stack([np.asarray(synthetic_photo(i, size=(size, size))) for i in range(n)])


@pytest.mark.parametrize("arch, config, ce", [("unet", {"num_downs": 5, "ngf": 16}, 0.0),
                                               ("resunet", {"ngf": 16}, 1.0)])
def test_generator_overfits_a_few_photos(arch, config, ce):
    cfg = TrainConfig(data="", out="/tmp/unused", arch=arch, gen_config=config, size=32, batch_size=4,
                      lr=1e-3, gan_weight=0.0, ce_weight=ce, precision="fp32")
    trainer = Trainer(cfg, photos=_photos())
    rgb = torch.from_numpy(_photos()[:, 4:36, 4:36]).permute(0, 3, 1, 2).float() / 255
    first = trainer.step(rgb, gan=False)["loss_G_L1"]
    for _ in range(80):
        last = trainer.step(rgb, gan=False)["loss_G_L1"]
    assert last < first / 2


def test_gan_phase_trains_both_networks():
    cfg = TrainConfig(data="", out="/tmp/unused", arch="unet", gen_config={"num_downs": 5, "ngf": 8}, size=32,
                      batch_size=4, precision="fp32")
    trainer = Trainer(cfg, photos=_photos())
    before = [p.clone() for p in trainer.D.parameters()]
    rgb = torch.from_numpy(_photos()[:, :32, :32]).permute(0, 3, 1, 2).float() / 255
    losses = trainer.step(rgb, gan=True)
    assert losses["loss_D"] == pytest.approx((losses["loss_D_fake"] + losses["loss_D_real"]) / 2)
    assert losses["loss_G"] == pytest.approx(losses["loss_G_GAN"] + losses["loss_G_L1"], rel=1e-5)
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.D.parameters()))


def _config(folder, out, epochs):
    return TrainConfig(data=str(folder), val=str(folder), out=str(out), arch="resunet", gen_config={"ngf": 8},
                       size=32, cache_size=40, batch_size=4, epochs=epochs, pretrain_epochs=1,
                       ce_weight=1.0, precision="fp32", val_images=4)


def test_a_run_writes_losses_samples_checkpoint_and_weights(photo_folder, tmp_path, capsys):
    trainer = train(_config(photo_folder, tmp_path / "run", epochs=2))
    assert len(trainer.photos) == 12  # the two grey photos were skipped
    run = tmp_path / "run"
    rows = list(csv.DictReader(open(run / "losses.csv")))
    assert [r["phase"] for r in rows] == ["pretrain", "gan"]
    assert float(rows[0]["loss_D"]) == 0 and float(rows[1]["loss_D"]) > 0
    assert all(float(r["val_psnr"]) > 0 for r in rows)
    assert (run / "samples_epoch002.png").exists() and (run / "checkpoint.pt").exists()
    _, meta = load_generator(run / "generator.safetensors")
    assert meta["training"]["epochs_trained"] == 2 and meta["training"]["train_photos"] == 12
    assert meta["validation"]["images"] == 4 and "de2000" in meta["validation"]

    # Each epoch's weights stay, to choose from afterwards; generator.safetensors is the last.
    _, first = load_generator(run / "generator_epoch001.safetensors")
    assert first["training"]["epochs_trained"] == 1
    assert (run / "generator.safetensors").read_bytes() == (run / "generator_epoch002.safetensors").read_bytes()

    capsys.readouterr()
    report.main([str(run), str(tmp_path / "curves.png")])
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("| epoch | phase | loss_D_fake") and table[3].startswith("| 2 | gan |")
    assert Image.open(tmp_path / "curves.png").size[0] > 600


def test_the_rate_decays_linearly_over_the_last_epochs(photo_folder, tmp_path):
    cfg = _config(photo_folder, tmp_path / "run", epochs=5)
    cfg.lr, cfg.decay_epochs, cfg.pretrain_epochs = 3e-4, 3, 5
    trainer = train(cfg)
    assert [row["lr"] for row in trainer.history] == pytest.approx([3e-4, 3e-4, 2.25e-4, 1.5e-4, 0.75e-4])
    assert trainer.opt_G.param_groups[0]["lr"] == pytest.approx(0.75e-4)
    rows = list(csv.DictReader(open(tmp_path / "run" / "losses.csv")))
    assert float(rows[-1]["lr"]) == pytest.approx(0.75e-4)


def test_resume_continues_exactly_where_it_stopped(photo_folder, tmp_path):
    straight = train(_config(photo_folder, tmp_path / "a", epochs=2))
    train(_config(photo_folder, tmp_path / "b", epochs=1))
    resumed = train(_config(photo_folder, tmp_path / "b", epochs=2), resume=str(tmp_path / "b" / "checkpoint.pt"))
    assert resumed.epoch == 2
    for (name, a), b in zip(straight.G.state_dict().items(), resumed.G.state_dict().values()):
        assert torch.equal(a, b), name
    for a, b in zip(straight.D.state_dict().values(), resumed.D.state_dict().values()):
        assert torch.equal(a, b)
    assert straight.history[1]["loss_G"] == resumed.history[1]["loss_G"]


def test_several_folders_pool_into_one_memory_mapped_cache(photo_folder, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    for i in range(3):
        synthetic_photo(50 + i).save(other / f"q{i}.png")
    cache = tmp_path / "cache"
    pooled = data.pooled_cache([photo_folder, other], 40, cache)
    assert isinstance(pooled, np.memmap) and pooled.shape == (15, 40, 40, 3)
    assert np.array_equal(pooled[:12], data.build_cache(photo_folder, 40, cache))
    assert np.array_equal(pooled[12:], data.build_cache(other, 40, cache))
    assert data.pooled_cache([photo_folder, other], 40, cache).filename == pooled.filename  # built once


def test_scale_augmentation_crops_other_scales_and_resizes_them_to_the_training_size():
    photos = _photos(n=8, size=40)
    fixed = next(data.random_batches(photos, 8, 32, torch.Generator().manual_seed(0)))
    scaled = next(data.random_batches(photos, 8, 32, torch.Generator().manual_seed(0), min_side=40))
    assert fixed.shape == scaled.shape == (8, 3, 32, 32)
    # min_side = the photo's size: every crop is the whole photo, shrunk to 32 px (and maybe flipped).
    whole = torch.nn.functional.interpolate(torch.from_numpy(photos).permute(0, 3, 1, 2).float(), size=(32, 32),
                                            mode="bilinear", antialias=True, align_corners=False) / 255
    for crop in scaled:
        assert min(min((crop - w).abs().max(), (crop - w.flip(-1)).abs().max()) for w in whole) < 1e-5
    tiles = [torch.from_numpy(p[y:y + 32, x:x + 32]).permute(2, 0, 1).float() / 255
             for p in photos for y in range(9) for x in range(9)]
    for crop in fixed:  # without it, crops are 32 px windows of the photos, unscaled
        assert min(min((crop - t).abs().max(), (crop - t.flip(-1)).abs().max()) for t in tiles) < 1e-6


def test_crops_larger_than_the_cached_photos_are_refused():
    with pytest.raises(ValueError, match="must fit in the cached photos"):
        Trainer(TrainConfig(data="", out="/tmp/unused", size=32, cache_size=40, crop_min=48, precision="fp32"),
                photos=_photos())


def test_init_with_extra_blocks_trains_a_deeper_net_from_the_file(tmp_path):
    start = save_generator(tmp_path / "start.safetensors", build_generator("resunet", ngf=8), "resunet", {"ngf": 8})
    cfg = TrainConfig(data="", out=str(tmp_path / "run"), size=32, batch_size=4, gan_weight=0.0, ce_weight=1.0,
                      precision="fp32", init=str(start), gen_config={"extra_blocks": 1})
    trainer = Trainer(cfg, photos=_photos())
    assert cfg.gen_config == {"ngf": 8, "extra_blocks": 1}
    file_net, _ = load_generator(start)
    L = torch.rand(2, 1, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(trainer.G_ema(L), file_net(L))
