"""DiffAugment ops for discriminators: gradients, shapes, devices, seeds, policies and errors."""

from __future__ import annotations

import pytest
import torch

from i2i.augment import build_augmentation
from i2i.core.errors import InvalidArgumentError
from i2i.core.registry import augmentations
from i2i.diffaugment import (
    Color,
    Cutout,
    DiscriminatorAugment,
    Translation,
    build_d_augment,
    discriminator_augmentation_names,
)

POLICY = "translation,cutout,color"
DEVICES = [
    "cpu",
    pytest.param(
        "cuda", marks=pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
    ),
]


def images(n: int = 4, c: int = 3, size: int = 16, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, size, size, generator=g) * 2 - 1


def seeded(aug, x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    torch.manual_seed(seed)
    return aug(x)


def test_registered_with_summaries():
    assert discriminator_augmentation_names() == ["color", "cutout", "translation"]
    assert all(augmentations.get(n).summary for n in discriminator_augmentation_names())


@pytest.mark.parametrize("policy", ["translation", "cutout", "color", POLICY])
def test_gradients_flow_to_the_input(policy):
    x = images().requires_grad_(True)
    weights = torch.rand_like(x)
    (build_d_augment(policy)(x) * weights).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0


def test_colour_never_clamps_so_no_gradient_is_lost():
    x = torch.full((8, 3, 4, 4), 0.95, requires_grad=True)  # near white: a clamp would clip
    Color()(x).sum().backward()
    assert (x.grad != 0).all()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_shape_device_and_dtype_kept(device, dtype):
    x = images(3, 3, 24).to(device, dtype)
    out = build_d_augment(POLICY)(x)
    assert out.shape == x.shape and out.device == x.device and out.dtype == dtype


@pytest.mark.parametrize("channels", [1, 6])
def test_any_channel_count(channels):
    assert build_d_augment(POLICY)(images(2, channels)).shape == (2, channels, 16, 16)


def test_deterministic_under_a_seed_and_random_otherwise():
    aug, x = build_d_augment(POLICY), images()
    assert torch.equal(seeded(aug, x, 1), seeded(aug, x, 1))
    assert not torch.equal(seeded(aug, x, 1), seeded(aug, x, 2))


def test_same_policy_for_real_and_fake():
    """One callable for both: with the same draws, real and fake get the same transformation.

    Every op is affine in the pixels once its parameters are drawn (T(x) = L x + b), so
    T(real) - T(fake) must equal T(real - fake) - T(0) when all four see the same draws.
    """
    aug = build_d_augment(POLICY)
    real, fake = images(seed=1), images(seed=2)
    difference = seeded(aug, real, 5) - seeded(aug, fake, 5)
    expected = seeded(aug, real - fake, 5) - seeded(aug, torch.zeros_like(real), 5)
    assert torch.allclose(difference, expected, atol=1e-5)
    assert not torch.allclose(difference, real - fake, atol=1e-3)  # it did transform


def test_a_merged_real_and_fake_batch_is_augmented_throughout():
    aug = build_d_augment("translation,color")
    real, fake = images(seed=1), images(seed=2)
    out = seeded(aug, torch.cat([real, fake]))
    for before, after in zip(torch.cat([real, fake]), out, strict=True):
        assert not torch.allclose(before, after)


def test_each_sample_gets_its_own_parameters():
    x = images(1).expand(16, -1, -1, -1).contiguous()
    for op in (Translation(), Cutout(), Color()):
        out = seeded(op, x)
        assert len({tuple(o.flatten().tolist()) for o in out}) > 1, type(op).__name__


def shifted(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """x moved down by dy and right by dx, zero where nothing moved in."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = x[
        ..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def test_translation_is_a_whole_pixel_shift_within_the_ratio():
    x = images(16, 3, 8)
    out = seeded(Translation(ratio=0.25), x)
    shifts = range(-2, 3)  # 0.25 of 8 px
    for image, result in zip(x, out, strict=True):
        assert any(torch.equal(result, shifted(image, dy, dx)) for dy in shifts for dx in shifts)


def test_cutout_zeroes_at_most_one_square():
    x = images(32, 3, 16).abs() + 0.1  # nothing is zero before
    out = seeded(Cutout(ratio=0.5), x)
    for result in out:
        hole = (result == 0).all(dim=0)
        assert hole.sum() <= 8 * 8
        rows, cols = hole.any(dim=1).nonzero(), hole.any(dim=0).nonzero()
        if hole.any():  # the zeros form one axis-aligned rectangle
            assert hole.sum() == len(rows) * len(cols)
    assert (out == 0).any()


def test_colour_keeps_grey_images_grey():
    grey = images(8, 1).expand(-1, 3, -1, -1).contiguous()
    out = seeded(Color(), grey)
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-6)
    assert torch.allclose(out[:, 1], out[:, 2], atol=1e-6)


@pytest.mark.parametrize("policy", [None, "", "none", " None "])
def test_no_policy_means_no_augmentation(policy):
    assert build_d_augment(policy) is None


def test_arguments_in_a_policy():
    aug = build_d_augment("translation:ratio=0.25,color:brightness=0.3,contrast=0.2,cutout")
    assert isinstance(aug, DiscriminatorAugment)
    translation, colour, cutout = aug.ops
    assert translation.ratio == 0.25 and cutout.ratio == 0.5
    assert (colour.brightness, colour.saturation, colour.contrast) == (0.3, 1.0, 0.2)


@pytest.mark.parametrize("policy", ["translation,zoom", "hflip", "resize_crop"])
def test_unknown_name_is_a_one_line_error_listing_valid_names(policy):
    with pytest.raises(InvalidArgumentError) as error:
        build_d_augment(policy)
    message = str(error.value)
    assert "\n" not in message
    assert "valid: color, cutout, translation" in message


@pytest.mark.parametrize(
    "policy", ["cutout:ratio=1.5", "translation:ratio=-0.1", "color:brightness=-1"]
)
def test_bad_arguments_are_refused(policy):
    with pytest.raises(InvalidArgumentError, match="must be a number"):
        build_d_augment(policy)


def test_not_for_the_training_images():
    with pytest.raises(InvalidArgumentError, match="--d-augment"):
        build_augmentation(["hflip", "cutout"])
