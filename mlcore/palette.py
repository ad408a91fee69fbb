"""The model's plausible colours for every point of a photo: the palette an eyedropper offers.

The network predicts, at each cell of its 1/4-scale output, a distribution over a*b* bins;
`Colorizer.palettes` turns it into a `PaletteGrid`: per cell, the few most likely colours
(neighbouring bins merged, so the choices differ), drawn at the cell's own lightness. A grid
is saved as a small PNG, so a web process can answer "which colours here?" with Pillow alone.

This module imports neither torch nor numpy: the web process reads grids with it.
"""
import io
import json

from PIL import Image, PngImagePlugin

FORMAT = "mlcore-palette/1"
DEFAULT_K = 6


class PaletteGrid:
    """Colours and their probabilities for a grid of cells over an upright photo.

    `image` is RGBA, `k` tiles stacked vertically, each (cells wide, cells high): tile r holds
    every cell's r-th most likely colour, its alpha the colour's probability (0-255).
    `size` is the photo's (width, height), `working` the network's (width, height): a cell
    is 4x4 px of the working size, as the network's output.
    """

    CELL = 4

    def __init__(self, image: Image.Image, k: int, size: tuple[int, int], working: tuple[int, int]):
        if image.mode != "RGBA" or image.height % k:
            raise ValueError("a palette grid is an RGBA image of k tiles stacked vertically")
        self.image, self.k, self.size, self.working = image, k, tuple(size), tuple(working)
        self.cells = (image.width, image.height // k)  # (across, down)

    def cell_of(self, x: int, y: int) -> tuple[int, int]:
        """The (column, row) of the cell that pixel (x, y) of the photo falls in."""
        (width, height), (ws, hs), (cols, rows) = self.size, self.working, self.cells
        if not (0 <= x < width and 0 <= y < height):
            raise ValueError(f"({x}, {y}) is outside the photo ({width} x {height} px)")
        col = int((x + 0.5) * ws / width) // self.CELL
        row = int((y + 0.5) * hs / height) // self.CELL
        return min(col, cols - 1), min(row, rows - 1)

    def at(self, x: int, y: int) -> list[dict]:
        """[{"color": "#rrggbb", "probability": p}, ...] at pixel (x, y), most likely first."""
        col, row = self.cell_of(x, y)
        rows = self.cells[1]
        colours = []
        for r in range(self.k):
            red, green, blue, alpha = self.image.getpixel((col, r * rows + row))
            colours.append({"color": f"#{red:02x}{green:02x}{blue:02x}", "probability": round(alpha / 255, 3)})
        return colours

    def to_png(self) -> bytes:
        info = PngImagePlugin.PngInfo()
        info.add_text("mlcore", json.dumps({"format": FORMAT, "k": self.k, "size": self.size, "working": self.working}))
        buffer = io.BytesIO()
        self.image.save(buffer, "PNG", pnginfo=info, optimize=True)
        return buffer.getvalue()

    @classmethod
    def from_png(cls, data: bytes) -> "PaletteGrid":
        image = Image.open(io.BytesIO(data))
        try:
            meta = json.loads(image.text.get("mlcore", "{}"))
        except ValueError:
            meta = {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"not a palette grid (no {FORMAT} metadata)")
        return cls(image.convert("RGBA"), int(meta["k"]), tuple(meta["size"]), tuple(meta["working"]))
