"""The kit's optimisation step: what ``optimizing`` blocks, ``train_critics`` and ``train_step``
do for a task (freezing, zeroing, precision, loss scaling, backward, steps, the end of a step),
checked on a toy task against the same maths written out by hand, and the image pool."""

from __future__ import annotations

import contextlib
import copy

import pytest
import torch

import i2i
from i2i.kit.pool import ImagePool
from i2i.train.ema import GeneratorEMA
from i2i.train.runtime import Runtime
from tests.toytask import TOY_OPTIONS, Toy, register_toy_networks


class OwnRuntime:
    """A runtime of the test's own: the kit needs nothing more than the Protocol."""

    def __init__(self, scale: float | None = None, bf16: bool = False) -> None:
        self.device, self.rank, self.world_size = torch.device("cpu"), 0, 1
        self.scaler = torch.amp.GradScaler(
            "cpu", init_scale=scale or 1.0, growth_interval=1, enabled=scale is not None
        )
        self.fused_optimizers = False
        self.bf16 = bf16
        self.ended = 0

    def prepare(self, net: torch.nn.Module, *, distributed: bool = True) -> torch.nn.Module:
        return net

    def autocast(self):
        if self.bf16:
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def end_step(self) -> None:
        self.ended += 1


def test_the_trainer_and_a_test_implement_the_runtime_the_kit_declares():
    from i2i.kit.runtime import Runtime as KitRuntime

    assert isinstance(Runtime("cpu"), KitRuntime) and isinstance(OwnRuntime(), KitRuntime)


def _toy(runtime=None, **options) -> Toy:
    register_toy_networks()
    torch.manual_seed(0)
    task = Toy(data="unused", **{**TOY_OPTIONS, **options})
    task.attach(runtime or OwnRuntime())
    task.build({})
    return task


def _batch(seed: int = 1) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(2, 3, 16, 16, generator=g) * 2 - 1 for k in ("A", "B")}


def _frozen_flags(net: torch.nn.Module, seen: list[bool]) -> None:
    net.register_forward_pre_hook(
        lambda module, args: seen.append(all(not p.requires_grad for p in module.parameters()))
    )


def test_a_step_is_the_objective_written_out():
    """The generator steps against a frozen critic, then the critic on real and detached fake:
    the gradients equal those of each loss alone (nothing leaks between the blocks)."""
    task = _toy()
    G, D = (copy.deepcopy(task.nets[n]) for n in ("G", "D"))
    batch = _batch()
    critic_frozen: list[bool] = []
    _frozen_flags(task.nets["D"], critic_frozen)
    losses = task.train_step(batch)

    mse = lambda pred, target: ((pred - target) ** 2).mean()  # noqa: E731
    fake = G(batch["A"])
    loss_g = mse(D(fake), 1.0) + (fake - batch["A"]).abs().mean()
    g_grads = torch.autograd.grad(loss_g, list(G.parameters()))
    d_loss = 0.5 * (mse(D(batch["B"]), 1.0) + mse(D(fake.detach()), 0.0))
    d_grads = torch.autograd.grad(d_loss, list(D.parameters()))
    torch.testing.assert_close(losses["D"], d_loss.detach())
    for got, want in zip(task.nets["G"].parameters(), g_grads, strict=True):
        torch.testing.assert_close(got.grad, want)
    for got, want in zip(task.nets["D"].parameters(), d_grads, strict=True):
        torch.testing.assert_close(got.grad, want)
    # D judged the fake frozen (for G), then real and fake trainable (its own update).
    assert critic_frozen == [True, False]
    assert all(p.requires_grad for net in task.nets.values() for p in net.parameters())
    assert all(not v.requires_grad and v.dtype == torch.float32 for v in losses.values())


def test_old_gradients_never_reach_a_step():
    clean, dirty = _toy(), _toy()
    for net in dirty.nets.values():
        for p in net.parameters():
            p.grad = torch.full_like(p, 1e3)
    batch = _batch()
    clean.train_step(batch)
    dirty.train_step(batch)
    for name in clean.nets:
        for a, b in zip(clean.nets[name].parameters(), dirty.nets[name].parameters(), strict=True):
            assert torch.equal(a, b), name


