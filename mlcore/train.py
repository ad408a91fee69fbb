"""The pix2pix training loop, in L*a*b*, with our generator's extras.

Per step (as the seed): D on fake (detached) and real, averaged; then G with
GAN loss + 100 x L1. Options on top, each measured in docs/MODEL.md:
L1-only pre-training epochs before the GAN phase, a class-rebalanced
cross-entropy over a*b* bins for generators with a bin head (Zhang et al.
2016), and an exponential moving average of G's weights, which is what gets
validated and shipped.
"""
import copy
import csv
import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from . import color, data, metrics
from .hints import simulate_hints
from .models import (AB_CELLS, AB_BINS_PER_AXIS, PatchGAN, ab_to_bin, ab_to_cell, add_hint_input, build_generator,
                     count_parameters, init_weights)
from .weights import load_generator, save_generator

LOSS_COLUMNS = ["loss_D_fake", "loss_D_real", "loss_D", "loss_G_GAN", "loss_G_L1", "loss_G_CE", "loss_G"]


@dataclass
class TrainConfig:
    data: list[str]  # folder trees of colour photos, pooled
    out: str
    val: str | None = None
    arch: str = "resunet"
    gen_config: dict = field(default_factory=dict)
    size: int = 128  # training crop
    cache_size: int = 144  # cached photos are this square; crops move inside it
    epochs: int = 20
    pretrain_epochs: int = 0  # generator alone (no GAN loss) for this many epochs first
    batch_size: int = 32
    lr: float = 2e-4
    beta1: float = 0.5
    l1_weight: float = 100.0
    gan_weight: float = 1.0
    ce_weight: float = 0.0  # class-rebalanced bin cross-entropy; needs a generator with a bin head
    rebalance: float = 0.5  # Zhang's lambda: mix of empirical colour prior and uniform
    ema_decay: float = 0.999
    val_images: int = 256
    device: str = "auto"
    precision: str = "auto"  # bf16 autocast where the hardware does it fast
    seed: int = 0
    init: str | None = None  # start G from these weights (fine-tuning); arch and config come from the file
    hint_share: float = 0.4  # share of samples trained with simulated colour hints (generators built with hints)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda asked for, but no CUDA device is available")
    return torch.device(name)


def use_bf16(precision: str, device: torch.device) -> bool:
    if precision != "auto":
        return precision == "bf16"
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    # oneDNN runs bf16 convs natively only on CPUs with AVX-512 BF16 / AMX; elsewhere it's slower than fp32.
    return torch.ops.mkldnn._is_mkldnn_bf16_supported()


def colour_rebalance_weights(photos: np.ndarray, lam: float, sample: int = 2000) -> torch.Tensor:
    """Per-bin loss weights that make rare saturated colours count as much as common
    dull ones: w ~ 1 / ((1 - lam) * smoothed prior + lam / Q), with E_prior[w] = 1."""
    idx = np.linspace(0, len(photos) - 1, min(sample, len(photos))).astype(int)
    rgb = torch.from_numpy(np.ascontiguousarray(photos[idx, ::4, ::4])).permute(0, 3, 1, 2).float() / 255
    _, ab = color.rgb_to_lab(rgb)
    grid = torch.zeros(AB_BINS_PER_AXIS ** 2)
    cells = ab_to_cell(ab).flatten()
    grid.index_add_(0, cells, torch.ones(cells.numel()))
    # Gaussian smoothing, sigma 5 ab units = half a bin, as Zhang et al.
    k = torch.exp(-0.5 * (torch.arange(-2, 3).float() / 0.5) ** 2)
    k2 = (k[:, None] * k[None, :]) / (k.sum() ** 2)
    grid = F.conv2d(grid.view(1, 1, AB_BINS_PER_AXIS, -1), k2.view(1, 1, 5, 5), padding=2).flatten()
    prior = grid[AB_CELLS]
    prior = prior / prior.sum()
    w = 1.0 / ((1 - lam) * prior + lam / len(prior))
    return w / (prior * w).sum()


