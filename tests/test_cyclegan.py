"""The CycleGAN task: the paper's objective, exact resume, the run folder, and bad input."""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import i2i
from i2i.core.errors import DataError, I2IWarning, WriteError
from i2i.models.checkpoint import latest_checkpoint
from i2i.train.runtime import Runtime
from tests.conftest import TINY, tiny_cli_args
from tests.mean_shift_reference import first_step_shift_loss
from tests.training import resolve_config, train


def _task(toy_data: Path, **overrides):
    config = resolve_config("cyclegan", {"data": str(toy_data), **TINY, **overrides})
    torch.manual_seed(0)
    task = i2i.create_task("cyclegan", **config)
    task.attach(Runtime("cpu"))
    task.build({})
    return task


def _reference_step(nets, real_A, real_B, lam=10.0, lam_idt=0.5, lam_shift=0.0):
    """The paper's objective written out plainly, one network call per term, as the official
    code does it, plus the mean-shift term when weighted; returns the losses and the gradients
    of every parameter."""
    G_AB, G_BA, D_A, D_B = nets["G_AB"], nets["G_BA"], nets["D_A"], nets["D_B"]

    def mse(pred, target):
        return ((pred - target) ** 2).mean()

    fake_B, fake_A = G_AB(real_A), G_BA(real_B)
    rec_A, rec_B = G_BA(fake_B), G_AB(fake_A)
    idt_B, idt_A = G_AB(real_B), G_BA(real_A)
    losses = {
        "G_AB": mse(D_B(fake_B), 1.0),
        "G_BA": mse(D_A(fake_A), 1.0),
        "cycle_A": (rec_A - real_A).abs().mean() * lam,
        "cycle_B": (rec_B - real_B).abs().mean() * lam,
        "idt_A": (idt_A - real_A).abs().mean() * lam * lam_idt,
        "idt_B": (idt_B - real_B).abs().mean() * lam * lam_idt,
    }
    if lam_shift:  # one batch of 2 (of 6 toy images) seen
        for source, real, fake in (("A", real_A, fake_B), ("B", real_B, fake_A)):
            term = first_step_shift_loss(real, fake, real_A, real_B, source)
            losses[f"shift_{source}"] = term * lam_shift
    g_params = [*G_AB.parameters(), *G_BA.parameters()]
    g_grads = torch.autograd.grad(sum(losses.values()), g_params)
    # First step: the image pools hand back the fakes themselves.
    losses["D_A"] = 0.5 * (mse(D_A(real_A), 1.0) + mse(D_A(fake_A.detach()), 0.0))
    losses["D_B"] = 0.5 * (mse(D_B(real_B), 1.0) + mse(D_B(fake_B.detach()), 0.0))
    d_params = [*D_A.parameters(), *D_B.parameters()]
    d_grads = torch.autograd.grad(losses["D_A"] + losses["D_B"], d_params)
    return losses, g_grads, d_grads


