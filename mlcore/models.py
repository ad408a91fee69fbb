"""Generators and the discriminator, selectable by name.

`unet` is the seed's pix2pix U-Net, `resunet` our own generator, `patchgan`
the seed's 70x70 PatchGAN. Every generator maps normalised L (B, 1, H, W) to
normalised ab (B, 2, H, W) in [-1, 1] at the input's size. A `resunet` built
with `hints=True` also takes a hint map (B, 3, H, W): the normalised ab of
hinted pixels and a 0/1 mask of them (ideepcolor's input, Zhang et al. 2017).
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


def init_weights(net: nn.Module, gain: float = 0.02) -> nn.Module:
    """The seed's init: convs N(0, 0.02), norm scales N(1, 0.02), biases 0."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)
    return net


def pad_to_multiple(x: torch.Tensor, multiple: int) -> tuple[torch.Tensor, tuple[int, int]]:
    """Reflect-pad H and W up to a multiple, so any input size goes through the net."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        # Reflection needs pad < size; replicate covers tiny inputs.
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x, (h, w)


# ---------------------------------------------------------------------------
# The seed: pix2pix U-Net (networks.py, UnetGenerator / UnetSkipConnectionBlock)
# ---------------------------------------------------------------------------

class UnetBlock(nn.Module):
    """One U-Net level: down-conv, the inner levels, up-conv, concatenated with its input."""

    def __init__(self, outer_nc, inner_nc, input_nc=None, submodule=None,
                 outermost=False, innermost=False, use_dropout=False):
        super().__init__()
        self.outermost = outermost
        input_nc = input_nc or outer_nc
        downconv = nn.Conv2d(input_nc, inner_nc, 4, 2, 1, bias=False)
        downrelu, downnorm = nn.LeakyReLU(0.2, True), nn.BatchNorm2d(inner_nc)
        uprelu, upnorm = nn.ReLU(True), nn.BatchNorm2d(outer_nc)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1)
            layers = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, 2, 1, bias=False)
            layers = [downrelu, downconv, uprelu, upconv, upnorm]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1, bias=False)
            layers = [downrelu, downconv, downnorm, submodule, uprelu, upconv, upnorm]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x):
        return self.model(x) if self.outermost else torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """pix2pix U-Net: `num_downs` halvings (8 at 256 px), dropout in the inner decoder blocks."""

    def __init__(self, num_downs: int = 8, ngf: int = 64, use_dropout: bool = True):
        super().__init__()
        self.multiple = 2 ** num_downs
        block = UnetBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetBlock(ngf * 8, ngf * 8, submodule=block, use_dropout=use_dropout)
        block = UnetBlock(ngf * 4, ngf * 8, submodule=block)
        block = UnetBlock(ngf * 2, ngf * 4, submodule=block)
        block = UnetBlock(ngf, ngf * 2, submodule=block)
        self.model = UnetBlock(2, ngf, input_nc=1, submodule=block, outermost=True)

    def forward(self, L):
        x, (h, w) = pad_to_multiple(L, self.multiple)
        return self.model(x)[..., :h, :w]


# ---------------------------------------------------------------------------
# Ours: residual U-Net with self-attention at the bottleneck and a colour-bin head
# ---------------------------------------------------------------------------

AB_BINS_PER_AXIS = 22  # a*b* grid of 10 units over [-110, 110], as Zhang et al. 2016


def ab_to_cell(ab: torch.Tensor) -> torch.Tensor:
    """Normalised ab (B, 2, H, W) -> index (B, H, W) of its cell on the full 22x22 grid."""
    idx = ((ab.float() + 1.0) / 2.0 * AB_BINS_PER_AXIS).long().clamp_(0, AB_BINS_PER_AXIS - 1)
    return idx[:, 0] * AB_BINS_PER_AXIS + idx[:, 1]


def _in_gamut_cells() -> torch.Tensor:
    """Grid cells that some sRGB colour falls in (313 of 484, as in Zhang et al.)."""
    from .color import rgb_to_lab

    v = torch.linspace(0, 1, 48)
    rgb = torch.stack(torch.meshgrid(v, v, v, indexing="ij")).reshape(1, 3, -1, 1)
    _, ab = rgb_to_lab(rgb)
    return torch.unique(ab_to_cell(ab).flatten())


AB_CELLS = _in_gamut_cells()
NUM_AB_BINS = len(AB_CELLS)
_CELL_TO_BIN = torch.full((AB_BINS_PER_AXIS ** 2,), -1, dtype=torch.long)
_CELL_TO_BIN[AB_CELLS] = torch.arange(NUM_AB_BINS)


def ab_bin_centers() -> torch.Tensor:
    """(Q, 2) normalised ab centres of the in-gamut bins."""
    step = 2.0 / AB_BINS_PER_AXIS
    a, b = AB_CELLS // AB_BINS_PER_AXIS, AB_CELLS % AB_BINS_PER_AXIS
    return torch.stack([a, b], dim=1).float() * step - 1.0 + step / 2


def ab_to_bin(ab: torch.Tensor) -> torch.Tensor:
    """Normalised ab (B, 2, H, W) -> in-gamut bin index (B, H, W); -1 where out of gamut
    (only from rounding at the gamut's edge), which cross-entropy ignores."""
    return _CELL_TO_BIN.to(ab.device)[ab_to_cell(ab)]


HINT_CHANNELS = 3  # ab of the hinted pixels, and their mask


class ResBlock(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True),
            nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch),
        )

    def forward(self, x):
        return F.relu(x + self.body(x))


