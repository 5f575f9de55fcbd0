"""What GAN tasks share: networks from the GAN options, the objective, the critics' step.

``GANTask`` is the kit for a task with generators and discriminators (CycleGAN, pix2pix, CUT, a
third party's). It alone reads ``GANOptions``; a task names its networks by the direction they
translate or the domain they judge, and the kit fills in the registered names and arguments. The
generators' side of the game is ``fool``, inside the task's own ``optimizing("G")`` block; the
discriminators' side is one call, ``train_critics``.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, ClassVar

import torch

from i2i.core.errors import I2IWarning, InvalidArgumentError
from i2i.core.protocol import DIRECTIONS
from i2i.core.registry import Registry, discriminators, generators, losses
from i2i.kit.groups import GANOptions
from i2i.kit.options import OptionGroup
from i2i.kit.task import Task, has_batch_norm

# The GAN settings that become network arguments: the argument's name, and which networks take
# it (a third party's network need not, and then does without).
_NETWORK_SETTINGS = {
    "ngf": ("ngf", "generators"),
    "dropout": ("dropout", "generators"),
    "ndf": ("ndf", "discriminators"),
    "norm_d": ("norm", "discriminators"),
    "norm": ("norm", "any"),
    "init": ("init", "any"),
    "init_gain": ("init_gain", "any"),
}


class GANTask(Task):
    """A task with generators and discriminators (``--gen``, ``--disc``, ``--gan-loss``...)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._gan = GANOptions.of(self.config)

    shared_groups: ClassVar[tuple[type[OptionGroup], ...]] = (*Task.shared_groups, GANOptions)

    # -- networks ----------------------------------------------------------------------------
    def generator_spec(self, direction: str, **shared: Any) -> dict[str, Any]:
        """The ``--gen`` network translating ``direction`` ("AtoB" or "BtoA").

        Its arguments come from --ngf/--norm/--dropout/--init and --gen-kw; ``shared`` settings
        (CUT's ``antialias``) go only to generators that take them.
        """
        if direction not in DIRECTIONS:
            raise InvalidArgumentError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
        a, b = self.channels
        source, target = (a, b) if direction == "AtoB" else (b, a)
        g = self._gan
        common = {
            **shared,
            "in_channels": source,
            "out_channels": target,
            "ngf": g.ngf,
            "norm": g.norm,
            "dropout": g.dropout,
            "init": g.init,
            "init_gain": g.init_gain,
        }
        kwargs = network_kwargs(generators, g.gen, common, g.gen_kw)
        return {"name": g.gen, "kwargs": kwargs, "direction": direction}

    def discriminator_spec(self, judges: str, network: str | None = None) -> dict[str, Any]:
        """The ``--disc`` network judging images of domain "A" or "B", or "AB" pairs (a
        conditional critic sees the input and the output stacked along channels).

        ``network`` names a critic other than ``--disc`` (UNSB's energy network when --disc
        reads images only); it gets the shared settings but not --disc-kw, which is --disc's.
        """
        a, b = self.channels
        widths = {"A": a, "B": b, "AB": a + b}
        if judges not in widths:
            raise InvalidArgumentError(f"judges must be one of {tuple(widths)}, got {judges!r}")
        g = self._gan
        common = {
            "in_channels": widths[judges],
            "ndf": g.ndf,
            "norm": g.norm_d or g.norm,
            "init": g.init,
            "init_gain": g.init_gain,
        }
        if network is not None:
            return {"name": network, "kwargs": network_kwargs(discriminators, network, common, {})}
        return {"name": g.disc, "kwargs": network_kwargs(discriminators, g.disc, common, g.disc_kw)}

    @property
    def init_gain(self) -> float:
        """The --init-gain of the networks, for a task's own modules (CUT's heads)."""
        return self._gan.init_gain

    def build_gan(self) -> None:
        """The networks (as attributes named as in ``generators()``/``discriminators()``), the
        --gan-loss objective, the critics' view (--d-augment), and the Adam optimizers "G" over
        every generator and "D" over every discriminator (--lr-d)."""
        self.build_networks()
        self._warn_unused_settings()
        self.gan_loss = losses.create(self._gan.gan_loss).to(self.device)
        self.d_view = self.discriminator_view()
        # A critic judging for the generators has its parameters frozen: under DDP, which would
        # wait for their gradients, it judges through a view without DDP.
        distributed = self.runtime.world_size > 1
        self._judges = {
            name: self.runtime.prepare(self.nets[name], distributed=False)
            for name in (self.discriminators() if distributed else ())
        }
        self.adam("G", self.generators())
        self.adam("D", self.discriminators(), discriminator=True)

    def _warn_unused_settings(self) -> None:
        """A setting asked for (--norm batch, --dropout) that none of the run's networks takes
        would otherwise be recorded in config.json and the card as if it had been used."""
        taken = {
            "generators": {k for spec in self.generators().values() for k in spec["kwargs"]},
            "discriminators": {
                k for spec in self.discriminators().values() for k in spec["kwargs"]
            },
        }
        taken["any"] = taken["generators"] | taken["discriminators"]
        options = {o.name: o for o in type(self).declared_options()}
        defaults = {name: o.default for name, o in options.items()}
        if self.on_toy_data:  # the toy data's smaller networks are a default too
            defaults.update(type(self).toy_defaults)
        unused = [
            options[name].flag + ("" if options[name].switch else f" {getattr(self._gan, name)}")
            for name, (argument, networks) in _NETWORK_SETTINGS.items()
            if argument not in taken[networks] and getattr(self._gan, name) != defaults.get(name)
        ]
        if unused:
            g = self._gan
            warnings.warn(
                f"{' and '.join(unused)}: no network of this run takes "
                f"{'it' if len(unused) == 1 else 'them'} (--gen {g.gen}, --disc {g.disc}), so "
                f"{'it is' if len(unused) == 1 else 'they are'} not used; `i2i describe NAME` "
                f"lists what a network takes",
                I2IWarning,
                stacklevel=3,
            )

    # -- the objective -----------------------------------------------------------------------
    def judge(self, critic: str) -> torch.nn.Module:
        """The network ``critic`` as the generators' side calls it, its parameters frozen: the
        device-ready one, or under DDP (which would wait for their gradients) a view without
        DDP."""
        return self._judges[critic] if critic in self._judges else getattr(self, critic)

    def fool(self, critic: str, fake: torch.Tensor, *conditions: torch.Tensor) -> torch.Tensor:
        """The generator's adversarial loss: make the (frozen) ``critic`` call ``fake`` real.
        A conditioned critic (UNSB's reads the bridge step) gets ``conditions`` after the
        image."""
        pred = self.judge(critic)(self.d_view(fake), *conditions)
        return self.gan_loss(pred, True, for_discriminator=False)

    def train_critics(
        self, *, fake_first: bool = False, **judged: tuple[torch.Tensor, ...]
    ) -> dict[str, torch.Tensor]:
        """One update of the named critics, each on its ``(real, fake)`` images (``critic_loss``;
        the fakes are detached): ``train_critics(D=(real_B, fake_B))``, with a conditioned
        critic's conditions after the images (``(real, fake, t)``). Several critics share one
        backward and one step of their optimizer (CycleGAN's D_A and D_B).

        Returns each critic's loss under its name and the parts under ``NAME_real``,
        ``NAME_fake`` (and ``NAME_penalty``), for the task to log.
        """
        logged: dict[str, torch.Tensor] = {}
        with self.optimizing(*self._optimizers_of(judged)) as critics:
            for critic, (real, fake, *conditions) in judged.items():
                loss, parts = self.critic_loss(
                    critic, real, fake.detach(), *conditions, fake_first=fake_first
                )
                logged[critic] = loss
                logged.update({f"{critic}_{part}": value for part, value in parts.items()})
            critics.minimize(sum(logged[critic] for critic in judged))
        return logged

    def critic_loss(
        self,
        critic: str,
        real: torch.Tensor,
        fake: torch.Tensor,
        *conditions: torch.Tensor,
        fake_first: bool = False,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """0.5 * (loss on real + loss on fake) plus any penalty of the objective, and its parts;
        a conditioned critic gets ``conditions`` (one per image) after the images.

        Real and fake go through one forward pass when the critic has no batch norm (instance
        norm keeps samples independent, so the maths is the same and it is faster); otherwise
        two passes, real first (CycleGAN's order) or ``fake_first`` (pix2pix's order, always in
        two passes as the official code), which decides batch-norm statistics.
        """
        D, c = getattr(self, critic), conditions
        real, fake = self.d_view(real), self.d_view(fake)
        if fake_first:
            pred_fake, pred_real = D(fake, *c), D(real, *c)
        elif has_batch_norm(self.nets[critic]):
            pred_real, pred_fake = D(real, *c), D(fake, *c)
        else:
            both = [torch.cat([x, x]) for x in c]
            pred_real, pred_fake = split_prediction(
                D(torch.cat([real, fake]), *both), real.shape[0]
            )
        parts = {"real": self.gan_loss(pred_real, True), "fake": self.gan_loss(pred_fake, False)}
        loss = 0.5 * (parts["real"] + parts["fake"])
        penalty = self.gan_loss.penalty(lambda x: D(x, *c), real, fake)
        if penalty is not None:
            parts["penalty"] = penalty
            loss = loss + penalty
        return loss, parts

    def discriminator_view(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """What a discriminator sees of any image, real or fake: --d-augment, else as it is."""
        if not self._gan.d_augment:
            return _identity
        from i2i.diffaugment import build_d_augment

        return build_d_augment(self._gan.d_augment) or _identity


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
