"""UNSB: the bridge's times and update against the formulas, the time- and noise-conditioned
networks, one training step against the paper's objective in float64, resume, batches, the
Translator's walk (steps, seed), export, apply and ONNX."""

from __future__ import annotations

import copy
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file

import i2i
from i2i.bridge import BridgeRunner, seeded_noise
from i2i.cli import cli
from i2i.core.errors import CheckpointError, I2IError, InvalidArgumentError
from i2i.core.registry import generators
from i2i.models.export import export_run
from i2i.models.folder import make_config, net_spec, save_model
from i2i.train.runtime import Runtime
from tests.conftest import TINY
from tests.mean_shift_reference import first_step_shift_loss
from tests.test_cut import _direct_patchnce
from tests.training import resolve_config, train

UNSB_TINY = {**TINY, "num_patches": 16, "noise_dim": 16}


# -- the bridge --------------------------------------------------------------------------------
def _direct_times(steps: int) -> np.ndarray:
    """The issue's recipe: harmonic increments, normalised, 0.5 + 0.5x, 0 in front."""
    increments = np.array([0.0] + [1.0 / (i + 1) for i in range(steps - 1)])
    times = np.cumsum(increments)
    times = times / times[-1]
    return np.concatenate([[0.0], 0.5 + 0.5 * times])


@pytest.mark.parametrize("steps", [2, 3, 5, 8])
def test_bridge_times_are_the_papers(steps):
    np.testing.assert_allclose(i2i.bridge_times(steps), _direct_times(steps), rtol=0, atol=1e-15)


def test_bridge_times_of_five_steps_and_of_one():
    assert [round(t, 2) for t in i2i.bridge_times(5)] == [0.0, 0.5, 0.74, 0.86, 0.94, 1.0]
    assert i2i.bridge_times(1) == [0.0, 1.0]
    with pytest.raises(InvalidArgumentError, match="steps"):
        i2i.bridge_times(0)


def test_bridge_update_is_the_brownian_bridge_step():
    torch.manual_seed(0)
    x, predicted, noise = torch.randn(3, 2, 3, 4, 4, dtype=torch.float64)
    t_from, t_to, tau = 0.74, 0.86, 0.01
    delta = t_to - t_from
    a = delta / (1 - t_from)
    want = (1 - a) * x + a * predicted + math.sqrt(tau * delta * (1 - a)) * noise
    got = i2i.bridge_update(x, predicted, t_from, t_to, tau, noise)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-15)
    # At the last move the path lands on the prediction, without noise.
    end = i2i.bridge_update(x, predicted, 0.94, 1.0, tau, noise)
    torch.testing.assert_close(end, predicted, rtol=0, atol=1e-14)


def test_a_bridge_from_a_config_is_checked():
    bridge = i2i.Bridge(steps=3, tau=0.02, noise_dim=8)
    assert i2i.Bridge.from_dict(bridge.as_dict()) == bridge
    for bad in (
        {"steps": 3, "code": "x"},
        {"steps": 0},
        {"tau": -1.0},
        {"tau": "x"},
        [3],
        {"noise_dim": "8"},
    ):
        with pytest.raises(InvalidArgumentError):
            i2i.Bridge.from_dict(bad)


def test_a_bridge_walks_its_sample_steps_unless_told():
    """``sample_steps`` is how many predictions a translation walks by default; an explicit
    count wins; configs without it (and ``as_dict`` of a bridge without it) walk all steps."""
    plain, three = i2i.Bridge(steps=5), i2i.Bridge(steps=5, sample_steps=3)
    assert (plain.check_steps(None), three.check_steps(None)) == (5, 3)
    assert (three.check_steps(1), three.check_steps(5)) == (1, 5)
    assert "sample_steps" not in plain.as_dict()
    assert three.as_dict()["sample_steps"] == 3
    assert i2i.Bridge.from_dict(three.as_dict()) == three
    assert i2i.Bridge.from_dict({"steps": 5, "tau": 0.01, "noise_dim": 256}) == plain
    for bad in (0, 6, True, "3", 2.0):
        with pytest.raises(InvalidArgumentError, match="sample_steps must be a whole number"):
            i2i.Bridge(steps=5, sample_steps=bad)


@pytest.mark.parametrize("path_noise", [None, 0.0, 0.5, 1.0])
def test_walk_and_sample_against_a_written_out_loop(path_noise):
    """A step function that depends on x, the step and z; noise drawn z first, then eps (also
    when none of the path's noise is walked: the default)."""
    bridge = i2i.Bridge(steps=4, tau=0.05, noise_dim=3)
    share = 0.0 if path_noise is None else path_noise
    chosen = {} if path_noise is None else {"path_noise": path_noise}

    def step(x, index, z):
        return torch.tanh(
            0.5 * x + index[:, None, None, None] * 0.1 + z.sum(1)[:, None, None, None]
        )

    x0 = torch.rand(2, 1, 4, 4, dtype=torch.float64) * 2 - 1
    for steps in (1, 2, 4):
        got = bridge.sample(step, x0, steps, seeded_noise(7, "cpu"), **chosen)
        g = torch.Generator().manual_seed(7)

        def draw(*shape, g=g):
            return torch.randn(shape, generator=g).expand(2, *shape[1:])

        times, x = i2i.bridge_times(4), x0
        for k in range(steps):
            predicted = step(x, torch.full((2,), k), draw(1, 3))
            if k == steps - 1:
                break
            delta = times[k + 1] - times[k]
            a = delta / (1 - times[k])
            eps = draw(1, 1, 4, 4)
            x = (1 - a) * x + a * predicted + math.sqrt(0.05 * share * delta * (1 - a)) * eps
        torch.testing.assert_close(got, predicted, rtol=0, atol=1e-12)
    with pytest.raises(InvalidArgumentError, match="from 1 to 4"):
        bridge.sample(step, x0, 5)
    for bad in (-0.1, 1.5, float("nan"), "1", True):
        with pytest.raises(InvalidArgumentError, match="path-noise must be a number from 0"):
            bridge.sample(step, x0, 2, path_noise=bad)