class Trainer:
    def __init__(self, cfg: TrainConfig, photos: np.ndarray | None = None):
        """`photos` (N, S, S, 3) uint8 replaces `cfg.data`'s cache, for benchmarks on synthetic data."""
        self.cfg = cfg
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.device = pick_device(cfg.device)
        self.bf16 = use_bf16(cfg.precision, self.device)
        torch.manual_seed(cfg.seed)
        self.rng = torch.Generator().manual_seed(cfg.seed)

        cache_dir = Path(os.environ.get("MLCORE_CACHE", Path.home() / ".cache" / "mlcore"))
        if isinstance(cfg.data, str):
            cfg.data = [cfg.data]
        if photos is None:
            caches = [data.build_cache(folder, cfg.cache_size, cache_dir) for folder in cfg.data]
            photos = caches[0] if len(caches) == 1 else np.concatenate(caches)
        self.photos = photos
        self.val_photos = None
        if cfg.val:
            val = data.build_cache(cfg.val, cfg.cache_size, cache_dir)
            # Evenly spread: the folder is sorted by source, and the first N would be one or two sources.
            self.val_photos = val[np.linspace(0, len(val) - 1, min(cfg.val_images, len(val))).astype(int)]

        if cfg.init:
            self.G, meta = load_generator(cfg.init, self.device)
            if cfg.gen_config.get("hints") and not meta["config"].get("hints"):
                # Widen a hint-less generator: it starts out colouring exactly as the file does.
                config = {**meta["config"], "hints": True}
                widened = build_generator(meta["arch"], **config)
                widened.load_state_dict(add_hint_input(self.G.state_dict()))
                self.G, meta["config"] = widened.to(self.device), config
            self.G.train()
            cfg.arch, cfg.gen_config = meta["arch"], meta["config"]
        else:
            self.G = build_generator(cfg.arch, **cfg.gen_config).to(self.device)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.D = init_weights(PatchGAN()).to(self.device)
        betas = (cfg.beta1, 0.999)
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=cfg.lr, betas=betas)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=cfg.lr, betas=betas)
        self.has_bins = hasattr(self.G, "decode")
        if cfg.ce_weight and not self.has_bins:
            raise ValueError(f"--ce-weight needs a generator with a colour-bin head; {cfg.arch} has none")
        self.bin_weights = (colour_rebalance_weights(self.photos, cfg.rebalance).to(self.device)
                            if cfg.ce_weight else None)
        self.epoch = 0
        self.history: list[dict] = []
        self.samples_seen = 0
        self.train_seconds = 0.0

    # -- one step --------------------------------------------------------------------------

    def gan_loss(self, logits, real: bool):
        return F.binary_cross_entropy_with_logits(logits.float(), torch.full_like(logits.float(), float(real)))

    def step(self, rgb: torch.Tensor, gan: bool) -> dict[str, float]:
        cfg = self.cfg
        L, ab = color.rgb_to_lab(rgb.to(self.device, non_blocking=True))
        hints = None
        if getattr(self.G, "hints", False):
            hints = simulate_hints(ab, self.rng, cfg.hint_share).to(self.device)
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)
        with autocast:
            if self.has_bins:
                fake, logits = self.G(L, hints, return_logits=True)
            else:
                fake, logits = self.G(L), None
        losses = dict.fromkeys(LOSS_COLUMNS, 0.0)

        if gan:
            self.opt_D.zero_grad(set_to_none=True)
            with autocast:
                loss_D_fake = self.gan_loss(self.D(L, fake.detach()), False)
                loss_D_real = self.gan_loss(self.D(L, ab), True)
                loss_D = 0.5 * (loss_D_fake + loss_D_real)
            loss_D.backward()
            self.opt_D.step()
            losses.update(loss_D_fake=loss_D_fake.item(), loss_D_real=loss_D_real.item(), loss_D=loss_D.item())

        self.opt_G.zero_grad(set_to_none=True)
        loss_G = torch.zeros((), device=self.device)
        if gan:
            with autocast:
                loss_G_GAN = cfg.gan_weight * self.gan_loss(self.D(L, fake), True)
            loss_G = loss_G + loss_G_GAN
            losses["loss_G_GAN"] = loss_G_GAN.item()
        if cfg.l1_weight:
            loss_G_L1 = cfg.l1_weight * F.l1_loss(fake.float(), ab)
            loss_G = loss_G + loss_G_L1
            losses["loss_G_L1"] = loss_G_L1.item()
        if cfg.ce_weight:
            target = ab_to_bin(F.adaptive_avg_pool2d(ab, logits.shape[-2:]))
            ce = F.cross_entropy(logits.float(), target, ignore_index=-1, reduction="none")
            weights = self.bin_weights[target.clamp_min(0)] * (target >= 0)
            loss_G_CE = cfg.ce_weight * (ce * weights).sum() / weights.sum().clamp_min(1)
            loss_G = loss_G + loss_G_CE
            losses["loss_G_CE"] = loss_G_CE.item()
        loss_G.backward()
        self.opt_G.step()
        losses["loss_G"] = loss_G.item()
        self.update_ema()
        return losses

    @torch.no_grad()
    def update_ema(self):
        for e, p in zip(self.G_ema.parameters(), self.G.parameters()):
            e.lerp_(p, 1 - self.cfg.ema_decay)
        for e, b in zip(self.G_ema.buffers(), self.G.buffers()):
            e.copy_(b)

    # -- validation, samples ---------------------------------------------------------------

    @torch.no_grad()
    def validate(self, grey: bool = False) -> dict[str, float]:
        """Metrics of the EMA generator on val's centre crops (or of the no-colour baseline)."""
        if self.val_photos is None:
            return {}
        per_image: dict[str, list] = {}
        for rgb in data.centre_batches(self.val_photos, 64, self.cfg.size):
            true = rgb.to(self.device)
            L, _ = color.rgb_to_lab(true)
            if grey:
                pred = color.grey_rgb(L)
            else:
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
                    ab = self.G_ema(L)
                pred = color.lab_to_rgb(L, ab.float())
            for k, v in metrics.image_metrics(pred.cpu(), true.cpu()).items():
                per_image.setdefault(k, []).append(v)
        return metrics.summarize(per_image)

    @torch.no_grad()
    def save_samples(self, path: Path, count: int = 8):
        """A grid, one val photo per row: grey | ours | truth."""
        if self.val_photos is None:
            return
        spread = np.linspace(0, len(self.val_photos) - 1, count).astype(int)
        true = next(data.centre_batches(self.val_photos[spread], count, self.cfg.size)).to(self.device)
        L, _ = color.rgb_to_lab(true)
        pred = color.lab_to_rgb(L, self.G_ema(L).float())
        rows = torch.cat([color.grey_rgb(L), pred, true], dim=3)  # side by side
        grid = torch.cat(list(rows), dim=1)  # stacked
        Image.fromarray((grid.permute(1, 2, 0).cpu().numpy() * 255).round().astype(np.uint8)).save(path)

    # -- checkpoints -------------------------------------------------------------------------

    def state(self) -> dict:
        return {
            "config": dataclasses.asdict(self.cfg), "epoch": self.epoch, "history": self.history,
            "samples_seen": self.samples_seen, "train_seconds": self.train_seconds,
            "G": self.G.state_dict(), "G_ema": self.G_ema.state_dict(), "D": self.D.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "rng": self.rng.get_state(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }

    def load_state(self, state: dict):
        for name in ("G", "G_ema", "D", "opt_G", "opt_D"):
            getattr(self, name).load_state_dict(state[name])
        self.epoch, self.history = state["epoch"], state["history"]
        self.samples_seen, self.train_seconds = state["samples_seen"], state["train_seconds"]
        self.rng.set_state(state["rng"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])

    def save_checkpoint(self) -> Path:
        path = self.out / "checkpoint.pt"
        tmp = path.with_suffix(".tmp")
        torch.save(self.state(), tmp)
        tmp.replace(path)
        return path

    def save_weights(self, val_metrics: dict) -> Path:
        cfg = self.cfg
        training = {
            "data": [str(d) for d in cfg.data], "train_photos": int(len(self.photos)), "val": cfg.val,
            **{k: v for k, v in dataclasses.asdict(cfg).items() if k not in ("data", "val", "out", "gen_config")},
            # What happened, beside what was asked for (`epochs`, `device`).
            "epochs_trained": self.epoch, "samples_seen": self.samples_seen,
            "train_minutes": round(self.train_seconds / 60, 1), "trained_on": str(self.device), "bf16": self.bf16,
        }
        val = {"images": int(len(self.val_photos)), "size": cfg.size, **val_metrics} if val_metrics else {}
        return save_generator(self.out / "generator.safetensors", self.G_ema, cfg.arch, cfg.gen_config,
                              training=training, validation=val)

    # -- the loop ----------------------------------------------------------------------------

    def fit(self):
        cfg = self.cfg
        print(f"G {cfg.arch} {count_parameters(self.G) / 1e6:.2f}M params, D {count_parameters(self.D) / 1e6:.2f}M, "
              f"{len(self.photos)} train photos, device {self.device}, bf16 {self.bf16}")
        if self.val_photos is not None:
            grey = self.validate(grey=True)
            print("no-colour baseline on val:", json.dumps({k: round(grey[k], 4) for k in metrics.COLUMNS}))
        log_path = self.out / "losses.csv"
        columns = ["epoch", "phase", *LOSS_COLUMNS, *(f"val_{k}" for k in metrics.COLUMNS), "images_per_s", "minutes"]
        while self.epoch < cfg.epochs:
            gan = cfg.gan_weight > 0 and self.epoch >= cfg.pretrain_epochs
            self.G.train()
            self.D.train()
            sums = dict.fromkeys(LOSS_COLUMNS, 0.0)
            steps, t0 = 0, time.perf_counter()
            batches = data.random_batches(self.photos, cfg.batch_size, cfg.size, self.rng)
            bar = tqdm(batches, total=len(self.photos) // cfg.batch_size, desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
                       unit="step", mininterval=5)
            for rgb in bar:
                for k, v in self.step(rgb, gan).items():
                    sums[k] += v
                steps += 1
                bar.set_postfix(G=f"{sums['loss_G'] / steps:.3f}", refresh=False)
            seconds = time.perf_counter() - t0
            self.epoch += 1
            self.samples_seen += steps * cfg.batch_size
            self.train_seconds += seconds
            val = self.validate()
            row = {"epoch": self.epoch, "phase": "gan" if gan else "pretrain",
                   **{k: round(v / max(steps, 1), 4) for k, v in sums.items()},
                   **{f"val_{k}": round(val[k], 4) for k in metrics.COLUMNS if k in val},
                   "images_per_s": round(steps * cfg.batch_size / seconds, 1),
                   "minutes": round(self.train_seconds / 60, 1)}
            self.history.append(row)
            print(json.dumps(row), flush=True)
            new = not log_path.exists()
            with open(log_path, "a", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=columns)
                if new:
                    writer.writeheader()
                writer.writerow(row)
            self.save_samples(self.out / f"samples_epoch{self.epoch:03d}.png")
            self.save_weights(val)
            self.save_checkpoint()
        return self.history


def train(cfg: TrainConfig, resume: str | None = None) -> Trainer:
    """Train from scratch, or continue a checkpoint exactly where it stopped
    (its settings, with `cfg.epochs` allowed to extend the run)."""
    if resume:
        state = torch.load(resume, map_location="cpu", weights_only=False)
        saved = TrainConfig(**{**state["config"], "epochs": cfg.epochs, "out": cfg.out, "device": cfg.device})
        trainer = Trainer(saved)
        trainer.load_state(state)
    else:
        trainer = Trainer(cfg)
    trainer.fit()
    return trainer
