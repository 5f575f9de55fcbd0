"""A toy GAN task on the kit, with one-layer networks, for tests of the kit's step and the
compiled step (quick to build, quick to compile)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import i2i
from i2i.core.registry import discriminators, generators


def one_conv_generator(in_channels: int = 3, out_channels: int = 3) -> nn.Module:
    """One convolution and a tanh."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, padding=1), nn.Tanh())


def one_conv_critic(in_channels: int = 3) -> nn.Module:
    """One strided convolution: a patch map of scores."""
    return nn.Sequential(nn.Conv2d(in_channels, 1, 4, stride=2, padding=1))


class _Plugin:
    @staticmethod
    @i2i.hookimpl
    def register_generators(register):
        register(one_conv_generator)

    @staticmethod
    @i2i.hookimpl
    def register_discriminators(register):
        register(one_conv_critic)


def register_toy_networks() -> None:
    if "one_conv_generator" not in generators:
        from i2i.core.plugins import register_plugin

        register_plugin(_Plugin, name="test-toy-networks")
    assert "one_conv_critic" in discriminators


class Toy(i2i.GANTask):
    """One generator A -> B against one critic, plus an L1 pull towards the input."""

    name = "toy"
    defaults = {"gen": "one_conv_generator", "disc": "one_conv_critic"}

    def generators(self) -> dict[str, dict[str, Any]]:
        return {"G": self.generator_spec("AtoB")}

    def discriminators(self) -> dict[str, dict[str, Any]]:
        return {"D": self.discriminator_spec("B")}

    def build(self, example: dict[str, torch.Tensor]) -> None:
        self.build_gan()

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        real_A, real_B = batch["A"], batch["B"]
        with self.optimizing("G") as g:
            fake_B = self.G(real_A)
            loss_gan = self.fool("D", fake_B)
            loss_l1 = (fake_B - real_A).abs().mean()
            g.minimize(loss_gan + loss_l1)
        critic = self.train_critics(D=(real_B, fake_B))
        return {"G": loss_gan, "L1": loss_l1, "D": critic["D"]}

    def samples(self, batch: dict[str, torch.Tensor]) -> list[tuple[list[str], Any]]:
        return [(["real A", "fake B"], [batch["A"], self.nets["G"](batch["A"])])]


TOY_OPTIONS = {
    "load_size": 18,
    "crop_size": 16,
    "workers": 0,
    "log_every": 1,
    "sample_every": 1000,
    "save_every": 1000,
    "num_samples": 1,
    "epochs": 1,
    "epochs_decay": 1,
}
