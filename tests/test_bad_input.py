"""Bad input as a new user gives it: broken data, impossible values, interrupted runs, tampered
models. Each row asserts the exit status, the one-line message (never a traceback), and that
nothing was lost or half-written; then a bounded kill -9 loop over checkpoint and log writes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors import safe_open

import i2i
from i2i.cli import cli
from i2i.core.registry import generators
from i2i.data import find_images
from i2i.models.export import export_run
from i2i.models.folder import make_config, net_spec, save_model, verify_model
from i2i.models.hub import push
from tests.conftest import TINY, tiny_cli_args
from tests.training import train

pytestmark = [
    pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning"),
]

TINY_FLAGS = [
    "--gen", "resnet6", "--ngf", "8", "--ndf", "8", "--load-size", "36", "--crop-size", "32",
    "--workers", "0", "--log-every", "1", "--sample-every", "1000", "--epochs", "1",
    "--epochs-decay", "1",
]  # fmt: skip


SMALL_NETS = ["--ngf", "4", "--ndf", "4", "--max-steps", "1"]


# -- the world the rows run in ------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory, toy_data) -> dict[str, Path]:
    """Good data, unreadable data, a finished 2-step run and a model exported from it."""
    root = tmp_path_factory.mktemp("bad_input")
    bad = root / "unreadable"
    shutil.copytree(toy_data / "trainB", bad / "trainB")
    (bad / "trainA").mkdir()
    (bad / "trainA" / "empty.jpg").write_bytes(b"")
    (bad / "trainA" / "text.jpg").write_text("not an image\n")
    good = sorted((toy_data / "trainA").iterdir())[0].read_bytes()
    (bad / "trainA" / "truncated.jpg").write_bytes(good[: len(good) // 3])
    run = root / "run"
    train("cyclegan", data=str(toy_data), out=str(run), max_steps=2, **TINY)
    model = export_run(run, root / "model")
    image = root / "photo.png"
    Image.effect_noise((32, 32), 40).convert("RGB").save(image)
    return {"data": toy_data, "bad": bad, "run": run, "model": model, "image": image}


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` and a hash of its bytes: "nothing lost or half-written"."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "tensorboard" not in p.parts
    }


@dataclass
class Case:
    """One bad input: argv built from the test's folders, and what must come of it."""

    name: str
    argv: Callable[[dict[str, Path]], list[str]]
    message: str  # a fragment of the one-line error
    prepare: Callable[[dict[str, Path]], None] = lambda w: None
    # Folders (keys of the world) that must be byte for byte as before.
    untouched: tuple[str, ...] = ()
    # Folders that must not exist afterwards (nothing half-written).
    absent: tuple[str, ...] = ("out",)
    code: int = 1
    env: dict[str, str] = field(default_factory=dict)


def _train(*flags: str) -> Callable[[dict[str, Path]], list[str]]:
    return lambda w: ["train", "cyclegan", "--data", str(w["data"]), "--out", str(w["out"]), *flags]


def _resume(*flags: str) -> Callable[[dict[str, Path]], list[str]]:
    return lambda w: ["train", "cyclegan", "--resume", str(w["run"]), *flags]


def _apply(w: dict[str, Path]) -> list[str]:
    return ["apply", str(w["model"]), str(w["image"]), "-o", str(w["out"])]


def _edit_model_config(change: Callable[[dict], None]) -> Callable[[dict[str, Path]], None]:
    def prepare(w: dict[str, Path]) -> None:
        path = w["model"] / "config.json"
        config = json.loads(path.read_text())
        change(config)
        path.write_text(json.dumps(config))

    return prepare


def _write(key: str, name: str, data: bytes) -> Callable[[dict[str, Path]], None]:
    return lambda w: (w[key] / name).write_bytes(data)


def _yaml(text: str) -> Callable[[dict[str, Path]], None]:
    return _write("tmp", "options.yaml", text.encode())


def _tamper_state(w: dict[str, Path]) -> None:
    """A state.pt that would run code when unpickled without weights_only."""
    import pickle

    class Exploit:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    latest = (w["run"] / "checkpoints" / "latest").read_text().strip()
    with open(w["run"] / "checkpoints" / latest / "state.pt", "wb") as f:
        pickle.dump({"step": Exploit()}, f)


def _put(key: str, value) -> Callable[[dict], None]:
    return lambda config: config.__setitem__(key, value)


def _gen_kwargs(value) -> Callable[[dict], None]:
    return lambda config: config["generators"]["AtoB"].__setitem__("kwargs", value)


