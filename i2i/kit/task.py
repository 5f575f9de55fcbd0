"""The task kit: what a training recipe (CycleGAN, pix2pix, CUT, a third party's) builds on.

A task is its networks, its losses and the maths of one step. The kit gives it the rest:
options resolved and checked into typed groups, the dataset from the data options, networks
built from the registries and placed on the device (DDP, compile), Adam optimizers from the
optimizer options, and the optimisation itself (``optimizing``, ``i2i.kit.step``): freezing,
zeroing, precision, loss scaling, backward, the optimizer steps, the moving averages. ``GANTask``
(``i2i.kit.gan``) adds what GANs share. The trainer owns the loop, the augmentation, logging,
samples and checkpoints, and implements the ``Runtime`` the kit declares (``i2i.kit.runtime``).
Importing the kit never imports the trainer.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from i2i.core.errors import DataError, I2IError, ImageDecodeError, InvalidArgumentError
from i2i.core.registry import discriminators, generators
from i2i.data import AlignedDataset, UnalignedDataset, load_image, to_float
from i2i.kit.colour import (
    cell_moments,
    colour_moments,
    colour_pixels,
    colour_turn,
    linear_colour_map,
    region_maps,
)
from i2i.kit.groups import AugmentationOptions, DataOptions, OptimizerOptions, RunOptions
from i2i.kit.options import Option, OptionGroup
from i2i.kit.pool import ImagePool
from i2i.kit.runtime import Runtime
from i2i.kit.shift import MeanShift
from i2i.kit.step import Optimizing

COLOUR_SAMPLE = 256
"""Images of each domain whose colours start a generator's colour map: its twelve numbers are
told well by a few hundred, and a folder of a hundred thousand would cost minutes."""
COLOUR_SIDE = 128
"""Shorter side the colour sample is decoded at (smaller images as they are): colour moments
do not depend on the resolution."""

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

    A task writes ``generators`` (what export writes), ``build`` (its networks and losses),
    ``step`` (the maths of a step, each update a ``with self.optimizing(...)`` block, see
    ``i2i.kit.step``) and ``samples``; ``GANTask`` adds what GANs share.

    ``Task(**options)`` resolves and checks the options (defaults < toy defaults < recipe <
    ``config_file`` (YAML or JSON, as ``--config``) < given; ``resume=RUN`` continues that
    run's options, as ``--resume``);
    ``i2i.fit(i2i.create_task("cyclegan", max_steps=10))`` is ``i2i train cyclegan --max-steps 10``.
    """

    name: ClassVar[str] = ""
    # The task's own options, read as ``self.opts``; the shared groups come from ``groups()``.
    Options: ClassVar[type[OptionGroup] | None] = None
    # New defaults for options of the shared groups (CycleGAN's gen="resnet9").
    defaults: ClassVar[dict[str, Any]] = {}
    # Overrides applied when no --data is given: small networks for the built-in toy dataset.
    toy_defaults: ClassVar[dict[str, Any]] = {}
    recipes: ClassVar[dict[str, Recipe]] = {}
    # Option values that mean another name for this task, from flags, files, recipes or
    # defaults alike: UNSB reads ``--gen resnet6`` as its conditioned ``unsb_resnet6``.
    option_aliases: ClassVar[dict[str, dict[str, str]]] = {}
    # Generator arguments that an option of another name sets (UNSB's ``steps`` by
    # ``bridge_steps``), so that a message about an argument can name the flag to change.
    argument_options: ClassVar[dict[str, str]] = {}
    # Paired tasks get the same random crop and flip on A and B and an AlignedDataset, whose
    # input side is ``pair_direction`` (pix2pix reads it from --direction).
    paired: ClassVar[bool] = False
    pair_direction: str = "AtoB"
    # The groups every task of this kind has, before the task's own.
    shared_groups: ClassVar[tuple[type[OptionGroup], ...]] = (
        DataOptions,
        RunOptions,
        AugmentationOptions,
        OptimizerOptions,
    )

    def __init__(self, config_file: str | Path | None = None, **options: Any) -> None:
        from i2i.kit.config import resolve_task_config

        # The flat record of the run (config.json); the code reads the typed groups below.
        self.config: dict[str, Any] = resolve_task_config(type(self), options, config_file)
        self.opts: Any = self.Options.of(self.config) if self.Options else None
        self._data = DataOptions.of(self.config)
        a, b = self._data.domain_a, self._data.domain_b
        if not a.strip() or not b.strip() or a == b:  # they name the directions and the card
            raise InvalidArgumentError(
                f"--domain-a {a!r} and --domain-b {b!r} must be two different names (e.g. "
                f"--domain-a horse --domain-b zebra)"
            )
        self._optimizer = OptimizerOptions.of(self.config)
        self.nets: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self._runtime: Runtime | None = None
        # Per ``optimizing`` names: the optimizers stepped and the parameters frozen.
        self._blocks: dict[tuple[str, ...], tuple[list[Any], list[torch.Tensor]]] = {}
        self._streams = 0
        self.seed = 0
        self.data_root = Path(self._data.data) if self._data.data else None
        self._datasets: dict[str, torch.utils.data.Dataset] = {}

    @classmethod
    def groups(cls) -> tuple[type[OptionGroup], ...]:
        """Every option group of the task, in the order of ``i2i train TASK --help``."""
        return (*cls.shared_groups, *((cls.Options,) if cls.Options else ()))

    @classmethod
    def declared_options(cls) -> list[Option]:
        """The flat options of all groups, with the task's ``defaults``."""
        groups = cls.groups()
        known = {name for group in groups for name in group.names()}
        unknown = sorted(set(cls.defaults) - known)
        if unknown:
            raise I2IError(f"task {cls.name!r} sets defaults of unknown option(s) {unknown}")
        return [o for group in groups for o in group.declared(cls.defaults)]

    @classmethod
    def argument_flag(cls, argument: str) -> str:
        """The flag that sets generator argument ``argument``, as a message names it (``ngf``:
        ``--ngf``); an argument no option sets is named as ``--gen-kw`` gives it, where the task
        has that option, else by itself."""
        if argument in ("in_channels", "out_channels"):  # A's or B's, by the direction
            return "--channels-a/--channels-b"
        names = {option.name for option in cls.declared_options()}
        option = cls.argument_options.get(argument, argument)
        if option in names:
            return "--" + option.replace("_", "-")
        return f"--gen-kw {argument}=..." if "gen_kw" in names else argument

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

    def dataset(self, split: str) -> torch.utils.data.Dataset:
        """The images of ``split`` ("train" or "test") from the data options: aligned pairs for
        a ``paired`` task (``pair_direction`` says which side is the input), else unaligned.
        Listed once per split: the trainer and the task read the same files."""
        if split not in self._datasets:
            d = self._data
            common = {"split": split, "max_images": d.max_images, "channels": self.channels}
            if self.paired:
                made = AlignedDataset(self.data_root, direction=self.pair_direction, **common)
            else:
                made = UnalignedDataset(self.data_root, seed=self.seed, **common)
            self._datasets[split] = made
        return self._datasets[split]

    def held_out_item(self, dataset: Any, index: int) -> dict[str, Any]:
        """Item ``index`` for sample grids and eval: unpaired data pairs A[i] with B[i]."""
        if isinstance(dataset, UnalignedDataset):
            return dataset.fixed_item(index)
        return dataset[index]

    @abc.abstractmethod
    def step(self, batch: Batch) -> Batch:
        """The maths of one training step, its updates in ``optimizing`` blocks; returns the
        scalar losses to log. It runs under the run's precision; it must not read a tensor's
        value on the host (``.item()``, ``float(x)``, ``if x > 0``): the step stays asynchronous
        on a GPU, and CUDA graphs can replay it."""

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
        """Training state beyond networks and optimizers, saved in every checkpoint: the task's
        attributes that are image pools, mean shifts or random streams (``torch.Generator``). A
        task with other state extends both methods."""
        state: dict[str, Any] = {}
        for name, value in vars(self).items():
            if isinstance(value, ImagePool | MeanShift):
                state[name] = value.state_dict()
            elif isinstance(value, torch.Generator):
                state[name] = value.get_state()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name, saved in state.items():
            value = getattr(self, name)
            if isinstance(value, ImagePool | MeanShift):
                value.load_state_dict(saved, self.device)
            elif saved.numel() != value.get_state().numel():  # a CPU stream's state is larger
                raise I2IError(
                    f"this run drew its random numbers ({name}) on another kind of device (CPU or "
                    f"CUDA); resume it on the kind it was trained on (--device)"
                )
            else:
                value.set_state(saved)

    # -- the data, as the kit read it --------------------------------------------------------
    @property
    def channels(self) -> tuple[int, int]:
        """Channels of domain A and domain B images."""
        return self._data.channels_a, self._data.channels_b

    @property
    def domains(self) -> dict[str, str]:
        """The names of the domains, for the model card and config."""
        return {"A": self._data.domain_a, "B": self._data.domain_b}

    @property
    def on_toy_data(self) -> bool:
        """Whether the run trains on the built-in toy data (no --data), whose ``toy_defaults``
        are then defaults too."""
        return self._data.data is None

    # -- running -----------------------------------------------------------------------------
    def attach(self, runtime: Runtime, seed: int = 0) -> None:
        """Called by the trainer before ``build``: where and how the networks run, and the run's
        seed (for the data's pairing and any random stream of the task)."""
        self._runtime = runtime
        self.seed = seed
        if self.data_root is None:
            self.data_root = self.toy_data_root()
        self._datasets.clear()  # listed with the run's seed and data from here on

    @property
    def runtime(self) -> Runtime:
        if self._runtime is None:
            raise I2IError(f"task {self.name!r} is not attached to a trainer yet; call fit()")
        return self._runtime

    @property
    def device(self) -> torch.device:
        return self.runtime.device

    def train_step(self, batch: Batch) -> Batch:
        """One training step as the trainer runs it: ``step`` under the run's precision, then
        the once-per-step bookkeeping (the fp16 loss scale, the generators' moving averages).
        Returns the logged losses detached, in float32, still on the device."""
        with self.runtime.autocast():
            losses = self.step(batch)
        self.runtime.scaler.update()
        self.runtime.end_step()
        return {k: v.detach().float() for k, v in losses.items()}

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

    def add_network(self, name: str, net: nn.Module) -> nn.Module:
        """Keep the plain module for saving and return the device-ready (DDP/compiled) one."""
        self.nets[name] = net
        return self.runtime.prepare(net)

    def adam(self, name: str, nets: Iterable[str], *, discriminator: bool = False) -> None:
        """An Adam optimizer called ``name`` over the trainable parameters of ``nets`` (a frozen
        part, such as a pretrained feature network, stays out), from --lr/--beta1/--beta2
        (--lr-d for critics); fused where the runtime says so (CUDA)."""
        o = self._optimizer
        lr = o.lr_d if discriminator and o.lr_d is not None else o.lr
        params = [p for net in nets for p in self.nets[net].parameters() if p.requires_grad]
        self.optimizers[name] = torch.optim.Adam(
            params, lr=lr, betas=(o.beta1, o.beta2), fused=self.runtime.fused_optimizers or None
        )
        self._blocks.clear()

    def optimizing(self, *names: str) -> Optimizing:
        """A ``with`` block that updates the parameters of the optimizers ``names``: the other
        optimizers' networks frozen inside it, gradients zeroed on entry, ``.minimize(loss)``
        for the backward, the optimizers stepped on leaving (see ``i2i.kit.step``)."""
        if names not in self._blocks:
            unknown = [n for n in names if n not in self.optimizers]
            if unknown or not names:
                raise I2IError(
                    f"task {self.name!r} has no optimizer {', '.join(unknown) or '(none named)'}; "
                    f"it has {', '.join(self.optimizers) or 'none yet (create them in build)'}"
                )
            trained = {id(p) for n in names for p in _parameters(self.optimizers[n])}
            frozen = [
                p
                for other, optimizer in self.optimizers.items()
                if other not in names
                for p in _parameters(optimizer)
                if id(p) not in trained
            ]
            self._blocks[names] = ([self.optimizers[n] for n in names], frozen)
        return Optimizing(self.runtime, names, *self._blocks[names])

    def _optimizers_of(self, nets: Iterable[str]) -> tuple[str, ...]:
        """The names of the optimizers that update the parameters of ``nets``."""
        wanted = {id(p) for net in nets for p in self.nets[net].parameters()}
        return tuple(
            name
            for name, optimizer in self.optimizers.items()
            if any(id(p) in wanted for p in _parameters(optimizer))
        )

    def mean_shift_term(self) -> MeanShift:
        """The statistics of the mean-shift term (``i2i.MeanShift``) for this run's training
        sets, on its device. Each process sees its own share of the images and averages what
        it has seen, so a set's size is that of one share. Held as an attribute, they are saved
        and resumed with the run."""
        train, ranks = self.dataset("train"), self.runtime.world_size
        sizes = (-(-len(train.paths_a) // ranks), -(-len(train.paths_b) // ranks))
        return MeanShift(self.channels[0], self.device, sizes)

    def start_colour_maps(self, maps: dict[str, tuple[str, str]]) -> None:
        """Start the colour path of each generator that has one (``--gen-kw colour=true``) at
        the linear colour map between its domains' training images (``i2i.linear_colour_map``;
        turned where the images' colours tell a turn, ``i2i.colour_turn``, the same one each
        way), and its regional map, where it has one (``--gen-kw colour_regions=true``), at
        what the map leaves of the images' difference region by region (``i2i.region_maps``).
        ``maps``: the generator's name -> (its input's domain, its output's), e.g. ``{"G_AB":
        ("A", "B")}``. Every process reads the same images, so the ranks start alike; a resumed
        run then loads the map it had learned."""
        colours = {name: getattr(self.nets[name], "colour", None) for name in maps}
        colours = {name: c for name, c in colours.items() if isinstance(c, nn.Conv2d)}
        if not colours:
            return  # no data read: a task may be built without any (speed benchmarks)
        regions = {name: getattr(self.nets[name], "colour_regions", None) for name in colours}
        paths = dict(zip("AB", self._colour_sample(), strict=True))
        moments: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        cells: dict[str, list[torch.Tensor]] = {"A": [], "B": []}
        pixels: dict[str, list[torch.Tensor]] = {"A": [], "B": []}
        turns: dict[tuple[str, str], torch.Tensor | None] = {}
        grids = [r.gain.shape[-1] for r in regions.values() if r is not None]
        for name, colour in colours.items():
            source, target = maps[name]
            for domain in (source, target):
                if domain not in moments:
                    channels = self.channels["AB".index(domain)]
                    images = _noting(
                        _readable(paths[domain], channels), pixels[domain], colour_pixels
                    )
                    if grids:
                        images = _noting(images, cells[domain], lambda i: cell_moments(i, grids[0]))
                    try:
                        moments[domain] = colour_moments(images)
                    except InvalidArgumentError:  # not one image decoded
                        raise DataError(
                            f"none of the {len(paths[domain])} training images of {domain} "
                            "sampled for the colour map could be read; replace the unreadable "
                            "files, or train without --gen-kw colour"
                        ) from None
            if (target, source) in turns:  # the other way's, undone
                turn = turns[target, source]
                turns[source, target] = None if turn is None else turn.T
            else:
                turns[source, target] = colour_turn(
                    moments[source],
                    moments[target],
                    torch.stack(pixels[source]),
                    torch.stack(pixels[target]),
                )
            matrix, bias = linear_colour_map(
                moments[source], moments[target], turns[source, target]
            )
            with torch.no_grad():
                colour.weight.copy_(matrix[:, :, None, None])
                colour.bias.copy_(bias)
                if regions[name] is not None:
                    gain, shift = region_maps(
                        torch.stack(cells[source]),
                        torch.stack(cells[target]),
                        (matrix, bias),
                        mirrored=AugmentationOptions.of(self.config).flip,
                    )
                    regions[name].gain.copy_(gain[None])
                    regions[name].offset.copy_(shift[None])

    def _colour_sample(self) -> tuple[list[Path], list[Path]]:
        """Up to ``COLOUR_SAMPLE`` training images of A and of B, spread over each folder."""
        train = self.dataset("train")
        return _spread(train.paths_a, COLOUR_SAMPLE), _spread(train.paths_b, COLOUR_SAMPLE)

    def random_stream(self) -> torch.Generator:
        """A CPU random stream of the task's own, for draws made on the host (patch locations,
        coins): seeded from the run's seed, the rank and the order of the calls. Held as an
        attribute (or by an ImagePool) it is saved and resumed with the run."""
        self._streams += 1
        seed = hash((self.seed, self.runtime.rank, self._streams)) & (2**63 - 1)
        return torch.Generator().manual_seed(seed)


def _spread(paths: list[Path], count: int) -> list[Path]:
    """``count`` of ``paths`` evenly spaced (all when there are no more)."""
    n = min(len(paths), count)
    return [paths[i * len(paths) // n] for i in range(n)]


def _readable(paths: list[Path], channels: int) -> Iterable[torch.Tensor]:
    """The images of ``paths`` that decode, small (``COLOUR_SIDE``), in [-1, 1]."""
    for path in paths:
        try:
            yield to_float(load_image(path, channels, COLOUR_SIDE))
        except ImageDecodeError:
            continue


def _noting(
    images: Iterable[torch.Tensor],
    into: list[torch.Tensor],
    measure: Callable[[torch.Tensor], torch.Tensor],
) -> Iterable[torch.Tensor]:
    """``images`` as they come, what ``measure`` makes of each appended to ``into`` on the way
    (the sample is read once, for every statistic the start needs)."""
    for image in images:
        into.append(measure(image))
        yield image


def _parameters(optimizer: torch.optim.Optimizer) -> list[torch.Tensor]:
    return [p for group in optimizer.param_groups for p in group["params"]]


def has_batch_norm(net: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())
