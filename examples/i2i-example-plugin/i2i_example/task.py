"""A third party's task: one generator A -> B kept close to its input (a "distance" GAN).

It shows everything a task writes: its options, its networks, the maths of a step and the
sample panels. The kit gives it the networks, their optimizers and the optimisation itself
(freezing the critic, zeroing, precision, loss scaling, backward, the optimizer steps, EMA); the
trainer gives it data, devices, logging, samples, checkpoints, resume, DDP and export, exactly
as for CycleGAN.
"""

from dataclasses import dataclass

import i2i


@dataclass(frozen=True)
class OneSidedOptions(i2i.OptionGroup):
    lambda_input: float = i2i.option(10.0, "Weight of the L1 distance to the input.", minimum=0)


class OneSided(i2i.GANTask):
    """One-sided translation A -> B: fool D_B while staying close to the input (L1)."""

    name = "onesided"
    Options = OneSidedOptions  # read as self.opts; the GAN kit reads --gen, --disc, --ngf...
    defaults = {"gen": "resnet6"}
    toy_defaults = {**i2i.TOY_TRAINING, "domain_a": "day", "domain_b": "night"}

    def generators(self):
        return {"G": self.generator_spec("AtoB")}

    def discriminators(self):
        return {"D": self.discriminator_spec("B")}

    def build(self, example):
        self.build_gan()  # self.G, self.D, self.gan_loss, the optimizers "G" and "D"

    def step(self, batch):
        real_A, real_B = batch["A"], batch["B"]
        with self.optimizing("G") as g:  # D frozen inside; G's optimizer steps on leaving
            fake_B = self.G(real_A)
            loss_gan = self.fool("D", fake_B)
            loss_input = (fake_B - real_A).abs().mean() * self.opts.lambda_input
            g.minimize(loss_gan + loss_input)
        critic = self.train_critics(D=(real_B, fake_B))  # D's update on real and (detached) fake
        return {"G": loss_gan, "L1": loss_input, "D": critic["D"]}

    def samples(self, batch):
        return [(["real A", "fake B"], [batch["A"], self.nets["G"](batch["A"])])]
