"""CycleGAN: two generators and two discriminators trained with adversarial, cycle and identity
losses on unpaired images, with the official code's defaults.

Naming: ``G_AB`` maps A to B and ``D_B`` judges whether an image is a real B. The losses are the
paper's; the liberties taken change how the step is computed, never its gradients: on a GPU,
passes that share a network run as one batch when the network has no batch norm (instance norm
keeps samples independent); on the CPU, each cycle is backpropagated as soon as it is done, which
frees its activations before the next (the objective is a sum).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch

import i2i
from i2i_plugins.cyclegan.recipes import RECIPES


def split(x: torch.Tensor, *sizes: int) -> tuple[torch.Tensor, ...]:
    return tuple(x.split(list(sizes), dim=0))


@dataclass(frozen=True)
class CycleGANOptions(i2i.MeanShiftOptions):
    lambda_cycle: float = i2i.option(10.0, "Weight of both cycle-consistency losses.", minimum=0)
    lambda_a: float | None = i2i.option(
        None, "Cycle weight A->B->A (default: --lambda-cycle).", minimum=0
    )
    lambda_b: float | None = i2i.option(
        None, "Cycle weight B->A->B (default: --lambda-cycle).", minimum=0
    )
    lambda_identity: float = i2i.option(
        0.5, "Identity loss weight, relative to the cycle weight.", minimum=0
    )
    pool_size: int = i2i.option(
        50, "Generated images kept for the discriminators (0: none).", minimum=0
    )


class CycleGAN(i2i.GANTask):
    """Unpaired translation A<->B: adversarial + cycle-consistency + identity losses."""

    name = "cyclegan"
    Options = CycleGANOptions  # the GAN options' defaults are CycleGAN's (resnet9, lsgan...)
    recipes = RECIPES
    toy_defaults = {**i2i.TOY_TRAINING, "domain_a": "day", "domain_b": "night"}

    # -- setup -------------------------------------------------------------------------------
    def generators(self) -> dict[str, dict[str, Any]]:
        return {"G_AB": self.generator_spec("AtoB"), "G_BA": self.generator_spec("BtoA")}

    def discriminators(self) -> dict[str, dict[str, Any]]:
        return {"D_A": self.discriminator_spec("A"), "D_B": self.discriminator_spec("B")}

    def build(self, example: dict[str, torch.Tensor]) -> None:
        o = self.opts
        self.build_gan()
        self.cycle_loss = i2i.create_loss("l1").to(self.device)
        self.identity_loss = i2i.create_loss("l1").to(self.device)
        self.lambda_a = o.lambda_a if o.lambda_a is not None else o.lambda_cycle
        self.lambda_b = o.lambda_b if o.lambda_b is not None else o.lambda_cycle
        # Both terms compare A images with B images: impossible when the channels differ.
        same = len(set(self.channels)) == 1
        self.lambda_idt = o.lambda_identity if same else 0.0
        self.lambda_shift = o.lambda_shift if same else 0.0
        terms = (
            ("identity", "identity", "feeds B images to the A->B generator"),
            ("mean-shift", "shift", "compares the colours of A and B images"),
        )
        for term, option, why in terms:
            if (value := getattr(o, f"lambda_{option}")) and not same:
                a, b = self.channels
                warnings.warn(
                    f"the {term} term is off (--lambda-{option} {value} is not used): it {why}, "
                    f"which --channels-a {a} and --channels-b {b} rule out",
                    i2i.I2IWarning,
                    stacklevel=2,
                )
        self.mean_shift = self.mean_shift_term() if self.lambda_shift else None
        self.start_colour_maps({"G_AB": ("A", "B"), "G_BA": ("B", "A")})
        self.pool_A = i2i.ImagePool(o.pool_size, self.random_stream())
        self.pool_B = i2i.ImagePool(o.pool_size, self.random_stream())
        # Batched passes pay on GPUs; on the CPU they save no time and cost memory, and with
        # batch norm they would change the maths.
        on_gpu = self.device.type != "cpu"
        self.merge_g = on_gpu and not i2i.has_batch_norm(self.nets["G_AB"])

    # -- the maths ---------------------------------------------------------------------------
    def _identity(self, same: torch.Tensor, real: torch.Tensor, lam: float) -> torch.Tensor:
        return self.identity_loss(same, real) * lam * self.lambda_idt

    def _shift(self, real: torch.Tensor, fake: torch.Tensor, source: str) -> dict[str, Any]:
        """The mean-shift term of the generator that made ``fake`` from ``real`` (none when
        the term is off)."""
        if self.mean_shift is None:
            return {}
        return {f"shift_{source}": self.mean_shift.loss(real, fake, source) * self.lambda_shift}

    def _generator_phase_merged(
        self, real_A: torch.Tensor, real_B: torch.Tensor, g: i2i.Optimizing
    ):
        """All generator outputs of one step in three network calls (instance norm or none)."""
        idt = self.lambda_idt > 0
        nA, nB = real_A.shape[0], real_B.shape[0]
        out_AB = self.G_AB(torch.cat([real_A, real_B]) if idt else real_A)
        fake_B = out_AB[:nA]
        inputs = [real_B, fake_B, real_A] if idt else [real_B, fake_B]
        fake_A, rec_A, *idt_A = split(self.G_BA(torch.cat(inputs)), nB, *[nA] * (1 + idt))
        logged = {
            "G_AB": self.fool("D_B", fake_B),
            "G_BA": self.fool("D_A", fake_A),
            "cycle_A": self.cycle_loss(rec_A, real_A) * self.lambda_a,
            "cycle_B": self.cycle_loss(self.G_AB(fake_A), real_B) * self.lambda_b,
            **self._shift(real_A, fake_B, "A"),
            **self._shift(real_B, fake_A, "B"),
        }
        if idt:
            logged["idt_A"] = self._identity(idt_A[0], real_A, self.lambda_a)
            logged["idt_B"] = self._identity(out_AB[nA:], real_B, self.lambda_b)
        g.minimize(sum(logged.values()))
        return logged, fake_A, fake_B

    def _generator_phase_lean(self, real_A: torch.Tensor, real_B: torch.Tensor, g: i2i.Optimizing):
        """One cycle at a time, each backpropagated at once, in the official call order.

        The objective is a sum, so the gradients are the same as one backward of the total,
        but a finished cycle's activations are freed before the next is computed: about 20-40%
        less peak memory, at no cost in speed on the CPU.
        """
        logged, fakes = {}, []
        cycles = (
            (self.G_AB, self.G_BA, "D_B", real_A, self.lambda_a, "G_AB", "cycle_A"),
            (self.G_BA, self.G_AB, "D_A", real_B, self.lambda_b, "G_BA", "cycle_B"),
        )
        for G, F, critic, real, lam, adversarial, cycle in cycles:
            fakes.append(fake := G(real))
            part = {
                adversarial: self.fool(critic, fake),
                cycle: self.cycle_loss(F(fake), real) * lam,
                **self._shift(real, fake, cycle[-1]),
            }
            g.minimize(sum(part.values()))
            logged.update(part)
        if self.lambda_idt > 0:
            part = {
                "idt_B": self._identity(self.G_AB(real_B), real_B, self.lambda_b),
                "idt_A": self._identity(self.G_BA(real_A), real_A, self.lambda_a),
            }
            g.minimize(sum(part.values()))
            logged.update(part)
        fake_B, fake_A = fakes
        return logged, fake_A, fake_B

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        real_A, real_B = batch["A"], batch["B"]
        if self.mean_shift is not None:
            self.mean_shift.observe(real_A, real_B)
        # Generators against the frozen discriminators, then the discriminators on real images
        # and on fakes drawn from the pools.
        with self.optimizing("G") as g:
            phase = self._generator_phase_merged if self.merge_g else self._generator_phase_lean
            logged, fake_A, fake_B = phase(real_A, real_B, g)
        critics = self.train_critics(
            D_A=(real_A, self.pool_A.query(fake_A)), D_B=(real_B, self.pool_B.query(fake_B))
        )
        return {**logged, "D_A": critics["D_A"], "D_B": critics["D_B"]}

    def samples(self, batch: dict[str, torch.Tensor]) -> list[tuple[list[str], list[torch.Tensor]]]:
        G_AB, G_BA = self.nets["G_AB"], self.nets["G_BA"]
        real_A, real_B = batch["A"], batch["B"]
        fake_B, fake_A = G_AB(real_A), G_BA(real_B)
        return [
            (["real A", "fake B", "rec A"], [real_A, fake_B, G_BA(fake_B)]),
            (["real B", "fake A", "rec B"], [real_B, fake_A, G_AB(fake_A)]),
        ]
