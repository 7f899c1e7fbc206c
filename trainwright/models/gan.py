"""Generators and discriminators: MLPs for tables and 2-D points, DCGAN-style convolutions for images.

A generator maps noise ``z`` (B, latent) [and labels (B,)] to samples (B, *data_shape); a discriminator
maps samples (B, *data_shape) [and labels] to one logit per pack of ``cfg.pack`` consecutive samples,
(B // pack,). Packing (PacGAN, Lin et al. 2018) lets the discriminator see several samples at once,
so a generator that puts them all on one mode is easy to tell apart: the standard cure for mode collapse.

Class conditioning feeds labels to both networks: one-hot, concatenated to z for the generators and to
the features of the MLP discriminator (before packing); the DCGAN discriminator uses a projection.

Example:
    >>> from trainwright.config.gan import GANConfig
    >>> cfg = GANConfig(latent_size=8)
    >>> g, d = build_generator(cfg, (2,)), build_discriminator(cfg, (2,))
    >>> d(g(torch.randn(4, 8))).shape
    torch.Size([4])
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from trainwright.config.gan import GANConfig
from trainwright.errors import TrainwrightError

MIN_SIDE, MAX_SIDE = 8, 64


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialization (Radford et al. 2016): weights N(0, 0.02), BatchNorm scales N(1, 0.02), biases 0.

    Example:
        >>> _ = nn.Linear(3, 4).apply(dcgan_init)
    """
    if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.Embedding)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.GroupNorm)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def _with_spectral_norm(module: nn.Module) -> nn.Module:
    """Every Linear/Conv of ``module`` divided by its largest singular value (Miyato et al. 2018)."""
    for name, child in module.named_children():
        if isinstance(child, (nn.Linear, nn.Conv2d)):
            setattr(module, name, spectral_norm(child))
        else:
            _with_spectral_norm(child)
    return module


def _one_hot(labels: torch.Tensor | None, n_classes: int, dtype: torch.dtype) -> torch.Tensor:
    if labels is None:
        raise ValueError("this network is class-conditional: pass labels")
    return F.one_hot(labels, n_classes).to(dtype)  # (B, K)


