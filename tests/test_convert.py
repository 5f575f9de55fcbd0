"""Importing official CycleGAN / pix2pix generator checkpoints (built here in the official layout)."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

import i2i
from i2i.cli import cli
from i2i.core.errors import CheckpointError
from i2i.models.convert import convert_official
from i2i.models.folder import load_model, read_config


def _official_checkpoint(path, net, data_parallel=False, stale_norm_stats=False):
    """What the official code's torch.save(net.state_dict()) writes, quirks included."""
    state = dict(net.state_dict())
    if stale_norm_stats:  # checkpoints from PyTorch < 0.4 carry instance-norm statistics
        state["model.2.running_mean"] = torch.zeros(8)
        state["model.2.running_var"] = torch.ones(8)
        state["model.2.num_batches_tracked"] = torch.tensor(3)
    if data_parallel:
        state = {f"module.{k}": v for k, v in state.items()}
    torch.save(state, path)


@pytest.mark.parametrize("data_parallel,stale", [(False, False), (True, True)])
def test_resnet_checkpoint_converts_with_identical_outputs(tmp_path, data_parallel, stale):
    torch.manual_seed(0)
    official = i2i.create_generator("resnet9", ngf=8).eval()
    _official_checkpoint(tmp_path / "latest_net_G.pth", official, data_parallel, stale)
    folder = convert_official(tmp_path / "latest_net_G.pth", tmp_path / "m", "resnet9", {"ngf": 8})
    config, nets = load_model(folder)
    assert list(nets) == ["AtoB"]  # single direction
    assert config["generators"]["AtoB"]["kwargs"] == {"ngf": 8}
    x = torch.rand(2, 3, 64, 48) * 2 - 1
    with torch.no_grad():
        diff = (nets["AtoB"](x) - official(x)).abs().max().item()
    assert diff < 1e-5


def test_pix2pix_unet_with_batch_norm(tmp_path):
    torch.manual_seed(0)
    official = i2i.create_generator("unet128", ngf=4)
    official(torch.rand(2, 3, 128, 128))  # give batch norm real running statistics
    official.eval()
    _official_checkpoint(tmp_path / "net_G.pth", official)
    folder = convert_official(
        tmp_path / "net_G.pth", tmp_path / "m", "unet128", {"ngf": 4}, task="pix2pix"
    )
    _, nets = load_model(folder)
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    with torch.no_grad():
        assert (nets["AtoB"](x) - official(x)).abs().max().item() < 1e-5
    assert read_config(folder)["task"] == "pix2pix"


def test_wrong_architecture_is_named_with_a_hint(tmp_path):
    _official_checkpoint(tmp_path / "g.pth", i2i.create_generator("resnet6", ngf=16))
    with pytest.raises(CheckpointError, match="ngf=16"):
        convert_official(tmp_path / "g.pth", tmp_path / "m", "resnet6", {"ngf": 8})
    with pytest.raises(CheckpointError, match="resnet6"):
        convert_official(tmp_path / "g.pth", tmp_path / "m", "resnet9", {"ngf": 16})
    _official_checkpoint(tmp_path / "u.pth", i2i.create_generator("unet128", ngf=8))
    for gen, kwargs, hint in [
        ("unet256", {"ngf": 64}, "try --gen unet128 --gen-kw ngf=8"),
        ("unet128", {"ngf": 16}, "try --gen-kw ngf=8"),
        ("resnet9", {}, "try --gen unet128 --gen-kw ngf=8"),
    ]:
        with pytest.raises(CheckpointError, match=hint):
            convert_official(tmp_path / "u.pth", tmp_path / "m", gen, kwargs, task="pix2pix")
    with pytest.raises(CheckpointError, match="try --gen-kw ngf=16 --gen resnet6"):  # a ResNet
        convert_official(tmp_path / "g.pth", tmp_path / "m", "unet128", {})
    assert not (tmp_path / "m").exists()


def test_pickled_code_is_refused(tmp_path):
    class Sneaky:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"model.1.weight": Sneaky()}, tmp_path / "evil.pth")
    with pytest.raises(CheckpointError, match="safely"):
        convert_official(tmp_path / "evil.pth", tmp_path / "m", "resnet9")


def test_cli_convert(tmp_path):
    _official_checkpoint(tmp_path / "g.pth", i2i.create_generator("resnet6", ngf=8))
    result = CliRunner().invoke(
        cli,
        [
            "convert",
            "official",
            str(tmp_path / "g.pth"),
            "--gen",
            "resnet6",
            "--gen-kw",
            "ngf=8",
            "-o",
            str(tmp_path / "m"),
            "--domain-a",
            "horse",
            "--domain-b",
            "zebra",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "horse → zebra" in (tmp_path / "m" / "README.md").read_text()
    result = CliRunner().invoke(
        cli,
        [
            "convert",
            "official",
            str(tmp_path / "g.pth"),
            "--gen",
            "resnet9",
            "-o",
            str(tmp_path / "m2"),
        ],
    )
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