class ExtraBlock(ResBlock):
    """A residual block that starts as the identity (`build_generator` zeroes its last batch
    norm's scale, and there is no ReLU after the sum): blocks added to a trained net change
    nothing until they are trained, so a net can be deepened without starting over."""

    def forward(self, x):
        return x + self.body(x)


class Attention(nn.Module):
    """Global self-attention over the bottleneck, so every pixel sees the whole scene
    (sky above, grass below), which a convolution stack only sees at its edges."""

    def __init__(self, ch: int, heads: int = 4):
        super().__init__()
        self.norm = nn.GroupNorm(8, ch)
        self.attn = nn.MultiheadAttention(ch, heads, batch_first=True)

    def forward(self, x):
        b, c, h, w = x.shape
        t = self.norm(x).flatten(2).transpose(1, 2)
        y, _ = self.attn(t, t, t, need_weights=False)
        return x + y.transpose(1, 2).reshape(b, c, h, w)


def _down(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True))


def _up(cin, cout):
    # Convolve at the low resolution, then nearest-upsample: a quarter of the cost of
    # convolving after, and no transposed-conv checkerboards.
    return nn.Sequential(nn.Conv2d(cin, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True),
                         nn.Upsample(scale_factor=2, mode="nearest"))


class ResUNet(nn.Module):
    """Our generator. The pix2pix encoder's cheap stride-2 4x4 convs down to 1/32,
    residual blocks where the maps are small, self-attention at 1/16 for global
    context, and a decoder that stops at 1/4 scale: colour is low-frequency and the
    full-resolution L carries the detail. The head predicts a distribution over the
    in-gamut a*b* bins (Zhang et al. 2016); ab is its annealed mean at temperature
    T: T=1 is the mean (safe, dull), lower T moves to the mode (vivid). T is a
    buffer chosen after training on val.
    """

    def __init__(self, ngf: int = 32, attn_heads: int = 4, temperature: float = 1.0, hints: bool = False,
                 extra_blocks: int = 0):
        super().__init__()
        c = [ngf, ngf * 2, ngf * 4, ngf * 8, ngf * 8]  # at 1/2 .. 1/32
        self.multiple = 32
        self.hints = hints
        # `extra_blocks` deepen the two smallest scales, where the scene's meaning is (and a
        # block costs least): appended, so a file without them loads into the first modules.
        self.enc = nn.ModuleList([
            nn.Sequential(nn.Conv2d(1 + HINT_CHANNELS * hints, c[0], 4, 2, 1), nn.LeakyReLU(0.2, True)),
            _down(c[0], c[1]),
            _down(c[1], c[2]),
            nn.Sequential(_down(c[2], c[3]), ResBlock(c[3]), Attention(c[3], attn_heads),
                          *[ExtraBlock(c[3]) for _ in range(extra_blocks)]),
            nn.Sequential(_down(c[3], c[4]), ResBlock(c[4]), *[ExtraBlock(c[4]) for _ in range(extra_blocks)]),
        ])
        self.dec = nn.ModuleList([
            _up(c[4], c[3]),
            nn.Sequential(nn.Conv2d(c[3] * 2, c[3], 1, bias=False), nn.BatchNorm2d(c[3]), nn.ReLU(True),
                          ResBlock(c[3]), _up(c[3], c[2])),
            _up(c[2] * 2, c[1]),
        ])
        self.head = nn.Sequential(nn.Conv2d(c[1] * 2, c[1] * 2, 1), nn.ReLU(True), nn.Conv2d(c[1] * 2, NUM_AB_BINS, 1))
        self.register_buffer("bin_centers", ab_bin_centers(), persistent=False)
        self.register_buffer("temperature", torch.tensor(float(temperature)))

    def logits(self, x):
        """Bin logits (B, Q, H/4, W/4) for an input (L, then any hint map) already padded to `multiple`."""
        skips = []
        for enc in self.enc:
            x = enc(x)
            skips.append(x)
        skips.pop()
        for dec in self.dec:
            x = torch.cat([dec(x), skips.pop()], 1)
        return self.head(x)

    def decode(self, logits, size, temperature=None):
        """Annealed mean of the bin distribution, upsampled to `size`."""
        t = self.temperature if temperature is None else temperature
        p = torch.softmax(logits.float() / t, dim=1)
        ab = torch.einsum("bqhw,qc->bchw", p, self.bin_centers)
        return F.interpolate(ab, size=size, mode="bilinear", align_corners=False)

    def forward(self, L, hints=None, return_logits: bool = False):
        """`hints` (B, 3, H, W) or None (no hint: automatic colorization)."""
        x, (h, w) = pad_to_multiple(L, self.multiple)
        if self.hints:
            if hints is None:
                hints = L.new_zeros(L.shape[0], HINT_CHANNELS, h, w)
            # Zeros, not reflection: a hint must not be echoed into the padding.
            x = torch.cat([x, F.pad(hints.to(x.dtype), (0, x.shape[-1] - w, 0, x.shape[-2] - h))], 1)
        elif hints is not None:
            raise ValueError("this generator was trained without colour hints")
        logits = self.logits(x)
        ab = self.decode(logits, x.shape[-2:])[..., :h, :w]
        return (ab, logits) if return_logits else ab


