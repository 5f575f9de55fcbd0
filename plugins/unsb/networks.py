"""UNSB's networks: i2i's ResNet generator and PatchGAN, conditioned on the bridge's time step.

The generator sees the step number through a sinusoidal embedding and a noise vector ``z``
through a mapping MLP; both modulate every residual block right after its first normalisation,
``h <- h * (1 + gamma(z)) + beta(z) + s(t)`` (AdaIN-style). The critics (the discriminator and the
energy network) add a time shift before each of their activations.

The conditioning is added *after* the normalisation on purpose. The reference code adds the
time vector before its instance norm, and a constant per channel added before an instance norm
is exactly what that norm subtracts again; on top of that its residual block overwrites its
intermediate result, so its generator ignores the time step altogether. The projections that
read the embeddings start at zero (as adaLN-Zero), so each network starts as the plain i2i
network and learns how much the time and the noise should change it.

The generators take resnet's ``residual`` and ``detail`` (UNSB's quality recipe), and
``unsb_projected`` is the projected critic (frozen ImageNet features) with the same time shifts
in its heads.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

import i2i

check_input_size = i2i.check_input_size  # bound once: forward stays a plain call
resnet_decode = i2i.resnet_decode
mapped_colours = i2i.mapped_colours


def time_embedding(index: torch.Tensor, dim: int) -> torch.Tensor:
    """The Transformer's sinusoidal embedding of step numbers: int (N,) -> float (N, dim)."""
    half = dim // 2
    rate = math.log(10000.0) / max(half - 1, 1)
    frequencies = torch.exp(torch.arange(half, device=index.device, dtype=torch.float32) * -rate)
    angles = index.to(torch.float32)[:, None] * frequencies[None, :]
    return F.pad(torch.cat([angles.sin(), angles.cos()], dim=1), (0, dim % 2))


def embedded(mlp: nn.Sequential, time_index: torch.Tensor, width: int) -> torch.Tensor:
    """Step numbers through their sinusoidal embedding and ``mlp``, in the MLP's dtype
    (float32, or float64 for exact checks)."""
    return mlp(time_embedding(time_index, width).to(mlp[0].weight.dtype))


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear layers with leaky ReLUs after each, torch's default init (unit-scale outputs)."""
    layers: list[nn.Module] = []
    for width_in, width_out in itertools.pairwise(sizes):
        layers += [nn.Linear(width_in, width_out), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers)


def _zero_linear(width_in: int, width_out: int) -> nn.Linear:
    linear = nn.Linear(width_in, width_out)
    nn.init.zeros_(linear.weight)
    nn.init.zeros_(linear.bias)
    return linear