# -- the networks ------------------------------------------------------------------------------
def _randomised(net):
    torch.manual_seed(3)
    for p in net.parameters():
        p.data.normal_(0, 0.2)  # far from the zero start, so that every path shows
    return net.eval()


def test_generator_output_depends_on_time_and_noise():
    G = _randomised(i2i.create_generator("unsb_resnet6", ngf=8, noise_dim=16))
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    z = torch.randn(2, 16)
    with torch.no_grad():
        base = G(x, torch.tensor([0, 0]), z)
        later = G(x, torch.tensor([3, 3]), z)
        other_noise = G(x, torch.tensor([0, 0]), torch.randn(2, 16))
        mixed = G(x, torch.tensor([0, 3]), z)
    assert base.shape == x.shape
    assert (base - later).abs().amax(dim=(1, 2, 3)).min() > 1e-3
    assert (base - other_noise).abs().amax(dim=(1, 2, 3)).min() > 1e-3
    torch.testing.assert_close(mixed[0], base[0])  # each image reads its own step
    torch.testing.assert_close(mixed[1], later[1])


def test_every_block_is_conditioned_from_the_start():
    """At initialisation the projections are zero (G is the plain ResNet), but every block's
    time and noise projections get a gradient: the conditioning reaches every block, after the
    block's first convolution (the reference's block threw that result away)."""
    G = i2i.create_generator("unsb_resnet6", ngf=8, noise_dim=16)
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    G(x, torch.tensor([2]), torch.randn(1, 16)).square().mean().backward()
    assert len(G.blocks) == 6
    for block in G.blocks:
        assert block.time.weight.grad.abs().sum() > 0
        assert block.style.weight.grad.abs().sum() > 0
        assert isinstance(block.first[1], torch.nn.Conv2d)  # pad, conv, norm; then modulation
    plain = i2i.create_generator("resnet6", ngf=8, antialias=True)
    assert sum(p.numel() for p in plain.parameters()) < sum(p.numel() for p in G.parameters())


def test_features_are_the_conditioned_forward_at_cuts_layers():
    """CUT's layer numbers: the encoder's modules, then the residual blocks (12 -> blocks.0)."""
    from i2i_plugins.unsb.networks import time_embedding

    G = _randomised(i2i.create_generator("unsb_resnet6", ngf=8, noise_dim=16))
    x, t, z = torch.rand(2, 3, 32, 32) * 2 - 1, torch.tensor([0, 2]), torch.randn(2, 16)
    assert G.layer_names([0, 4, 8, 12, 16, "blocks.5"]) == [
        "encoder.0", "encoder.4", "encoder.8", "blocks.0", "blocks.4", "blocks.5"
    ]  # fmt: skip
    with torch.no_grad():
        got = G.features(x, t, z, [0, 4, 8, 12, 16])
        want, h = [], x
        for index, module in enumerate(G.encoder):
            h = module(h)
            if index in (0, 4, 8):
                want.append(h)
        t_emb, z_emb = G.time_embed(time_embedding(t, G.width)), G.mapping(z)
        for index, block in enumerate(G.blocks):
            h = block(h, t_emb, z_emb)
            if index in (0, 4):
                want.append(h)
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a, b)
    for outside in (18, -1):
        with pytest.raises(I2IError, match="outside"):
            G.layer_names([outside])


def test_critic_depends_on_time_and_energy_network_takes_pairs():
    D = _randomised(i2i.create_discriminator("unsb_patchgan", ndf=8))
    E = _randomised(i2i.create_discriminator("unsb_patchgan", in_channels=12, ndf=8))
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert (D(x, torch.tensor([0])) - D(x, torch.tensor([4]))).abs().max() > 1e-3
        assert E(torch.rand(2, 12, 64, 64), torch.tensor([1, 1])).shape == (2, 1, 6, 6)