def test_several_minimize_calls_add_up_to_one_optimizer_step():
    """CycleGAN's lean phase: a backward per cycle, one step of the optimizer for all."""
    task, reference = _toy(), _toy()
    steps = []
    task.optimizers["G"].register_step_post_hook(lambda *args: steps.append(1))
    x = _batch()["A"]
    with task.optimizing("G") as g:
        g.minimize(task.G(x).square().mean())
        g.minimize((task.G(x) - x).abs().mean())
    assert steps == [1]
    G = reference.nets["G"]
    total = G(x).square().mean() + (G(x) - x).abs().mean()
    want = torch.autograd.grad(total, list(G.parameters()))
    reference_optimizer = reference.optimizers["G"]
    for p, grad in zip(G.parameters(), want, strict=True):
        p.grad = grad
    reference_optimizer.step()
    for a, b in zip(task.nets["G"].parameters(), G.parameters(), strict=True):
        torch.testing.assert_close(a, b)


def test_the_step_ends_once_with_the_moving_average():
    runtime = Runtime("cpu")
    task = _toy(runtime)
    runtime.ema = GeneratorEMA({"G": task.nets["G"]}, 0.9)
    for _ in range(3):
        task.train_step(_batch())  # two blocks per step, one end of step
    assert runtime.ema.updates == 3


def test_fp16_loss_scale_is_applied_removed_and_updated_once_per_step():
    scaled, plain = _toy(OwnRuntime(scale=2.0**10)), _toy()
    batch = _batch()
    scaled.train_step(batch)
    plain.train_step(batch)
    for name in scaled.nets:
        for a, b in zip(scaled.nets[name].parameters(), plain.nets[name].parameters(), strict=True):
            torch.testing.assert_close(a, b)
    # Growth interval 1: one update per step doubles the scale once.
    assert scaled.runtime.scaler.get_scale() == 2.0**11
    assert scaled.runtime.ended == 1


def test_the_step_runs_under_the_runtime_precision():
    task = _toy(OwnRuntime(bf16=True))
    dtypes = []
    task.nets["G"].register_forward_hook(lambda m, args, out: dtypes.append(out.dtype))
    losses = task.train_step(_batch())
    assert dtypes == [torch.bfloat16]
    assert all(v.dtype == torch.float32 for v in losses.values())
    assert all(p.grad.dtype == torch.float32 for p in task.nets["G"].parameters())


def test_a_network_the_task_froze_stays_frozen():
    task = _toy()
    bias = task.nets["D"][0].bias
    bias.requires_grad_(False)
    task.train_step(_batch())
    assert bias.requires_grad is False and bias.grad is None
    assert task.nets["D"][0].weight.requires_grad


def test_mistakes_in_a_block_are_one_line_errors_and_leave_nothing_frozen():
    task = _toy()
    with pytest.raises(i2i.I2IError, match="no optimizer Gen; it has G, D"):
        task.optimizing("Gen")
    no_loss = r"optimizing G minimized no loss; call \.minimize"
    with pytest.raises(i2i.I2IError, match=no_loss), task.optimizing("G"):
        task.G(_batch()["A"])
    before = [p.clone() for p in task.nets["G"].parameters()]
    with pytest.raises(KeyError), task.optimizing("G") as g:  # the task's own bug, mid-block
        g.minimize(task.G(_batch()["A"]).mean())
        _batch()["C"]
    assert all(torch.equal(a, b) for a, b in zip(before, task.nets["G"].parameters(), strict=True))
    assert all(p.requires_grad for net in task.nets.values() for p in net.parameters())


def test_critics_sharing_an_optimizer_step_it_once():
    """CycleGAN's D_A and D_B: one backward of the sum, one step; each loss and its parts."""
    task = _toy()
    steps = []
    task.optimizers["D"].register_step_post_hook(lambda *args: steps.append(1))
    batch = _batch()
    fake = task.G(batch["A"])
    logged = task.train_critics(D=(batch["B"], fake))
    assert steps == [1]
    assert set(logged) == {"D", "D_real", "D_fake"}
    torch.testing.assert_close(logged["D"], 0.5 * (logged["D_real"] + logged["D_fake"]))
    assert all(p.grad is None for p in task.nets["G"].parameters())  # the fake was detached


