"""GAN objectives on hand-computed values, and the WGAN-GP penalty against its analytic value."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from i2i.core.errors import InvalidArgumentError
from i2i.core.registry import losses
from i2i.losses import GANLoss

P = torch.tensor([[-2.0, 0.0], [0.5, 3.0]])  # mean 0.375
Q = torch.tensor([1.0, -1.0])


def create(name: str, **kwargs) -> nn.Module:
    return losses.create(name, **kwargs)


def test_registered_with_summaries():
    for name in ("lsgan", "vanilla", "hinge", "wgangp", "l1", "l2"):
        assert name in losses
        assert losses.get(name).summary
    for name in ("lsgan", "vanilla", "hinge", "wgangp"):
        assert isinstance(create(name), GANLoss)


@pytest.mark.parametrize("for_discriminator", [True, False])
def test_lsgan(for_discriminator):
    loss = create("lsgan")
    # (p - 1)^2 = 9, 1, 0.25, 4 ; p^2 = 4, 0, 0.25, 9
    assert loss(P, True, for_discriminator).item() == pytest.approx(14.25 / 4)
    assert loss(P, False, for_discriminator).item() == pytest.approx(13.25 / 4)


def test_lsgan_labels_are_configurable():
    loss = create("lsgan", real_label=0.9, fake_label=0.1)
    assert loss(P, True).item() == pytest.approx(((P - 0.9) ** 2).mean().item())
    assert loss(P, False).item() == pytest.approx(((P - 0.1) ** 2).mean().item())


def test_vanilla_is_bce_on_logits():
    loss = create("vanilla")
    softplus = lambda v: math.log1p(math.exp(v))  # noqa: E731
    values = P.flatten().tolist()
    assert loss(P, True).item() == pytest.approx(sum(softplus(-v) for v in values) / 4)
    assert loss(P, False).item() == pytest.approx(sum(softplus(v) for v in values) / 4)
    assert loss(P, True, for_discriminator=False).item() == pytest.approx(loss(P, True).item())


def test_hinge():
    loss = create("hinge")
    assert loss(P, True).item() == pytest.approx((3 + 1 + 0.5 + 0) / 4)  # relu(1 - p)
    assert loss(P, False).item() == pytest.approx((0 + 1 + 1.5 + 4) / 4)  # relu(1 + p)
    assert loss(P, True, for_discriminator=False).item() == pytest.approx(-0.375)


def test_wgangp_scores():
    loss = create("wgangp")
    for for_discriminator in (True, False):
        assert loss(P, True, for_discriminator).item() == pytest.approx(-0.375)
        assert loss(P, False, for_discriminator).item() == pytest.approx(0.375)


@pytest.mark.parametrize("name", ["lsgan", "vanilla", "hinge", "wgangp"])
@pytest.mark.parametrize("target_is_real", [True, False])
def test_list_predictions_average_per_map_losses(name, target_is_real):
    loss = create(name)
    for for_discriminator in (True, False):
        expected = (
            loss(P, target_is_real, for_discriminator) + loss(Q, target_is_real, for_discriminator)
        ) / 2
        got = loss([P, Q], target_is_real, for_discriminator)
        assert got.item() == pytest.approx(expected.item())
    # Maps of different sizes are averaged per map, not per element.
    assert loss([Q], target_is_real).item() == pytest.approx(loss(Q, target_is_real).item())


def test_loss_keeps_the_graph_and_dtype():
    pred = P.double().requires_grad_()
    out = create("lsgan")(pred, True)
    assert out.dtype == torch.float64
    out.backward()
    assert pred.grad is not None


def linear_critic(weight: torch.Tensor) -> nn.Module:
    critic = nn.Sequential(nn.Flatten(), nn.Linear(weight.numel(), 1))
    with torch.no_grad():
        critic[1].weight.copy_(weight.view(1, -1))
        critic[1].bias.fill_(0.3)
    return critic


@pytest.mark.parametrize("gp_type", ["mixed", "real", "fake"])
def test_wgangp_penalty_on_a_linear_critic(gp_type):
    # D(x) = w.x + b, so grad_x D = w everywhere and the penalty is lambda * (||w|| - 1)^2.
    torch.manual_seed(0)
    weight = torch.randn(3, 2, 2)
    critic = linear_critic(weight)
    real, fake = torch.randn(4, 3, 2, 2), torch.randn(4, 3, 2, 2)
    loss = create("wgangp", lambda_gp=10.0, gp_type=gp_type)

    penalty = loss.penalty(critic, real, fake)
    norm = weight.norm()
    assert penalty.item() == pytest.approx(10.0 * (norm.item() - 1) ** 2, rel=1e-5)

    # It is differentiated through the gradient (create_graph=True): d/dw = 2 lambda (||w|| - 1) w / ||w||.
    penalty.backward()
    expected = 2 * 10.0 * (norm - 1) * weight.view(1, -1) / norm
    assert critic[1].weight.grad.abs().sum() > 0
    torch.testing.assert_close(critic[1].weight.grad, expected, rtol=1e-4, atol=1e-5)


def test_wgangp_penalty_treats_a_patch_map_as_its_mean():
    # A 1x1-conv critic's per-sample score is the map mean, whose input gradient is w / (H W) per pixel.
    conv = nn.Conv2d(3, 1, 1)
    real, fake = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    norm = conv.weight.norm().item() / 4  # ||w|| * sqrt(16) / 16
    penalty = create("wgangp", lambda_gp=1.0).penalty(conv, real, fake)
    assert penalty.item() == pytest.approx((norm - 1) ** 2, rel=1e-5)


def test_wgangp_penalty_with_a_list_discriminator():
    w1, w2 = torch.randn(3, 2, 2), torch.randn(3, 2, 2)
    heads = [linear_critic(w1), linear_critic(w2)]

    def discriminator(x):
        return [head(x) for head in heads]

    norm = ((w1 + w2) / 2).norm().item()
    loss = create("wgangp", lambda_gp=2.0, constant=0.5)
    penalty = loss.penalty(discriminator, torch.randn(3, 3, 2, 2), torch.randn(3, 3, 2, 2))
    assert penalty.item() == pytest.approx(2.0 * (norm - 0.5) ** 2, rel=1e-5)
    penalty.backward()
    assert all(head[1].weight.grad.abs().sum() > 0 for head in heads)


def test_wgangp_penalty_follows_the_inputs_dtype():
    critic = linear_critic(torch.randn(3, 2, 2)).double()
    real, fake = torch.randn(2, 3, 2, 2).double(), torch.randn(2, 3, 2, 2).double()
    assert create("wgangp").penalty(critic, real, fake).dtype == torch.float64


def test_only_wgangp_has_a_penalty():
    critic = linear_critic(torch.randn(3, 2, 2))
    real = torch.randn(1, 3, 2, 2)
    for name in ("lsgan", "vanilla", "hinge"):
        assert create(name).penalty(critic, real, real) is None


def test_bad_arguments():
    with pytest.raises(InvalidArgumentError):
        create("wgangp", gp_type="middle")
    with pytest.raises(InvalidArgumentError):
        create("hinge", margin=2.0)
    with pytest.raises(InvalidArgumentError):
        create("lsgan")([], True)


def test_reconstruction_losses():
    a, b = torch.tensor([1.0, 2.0, 4.0]), torch.tensor([0.0, 2.0, 1.0])
    assert create("l1")(a, b).item() == pytest.approx(4 / 3)
    assert create("l2")(a, b).item() == pytest.approx(10 / 3)
    assert create("l1", reduction="sum")(a, b).item() == pytest.approx(4.0)
