"""DDP through torchrun on CPU: gloo, 2 processes, tiny images; rank 0 alone writes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from i2i.models.checkpoint import latest_checkpoint
from tests.conftest import tiny_cli_args


@pytest.mark.slow
def test_torchrun_two_processes_gloo(toy_data, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    args = [
        sys.executable,
        *("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"),
        *tiny_cli_args(toy_data, out),
        *("--log-every", "2", "--sample-every", "4", "--max-steps", "4", "--device", "cpu"),
    ]
    result = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["world_size"] == 2
    lines = (out / "losses.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [2, 4]  # one writer, not two
    assert result.stdout.count("Finished 4 steps") == 1
    checkpoint = latest_checkpoint(out)
    assert checkpoint is not None and checkpoint.name == "step_00000004"
    import torch

    state = torch.load(checkpoint / "state.pt", weights_only=True)
    assert len(state["per_rank"]) == 2  # each rank's RNG and image pools are kept
    # 6 images over 2 ranks: 3 steps per epoch per rank
    assert state["epoch"] == 1


@pytest.mark.parametrize(
    ("world", "local", "command"),
    [
        (None, None, "i2i train cut --resume runs/a"),
        ("2", "2", "torchrun --nproc_per_node=2 -m i2i train cut --resume runs/a"),
        ("8", "4", "torchrun --nnodes=2 --nproc_per_node=4 (and the rendezvous options of the "
         "start, on every node) -m i2i train cut --resume runs/a"),
    ],
)  # fmt: skip
def test_the_resume_command_of_a_torchrun_job_is_a_torchrun_command(
    monkeypatch, world, local, command
):
    from i2i.train.outputs import resume_command

    for name, value in (("WORLD_SIZE", world), ("LOCAL_WORLD_SIZE", local)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert resume_command("cut", Path("runs/a")) == command


@pytest.mark.slow
def test_ctrl_c_under_torchrun_stops_every_rank_at_the_next_step(toy_data, tmp_path):
    """Ranks agreed on stopping only at log steps: with --log-every 1000 a Ctrl-C waited for
    step 1000, and torchrun killed the workers 30 s after the signal, unsaved."""
    import signal
    import time

    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    args = [
        sys.executable,
        *("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"),
        *tiny_cli_args(toy_data, out),
        *("--log-every", "1000", "--save-every", "3", "--max-steps", "5000", "--device", "cpu"),
        *("--epochs", "5000", "--epochs-decay", "0"),
    ]
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    deadline = time.time() + 240
    while latest_checkpoint(out) is None and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    signal_at = time.time()
    proc.send_signal(signal.SIGINT)
    output, _ = proc.communicate(timeout=120)
    assert time.time() - signal_at < 25, output  # well within torchrun's 30 s
    assert "torchrun --nproc_per_node=2 -m i2i train cyclegan --resume" in output, output
    stopped_at = int(latest_checkpoint(out).name[5:])
    records = [json.loads(line) for line in (out / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [stopped_at]  # saved and logged where it stopped
    assert "Unable to shutdown process" not in output


def test_gloo_that_cannot_connect_the_machines_is_one_line_saying_what_to_set(monkeypatch):
    """An NCCL job now also needs a gloo group (stops are agreed on the CPU): on a cluster
    where gloo picks an interface the machines do not share, say how to choose one."""
    import torch.distributed as dist

    import i2i
    from i2i.train.runtime import Runtime

    def cannot_connect(backend):
        raise RuntimeError("[../gloo/transport/tcp/pair.cc:144] no route to host 127.0.1.1")

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "new_group", cannot_connect)
    with pytest.raises(i2i.I2IError, match="set GLOO_SOCKET_IFNAME to the network interface"):
        Runtime("cpu")
