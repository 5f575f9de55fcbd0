"""DDP through torchrun on CPU: gloo, 2 processes, tiny images; rank 0 alone writes."""

import json
import os
import subprocess
import sys

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
