"""A training step never reads a tensor's value on the host: on a GPU it then never waits for
the device, and CUDA graphs can replay it. Checked on the CPU by recording every host read
(``.item()``, ``float(x)``, ``if x:``, ``.tolist()``...) made outside torch during one step.

The trainer's augmentation, before the step, is left out: Kornia reads its random parameters on
the host, and i2i keeps those on the CPU (``i2i.augment``), where reading them waits for nothing.
"""

from __future__ import annotations

import pytest
import torch

import i2i
from i2i.kit.sync import recorded_host_reads
from i2i.train.trainer import Trainer
from tests.conftest import TINY

TASKS = {
    "cyclegan": {"pool_size": 2},  # full after two steps: the swaps run too
    "cyclegan-d-augment": {"pool_size": 2, "d_augment": "color,translation,cutout"},
    "cyclegan-shift": {"lambda_shift": 1.0},
    "cut": {"num_patches": 16, "nce_channels": 16},
    "fastcut": {"num_patches": 16, "nce_channels": 16, "lambda_shift": 1.0},  # its flip coin
    "pix2pix": {},
    "unsb": {"num_patches": 16, "nce_channels": 16, "noise_dim": 16, "lambda_shift": 1.0},
}


@pytest.mark.parametrize("name", TASKS)
def test_a_step_of_each_built_in_task_reads_nothing_on_the_host(name, toy_data, tmp_path):
    options = {**TINY, **TASKS[name], "ema_decay": 0.9, "out": str(tmp_path / "run")}
    if name == "pix2pix":  # the unpaired toy folders serve as pairs (same names and sizes)
        options["channels_a"] = 3
    task = i2i.create_task(name.split("-")[0], data=str(toy_data), **options)
    trainer = Trainer(task)
    batches = [trainer.augment(trainer.data.to_device(raw)) for raw in trainer.loader(0, 0)]
    for batch in batches[:3]:  # warm-up: first-step allocations, the pool filling up
        task.train_step(batch)
    with recorded_host_reads() as reads:
        losses = task.train_step(batches[3])
    assert reads == []
    assert losses and trainer.runtime.ema.updates == 4


def test_the_record_catches_a_task_that_reads_on_the_host(toy_data, tmp_path):
    """The check above can fail: the same step plus one ``float(loss)``."""
    task = i2i.create_task("cyclegan", data=str(toy_data), out=str(tmp_path / "run"), **TINY)
    trainer = Trainer(task)
    step = task.step
    task.step = lambda batch: {k: v for k, v in step(batch).items() if float(v.detach()) > -1}
    batch = trainer.augment(trainer.data.to_device(next(iter(trainer.loader(0, 0)))))
    with recorded_host_reads() as reads:
        task.train_step(batch)
    assert reads and reads[0].startswith("Tensor.__float__ at ") and __file__ in reads[0]
    assert isinstance(torch.ones(()).item(), float)  # tensors are themselves again after it
