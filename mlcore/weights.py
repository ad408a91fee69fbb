"""Generator weights as safetensors files that describe themselves.

The metadata holds everything needed to rebuild the network (arch + config)
and to judge it (training data and settings, validation metrics), so a file
is never separated from what it is.
"""
import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from .models import build_generator

DEFAULT_WEIGHTS = Path(__file__).resolve().parent / "weights" / "colorizer.safetensors"
FORMAT = "mlcore-colorizer/1"


class WeightsError(Exception):
    """A weights file that can't be used; the message is one line saying which and why."""


def save_generator(path, generator, arch: str, config: dict, **metadata) -> Path:
    """Write the generator's tensors with arch, config and any JSON-able metadata."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": FORMAT, "arch": arch, "config": json.dumps(config)}
    meta.update({key: json.dumps(value) for key, value in metadata.items()})
    # float16 halves the file (the shipped one must stay under 24 MiB) at no visible cost in colour.
    tensors = {k: (v.detach().half() if v.is_floating_point() else v.detach()).contiguous().cpu()
               for k, v in generator.state_dict().items()}
    tmp = path.with_suffix(".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)  # readers never see a half-written file
    return path


def read_metadata(path) -> dict:
    """The decoded metadata of a weights file (arch, config, training, metrics, ...)."""
    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"weights file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            raw = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as exc:
        raise WeightsError(f"weights file {path} is corrupt or not a safetensors file ({exc})") from None
    if raw.get("format") != FORMAT:
        raise WeightsError(f"weights file {path} is not a colorizer weights file (no {FORMAT} metadata)")
    return {k: (v if k in ("format", "arch") else json.loads(v)) for k, v in raw.items()}


def load_generator(path, device="cpu"):
    """Rebuild the generator a weights file describes; returns (generator in eval mode, metadata)."""
    meta = read_metadata(path)
    try:
        generator = build_generator(meta["arch"], **meta["config"])
    except (ValueError, TypeError) as exc:
        raise WeightsError(f"weights file {path} names an architecture this code can't build ({exc})") from None
    try:
        generator.load_state_dict(load_file(str(path)), strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(line.strip() for line in first[:3])
        raise WeightsError(f"weights file {path} does not match architecture {meta['arch']}: {detail}") from None
    except (SafetensorError, OSError) as exc:
        raise WeightsError(f"weights file {path} is corrupt ({exc})") from None
    return generator.to(device).eval(), meta


def file_digest(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_untrained(path, arch: str = "resunet", **config) -> Path:
    """A valid, randomly initialised weights file: what tests use to exercise the plumbing fast."""
    config = config or {"ngf": 8}
    torch.manual_seed(0)
    return save_generator(path, build_generator(arch, **config), arch, config, training={"untrained": True})
