"""The pix2pix task: the paper's objective, learning a paired mapping, both data layouts,
--direction, exact resume, single-direction export, aligned augmentation and the toy pairs."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file

import i2i
from i2i.data import find_images
from i2i.models.export import export_run
from i2i.models.folder import load_model
from i2i.toydata import make_toy_unpaired
from i2i.train.augmentation import BatchAugmentation
from i2i.train.runtime import Runtime
from tests.conftest import TINY
from tests.training import resolve_config, train


# -- paired data -------------------------------------------------------------------------------
def smooth_images(n: int, size: int, seed: int) -> np.ndarray:
    """``n`` smooth random colour images, uint8 (n, size, size, 3)."""
    g = torch.Generator().manual_seed(seed)
    x = F.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=(size, size), mode="bicubic")
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def colour_transform(a: np.ndarray) -> np.ndarray:
    """The fixed mapping to learn: colours inverted and channels rotated (R, G, B -> G, B, R)."""
    return 255 - a[..., [1, 2, 0]]


def write_pairs(root: Path, layout: str, n_train: int = 6, n_test: int = 2, size: int = 32):
    """Pairs (A, colour_transform(A)) as two folders or as side-by-side AB images."""
    for split, n, seed in (("train", n_train, 0), ("test", n_test, 1)):
        for i, a in enumerate(smooth_images(n, size, seed)):
            b = colour_transform(a)
            if layout == "folders":
                for domain, pixels in (("A", a), ("B", b)):
                    (root / f"{split}{domain}").mkdir(parents=True, exist_ok=True)
                    Image.fromarray(pixels).save(root / f"{split}{domain}" / f"{i:03d}.png")
            else:
                (root / split).mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.concatenate([a, b], axis=1)).save(root / split / f"{i:03d}.png")
    return root


@pytest.fixture(scope="session")
def pairs(tmp_path_factory) -> Path:
    return write_pairs(tmp_path_factory.mktemp("pairs"), "folders")


def psnr(x: np.ndarray, y: np.ndarray) -> float:
    mse = np.mean((x.astype(np.float64) - y.astype(np.float64)) ** 2)
    return float(10 * np.log10(255.0**2 / mse))


def _task(data: Path, **overrides):
    config = resolve_config("pix2pix", {"data": str(data), **TINY, **overrides})
    torch.manual_seed(0)
    task = i2i.create_task("pix2pix", **config)
    task.attach(Runtime("cpu"))
    task.build({})
    return task


# -- tests -------------------------------------------------------------------------------------
def test_both_tasks_are_registered():
    assert {"cyclegan", "pix2pix"} <= set(i2i.list_tasks())


def test_official_defaults():
    config = resolve_config("pix2pix", {"data": "somewhere"})
    assert config["gen"] == "unet256" and config["disc"] == "patchgan"
    assert config["gan_loss"] == "vanilla" and config["lambda_l1"] == 100.0
    assert config["norm"] == "batch" and config["dropout"] is True
    assert (config["load_size"], config["crop_size"], config["flip"]) == (286, 256, True)
    assert (config["lr"], config["beta1"], config["beta2"]) == (2e-4, 0.5, 0.999)
    assert (config["ngf"], config["ndf"], config["direction"]) == (64, 64, "AtoB")
    assert "pool_size" not in config


def test_default_unet256_takes_a_step_at_256(tmp_path):
    """The paper's networks (U-Net 256 with batch norm and dropout, conditional PatchGAN) at
    batch 1, the official setting; narrow so that it stays quick."""
    task = _task(tmp_path, gen="unet256", ngf=4, ndf=4, load_size=286, crop_size=256)
    real_A, real_B = torch.rand(2, 1, 3, 256, 256) * 2 - 1
    losses = task.train_step(BatchAugmentation.for_task(task)({"A": real_A, "B": real_B}))
    assert all(torch.isfinite(v) for v in losses.values())
    assert task.samples({"A": real_A, "B": real_B})[0][1][1].shape == (1, 3, 256, 256)


def test_conditional_discriminator_sees_input_and_output_channels(pairs):
    task = _task(pairs, channels_a=1, channels_b=3)
    assert task.discriminators()["D"]["kwargs"]["in_channels"] == 4
    assert list(task.generators()) == ["G"]
    spec = task.generators()["G"]
    assert spec["direction"] == "AtoB"
    assert (spec["kwargs"]["in_channels"], spec["kwargs"]["out_channels"]) == (1, 3)
    assert spec["kwargs"]["dropout"] is True and spec["kwargs"]["norm"] == "batch"
    assert _task(pairs, dropout=False).generators()["G"]["kwargs"]["dropout"] is False


def _reference_step(nets, real_A, real_B, lam=100.0, lr=2e-4, betas=(0.5, 0.999)):
    """The official pix2pix step written out plainly: G(A) once, D updated on (A, G(A)) and
    (A, B), then G updated against the new D. Returns losses and both gradient lists."""
    G, D = nets["G"], nets["D"]

    def bce(pred, target):
        return F.binary_cross_entropy_with_logits(pred, torch.full_like(pred, target))

    fake_B = G(real_A)
    losses = {
        "D_fake": bce(D(torch.cat([real_A, fake_B.detach()], 1)), 0.0),
        "D_real": bce(D(torch.cat([real_A, real_B], 1)), 1.0),
    }
    losses["D"] = 0.5 * (losses["D_fake"] + losses["D_real"])
    d_params = list(D.parameters())
    d_grads = torch.autograd.grad(losses["D"], d_params)
    for p, g in zip(d_params, d_grads, strict=True):
        p.grad = g
    torch.optim.Adam(d_params, lr=lr, betas=betas).step()
    losses["G_GAN"] = bce(D(torch.cat([real_A, fake_B], 1)), 1.0)
    losses["G_L1"] = (fake_B - real_B).abs().mean() * lam
    g_grads = torch.autograd.grad(losses["G_GAN"] + losses["G_L1"], list(G.parameters()))
    return losses, g_grads, d_grads


@pytest.mark.parametrize("norm", ["batch", "instance"])
def test_one_step_equals_the_papers_objective(pairs, norm):
    task = _task(pairs, norm=norm)  # dropout on: both sides draw the same masks from the seed
    reference_nets = copy.deepcopy(task.nets)
    g = torch.Generator().manual_seed(1)
    real_A = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    real_B = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    torch.manual_seed(2)
    losses = task.train_step({"A": real_A, "B": real_B})
    torch.manual_seed(2)
    ref_losses, g_grads, d_grads = _reference_step(reference_nets, real_A, real_B)
    assert set(losses) == set(ref_losses)
    for key, value in ref_losses.items():
        assert losses[key].requires_grad is False
        torch.testing.assert_close(losses[key], value.detach(), rtol=1e-5, atol=1e-6, msg=key)
    got = [p.grad for n in ("G", "D") for p in task.nets[n].parameters()]
    for got_grad, want in zip(got, list(g_grads) + list(d_grads), strict=True):
        torch.testing.assert_close(got_grad, want, rtol=1e-4, atol=1e-5)
    # D was updated once, and batch-norm statistics saw the same three D passes.
    for key, value in reference_nets["D"].state_dict().items():
        torch.testing.assert_close(task.nets["D"].state_dict()[key], value, msg=key)


@pytest.mark.slow
def test_learns_a_paired_colour_transform(tmp_path):
    """Inverted, channel-rotated colours: far from the identity, learnt in 300 tiny steps."""
    data = write_pairs(tmp_path / "data", "folders", n_train=32, n_test=2)
    options = {**TINY, "batch_size": 4, "lr": 1e-3, "epochs": 1000, "epochs_decay": 0}
    options.update(log_every=100, sample_every=1000, save_every=1000)
    result = train("pix2pix", data=str(data), out=str(tmp_path / "run"), max_steps=300, **options)
    model = export_run(result.run_dir, tmp_path / "model")
    translator = i2i.load(model, device="cpu")
    held_out = smooth_images(8, 32, seed=123)
    learnt = np.mean(
        [psnr(np.asarray(translator(Image.fromarray(a))), colour_transform(a)) for a in held_out]
    )
    identity = np.mean([psnr(a, colour_transform(a)) for a in held_out])
    print(f"pix2pix colour transform: PSNR {learnt:.2f} dB, identity {identity:.2f} dB")
    assert identity < 12
    assert learnt > identity + 10, (learnt, identity)


@pytest.mark.parametrize("layout", ["folders", "side_by_side"])
def test_both_layouts_train(tmp_path, layout):
    data = write_pairs(tmp_path / "data", layout)
    result = train("pix2pix", data=str(data), out=str(tmp_path / "run"), max_steps=2, **TINY)
    assert result.step == 2
    records = [json.loads(line) for line in (tmp_path / "run" / "losses.jsonl").open()]
    assert {"G_GAN", "G_L1", "D_real", "D_fake", "lr"} <= set(records[-1])
    weights = load_file(str(result.checkpoint / "networks.safetensors"))
    assert {k.split(".")[0] for k in weights} == {"G", "D"}
    grid = Image.open(tmp_path / "run" / "samples" / "latest.png")
    assert grid.width >= 3 * 32 and grid.height >= 2 * 32  # input | output | target


def test_eval_every_scores_translations_against_their_targets(pairs, tmp_path):
    out = tmp_path / "run"
    train("pix2pix", data=str(pairs), out=str(out), max_steps=2, eval_every=2, **TINY)
    records = [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]
    evals = [r for r in records if "eval/AtoB/psnr" in r]
    assert [r["step"] for r in evals] == [2]
    assert 0 < evals[0]["eval/AtoB/psnr"] < 60 and -1 <= evals[0]["eval/AtoB/ssim"] <= 1


@pytest.mark.parametrize("layout", ["folders", "side_by_side"])
def test_direction_btoa_swaps_input_and_target(tmp_path, layout):
    data = write_pairs(tmp_path / "data", layout)
    forward, backward = _task(data).dataset("train")[0], _task(data, direction="BtoA")
    swapped = backward.dataset("train")[0]
    assert torch.equal(swapped["A"], forward["B"]) and torch.equal(swapped["B"], forward["A"])
    # Channels follow the swap: grey targets from colour inputs.
    grey_out = _task(data, direction="BtoA", channels_b=1)
    assert grey_out.dataset("train")[0]["B"].shape[0] == 1
    result = train(
        "pix2pix",
        data=str(data),
        out=str(tmp_path / "run"),
        max_steps=2,
        direction="BtoA",
        **TINY,
    )
    assert result.step == 2


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(pairs, tmp_path):
    """5 steps + resume + 3 steps == 8 steps, across the epoch boundary at 6, with dropout and
    batch norm on (dropout draws from the torch RNG that checkpoints restore)."""
    common = {"data": str(pairs), **TINY, "epochs": 2, "epochs_decay": 1}
    straight = train("pix2pix", out=str(tmp_path / "straight"), max_steps=8, **common)
    first = train("pix2pix", out=str(tmp_path / "resumed"), max_steps=5, **common)
    assert first.step == 5
    resumed = train("pix2pix", resume=str(tmp_path / "resumed"), max_steps=8)
    assert resumed.step == straight.step == 8
    a = load_file(str(straight.checkpoint / "networks.safetensors"))
    b = load_file(str(resumed.checkpoint / "networks.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)


def test_export_is_a_single_direction_model(pairs, tmp_path):
    result = train(
        "pix2pix",
        data=str(pairs),
        out=str(tmp_path / "run"),
        max_steps=2,
        domain_a="edges",
        domain_b="shoes",
        **TINY,
    )
    model = export_run(result.run_dir, tmp_path / "model")
    config, nets = load_model(model)
    assert config["task"] == "pix2pix" and list(nets) == ["AtoB"]
    assert config["discriminators"] == {}
    card = (model / "README.md").read_text()
    assert "edges → shoes" in card and "shoes → edges" not in card
    assert "one direction only" in card and "direction=" not in card
    translator = i2i.load(model, device="cpu")
    assert translator.directions == ("AtoB",)
    image = Image.fromarray(smooth_images(1, 40, seed=5)[0])  # not a multiple of anything
    out = translator(image)
    assert out.size == image.size and out.mode == "RGB"
    with_d = export_run(result.run_dir, tmp_path / "with_d", with_discriminators=True)
    d_spec = json.loads((with_d / "config.json").read_text())["discriminators"]["D"]
    assert d_spec["kwargs"]["in_channels"] == 6


def test_augmentation_keeps_pairs_aligned(pairs):
    task = _task(pairs, load_size=40, crop_size=32)
    torch.manual_seed(0)
    for _ in range(4):
        x = torch.rand(4, 3, 32, 32) * 2 - 1
        out = BatchAugmentation.for_task(task)({"A": x, "B": x.clone()})
        assert out["A"].shape == (4, 3, 32, 32)
        assert torch.equal(out["A"], out["B"])
        assert not torch.allclose(out["A"], x)
    # Different channel counts share the same geometry too.
    grey = _task(pairs, load_size=40, crop_size=32, channels_a=1)
    x = torch.rand(4, 3, 32, 32) - 0.5  # away from +-1, where bicubic overshoot is clamped
    out = BatchAugmentation.for_task(grey)({"A": x.mean(1, keepdim=True), "B": x})
    torch.testing.assert_close(out["A"], out["B"].mean(1, keepdim=True), atol=1e-5, rtol=0)


def test_toy_pairs_without_data(tmp_path, monkeypatch):
    """No --data: grey -> colour pairs derived from the toy day scenes, cached atomically."""
    from i2i import toydata
    from i2i_plugins.pix2pix.toy import toy_paired_dir

    monkeypatch.setattr(
        toydata,
        "make_toy_unpaired",
        lambda root: make_toy_unpaired(root, n_train=3, n_test=1, size=32),
    )
    monkeypatch.setenv("I2I_HOME", str(tmp_path / "home"))
    root = toy_paired_dir()
    assert root == tmp_path / "home" / "toy-pix2pix"
    assert toy_paired_dir() == root
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == ["toy", "toy-pix2pix"]
    names = [p.name for p in find_images(root / "trainA")]
    assert names == [p.name for p in find_images(root / "trainB")] and len(names) == 3
    for name in names:
        a, b = Image.open(root / "trainA" / name), Image.open(root / "trainB" / name)
        assert a.mode == "L" and b.mode == "RGB"
        assert np.array_equal(np.asarray(a), np.asarray(b.convert("L")))
    result = train("pix2pix", out=str(tmp_path / "run"), max_steps=2, workers=0, ngf=4, ndf=4)
    run = json.loads((tmp_path / "run" / "config.json").read_text())
    assert run["options"]["channels_a"] == 1 and run["options"]["domain_b"] == "colour"
    assert run["discriminators"]["D"]["kwargs"]["in_channels"] == 4
    assert result.step == 2


def test_the_cli_questions_plain_photos_in_the_side_by_side_layout_on_one_line(tmp_path):
    from click.testing import CliRunner

    from i2i.cli import cli

    for i, pixels in enumerate(smooth_images(2, 40, seed=3)):
        (tmp_path / "photos" / "train").mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(tmp_path / "photos" / "train" / f"{i}.png")
    args = ["train", "pix2pix", "--data", str(tmp_path / "photos"), "--max-steps", "1"]
    args += ["--out", str(tmp_path / "run"), "--gen", "resnet6", "--ngf", "4", "--ndf", "4"]
    args += ["--crop-size", "32", "--load-size", "36", "--workers", "0"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    [line] = [line for line in result.stderr.splitlines() if "left half -> right half" in line]
    assert line.startswith("warning: ") and "0.png is 40x40" in line
    assert "I2IWarning" not in result.stderr


@pytest.mark.parametrize(
    ("layout", "direction"), [("folders", "AtoB"), ("side_by_side", "AtoB"), ("folders", "BtoA")]
)
def test_eval_scores_a_pix2pix_model_against_the_targets_of_the_test_pairs(
    tmp_path, layout, direction
):
    from i2i.eval.evaluate import evaluate
    from tests.test_evaluate import RandomConv

    data = write_pairs(tmp_path / "data", layout, n_test=3)
    train(
        "pix2pix", data=str(data), out=str(tmp_path / "run"), max_steps=2, direction=direction,
        **TINY,
    )  # fmt: skip
    model = export_run(tmp_path / "run", tmp_path / "model")
    translator = i2i.load(model, device="cpu")
    report = evaluate(translator, data, tmp_path / "report", extractor=RandomConv(), device="cpu")
    entry = report["directions"]["AtoB"]  # pix2pix exports its one generator as AtoB
    assert entry["n_images"] == entry["n_real"] == 3
    assert entry["contact_sheet_columns"][-1].startswith("target")
    assert not any("one direction" in note for note in entry["notes"])
    # PSNR against the targets, as a user would compute it from the translations
    tests = sorted((data / ("testA" if layout == "folders" else "test")).iterdir())
    values = []
    for path in tests:
        pair = np.asarray(Image.open(path).convert("RGB"))
        a, b = (
            (pair, np.asarray(Image.open(data / "testB" / path.name)))
            if layout == "folders"
            else (pair[:, :32], pair[:, 32:])
        )
        source, target = (a, b) if direction == "AtoB" else (b, a)
        fake = np.asarray(translator(Image.fromarray(source)))
        values.append(psnr(fake, target))
    assert entry["psnr"] == pytest.approx(np.mean(values), abs=0.3)
    assert 0 < entry["ssim"] <= 1
    assert "PSNR to target" in (tmp_path / "report" / "index.html").read_text()


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_eval_feeds_a_btoa_model_the_b_side_of_the_pairs(tmp_path, direction):
    """A model that is nearly the pairs' mapping (colour_transform, or its inverse for BtoA)
    scores far above any input/target mix-up."""
    from i2i.eval.evaluate import evaluate
    from tests.test_evaluate import RandomConv

    class ExactMapping:
        directions = ("AtoB",)
        config = {"task": "pix2pix", "training": {"direction": direction}, "generators": {}}

        def __call__(self, x, direction):
            return -0.99 * (x[:, [1, 2, 0]] if self.forward else x[:, [2, 0, 1]])

    model = ExactMapping()
    model.forward = direction == "AtoB"
    data = write_pairs(tmp_path / "data", "side_by_side", n_test=3)
    report = evaluate(model, data, tmp_path / "report", extractor=RandomConv(), device="cpu")
    assert report["directions"]["AtoB"]["psnr"] > 35  # a mix-up gives about 10 dB


def test_images_kept_at_their_own_size_that_do_not_suit_are_named_as_such(tmp_path):
    data = write_pairs(tmp_path / "data", "folders", size=34)
    flags = {**TINY, "preprocess": "none", "crop_size": 32, "load_size": 36}
    with pytest.raises(i2i.I2IError, match="the training images do not suit these networks"):
        train("pix2pix", data=str(data), out=str(tmp_path / "run"), max_steps=1, **flags)
