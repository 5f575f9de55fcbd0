"""Spectral normalisation in the PatchGAN discriminators: present when asked, absent by default."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

import i2i
from i2i.core.errors import InvalidArgumentError
from i2i.nets.patchgan import nlayer, patchgan, pixel

FACTORIES = {
    "patchgan": lambda **kw: patchgan(ndf=8, **kw),
    "nlayer": lambda **kw: nlayer(ndf=8, n_layers=2, **kw),
    "pixel": lambda **kw: pixel(ndf=8, **kw),
}


def convs(net: nn.Module) -> list[nn.Conv2d]:
    return [m for m in net.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("name", FACTORIES)
def test_every_conv_is_normalised_when_asked(name):
    net = FACTORIES[name](spectral_norm=True)
    assert convs(net)
    for conv in convs(net):
        assert parametrize.is_parametrized(conv, "weight")
        kinds = {type(p).__name__ for p in conv.parametrizations["weight"]}
        assert kinds == {"_SpectralNorm"}


@pytest.mark.parametrize("name", FACTORIES)
def test_off_by_default_with_the_official_keys(name):
    plain, normalised = FACTORIES[name](), FACTORIES[name](spectral_norm=True)
    assert not any(parametrize.is_parametrized(conv) for conv in convs(plain))
    keys = list(plain.state_dict())
    assert all(
        k.endswith((".weight", ".bias", "running_mean", "running_var", "tracked")) for k in keys
    )
    assert not any("parametrizations" in k for k in keys)
    # Normalised: each weight becomes parametrizations.weight.original (+ _u, _v), rest unchanged.
    renamed = {
        k.replace(".parametrizations.weight.original", ".weight")
        for k in normalised.state_dict()
        if not k.endswith(("._u", "._v"))
    }
    assert renamed == set(keys)


def test_default_keys_match_the_official_patchgan():
    # upstream NLayerDiscriminator with instance norm: every conv keeps its bias
    layers = (0, 2, 5, 8, 11)
    expected = [f"model.{i}.{p}" for i in layers for p in ("weight", "bias")]
    assert list(patchgan(ndf=8).state_dict()) == expected


def test_normalised_weights_have_unit_spectral_norm():
    net = patchgan(ndf=8, spectral_norm=True).train()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    for _ in range(20):  # power iterations run on each training forward
        net(x)
    net.eval()
    for conv in convs(net):
        sigma = torch.linalg.matrix_norm(conv.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.05)


def test_same_output_shape_and_gradients():
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    plain, normalised = patchgan(ndf=8), patchgan(ndf=8, spectral_norm=True)
    out = normalised(x)
    assert out.shape == plain(x).shape
    out.mean().backward()
    original = normalised.model[0].parametrizations.weight.original
    assert original.grad is not None and original.grad.abs().sum() > 0


def test_reachable_through_the_registry_and_checked():
    net = i2i.create_discriminator("patchgan", ndf=8, spectral_norm=True)
    assert parametrize.is_parametrized(net.model[0], "weight")
    with pytest.raises(InvalidArgumentError, match="spectral_norm must be true or false"):
        patchgan(ndf=8, spectral_norm="yes")
