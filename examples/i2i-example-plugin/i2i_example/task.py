"""A third party's task: one generator A -> B kept close to its input (a "distance" GAN).

It shows everything a task writes: its options, its networks, optimizers, the maths of a step
and the sample panels. The trainer gives it data, devices, precision, EMA, logging, samples,
checkpoints, resume, DDP and export, exactly as for CycleGAN.
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
        self.build_gan()  # self.G, self.D, self.gan_loss
        self.adam("G", ["G"])
        self.adam("D", ["D"], discriminator=True)

    def step(self, batch):
        rt, real_A, real_B = self.runtime, batch["A"], batch["B"]
        self.set_requires_grad([self.D], False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        with rt.autocast():
            fake_B = self.G(real_A)
            loss_gan = self.fool("D", fake_B)
            loss_input = (fake_B - real_A).abs().mean() * self.opts.lambda_input
        rt.backward(loss_gan + loss_input)
        rt.step(self.optimizers["G"])
        self.set_requires_grad([self.D], True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        with rt.autocast():
            loss_D, _ = self.critic_loss("D", real_B, fake_B.detach())
        rt.backward(loss_D)
        rt.step(self.optimizers["D"])
        rt.update()
        return {
            k: v.detach().float() for k, v in {"G": loss_gan, "L1": loss_input, "D": loss_D}.items()
        }

    def samples(self, batch):
        return [(["real A", "fake B"], [batch["A"], self.nets["G"](batch["A"])])]