def test_projected_critic_reads_the_step_and_starts_as_the_plain_one():
    """The step-conditioned projected critic: one logit map per level, equal to the plain
    projected critic's at the start (zero shifts), different steps judged apart once its
    shifts are trained."""
    torch.manual_seed(0)
    D = i2i.create_discriminator("unsb_projected", ndf=8)
    torch.manual_seed(0)
    plain = i2i.create_discriminator("projected", ndf=8, init="xavier")
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        maps = D(x, torch.tensor([0, 3]))
        assert [m.shape for m in maps] == [(2, 1, 16, 16), (2, 1, 8, 8), (2, 1, 4, 4)]
        for got, want in zip(maps, plain(x), strict=True):
            torch.testing.assert_close(got, want)
        for shifts in D.shifts:
            for shift in shifts:
                shift.weight.normal_(0, 0.2)
        early, late = D(x, torch.tensor([0, 0])), D(x, torch.tensor([4, 4]))
    assert all((a - b).abs().max() > 1e-3 for a, b in zip(early, late, strict=True))
    assert not any(p.requires_grad for p in D.features.parameters())
    with pytest.raises(InvalidArgumentError) as refused:  # the inner network's one message
        i2i.create_discriminator("unsb_projected", levels=7)
    assert str(refused.value).count("cannot be built") == 1
    assert "stages 0-3" in str(refused.value)


def test_networks_are_listed_and_described():
    runner = CliRunner()
    listed = runner.invoke(cli, ["list", "generators", "unsb*"])
    assert "unsb_resnet9" in listed.output and "unsb_resnet6" in listed.output
    described = runner.invoke(cli, ["describe", "unsb_patchgan"])
    assert described.exit_code == 0 and "time step" in described.output
    task = runner.invoke(cli, ["describe", "unsb"])
    assert "bridge_steps" in task.output and "lambda_sb" in task.output


# -- the task ----------------------------------------------------------------------------------
def test_defaults_are_the_papers_and_toy_training_works_without_data():
    c = resolve_config("unsb", {"data": "x"})
    assert (c["gen"], c["disc"], c["init"], c["gan_loss"], c["norm"]) == (
        "unsb_resnet9", "unsb_patchgan", "xavier", "lsgan", "instance"
    )  # fmt: skip
    assert (c["bridge_steps"], c["tau"], c["noise_dim"], c["sample_steps"]) == (5, 0.01, 256, None)
    assert (c["lambda_gan"], c["lambda_sb"], c["lambda_nce"], c["nce_idt"]) == (1, 1, 1, True)
    assert (c["lr"], c["beta1"], c["beta2"], c["nce_layers"]) == (2e-4, 0.5, 0.999, "0,4,8,12,16")
    toy = resolve_config("unsb", {})
    assert (toy["gen"], toy["ngf"], toy["domain_a"]) == ("unsb_resnet6", 16, "day")


def test_plain_backbone_names_mean_their_conditioned_version(toy_data):
    task = i2i.create_task("unsb", data=str(toy_data), gen="resnet6", disc="patchgan")
    assert (task.config["gen"], task.config["disc"]) == ("unsb_resnet6", "unsb_patchgan")
    with pytest.raises(I2IError, match="one channel count"):
        i2i.create_task("unsb", data=str(toy_data), channels_a=1)
    one_pass = i2i.create_task("unsb", data=str(toy_data), gen="unet128", **TINY_NO_GEN)
    one_pass.attach(Runtime("cpu"))
    with pytest.raises(I2IError, match="bridge generator"):
        one_pass.build({"A": torch.rand(1, 3, 32, 32), "B": torch.rand(1, 3, 32, 32)})


TINY_NO_GEN = {k: v for k, v in UNSB_TINY.items() if k != "gen"}


