from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from PIL import Image, UnidentifiedImageError

from mlcore import png
from mlcore.inference import Colorizer
from mlcore.weights import DEFAULT_WEIGHTS, WeightsError


class Command(BaseCommand):
    help = "Colorize photos at full resolution: writes OUT/<stem>.png for every input."

    def add_arguments(self, parser):
        parser.add_argument("inputs", nargs="+", help="image files")
        parser.add_argument("--out", required=True, help="output folder")
        parser.add_argument("--weights", help="weights file (default: the shipped model)")
        parser.add_argument("--size", type=int, help="working resolution, shorter side (default: the model's)")
        parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default=settings.COLORIZER_DEVICE)

    def handle(self, *args, **opts):
        weights = opts["weights"] or settings.COLORIZER_WEIGHTS or DEFAULT_WEIGHTS
        try:
            colorizer = Colorizer.load(weights, device=opts["device"], size=opts["size"] or settings.COLORIZER_SIZE)
        except WeightsError as exc:
            raise CommandError(f"{exc} (pass --weights FILE)") from None
        out = Path(opts["out"])
        out.mkdir(parents=True, exist_ok=True)
        failed = []
        for name in opts["inputs"]:
            try:
                with Image.open(name) as image:
                    result = colorizer.colorize(image)
            except (OSError, UnidentifiedImageError) as exc:
                # One unreadable file must not cost the others their results.
                self.stderr.write(f"{name}: not colorized: {exc}")
                failed.append(name)
                continue
            target = out / f"{Path(name).stem}.png"
            target.write_bytes(png.encode(result))
            self.stdout.write(f"{name} -> {target} ({result.width}x{result.height})")
        if failed:
            raise CommandError(f"{len(failed)} of {len(opts['inputs'])} inputs could not be colorized")