class PixelNorm(nn.Module):
    """Scale each noise vector to unit root-mean-square (StyleGAN's mapping input)."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)


class ConditionalBlock(nn.Module):
    """One residual block of the base generator, modulated after its first normalisation."""

    def __init__(self, block: nn.Module, width: int) -> None:
        super().__init__()
        layers = list(block.conv_block)
        first_conv = next(i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d))
        channels = layers[first_conv].out_channels
        self.first = nn.Sequential(*layers[: first_conv + 2])  # (pad), conv, norm
        self.rest = nn.Sequential(*layers[first_conv + 2 :])  # relu, (dropout), (pad), conv, norm
        self.style = _zero_linear(width, 2 * channels)
        self.time = _zero_linear(width, channels)

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor, z_emb: torch.Tensor) -> torch.Tensor:
        h = self.first(x)
        gamma, beta = self.style(z_emb)[:, :, None, None].chunk(2, dim=1)
        h = h * (1 + gamma) + beta + self.time(t_emb)[:, :, None, None]
        return x + self.rest(h)


class _AtTime(nn.Module):
    """A bridge generator at fixed ``(time_index, z)``: a one-argument network for
    ``i2i.extract_features``."""

    def __init__(self, net: nn.Module, time_index: torch.Tensor, z: torch.Tensor) -> None:
        super().__init__()
        self.net, self.time_index, self.z = net, time_index, z

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.time_index, self.z)


class BridgeGenerator(nn.Module):
    """A ResNet generator that predicts the bridge's endpoint from ``(x_t, time_index, z)``.

    ``encoder``, ``blocks`` and ``decoder`` are the base generator's modules (its weights, its
    init, anti-aliasing, norm and padding); ``time_embed`` and ``mapping`` turn the step number
    and the noise into the vectors that modulate every block. ``bridge`` tells the Translator
    how to sample (``i2i.Bridge``).
    """

    def __init__(
        self,
        base: nn.Module,
        ngf: int,
        noise_dim: int,
        mapping_layers: int,
        steps: int,
        tau: float,
        sample_steps: int | None = None,
    ) -> None:
        super().__init__()
        if isinstance(mapping_layers, bool) or not isinstance(mapping_layers, int):
            raise i2i.I2IError(f"mapping_layers must be a whole number, got {mapping_layers!r}")
        if isinstance(noise_dim, bool) or not isinstance(noise_dim, int) or noise_dim < 1:
            raise i2i.I2IError(f"noise_dim must be a whole number >= 1, got {noise_dim!r}")
        self.bridge = i2i.Bridge(steps, float(tau), noise_dim, sample_steps)
        self.size_multiple, self.min_size = base.size_multiple, base.min_size
        self.arch = f"unsb_{base.arch}"
        self.width = width = 4 * ngf
        model = list(base.model)
        at = [i for i, m in enumerate(model) if hasattr(m, "conv_block")]
        self.encoder = nn.Sequential(*model[: at[0]])
        self.blocks = nn.ModuleList(ConditionalBlock(model[i], width) for i in at)
        self.decoder = nn.Sequential(*model[at[-1] + 1 :])
        # The base's full-resolution detail path and residual output (--gen-kw detail=true,
        # residual=true): with them the prediction starts as the path point it is made from.
        self.detail, self.residual = base.detail, base.residual
        # --gen-kw colour=true: the change is to a map of the colours (bent: colour_curve=true,
        # each pixel's share of it: colour_gate=true)
        self.colour, self.colour_curve = base.colour, base.colour_curve
        self.colour_gate = base.colour_gate
        self.head_index = base.head_index - (at[-1] + 1)
        self.time_embed = _mlp([width, width, width])
        mapping = _mlp([noise_dim] + [width] * (mapping_layers + 1))
        self.mapping = nn.Sequential(PixelNorm(), *mapping)

    def forward(self, x: torch.Tensor, time_index: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        check_input_size(x, self.arch, self.size_multiple, self.min_size)
        t_emb = embedded(self.time_embed, time_index, self.width)
        z_emb = self.mapping(z.to(t_emb.dtype))
        h = self.encoder(x)
        for block in self.blocks:
            h = block(h, t_emb, z_emb)
        colours = mapped_colours(self.colour, self.colour_curve, x, self.colour_gate)
        return resnet_decode(
            self.decoder, self.head_index, h, x, self.detail, self.residual, colours
        )

    def layer_names(self, layers: Sequence[int | str]) -> list[str]:
        """CUT's integer layers (the encoder's modules, then the residual blocks, counted on:
        "0,4,8,12,16") as module names; names pass through."""
        names = []
        for layer in layers:
            if isinstance(layer, str):
                names.append(layer)
            elif 0 <= layer < len(self.encoder):
                names.append(f"encoder.{layer}")
            elif 0 <= layer - len(self.encoder) < len(self.blocks):
                names.append(f"blocks.{layer - len(self.encoder)}")
            else:
                last = len(self.encoder) + len(self.blocks) - 1
                raise i2i.InvalidArgumentError(
                    f"layer {layer} is outside the encoder and blocks (0..{last})"
                )
        return names

    def features(
        self,
        x: torch.Tensor,
        time_index: torch.Tensor,
        z: torch.Tensor,
        layers: Sequence[int | str],
    ) -> list[torch.Tensor]:
        """The outputs of ``layers`` at ``(time_index, z)`` (for PatchNCE); stops after the last."""
        named = [f"net.{name}" for name in self.layer_names(layers)]
        return i2i.extract_features(_AtTime(self, time_index, z), x, named)


def _bridge_generator(
    backbone: str,
    *,
    ngf: int,
    noise_dim: int,
    mapping_layers: int,
    steps: int,
    tau: float,
    sample_steps: int | None,
    **backbone_kwargs: Any,
) -> BridgeGenerator:
    base = i2i.create_generator(backbone, ngf=ngf, **backbone_kwargs)
    return BridgeGenerator(base, ngf, noise_dim, mapping_layers, steps, tau, sample_steps)


def unsb_resnet9(
    in_channels: int = 3,
    out_channels: int = 3,
    ngf: int = 64,
    norm: str = "instance",
    dropout: bool = False,
    padding: str = "reflect",
    antialias: bool = True,
    residual: bool = False,
    detail: bool = False,
    colour: bool = False,
    colour_curve: bool = False,
    colour_gate: bool = False,
    init: str = "xavier",
    init_gain: float = 0.02,
    noise_dim: int = 256,
    mapping_layers: int = 3,
    steps: int = 5,
    tau: float = 0.01,
    sample_steps: int | None = None,
) -> BridgeGenerator:
    """UNSB's generator: resnet9 conditioned on the bridge's time step and a noise vector.

    Called as ``G(x_t, time_index, z)``; ``steps`` and ``tau`` describe the bridge it was
    trained on, which ``i2i apply`` walks (``--steps`` 1..steps; by default ``sample_steps``
    predictions, None: all). Sizes as resnet9; ``residual``, ``detail``, ``colour``,
    ``colour_curve`` and ``colour_gate`` as resnet9's (a residual one starts by predicting its
    input).
    """
    return _bridge_generator("resnet9", **locals())


def unsb_resnet6(
    in_channels: int = 3,
    out_channels: int = 3,
    ngf: int = 64,
    norm: str = "instance",
    dropout: bool = False,
    padding: str = "reflect",
    antialias: bool = True,
    residual: bool = False,
    detail: bool = False,
    colour: bool = False,
    colour_curve: bool = False,
    colour_gate: bool = False,
    init: str = "xavier",
    init_gain: float = 0.02,
    noise_dim: int = 256,
    mapping_layers: int = 3,
    steps: int = 5,
    tau: float = 0.01,
    sample_steps: int | None = None,
) -> BridgeGenerator:
    """UNSB's generator on resnet6 (128 px images, the toy data): see unsb_resnet9."""
    return _bridge_generator("resnet6", **locals())