def _task(data, **overrides):
    torch.manual_seed(0)
    task = i2i.create_task("unsb", **{"data": str(data), **UNSB_TINY, **overrides})
    task.attach(Runtime("cpu"))
    task.build({"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1})
    return task


def test_plain_network_names_mean_the_bridge_forms_from_any_source(tmp_path):
    """``resnet6``/``projected`` name UNSB's conditioned networks whether they come from a flag,
    a config file or the recipe (the recipe's plain --disc projected once built a critic
    without the time step, so ``i2i.create_task("unsb", recipe="quality")`` could not build)."""
    config_file = tmp_path / "unsb.yaml"
    config_file.write_text("gen: resnet6\ndisc: patchgan\n")
    from_file = i2i.create_task("unsb", config_file=config_file, data="x").config
    assert (from_file["gen"], from_file["disc"]) == ("unsb_resnet6", "unsb_patchgan")
    from_recipe = i2i.create_task("unsb", recipe="quality", data="x").config
    assert from_recipe["disc"] == "unsb_projected"
    # the recipe's critic named again on the command line keeps the recipe's --disc-kw
    both = i2i.create_task("unsb", recipe="quality", disc="projected", data="x").config
    assert (both["disc"], both["disc_kw"]) == ("unsb_projected", from_recipe["disc_kw"])
    flags = i2i.create_task("unsb", gen="resnet9", disc="projected", data="x").config
    assert (flags["gen"], flags["disc"]) == ("unsb_resnet9", "unsb_projected")


def _stream_giving_step(steps: int, wanted: int) -> random.Random:
    for seed in range(1000):
        if random.Random(seed).randrange(steps) == wanted:
            return random.Random(seed)
    raise AssertionError("no seed gives that step")


def _reference_nce(G, head, src, out, z, layers, rng, lam, patches):
    """PatchNCE written out on G's features at step 0: shared ids, MLP, l2, InfoNCE."""
    t0 = torch.zeros(src.shape[0], dtype=torch.int64)
    names = G.layer_names(layers)
    total = 0.0
    with torch.no_grad():
        keys = G.features(src, t0, z, names)
    queries = G.features(out, t0, z, names)
    ids = [torch.randperm(f.shape[2] * f.shape[3], generator=rng)[:patches] for f in keys]
    for number, (q_feat, k_feat, idx) in enumerate(zip(queries, keys, ids, strict=True)):
        mlp = getattr(head, f"mlp_{number}")

        def project(feat, mlp=mlp, idx=idx):
            y = mlp(feat.permute(0, 2, 3, 1).reshape(feat.shape[0], -1, feat.shape[1])[:, idx])
            return y / (y.norm(dim=-1, keepdim=True) + 1e-7)

        per_patch = _direct_patchnce(project(q_feat), project(k_feat).detach(), 0.07, False)
        total = total + per_patch.mean() * lam
    return total / len(layers)


@pytest.mark.parametrize("shift", [0.0, 2.0])
def test_one_step_equals_the_papers_objective_in_float64(toy_data, shift):
    """D, E and G's losses and G's and the head's gradients, written out from the formulas
    with copies of the networks and of the task's random streams; with the mean-shift term,
    the paper's objective plus that term (of the endpoint predicted from step k)."""
    task = _task(toy_data, lambda_shift=shift)
    for net in task.nets.values():
        net.double()
    steps, tau, nd, n, k = 5, 0.01, 16, 2, 3
    task.time_rng = _stream_giving_step(steps, k)
    G0, D0, E0, F0 = (copy.deepcopy(task.nets[name]) for name in ("G", "D", "E", "F"))
    rng = torch.Generator().set_state(task.rng.get_state())
    noise = torch.Generator().set_state(task.noise_rng.get_state())
    torch.manual_seed(1)
    real_A, real_B = (torch.rand(2, n, 3, 32, 32) * 2 - 1).double()
    losses = task.step({"A": real_A, "B": real_B})

    randn = lambda *shape: torch.randn(shape, generator=noise)  # noqa: E731
    times = _direct_times(steps)
    x = torch.cat([real_A, real_A.roll(1, 0), real_B])  # no previous batch at the first step
    with torch.no_grad():
        for s in range(k):
            predicted = G0(x, torch.full((3 * n,), s), randn(3 * n, nd))
            delta = times[s + 1] - times[s]
            a = delta / (1 - times[s])
            x = (1 - a) * x + a * predicted + math.sqrt(tau * delta * (1 - a)) * randn(*x.shape)
    out = G0(x, torch.full((3 * n,), k), randn(3 * n, nd))
    x_t, x_t2 = x[:n], x[n : 2 * n]
    fake, fake2, idt = out[:n], out[n : 2 * n], out[2 * n :]
    at_k = torch.full((n,), k)

    def mse(pred, target):
        return ((pred - target) ** 2).mean()

    def energies(E, x1, x1_2):
        joint = E(torch.cat([x_t, x1, x_t, x1], 1), at_k)
        cross = E(torch.cat([x_t, x1, x_t2, x1_2], 1), at_k)
        return joint, cross.exp().sum().log()

    logged = {"rtol": 1e-6, "atol": 1e-9}  # the task logs float32 copies of its losses
    torch.testing.assert_close(losses["D_real"].double(), mse(D0(real_B, at_k), 1.0), **logged)
    torch.testing.assert_close(
        losses["D_fake"].double(), mse(D0(fake.detach(), at_k), 0.0), **logged
    )
    joint, lse = energies(E0, fake.detach(), fake2.detach())
    torch.testing.assert_close(losses["E"].double(), -joint.mean() + lse + lse**2, **logged)

    D1, E1 = task.nets["D"], task.nets["E"]  # the generator meets the updated critics
    g_gan = mse(D1(fake, at_k), 1.0)
    joint, lse = energies(E1, fake, fake2)
    sb = -(steps - k) / steps * tau * (joint.mean() - lse) + tau * ((x_t - fake) ** 2).mean()
    nce = 0.0
    for src, dst in ((real_A, fake), (real_B, idt)):
        nce = nce + _reference_nce(G0, F0, src, dst, randn(n, nd), task.layers, rng, 1.0, 16)
    nce = nce / 2
    for name, want in (("G_GAN", g_gan), ("SB", sb), ("NCE", nce)):
        torch.testing.assert_close(losses[name].double(), want.detach(), **logged)
    total = g_gan + sb + nce
    if shift:
        term = first_step_shift_loss(real_A, fake, real_A, real_B, "A") * shift
        torch.testing.assert_close(losses["shift"].double(), term.detach(), **logged)
        total = total + term
    else:
        assert "shift" not in losses
    for name, reference in (("G", G0), ("F", F0)):
        want = torch.autograd.grad(total, list(reference.parameters()), retain_graph=True)
        want = torch.cat([w.flatten() for w in want])
        got = torch.cat([p.grad.flatten() for p in task.nets[name].parameters()])
        torch.testing.assert_close(got, want, rtol=0, atol=1e-9 * float(want.abs().max()))


def test_energy_and_bridge_losses_against_float64_formulas():
    from i2i_plugins.unsb.task import bridge_loss, energy_loss

    torch.manual_seed(0)
    joint, cross = torch.randn(2, 3, 1, 5, 5, dtype=torch.float64)
    x_t, x1 = torch.randn(2, 3, 3, 8, 8, dtype=torch.float64)
    lse = math.log(sum(math.exp(v) for v in cross.flatten().tolist()))
    want_e = -joint.mean().item() + lse + lse**2
    assert energy_loss(joint, cross).dtype == torch.float64
    assert energy_loss(joint, cross).item() == pytest.approx(want_e, rel=1e-13)
    transport = sum(v * v for v in (x_t - x1).flatten().tolist()) / x_t.numel()
    for k in range(5):
        want_sb = -(5 - k) / 5 * 0.01 * (joint.mean().item() - lse) + 0.01 * transport
        got = bridge_loss(joint, cross, x_t, x1, k, 5, 0.01).item()
        assert got == pytest.approx(want_sb, rel=1e-12)
    # Half-precision energies are summed in float32.
    assert energy_loss(joint.bfloat16(), cross.bfloat16()).dtype == torch.float32


def test_previous_batch_is_the_second_path_and_steps_run_at_batch_two(toy_data):
    task = _task(toy_data)
    a1, b1, a2, b2 = torch.rand(4, 2, 3, 32, 32) * 2 - 1
    assert torch.equal(task.other_paths_start(a1), a1.roll(1, 0))
    first = task.step({"A": a1, "B": b1})
    assert torch.equal(task.other_paths_start(a2), a1)
    assert torch.equal(task.other_paths_start(a2[:1]), a2[:1])  # a smaller last batch
    second = task.step({"A": a2, "B": b2})
    for losses in (first, second):
        assert set(losses) == {"G_GAN", "SB", "NCE", "E", "D", "D_real", "D_fake"}
        assert all(torch.isfinite(v) for v in losses.values())
    state = task.state_dict()
    assert torch.equal(state["previous_A"], a2)
    assert {"rng", "time_rng", "noise_rng"} <= set(state)
    cuda_like = {**state, "noise_rng": torch.zeros(16, dtype=torch.uint8)}  # a Philox state
    with pytest.raises(I2IError, match="another kind of device"):
        task.load_state_dict(cuda_like)


def test_resume_is_bit_exact_with_the_noise_stream_and_previous_batch(toy_data, tmp_path):
    """With the mean-shift term: its averages go on after the resume."""
    common = {"data": str(toy_data), **UNSB_TINY, "batch_size": 2, "epochs": 2, "epochs_decay": 1}
    common["lambda_shift"] = 1.0
    straight = train("unsb", out=str(tmp_path / "straight"), max_steps=6, **common)
    train("unsb", out=str(tmp_path / "resumed"), max_steps=4, **common)
    resumed = i2i.fit(i2i.create_task("unsb", resume=str(tmp_path / "resumed"), max_steps=6))
    a = load_file(str(straight.checkpoint / "networks.safetensors"))
    b = load_file(str(resumed.checkpoint / "networks.safetensors"))
    assert a.keys() == b.keys()
    assert {k.split(".")[0] for k in a} == {"G", "D", "E", "F"}
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_the_quality_recipe_starts_at_the_colour_map_and_resumes(toy_data, tmp_path):
    """``--recipe quality``: the generator starts by predicting the path point it is given with
    its colours mapped as the training sets say (at every step and for any noise); the
    discriminator is the step-conditioned projected critic on four levels of features, the
    energy network a PatchGAN on stacked pairs; EMA on; the run resumes with its recipe and
    exports a model that walks."""
    task = _task(toy_data, recipe="quality")
    config = task.config
    assert (config["ema_decay"], config["tau"], config["sample_steps"]) == (0.999, 0.001, 3)
    assert config["lambda_nce"] == 0.5  # the paper's 1 holds the pictures near their input
    assert config["gen_kw"] == {"residual": True, "detail": True, "colour": True}
    assert config["disc_kw"] == {"levels": [0, 1, 2, 3]}  # half resolution up to a 16th
    assert len(task.nets["D"].heads) == 4
    assert (config["disc"], task.discriminators()["E"]["name"]) == (
        "unsb_projected",
        "unsb_patchgan",
    )
    G, E = task.nets["G"], task.nets["E"]
    assert G.detail is not None and G.residual and G.bridge.tau == 0.001
    assert G.bridge.sample_steps == 3  # apply walks three of the five predictions by default
    example = {"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1}
    with torch.no_grad():
        labels = task.samples(example)[0][0]
    assert labels == ["real A", "1 step", "3 steps", "5 steps"]  # one, apply's default, all
    assert E.model[0].in_channels == 12
    x = torch.rand(2, 3, 32, 32) * 1.8 - 0.9
    with torch.no_grad():
        assert not torch.allclose(G.colour(x), x, atol=1e-2)  # the toy's day -> night map
        for k in (0, 3):
            start = G.colour(x).clamp(-0.999, 0.999)
            torch.testing.assert_close(G(x, task._index(x, k), torch.randn(2, 16)), start)
    run = tmp_path / "run"
    common = {"data": str(toy_data), **UNSB_TINY, "recipe": "quality"}
    train("unsb", out=str(run), max_steps=1, **common)
    assert train("unsb", resume=str(run), max_steps=2).step == 2
    assert json.loads((run / "config.json").read_text())["options"]["recipe"] == "quality"
    model = export_run(run, tmp_path / "model")
    kwargs = json.loads((model / "config.json").read_text())["generators"]["AtoB"]["kwargs"]
    assert kwargs["residual"] is True and kwargs["detail"] is True and kwargs["sample_steps"] == 3
    assert i2i.load(model, device="cpu").sampling["AtoB"]["steps"] == 3
    out = i2i.load(model, device="cpu", steps=2, seed=0)(x)
    assert out.shape == x.shape
    with pytest.raises(InvalidArgumentError, match="unknown recipe 'best'; available: quality"):
        resolve_config("unsb", {"data": "x", "recipe": "best"})


def test_a_run_starts_from_a_bridge_model_at_its_own_noise_and_predictions(
    toy_data, tmp_path, capsys
):
    """tau and sample_steps choose how the bridge is sampled, not its weights: a run started
    from a model may set its own (the start line names them); the bridge's steps may not."""
    common = {"data": str(toy_data), **UNSB_TINY, "max_steps": 1}
    train("unsb", out=str(tmp_path / "run"), **common)  # tau 0.01, every prediction
    model = export_run(tmp_path / "run", tmp_path / "model")
    tuned = tmp_path / "tuned"
    own = {"tau": 0.001, "sample_steps": 3}
    train("unsb", out=str(tuned), init_from=str(model), **{**common, "lr": 0.0}, **own)
    assert (
        "this run's own --sample-steps (model None, this run 3), --tau (model 0.01, this run "
        "0.001)" in capsys.readouterr().err
    )
    tuned_model = export_run(tuned, tmp_path / "tuned_model")
    kwargs = json.loads((tuned_model / "config.json").read_text())["generators"]["AtoB"]["kwargs"]
    assert (kwargs["tau"], kwargs["sample_steps"]) == (0.001, 3)
    before, after = (load_file(str(m / "model.safetensors")) for m in (model, tuned_model))
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    with pytest.raises(CheckpointError, match=r" --bridge-steps \(model 5, this run 3\)"):
        train("unsb", out=str(tmp_path / "other"), init_from=str(model), bridge_steps=3, **common)
    assert not (tmp_path / "other").exists()


# -- the model: export, apply, steps and seed ----------------------------------------------------
@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A bridge model with randomised weights (so that every step and the noise show)."""
    torch.manual_seed(0)
    spec_kwargs = {"ngf": 8, "noise_dim": 16, "steps": 5}
    net = _randomised(i2i.create_generator("unsb_resnet6", **spec_kwargs))
    config = make_config(
        "unsb", {"AtoB": net_spec(generators, "unsb_resnet6", spec_kwargs)}, size=32
    )
    return save_model(tmp_path_factory.mktemp("m") / "model", config, {"AtoB": net})


def test_translator_walks_the_bridge_with_steps_and_seed(model_dir):
    x = torch.rand(2, 3, 32, 40) * 2 - 1
    full = i2i.load(model_dir, device="cpu")(x)
    assert full.shape == x.shape
    torch.testing.assert_close(i2i.load(model_dir, device="cpu", steps=5, seed=0)(x), full)
    one = i2i.load(model_dir, device="cpu", steps=1)(x)
    reseeded = i2i.load(model_dir, device="cpu", seed=1)(x)
    assert (one - full).abs().max() > 1e-3 and (reseeded - full).abs().max() > 1e-3
    # The direct walk of the generator: what the model folder's config describes.
    net = i2i.load(model_dir, device="cpu")._nets["AtoB"]
    with torch.no_grad():
        direct = net.bridge.sample(net, x, 3, seeded_noise(4, "cpu"))
    walked = i2i.load(model_dir, device="cpu", steps=3, seed=4, batch_size=2)(x)
    torch.testing.assert_close(walked, direct, rtol=0, atol=0)
    # An image translates the same alone as in a batch (the noise is per image, from the seed);
    # up to the float rounding of batched convolutions, which these large weights amplify.
    alone = i2i.load(model_dir, device="cpu", steps=3, seed=4, batch_size=1)(x[1:])
    torch.testing.assert_close(alone, direct[1:], rtol=0, atol=1e-3)
    with pytest.raises(InvalidArgumentError, match="from 1 to 5"):
        i2i.load(model_dir, device="cpu", steps=6)
    sampling = {"steps": 5, "seed": 2, "path_noise": 0.0}
    assert i2i.load(model_dir, device="cpu", seed=2).sampling == {"AtoB": sampling}


def _walks_three_of_five(folder: Path) -> tuple[dict, Path]:
    """A model folder as ``--sample-steps 3`` writes it: five steps, three walked by default."""
    torch.manual_seed(0)
    spec = {"ngf": 8, "noise_dim": 16, "steps": 5, "sample_steps": 3}
    net = _randomised(i2i.create_generator("unsb_resnet6", **spec))
    config = make_config("unsb", {"AtoB": net_spec(generators, "unsb_resnet6", spec)}, size=32)
    return config, save_model(folder, config, {"AtoB": net})


def test_a_model_walks_its_sample_steps_unless_told(tmp_path):
    """A model trained with ``--sample-steps 3`` (config: the generator's ``sample_steps``)
    translates with three predictions by default; --steps still chooses; old configs walk all."""
    config, folder = _walks_three_of_five(tmp_path / "m")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    default = i2i.load(folder, device="cpu")
    assert default.sampling["AtoB"]["steps"] == 3
    torch.testing.assert_close(
        default(x), i2i.load(folder, device="cpu", steps=3)(x), rtol=0, atol=0
    )
    assert (i2i.load(folder, device="cpu", steps=5)(x) - default(x)).abs().max() > 1e-3
    (tmp_path / "in").mkdir()
    Image.effect_noise((32, 32), 60).convert("RGB").save(tmp_path / "in" / "a.png")
    for name, flags in (("default", []), ("three", ["--steps", "3"])):
        args = ["apply", str(folder), str(tmp_path / "in"), "-o", str(tmp_path / name), *flags]
        assert CliRunner().invoke(cli, args).exit_code == 0
    read = [np.asarray(Image.open(tmp_path / n / "a.png")) for n in ("default", "three")]
    assert np.array_equal(*read)
    config["generators"]["AtoB"]["kwargs"]["sample_steps"] = 6
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(I2IError, match="sample_steps must be a whole number from 1 to 5"):
        i2i.load(folder, device="cpu")


def test_an_onnx_export_keeps_the_models_sample_steps(tmp_path):
    """The exported graph's bridge records ``sample_steps``, and its runner walks three."""
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    from i2i.infer.onnx import export_onnx
    from i2i.models.folder import load_model

    _, folder = _walks_three_of_five(tmp_path / "m")
    onnx = export_onnx(*load_model(folder), tmp_path / "onnx", log=lambda _: None)
    assert json.loads((onnx / "config.json").read_text())["onnx"]["AtoB"]["bridge"] == {
        "steps": 5, "tau": 0.01, "noise_dim": 16, "sample_steps": 3
    }  # fmt: skip
    assert i2i.load(onnx, backend="onnxruntime").sampling["AtoB"]["steps"] == 3


def test_translator_walks_the_paths_mean_unless_asked_for_its_noise(model_dir):
    x = torch.rand(2, 3, 32, 40) * 2 - 1
    net = i2i.load(model_dir, device="cpu")._nets["AtoB"]
    with torch.no_grad():
        mean = net.bridge.sample(net, x, 5, seeded_noise(4, "cpu"), path_noise=0.0)
        paper = net.bridge.sample(net, x, 5, seeded_noise(4, "cpu"), path_noise=1.0)
    assert (mean - paper).abs().max() > 1e-3
    for chosen, want in (({}, mean), ({"path_noise": 0}, mean), ({"path_noise": 1}, paper)):
        got = i2i.load(model_dir, device="cpu", seed=4, batch_size=2, **chosen)(x)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
    with pytest.raises(InvalidArgumentError, match="path-noise must be a number from 0"):
        i2i.load(model_dir, device="cpu", path_noise=2)


def test_steps_on_a_one_pass_model_is_a_clear_error(tmp_path):
    net = i2i.create_generator("resnet6", ngf=4)
    config = make_config("cyclegan", {"AtoB": net_spec(generators, "resnet6", {"ngf": 4})})
    folder = save_model(tmp_path / "m", config, {"AtoB": net})
    with pytest.raises(InvalidArgumentError, match="one pass, drop --steps"):
        i2i.load(folder, device="cpu", steps=2)
    with pytest.raises(InvalidArgumentError, match="one pass, drop --path-noise"):
        i2i.load(folder, device="cpu", path_noise=0.5)


def test_apply_cli_takes_steps_and_seed(model_dir, tmp_path):
    (tmp_path / "in").mkdir()
    Image.effect_noise((36, 28), 60).convert("RGB").save(tmp_path / "in" / "a.png")
    runner = CliRunner()
    outputs = {}
    for name, flags in (
        ("s3", ["--steps", "3", "--seed", "2"]),
        ("s5", []),
        ("noisy", ["--path-noise", "1"]),
    ):
        args = ["apply", str(model_dir), str(tmp_path / "in"), "-o", str(tmp_path / name)]
        result = runner.invoke(cli, args + flags)
        assert result.exit_code == 0, result.output
        outputs[name] = np.asarray(Image.open(tmp_path / name / "a.png"), np.int16)
    want = i2i.load(model_dir, device="cpu", steps=3, seed=2)(Image.open(tmp_path / "in" / "a.png"))
    assert np.array_equal(outputs["s3"], np.asarray(want, np.int16))
    assert np.abs(outputs["s3"] - outputs["s5"]).max() > 0
    noisy = i2i.load(model_dir, device="cpu", path_noise=1)(Image.open(tmp_path / "in" / "a.png"))
    assert np.array_equal(outputs["noisy"], np.asarray(noisy, np.int16))
    assert np.abs(outputs["noisy"] - outputs["s5"]).max() > 0
    for flags, message in (
        (["--steps", "0"], "Error: steps must be a whole number from 1 to 5"),
        (["--path-noise", "2"], "Error: --path-noise must be a number from 0"),
    ):
        bad = runner.invoke(
            cli, ["apply", str(model_dir), str(tmp_path / "in"), "-o", str(tmp_path / "x"), *flags]
        )
        assert bad.exit_code == 1 and message in bad.output
        assert not (tmp_path / "x").exists()


def test_training_eval_runs_the_walk(model_dir):
    from i2i.eval.cycle import cycle_metrics

    net = i2i.load(model_dir, device="cpu")._nets["AtoB"]
    result = cycle_metrics({"AtoB": net}, {"A": torch.rand(2, 3, 32, 32) * 2 - 1})
    assert result["AtoB"]["n_images"] == 2


@pytest.mark.slow
def test_onnx_graph_is_one_prediction_and_the_runner_walks_it(model_dir, tmp_path):
    pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")
    from i2i.infer.onnx import export_onnx
    from i2i.models.folder import load_model

    config, nets = load_model(model_dir)
    out = export_onnx(config, nets, tmp_path / "onnx", log=lambda _: None)
    graph = json.loads((out / "config.json").read_text())["onnx"]["AtoB"]
    assert graph["bridge"] == {"steps": 5, "tau": 0.01, "noise_dim": 16}
    assert graph["dynamic"] is True and graph["max_abs_diff"] < 1e-4
    import onnxruntime as ort

    session = ort.InferenceSession(str(out / "AtoB.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image", "time_index", "noise"]
    x = torch.rand(1, 3, 36, 44) * 2 - 1
    for steps in (1, 5):
        want = i2i.load(model_dir, device="cpu", steps=steps, seed=3)(x)
        got = i2i.load(out, backend="onnxruntime", steps=steps, seed=3)(x)
        # One prediction to 1e-4; five compound the graphs' rounding through these random
        # weights (a wrong input, step or noise would differ by far more).
        atol = 1e-4 if steps == 1 else 1e-2
        torch.testing.assert_close(got, want, atol=atol, rtol=0)


def test_train_export_apply_on_toy_data(tmp_path):
    """Without --data: the toy day->night set, then export and apply with --steps."""
    result = CliRunner().invoke(
        cli,
        ["train", "unsb", "--out", str(tmp_path / "run"), "--max-steps", "3", "--ngf", "8",
         "--ndf", "8", "--num-patches", "16", "--noise-dim", "16", "--load-size", "36",
         "--crop-size", "32", "--batch-size", "2", "--log-every", "1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    model = export_run(tmp_path / "run", tmp_path / "model")
    config = json.loads((model / "config.json").read_text())
    assert config["domains"] == {"A": "day", "B": "night"}
    assert config["generators"]["AtoB"]["name"] == "unsb_resnet6"
    assert config["generators"]["AtoB"]["kwargs"]["steps"] == 5
    days = i2i.find_images(i2i.toy_dataset_dir() / "testA")[:2]
    apply = CliRunner().invoke(
        cli, ["apply", str(model), *map(str, days), "-o", str(tmp_path / "out"), "--steps", "2"]
    )
    assert apply.exit_code == 0, apply.output
    assert Image.open(tmp_path / "out" / days[0].name).size == Image.open(days[0]).size


@pytest.mark.slow
def test_learns_day_to_night_on_the_toy_data(tmp_path):
    """Without --data: after a short run a day scene comes out much darker, in one step and in
    five (300 steps at ngf 8 darkened the test days by about 95 of 255 on average)."""
    settings = {"max_steps": 200, "ngf": 8, "ndf": 8, "num_patches": 64, "seed": 0}
    result = train("unsb", out=str(tmp_path / "run"), **settings)
    days = i2i.find_images(i2i.toy_dataset_dir() / "testA")[:8]
    for steps in (1, 5):
        translator = i2i.load(result.run_dir, device="cpu", steps=steps)
        drops = []
        for path in days:
            day = Image.open(path).convert("RGB")
            drops.append(np.asarray(day, np.float32).mean() - np.asarray(translator(day)).mean())
        assert np.mean(drops) > 25, (steps, drops)


@pytest.mark.slow
def test_torchrun_two_processes_gloo(toy_data, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    args = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        "-m", "i2i", "train", "unsb", "--data", str(toy_data), "--out", str(out), "--gen",
        "resnet6", "--ngf", "8", "--ndf", "8", "--load-size", "36", "--crop-size", "32",
        "--num-patches", "16", "--noise-dim", "16", "--max-steps", "2", "--log-every", "1",
        "--device", "cpu", "--workers", "0", "--batch-size", "2",
    ]  # fmt: skip
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    state = torch.load(out / "checkpoints" / "step_00000002" / "state.pt", weights_only=True)
    assert len(state["per_rank"]) == 2
    ranks = [r["task"] for r in state["per_rank"]]
    assert not torch.equal(ranks[0]["noise_rng"], ranks[1]["noise_rng"])  # own noise per rank
    assert not torch.equal(ranks[0]["previous_A"], ranks[1]["previous_A"])  # own data per rank


def test_bridge_runner_keeps_the_generators_sizes(model_dir):
    net = i2i.load(model_dir, device="cpu")._nets["AtoB"]
    runner = BridgeRunner(net, net.bridge, steps=2)
    assert (runner.size_multiple, runner.min_size) == (4, 8)