CASES = [
    # 1. fake success
    Case(
        "unreadable-domain",
        lambda w: [
            "train",
            "cyclegan",
            "--data",
            str(w["bad"]),
            "--out",
            str(w["out"]),
            *TINY_FLAGS,
        ],
        "no readable image in domain A",
    ),
    Case("negative-batch", _train("--batch-size", "-1"), "--batch-size must be at least 1"),
    Case(
        "zero-epochs",
        _train(*TINY_FLAGS, "--epochs", "0", "--epochs-decay", "0"),
        "nothing to train",
    ),
    Case("zero-max-steps", _train(*TINY_FLAGS, "--max-steps", "0"), "--max-steps is 0"),
    # 4. one line, not a traceback
    Case("zero-batch", _train("--batch-size", "0"), "--batch-size must be at least 1"),
    Case("zero-save-every", _train("--save-every", "0"), "--save-every must be at least 1"),
    Case("zero-log-every", _train("--log-every", "0"), "--log-every must be at least 1"),
    Case("negative-lr", _train("--lr", "-1"), "--lr must be at least 0"),
    Case("zero-ngf", _train("--ngf", "0"), "--ngf must be at least 1"),
    Case("nan-lr", _train("--lr", "nan"), "--lr must be a finite float, got nan"),
    Case("negative-workers", _train("--workers", "-1"), "--workers must be at least 0"),
    Case(
        "yaml-gen-kw-number",
        lambda w: [*_train()(w), "--config", str(w["tmp"] / "options.yaml")],
        "--gen-kw takes KEY=VALUE pairs",
        prepare=_yaml("gen_kw: 5\n"),
    ),
    Case(
        "yaml-batch-true",
        lambda w: [*_train()(w), "--config", str(w["tmp"] / "options.yaml")],
        "--batch-size must be an int, got True",
        prepare=_yaml("batch_size: true\n"),
    ),
    Case(
        "convert-empty-pth",
        lambda w: [
            "convert",
            "official",
            str(w["tmp"] / "empty.pth"),
            "--gen",
            "resnet6",
            "-o",
            str(w["out"]),
        ],
        "is not a plain PyTorch state dict",
        prepare=_write("tmp", "empty.pth", b""),
    ),
    Case(
        "model-format-version-string",
        _apply,
        '"format_version" must be a whole number',
        prepare=_edit_model_config(_put("format_version", "2")),
    ),
    Case(
        "model-generators-missing",
        _apply,
        '"generators" must map',
        prepare=_edit_model_config(lambda c: c.pop("generators")),
    ),
    Case(
        "model-generators-null",
        _apply,
        '"generators" must map',
        prepare=_edit_model_config(_put("generators", None)),
    ),
    Case(
        "model-kwargs-string",
        _apply,
        '"kwargs" must be a mapping',
        prepare=_edit_model_config(_gen_kwargs("ngf=8")),
    ),
    # 3. untrusted config: checked against the header before any allocation
    Case(
        "model-huge-ngf",
        _apply,
        "model.1.weight is (8, 3, 7, 7) in the file but (20000, 3, 7, 7)",
        prepare=_edit_model_config(_gen_kwargs({"ngf": 20000})),
    ),
    Case(
        "model-weights-are-a-pickle",
        _apply,
        "not a safetensors file",
        prepare=lambda w: torch.save({"x": torch.zeros(2)}, w["model"] / "model.safetensors"),
    ),
    Case("pull-dotdot", lambda w: ["pull", "a/.."], "not a valid Hub repo id"),
    Case(
        "tampered-state-resume",
        _resume("--max-steps", "4"),
        "is damaged or holds more than tensors",
        prepare=_tamper_state,
    ),
    Case(
        "tampered-state-export",
        lambda w: ["export", str(w["run"]), "-o", str(w["out"])],
        "is damaged or holds more than tensors",
        prepare=_tamper_state,
    ),
    # 5. resume is explicit
    Case(
        "resume-new-lr",
        _resume("--lr", "0.1"),
        "--lr 0.0002 -> 0.1",
        untouched=("run",),
    ),
    Case(
        "resume-other-data",
        lambda w: ["train", "cyclegan", "--resume", str(w["run"]), "--data", str(w["bad"])],
        "--data",
        untouched=("run",),
    ),
    Case(
        "resume-new-batch-and-gen",
        _resume("--batch-size", "2", "--gen", "resnet9"),
        "--batch-size 1 -> 2, --gen 'resnet6' -> 'resnet9'",
        untouched=("run",),
    ),
    Case(
        "resume-with-a-recipe",  # every option the recipe would change, not only its name
        _resume("--recipe", "quality"),
        "--lambda-shift 0.0 -> 10.0, --lambda-cycle 10.0 -> 1.0, --lambda-identity 0.5 -> 0.0, --pool-size 50 -> 0",
        untouched=("run",),
    ),
    Case(
        "resume-finished-run",
        _resume(),
        "has already trained 2 steps; to train longer",
        untouched=("run",),
    ),
    Case(
        "resume-with-fewer-steps",
        _resume("--max-steps", "1"),
        "has already trained 2 steps (asked for 1)",
        untouched=("run",),
    ),
    Case("device-that-computes-nothing", _train("--device", "meta"), "computes nothing"),
    Case(
        "export-a-model-folder",
        lambda w: ["export", str(w["model"]), "-o", str(w["tmp"] / "again")],
        "is a model folder already",
    ),
    # 6. smaller
    Case("gen-kw-ngf-with-ngf", _train("--ngf", "8", "--gen-kw", "ngf=4"), "use --ngf 4"),
    Case("gen-kw-ngf-abc", _train("--gen-kw", "ngf=abc"), "use --ngf abc"),
    Case(
        "gen-kw-wrong-type",
        _train("--gen", "resnet6", "--gen-kw", "antialias=[1]"),
        "argument antialias must be bool, got [1]",
    ),
    Case(
        "gen-kw-n-blocks-on-resnet9",
        _train("--gen", "resnet9", "--gen-kw", "n_blocks=6"),
        "takes no argument 'n_blocks'",
    ),
    Case("unknown-loss-names-its-list", _train("--gan-loss", "lsgn"), "`i2i list losses`"),
    Case(
        "crop-too-small-for-the-critics",
        _train(*SMALL_NETS, "--gen", "resnet6", "--crop-size", "8", "--load-size", "8"),
        "--crop-size 8 is too small for these networks: a feature map shrinks to 1x1",
    ),
    Case(
        "crop-unsuited-to-the-generator",
        _train(*SMALL_NETS, "--gen", "unet128", "--crop-size", "32", "--load-size", "36"),
        "--crop-size 32 does not suit these networks: unet128 needs height and width divisible "
        "by 128; use --crop-size 128 with --load-size 128 or more, or another --gen",
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_is_one_line_and_changes_nothing(case: Case, world, tmp_path, monkeypatch):
    w = {"out": tmp_path / "out", "tmp": tmp_path}
    for key in ("run", "model"):
        w[key] = tmp_path / key
        shutil.copytree(world[key], w[key])
    w.update({k: world[k] for k in ("data", "bad", "image")})
    case.prepare(w)
    before = {key: snapshot(w[key]) for key in case.untouched}
    monkeypatch.delenv("I2I_DEBUG", raising=False)
    result = CliRunner().invoke(cli, case.argv(w))
    assert result.exit_code == case.code, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and case.message in lines[0], result.output
    assert "Traceback" not in result.output and "weights_only" not in result.output
    for key in case.absent:
        assert not w[key].exists(), f"{w[key]} was written"
    for key in case.untouched:
        assert snapshot(w[key]) == before[key], f"{key} changed"


def test_debug_switch_shows_the_traceback(monkeypatch, tmp_path):
    monkeypatch.setenv("I2I_DEBUG", "1")
    result = CliRunner().invoke(cli, ["train", "cyclegan", "--lr", "-1", "--out", str(tmp_path)])
    assert isinstance(result.exception, i2i.I2IError)


# -- what must work ------------------------------------------------------------------------------
def test_torn_loss_log_is_dropped_with_a_warning_by_resume_and_export(world, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(world["run"], run)
    log = run / "losses.jsonl"
    good = log.read_text()
    log.write_text(good + '{"step": 196, "epoch": 49, "ti')
    runner = CliRunner()
    result = runner.invoke(cli, ["export", str(run), "-o", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["train", "cyclegan", "--resume", str(run), "--max-steps", "3"])
    assert result.exit_code == 0, result.output
    assert "not complete records" in result.output
    records = [json.loads(line) for line in log.read_text().splitlines()]  # all parse now
    assert [r["step"] for r in records] == [2, 3]  # logged every 2 steps, and the last


def test_a_crash_while_trimming_the_log_leaves_the_old_log(tmp_path, monkeypatch):
    """The rewrite on resume goes through a temporary file and a rename: dying before the
    rename (here: an exception in place of the rename) leaves the old log whole."""
    import i2i.models.checkpoint as checkpoint
    from i2i.models.losslog import trim_after

    log = tmp_path / "losses.jsonl"
    old = "".join(json.dumps({"step": s, "loss": 1.0}) + "\n" for s in range(1, 6))
    log.write_text(old)

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoint.os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        trim_after(log, 3)
    assert log.read_text() == old
    assert [p.name for p in tmp_path.iterdir()] == ["losses.jsonl"]  # no temp file left
    monkeypatch.undo()
    trim_after(log, 3)
    assert [json.loads(line)["step"] for line in log.read_text().splitlines()] == [1, 2, 3]


def test_resume_applies_and_records_options_that_change_no_maths(world, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(world["run"], run)
    result = CliRunner().invoke(
        cli, ["train", "cyclegan", "--resume", str(run), "--max-steps", "3", "--log-every", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "--log-every 2 -> 3" in result.output
    options = json.loads((run / "config.json").read_text())["options"]
    assert options["max_steps"] == 3 and options["log_every"] == 3


def test_a_run_with_relative_data_resumes_from_another_directory(toy_data, tmp_path, monkeypatch):
    shutil.copytree(toy_data, tmp_path / "ds")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    train("cyclegan", data="sub/../ds", out="./sub/../run", max_steps=1, **TINY)
    options = json.loads((tmp_path / "run" / "config.json").read_text())["options"]
    # recorded (and printed) as the shell reads them: absolute, without "." and ".."
    assert options["data"] == str(tmp_path / "ds") and options["out"] == str(tmp_path / "run")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert train("cyclegan", resume=str(tmp_path / "run"), max_steps=2).step == 2


def test_summary_lists_only_files_that_exist(toy_data, tmp_path, capsys):
    options = {**TINY, "log_every": 1000, "sample_every": 1000}
    train("cyclegan", data=str(toy_data), out=str(tmp_path / "run"), max_steps=1, **options)
    summary = capsys.readouterr().out.splitlines()
    assert summary[0] == "Finished 1 steps." and summary[-1].startswith("Next: i2i export")
    listed = {}
    for line in summary[1:-1]:
        *name, path = line.split()
        listed[" ".join(name)] = Path(path)
    assert {"run folder", "config", "checkpoint", "losses"} <= set(listed), summary
    for name, path in listed.items():
        assert path.exists() and path.is_relative_to(tmp_path / "run"), (name, path)


def test_symlink_to_a_folder_above_is_not_followed(toy_data, tmp_path):
    shutil.copytree(toy_data, tmp_path / "ds")
    (tmp_path / "ds" / "trainA" / "loop").symlink_to("..")
    (tmp_path / "ds" / "trainA" / "more").symlink_to(tmp_path / "ds" / "testA")
    found = find_images(tmp_path / "ds" / "trainA")
    names = {p.relative_to(tmp_path / "ds" / "trainA").parts[0] for p in found}
    assert "loop" not in names and "more" in names  # links elsewhere still count
    assert len(found) == len(list((toy_data / "trainA").iterdir())) + 2


def test_files_follow_the_umask(world, tmp_path):
    previous = os.umask(0o022)
    try:
        run = tmp_path / "run"
        train("cyclegan", data=str(world["data"]), out=str(run), max_steps=1, **TINY)
        model = export_run(run, tmp_path / "model")
    finally:
        os.umask(previous)
    latest = run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()
    for path, mode in [
        (latest, 0o755),
        (latest / "networks.safetensors", 0o644),
        (run / "config.json", 0o644),
        (model, 0o755),
        (model / "model.safetensors", 0o644),
        (model / "config.json", 0o644),
    ]:
        assert path.stat().st_mode & 0o777 == mode, path


def test_readme_gen_kw_example_builds(world):
    net = i2i.create_generator("resnet9", ngf=8, padding="zero")
    assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 3, 32, 32)


def test_huge_config_allocates_nothing_before_the_check(world, tmp_path, monkeypatch):
    """The networks are planned on the meta device: no real parameter is made for 20000."""
    model = tmp_path / "model"
    shutil.copytree(world["model"], model)
    _edit_model_config(_gen_kwargs({"ngf": 20000}))({"model": model})
    made = []
    real_empty = torch.nn.Parameter.__new__

    def watch(cls, data=None, requires_grad=True):
        if data is not None and data.device.type != "meta":
            made.append(data.numel())
        return real_empty(cls, data, requires_grad)

    monkeypatch.setattr(torch.nn.Parameter, "__new__", watch)
    with pytest.raises(i2i.I2IError, match="in the file but"):
        verify_model(model)
    with pytest.raises(i2i.I2IError, match="in the file but"):
        i2i.load(str(model), device="cpu")
    assert not made


# -- the Hub ------------------------------------------------------------------------------------
def _hub_model(folder: Path, samples: bool) -> Path:
    spec = net_spec(generators, "resnet6", {"ngf": 8})
    config = make_config("cyclegan", {"AtoB": spec}, size=32)
    grid = None
    if samples:
        grid = folder.parent / f"{folder.name}-samples.png"
        Image.new("RGB", (8, 8)).save(grid)
    return save_model(folder, config, {"AtoB": i2i.create_generator("resnet6", ngf=8)},
                      samples=grid)  # fmt: skip


def _upload_as_is(hub, model: Path, repo: str) -> None:
    """A repo made by someone else's tool: i2i's push would refuse these folders."""
    from huggingface_hub import HfApi

    api = HfApi(token=hub.token)
    api.create_repo(repo, exist_ok=True)
    api.upload_folder(folder_path=str(model), repo_id=repo)


def test_pull_checks_the_header_and_the_config_before_ok(hub, tmp_path):
    repo = hub.unique_repo_id("tampered")
    model = _hub_model(tmp_path / "m", samples=False)
    config = json.loads((model / "config.json").read_text())
    config["generators"]["AtoB"]["kwargs"]["ngf"] = 20000
    (model / "config.json").write_text(json.dumps(config))
    with pytest.raises(i2i.I2IError, match="in the file but"):
        push(model, repo, token=hub.token)  # never sent from here
    _upload_as_is(hub, model, repo)
    result = CliRunner().invoke(cli, ["pull", repo])
    assert result.exit_code == 1 and "in the file but" in result.output, result.output

    repo = hub.unique_repo_id("pickle")
    model = _hub_model(tmp_path / "p", samples=False)
    torch.save({"x": torch.zeros(1)}, model / "model.safetensors")
    _upload_as_is(hub, model, repo)
    result = CliRunner().invoke(cli, ["pull", repo])
    assert result.exit_code == 1 and "not a safetensors file" in result.output, result.output


def test_repushing_without_samples_removes_the_old_samples(hub, tmp_path):
    repo = hub.unique_repo_id("samples")
    push(_hub_model(tmp_path / "with", samples=True), repo, token=hub.token)
    assert "samples.png" in hub.files(repo, "main")
    push(_hub_model(tmp_path / "without", samples=False), repo, token=hub.token)
    assert "samples.png" not in hub.files(repo, "main")


# -- kill -9 while writing checkpoints and the loss log, then resume -----------------------------
def _wait_for(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def _latest_step(run: Path) -> int:
    pointer = run / "checkpoints" / "latest"
    return int(pointer.read_text().strip().removeprefix("step_")) if pointer.is_file() else 0


@pytest.mark.slow
def test_kill_9_during_writes_then_resume(toy_data, tmp_path):
    """A checkpoint and a log line every step; kill -9 at a different moment each time. Every
    kill leaves a loadable checkpoint and a readable log, and the run resumes to the end."""
    run = tmp_path / "run"
    total = 40
    first = [*tiny_cli_args(toy_data, run), "--max-steps", str(total), "--save-every", "1",
             "--log-every", "1", "--sample-every", "1000", "--epochs", "4", "--epochs-decay", "4",
             "--keep-checkpoints", "1"]  # fmt: skip
    again = [sys.executable, "-m", "i2i", "train", "cyclegan", "--resume", str(run)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for attempt in range(3):
        argv = [sys.executable, *first] if attempt == 0 else again
        before = _latest_step(run)
        proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        _wait_for(lambda: _latest_step(run) > before + 1 + attempt, timeout=90)  # noqa: B023
        time.sleep(0.013 * attempt)  # a different point of the write cycle each time
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert _latest_step(run) > before, proc.stderr.read().decode()[-2000:]
        latest = run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()
        with safe_open(str(latest / "networks.safetensors"), "pt") as f:
            assert len(list(f.keys())) > 0
        assert (run / "losses.jsonl").stat().st_size > 0  # never emptied by a rewrite
    done = subprocess.run(again, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    steps = [json.loads(line)["step"] for line in (run / "losses.jsonl").read_text().splitlines()]
    assert steps == list(range(1, total + 1))
    export_run(run, tmp_path / "model")


def test_a_file_where_an_output_folder_goes_is_named(tmp_path):
    from i2i.core.errors import WriteError, writing

    (tmp_path / "afile").write_text("")
    target = tmp_path / "afile" / "sub" / "out"
    said = r"afile is a file, not a folder; choose another"
    with pytest.raises(WriteError, match=said), writing(target):
        target.mkdir(parents=True)