# ---------------------------------------------------------------------------
# The seed's 70x70 PatchGAN (networks.py, NLayerDiscriminator with n_layers=3)
# ---------------------------------------------------------------------------

class PatchGAN(nn.Module):
    """Scores overlapping 70x70 patches of L+ab as real or fake: 30x30 logits at 256 px."""

    def __init__(self, ndf: int = 64, in_channels: int = 3):
        super().__init__()
        layers = [nn.Conv2d(in_channels, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for prev, cur, stride in [(1, 2, 2), (2, 4, 2), (4, 8, 1)]:
            layers += [nn.Conv2d(ndf * prev, ndf * cur, 4, stride, 1, bias=False),
                       nn.BatchNorm2d(ndf * cur), nn.LeakyReLU(0.2, True)]
        layers.append(nn.Conv2d(ndf * 8, 1, 4, 1, 1))
        self.model = nn.Sequential(*layers)

    def forward(self, L, ab):
        return self.model(torch.cat([L, ab], 1))


GENERATORS = {"unet": UnetGenerator, "resunet": ResUNet}


def build_generator(arch: str, **config) -> nn.Module:
    if arch not in GENERATORS:
        raise ValueError(f"unknown generator {arch!r}; choose one of {', '.join(GENERATORS)}")
    net = init_weights(GENERATORS[arch](**config))
    for m in net.modules():
        if isinstance(m, ExtraBlock):
            nn.init.zeros_(m.body[-1].weight)
    return net


def grow(generator: nn.Module, arch: str, config: dict) -> nn.Module:
    """A trained `resunet` rebuilt with `config`, which may add what starts out changing nothing:
    the hint input (its channels start at zero) and extra blocks (they start as the identity).
    The grown net colours exactly as `generator` did until it is trained further."""
    state = dict(generator.state_dict())
    if config.get("hints") and not getattr(generator, "hints", False):
        w = state["enc.0.0.weight"]
        state["enc.0.0.weight"] = torch.cat([w, w.new_zeros(w.shape[0], HINT_CHANNELS, *w.shape[2:])], 1)
    grown = build_generator(arch, **config)
    new = tuple(f"{name}." for name, m in grown.named_modules() if isinstance(m, ExtraBlock))
    try:
        missing, unexpected = grown.load_state_dict(state, strict=False)
    except RuntimeError:
        missing, unexpected = [], ["(a tensor of another shape)"]
    if unexpected or any(not key.startswith(new) for key in missing):
        raise ValueError(f"a trained {arch} can only be grown by hints or extra_blocks, not to {config}")
    return grown


def count_parameters(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
