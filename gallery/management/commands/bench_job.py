"""How long a job's work takes and how much memory it needs, in this process: no server, no queue.

    manage.py bench_job                       # 12 and 50 MP scans, one thread, 3 runs each
    manage.py bench_job --megapixels 1 12 --mode RGB --threads 2

Each size runs in a fresh process (so that its peak memory is its own) on a synthetic scan
(mlcore.bench.synthetic_scan, saved as a JPEG as users upload them), through the same function
the worker runs (gallery.services.colorize_image): decode, colorize at full resolution, PNG
result, previews and thumbnail (and the eyedropper's palette, counted with the previews, where
the model proposes colours). Storage and the database are left out. Prints the median of the
runs for each step, and the process's peak RSS. Pin it to one core with `taskset -c 0` for the
numbers the README quotes.
"""
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from PIL import Image

STEPS = ("decode", "colorize", "png", "previews", "total")
CLOCKS = ("wall", "cpu")  # seconds that passed; seconds of CPU this process used


class Command(BaseCommand):
    help = "Time a colorization job's work on synthetic scans, in-process: median per step and peak memory."

    def add_arguments(self, parser):
        parser.add_argument("--megapixels", type=float, nargs="+", default=[12, 50])
        parser.add_argument("--repeat", type=int, default=3, help="runs per size (median reported)")
        parser.add_argument("--mode", choices=["L", "RGB"], default="L", help="the scan's JPEG: grey or RGB")
        parser.add_argument("--threads", type=int, default=1, help="torch threads (a pool process has one per core it owns)")
        parser.add_argument("--device", default=settings.COLORIZER_DEVICE)
        parser.add_argument("--child", help=argparse_hidden())

    def handle(self, *args, **opts):
        if opts["child"]:
            return self._child(opts)
        load = os.getloadavg()[0]
        self.stdout.write(f"{opts['repeat']} runs per size, median seconds, wall (CPU); torch threads {opts['threads']}; "
                          f"{opts['mode']} JPEG scans; device {opts['device']}; load average {load:.1f} "
                          f"on {os.cpu_count()} CPUs at start")
        self.stdout.write("| scan | " + " | ".join(STEPS) + " | PNG MB | peak RSS MB |")
        self.stdout.write("|---" * (len(STEPS) + 3) + "|")
        with tempfile.TemporaryDirectory() as folder:
            for megapixels in opts["megapixels"]:
                path = Path(folder) / f"scan-{megapixels:g}.jpg"
                _write_scan(path, megapixels, opts["mode"])
                command = [sys.executable, sys.argv[0], "bench_job", "--child", str(path),
                           "--repeat", str(opts["repeat"]), "--threads", str(opts["threads"]), "--device", opts["device"]]
                result = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
                width, height = result["size"]
                times = " | ".join(f"{result['wall ' + step]:.2f} ({result['cpu ' + step]:.2f})" for step in STEPS)
                self.stdout.write(f"| {megapixels:g} MP ({width}x{height}) | {times} | {result['png_mb']:.1f} "
                                  f"| {result['peak_rss_mb']:.0f} |")

    def _child(self, opts):
        import torch

        from gallery import services

        torch.set_num_threads(opts["threads"])
        settings.COLORIZER_DEVICE = opts["device"]
        colorizer = services.get_colorizer()
        data = Path(opts["child"]).read_bytes()
        runs = {(clock, step): [] for step in STEPS for clock in CLOCKS}
        original_colorize = colorizer.colorize
        for _ in range(opts["repeat"]):
            marks = {}

            def colorize(image, **colour_settings):
                marks["colorize"] = _now()
                out = original_colorize(image, **colour_settings)
                marks["png"] = _now()
                return out

            colorizer.colorize = colorize
            start = _now()
            image = Image.open(io.BytesIO(data))
            image.load()
            decoded = _now()
            files = services.colorize_image(colorizer, image, original_preview=True)
            end = _now()
            del image
            png_time = _png_time(files)
            for i, clock in enumerate(CLOCKS):
                runs[clock, "decode"].append(decoded[i] - start[i])
                runs[clock, "colorize"].append(marks["png"][i] - marks["colorize"][i])
                runs[clock, "png"].append(png_time[i])
                runs[clock, "previews"].append(end[i] - marks["png"][i] - png_time[i])
                runs[clock, "total"].append(end[i] - start[i])
        report = {f"{clock} {step}": statistics.median(values) for (clock, step), values in runs.items()}
        report["size"] = Image.open(io.BytesIO(data)).size
        report["png_mb"] = len(files["result"]) / 1e6
        report["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        sys.stdout.write(json.dumps(report))


def _now():
    return time.perf_counter(), time.process_time()


def _png_time(files):
    # The PNG is encoded right after colorize() returns; time it alone on the same result.
    from mlcore import png

    image = Image.open(io.BytesIO(files["result"]))
    image.load()
    start = _now()
    png.encode(image)
    return [b - a for a, b in zip(start, _now())]


def _write_scan(path, megapixels, mode):
    from mlcore.bench import synthetic_scan

    width = round((megapixels * 1e6 * 4 / 3) ** 0.5)
    scan = synthetic_scan(width, round(megapixels * 1e6 / width))
    scan.convert(mode).save(path, quality=90)


def argparse_hidden():
    import argparse

    return argparse.SUPPRESS
