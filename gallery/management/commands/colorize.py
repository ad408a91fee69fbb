import argparse
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from PIL import Image, UnidentifiedImageError

from mlcore import png
from mlcore.hints import HintError, parse_color
from mlcore.inference import MAX_VIVIDNESS, Colorizer
from mlcore.weights import DEFAULT_WEIGHTS, WeightsError


class Command(BaseCommand):
    help = "Colorize photos at full resolution: writes OUT/<stem>.png for every input."

    def add_arguments(self, parser):
        parser.add_argument("inputs", nargs="+", help="image files")
        parser.add_argument("--out", required=True, help="output folder")
        parser.add_argument("--weights", help="weights file (default: the shipped model)")
        parser.add_argument("--size", type=int, help="working resolution, shorter side (default: the model's)")
        parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=settings.COLORIZER_DEVICE)
        parser.add_argument("--vividness", type=float, default=1.0,
                            help="colour strength: multiplies the model's tuned chroma gain, 0 (grey) to 2 (default 1)")
        parser.add_argument("--hint", action="append", type=_hint, default=[], metavar="X,Y,#RRGGBB",
                            help="a colour you know at pixel (X, Y) of the upright photo; repeat for more")

    def handle(self, *args, **opts):
        if not 0 <= opts["vividness"] <= MAX_VIVIDNESS:
            raise CommandError(f"--vividness must be between 0 and {MAX_VIVIDNESS:g}, got {opts['vividness']}")
        weights = opts["weights"] or settings.COLORIZER_WEIGHTS or DEFAULT_WEIGHTS
        try:
            colorizer = Colorizer.load(weights, device=opts["device"], size=opts["size"] or settings.COLORIZER_SIZE)
        except WeightsError as exc:
            raise CommandError(f"{exc} (pass --weights FILE)") from None
        if opts["hint"] and not colorizer.takes_hints:
            raise CommandError(f"--hint: model {colorizer.version} was trained without colour hints (pass --weights FILE)")
        out = Path(opts["out"])
        out.mkdir(parents=True, exist_ok=True)
        failed = []
        for name in opts["inputs"]:
            try:
                with Image.open(name) as image:
                    result = colorizer.colorize(image, hints=opts["hint"], vividness=opts["vividness"])
            except (OSError, UnidentifiedImageError, HintError) as exc:
                # One unreadable file must not cost the others their results.
                self.stderr.write(f"{name}: not colorized: {exc}")
                failed.append(name)
                continue
            target = out / f"{Path(name).stem}.png"
            target.write_bytes(png.encode(result))
            self.stdout.write(f"{name} -> {target} ({result.width}x{result.height})")
        if failed:
            raise CommandError(f"{len(failed)} of {len(opts['inputs'])} inputs could not be colorized")


def _hint(value):
    """'X,Y,#RRGGBB' -> the hint's dict, as the API and the web page send it."""
    try:
        x, y, colour = value.split(",")
        parse_color(colour.strip())
        return {"x": int(x), "y": int(y), "color": colour.strip().lower()}
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not X,Y,#RRGGBB (e.g. 812,440,#3a5fcd)") from None
