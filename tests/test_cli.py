"""The CLI through click's runner and as a real subprocess; user errors are one line."""

import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

import i2i
from i2i.cli import cli


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert i2i.__version__ in result.output


def test_list_one_kind_with_pattern_shows_name_plugin_summary():
    result = invoke("list", "generators", "resnet*")
    assert result.exit_code == 0
    assert "resnet9" in result.output and "resnet6" in result.output
    assert "unet256" not in result.output
    assert "│ i2i " in result.output  # the built-in parts' plugin


def test_list_everything_and_singular_kind():
    result = invoke("list")
    assert result.exit_code == 0
    for name in ("resnet9", "patchgan", "lsgan", "hflip", "cyclegan"):
        assert name in result.output
    assert "patchgan" in invoke("list", "discriminator").output


def test_list_unknown_kind_is_a_usage_error():
    result = invoke("list", "widgets")
    assert result.exit_code == 2
    assert "generators" in result.output


def test_describe_shows_parameters_and_defaults():
    result = invoke("describe", "resnet9")
    assert result.exit_code == 0
    assert "ngf" in result.output and "64" in result.output and "instance" in result.output


def test_describe_a_task_lists_its_training_options():
    result = invoke("describe", "cyclegan")
    assert result.exit_code == 0
    rows = {}  # first table line of each option: its cells
    for line in result.output.splitlines():
        cells = [cell.strip() for cell in line.strip("│ ").split("│")]
        if cells[0].isidentifier() and cells[0] not in rows:
            rows[cells[0]] = cells
    for name in ("lambda_cycle", "pool_size", "crop_size", "epochs_decay"):
        assert name in rows
    # each option with its type, default and the start of its help text
    assert rows["lambda_cycle"][1:3] == ["float", "10.0"]
    assert rows["crop_size"][-1].startswith("Random crop size")
    assert "One of: resize_crop" in rows["preprocess"][-1]
    # the values the recipe sets, in its column of the groups it touches
    assert rows["ema_decay"][2:4] == ["0.0", "0.999"]
    assert rows["lambda_cycle"][2:4] == ["10.0", "1.0"]
    assert rows["gen_kw"][3].startswith("antialias=True")  # wrapped: residual=True below
    assert rows["pool_size"][2:4] == ["50", "0"]
    # brackets in help text are text, not rich markup (they were dropped)
    assert "USER/REPO[@REVISION]" in "".join(result.output.split())
    assert rows["lambda_a"][3] == ""  # the recipe leaves it
    for group in ("CycleGANOptions", "GANOptions", "AugmentationOptions", "RunOptions"):
        assert f"\n{group}" in result.output


def test_unknown_component_is_one_line_without_traceback():
    result = invoke("describe", "resnt9")
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert "did you mean generator 'resnet9'?" in lines[0]


def test_describe_names_the_kind_a_misspelling_is_closest_to():
    said = invoke("describe", "lsgn").output
    assert "nothing is registered as 'lsgn'; did you mean loss 'lsgan'?" in said
    assert "did you mean task 'cyclegan'?" in invoke("describe", "cylegan").output
    for far in ("nothing_like_this", "foo", "lazygen"):  # no kind is guessed from a far name
        lines = invoke("describe", far).output.strip().splitlines()
        assert len(lines) == 1 and f"nothing is registered as '{far}' (`i2i list`" in lines[0]
    said = invoke("describe", "lsgn", "--kind", "losses").output  # a kind asked for: its names
    assert "unknown loss 'lsgn'; did you mean lsgan?" in said
    assert "--kind KIND" in invoke("describe", "--help").output


def test_an_empty_listing_and_a_component_without_arguments_say_so():
    result = invoke("list", "generators", "zzz*")
    assert result.exit_code == 0
    assert result.output.strip() == "nothing matches 'zzz*'; `i2i list generators` shows them all"
    assert "takes no arguments" in invoke("describe", "efficientnet_lite0").output


def test_plugins_table():
    result = invoke("plugins")
    assert result.exit_code == 0
    assert "cyclegan" in result.output and "register_tasks" in result.output


@pytest.mark.slow
def test_train_unknown_generator_and_kwarg_are_one_line_errors(tmp_path):
    result = invoke("train", "cyclegan", "--gen", "resnet99", "--out", str(tmp_path / "r"))
    assert result.exit_code == 1
    assert len(result.output.strip().splitlines()) == 1
    assert "resnet9" in result.output
    result = invoke("train", "cyclegan", "--gen-kw", "blocks=3", "--out", str(tmp_path / "r"))
    assert result.exit_code == 1
    assert "valid arguments" in result.output


