"""pix2pix: one generator G: A -> B and a conditional discriminator D trained on aligned pairs,
with the official code's defaults.

D judges a pair, ``cat(A, B)`` along channels, so it learns whether B is a plausible output *for
this input* rather than a plausible B on its own. G minimises the adversarial loss plus
``lambda_l1`` times the L1 distance to the true B. The step follows the official order: G
translates once, D is updated on (A, B) and (A, G(A)), then G is updated against the new D.

Everything is relative to the data after ``--direction``: with BtoA the dataset hands the B
images in as A, so G always maps "A" to "B" and exports as a single ``AtoB`` model, and
``--domain-a``/``--channels-a`` describe the input side.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import i2i


@dataclass(frozen=True)
class Pix2PixOptions(i2i.OptionGroup):
    lambda_l1: float = i2i.option(100.0, "Weight of the L1 loss between G(A) and B.", minimum=0)
    direction: str = i2i.option(
        "AtoB",
        "Which side of the pairs is the input: BtoA trains B -> A.",
        choices=("AtoB", "BtoA"),
    )


class Pix2Pix(i2i.GANTask):
    """Paired translation A -> B: conditional GAN + L1 to the target."""

    name = "pix2pix"
    paired = True  # A and B share every random crop and flip, so they stay aligned
    Options = Pix2PixOptions
    defaults = {"gen": "unet256", "gan_loss": "vanilla", "norm": "batch", "dropout": True}
    # Without --data: colourisation of the toy day scenes (grey A -> colour B), see toy.py.
    toy_defaults = {
        **i2i.TOY_TRAINING,
        "domain_a": "grey",
        "domain_b": "colour",
        "channels_a": 1,
    }

    @classmethod
    def toy_data_root(cls) -> Path:
        from i2i_plugins.pix2pix.toy import toy_paired_dir

        return toy_paired_dir()  # the core toy data is unpaired

    # -- setup -------------------------------------------------------------------------------
    @property
    def pair_direction(self) -> str:
        return self.opts.direction

    def generators(self) -> dict[str, dict[str, Any]]:
        return {"G": self.generator_spec("AtoB")}

    def discriminators(self) -> dict[str, dict[str, Any]]:
        return {"D": self.discriminator_spec("AB")}  # conditional: D sees cat(A, B)

    def build(self, example: dict[str, torch.Tensor]) -> None:
        self.build_gan()
        self.l1_loss = i2i.create_loss("l1").to(self.device)

    # -- the maths ---------------------------------------------------------------------------
    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        real_A, real_B = batch["A"], batch["B"]
        fake_B = self.G(real_A)
        # The discriminator on (A, G(A)) and (A, B), fake first as the official code.
        critic = self.train_critics(
            D=(torch.cat([real_A, real_B], 1), torch.cat([real_A, fake_B], 1)), fake_first=True
        )
        # The generator against the updated, frozen D.
        with self.optimizing("G") as g:
            loss_G_GAN = self.fool("D", torch.cat([real_A, fake_B], 1))
            loss_G_L1 = self.l1_loss(fake_B, real_B) * self.opts.lambda_l1
            g.minimize(loss_G_GAN + loss_G_L1)
        return {"G_GAN": loss_G_GAN, "G_L1": loss_G_L1, **critic}

    def samples(self, batch: dict[str, torch.Tensor]) -> list[tuple[list[str], list[torch.Tensor]]]:
        real_A, real_B = batch["A"], batch["B"]
        return [(["input", "output", "target"], [real_A, self.nets["G"](real_A), real_B])]
