"""The mechanics of the quality options: EMA maths and export, recipes, D-side augmentation."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file
from torch import nn

import i2i
from i2i.cli import cli
from i2i.core.errors import InvalidArgumentError
from i2i.models.export import export_run
from i2i.train.ema import GeneratorEMA
from i2i.train.runtime import Runtime
from tests.conftest import TINY
from tests.training import resolve_config, train


def test_ema_update_is_the_warmed_up_moving_average():
    live = nn.Linear(3, 2)
    ema = GeneratorEMA({"G": live}, decay=0.99)
    start = live.weight.detach().clone()
    for n in range(3):
        with torch.no_grad():
            live.weight.add_(1.0)
        before = ema.averaged["G"].weight.clone()
        decay = min(0.99, (1 + n) / (10 + n))
        assert ema.current_decay() == pytest.approx(decay)
        ema.update()
        expected = decay * before + (1 - decay) * live.weight
        torch.testing.assert_close(ema.averaged["G"].weight, expected)
    assert not torch.equal(ema.averaged["G"].weight, live.weight)
    with ema.swapped_in():
        assert torch.equal(live.weight, ema.averaged["G"].weight)
    torch.testing.assert_close(live.weight, start + 3)  # restored afterwards


def test_ema_weights_are_checkpointed_sampled_and_exported(toy_data, tmp_path):
    result = train(
        "cyclegan", data=str(toy_data), out=str(tmp_path / "run"), max_steps=3, ema_decay=0.9,
        **TINY,
    )  # fmt: skip
    saved = load_file(str(result.checkpoint / "networks.safetensors"))
    ema_keys = [k for k in saved if k.startswith("G_AB_ema.")]
    assert ema_keys and not any(k.startswith("D_A_ema.") for k in saved)
    key = "G_AB_ema.model.1.weight"
    assert not torch.equal(saved[key], saved["G_AB.model.1.weight"])
    model = export_run(result.run_dir, tmp_path / "model")
    exported = load_file(str(model / "model.safetensors"))
    assert torch.equal(exported["AtoB.model.1.weight"], saved[key])
    resumed = train("cyclegan", resume=str(tmp_path / "run"), max_steps=4)
    state = torch.load(resumed.checkpoint / "state.pt", weights_only=True)
    assert state["ema_updates"] == 4


def test_every_recipe_resolves_and_is_recorded(toy_data, tmp_path, capsys):
    for task in ("cyclegan", "cut"):
        recipes = i2i.core.registry.tasks.get(task).factory.recipes
        for name, recipe in recipes.items():
            config = resolve_config(task, {"data": "x", "recipe": name})
            for key, value in recipe.values.items():
                assert config[key] == (value if not isinstance(value, dict) else dict(value))
    name = next(iter(i2i.core.registry.tasks.get("cyclegan").factory.recipes))
    recipe = i2i.core.registry.tasks.get("cyclegan").factory.recipes[name]
    key = next(iter(recipe.values))
    explicit = {"lr": 1e-4} if key != "lr" else {"beta1": 0.0}
    config = resolve_config("cyclegan", {"data": "x", "recipe": name, **explicit})
    assert all(config[k] == v for k, v in explicit.items())  # flags still win
    train("cyclegan", data=str(toy_data), out=str(tmp_path / "r"), max_steps=1, recipe=name, **TINY)
    printed = capsys.readouterr()
    assert f"training cyclegan (recipe {name}) on" in printed.out + printed.err  # says so up front
    train("cyclegan", data=str(toy_data), out=str(tmp_path / "p"), max_steps=1, **TINY)
    printed = capsys.readouterr()
    assert "training cyclegan (no recipe; --recipe quality trains better" in (
        printed.out + printed.err
    )  # the defaults, and what gains on every look measured
    options = json.loads((tmp_path / "r" / "config.json").read_text())["options"]
    assert options["recipe"] == name
    assert all(k in options for k in recipe.values)
    merged = resolve_config(
        "cyclegan", {"data": "x", "recipe": "quality", "gen_kw": ["padding=zero"]}
    )
    # KEY=VALUE options merge
    assert merged["gen_kw"] == {**recipe.values["gen_kw"], "padding": "zero"}
    with pytest.raises(InvalidArgumentError, match=r"unknown recipe 'nope'.*describe cyclegan`"):
        resolve_config("cyclegan", {"data": "x", "recipe": "nope"})
    described = CliRunner().invoke(cli, ["describe", "cyclegan"])
    assert f"recipe {name}:" in described.output


def test_a_run_resumes_with_its_recipe_as_it_was_when_the_run_began(toy_data, tmp_path):
    """A recipe changes between releases (CycleGAN's gained the colour path): a run started
    with the recipe before resumes with the values in its config.json, not today's, whether the
    command names the recipe or not; ``--gen-kw`` given now merges with the run's own."""
    run = tmp_path / "run"
    off = {"colour": False, "colour_curve": False, "colour_gate": False, "colour_regions": False}
    train("cyclegan", data=str(toy_data), out=str(run), max_steps=1, recipe="quality",
          gen_kw=off, **TINY)  # fmt: skip
    config = json.loads((run / "config.json").read_text())
    before = {k: v for k, v in config["options"]["gen_kw"].items() if k not in off}
    config["options"]["gen_kw"] = before  # as the recipe before the colour path wrote it
    (run / "config.json").write_text(json.dumps(config))
    assert train("cyclegan", resume=str(run), max_steps=2).step == 2
    resumed = i2i.create_task("cyclegan", resume=str(run), recipe="quality", max_steps=3)
    assert resumed.config["gen_kw"] == before
    merged = i2i.create_task(
        "cyclegan", resume=str(run), gen_kw=["antialias=true"], max_steps=3
    ).config["gen_kw"]
    assert merged == before  # the run's own, given again
    with pytest.raises(InvalidArgumentError, match="padding"):
        i2i.create_task("cyclegan", resume=str(run), gen_kw=["padding=zero"], max_steps=3)


def test_the_recipe_has_its_critics_judge_the_current_fakes(toy_data, tmp_path):
    """Why the recipe sets --pool-size 0: half the fakes a pooled critic learns from are about a
    hundred steps old, ones the generator no longer makes; a flag still brings a pool back."""
    from i2i.train.trainer import Trainer

    fake = torch.rand(1, 3, 8, 8)
    for pool_size, expected in ((None, 0), (50, 50)):
        flag = {} if pool_size is None else {"pool_size": pool_size}
        task = i2i.create_task(
            "cyclegan", data=str(toy_data), out=str(tmp_path / str(expected)), recipe="quality",
            **flag, **TINY,
        )  # fmt: skip
        Trainer(task)  # builds the task on the first batch
        assert task.pool_A.size == task.pool_B.size == expected
    assert i2i.ImagePool(0).query(fake) is fake  # no pool: the fakes of this very step


def test_a_recipes_network_arguments_go_with_its_network():
    """The quality recipe's --disc-kw (the projected critic's levels and pixel head) is dropped
    when --disc names another critic, kept and merged when it names the same one."""
    levels = {"levels": [0, 1, 2, 3], "pixels": True}
    assert resolve_config("cyclegan", {"data": "x", "recipe": "quality"})["disc_kw"] == levels
    other = resolve_config(
        "cyclegan", {"data": "x", "recipe": "quality", "disc": "patchgan", "disc_kw": ["x=1"]}
    )
    assert other["disc"] == "patchgan" and other["disc_kw"] == {"x": 1}
    same = resolve_config(
        "cyclegan",
        {"data": "x", "recipe": "quality", "disc": "projected", "disc_kw": ["projection=8"]},
    )
    assert same["disc_kw"] == {**levels, "projection": 8}
    off = resolve_config(
        "cyclegan",
        {"data": "x", "recipe": "quality", "disc_kw": ["pixels=false"]},
    )
    assert off["disc_kw"] == {**levels, "pixels": False}  # the recipe before its pixel head
    kept = resolve_config("cyclegan", {"data": "x", "recipe": "quality", "gen": "resnet6"})
    assert kept["gen_kw"]["residual"] is True  # the recipe names no generator: its kw stay


def test_discriminator_sees_real_and_fake_through_the_same_augmentation(toy_data):
    config = resolve_config(
        "cyclegan", {"data": str(toy_data), **TINY, "d_augment": "cutout:ratio=0.5"}
    )
    task = i2i.create_task("cyclegan", **config)
    task.attach(Runtime("cpu"))
    task.build({})
    seen = []
    for name in ("D_A", "D_B"):
        task.nets[name].register_forward_pre_hook(lambda m, args: seen.append(args[0].detach()))
    ones = {"A": torch.ones(1, 3, 32, 32) * 0.9, "B": torch.ones(1, 3, 32, 32) * 0.9}
    task.train_step(ones)
    # Every image the critics judged (fakes in the G phase, reals and pooled fakes in the D
    # phase) went through cutout: each has a zeroed square.
    assert len(seen) >= 4
    assert all((x == 0).all(dim=1).any() for x in seen)


def test_warmup_ramps_the_learning_rate_then_the_official_policy_holds():
    from i2i.train.schedule import lr_factor

    assert [lr_factor(0, 2, 2, step=s, warmup=4) for s in range(5)] == [0.25, 0.5, 0.75, 1, 1]
    assert lr_factor(3, 2, 2, step=100, warmup=4) == lr_factor(3, 2, 2) == 1 - 2 / 3


def test_residual_generator_starts_as_the_identity_and_keeps_the_layout():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    for antialias in (False, True):
        plain = i2i.create_generator("resnet6", ngf=8, antialias=antialias)
        residual = i2i.create_generator("resnet6", ngf=8, antialias=antialias, residual=True)
        assert list(plain.state_dict()) == list(residual.state_dict())
        torch.testing.assert_close(residual(x), x, atol=2e-3, rtol=0)
        residual(x).square().mean().backward()  # the zeroed last conv still learns
        assert residual.model[-1].weight.grad.abs().sum() > 0
    with pytest.raises(InvalidArgumentError, match="residual needs as many output channels"):
        i2i.create_generator("resnet6", in_channels=1, out_channels=3, residual=True)


def test_detail_path_reaches_the_output_at_full_resolution():
    """With ``detail``, the input's finest structure and absolute levels reach the output
    head without the 1/4-scale bottleneck and instance norm; without it, they cannot."""
    torch.manual_seed(0)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    for residual in (False, True):
        net = i2i.create_generator("resnet6", ngf=8, antialias=True, residual=residual, detail=True)
        keys = list(net.state_dict())
        assert any(k.startswith("detail.") for k in keys)
        assert net.model[-1 if residual else -2].in_channels == 16  # body + detail features
        assert net(x).shape == x.shape
    net = i2i.create_generator("resnet6", ngf=8, antialias=True, residual=True, detail=True)
    torch.testing.assert_close(net(x), x, atol=2e-3, rtol=0)  # still starts as the identity
    with torch.no_grad():
        # He initialisation keeps the un-normalised path's activations at the input's scale.
        assert 0.2 < float(net.detail(x).std()) < 5
        # A brightness shift is invisible to the instance-normalised body, not to the detail one.
        body = net.model[: net.head_index]
        torch.testing.assert_close(body(x), body(x * 0.5 + 0.2), atol=5e-3, rtol=0)
        assert float((net.detail(x) - net.detail(x * 0.5 + 0.2)).abs().mean()) > 0.05
    # The last conv learns from both; gradients reach the detail convs once it is non-zero.
    net(x).square().mean().backward()
    grad = net.model[-1].weight.grad
    assert grad[:, 8:].abs().sum() > 0 and grad[:, :8].abs().sum() > 0
    plain = i2i.create_generator("resnet6", ngf=8, antialias=True, residual=True)
    assert not any(k.startswith("detail.") for k in plain.state_dict())


def test_discriminator_norm_can_differ_from_the_generators(toy_data):
    config = resolve_config(
        "cyclegan",
        {"data": str(toy_data), **TINY, "norm_d": "none", "disc_kw": ["spectral_norm=true"]},
    )
    task = i2i.create_task("cyclegan", **config)
    assert task.generators()["G_AB"]["kwargs"]["norm"] == "instance"
    assert task.discriminators()["D_A"]["kwargs"]["norm"] == "none"
    with pytest.raises(InvalidArgumentError, match="use --norm-d none"):
        resolve_config("cyclegan", {"data": "x", "disc_kw": ["norm=none"]})


def test_the_recipe_frees_the_residual_generator_that_the_paper_cycle_weight_pins(
    toy_data, tmp_path
):
    """Why the recipe sets --lambda-cycle 1: generators that start as the identity (or as the
    colour maps between the sets, each the other's inverse) make the L1 cycle loss zero, or
    nearly, and at the paper's weight 10 that term holds them there."""
    from i2i.train.trainer import Trainer

    moved = {}
    for weight in (1.0, 10.0):
        task = i2i.create_task(
            "cyclegan",
            data=str(toy_data),
            out=str(tmp_path / str(weight)),
            recipe="quality",
            lambda_cycle=weight,
            lambda_shift=0.0,  # the mean-shift term moves it at either weight
            **TINY,
        )
        trainer = Trainer(task)
        x = trainer.fixed["A"]
        assert hasattr(task.nets["G_AB"], "detail")  # the recipe's full-resolution path
        assert task.lambda_idt == 0  # no identity term to hold it at its input ...
        critic = task.nets["D_B"]  # ... a critic that sees colour casts stands in for it
        assert type(critic).__name__ == "ProjectedDiscriminator"
        G = task.nets["G_AB"]
        assert G.colour_curve is not None and G.colour_gate  # the path, bent and gated ...
        assert G.takes_frame  # ... and varying over the frame, started where the toy's
        assert (G.colour_regions.gain - 1).abs().amax() > 0.05  # nights are darker or flatter
        with torch.no_grad():
            start = G(x)  # the colour maps between the toy's days and nights
            want = G.colour_regions(G.colour(x)).clamp(-0.999, 0.999)
            torch.testing.assert_close(start, want)
            assert (start - x).abs().mean() > 0.1
        trainer.train()
        with torch.no_grad():
            moved[weight] = (G(x) - start).abs().mean().item()
    assert moved[1.0] > 1.5 * moved[10.0]  # twice as far here (three times with PatchGANs)


def test_layer_norm_keeps_the_colour_balance_that_instance_norm_removes():
    """Why a critic may use --norm-d layer: instance norm zeroes each channel's mean, so an
    image's colour balance (a grade that shifts one channel) no longer reaches the next layer;
    one group over all channels keeps how the channels differ."""
    from i2i.nets.norm import conv_bias, norm_layer

    x = torch.randn(2, 4, 8, 8) + torch.tensor([2.0, 0.0, 0.0, -2.0]).view(1, 4, 1, 1)
    per_channel = norm_layer("instance")(4)(x).mean((2, 3))
    torch.testing.assert_close(per_channel, torch.zeros(2, 4), atol=1e-5, rtol=0)
    kept = norm_layer("layer")(4)(x).mean((2, 3))
    assert (kept[:, 0] - kept[:, 3] > 1.5).all()
    assert not conv_bias("layer")  # GroupNorm's own shift stands in for the conv's bias
    from i2i.kit.groups import NORMS as offered  # the options' copy, kept free of torch
    from i2i.nets.norm import NORMS as built

    assert offered == built


def test_a_layer_norm_critic_trains_beside_instance_norm_generators(toy_data, tmp_path):
    from i2i.train.trainer import Trainer

    task = i2i.create_task(
        "cyclegan", data=str(toy_data), out=str(tmp_path / "run"), recipe="quality",
        disc="patchgan", norm_d="layer", **TINY,
    )  # fmt: skip
    assert task.discriminators()["D_A"]["kwargs"]["norm"] == "layer"
    assert task.generators()["G_AB"]["kwargs"]["norm"] == "instance"
    Trainer(task).train()
    critic = task.nets["D_A"]
    assert any(isinstance(m, nn.GroupNorm) for m in critic.modules())
    assert all(torch.isfinite(p).all() for p in critic.parameters())