def test_train_missing_data_folder_is_a_clear_error(tmp_path):
    result = invoke(
        "train", "cyclegan", "--data", str(tmp_path / "nope"), "--out", str(tmp_path / "r")
    )
    assert result.exit_code == 1
    assert "trainA" in result.output
    assert not (tmp_path / "r").exists()  # nothing half-written


@pytest.mark.slow
def test_real_subprocess():
    exe = shutil.which("i2i")
    assert exe, "the i2i console script is installed"
    out = subprocess.run([exe, "list", "generators"], capture_output=True, text=True, check=True)
    assert "resnet9" in out.stdout
    out = subprocess.run([sys.executable, "-m", "i2i", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and i2i.__version__ in out.stdout
    out = subprocess.run([exe, "describe", "nothing_like_this"], capture_output=True, text=True)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr


def test_bad_values_are_one_line_errors(tmp_path):
    for args, expected in [
        (["--gen-kw", "ngf=[1"], "cannot read the value"),
        (["--gen-kw", "ngf=abc"], "use --ngf abc"),
        (["--lr", "fast"], "fast"),
    ]:
        result = invoke("train", "cyclegan", *args, "--out", str(tmp_path / "r"))
        assert result.exit_code in (1, 2), result.output
        assert expected in result.output
        assert "Traceback" not in result.output


def test_resume_of_a_model_folder_is_a_clear_error(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text('{"format": "i2i-model", "task": "cyclegan"}')
    result = invoke("train", "cyclegan", "--resume", str(tmp_path / "m"))
    assert result.exit_code == 1
    assert "model folder, not a training run" in result.output


def test_a_bad_training_option_is_its_own_one_line_message():
    """The task checks its options: no "task 'cyclegan' cannot be built with {...}" in front."""
    result = invoke("train", "cyclegan", "--lr", "-1")
    assert result.exit_code == 1
    assert result.output.strip() == "Error: --lr must be at least 0, got -1.0"


@pytest.mark.parametrize(("rank", "printed"), [(None, True), ("0", True), ("1", False)])
def test_i2i_warnings_are_one_line_and_said_once_per_torchrun_job(
    monkeypatch, capsys, rank, printed
):
    from i2i.cli.group import _one_line_warnings
    from i2i.core.errors import I2IWarning

    if rank is None:
        monkeypatch.delenv("RANK", raising=False)
    else:
        monkeypatch.setenv("RANK", rank)
    monkeypatch.delenv("I2I_DEBUG", raising=False)
    others: list[str] = []
    shown = _one_line_warnings(lambda message, *args, **kw: others.append(str(message)))
    shown(I2IWarning("plugin 'x' failed"), I2IWarning, "f.py", 1)
    shown(UserWarning("a library's"), UserWarning, "f.py", 1)
    assert capsys.readouterr().err == ("warning: plugin 'x' failed\n" if printed else "")
    assert others == ["a library's"]  # other libraries' warnings: every process, as before


def test_a_process_of_a_torchrun_job_that_died_is_one_line_on_the_others(monkeypatch, tmp_path):
    """kill -9 of one worker: the others' collective fails in gloo, which was a 40-line
    traceback on every rank."""

    def peer_gone(task):
        raise RuntimeError(
            "[../third_party/gloo/gloo/transport/tcp/pair.cc:545] Read error [127.0.0.1]:"
            "41043: Connection reset by peer"
        )

    monkeypatch.setattr(i2i, "fit", peer_gone)
    argv = ["train", "cyclegan", "--out", str(tmp_path / "r"), "--max-steps", "1"]
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 1 and result.output.count("\n") == 1, result.output
    assert "Error: another process of this torchrun job ended" in result.output
    assert "a training with --resume RUN_FOLDER goes on from its last checkpoint" in result.output
    monkeypatch.setenv("WORLD_SIZE", "1")  # alone, the same error is news about i2i
    assert isinstance(CliRunner().invoke(cli, argv).exception, RuntimeError)

    def setup_error(task):
        raise RuntimeError("Distributed package doesn't have NCCL built in")

    monkeypatch.setattr(i2i, "fit", setup_error)
    monkeypatch.setenv("WORLD_SIZE", "2")  # not a process that died: the traceback stays
    assert isinstance(CliRunner().invoke(cli, argv).exception, RuntimeError)
    monkeypatch.setenv("WORLD_SIZE", "two")  # a hostile value: still the error, not a new one
    assert isinstance(CliRunner().invoke(cli, argv).exception, RuntimeError)
