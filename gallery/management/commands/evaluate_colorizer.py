import itertools
import json
import os
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mlcore.certainty import calibrate
from mlcore.evaluate import evaluate, format_sources, format_table, load_eval_images, sample_grid
from mlcore.inference import Colorizer
from mlcore.weights import DEFAULT_WEIGHTS, WeightsError, save_generator
from mlcore.white_balance import NEUTRAL_CHROMA


class Command(BaseCommand):
    help = "Print PSNR, SSIM, CIEDE2000, AuC and colourfulness for a colorizer and the no-colour baseline."

    def add_arguments(self, parser):
        parser.add_argument("--weights", help="weights file (default: the shipped model)")
        parser.add_argument("--data", required=True, help="folder of colour photos (e.g. a validation set)")
        parser.add_argument("--size", type=int, default=256, help="photos are centre-cropped to size x size")
        parser.add_argument("--limit", type=int, help="only N photos, evenly spread over the folder")
        parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
        parser.add_argument("--temperature", type=float, nargs="+",
                            help="annealed-mean temperatures to compare (generators with a colour-bin head); "
                                 "the first is the one --grid and --ship use")
        parser.add_argument("--working-size", type=int, nargs="+",
                            help="working resolutions (short side) to compare; default: the model's")
        parser.add_argument("--chroma", type=float, nargs="+",
                            help="chroma gains to compare (x every temperature; default: the model's); the first is the one "
                                 "--grid and --ship use")
        parser.add_argument("--white-balance", type=float, nargs="+", metavar="STRENGTH",
                            help="white balance strengths to compare (mlcore/white_balance.py: 0 leaves the network's "
                                 "cast, 1 makes what it paints nearly grey average grey; default: the model's); the "
                                 "first is the one --grid and --ship use")
        parser.add_argument("--hints", type=int, nargs="+", default=[0],
                            help="true-colour hints given per photo, to compare (models that take hints)")
        parser.add_argument("--degraded", action="store_true",
                            help="give the colorizer each photo as a worn old scan (faded, soft, grainy, another "
                                 "tone curve) and score its colours on the photo's own lightness")
        parser.add_argument("--calibrate", metavar="FOLDER",
                            help="fit the certainty gain curve (mlcore/certainty.py) on these colour photos, "
                                 "not the evaluated ones (e.g. photos/val), for each temperature and working size")
        parser.add_argument("--uniform-gain", action="store_true",
                            help="ignore the weights' certainty curve: one chroma gain for every pixel")
        parser.add_argument("--grid", metavar="PNG", help="also save a grey | ours | truth grid of 8 photos")
        parser.add_argument("--ship", metavar="FILE",
                            help="write the weights, with the first temperature and these metrics, to FILE")

    def handle(self, *args, **opts):
        weights = opts["weights"] or settings.COLORIZER_WEIGHTS or DEFAULT_WEIGHTS
        if opts["ship"] and opts["degraded"]:
            raise CommandError("--ship records the numbers of the photos as they are: leave out --degraded")
        try:
            colorizer = Colorizer.load(weights, device=opts["device"])
            images, sources = load_eval_images(opts["data"], opts["size"], opts["limit"])
            # Unless asked to compare, the settings the weights file was shipped with.
            working_sizes = opts["working_size"] or [colorizer.size]
            # Read once per working size (the network sees them there), and before the first table:
            # a missing or empty folder fails now.
            calibration = {size: load_eval_images(opts["calibrate"], size)[0] for size in working_sizes
                           } if opts["calibrate"] else {}
        except WeightsError as exc:
            raise CommandError(f"{exc} (pass --weights FILE)") from None
        except FileNotFoundError as exc:
            raise CommandError(str(exc)) from None
        generator = colorizer.generator
        temperatures = opts["temperature"] or [None]
        if temperatures != [None] and not hasattr(generator, "temperature"):
            raise CommandError(f"{colorizer.metadata['arch']} has no colour-bin head, so no temperature")
        self.stdout.write(f"{colorizer.version}: {len(images)} photos from {opts['data']} at {opts['size']}px")

        chromas = opts["chroma"] or [colorizer.chroma]
        shipped_balance = colorizer.white_balance or {"strength": 0.0, "neutral_chroma": NEUTRAL_CHROMA}
        balances = opts["white_balance"] or [shipped_balance["strength"]]
        # Strengths are compared at the file's own threshold: a file keeps the one it was tuned with.
        neutral_chroma = shipped_balance["neutral_chroma"]
        if opts["uniform_gain"]:
            colorizer.certainty = None
        curves = {}  # (temperature, working size) -> the curve calibrated for them
        rows, results = {}, []
        for t, chroma, balance, working_size, hints in itertools.product(temperatures, chromas, balances, working_sizes,
                                                                         opts["hints"]):
            self._use(colorizer, t, chroma, balance, neutral_chroma, working_size)
            if opts["calibrate"]:
                colorizer.certainty = self._calibrated(colorizer, calibration[working_size], opts["calibrate"], t,
                                                       working_size, curves)
            result = evaluate(colorizer, images, sources, hints=hints, degraded=opts["degraded"])
            rows.setdefault("no colour", result["no colour"])
            shown = [f"T={t:g}"] if t is not None else []
            shown += [f"chroma={chroma:g}"] if opts["chroma"] else []
            shown += [f"white balance {balance:g}"] if opts["white_balance"] else []
            shown += [f"at {working_size}px"] if opts["working_size"] else []
            shown += [f"{hints} hints"] if opts["hints"] != [0] else []
            shown += ["from old scans"] if opts["degraded"] else []
            name = ", ".join(["ours", *shown])
            rows[name] = result["ours"]
            results.append(result)
            if len(result["by source"]) > 1:
                self.stdout.write(f"By source, {name}:\n{format_sources(result['by source'])}\n")
        self.stdout.write(format_table(rows))

        self._use(colorizer, temperatures[0], chromas[0], balances[0], neutral_chroma, working_sizes[0])
        if opts["calibrate"]:
            colorizer.certainty = curves[temperatures[0], working_sizes[0]]
        if opts["grid"]:
            sample_grid(colorizer, images).save(opts["grid"])
        if opts["ship"]:
            meta = colorizer.metadata
            rounded = lambda m: {k: round(v, 4) for k, v in m.items()}  # noqa: E731
            first = results[0]
            evaluated = {"images": len(images), "size": opts["size"],
                         "ours": rounded(first["ours"]), "no colour": rounded(first["no colour"]),
                         "by source": {source: {"images": r["images"], "ours": rounded(r["ours"]),
                                                "no colour": rounded(r["no colour"])}
                                       for source, r in first["by source"].items()}}
            # One entry per evaluated folder: shipping again with other --data (dev, then val) adds
            # its numbers beside the others. A training run's own flat validation is replaced.
            previous = meta.get("validation", {})
            # Without --temperature, the one the network already has (generators with a bin head).
            temperature = temperatures[0]
            if temperature is None and hasattr(generator, "temperature"):
                temperature = round(float(generator.temperature), 4)
            keyed = {} if "images" in previous else previous
            # Keyed by the folder relative to the repository, so that one folder named two ways
            # (../shared/... or /work/shared/...) keeps one entry.
            folder = os.path.relpath(Path(opts["data"]).resolve(), settings.BASE_DIR)
            path = save_generator(opts["ship"], generator, meta["arch"], meta["config"],
                                  training=meta.get("training", {}),
                                  validation={**keyed, folder: evaluated},
                                  inference={"size": working_sizes[0], "temperature": temperature,
                                             "chroma": chromas[0], "certainty": colorizer.certainty,
                                             "white_balance": colorizer.white_balance})
            self.stdout.write(f"wrote {path}")

    def _calibrated(self, colorizer, photos, folder, temperature, working_size, curves):
        if (temperature, working_size) not in curves:
            try:
                curve = calibrate(colorizer, photos)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
            self.stdout.write(f"Certainty curve from {len(photos)} photos of {folder} at {working_size}px"
                              f"{'' if temperature is None else f', T={temperature:g}'}: {json.dumps(curve)}")
            curves[temperature, working_size] = curve
        return curves[temperature, working_size]

    @staticmethod
    def _use(colorizer, temperature, chroma, balance, neutral_chroma, working_size):
        if temperature is not None:
            colorizer.generator.temperature.fill_(temperature)
        colorizer.chroma, colorizer.size = chroma, working_size
        colorizer.white_balance = {"strength": balance, "neutral_chroma": neutral_chroma} if balance else None
