"""A fast lossless PNG writer for 8-bit grey and RGB images.

Pillow tries five filters on every row and compresses with zlib at level 6: on a 12-megapixel
colorized scan that is most of a job's time. Here every row gets the same filter ("Up": the row
minus the one above, one numpy subtraction a strip at a time) and deflate runs at level 1,
through ISA-L when the `isal` package is installed (about 4x zlib's speed at equal size) and
zlib otherwise. The file is some 25 % larger than Pillow's default and ~20x faster to write;
any PNG reader decodes it to the same pixels. The output depends on the pixels alone, so the
same image always gives the same bytes.
"""
import struct
import zlib

import numpy as np
from PIL import Image

try:
    from isal import isal_zlib as _deflate
except ImportError:  # a platform without its wheels: the same format, slower
    _deflate = zlib

LEVEL = 1
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_UP = 2  # PNG filter type
_STRIP_BYTES = 1 << 21  # rows are filtered and compressed about this many bytes at a time
_IDAT_BYTES = 1 << 20  # compressed data is written in chunks of about this size


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def encode(image: Image.Image) -> bytes:
    """The image as PNG bytes: L stays grey, every other mode is written as RGB."""
    if image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    channels = 1 if image.mode == "L" else 3
    width, height = image.size
    header = struct.pack(">IIBBBBB", width, height, 8, 0 if channels == 1 else 2, 0, 0, 0)
    parts, pending, pending_size = [_SIGNATURE, _chunk(b"IHDR", header)], [], 0

    def emit(data: bytes, final: bool = False):
        nonlocal pending_size
        if data:
            pending.append(data)
            pending_size += len(data)
        if pending_size >= _IDAT_BYTES or (final and pending):
            parts.append(_chunk(b"IDAT", b"".join(pending)))
            pending.clear()
            pending_size = 0

    compressor = _deflate.compressobj(LEVEL)
    row_bytes = width * channels
    step = max(1, _STRIP_BYTES // row_bytes)
    above = np.zeros(row_bytes, np.uint8)
    filtered = np.empty((step, 1 + row_bytes), np.uint8)
    filtered[:, 0] = _UP
    for y in range(0, height, step):
        rows = np.asarray(image.crop((0, y, width, min(height, y + step)))).reshape(-1, row_bytes)
        out = filtered[:len(rows)]
        np.subtract(rows[0], above, out=out[0, 1:])
        np.subtract(rows[1:], rows[:-1], out=out[1:, 1:])
        above = rows[-1]
        emit(compressor.compress(out))
    emit(compressor.flush(), final=True)
    parts.append(_chunk(b"IEND", b""))
    return b"".join(parts)
