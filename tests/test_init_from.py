"""--init-from: a new run starts from a model's weights (folder, run or Hub id), only where the
architecture is the same; a resumed run keeps its own."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

import i2i
from i2i.cli import cli
from i2i.models.export import export_run
from i2i.models.hub import push
from i2i.train.trainer import Trainer
from tests.conftest import TINY
from tests.training import train

# lr 0: the run's one step leaves every weight as it was loaded, so the export shows the start.
STILL = {**TINY, "lr": 0.0, "max_steps": 1}


@pytest.fixture(scope="module")
def trained(toy_data, tmp_path_factory):
    """A run of two steps and its export with discriminators."""
    root = tmp_path_factory.mktemp("base")
    train("cyclegan", data=str(toy_data), out=str(root / "run"), max_steps=2, seed=1, **TINY)
    model = export_run(root / "run", root / "model", with_discriminators=True)
    return root / "run", model


def _weights(model):
    return load_file(str(model / "model.safetensors"))


def _assert_same(a, b, prefixes):
    keys = [k for k in a if k.startswith(prefixes)]
    assert keys and all(torch.equal(a[k], b[k]) for k in keys)


def test_a_run_starts_from_a_model_with_its_discriminators(trained, toy_data, tmp_path, capsys):
    _, model = trained
    run = tmp_path / "tuned"
    train("cyclegan", data=str(toy_data), out=str(run), init_from=str(model), seed=7, **STILL)
    assert f"weights from {model} (generators G_AB, G_BA, discriminators D_A, D_B)" in (
        capsys.readouterr().err
    )
    tuned = export_run(run, tmp_path / "tuned_model", with_discriminators=True)
    _assert_same(_weights(model), _weights(tuned), ("AtoB.", "BtoA.", "D_A.", "D_B."))


def test_a_run_folder_and_a_model_without_discriminators_also_start_a_run(
    trained, toy_data, tmp_path, capsys
):
    run_dir, model = trained
    train("cyclegan", data=str(toy_data), out=str(tmp_path / "a"), init_from=str(run_dir), **STILL)
    assert "discriminators D_A, D_B)" in capsys.readouterr().err
    _assert_same(_weights(model), _weights(export_run(tmp_path / "a", tmp_path / "ma")), ("AtoB.",))

    plain = export_run(run_dir, tmp_path / "plain")  # generators only
    train("cyclegan", data=str(toy_data), out=str(tmp_path / "b"), init_from=str(plain), **STILL)
    assert "(generators G_AB, G_BA; fresh D_A, D_B)" in capsys.readouterr().err


def test_a_model_of_another_architecture_is_refused_and_leaves_no_run(trained, toy_data, tmp_path):
    _, model = trained
    out = tmp_path / "wrong"
    args = ["train", "cyclegan", "--data", str(toy_data), "--out", str(out), "--gen", "resnet6"]
    args += ["--ngf", "16", "--ndf", "8", "--load-size", "64", "--crop-size", "64"]
    args += ["--max-steps", "1", "--init-from", str(model)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert result.output.count("\n") == 1
    assert "generator differs from this run's in --ngf (model 8, this run 16)" in result.output
    assert not out.exists()
    residual = CliRunner().invoke(cli, [*args[:8], "--gen-kw", "residual=true", *args[8:]])
    assert "; --gen-kw residual=... (model False, this run True);" in residual.output
    grey = CliRunner().invoke(cli, [*args[:8], "--channels-a", "1", *args[8:]])
    assert "--channels-a/--channels-b (model 3, this run 1)" in grey.output
    missing = CliRunner().invoke(cli, [*args[:-1], str(tmp_path / "nothing")])
    assert missing.exit_code == 1 and "not a folder, and not a Hub id" in missing.output
    empty = CliRunner().invoke(cli, [*args[:-1], ""])
    assert empty.exit_code == 1 and "--init-from is empty" in empty.output
    long = CliRunner().invoke(cli, [*args[:-1], "a" * 5000])
    assert long.exit_code == 1 and "File name too long" in long.output
    assert long.output.count("\n") == 1
    assert not out.exists()


def test_a_resumed_run_keeps_its_weights_without_the_model(trained, toy_data, tmp_path):
    _, model = trained
    copy = shutil.copytree(model, tmp_path / "copy")
    run = tmp_path / "run"
    train("cyclegan", data=str(toy_data), out=str(run), init_from=str(copy), **STILL)
    shutil.rmtree(copy)
    assert train("cyclegan", resume=str(run), max_steps=2).step == 2


def test_a_run_stopped_before_its_first_checkpoint_starts_again_from_the_model(
    trained, toy_data, tmp_path, monkeypatch, capsys
):
    """--resume of a run with no checkpoint yet trains from step 0: from the model again, whose
    folder was recorded absolute (the resume runs from another working directory)."""
    _, model = trained
    monkeypatch.chdir(model.parent)
    run = tmp_path / "run"
    args = {"data": str(toy_data), "out": str(run), "init_from": model.name, "seed": 7, **STILL}
    task = i2i.create_task("cyclegan", **args)
    assert task.config["init_from"] == str(model)
    Trainer(task).folder.release(failed=False)  # set up, then stopped before any step
    monkeypatch.chdir(tmp_path)
    train("cyclegan", resume=str(run), max_steps=1)
    assert f"weights from {model} (generators" in capsys.readouterr().err
    tuned = export_run(run, tmp_path / "m", with_discriminators=True)
    _assert_same(_weights(model), _weights(tuned), ("AtoB.", "BtoA.", "D_A."))


def test_a_run_starts_from_a_hub_model(hub, trained, toy_data, tmp_path):
    _, model = trained
    repo = hub.unique_repo_id("init-from")
    push(model, repo, token=hub.token)
    run = tmp_path / "from_hub"
    info = push(model, repo, token=hub.token)  # a second commit: the run names the one it got
    train("cyclegan", data=str(toy_data), out=str(run), init_from=repo, **STILL)
    _assert_same(_weights(model), _weights(export_run(run, tmp_path / "m")), ("AtoB.", "BtoA."))
    recorded = json.loads((run / "config.json").read_text())["started_from"]
    assert recorded == f"{repo}@{info.oid}"
    train("cyclegan", resume=str(run), max_steps=2)  # a resumed run keeps the record
    assert json.loads((run / "config.json").read_text())["started_from"] == recorded
    exported = json.loads((export_run(run, tmp_path / "m2") / "config.json").read_text())
    assert exported["training"]["init_from"] == recorded  # the model card says it too


def test_a_generator_with_broken_sampling_arguments_is_named(monkeypatch):
    from i2i.core.errors import I2IError
    from i2i.core.registry import generators
    from i2i.train.init_from import sampling_arguments

    assert sampling_arguments(generators, "unsb_resnet6") == {"tau", "sample_steps"}
    assert sampling_arguments(generators, "resnet9") == frozenset()
    monkeypatch.setattr(generators.get("resnet9").factory, "sampling_arguments", 3, raising=False)
    with pytest.raises(I2IError, match=r"resnet9 \(from i2i\) has sampling_arguments 3"):
        sampling_arguments(generators, "resnet9")
    monkeypatch.setattr(generators.get("resnet9").factory, "sampling_arguments", ("taus",))
    with pytest.raises(I2IError, match="must be a tuple of its own argument names"):
        sampling_arguments(generators, "resnet9")
