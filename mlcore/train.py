"""The pix2pix training loop, in L*a*b*, with our generator's extras.

Per step (as the seed): D on fake (detached) and real, averaged; then G with
GAN loss + 100 x L1. Options on top, each measured in docs/MODEL.md:
L1-only pre-training epochs before the GAN phase, a class-rebalanced
cross-entropy over a*b* bins for generators with a bin head (Zhang et al.
2016), and an exponential moving average of G's weights, which is what gets
validated and shipped.

Under `torchrun` it trains in several processes (DistributedDataParallel: NCCL
on GPUs, gloo on CPUs). `--batch-size` stays the global batch: each rank takes
its share of every batch (DistributedSampler's shard, reshuffled per epoch),
batch norm sees the global batch, and the run follows the one-process run's
steps. Rank 0 alone keeps the EMA, validates and writes files. docs/TRAINING.md
has the commands.
"""
import contextlib
import copy
import csv
import shutil
import dataclasses
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from PIL import Image
from torch.nn.parallel import DistributedDataParallel as DDP
from tqdm import tqdm

from . import color, data, metrics
from .degrade import degrade_lightness
from .distributed import sync_batchnorm
from .hints import simulate_hints
from .models import (AB_CELLS, AB_BINS_PER_AXIS, PatchGAN, ab_to_bin, ab_to_cell, build_generator, grow,
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
    crop_min: int = 0  # if set, crops of crop_min..cache_size px resized to `size`: scale augmentation
    epochs: int = 20
    pretrain_epochs: int = 0  # generator alone (no GAN loss) for this many epochs first
    batch_size: int = 32
    lr: float = 2e-4
    decay_epochs: int = 0  # pix2pix's linear policy: the last this many epochs step the rate down towards zero
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
    degrade: float = 0.0  # share of samples whose input lightness is degraded like an old scan's (mlcore.degrade)
    minutes: float | None = None  # time budget: stop after the step where it runs out (weights and checkpoint written)


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
        self.device = pick_device(cfg.device)
        # One process, or one of several started by torchrun (it sets RANK, LOCAL_RANK, WORLD_SIZE).
        self.ddp = int(os.environ.get("RANK", -1)) != -1
        if self.ddp:
            self.rank, self.local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
            self.world = int(os.environ["WORLD_SIZE"])
            if self.device.type == "cuda":
                self.device = torch.device("cuda", self.local_rank)
                torch.cuda.set_device(self.device)
            if not dist.is_initialized():
                dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
        else:
            self.rank, self.local_rank, self.world = 0, 0, 1
        self.master = self.rank == 0  # keeps the EMA, validates, writes every file
        if cfg.batch_size % self.world:
            raise ValueError(f"--batch-size {cfg.batch_size} (the global batch) must split evenly over {self.world} processes")
        if cfg.crop_min > cfg.cache_size or cfg.size > cfg.cache_size:
            raise ValueError(f"crops (--size {cfg.size}, --crop-min {cfg.crop_min}) must fit in the cached "
                             f"photos (--cache-size {cfg.cache_size})")
        if self.master:
            self.out.mkdir(parents=True, exist_ok=True)
        self.bf16 = use_bf16(cfg.precision, self.device)
        torch.manual_seed(cfg.seed)
        self.rng = torch.Generator().manual_seed(cfg.seed)

        cache_dir = Path(os.environ.get("MLCORE_CACHE", Path.home() / ".cache" / "mlcore"))
        if isinstance(cfg.data, str):
            cfg.data = [cfg.data]
        if photos is None:
            # Decoded once per machine (by its first process; the others wait, then map the file).
            if self.local_rank == 0:
                photos = data.pooled_cache(cfg.data, cfg.cache_size, cache_dir)
            if self.ddp:
                dist.barrier()
            if self.local_rank != 0:
                photos = data.pooled_cache(cfg.data, cfg.cache_size, cache_dir)
        self.photos = photos
        self.val_photos = None
        if cfg.val and self.master:
            val = data.build_cache(cfg.val, cfg.cache_size, cache_dir)
            # Evenly spread: the folder is sorted by source, and the first N would be one or two sources.
            self.val_photos = val[np.linspace(0, len(val) - 1, min(cfg.val_images, len(val))).astype(int)]

        if cfg.init:
            self.G, meta = load_generator(cfg.init, self.device)
            config = {**meta["config"], **cfg.gen_config}
            if config != meta["config"]:
                # Grown by the hint input or more blocks: it starts out colouring exactly as the file does.
                self.G, meta["config"] = grow(self.G, meta["arch"], config).to(self.device), config
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

        # What the step calls: G and D themselves, or under torchrun their DDP wrappers, which
        # average the gradients over the ranks in backward (and broadcast rank 0's weights now).
        self.net_G, self.net_D = self.G, self.D
        if self.ddp:
            # Batch statistics of the global batch: N processes x B/N then train as 1 x B does.
            self.G, self.D = sync_batchnorm(self.G, self.device), sync_batchnorm(self.D, self.device)
            ids = [self.device.index] if self.device.type == "cuda" else None
            # No buffer broadcast per forward: synchronised batch norm keeps the running stats equal.
            self.net_G = DDP(self.G, device_ids=ids, forward_sync_buffers=False)
            self.net_D = DDP(self.D, device_ids=ids, forward_sync_buffers=False)
            torch.manual_seed(cfg.seed + self.rank)  # each rank its own dropout; self.rng stays shared
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop size: let cuDNN pick the fastest kernels
            for net in (self.G, self.G_ema, self.D):
                net.to(memory_format=torch.channels_last)

    # -- one step --------------------------------------------------------------------------

    def gan_loss(self, logits, real: bool):
        return F.binary_cross_entropy_with_logits(logits.float(), torch.full_like(logits.float(), float(real)))

    def draw_for_batch(self, draw, x: torch.Tensor, *args) -> torch.Tensor:
        """draw(x, self.rng, *args) for this rank's share x of the batch. Every rank draws for the
        whole global batch (its own photos in their places), so the shared rng stays in step on
        all ranks and each photo gets what it would get in one process."""
        if self.world == 1:
            return draw(x, self.rng, *args)
        full = torch.zeros(len(x) * self.world, *x.shape[1:])
        full[self.rank::self.world] = x.float().cpu()
        return draw(full, self.rng, *args)[self.rank::self.world]

    def step(self, rgb: torch.Tensor, gan: bool) -> dict[str, float]:
        """One step on this rank's share of the batch; the losses returned are its own."""
        cfg = self.cfg
        L, ab = color.rgb_to_lab(rgb.to(self.device, non_blocking=True))
        if cfg.degrade:
            L = self.draw_for_batch(degrade_lightness, L, cfg.degrade).to(self.device)
        hints = None
        if getattr(self.G, "hints", False):
            hints = self.draw_for_batch(simulate_hints, ab, cfg.hint_share).to(self.device)
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16)
        with autocast:
            if self.has_bins:
                fake, logits = self.net_G(L, hints, return_logits=True)
            else:
                fake, logits = self.net_G(L), None
        losses = dict.fromkeys(LOSS_COLUMNS, 0.0)

        if gan:
            self.opt_D.zero_grad(set_to_none=True)
            with autocast:
                loss_D_fake = self.gan_loss(self.net_D(L, fake.detach()), False)
                loss_D_real = self.gan_loss(self.net_D(L, ab), True)
                loss_D = 0.5 * (loss_D_fake + loss_D_real)
            loss_D.backward()
            self.opt_D.step()
            losses.update(loss_D_fake=loss_D_fake.item(), loss_D_real=loss_D_real.item(), loss_D=loss_D.item())

        self.opt_G.zero_grad(set_to_none=True)
        loss_G = torch.zeros((), device=self.device)
        if gan:
            # The gradients this leaves in D are thrown away before D's next step: don't average them.
            skip_D_sync = self.net_D.no_sync() if self.ddp else contextlib.nullcontext()
            with autocast, skip_D_sync:
                loss_G_GAN = cfg.gan_weight * self.gan_loss(self.net_D(L, fake), True)
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
            total = weights.sum()
            if self.ddp:  # the global batch's mean weight: DDP's mean over ranks is then the global loss
                dist.all_reduce(total)
                total = total / self.world
            loss_G_CE = cfg.ce_weight * (ce * weights).sum() / total.clamp_min(1)
            loss_G = loss_G + loss_G_CE
            losses["loss_G_CE"] = loss_G_CE.item()
        loss_G.backward()
        self.opt_G.step()
        losses["loss_G"] = loss_G.item()
        if self.master:
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
        state = {
            "config": dataclasses.asdict(self.cfg), "epoch": self.epoch, "history": self.history,
            "samples_seen": self.samples_seen, "train_seconds": self.train_seconds,
            "G": self.G.state_dict(), "G_ema": self.G_ema.state_dict(), "D": self.D.state_dict(),
            "opt_G": self.opt_G.state_dict(), "opt_D": self.opt_D.state_dict(),
            "rng": self.rng.get_state(), "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() and not self.ddp else None,
        }
        if self.ddp:  # every rank's own dropout streams (a collective: all ranks call state())
            mine = {"torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None}
            state["rank_rngs"] = [None] * self.world
            dist.all_gather_object(state["rank_rngs"], mine)
        return state

    def load_state(self, state: dict):
        for name in ("G", "G_ema", "D", "opt_G", "opt_D"):
            getattr(self, name).load_state_dict(state[name])
        self.epoch, self.history = state["epoch"], state["history"]
        self.samples_seen, self.train_seconds = state["samples_seen"], state["train_seconds"]
        self.rng.set_state(state["rng"])
        rank_rngs = state.get("rank_rngs") or []
        if self.ddp and len(rank_rngs) == self.world:  # saved by as many ranks: each takes its own
            torch.set_rng_state(rank_rngs[self.rank]["torch"])
            if rank_rngs[self.rank]["cuda"] is not None and self.device.type == "cuda":
                torch.cuda.set_rng_state(rank_rngs[self.rank]["cuda"], self.device)
        else:
            torch.set_rng_state(state["torch_rng"])
            if state["cuda_rng"] is not None and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(state["cuda_rng"])

    def save_checkpoint(self) -> Path | None:
        """Every rank calls it; rank 0 writes."""
        state = self.state()
        if not self.master:
            return None
        path = self.out / "checkpoint.pt"
        tmp = path.with_suffix(".tmp")
        torch.save(state, tmp)
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
        # Every epoch's file is kept: the one to ship is chosen afterwards, on photos from elsewhere.
        path = save_generator(self.out / f"generator_epoch{self.epoch:03d}.safetensors", self.G_ema, cfg.arch,
                              cfg.gen_config, training=training, validation=val)
        shutil.copyfile(path, self.out / "generator.safetensors")
        return self.out / "generator.safetensors"

    # -- the loop ----------------------------------------------------------------------------

    def lr_at(self, epoch: int) -> float:
        """The rate for 0-based `epoch`: constant, then down by lr/(decay_epochs + 1) per epoch
        (pix2pix's 'linear' policy), so a run ends on small steps rather than wherever it wandered."""
        cfg = self.cfg
        decayed = max(0, epoch + 1 - (cfg.epochs - cfg.decay_epochs))
        return cfg.lr * (1 - decayed / (cfg.decay_epochs + 1))


    def time_is_up(self, deadline: float | None) -> bool:
        """Whether the --minutes budget is spent; rank 0's clock decides for every rank, so all stop
        after the same step."""
        if deadline is None:
            return False
        up = torch.tensor([float(time.monotonic() > deadline)], device=self.device)
        if self.ddp:
            dist.broadcast(up, 0)
        return bool(up.item())

    def fit(self):
        cfg = self.cfg
        say = print if self.master else (lambda *args, **kwargs: None)
        say(f"G {cfg.arch} {count_parameters(self.G) / 1e6:.2f}M params, D {count_parameters(self.D) / 1e6:.2f}M, "
            f"{len(self.photos)} train photos, device {self.device}, bf16 {self.bf16}, "
            f"{self.world} process{'es' if self.world > 1 else ''}, batch {cfg.batch_size}")
        if self.val_photos is not None:
            grey = self.validate(grey=True)
            say("no-colour baseline on val:", json.dumps({k: round(grey[k], 4) for k in metrics.COLUMNS}))
        log_path = self.out / "losses.csv"
        columns = ["epoch", "phase", *LOSS_COLUMNS, *(f"val_{k}" for k in metrics.COLUMNS), "images_per_s", "minutes", "lr"]
        deadline = time.monotonic() + 60 * cfg.minutes if cfg.minutes else None
        out_of_time = False
        while self.epoch < cfg.epochs and not out_of_time:
            gan = cfg.gan_weight > 0 and self.epoch >= cfg.pretrain_epochs
            lr = self.lr_at(self.epoch)
            for opt in (self.opt_G, self.opt_D):
                for group in opt.param_groups:
                    group["lr"] = lr
            self.net_G.train()
            self.net_D.train()
            sums = dict.fromkeys(LOSS_COLUMNS, 0.0)
            steps, t0 = 0, time.perf_counter()
            batches = data.random_batches(self.photos, cfg.batch_size, cfg.size, self.rng, self.rank, self.world,
                                         cfg.crop_min or None)
            bar = tqdm(batches, total=len(self.photos) // cfg.batch_size, desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
                       unit="step", mininterval=5, disable=not self.master)
            for rgb in bar:
                for k, v in self.step(rgb, gan).items():
                    sums[k] += v
                steps += 1
                bar.set_postfix(G=f"{sums['loss_G'] / steps:.3f}", refresh=False)
                if self.time_is_up(deadline):  # this epoch ends here, and the run with it
                    out_of_time = True
                    break
            seconds = time.perf_counter() - t0
            if self.ddp:  # each rank's mean over an equal share: their mean is the global batch's
                total = torch.tensor([sums[k] for k in LOSS_COLUMNS], dtype=torch.float64, device=self.device)
                dist.all_reduce(total)
                sums = dict(zip(LOSS_COLUMNS, (total / self.world).tolist()))
            self.epoch += 1
            self.samples_seen += steps * cfg.batch_size
            self.train_seconds += seconds
            val = self.validate()
            row = {"epoch": self.epoch, "phase": "gan" if gan else "pretrain", "lr": lr,
                   **{k: round(v / max(steps, 1), 4) for k, v in sums.items()},
                   **{f"val_{k}": round(val[k], 4) for k in metrics.COLUMNS if k in val},
                   "images_per_s": round(steps * cfg.batch_size / seconds, 1),
                   "minutes": round(self.train_seconds / 60, 1)}
            self.history.append(row)
            say(json.dumps(row), flush=True)
            if out_of_time:
                say(f"--minutes {cfg.minutes} spent: epoch {self.epoch} stopped after {steps} of "
                    f"{len(self.photos) // cfg.batch_size} steps; writing weights and checkpoint", flush=True)
            if self.master:
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
    (its settings, with `cfg.epochs` allowed to extend the run and `cfg.minutes` a new budget)."""
    if resume:
        state = torch.load(resume, map_location="cpu", weights_only=False)
        saved = TrainConfig(**{**state["config"], "epochs": cfg.epochs, "out": cfg.out, "device": cfg.device,
                               "minutes": cfg.minutes})
        trainer = Trainer(saved)
        trainer.load_state(state)
    else:
        trainer = Trainer(cfg)
    trainer.fit()
    return trainer