# How the bridge is sampled, not what the weights are: ``--init-from`` lets a run set its own.
unsb_resnet9.sampling_arguments = unsb_resnet6.sampling_arguments = ("tau", "sample_steps")


def _activation_widths(layers: nn.Module) -> list[int]:
    """The channel count entering each LeakyReLU of a plain conv stack."""
    widths, channels = [], 0
    for module in layers:
        if isinstance(module, nn.Conv2d):
            channels = module.out_channels
        elif isinstance(module, nn.LeakyReLU):
            widths.append(channels)
    return widths


def _time_shifted(
    layers: nn.Sequential, shifts: nn.ModuleList, t_emb: torch.Tensor, h: torch.Tensor
) -> torch.Tensor:
    """``layers`` on ``h``, each LeakyReLU's input shifted per channel by ``shifts(t_emb)``."""
    shift = iter(shifts)
    for module in layers:
        if isinstance(module, nn.LeakyReLU):
            h = h + next(shift)(t_emb)[:, :, None, None]
        h = module(h)
    return h


class TimeConditionedCritic(nn.Module):
    """A PatchGAN that also reads the bridge's step: a learned shift per channel before each of
    its activations. ``forward(x, time_index)``."""

    def __init__(self, base: nn.Module, ndf: int) -> None:
        super().__init__()
        self.model = base.model
        self.width = width = 4 * ndf
        self.time_embed = _mlp([width, width, width])
        self.shifts = nn.ModuleList(_zero_linear(width, c) for c in _activation_widths(self.model))

    def forward(self, x: torch.Tensor, time_index: torch.Tensor) -> torch.Tensor:
        t_emb = embedded(self.time_embed, time_index, self.width)
        return _time_shifted(self.model, self.shifts, t_emb, x)


def unsb_patchgan(
    in_channels: int = 3,
    ndf: int = 64,
    n_layers: int = 3,
    norm: str = "instance",
    init: str = "xavier",
    init_gain: float = 0.02,
    spectral_norm: bool = False,
) -> TimeConditionedCritic:
    """UNSB's critic: the PatchGAN (nlayer) conditioned on the bridge's time step.

    Called as ``D(x, time_index)``. The discriminator judges images; the energy network is the
    same network on two (x_t, x_1) pairs stacked along channels (4 images' channels).
    """
    base = i2i.create_discriminator(
        "nlayer",
        in_channels=in_channels,
        ndf=ndf,
        n_layers=n_layers,
        norm=norm,
        init=init,
        init_gain=init_gain,
        spectral_norm=spectral_norm,
    )
    return TimeConditionedCritic(base, ndf)


class TimeConditionedProjectedCritic(nn.Module):
    """The projected critic (frozen ImageNet features, fixed random projections, a trained head
    per level) that also reads the bridge's step: a learned shift per channel before each
    activation of each head. ``forward(x, time_index)`` gives one logit map per level."""

    def __init__(self, base: nn.Module, ndf: int) -> None:
        super().__init__()
        self.features, self.projections, self.heads = base.features, base.projections, base.heads
        self.width = width = 4 * ndf
        self.time_embed = _mlp([width, width, width])
        self.shifts = nn.ModuleList(
            nn.ModuleList(_zero_linear(width, c) for c in _activation_widths(head))
            for head in self.heads
        )

    def forward(self, x: torch.Tensor, time_index: torch.Tensor) -> list[torch.Tensor]:
        t_emb = embedded(self.time_embed, time_index, self.width)
        levels = zip(self.heads, self.shifts, self.projections, self.features(x), strict=True)
        return [
            _time_shifted(head, shifts, t_emb, project(feature))
            for head, shifts, project, feature in levels
        ]


def unsb_projected(
    in_channels: int = 3,
    ndf: int = 64,
    levels: int | Sequence[int] = (1, 2, 3),
    projection: int = 64,
    init: str = "xavier",
    init_gain: float = 0.02,
) -> TimeConditionedProjectedCritic:
    """UNSB's discriminator on frozen ImageNet features (``projected``, conditioned on the
    bridge's step): it sees colour balance, which an instance-norm PatchGAN cannot. Called as
    ``D(x, time_index)``; it reads RGB images only, so the energy network stays a PatchGAN."""
    base = i2i.create_discriminator(
        "projected",
        in_channels=in_channels,
        ndf=ndf,
        levels=levels,
        projection=projection,
        init=init,
        init_gain=init_gain,
    )
    return TimeConditionedProjectedCritic(base, ndf)
