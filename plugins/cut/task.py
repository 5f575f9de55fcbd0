"""CUT and FastCUT: one generator, one discriminator, and a patchwise contrastive loss.

Instead of a second generator and a cycle, CUT keeps the content by asking each patch of the
output to be recognisable as the input patch at the same place, among the other patches of the
image (PatchNCE on the generator's own encoder features, through a small projection head).
Defaults are the official code's (taesungp/contrastive-unpaired-translation): CUT adds the
identity NCE term on domain B; FastCUT drops it, weights NCE by 10 and adds flip equivariance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

import i2i
from i2i_plugins.cut.recipes import FASTCUT_RECIPES, RECIPES


@dataclass(frozen=True)
class CUTOptions(i2i.PatchNCEOptions, i2i.MeanShiftOptions):
    antialias: bool = i2i.option(
        True, "Anti-aliased down/upsampling in the generator (the official CUT generator)."
    )
    lambda_gan: float = i2i.option(1.0, "Weight of the adversarial loss.", minimum=0)
    flip_equivariance: bool = i2i.option(
        False, "Flip the input half of the time; the output must flip with it."
    )


class CUT(i2i.GANTask):
    """Contrastive Unpaired Translation A -> B (one direction, no cycle)."""

    name = "cut"
    Options = CUTOptions
    defaults: dict[str, Any] = {"init": "xavier", "epochs": 200, "epochs_decay": 200}
    toy_defaults = {**i2i.TOY_TRAINING, "domain_a": "day", "domain_b": "night"}
    recipes = RECIPES

    def generators(self) -> dict[str, dict[str, Any]]:
        return {"G": self.generator_spec("AtoB", antialias=self.opts.antialias)}

    def discriminators(self) -> dict[str, dict[str, Any]]:
        return {"D": self.discriminator_spec("B")}

    def build(self, example: dict[str, torch.Tensor]) -> None:
        o = self.opts
        if o.lambda_gan == 0 and o.lambda_nce == 0:
            raise i2i.I2IError(
                "--lambda-gan and --lambda-nce are both 0: the generator would have nothing to "
                "learn from; give one of them a weight"
            )
        a, b = self.channels
        if a != b:
            raise i2i.InvalidArgumentError(
                f"{self.name} compares patches of A images with patches of their translations "
                f"through one encoder, so both need one channel count; got --channels-a {a} and "
                f"--channels-b {b} (cyclegan translates between them)"
            )
        self.build_gan()
        self.nce_loss = i2i.create_loss(
            "patchnce", temperature=o.nce_temperature, negatives=o.nce_negatives
        )
        self.layers = i2i.nce_layers(o.nce_layers)
        self.nce_idt = o.nce_idt and len(set(self.channels)) == 1
        # The head's input widths are those of the generator's features on the first batch.
        generator = self.nets["G"]
        feats = i2i.probe_features(
            generator,
            lambda: i2i.extract_features(generator, example["A"][:1], self.layers),
            o.nce_layers,
            self.generators()["G"]["name"],
        )
        head = i2i.PatchProjection([f.shape[1] for f in feats], o.nce_channels, self.init_gain)
        self.F = self.add_network("F", head)
        self.adam("F", ["F"])  # the head has its own optimizer, as upstream
        # Patch locations and flips have their own stream, saved and resumed with the run.
        self.rng = self.random_stream()
        self.mean_shift = self.mean_shift_term() if o.lambda_shift else None
        self.start_colour_maps({"G": ("A", "B")})

    # -- the maths ---------------------------------------------------------------------------
    def nce(
        self, pairs: list[tuple[torch.Tensor, torch.Tensor]], flip: torch.Tensor | None
    ) -> torch.Tensor:
        """Mean over ``(source, output)`` pairs of the PatchNCE loss averaged over layers.

        Keys (the sources' features) get no gradient, so they are encoded without a graph.
        """
        G = self.nets["G"]
        features = []
        for source, output in pairs:
            feat_q = [flipped(f, flip) for f in i2i.extract_features(G, output, self.layers)]
            with torch.no_grad():
                feat_k = i2i.extract_features(G, source, self.layers)
            features.append((feat_k, feat_q))
        o = self.opts
        return i2i.patch_nce(
            features, self.F, self.nce_loss, o.num_patches, self.rng,
            key_head=self.nets["F"], weight=o.lambda_nce,
        )  # fmt: skip

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        o = self.opts
        real_A, real_B = batch["A"], batch["B"]
        if self.mean_shift is not None:
            self.mean_shift.observe(real_A, real_B)
        n = real_A.shape[0]
        real = torch.cat([real_A, real_B]) if self.nce_idt else real_A
        # Half of the time the input is flipped; the coin stays on the device as a mask.
        flip = None
        if o.flip_equivariance:
            flip = (torch.rand((), generator=self.rng) < 0.5).to(self.device, non_blocking=True)
        fake = self.G(flipped(real, flip))
        fake_B, idt_B = fake[:n], fake[n:]
        # The discriminator first, on real B and the detached fake, as the official code; then
        # the generator and its head against the updated, frozen discriminator.
        critic = self.train_critics(D=(real_B, fake_B))
        with self.optimizing("G", "F") as g:
            loss_G_GAN = self.fool("D", fake_B) * o.lambda_gan
            pairs = [(real_A, fake_B)] + ([(real_B, idt_B)] if self.nce_idt else [])
            loss_NCE = self.nce(pairs, flip)
            shift = self._shift(real_A, flipped(fake_B, flip))
            g.minimize(loss_G_GAN + loss_NCE + sum(shift.values()))
        return {"G_GAN": loss_G_GAN, "NCE": loss_NCE, **shift, **critic}

    def _shift(self, real_A: torch.Tensor, fake_B: torch.Tensor) -> dict[str, torch.Tensor]:
        """The mean-shift term of the change from ``real_A`` to ``fake_B`` (made from the
        flipped input, it is flipped back: each cell compared with its own); none when the term
        is off."""
        if self.mean_shift is None:
            return {}
        return {"shift": self.mean_shift.loss(real_A, fake_B, "A") * self.opts.lambda_shift}

    def samples(self, batch: dict[str, torch.Tensor]) -> list[tuple[list[str], list[torch.Tensor]]]:
        G = self.nets["G"]
        real_A, real_B = batch["A"], batch["B"]
        return [
            (["real A", "fake B"], [real_A, G(real_A)]),
            (["real B", "G(real B)"], [real_B, G(real_B)]),
        ]


def flipped(x: torch.Tensor, flip: torch.Tensor | None) -> torch.Tensor:
    """``x`` mirrored left-right where the device-side coin ``flip`` is true."""
    return x if flip is None else torch.where(flip, x.flip(3), x)


class FastCUT(CUT):
    """FastCUT: CUT without the identity term, NCE weight 10, flip equivariance, shorter."""

    name = "fastcut"
    defaults = {
        **CUT.defaults,
        "lambda_nce": 10.0,
        "nce_idt": False,
        "flip_equivariance": True,
        "epochs": 150,
        "epochs_decay": 50,
    }
    recipes = FASTCUT_RECIPES
