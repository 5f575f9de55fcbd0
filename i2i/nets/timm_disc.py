"""A multi-scale patch discriminator on any timm backbone.

A pretrained classifier's features already tell natural from odd-looking images, which can make
the discriminator useful from the first step (projected-GAN style); several feature levels
judge both fine texture and coarse structure.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import torch
from torch import nn

from i2i.core.errors import InvalidArgumentError
from i2i.nets.init import init_weights
from i2i.nets.norm import conv_bias, norm_layer


class TimmDiscriminator(nn.Module):
    """A ``features_only`` backbone with a conv head per feature map, each giving patch logits."""

    def __init__(self, backbone: nn.Module, feature_channels: Sequence[int], ndf: int, norm: str):
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        self.backbone = backbone
        self.heads = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(channels, ndf, 3, padding=1, bias=bias),
                make_norm(ndf),
                nn.LeakyReLU(0.2, True),
                nn.Conv2d(ndf, 1, 1),
            )
            for channels in feature_channels
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = self.backbone(x)
        return [head(feature) for head, feature in zip(self.heads, features, strict=True)]


def timm_backbone(
    backbone: str = "resnet18",
    in_channels: int = 3,
    pretrained: bool = False,
    out_indices: tuple[int, ...] = (1, 2, 3),
    ndf: int = 64,
    norm: str = "instance",
    init: str = "normal",
    init_gain: float = 0.02,
) -> TimmDiscriminator:
    """Multi-scale patch discriminator on a timm backbone; returns a list of logit maps.

    ``out_indices`` picks the backbone's feature levels (timm's ``features_only`` numbering);
    each gets a small conv head. Only the heads get ``init``: the backbone keeps timm's own
    initialisation or, with ``pretrained``, its downloaded weights.
    """
    import timm  # imported here: it takes seconds, and most runs never build this network

    hub = backbone.startswith(("hf-hub:", "hf_hub:", "local-dir:"))  # not in timm's list
    if not hub and not timm.is_model(backbone):
        close = difflib.get_close_matches(backbone, timm.list_models(), n=3)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise InvalidArgumentError(
            f"unknown timm backbone {backbone!r}; {hint}timm.list_models() lists them all"
        )
    if not out_indices:
        raise InvalidArgumentError("out_indices must name at least one feature level; got ()")
    try:
        features = timm.create_model(
            backbone,
            pretrained=pretrained,
            features_only=True,
            in_chans=in_channels,
            out_indices=tuple(out_indices),
        )
    except IndexError:
        raise InvalidArgumentError(
            f"out_indices {tuple(out_indices)} is out of range for timm backbone {backbone!r}; "
            "use indices of its feature levels (0 is the highest resolution)"
        ) from None
    net = TimmDiscriminator(features, features.feature_info.channels(), ndf, norm)
    init_weights(net.heads, init, init_gain)
    return net
