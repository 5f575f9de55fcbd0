"""The task kit: what a training recipe (CycleGAN, pix2pix, CUT, a third party's) builds on.

A task is its networks, its losses and the maths of one step. The kit gives it the rest:
options resolved and checked, networks built from the registries and placed on the device
(DDP, compile), Adam optimizers from the declared options, the discriminator-side augmentation,
freezing. The trainer owns the loop, the data and its augmentation, precision, EMA, logging,
samples and checkpoints. Importing the kit never imports the trainer.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import nn

from i2i.core.device import unwrap
from i2i.core.errors import I2IError
from i2i.core.registry import Registry, discriminators, generators, losses
from i2i.kit.options import Option

if TYPE_CHECKING:
    from i2i.train.runtime import Runtime

# Small networks and a short schedule for the built-in toy datasets: a few CPU minutes.
TOY_TRAINING: dict[str, Any] = {
    "gen": "resnet6",
    "ngf": 16,
    "ndf": 16,
    "load_size": 72,
    "crop_size": 64,
    "epochs": 3,
    "epochs_decay": 2,
    "log_every": 20,
    "sample_every": 100,
    "save_every": 500,
}

Batch = dict[str, torch.Tensor]
Panels = list[tuple[list[str], list[torch.Tensor]]]


@dataclass(frozen=True)
class Recipe:
    """A named set of option values (``--recipe NAME``); flags given explicitly still win."""

    summary: str
    values: dict[str, Any] = field(default_factory=dict)


class Task(abc.ABC):
    """Base class of training recipes; subclasses register through ``register_tasks``.

    ``Task(**options)`` resolves and checks the options (defaults < toy defaults < recipe <
    given; ``resume=RUN`` continues that run's options, as ``--resume``); ``i2i.fit(i2i.create_task("cyclegan", max_steps=10))`` is the same as
    ``i2i train cyclegan --max-steps 10``.
    """

    name: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()
    # Overrides applied when no --data is given: small networks for the built-in toy dataset.
    toy_defaults: ClassVar[dict[str, Any]] = {}
    recipes: ClassVar[dict[str, Recipe]] = {}
    # Paired tasks get the same random crop and flip on A and B; unpaired ones independent ones.
    paired: ClassVar[bool] = False

    def __init__(self, **options: Any) -> None:
        from i2i.kit.config import resolve_task_config

        self.config: dict[str, Any] = resolve_task_config(type(self), options)
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self._runtime: Runtime | None = None
        self.data_root = Path(self.config["data"]) if self.config["data"] else None

    # -- what a task implements ------------------------------------------------------------
    @classmethod
    def toy_data_root(cls) -> Path:
        """The built-in dataset used when no --data is given (unpaired day/night by default)."""
        from i2i.toydata import toy_dataset_dir

        return toy_dataset_dir()

    @abc.abstractmethod
    def build(self, example: Batch) -> None:
        """Create networks (``build_networks``/``add_network``), losses and optimizers.

        ``example`` is a first batch at training size on the device, for anything whose shape
        depends on the data (CUT's patch heads); most tasks ignore it.
        """

    @abc.abstractmethod
    def dataset(self, split: str) -> torch.utils.data.Dataset:
        """The dataset for ``split`` ("train" or "test"); raise DataError when it is unusable."""

    def held_out_item(self, dataset: Any, index: int) -> dict[str, Any]:
        """Item ``index`` for sample grids and eval (the CycleGAN task pairs A[i] with B[i])."""
        return dataset[index]

    @abc.abstractmethod
    def step(self, batch: Batch) -> Batch:
        """One optimisation step; returns detached scalar losses (no host sync)."""

    @abc.abstractmethod
    def samples(self, batch: Batch) -> Panels:
        """Panels for the sample grid: (column titles, one image batch per column)."""

    @abc.abstractmethod
    def generators(self) -> dict[str, dict[str, Any]]:
        """Exportable generators: net name -> {"name", "kwargs", "direction"}."""

    def discriminators(self) -> dict[str, dict[str, Any]]:
        """Discriminators that an export may include for fine-tuning: net name -> spec."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Training state beyond networks and optimizers (pools, random streams of samplers)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state

    # -- running -----------------------------------------------------------------------------
    def attach(self, runtime: Runtime) -> None:
        """Called by the trainer before ``build``: where and how the networks run."""
        self._runtime = runtime
        if self.data_root is None:
            self.data_root = self.toy_data_root()

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise I2IError(f"task {self.name!r} is not attached to a trainer yet; call fit()")
        return self._runtime

    @property
    def device(self) -> torch.device:
        return self.runtime.device

    # -- the kit -----------------------------------------------------------------------------
    def build_networks(self) -> None:
        """Create every network of ``generators()`` and ``discriminators()`` as attributes."""
        for registry, specs in (
            (generators, self.generators()),
            (discriminators, self.discriminators()),
        ):
            for net_name, spec in specs.items():
                net = registry.create(spec["name"], **spec["kwargs"])
                setattr(self, net_name, self.add_network(net_name, net))

    def generator_kwargs(
        self, in_channels: int, out_channels: int, **shared: Any
    ) -> dict[str, Any]:
        """Arguments for ``--gen`` from the task's ngf/norm/dropout/init options and --gen-kw.

        ``shared`` settings (CUT's ``antialias``) go only to generators that take them.
        """
        c = self.config
        common = {
            **shared,
            "in_channels": in_channels,
            "out_channels": out_channels,
            "ngf": c["ngf"],
            "norm": c["norm"],
            "dropout": c["dropout"],
            "init": c["init"],
            "init_gain": c["init_gain"],
        }
        return network_kwargs(generators, c["gen"], common, c["gen_kw"])

    def discriminator_kwargs(self, in_channels: int) -> dict[str, Any]:
        """Arguments for ``--disc`` from the task's ndf/norm/init options and --disc-kw."""
        c = self.config
        common = {
            "in_channels": in_channels,
            "ndf": c["ndf"],
            "norm": c["norm_d"] or c["norm"],
            "init": c["init"],
            "init_gain": c["init_gain"],
        }
        return network_kwargs(discriminators, c["disc"], common, c["disc_kw"])

    def add_network(self, name: str, net: nn.Module) -> nn.Module:
        """Keep the plain module for saving and return the device-ready (DDP/compiled) one."""
        self.nets[name] = net
        return self.runtime.prepare(net)

    def adam(self, name: str, nets: Iterable[str], *, discriminator: bool = False) -> None:
        """An Adam optimizer over ``nets`` from --lr/--beta1/--beta2 (--lr-d for critics)."""
        c = self.config
        lr = c["lr_d"] if discriminator and c.get("lr_d") is not None else c["lr"]
        params = [p for net in nets for p in self.nets[net].parameters()]
        self.optimizers[name] = torch.optim.Adam(params, lr=lr, betas=(c["beta1"], c["beta2"]))

    def build_gan(self) -> None:
        """The networks, the --gan-loss objective and the critics' view (--d-augment)."""
        self.build_networks()
        self.gan_loss = losses.create(self.config["gan_loss"]).to(self.device)
        self.d_view = self.discriminator_view()

    def fool(self, critic: str, fake: torch.Tensor) -> torch.Tensor:
        """The generator's adversarial loss: make the (frozen) ``critic`` call ``fake`` real.

        The critic runs as its plain module: DDP keeps no bookkeeping for a network that gets
        no gradients in this pass.
        """
        pred = self.nets[critic](self.d_view(fake))
        return self.gan_loss(pred, True, for_discriminator=False)

    def critic_loss(
        self, critic: str, real: torch.Tensor, fake: torch.Tensor, *, fake_first: bool = False
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """0.5 * (loss on real + loss on fake) plus any penalty of the objective, and its parts.

        Real and fake go through one forward pass when the critic has no batch norm (instance
        norm keeps samples independent, so the maths is the same and it is faster); otherwise
        two passes, real first (CycleGAN's order) or ``fake_first`` (pix2pix's order, always in
        two passes as the official code), which decides batch-norm statistics.
        """
        D = getattr(self, critic)
        real, fake = self.d_view(real), self.d_view(fake)
        if fake_first:
            pred_fake, pred_real = D(fake), D(real)
        elif has_batch_norm(self.nets[critic]):
            pred_real, pred_fake = D(real), D(fake)
        else:
            pred_real, pred_fake = split_prediction(D(torch.cat([real, fake])), real.shape[0])
        parts = {"real": self.gan_loss(pred_real, True), "fake": self.gan_loss(pred_fake, False)}
        loss = 0.5 * (parts["real"] + parts["fake"])
        penalty = self.gan_loss.penalty(D, real, fake)
        if penalty is not None:
            parts["penalty"] = penalty
            loss = loss + penalty
        return loss, parts

    def discriminator_view(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """What a discriminator sees of any image, real or fake: --d-augment, else as it is."""
        policy = self.config.get("d_augment")
        if not policy:
            return _identity
        from i2i.augment import build_d_augment

        return build_d_augment(policy) or _identity

    @staticmethod
    def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
        for net in nets:
            for p in unwrap(net).parameters():
                p.requires_grad_(flag)


def _identity(x: torch.Tensor) -> torch.Tensor:
    return x


def network_kwargs(
    registry: Registry, name: str, common: dict[str, Any], explicit: dict[str, Any]
) -> dict[str, Any]:
    """The task's shared settings that ``name`` accepts, overridden by the user's ``--*-kw``.

    A third party's network need not take ``ngf`` or ``norm``; explicit kwargs are always passed
    so that a wrong one is reported rather than dropped.
    """
    component = registry.get(name)
    accepted = {p.name for p in component.parameters}
    chosen = {k: v for k, v in common.items() if component.accepts_any_kwargs or k in accepted}
    chosen.update(explicit)
    registry.check_kwargs(name, chosen)
    return chosen


def split_prediction(pred: Any, n_real: int) -> tuple[Any, Any]:
    """Split a critic's output on cat([real, fake]) (a map or a list of multi-scale maps)."""
    if isinstance(pred, list | tuple):
        pairs = [p.split([n_real, p.shape[0] - n_real]) for p in pred]
        return [p[0] for p in pairs], [p[1] for p in pairs]
    return tuple(pred.split([n_real, pred.shape[0] - n_real]))


def has_batch_norm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