class StepCritic(torch.nn.Module):
    """A critic that reads a step number per image (as UNSB's): it cannot be called without."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 1, 4, stride=2, padding=1)
        self.steps = torch.nn.Embedding(5, 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + self.steps(t)[:, :, None, None]


@pytest.mark.parametrize("gan_loss", ["lsgan", "wgangp"])
def test_a_conditioned_critic_gets_its_conditions_after_the_images(gan_loss):
    """train_critics(D=(real, fake, t)) and fool("D", fake, t), against the losses written
    out; with wgangp the penalty's critic gets the conditions too."""
    task = _toy(gan_loss=gan_loss)
    task.D = task.add_network("D", StepCritic())
    task.adam("D", ["D"], discriminator=True)
    D0 = copy.deepcopy(task.nets["D"])
    batch = _batch()
    t = torch.tensor([1, 4])
    fake = task.G(batch["A"])
    logged = task.train_critics(D=(batch["B"], fake, t))
    real_part, fake_part = task.gan_loss(D0(batch["B"], t), True), task.gan_loss(D0(fake, t), False)
    torch.testing.assert_close(logged["D_real"], real_part)
    torch.testing.assert_close(logged["D_fake"], fake_part)
    assert ("D_penalty" in logged) == (gan_loss == "wgangp")
    with task.optimizing("G") as g:
        fooled = task.fool("D", fake, t)
        g.minimize(fooled)
    want = task.gan_loss(task.nets["D"](fake, t), True, for_discriminator=False)
    torch.testing.assert_close(fooled, want)


# -- the image pool ----------------------------------------------------------------------------
def _reference_pool(size, queries, generator):
    """The official pool, one image at a time, drawing what ``ImagePool`` draws."""
    images, out = [], []
    for batch in queries:
        swap = torch.rand(batch.shape[0], generator=generator) > 0.5
        slot = torch.randint(size, (batch.shape[0],), generator=generator)
        answers = []
        for i, image in enumerate(batch):
            if len(images) < size:
                images.append(image)
                answers.append(image)
            elif swap[i]:
                answers.append(images[slot[i]])
                images[slot[i]] = image
            else:
                answers.append(image)
        out.append(torch.stack(answers))
    return out


def test_the_pool_keeps_the_official_semantics_on_the_device():
    torch.manual_seed(0)
    queries = [torch.rand(n, 3, 4, 4) for n in (1, 2, 2, 1, 2, 2, 2, 1) * 8]
    pool = ImagePool(3, torch.Generator().manual_seed(5))
    got = [pool.query(q) for q in queries]
    want = _reference_pool(3, queries, torch.Generator().manual_seed(5))
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a, b)
    old = sum(not any(torch.equal(o, q) for q in queries[i]) for i, g in enumerate(got) for o in g)
    assert 0.25 < old / sum(len(q) for q in queries[3:]) < 0.75  # about half, once full
    assert ImagePool(0).query(queries[0]) is queries[0]


def test_the_pool_resumes_exactly():
    torch.manual_seed(0)
    queries = [torch.rand(2, 3, 4, 4) for _ in range(12)]
    pool = ImagePool(4, torch.Generator().manual_seed(1))
    for q in queries[:5]:
        pool.query(q)
    resumed = ImagePool(4)
    resumed.load_state_dict(copy.deepcopy(pool.state_dict()), torch.device("cpu"))
    for q in queries[5:]:
        assert torch.equal(pool.query(q), resumed.query(q))
    half_full = ImagePool(4, torch.Generator().manual_seed(1))
    half_full.query(queries[0])
    again = ImagePool(4)
    again.load_state_dict(half_full.state_dict(), torch.device("cpu"))
    assert again.filled == 2
    for q in queries[1:]:
        assert torch.equal(half_full.query(q), again.query(q))
    older = ImagePool(4)  # a checkpoint from before the pool's own stream: images and size
    older.load_state_dict({"size": 4, "images": queries[0]}, torch.device("cpu"))
    assert older.filled == 2 and torch.equal(older.images[:2], queries[0])
