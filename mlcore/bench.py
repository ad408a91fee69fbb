"""Speed of every generator on this machine: `python -m mlcore.bench`.

Prints inference images/s at 256 and 512 px and training steps/s (batch 32 at
128 px, the L1 pre-training step and the full pix2pix GAN step), on the CPU
and on CUDA when present, in fp32, and in bf16 autocast where the hardware runs it natively.
"""
import argparse
import time

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from .models import build_generator, count_parameters
from .train import TrainConfig, Trainer, use_bf16

GENERATORS = {  # name -> (arch, config)
    # pix2pix's unet_256: at 128 px its 8 halvings need the crop padded to 256.
    "unet_256 (seed, ngf 64)": ("unet", {"num_downs": 8, "ngf": 64}),
    # pix2pix's unet_128 at ngf 32: the 10.5M-parameter reference for CPU training speed.
    "unet_128 (ngf 32)": ("unet", {"num_downs": 7, "ngf": 32}),
    "resunet (ours, ngf 32)": ("resunet", {"ngf": 32}),
}


def _rate(fn, count: int, seconds: float, sync) -> float:
    fn()  # warm-up: oneDNN / cuDNN pick their kernels on the first call
    sync()
    done, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        done += count
    sync()
    return done / (time.perf_counter() - start)


def bench(device: torch.device, seconds: float) -> list[dict]:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    rows = []
    # Without AVX-512 BF16 or AMX, oneDNN emulates bf16: on an AVX2 CPU the bf16 rows ran past 10 minutes.
    native_bf16 = use_bf16("auto", device)
    for name, (arch, config) in GENERATORS.items():
        for bf16 in (False, True) if native_bf16 else (False,):
            generator = build_generator(arch, **config).to(device).eval()
            autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16)
            row = {"generator": name, "params": count_parameters(generator), "device": device.type,
                   "precision": "bf16" if bf16 else "fp32"}
            for size, batch in ((256, 4), (512, 1)):
                L = torch.rand(batch, 1, size, size, device=device) * 2 - 1

                def infer():
                    with torch.no_grad(), autocast:
                        generator(L)
                row[f"infer_{size}_img_s"] = _rate(infer, batch, seconds, sync)
            photos = np.random.default_rng(0).integers(0, 256, (64, 144, 144, 3), dtype=np.uint8)
            for label, gan in (("l1", False), ("gan", True)):
                cfg = TrainConfig(data="", out="/tmp/mlcore-bench", arch=arch, gen_config=config,
                                  ce_weight=1.0 if arch == "resunet" else 0.0,
                                  device=device.type, precision="bf16" if bf16 else "fp32")
                trainer = Trainer(cfg, photos=photos)
                rgb = torch.from_numpy(photos[:32, :128, :128]).permute(0, 3, 1, 2).float() / 255
                row[f"train_{label}_step_s"] = _rate(lambda: trainer.step(rgb, gan), 1, seconds, sync)
            rows.append(row)
            print(_format_row(row), flush=True)
    if not native_bf16:
        print(f"(bf16 not measured: this {device.type} has no native bf16)", flush=True)
    return rows


HEADER = ("| generator | params | device | precision | infer 256 img/s | infer 512 img/s "
          "| train L1 steps/s | train GAN steps/s |\n|---|---|---|---|---|---|---|---|")


def _format_row(r: dict) -> str:
    return (f"| {r['generator']} | {r['params'] / 1e6:.1f}M | {r['device']} | {r['precision']} "
            f"| {r['infer_256_img_s']:.1f} | {r['infer_512_img_s']:.2f} "
            f"| {r['train_l1_step_s']:.2f} | {r['train_gan_step_s']:.2f} |")


def synthetic_scan(width: int, height: int, seed: int = 0, grain: float = 2.0) -> Image.Image:
    """A stand-in for a scanned black-and-white print, (width x height) 8-bit grey: soft shapes
    and gradients at every scale, a few hard edges, and film grain (sigma `grain` levels), so
    that it compresses like a real scan. Made a strip at a time: a 50 MP one costs ~60 MB."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(30, 226, (12, 16), dtype=np.uint8)).resize((160, 120), Image.BICUBIC)
    draw = ImageDraw.Draw(small)
    for _ in range(8):  # hard-edged shapes: walls, windows, clothes
        x, y = rng.integers(0, 150), rng.integers(0, 110)
        draw.rectangle((x, y, x + rng.integers(4, 40), y + rng.integers(4, 30)), fill=int(rng.integers(0, 256)))
    small = small.filter(ImageFilter.GaussianBlur(0.6))
    scan = small.resize((width, height), Image.BICUBIC)
    rows = max(1, (1 << 22) // width)
    for y in range(0, height, rows):
        box = (0, y, width, min(height, y + rows))
        strip = np.asarray(scan.crop(box), np.int16) + rng.normal(0, grain, (box[3] - y, width)).astype(np.int16)
        scan.paste(Image.fromarray(np.clip(strip, 0, 255).astype(np.uint8)), box)
    return scan


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="time per measurement")
    parser.add_argument("--device", choices=["cpu", "cuda"], action="append",
                        help="default: cpu, and cuda when available")
    args = parser.parse_args(argv)
    devices = args.device or ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads; batch 32 at 128 px for training steps")
    print(HEADER)
    for device in devices:
        bench(torch.device(device), args.seconds)


if __name__ == "__main__":
    main()
