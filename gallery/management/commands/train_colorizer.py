import json

import torch.distributed as dist
from django.core.management.base import BaseCommand, CommandError

from mlcore.models import GENERATORS
from mlcore.train import TrainConfig, train


class Command(BaseCommand):
    help = ("Train a colorization generator (pix2pix in L*a*b*) on a folder of colour photos; "
            "under torchrun, in several processes (docs/TRAINING.md).")

    def add_arguments(self, parser):
        defaults = TrainConfig(data=[], out="")
        parser.add_argument("--data", required=True, nargs="+",
                            help="folder trees of colour photos to train on (several are pooled)")
        parser.add_argument("--val", help="folder of colour photos to validate on after every epoch")
        parser.add_argument("--out", required=True, help="run folder: losses.csv, sample grids, checkpoint, weights")
        parser.add_argument("--arch", choices=sorted(GENERATORS), default=defaults.arch)
        parser.add_argument("--gen-config", type=json.loads, default={},
                            help='generator options as JSON, e.g. \'{"ngf": 32}\'')
        parser.add_argument("--size", type=int, default=defaults.size, help="training crop, px")
        parser.add_argument("--epochs", type=int, default=defaults.epochs)
        parser.add_argument("--pretrain-epochs", type=int, default=defaults.pretrain_epochs,
                            help="epochs without the GAN loss before the GAN phase")
        parser.add_argument("--batch-size", type=int, default=defaults.batch_size,
                            help="the global batch, split over the processes under torchrun")
        parser.add_argument("--lr", type=float, default=defaults.lr)
        parser.add_argument("--decay-epochs", type=int, default=defaults.decay_epochs,
                            help="the last this many epochs lower the rate linearly towards zero (pix2pix)")
        parser.add_argument("--l1-weight", type=float, default=defaults.l1_weight)
        parser.add_argument("--gan-weight", type=float, default=defaults.gan_weight)
        parser.add_argument("--ce-weight", type=float, default=defaults.ce_weight,
                            help="class-rebalanced colour-bin cross-entropy (generators with a bin head)")
        parser.add_argument("--rebalance", type=float, default=defaults.rebalance)
        parser.add_argument("--ema-decay", type=float, default=defaults.ema_decay)
        parser.add_argument("--val-images", type=int, default=defaults.val_images)
        parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=defaults.device)
        parser.add_argument("--precision", choices=["auto", "bf16", "fp32"], default=defaults.precision)
        parser.add_argument("--seed", type=int, default=defaults.seed)
        parser.add_argument("--init", metavar="WEIGHTS",
                            help="start the generator from a weights file (fine-tuning; its arch and config win)")
        parser.add_argument("--hint-share", type=float, default=defaults.hint_share,
                            help="share of samples trained with simulated colour hints (generators with hints)")
        parser.add_argument("--degrade", type=float, default=defaults.degrade,
                            help="share of samples whose input lightness is degraded like an old scan's "
                                 "(tone curve, fading, blur, grain)")
        parser.add_argument("--cache-size", type=int, default=defaults.cache_size,
                            help="photos are cached as squares of this size; training crops move inside them")
        parser.add_argument("--crop-min", type=int, default=defaults.crop_min,
                            help="scale augmentation: crop squares of this many px up to the cache size, "
                                 "resized to --size (0: every crop is --size px)")
        parser.add_argument("--minutes", type=float, default=defaults.minutes,
                            help="time budget: stop after the step where it runs out, writing weights and checkpoint")
        parser.add_argument("--resume", metavar="CKPT", help="continue this checkpoint.pt exactly where it stopped")

    def handle(self, *args, **opts):
        resume = opts.pop("resume")
        fields = TrainConfig.__dataclass_fields__
        cfg = TrainConfig(**{k: v for k, v in opts.items() if k in fields})
        try:
            train(cfg, resume=resume)
        except (FileNotFoundError, ValueError, RuntimeError) as exc:
            raise CommandError(str(exc)) from None
        finally:
            if dist.is_initialized():  # started by the Trainer under torchrun
                dist.destroy_process_group()
