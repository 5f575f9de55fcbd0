"""``--compile`` on the CPU with the inductor backend: warm-up and recompilation reported, EMA,
bf16, fused Adam and resume working with it, and where CUDA graphs would be used, a step that
reads tensor values on the host found on its first step and trained eagerly instead.

CUDA graphs themselves need a GPU: here ``graphs=True`` runs the same code path on the CPU,
where torch.compile skips the capture of CPU tensors."""

from __future__ import annotations

import functools

import pytest
import torch
from safetensors.torch import load_file

import i2i
from i2i.train import runtime as runtime_module
from i2i.train import trainer as trainer_module
from i2i.train.compiled import compiled_graphs
from i2i.train.runtime import Runtime
from tests.toytask import TOY_OPTIONS, Toy, register_toy_networks

pytestmark = pytest.mark.slow  # each test compiles tiny networks: 10-60 s on two cores


def _toy(data, out, **options) -> Toy:
    register_toy_networks()
    return Toy(data=str(data), out=str(out), compile=True, **{**TOY_OPTIONS, **options})


def test_compiled_training_reports_its_warm_up_and_a_new_batch_shape(toy_data, tmp_path, capsys):
    """5 images at batch 2: the epoch's last batch has 1, a new shape, compiled once more (and
    only once: the next epoch's batches find their graphs)."""
    options = {"batch_size": 2, "max_images": 5, "max_steps": 6, "ema_decay": 0.9}
    result = i2i.fit(_toy(toy_data, tmp_path / "run", **options))
    assert result.step == 6
    printed = capsys.readouterr()
    text = printed.out + printed.err
    assert ", fp32, compiled; run folder" in text
    assert "compiled the step: " in text and "s of warm-up" in text
    assert text.count("compiled the step again") == 1
    assert "for a batch of a new shape, [1, 3, 16, 16]" in text
    weights = load_file(str(result.checkpoint / "networks.safetensors"))
    assert {k.split(".")[0] for k in weights} == {"G", "D", "G_ema"}
    assert all(torch.isfinite(v).all() for v in weights.values())


def test_compiled_training_resumes_like_a_run_that_never_stopped(toy_data, tmp_path):
    common = {"batch_size": 2, "ema_decay": 0.9}
    straight = i2i.fit(_toy(toy_data, tmp_path / "straight", max_steps=6, **common))
    i2i.fit(_toy(toy_data, tmp_path / "resumed", max_steps=3, **common))
    register_toy_networks()
    resumed = i2i.fit(Toy(resume=str(tmp_path / "resumed"), max_steps=6))
    a = load_file(str(straight.checkpoint / "networks.safetensors"))
    b = load_file(str(resumed.checkpoint / "networks.safetensors"))
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6, msg=key)


def test_compiled_bf16_with_fused_adam(toy_data, tmp_path, monkeypatch):
    """bf16 autocast around the compiled networks, and Adam fused as on CUDA (bf16 is only
    emulated on some CPUs, where i2i would train fp32: slow then, but the same code)."""
    monkeypatch.setattr(runtime_module, "usable_precision", lambda device, precision: precision)

    def fused(*args, **kwargs):
        runtime = Runtime(*args, **kwargs)
        runtime.fused_optimizers = True
        return runtime

    monkeypatch.setattr(trainer_module, "Runtime", fused)
    task = _toy(toy_data, tmp_path / "run", precision="bf16", max_steps=3, batch_size=2)
    result = i2i.fit(task)
    assert result.step == 3
    assert task.runtime.precision == "bf16"
    assert all(o.defaults["fused"] for o in task.optimizers.values())
    losses = (tmp_path / "run" / "losses.jsonl").read_text()
    assert '"G":' in losses and "NaN" not in losses


class Reading(Toy):
    """The toy task, plus a host read of its loss in every step."""

    name = "reading"

    def step(self, batch):
        losses = super().step(batch)
        if losses["L1"] > 10:  # a branch on a tensor's value: a host read
            losses["L1"] = losses["L1"] * 0
        return losses


@pytest.mark.parametrize("task_class", [Toy, Reading])
def test_where_graphs_would_run_a_step_that_reads_on_the_host_trains_eager(
    task_class, toy_data, tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(trainer_module, "Runtime", functools.partial(Runtime, graphs=True))
    register_toy_networks()
    torch._dynamo.reset()  # graphs compiled by an earlier test would be reused, not compiled
    before = compiled_graphs()
    task = task_class(
        data=str(toy_data), out=str(tmp_path / "run"), compile=True, max_steps=3, **TOY_OPTIONS
    )
    assert i2i.fit(task).step == 3
    printed = capsys.readouterr()
    text = printed.out + printed.err
    assert "compiled with CUDA graphs;" in text
    if task_class is Reading:
        assert "warning: the step of reading reads tensor values on the host" in text
        assert "(Tensor.__bool__ at " in text and "test_compiled_step.py" in text
        assert "training with the eager step" in text
        assert compiled_graphs() == before  # nothing was compiled
    else:
        assert "reads tensor values" not in text
        assert compiled_graphs() > before
        assert "compiled the step: " in text


def test_antialiased_upsampling_compiles_with_its_backward():
    """CUT's generator upsamples by zero-insertion and a blur; its edge padding once broke
    torch.compile's backward (a stride check of the replication pad) on the CPU."""
    from i2i.nets.antialias import Upsample

    torch._dynamo.reset()
    up = Upsample(4)
    x = (torch.rand(2, 4, 8, 8) * 2 - 1).requires_grad_()
    eager_out = up(x)
    (eager_grad,) = torch.autograd.grad(eager_out.square().sum(), x)
    compiled_out = torch.compile(up)(x)
    (compiled_grad,) = torch.autograd.grad(compiled_out.square().sum(), x)
    torch.testing.assert_close(compiled_out, eager_out)
    torch.testing.assert_close(compiled_grad, eager_grad)
    reference = torch.nn.functional.pad(x, [1, 1, 1, 1], mode="replicate")
    from i2i.nets.antialias import edge_pad

    assert torch.equal(edge_pad(x), reference)
