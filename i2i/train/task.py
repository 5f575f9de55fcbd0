"""The contract between the core trainer and a training recipe such as CycleGAN or pix2pix.

A task owns its networks, losses, optimizers and the maths of one step. Everything that is not
specific to the recipe (data loading, devices, precision, logging, samples, checkpoints, resume,
DDP) lives in the trainer, so a new recipe is mostly its losses and its ``step``.
"""

from __future__ import annotations

import abc
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from i2i.core.device import unwrap
from i2i.core.registry import Registry
from i2i.train.options import Option
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


class Task(abc.ABC):
    """Base class of training recipes; subclasses register through ``register_tasks``."""

    name: ClassVar[str] = ""
    options: ClassVar[tuple[Option, ...]] = ()
    # Overrides applied when no --data is given: small networks for the built-in toy dataset.
    toy_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: dict[str, Any], runtime: Runtime, data_root: Path) -> None:
        self.config = config
        self.runtime = runtime
        self.data_root = Path(data_root)
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}

    # -- what a task implements ------------------------------------------------------------
    @classmethod
    def toy_data_root(cls) -> Path:
        """The built-in dataset used when no --data is given (unpaired day/night by default)."""
        from i2i.toydata import toy_dataset_dir

        return toy_dataset_dir()

    @abc.abstractmethod
    def build(self) -> None:
        """Create networks (through ``add_network``), losses and optimizers."""

    @abc.abstractmethod
    def dataset(self, split: str) -> torch.utils.data.Dataset:
        """The dataset for ``split`` ("train" or "test"); raise DataError when it is unusable."""

    def held_out_item(self, dataset: Any, index: int) -> dict[str, Any]:
        """Item ``index`` for sample grids and eval (the CycleGAN task pairs A[i] with B[i])."""
        return dataset[index]

    def augment(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Device-side augmentation of a float batch in [-1, 1]."""
        return batch

    @abc.abstractmethod
    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One optimisation step; returns detached scalar losses (no host sync)."""

    @abc.abstractmethod
    def samples(self, batch: dict[str, torch.Tensor]) -> list[tuple[list[str], list[torch.Tensor]]]:
        """Panels for the sample grid: (column titles, one image batch per column)."""

    @abc.abstractmethod
    def generators(self) -> dict[str, dict[str, Any]]:
        """Exportable generators: net name -> {"name", "kwargs", "direction"}."""

    def discriminators(self) -> dict[str, dict[str, Any]]:
        """Discriminators that an export may include for fine-tuning: net name -> spec."""
        return {}

    # -- shared helpers --------------------------------------------------------------------
    def build_networks(self) -> None:
        """Create every network of ``generators()`` and ``discriminators()`` as attributes."""
        from i2i.core.registry import discriminators, generators

        for registry, specs in (
            (generators, self.generators()),
            (discriminators, self.discriminators()),
        ):
            for net_name, spec in specs.items():
                net = registry.create(spec["name"], **spec["kwargs"])
                setattr(self, net_name, self.add_network(net_name, net))

    def generator_kwargs(self, in_channels: int, out_channels: int) -> dict[str, Any]:
        """Arguments for ``--gen`` from the task's ngf/norm/dropout/init options and --gen-kw."""
        from i2i.core.registry import generators

        c = self.config
        common = {
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
        from i2i.core.registry import discriminators

        c = self.config
        common = {
            "in_channels": in_channels,
            "ndf": c["ndf"],
            "norm": c["norm"],
            "init": c["init"],
            "init_gain": c["init_gain"],
        }
        return network_kwargs(discriminators, c["disc"], common, c["disc_kw"])

    def add_network(self, name: str, net: nn.Module) -> nn.Module:
        """Keep the plain module for saving and return the device-ready (DDP/compiled) one."""
        self.nets[name] = net
        return self.runtime.prepare(net)

    def state_dict(self) -> dict[str, Any]:
        """Extra training state beyond networks and optimizers (e.g. image pools)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        del state

    @staticmethod
    def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
        for net in nets:
            for p in unwrap(net).parameters():
                p.requires_grad_(flag)


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


def has_batch_norm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def augmentation_specs(config: dict[str, Any]) -> list[Any]:
    """The Kornia pipeline that the trainer's options describe (preprocess, flip, extras)."""
    specs: list[Any] = []
    if config["preprocess"] != "none":
        sizes = {"load_size": config["load_size"], "crop_size": config["crop_size"]}
        specs.append((config["preprocess"], sizes))
    if config["flip"]:
        specs.append("hflip")
    if config["augment"]:
        specs += [s.strip() for s in config["augment"].split(";") if s.strip()]
    return specs
