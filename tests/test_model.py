"""The model folder: export from a run, strict loading, the card, and every mismatch error."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

import i2i
from i2i.cli import cli
from i2i.core.errors import CheckpointError, I2IError, UnknownComponentError
from i2i.core.registry import discriminators, generators
from i2i.models.build import build_checked, build_generators
from i2i.models.export import export_run
from i2i.models.folder import (
    load_model,
    make_config,
    net_spec,
    read_config,
    read_weights,
    save_model,
)
from tests.conftest import TINY
from tests.training import train


@pytest.fixture(scope="module")
def run_dir(toy_data, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    train(
        "cyclegan",
        data=str(toy_data),
        out=str(out),
        max_steps=4,
        domain_a="day",
        domain_b="night",
        **TINY,
    )
    return out


def test_export_writes_config_weights_card_and_samples(run_dir, tmp_path):
    model = export_run(run_dir, tmp_path / "model")
    assert sorted(p.name for p in model.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
        "samples.png",
    ]
    config = read_config(model)
    assert config["task"] == "cyclegan" and config["domains"] == {"A": "day", "B": "night"}
    assert config["generators"]["AtoB"]["name"] == "resnet6"
    assert config["generators"]["AtoB"]["plugin"] == "i2i"
    assert config["generators"]["BtoA"]["kwargs"]["ngf"] == 8
    assert config["preprocess"]["size"] == 32
    assert config["discriminators"] == {}  # only on request
    card = (model / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["library_name"] == "i2i" and front["pipeline_tag"] == "image-to-image"
    assert "cyclegan" in front["tags"]
    assert "day → night" in card and "i2i.load(" in card and "i2i apply" in card
    assert "![samples](samples.png)" in card
    assert "at the end of training, on held-out images" in card  # the toy data has test splits
    assert "lambda_identity" in card
    # the data folder is named, never located: a pushed card shows no local path
    run_data = json.loads((run_dir / "config.json").read_text())["options"]["data"]
    assert Path(run_data).is_absolute() and config["training"]["data"] == Path(run_data).name
    assert run_data not in card and run_data not in (model / "config.json").read_text()


def test_exported_generators_equal_the_checkpoint(run_dir, tmp_path):
    from i2i.models.checkpoint import latest_checkpoint, load_checkpoint

    model = export_run(run_dir, tmp_path / "model")
    _, nets = load_model(model)
    checkpoint, _ = load_checkpoint(latest_checkpoint(run_dir))
    for key, value in checkpoint["G_AB"].items():
        torch.testing.assert_close(nets["AtoB"].state_dict()[key], value, rtol=0, atol=0)


def test_with_discriminators(run_dir, tmp_path):
    model = export_run(run_dir, tmp_path / "model", with_discriminators=True)
    config, weights = read_config(model), read_weights(model)
    assert set(config["discriminators"]) == {"D_A", "D_B"} <= set(weights)
    for name, spec in config["discriminators"].items():  # each builds from its spec, strictly
        build_checked(discriminators, spec, weights[name], f"discriminator {name}")
    _, nets = load_model(model)  # generators still load strictly beside them
    assert set(nets) == {"AtoB", "BtoA"}


def test_export_refuses_to_overwrite_and_leaves_nothing_half_written(run_dir, tmp_path):
    out = tmp_path / "model"
    export_run(run_dir, out)
    with pytest.raises(I2IError, match="--overwrite"):
        export_run(run_dir, out)
    export_run(run_dir, out, overwrite=True)
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # no temp folders left


def test_export_removes_what_a_killed_export_of_the_same_folder_left(run_dir, tmp_path):
    killed, running, other = (tmp_path / n for n in (".model.k1ll3d_x", ".model.now1ng_y", ".x"))
    for folder in (killed, running, other):
        folder.mkdir()
        (folder / "model.safetensors").write_bytes(b"half a model")
    hours_ago = time.time() - 7200
    for folder in (killed, other):
        os.utime(folder, (hours_ago, hours_ago))
    export_run(run_dir, tmp_path / "model")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".model.now1ng_y", ".x", "model"]
    another = tmp_path / ".mx.k1ll3d_z"  # model "mx"'s, which the name "m*" matches as a pattern
    another.mkdir()
    (another / "model.safetensors").write_bytes(b"half a model")
    os.utime(another, (hours_ago, hours_ago))
    export_run(run_dir, tmp_path / "m*")
    assert another.exists()


def _tiny_model(tmp_path: Path, **kwargs) -> Path:
    net = i2i.create_generator("resnet6", ngf=8)
    config = make_config("cyclegan", {"AtoB": net_spec(generators, "resnet6", {"ngf": 8})})
    return save_model(tmp_path / "m", config, {"AtoB": net}, **kwargs)


def test_missing_plugin_is_named(tmp_path):
    folder = _tiny_model(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["generators"]["AtoB"].update(name="fancy_gen", plugin="i2i-fancy")
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnknownComponentError, match="'fancy_gen' from plugin 'i2i-fancy'"):
        load_model(folder)


def test_config_that_does_not_fit_the_weights(tmp_path):
    folder = _tiny_model(tmp_path)
    config = json.loads((folder / "config.json").read_text())
    config["generators"]["AtoB"]["kwargs"]["ngf"] = 16
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=r"model\.1\.\w+ is \(8,?.*\) in the file"):
        load_model(folder)
    config["generators"]["AtoB"].update(name="resnet9", kwargs={"ngf": 8})
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="do not match its network"):
        load_model(folder)
    config["generators"]["AtoB"]["kwargs"] = {"ngf": 8, "wings": 2}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="wings"):
        load_model(folder)


def test_not_a_model(tmp_path):
    with pytest.raises(CheckpointError, match=r"no config\.json"):
        read_config(tmp_path)
    (tmp_path / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(CheckpointError, match="not an i2i model"):
        read_config(tmp_path)
    (tmp_path / "config.json").write_text("{oops")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        read_config(tmp_path)


def test_corrupt_weights_file(tmp_path):
    folder = _tiny_model(tmp_path)
    (folder / "model.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(CheckpointError, match="cannot read"):
        load_model(folder)


def test_cli_export(run_dir, tmp_path):
    result = CliRunner().invoke(cli, ["export", str(run_dir), "-o", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "m" / "model.safetensors").is_file()
    result = CliRunner().invoke(cli, ["export", str(run_dir), "-o", str(tmp_path / "m")])
    assert result.exit_code == 1 and "--overwrite" in result.output


@pytest.mark.parametrize(
    "flags, says",
    [
        (["--format", "onnx", "--with-discriminators"], "ONNX graphs hold the generators only"),
        (["--tolerance", "0.1"], "add --format onnx or drop --tolerance"),
    ],
)
def test_cli_export_refuses_flags_its_format_would_ignore(run_dir, tmp_path, flags, says):
    out = tmp_path / "m"
    result = CliRunner().invoke(cli, ["export", str(run_dir), "-o", str(out), *flags])
    assert result.exit_code == 1 and says in result.output
    assert len(result.output.strip().splitlines()) == 1 and not out.exists()


def test_i2i_load_accepts_a_run_and_a_model_folder(run_dir, tmp_path):
    from PIL import Image

    model = export_run(run_dir, tmp_path / "model")
    image = Image.new("RGB", (40, 28), (200, 120, 40))
    from_run = i2i.load(run_dir, device="cpu")(image, direction="AtoB")
    from_model = i2i.load(model, device="cpu")(image, direction="AtoB")
    assert from_run.size == (40, 28)
    assert list(from_run.tobytes()) == list(from_model.tobytes())
    assert repr(i2i.load(model, device="cpu")) == (
        "Translator(cyclegan; AtoB day->night: resnet6, BtoA night->day: resnet6; cpu, fp32, "
        "batch 1)"
    )


def test_overwrite_never_replaces_something_that_is_not_a_model(tmp_path):
    precious = tmp_path / "m"
    precious.mkdir()
    (precious / "thesis.tex").write_text("years of work")
    net = i2i.create_generator("resnet6", ngf=8)
    config = make_config("cyclegan", {"AtoB": net_spec(generators, "resnet6", {"ngf": 8})})
    with pytest.raises(I2IError, match="not an i2i model folder"):
        save_model(precious, config, {"AtoB": net}, overwrite=True)
    assert (precious / "thesis.tex").read_text() == "years of work"


def test_a_stale_backup_from_a_killed_overwrite_is_cleaned_up(tmp_path):
    folder = _tiny_model(tmp_path)
    (tmp_path / ".m.old").mkdir()  # a kill between the two renames left this behind
    (tmp_path / ".m.old" / "x").write_text("x")
    net = i2i.create_generator("resnet6", ngf=8)
    config = make_config("cyclegan", {"AtoB": net_spec(generators, "resnet6", {"ngf": 8})})
    save_model(folder, config, {"AtoB": net}, overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]
    assert oct(folder.stat().st_mode & 0o777) == "0o755"


def test_the_precision_that_ran_is_what_a_model_records(toy_data, tmp_path, monkeypatch):
    # fp16 on a CPU without AMX-FP16 runs fp32 (with a warning): the card must not say fp16
    monkeypatch.setattr("i2i.core.device.native_half", lambda device, dtype: False)
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match="running fp32 instead"):
        train("cyclegan", data=str(toy_data), out=str(out), max_steps=1, precision="fp16", **TINY)
    run = json.loads((out / "config.json").read_text())
    assert run["options"]["precision"] == "fp16" and run["precision"] == "fp32"
    model = export_run(out, tmp_path / "model")
    assert read_config(model)["training"]["precision"] == "fp32"
    assert "| precision | `fp32` |" in (model / "README.md").read_text()


def test_the_card_says_what_a_downloader_needs_and_what_is_true(toy_data, tmp_path):
    from i2i.models.card import render_card
    from i2i.models.safefiles import check_net_spec

    # no test split: the samples are training images, and the card says so
    shutil.copytree(toy_data, tmp_path / "data", ignore=shutil.ignore_patterns("test*"))
    run = tmp_path / "run"
    train("cyclegan", data=str(tmp_path / "data"), out=str(run), max_steps=1, **TINY)
    model = export_run(run, tmp_path / "model")
    card = (model / "README.md").read_text()
    assert "on training images (the data had no test split to hold out)" in card
    # a third party's generator: its package is recorded, installed by the card, named in errors
    config = read_config(model)
    config["generators"]["AtoB"].update(name="tinydown", plugin="myplugin", package="i2i-myplugin")
    config["metrics"] = {"AtoB/cycle_psnr": 12.483974774678549, "step": 4}
    card = render_card(config, repo_id="user/repo", revision="dev")
    assert "pip install i2i i2i-myplugin\ni2i pull user/repo@dev\n" in card
    assert 'i2i.load("user/repo@dev")' in card
    assert "| AtoB/cycle_psnr | 12.48 dB |" in card and "| step | 4 |" in card
    with pytest.raises(UnknownComponentError, match="not installed; pip install i2i-myplugin"):
        build_generators(config, {}, "cpu")
    for bad in ("x; rm -rf /", "a b", "", 3):
        with pytest.raises(CheckpointError, match='"package" must be a package name'):
            check_net_spec({**config["generators"]["AtoB"], "package": bad}, "AtoB")


def test_a_third_partys_network_records_the_package_that_provides_it(monkeypatch):
    monkeypatch.setattr(
        "i2i.core.plugins.plugin_package", lambda name: "i2i" if name == "i2i" else "i2i-x"
    )
    assert "package" not in net_spec(generators, "resnet6", {})  # i2i's own: nothing to add
    monkeypatch.setattr("i2i.core.plugins.plugin_package", lambda name: "i2i-x")
    assert net_spec(generators, "resnet6", {})["package"] == "i2i-x"


def test_checkpoints_past_eight_digits_are_kept_and_found_by_step():
    """Names sort as text (step_100000000 before step_99999999): pruning by name deleted the
    newest checkpoint once a run passed 10^8 steps."""
    import tempfile

    from i2i.models.checkpoint import latest_checkpoint, newest_checkpoint, save_checkpoint

    with tempfile.TemporaryDirectory() as run:
        net = {"G": torch.nn.Linear(1, 1)}
        for step in (99_999_998, 99_999_999, 100_000_000):
            save_checkpoint(Path(run), step, net, {"step": step}, keep=2)
        kept = sorted(p.name for p in (Path(run) / "checkpoints").glob("step_*"))
        assert kept == ["step_100000000", "step_99999999"]
        (Path(run) / "checkpoints" / "latest").unlink()
        assert latest_checkpoint(Path(run)).name == "step_100000000"
        assert newest_checkpoint(Path(run) / "checkpoints").name == "step_100000000"
