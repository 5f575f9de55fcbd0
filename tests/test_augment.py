"""Augmentation pipelines on CPU tensors: shapes, range, determinism, paired parameters, specs."""

from __future__ import annotations

import pytest
import torch

from i2i.augment import Augmentation, build_augmentation
from i2i.core.errors import InvalidArgumentError, UnknownComponentError
from i2i.core.registry import augmentations
from i2i.core.values import parse_spec

# Small sizes keep the suite fast; test_resize_crop_286_to_256 covers the defaults.
TRAIN = ["resize_crop:load_size=72,crop_size=64", "hflip", "color_jitter:hue=0.05", "affine"]


def batch(n: int = 2, c: int = 3, h: int = 80, w: int = 60, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, c, h, w, generator=g) * 2 - 1


def seeded(aug: Augmentation, *batches: torch.Tensor, seed: int = 0, **kwargs):
    torch.manual_seed(seed)
    return aug(*batches, **kwargs)


def test_registered():
    expected = {"resize_crop", "scale_width", "hflip", "color_jitter", "affine", "center_resize"}
    assert expected <= set(augmentations.list())
    assert all(augmentations.get(name).summary for name in expected)


def test_resize_crop_286_to_256():
    aug = build_augmentation(["resize_crop"])
    assert aug.output_size == (256, 256)
    assert aug(batch(h=300, w=200)).shape == (2, 3, 256, 256)


@pytest.mark.parametrize(("h", "w"), [(480, 640), (640, 480), (100, 100)])
def test_scale_width_then_crop(h, w):
    aug = build_augmentation(["scale_width"])
    assert aug.output_size == (256, 256)
    assert aug(batch(1, 3, h, w)).shape == (1, 3, 256, 256)
    # Width becomes load_size; height keeps the aspect but never drops below the crop size.
    resize = aug.pipeline[0][0]
    assert resize(torch.rand(1, 3, h, w)).shape[-2:] == (max(int(286 * h / w), 256), 286)


def test_center_resize_is_deterministic():
    aug = build_augmentation(["center_resize:size=64"])
    x = batch()
    assert aug.output_size == (64, 64)
    assert torch.equal(seeded(aug, x, seed=1), seeded(aug, x, seed=2))


def test_output_size_unknown_without_a_fixed_size():
    assert build_augmentation(["hflip", "affine"]).output_size is None


def test_values_stay_in_range():
    x = batch().sign()  # all at the extremes, where bicubic overshoot and jitter would escape
    for seed in range(3):
        y = seeded(build_augmentation([*TRAIN, "color_jitter:brightness=0.5"]), x, seed=seed)
        assert y.min() >= -1 and y.max() <= 1


def test_flip_round_trips_the_value_range():
    x = batch(h=8, w=8)
    torch.testing.assert_close(build_augmentation(["hflip:p=1.0"])(x), x.flip(-1))


def test_deterministic_under_manual_seed_and_rng_state():
    aug, x = build_augmentation(TRAIN), batch()
    assert torch.equal(seeded(aug, x), seeded(aug, x))
    assert not torch.equal(seeded(aug, x, seed=0), seeded(aug, x, seed=1))
    state = torch.get_rng_state()
    first = aug(x)
    torch.set_rng_state(state)
    assert torch.equal(aug(x), first)


def test_paired_batches_get_identical_parameters():
    aug, x = build_augmentation(TRAIN), batch()
    for seed in range(3):
        a, b = seeded(aug, x, x.clone(), seed=seed, same_params=True)
        assert torch.equal(a, b)


def test_paired_batches_with_different_channel_counts_stay_aligned():
    x = batch()
    grey = x[:, :1].clone()
    geometric = build_augmentation(["resize_crop:load_size=72,crop_size=64", "hflip", "affine"])
    a, b = seeded(geometric, grey, x, same_params=True)
    assert a.shape == (2, 1, 64, 64) and b.shape == (2, 3, 64, 64)
    assert torch.equal(a, b[:, :1])

    # With colour ops the grey side is treated as a grey RGB image under the same parameters.
    coloured = build_augmentation(TRAIN)
    a, b = seeded(coloured, grey, grey.repeat(1, 3, 1, 1), same_params=True)
    assert a.shape == (2, 1, 64, 64)
    torch.testing.assert_close(a, b.mean(dim=1, keepdim=True), rtol=0, atol=1e-5)


