"""CUT's patch sampler and projection head (the official ``PatchSampleF``, ``mlp_sample``), and
the PatchNCE term that CUT, FastCUT and UNSB compute with them.

Patches are taken at the same random locations in the query and the key features, then each
layer's patches go through its own two-layer MLP and are l2-normalised: the space in which
PatchNCE compares them. The state-dict layout (``mlp_<layer>.{0,2}``) is the official one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn


def patch_ids(
    features: Sequence[torch.Tensor], num_patches: int, generator: torch.Generator
) -> list[torch.Tensor]:
    """Random patch locations per layer (shared by every image in the batch, as upstream)."""
    ids = []
    for feat in features:
        locations = feat.shape[2] * feat.shape[3]
        order = torch.randperm(locations, generator=generator)
        ids.append(order[: min(num_patches, locations)].to(feat.device))
    return ids


def sample_patches(
    features: Sequence[torch.Tensor], ids: Sequence[torch.Tensor]
) -> list[torch.Tensor]:
    """(batch, channels, H, W) features -> (batch, patches, channels) at the given locations."""
    return [
        f.permute(0, 2, 3, 1).flatten(1, 2)[:, i, :] for f, i in zip(features, ids, strict=True)
    ]


class PatchProjection(nn.Module):
    """One MLP (Linear, ReLU, Linear) per feature layer, then l2 normalisation."""

    def __init__(
        self, in_channels: Sequence[int], channels: int = 256, init_gain: float = 0.02
    ) -> None:
        super().__init__()
        self.layers = len(in_channels)
        for index, width in enumerate(in_channels):
            mlp = nn.Sequential(
                nn.Linear(width, channels), nn.ReLU(), nn.Linear(channels, channels)
            )
            for linear in (mlp[0], mlp[2]):
                nn.init.xavier_normal_(linear.weight, gain=init_gain)
                nn.init.zeros_(linear.bias)
            setattr(self, f"mlp_{index}", mlp)

    def forward(self, patches: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        out = []
        for index, x in enumerate(patches):
            y = getattr(self, f"mlp_{index}")(x)
            # Upstream's Normalize: eps added to the norm. vector_norm's gradient is 0 where a
            # patch's projection is all zeros (an all-zero feature patch, as a thin generator's
            # ReLU features give); pow(0.5)'s is infinite there and turned the loss into NaN.
            norm = torch.linalg.vector_norm(y, dim=-1, keepdim=True)
            out.append(y / (norm + 1e-7))
        return out


Features = Sequence[torch.Tensor]


def patch_nce(
    pairs: Sequence[tuple[Features, Features]],
    head: nn.Module,
    loss: nn.Module,
    num_patches: int,
    generator: torch.Generator,
    *,
    key_head: nn.Module | None = None,
    weight: float = 1.0,
) -> torch.Tensor:
    """Mean over ``(key features, query features)`` pairs of the PatchNCE loss averaged over
    layers, each layer's loss times ``weight``.

    Per pair, patch locations are drawn from ``generator`` on the key features and shared with
    the queries. Keys get no gradient, so they go through ``key_head`` (default ``head``; pass
    the plain module when ``head`` is a DDP wrapper) without a graph; the query patches of every
    pair go through ``head`` in one call.
    """
    queries, keys = [], []
    for feat_k, feat_q in pairs:
        ids = patch_ids(feat_k, num_patches, generator)
        queries.append(sample_patches(feat_q, ids))
        with torch.no_grad():
            keys.append((key_head or head)(sample_patches(feat_k, ids)))
    sizes = [q[0].shape[0] for q in queries]
    projected = head([torch.cat(layer) for layer in zip(*queries, strict=True)])
    per_pair = [list(layer.split(sizes)) for layer in projected]
    layers = len(projected)
    total = 0.0
    for index, key in enumerate(keys):
        layer_losses = [loss(per_pair[n][index], key[n]) * weight for n in range(layers)]
        total = total + sum(layer_losses) / layers
    return total / len(pairs)