def _pack(x: torch.Tensor, pack: int) -> torch.Tensor:
    """(B, C, ...) -> (B // pack, pack * C, ...): each pack of consecutive samples side by side."""
    if x.shape[0] % pack:
        raise ValueError(f"the batch of {x.shape[0]} is not a multiple of pack={pack}")
    return x.reshape(x.shape[0] // pack, pack * x.shape[1], *x.shape[2:])


# ── MLPs: tables and 2-D points ─────────────────────────────────────────────────────────
def _norm(kind: str, features: int, conv: bool) -> list[nn.Module]:
    """BatchNorm, a per-sample LayerNorm (GroupNorm with one group for feature maps), or nothing."""
    if kind == "batch":
        return [nn.BatchNorm2d(features) if conv else nn.BatchNorm1d(features)]
    if kind == "layer":
        return [nn.GroupNorm(1, features) if conv else nn.LayerNorm(features)]
    return []


class MLPGenerator(nn.Module):
    """z (B, latent) [+ one-hot labels] -> [Linear -> norm -> ReLU] x len(hidden) -> Linear -> (B, features)."""

    def __init__(self, latent_size: int, out_features: int, hidden: list[int], n_classes: int = 0, norm: str = "batch"):
        super().__init__()
        self.latent_size, self.n_classes = latent_size, n_classes
        layers: list[nn.Module] = []
        previous = latent_size + n_classes
        for width in hidden:
            layers += [nn.Linear(previous, width, bias=norm == "none")]  # a norm's shift makes the bias redundant
            layers += _norm(norm, width, conv=False)
            layers += [nn.ReLU()]
            previous = width
        layers.append(nn.Linear(previous, out_features))  # linear output: standardized columns, raw points
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.n_classes:
            z = torch.cat([z, _one_hot(labels, self.n_classes, z.dtype)], dim=1)  # (B, latent + K)
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """x (B, features) [+ one-hot labels], packed to (B // pack, pack * (features + K)) -> LeakyReLU MLP -> (B // pack,)."""

    def __init__(self, in_features: int, hidden: list[int], n_classes: int = 0, pack: int = 1, batch_norm: bool = False):
        super().__init__()
        self.n_classes, self.pack = n_classes, pack
        layers: list[nn.Module] = []
        previous = (in_features + n_classes) * pack
        for index, width in enumerate(hidden):
            layers += [nn.Linear(previous, width)]
            layers += [nn.BatchNorm1d(width)] if batch_norm and index > 0 else []  # DCGAN: none on the input layer
            layers += [nn.LeakyReLU(0.2)]
            previous = width
        layers.append(nn.Linear(previous, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.n_classes:
            x = torch.cat([x, _one_hot(labels, self.n_classes, x.dtype)], dim=1)  # (B, F + K)
        return self.net(_pack(x, self.pack)).squeeze(1)  # (B // pack,)


class OneHotBlocks(nn.Module):
    """A table generator's output with each one-hot block (a categorical column, or the class) made one-hot.

    Training: straight-through Gumbel-softmax (Jang et al. 2017; CTGAN's choice for categories, Xu et al.
    2019): the forward pass is exactly one-hot, as the real rows are, so the discriminator cannot tell them
    apart by softness; the gradient is the softmax's. Evaluation: the largest entry's one-hot.

    Example:
        >>> g = OneHotBlocks(MLPGenerator(4, 5, [8]), [(2, 5)])
        >>> g.eval()(torch.randn(3, 4))[:, 2:].sum(dim=1)
        tensor([1., 1., 1.])
    """

    def __init__(self, generator: nn.Module, spans: list[tuple[int, int]], temperature: float = 0.2):
        super().__init__()
        self.generator, self.spans, self.temperature = generator, list(spans), temperature
        self.latent_size, self.n_classes = generator.latent_size, generator.n_classes
        # Data-parallel (set by the GAN recipe): the rows of a global batch and this process's slice of them, so the
        # Gumbel noise is drawn for the whole global batch and this process takes its rows, as it does with z.
        self.share: tuple[int, slice] | None = None

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        x = self.generator(z, labels)  # (B, features)
        rows, mine = self.share if self.share and len(x) == self.share[1].stop - self.share[1].start else (len(x), slice(None))
        parts, last = [], 0
        for start, end in self.spans:
            logits = x[:, start:end]
            if self.training:  # F.gumbel_softmax(logits, tau, hard=True), its noise drawn for all the rows
                gumbels = -torch.empty(rows, end - start, dtype=x.dtype, device=x.device).exponential_().log()[mine]
                soft = ((logits + gumbels) / self.temperature).softmax(dim=1)  # (B, width)
                block = F.one_hot(soft.argmax(dim=1), end - start).to(x.dtype) - soft.detach() + soft  # straight-through
            else:
                block = F.one_hot(logits.argmax(dim=1), end - start).to(x.dtype)
            parts += [x[:, last:start], block]
            last = end
        return torch.cat([*parts, x[:, last:]], dim=1) if self.spans else x


# ── DCGAN: images ────────────────────────────────────────────────────────────────────────
def upsamplings(height: int, width: int) -> int:
    """How many 2x upsamplings make (height, width) from a start of at least 4 pixels a side (DCGAN starts at 4x4).

    Example:
        >>> upsamplings(64, 64), upsamplings(28, 28), upsamplings(8, 8)
        (4, 2, 1)
    """
    doublings = 0
    while True:
        factor = 2 ** (doublings + 1)
        if height % factor or width % factor or min(height, width) // factor < 4:
            break
        doublings += 1
    if not (MIN_SIDE <= min(height, width) and max(height, width) <= MAX_SIDE and doublings >= 1):
        raise TrainwrightError(
            f"a DCGAN generator cannot make {height}x{width} images (sides from {MIN_SIDE} to {MAX_SIDE}, both even, "
            "each a start of at least 4 pixels doubled): set data.image.size to 8, 16, 28, 32 or 64"
        )
    return doublings


class ConvGenerator(nn.Module):
    """DCGAN generator: z (B, latent) [+ one-hot] -> (B, C0, h0, w0) -> [ConvTranspose 4/2 -> BN -> ReLU]... -> tanh (B, C, H, W).

    The widths halve at each doubling of the size and end at ``width`` before the last layer.
    """

    def __init__(self, latent_size: int, image_shape: tuple[int, int, int], width: int, n_classes: int = 0, norm: str = "batch"):
        super().__init__()
        self.latent_size, self.n_classes = latent_size, n_classes
        channels, height, side = image_shape
        doublings = upsamplings(height, side)
        start = (height // 2**doublings, side // 2**doublings)
        widths = [width * 2 ** (doublings - 1 - index) for index in range(doublings)]  # e.g. 512, 256, 128, 64 for 64x64

        bias = norm == "none"

        def norm_act(features: int) -> list[nn.Module]:
            return _norm(norm, features, conv=True) + [nn.ReLU()]

        # (B, latent + K, 1, 1) -> (B, widths[0], h0, w0): a full "projection" to the start size
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_size + n_classes, widths[0], start, bias=bias)]
        layers += norm_act(widths[0])
        for before, after in itertools.pairwise(widths):
            layers += [nn.ConvTranspose2d(before, after, 4, 2, 1, bias=bias)] + norm_act(after)  # size x2
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]  # (B, C, H, W) in [-1, 1]
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.n_classes:
            z = torch.cat([z, _one_hot(labels, self.n_classes, z.dtype)], dim=1)  # (B, latent + K)
        return self.net(z[:, :, None, None])


class ConvDiscriminator(nn.Module):
    """DCGAN discriminator: (B, C, H, W), packed on channels -> [Conv 4/2 -> LeakyReLU]... -> features -> (B // pack,).

    Conditioning is by projection (Miyato & Koyama 2018): the logit gains the inner product of the final
    features (B // pack, F) with a learned embedding of the label (summed over a pack), which judges
    "is this a real image of class y" far better than label planes concatenated to the input.
    """

    def __init__(
        self, image_shape: tuple[int, int, int], width: int, n_classes: int = 0, pack: int = 1, batch_norm: bool = False
    ):
        super().__init__()
        self.n_classes, self.pack = n_classes, pack
        channels, height, side = image_shape
        doublings = upsamplings(height, side)
        end = (height // 2**doublings, side // 2**doublings)
        widths = [width * 2**index for index in range(doublings)]  # e.g. 64, 128, 256, 512 for 64x64
        layers: list[nn.Module] = [nn.Conv2d(channels * pack, widths[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for before, after in itertools.pairwise(widths):
            layers += [nn.Conv2d(before, after, 4, 2, 1, bias=not batch_norm)]
            layers += [nn.BatchNorm2d(after)] if batch_norm else []
            layers += [nn.LeakyReLU(0.2)]
        self.features = nn.Sequential(*layers, nn.Flatten())  # (B // pack, F = widths[-1] * h0 * w0)
        features = widths[-1] * end[0] * end[1]
        self.head = nn.Linear(features, 1)  # = a convolution over the whole h0 x w0 map, as in DCGAN
        self.embed = nn.Embedding(n_classes, features) if n_classes else None

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        features = self.features(_pack(x, self.pack))  # (B // pack, F)
        logits = self.head(features).squeeze(1)  # (B // pack,)
        if self.embed is not None:
            if labels is None:
                raise ValueError("this network is class-conditional: pass labels")
            embedded = self.embed(labels).reshape(features.shape[0], self.pack, -1).sum(dim=1)  # (B // pack, F)
            logits = logits + (embedded * features).sum(dim=1)
        return logits


# ── builders ─────────────────────────────────────────────────────────────────────────────
def _check_shape(data_shape: tuple[int, ...]) -> None:
    if len(data_shape) not in (1, 3):
        raise TrainwrightError(
            f"a GAN models tables or points (features,) and images (C, H, W); these inputs have shape {data_shape}: "
            "use a table, a folder of images or a built-in mixture (ring, grid)"
        )


MLP_LATENT, CONV_LATENT = 16, 64  # latent_size: auto
# MLP_INIT_NOTE: DCGAN's N(0, 0.02) init is made for its convolutions; gan.mlp_init: torch keeps torch's default
# (Kaiming-uniform) init for the MLPs. With N(0, 0.02) on a 2-D input each layer shrinks its input ~4x, so the
# discriminator starts too smooth to tell the grid's 0.05-std modes from the space beside them. Measured over
# seeds 0-4 (benchmarks/gan_quality.py, 10,000 steps of batch 256): grid, torch 25.0 modes / 51.2% high quality
# against dcgan 22 to 25 modes / 9% to 28%; but ring, torch 89.6% against dcgan 92.5%: dcgan stays the default,
# and the built-in grid's own defaults (data/builtin.py) choose torch.


def build_generator(cfg: GANConfig, data_shape: tuple[int, ...], n_classes: int = 0) -> nn.Module:
    """The generator for samples of ``data_shape``; ``n_classes`` > 0 makes it class-conditional.

    Its ``latent_size`` attribute is the size of z it takes (``cfg.latent_size``, resolved when auto).

    Example:
        >>> g = build_generator(GANConfig(latent_size=16, width=8), (1, 8, 8), n_classes=10)
        >>> g(torch.randn(2, 16), torch.tensor([3, 7])).shape
        torch.Size([2, 1, 8, 8])
    """
    _check_shape(data_shape)
    mlp = len(data_shape) == 1
    latent = cfg.latent_size if cfg.latent_size != "auto" else (MLP_LATENT if mlp else CONV_LATENT)
    if mlp:  # gan.mlp_init: see MLP_INIT_NOTE
        model: nn.Module = MLPGenerator(latent, data_shape[0], cfg.g_hidden, n_classes, cfg.g_norm)
        return model.apply(dcgan_init) if cfg.mlp_init == "dcgan" else model
    return ConvGenerator(latent, data_shape, cfg.width, n_classes, cfg.g_norm).apply(dcgan_init)  # type: ignore[arg-type]


def build_discriminator(cfg: GANConfig, data_shape: tuple[int, ...], n_classes: int = 0) -> nn.Module:
    """The discriminator for samples of ``data_shape``: one logit per pack of ``cfg.pack`` samples.

    Example:
        >>> d = build_discriminator(GANConfig(pack=2, spectral_norm=True), (2,))
        >>> d(torch.randn(6, 2)).shape
        torch.Size([3])
    """
    _check_shape(data_shape)
    if len(data_shape) == 1:  # gan.mlp_init: see MLP_INIT_NOTE
        model: nn.Module = MLPDiscriminator(data_shape[0], cfg.d_hidden, n_classes, cfg.pack, cfg.batch_norm_d)
        if cfg.mlp_init == "dcgan":
            model.apply(dcgan_init)
    else:
        model = ConvDiscriminator(data_shape, cfg.width, n_classes, cfg.pack, cfg.batch_norm_d).apply(dcgan_init)  # type: ignore[arg-type]
    return _with_spectral_norm(model) if cfg.spectral_norm else model
