from django.core.management.base import BaseCommand, CommandError

from mlcore.data import pack_photos


class Command(BaseCommand):
    help = ("Write a random subset of colour photos as small square JPEGs, at most --max-mib together: "
            "a training set to carry to a GPU machine (docs/TRAINING.md).")

    def add_arguments(self, parser):
        parser.add_argument("--data", required=True, nargs="+", help="folder trees of colour photos (pooled)")
        parser.add_argument("--out", required=True, help="an empty or new folder (packed/ is git-ignored)")
        parser.add_argument("--max-mib", type=float, default=55.0, help="budget for all the JPEGs together, MiB")
        parser.add_argument("--size", type=int, default=128,
                            help="photos are resized (shorter side) and centre-cropped to size x size")
        parser.add_argument("--quality", type=int, default=90, help="JPEG quality")
        parser.add_argument("--seed", type=int, default=0, help="which random subset")

    def handle(self, *args, **opts):
        try:
            written = pack_photos(opts["data"], opts["out"], size=opts["size"], max_bytes=int(opts["max_mib"] * 2 ** 20),
                                  quality=opts["quality"], seed=opts["seed"])
        except (FileNotFoundError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        mib = sum(p.stat().st_size for p in written) / 2 ** 20
        self.stdout.write(f"packed {len(written)} photos, {mib:.1f} MiB, {opts['size']}x{opts['size']}, into {opts['out']}")