@pytest.mark.parametrize(
    "norm,merged,shift",
    [("instance", True, 0.0), ("instance", False, 0.0), ("batch", False, 0.0),
     ("instance", True, 3.0), ("instance", False, 3.0)],
)  # fmt: skip
def test_one_step_equals_the_papers_objective(toy_data, norm, merged, shift):
    """Both generator phases: batched passes (GPUs) and one cycle at a time (CPU, batch norm);
    with the mean-shift term, the paper's objective plus that term as its docstring says."""
    task = _task(toy_data, norm=norm, lambda_shift=shift)
    assert task.merge_g is False  # on the CPU the lean phase is the default
    task.merge_g = merged
    reference_nets = copy.deepcopy(task.nets)
    torch.manual_seed(1)
    real_A, real_B = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    losses = task.train_step({"A": real_A, "B": real_B})
    ref_losses, g_grads, d_grads = _reference_step(reference_nets, real_A, real_B, lam_shift=shift)
    assert set(losses) == set(ref_losses)
    for key, value in ref_losses.items():
        torch.testing.assert_close(losses[key], value.detach(), rtol=1e-5, atol=1e-6, msg=key)
    got_g = [p.grad for n in ("G_AB", "G_BA") for p in task.nets[n].parameters()]
    got_d = [p.grad for n in ("D_A", "D_B") for p in task.nets[n].parameters()]
    for got, want in zip(got_g + got_d, list(g_grads) + list(d_grads), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(toy_data, tmp_path):
    """4 steps + resume + 4 steps == 8 steps (CPU, fixed seed), crossing an epoch boundary.

    Tolerance: exact equality is expected on CPU; we allow 1e-6 absolute for BLAS nondeterminism.
    """
    common = {"data": str(toy_data), **TINY, "epochs": 2, "epochs_decay": 1, "lambda_shift": 1.0}
    straight = train("cyclegan", out=str(tmp_path / "straight"), max_steps=8, **common)
    first = train("cyclegan", out=str(tmp_path / "resumed"), max_steps=4, **common)
    assert first.step == 4
    resumed = train("cyclegan", resume=str(tmp_path / "resumed"), max_steps=8)
    assert resumed.step == straight.step == 8
    log = (tmp_path / "resumed" / "losses.jsonl").read_text().splitlines()
    steps = [json.loads(line)["step"] for line in log if "G_AB" in line]
    assert steps == sorted(set(steps))  # no step logged twice across the resume
    a = load_file(str(straight.checkpoint / "networks.safetensors"))
    b = load_file(str(resumed.checkpoint / "networks.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)
    state_a = torch.load(straight.checkpoint / "state.pt", weights_only=True)
    state_b = torch.load(resumed.checkpoint / "state.pt", weights_only=True)
    task_a, task_b = state_a["per_rank"][0]["task"], state_b["per_rank"][0]["task"]
    torch.testing.assert_close(task_a["pool_A"]["images"], task_b["pool_A"]["images"])
    for name in ("set_sums", "seen", "shifts"):  # the mean shift's averages go on, not anew
        torch.testing.assert_close(task_a["mean_shift"][name], task_b["mean_shift"][name])
    assert task_b["mean_shift"]["seen"].flatten().tolist() == [8.0, 8.0]


def test_a_run_rolled_back_by_deleting_its_newest_checkpoint_goes_on_from_the_one_before(
    toy_data, tmp_path, capsys
):
    """Deleting the newest checkpoint (or the pointer) used to restart the run from step 0:
    the log cut to nothing and, as the new run reached their steps, the kept checkpoints
    deleted."""
    run = tmp_path / "run"
    common = {"data": str(toy_data), **TINY, "save_every": 2, "keep_checkpoints": 3}
    train("cyclegan", out=str(run), max_steps=6, **common)
    shutil.rmtree(run / "checkpoints" / "step_00000006")
    assert latest_checkpoint(run) == run / "checkpoints" / "step_00000004"
    resumed = train("cyclegan", resume=str(run), max_steps=8)
    said = capsys.readouterr().out
    assert "latest names step_00000006, which is gone or not whole; going on from " in said
    assert resumed.step == 8
    steps = [json.loads(line)["step"] for line in (run / "losses.jsonl").read_text().splitlines()]
    assert steps == [2, 4, 6, 8]  # steps 1-4 kept, 5-8 trained again
    (run / "checkpoints" / "latest").unlink()
    assert latest_checkpoint(run) == run / "checkpoints" / "step_00000008"
    assert train("cyclegan", resume=str(run), max_steps=10).step == 10
    assert "latest is missing; going on from step_00000008" in capsys.readouterr().out


def test_a_resume_on_data_that_changed_says_the_schedule_is_not_the_runs(toy_data, tmp_path):
    data, run = tmp_path / "data", tmp_path / "run"
    shutil.copytree(toy_data, data)
    train("cyclegan", data=str(data), out=str(run), max_steps=2, **TINY)
    assert json.loads((run / "config.json").read_text())["images_per_epoch"] == 6
    for image in list((data / "trainA").iterdir())[:3]:
        shutil.copy(image, image.with_name(f"more_{image.name}"))
    with pytest.warns(
        I2IWarning, match="now gives 9 images per epoch, 6 when the run last trained"
    ):
        train("cyclegan", resume=str(run), max_steps=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", I2IWarning)  # the same data again: nothing to say
        train("cyclegan", resume=str(run), max_steps=6)


def test_a_resume_removes_the_temp_files_of_a_killed_write(toy_data, tmp_path):
    run = tmp_path / "run"
    train("cyclegan", data=str(toy_data), out=str(run), max_steps=2, **TINY)
    stale = [run / "samples" / ".latest.png.r3c6nxhq", run / ".config.json.a_9bzzq1",
             run / "checkpoints" / ".latest.k2j4h5g6"]  # fmt: skip
    kept = [run / ".notes.txt", run / "samples" / ".mine.12345678.png"]
    for path in stale + kept:
        path.write_bytes(b"half")
    train("cyclegan", resume=str(run), max_steps=4)
    assert [p.exists() for p in stale + kept] == [False, False, False, True, True]


def test_a_checkpoint_pruned_while_export_reads_it_is_not_called_damaged(
    toy_data, tmp_path, monkeypatch
):
    """A run still training saves a newer checkpoint and prunes the one being read: export
    (and ``i2i.load``) said it was damaged, or raised torch's mmap error."""
    import i2i.models.checkpoint as checkpoint
    from i2i.models.export import run_to_model

    run = tmp_path / "run"
    train("cyclegan", data=str(toy_data), out=str(run), max_steps=2, **TINY)
    read = checkpoint.load_file
    saved, newer = run / "checkpoints" / "step_00000002", run / "checkpoints" / "step_00000004"

    def meanwhile_the_run_saves_and_prunes(path):
        if saved.exists():
            shutil.copytree(saved, newer)
            (run / "checkpoints" / "latest").write_text("step_00000004\n")
            shutil.rmtree(saved)
        return read(path)

    monkeypatch.setattr(checkpoint, "load_file", meanwhile_the_run_saves_and_prunes)
    _, weights, _ = run_to_model(run)
    assert set(weights) == {"AtoB", "BtoA"}
    (newer / "state.pt").write_bytes(b"damaged")  # a damaged one that stays is damaged
    with pytest.raises(i2i.I2IError, match=r"is damaged.*delete step_00000004 to go on from"):
        run_to_model(run)


def test_run_folder_contents(toy_data, tmp_path, capsys):
    out = tmp_path / "run"
    result = train("cyclegan", data=str(toy_data), out=str(out), max_steps=6, **{**TINY})
    assert f"i2i export {out} -o MODEL_DIR" in capsys.readouterr().out  # the closing summary
    config = json.loads((out / "config.json").read_text())
    assert config["task"] == "cyclegan"
    options = config["options"]
    assert options["lambda_identity"] == 0.5 and options["pool_size"] == 50
    assert options["gen"] == "resnet6" and options["ngf"] == 8
    assert config["generators"]["G_AB"]["name"] == "resnet6"
    assert config["generators"]["G_AB"]["kwargs"]["ngf"] == 8
    records = [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4, 6]
    assert {"G_AB", "cycle_A", "idt_B", "D_A", "lr"} <= set(records[0])
    assert (out / "loss_curve.png").is_file()
    assert (out / "samples" / "latest.png").is_file()
    assert (out / "samples" / "step_00000004.png").is_file()
    assert latest_checkpoint(out) == result.checkpoint
    weights = load_file(str(result.checkpoint / "networks.safetensors"))
    assert {k.split(".")[0] for k in weights} == {"G_AB", "G_BA", "D_A", "D_B"}
    from PIL import Image

    grid = Image.open(out / "samples" / "latest.png")
    assert grid.width >= 3 * 32 and grid.height >= 2 * 2 * 32  # 3 columns, 2 panels of 2 rows


def test_refuses_to_overwrite_a_run(toy_data, tmp_path):
    out = tmp_path / "run"
    train("cyclegan", data=str(toy_data), out=str(out), max_steps=1, **TINY)
    with pytest.raises(i2i.I2IError, match="--resume"):
        train("cyclegan", data=str(toy_data), out=str(out), max_steps=1, **TINY)


def test_corrupt_images_are_skipped_and_counted(toy_data, tmp_path, capsys):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(toy_data, data)
    (data / "trainA" / "zz_broken.png").write_bytes(b"not an image at all")
    result = train("cyclegan", data=str(data), out=str(tmp_path / "run"), max_steps=7, **TINY)
    assert result.step == 7
    err = capsys.readouterr()
    assert "zz_broken.png" in err.err + err.out
    state = torch.load(result.checkpoint / "state.pt", weights_only=True)
    assert any("zz_broken.png" in path for path in state["skipped"])


def test_empty_or_missing_domain_fails_before_training(tmp_path):
    (tmp_path / "trainA").mkdir()
    (tmp_path / "trainB").mkdir()
    with pytest.raises(DataError, match="trainA"):
        train("cyclegan", data=str(tmp_path), out=str(tmp_path / "run"), **TINY)
    assert not (tmp_path / "run").exists()


def test_config_file_and_flags(toy_data, tmp_path):
    cfg = tmp_path / "opts.yaml"
    cfg.write_text("lambda_cycle: 5.0\npool-size: 3\nngf: 4\n")
    config = resolve_config("cyclegan", {"data": str(toy_data), "ngf": 8}, str(cfg))
    assert config["lambda_cycle"] == 5.0 and config["pool_size"] == 3
    assert config["ngf"] == 8  # the command line wins
    cfg.write_text("lambda_cycel: 5.0\n")
    with pytest.raises(i2i.I2IError, match="lambda_cycel"):
        resolve_config("cyclegan", {}, str(cfg))


def test_any_registered_generator_can_be_named(toy_data, tmp_path):
    """A third party's generator that takes none of the usual kwargs trains too."""
    from torch import nn

    from i2i.core.plugins import register_plugin

    class Plugin:
        @staticmethod
        @i2i.hookimpl
        def register_generators(register):
            def shallow(in_channels: int = 3, out_channels: int = 3):
                """A one-layer generator."""
                return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.Tanh())

            register(shallow)

    if "shallow" not in i2i.core.registry.generators:
        register_plugin(Plugin, name="test-shallow")
    # settings that no network takes are said to be unused (--norm goes to the critics too)
    with pytest.warns(UserWarning) as caught:
        result = train(
            "cyclegan",
            data=str(toy_data),
            out=str(tmp_path / "r"),
            max_steps=2,
            **{**TINY, "gen": "shallow", "dropout": True, "norm": "batch"},
        )
    assert result.step == 2
    said = [str(w.message) for w in caught if "no network of this run" in str(w.message)]
    assert said == [
        "--ngf 8 and --dropout: no network of this run takes them (--gen shallow, --disc "
        "patchgan), so they are not used; `i2i describe NAME` lists what a network takes"
    ]
    with warnings.catch_warnings():  # the networks that take them: nothing to say
        warnings.simplefilter("error", I2IWarning)
        train("cyclegan", data=str(toy_data), out=str(tmp_path / "s"), max_steps=1, **TINY)
        # nor the built-in toy data's own defaults (ngf 16), which nobody asked for
        train("cyclegan", out=str(tmp_path / "toy"), max_steps=1, gen="shallow", workers=0)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_saves_a_checkpoint_and_says_how_to_resume(signum, toy_data, tmp_path):
    """Ctrl-C and SIGTERM (torchrun's, SLURM's, kill's) save and stop, with the exit status a
    shell gives for the signal: SIGTERM's was Ctrl-C's 130."""
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    args = [
        sys.executable,
        *tiny_cli_args(toy_data, out),
        *("--log-every", "1", "--epochs", "500", "--epochs-decay", "0"),
    ]
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.time() + 120
    while not (out / "losses.jsonl").exists() and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signum)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, output
    assert f"--resume {out}" in output
    assert latest_checkpoint(out) is not None


def test_a_stop_between_log_steps_logs_its_part_of_the_interval(toy_data, tmp_path):
    """Step 3 of a run stopped there was in no record: the run logged every 2 steps, and the
    resumed run's interval began after its checkpoint."""
    task = i2i.create_task(
        "cyclegan", data=str(toy_data), out=str(tmp_path / "run"), max_steps=8,
        **{**TINY, "log_every": 2},
    )  # fmt: skip
    step = task.train_step

    def ctrl_c_in_step_3(batch):
        if len(list((tmp_path / "run").glob("losses.jsonl"))) and not hasattr(task, "_hit"):
            task._hit = True
            os.kill(os.getpid(), signal.SIGINT)  # the first Ctrl-C: stop after this step
        return step(batch)

    task.train_step = ctrl_c_in_step_3
    assert i2i.fit(task).step == 3
    train("cyclegan", resume=str(tmp_path / "run"), max_steps=8)
    log = (tmp_path / "run" / "losses.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log] == [2, 3, 4, 6, 8]


@pytest.mark.parametrize("next_write", ["log", "checkpoint"])
@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_run_folder_deleted_while_training_is_said_to_be_gone(next_write, toy_data, tmp_path):
    """Deleted mid-run, the folder got "make the run folder writable, then --resume", or was
    made again by the next checkpoint, holding loose files that no --resume reads; and
    TensorBoard's writer thread printed a traceback of its own."""
    run = tmp_path / "run"
    every = {"log_every": 2, "save_every": 100} if next_write == "log" else {"log_every": 100}
    task = i2i.create_task(
        "cyclegan", data=str(toy_data), out=str(run), max_steps=8, **{**TINY, **every}
    )
    step = task.train_step

    def delete_in_step_1(batch):
        shutil.rmtree(run, ignore_errors=True)
        return step(batch)

    task.train_step = delete_in_step_1
    with pytest.raises(WriteError, match=r"run folder .* is gone \(deleted or moved while"):
        i2i.fit(task)
    assert not run.exists()


def test_a_log_that_cannot_be_closed_still_gives_the_run_folder_up(toy_data, tmp_path, monkeypatch):
    """TensorBoard's last flush failing (a full disk) skipped the release: the lock stayed."""
    from i2i.train.logger import RunLogger

    def full_disk(self, failed=False):
        raise WriteError("cannot write tensorboard: No space left on device; free some space")

    monkeypatch.setattr(RunLogger, "close", full_disk)
    with pytest.raises(WriteError, match="No space left"):
        train("cyclegan", data=str(toy_data), out=str(tmp_path / "run"), max_steps=1, **TINY)
    assert not (tmp_path / "run" / ".i2i-lock").exists()
    monkeypatch.undo()
    assert train("cyclegan", resume=str(tmp_path / "run"), max_steps=2).step == 2


@pytest.mark.parametrize("at_step", [3, 1])
def test_a_second_signal_stops_at_once_and_names_what_is_left(toy_data, tmp_path, capsys, at_step):
    task = i2i.create_task(
        "cyclegan", data=str(toy_data), out=str(tmp_path / "run"), max_steps=8,
        **{**TINY, "save_every": 2},
    )  # fmt: skip
    step, steps = task.train_step, []

    def interrupted(batch):
        steps.append(len(steps) + 1)
        if len(steps) == at_step:
            raise KeyboardInterrupt  # what StopFlag raises on the second signal
        return step(batch)

    task.train_step = interrupted
    with pytest.raises(KeyboardInterrupt):
        i2i.fit(task)
    said = capsys.readouterr().out
    if at_step == 3:  # after the checkpoint of step 2
        assert "Stopped at once; the last checkpoint is " in said
        assert f"i2i train cyclegan --resume {tmp_path / 'run'}" in said
        assert latest_checkpoint(tmp_path / "run") is not None
    else:
        assert "before the first checkpoint: there is nothing to resume" in said
        assert not (tmp_path / "run").exists()


def test_a_log_file_line_says_how_far_and_how_long_is_left(tmp_path, capsys):
    from i2i.train.logger import RunLogger, _duration

    logger = RunLogger(tmp_path, total_steps=100, start_step=0)
    logger.log(10, 0, {"G_AB": 1.0})
    logger.close()
    [line] = [line for line in capsys.readouterr().err.splitlines() if "G_AB" in line]
    assert line.startswith("step 10/100 epoch 1 ") and " left G_AB=1" in line
    assert [_duration(s) for s in (42, 425, 11520)] == ["42s", "7m05s", "3h12m"]


def test_a_max_steps_beyond_the_schedule_is_named_at_the_start(toy_data, tmp_path, capsys):
    # TINY: one epoch and one of decay; the toy data's epochs are a few steps each
    result = train("cyclegan", data=str(toy_data), out=str(tmp_path / "run"), max_steps=10**6,
                   **TINY)  # fmt: skip
    said = capsys.readouterr()
    line = next(x for x in (said.out + said.err).splitlines() if x.startswith("training cyclegan"))
    assert f"{result.step} steps (the schedule's end: --epochs 1 + --epochs-decay 1 at " in line
    assert "up to --max-steps 1000000)" in line and "constant learning rate" not in line
    # the other way: --max-steps ends the run before its learning rate decays, and it says so
    train("cyclegan", data=str(toy_data), out=str(tmp_path / "short"), max_steps=2,
          **{**TINY, "epochs": 100})  # fmt: skip
    said = capsys.readouterr()
    line = next(x for x in (said.out + said.err).splitlines() if x.startswith("training cyclegan"))
    assert "2 steps at a constant learning rate (its decay starts at step 600, after" in line


def test_eval_every_logs_held_out_metrics(toy_data, tmp_path):
    out = tmp_path / "run"
    train("cyclegan", data=str(toy_data), out=str(out), max_steps=4, eval_every=2, **TINY)
    records = [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]
    evals = [r for r in records if "eval/AtoB/cycle_psnr" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert evals[0]["eval/BtoA/cycle_ssim"] is not None
    assert "G_AB" not in evals[0]  # metrics lines are separate from loss lines
    from i2i.models.export import export_run
    from i2i.models.folder import read_config

    card_metrics = read_config(export_run(out, tmp_path / "model"))["metrics"]
    assert card_metrics["step"] == 4 and "AtoB/cycle_psnr" in card_metrics


def test_config_file_values_are_converted_to_option_types(toy_data, tmp_path):
    cfg = tmp_path / "opts.yaml"
    cfg.write_text("lr: 1e-4\nflip: 'false'\nbatch_size: '2'\n")  # YAML reads 1e-4 as a string
    config = resolve_config("cyclegan", {"data": str(toy_data)}, str(cfg))
    assert config["lr"] == 1e-4 and config["flip"] is False and config["batch_size"] == 2
    cfg.write_text("epochs: many\n")
    with pytest.raises(i2i.I2IError, match="--epochs must be an int"):
        resolve_config("cyclegan", {}, str(cfg))


def test_resume_needs_the_same_batch_size(toy_data, tmp_path):
    out = tmp_path / "run"
    train("cyclegan", data=str(toy_data), out=str(out), max_steps=2, **TINY)
    with pytest.raises(i2i.I2IError, match="--batch-size 1 -> 2"):
        train("cyclegan", resume=str(out), max_steps=4, batch_size=2)


def test_abandoned_checkpoints_are_not_adopted_by_a_new_run(toy_data, tmp_path):
    out = tmp_path / "run"
    (out / "checkpoints" / "step_00000002").mkdir(parents=True)  # killed before `latest`
    with pytest.raises(i2i.I2IError, match=r"is not empty \(it holds checkpoints"):
        train("cyclegan", data=str(toy_data), out=str(out), max_steps=2, **TINY)


def test_tensorboard_events_when_installed(toy_data, tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is optional")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    train("cyclegan", data=str(toy_data), out=str(out), max_steps=4, **TINY)
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert {"G_AB", "cycle_A", "D_B", "lr"} <= set(events.Tags()["scalars"])
    assert "samples" in events.Tags()["images"]
    rolled_back = out / "checkpoints" / "step_00000004"
    shutil.copytree(rolled_back, out / "checkpoints" / "step_00000002")  # as if saved at 2
    state = torch.load(rolled_back / "state.pt", weights_only=True)
    torch.save({**state, "step": 2}, out / "checkpoints" / "step_00000002" / "state.pt")
    (out / "checkpoints" / "latest").write_text("step_00000002\n")
    train("cyclegan", resume=str(out), max_steps=4)  # steps 3 and 4 again
    events = EventAccumulator(str(out / "tensorboard"))
    events.Reload()
    assert [e.step for e in events.Scalars("G_AB")] == [2, 4]  # the old step 4 hidden


def test_terms_that_grey_and_colour_rule_out_are_said_to_be_off(toy_data, tmp_path):
    with pytest.warns(I2IWarning) as warned:
        result = train(
            "cyclegan", data=str(toy_data), out=str(tmp_path / "r"), max_steps=1, channels_a=1,
            lambda_shift=2.0, **TINY,
        )  # fmt: skip
    said = [str(w.message) for w in warned if "term is off" in str(w.message)]
    assert len(said) == 2
    assert said[0].startswith("the identity term is off (--lambda-identity 0.5 is not used)")
    assert said[1].startswith("the mean-shift term is off (--lambda-shift 2.0 is not used)")
    assert result.step == 1


def test_a_test_split_that_cannot_be_used_is_said_not_to_be(toy_data, tmp_path):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(toy_data, data, ignore=shutil.ignore_patterns("testB"))
    with pytest.warns(I2IWarning, match=r"the test split is not used \(.*testB is missing"):
        train("cyclegan", data=str(data), out=str(tmp_path / "r"), max_steps=1, **TINY)
    run = json.loads((tmp_path / "r" / "config.json").read_text())
    assert run["samples_from"] == "train"


@pytest.mark.parametrize(("every", "grids"), [(0, [3]), (1, [1, 2, 3]), (3, [3])])
def test_sample_grids_come_every_so_often_and_the_last_once(
    toy_data, tmp_path, monkeypatch, every, grids
):
    from i2i.train.trainer import Trainer

    drawn: list[int] = []
    write = Trainer.write_samples

    def counted(self, logger):
        drawn.append(self.step)
        return write(self, logger)

    monkeypatch.setattr(Trainer, "write_samples", counted)
    train("cyclegan", data=str(toy_data), out=str(tmp_path / "r"), max_steps=3,
          **{**TINY, "sample_every": every})  # fmt: skip
    assert drawn == grids