def test_unpaired_batches_get_independent_parameters():
    aug, x = build_augmentation(TRAIN), batch()
    a, b = seeded(aug, x, x.clone())
    assert not torch.equal(a, b)
    assert isinstance(seeded(aug, x), torch.Tensor)


def test_paired_batches_must_share_size():
    aug = build_augmentation(["hflip"])
    with pytest.raises(InvalidArgumentError, match="paired"):
        aug(batch(h=32, w=32), batch(h=32, w=16), same_params=True)


def test_channel_counts():
    two = batch(c=2, h=16, w=16)
    assert build_augmentation(["hflip", "affine"])(two).shape == two.shape
    with pytest.raises(InvalidArgumentError, match="channel"):
        build_augmentation(["color_jitter"])(two)
    with pytest.raises(InvalidArgumentError):
        build_augmentation(["hflip"])(two[0])


def test_runs_where_the_host_cannot_read_the_batch():
    # Meta tensors have no data: any host read of the batch (a CUDA sync) would raise here.
    x = torch.empty(2, 3, 300, 200, device="meta")
    aug = build_augmentation(["scale_width", *TRAIN])
    out = aug(x[:, :1], x, same_params=True)
    assert [tuple(o.shape) for o in out] == [(2, 1, 64, 64), (2, 3, 64, 64)]
    assert all(o.device.type == "meta" for o in out)


def test_moving_the_module_keeps_sampling_on_the_cpu_in_float32():
    x = batch()
    expected = seeded(build_augmentation(TRAIN), x)
    assert torch.equal(seeded(build_augmentation(TRAIN).double(), x), expected)


def test_parse_spec():
    assert parse_spec("hflip") == ("hflip", {})
    assert parse_spec(("hflip", {"p": 0.2})) == ("hflip", {"p": 0.2})
    assert parse_spec("affine:degrees=5, scale=(0.9,1.1),translate=0.1") == (
        "affine",
        {"degrees": 5, "scale": (0.9, 1.1), "translate": 0.1},
    )
    assert parse_spec("custom:mode=reflection") == ("custom", {"mode": "reflection"})
    for bad in ("hflip:0.5", "hflip:p", 3, ("hflip", 0.5)):
        with pytest.raises(InvalidArgumentError):
            parse_spec(bad)


def test_build_from_every_spec_form():
    aug = build_augmentation(["resize_crop:load_size=40,crop_size=32", ("hflip", {"p": 1.0})])
    assert aug.output_size == (32, 32)
    assert aug(batch(h=50, w=50)).shape == (2, 3, 32, 32)


def test_bad_specs():
    with pytest.raises(UnknownComponentError, match="hflp"):
        build_augmentation(["hflp"])
    with pytest.raises(InvalidArgumentError, match="takes no argument"):
        build_augmentation(["hflip:prob=0.5"])
    with pytest.raises(InvalidArgumentError, match="crop_size"):
        build_augmentation(["resize_crop:load_size=200"])
    with pytest.raises(InvalidArgumentError, match="list"):
        build_augmentation("hflip")


def test_held_out_images_take_the_training_resize_without_its_random_parts():
    from i2i.kit.groups import AugmentationOptions
    from i2i.train.augmentation import BatchAugmentation

    options = AugmentationOptions(load_size=40, crop_size=32, preprocess="resize_crop")
    augmentation = BatchAugmentation(options, paired=False)
    x = torch.rand(2, 3, 48, 64) * 2 - 1
    out = augmentation.held_out({"A": x, "B": x})
    assert out["A"].shape == (2, 3, 32, 32)
    assert torch.equal(out["A"], out["B"])  # deterministic: no crop, no flip
    expected = build_augmentation([("center_resize", {"size": 32})])(x)
    assert torch.equal(out["A"], expected)
    kept = BatchAugmentation(
        AugmentationOptions(load_size=40, crop_size=32, preprocess="none"), paired=False
    ).held_out({"A": x, "B": x})
    assert kept["A"] is x
