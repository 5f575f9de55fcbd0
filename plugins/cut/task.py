"""CUT and FastCUT: one generator, one discriminator, and a patchwise contrastive loss.

Instead of a second generator and a cycle, CUT keeps the content by asking each patch of the
output to be recognisable as the input patch at the same place, among the other patches of the
image (PatchNCE on the generator's own encoder features, through a small projection head).
Defaults are the official code's (taesungp/contrastive-unpaired-translation): CUT adds the
identity NCE term on domain B; FastCUT drops it, weights NCE by 10 and adds flip equivariance.
"""

from __future__ import annotations

from typing import Any

import torch

import i2i
from i2i_plugins.cut.heads import PatchProjection, patch_ids, sample_patches


def cut_options(
    *, lambda_nce: float, nce_idt: bool, flip_equivariance: bool, epochs: int, epochs_decay: int
) -> tuple[Any, ...]:
    Option = i2i.Option
    return (
        Option("epochs", epochs, "Epochs at the initial learning rate.", int, minimum=0),
        Option("epochs_decay", epochs_decay, "Epochs of linear decay to zero.", int, minimum=0),
        *i2i.gan_options(
            gen="resnet9",
            disc="patchgan",
            gan_loss="lsgan",
            norm="instance",
            dropout=False,
            init="xavier",
        ),
        Option(
            "antialias",
            True,
            "Use strided/transposed convs instead of the anti-aliased generator.",
            bool,
            switch="--no-antialias",
        ),
        Option("lambda_gan", 1.0, "Weight of the adversarial loss.", float, minimum=0),
        Option("lambda_nce", lambda_nce, "Weight of the PatchNCE loss.", float, minimum=0),
        Option(
            "nce_idt",
            nce_idt,
            "Identity NCE on domain B (G(B) keeps B's patches)."
            if not nce_idt
            else "Drop the identity NCE term on domain B.",
            bool,
            switch="--nce-idt" if not nce_idt else "--no-nce-idt",
        ),
        Option(
            "nce_layers", "0,4,8,12,16", "Generator layers for PatchNCE (comma-separated).", str
        ),
        Option("num_patches", 256, "Patches per layer and image.", int, minimum=1),
        Option("nce_temperature", 0.07, "PatchNCE temperature.", float, minimum=1e-6),
        Option("nce_channels", 256, "Width of the projection head's MLPs.", int, minimum=1),
        Option(
            "nce_negatives",
            "image",
            "Negatives from the same image, or from the whole batch.",
            str,
            choices=("image", "batch"),
        ),
        Option(
            "flip_equivariance",
            flip_equivariance,
            "Flip the input half of the time; the output must flip with it."
            if not flip_equivariance
            else "Turn off flip equivariance.",
            bool,
            switch="--flip-equivariance" if not flip_equivariance else "--no-flip-equivariance",
        ),
    )


class CUT(i2i.Task):
    """Contrastive Unpaired Translation A -> B (one direction, no cycle)."""

    name = "cut"
    options = cut_options(
        lambda_nce=1.0, nce_idt=True, flip_equivariance=False, epochs=200, epochs_decay=200
    )
    toy_defaults = {**i2i.TOY_TRAINING, "domain_a": "day", "domain_b": "night"}

    def dataset(self, split: str) -> i2i.UnalignedDataset:
        c = self.config
        channels = (c["channels_a"], c["channels_b"])
        return i2i.UnalignedDataset(
            self.data_root,
            split=split,
            max_images=c["max_images"],
            channels=channels,
            seed=c["seed"],
        )

    def held_out_item(self, dataset: i2i.UnalignedDataset, index: int) -> dict[str, Any]:
        return dataset.fixed_item(index)

    def generators(self) -> dict[str, dict[str, Any]]:
        c = self.config
        kwargs = self.generator_kwargs(c["channels_a"], c["channels_b"], antialias=c["antialias"])
        return {"G": {"name": c["gen"], "kwargs": kwargs, "direction": "AtoB"}}

    def discriminators(self) -> dict[str, dict[str, Any]]:
        kwargs = self.discriminator_kwargs(self.config["channels_b"])
        return {"D": {"name": self.config["disc"], "kwargs": kwargs}}

    def build(self, example: dict[str, torch.Tensor]) -> None:
        c = self.config
        self.build_gan()
        self.nce_loss = i2i.create_loss(
            "patchnce", temperature=c["nce_temperature"], negatives=c["nce_negatives"]
        )
        self.layers = [int(x) for x in str(c["nce_layers"]).split(",") if x.strip()]
        self.nce_idt = c["nce_idt"] and c["channels_a"] == c["channels_b"]
        # The head's input widths are those of the generator's features on the first batch.
        generator = self.nets["G"]
        was_training = generator.training
        with torch.no_grad():
            feats = i2i.extract_features(generator.eval(), example["A"][:1], self.layers)
        generator.train(was_training)
        head = PatchProjection([f.shape[1] for f in feats], c["nce_channels"], c["init_gain"])
        self.F = self.add_network("F", head)
        self.adam("G", ["G"])
        self.adam("D", ["D"], discriminator=True)
        self.adam("F", ["F"])
        # Patch locations and flips have their own stream, saved and resumed with the run.
        self.rng = torch.Generator().manual_seed(c["seed"] + self.runtime.rank)

    # -- the maths ---------------------------------------------------------------------------
    def nce(self, pairs: list[tuple[torch.Tensor, torch.Tensor]], flipped: bool) -> torch.Tensor:
        """Mean over ``(source, output)`` pairs of the PatchNCE loss averaged over layers.

        Keys (the sources' features) get no gradient, so they are encoded without a graph; the
        query patches of every pair go through the head in one call.
        """
        G, lam = self.nets["G"], self.config["lambda_nce"]
        queries, keys = [], []
        for source, output in pairs:
            feat_q = i2i.extract_features(G, output, self.layers)
            if flipped:
                feat_q = [f.flip(3) for f in feat_q]
            with torch.no_grad():
                feat_k = i2i.extract_features(G, source, self.layers)
            ids = patch_ids(feat_k, self.config["num_patches"], self.rng)
            queries.append(sample_patches(feat_q, ids))
            with torch.no_grad():
                keys.append(self.nets["F"](sample_patches(feat_k, ids)))
        sizes = [q[0].shape[0] for q in queries]
        projected = self.F([torch.cat(layer) for layer in zip(*queries, strict=True)])
        per_pair = [list(layer.split(sizes)) for layer in projected]
        total = 0.0
        for index, key in enumerate(keys):
            layer_losses = [
                self.nce_loss(per_pair[layer][index], key[layer]) * lam
                for layer in range(len(self.layers))
            ]
            total = total + sum(layer_losses) / len(self.layers)
        return total / len(pairs)

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        rt, c = self.runtime, self.config
        real_A, real_B = batch["A"], batch["B"]
        n = real_A.shape[0]
        real = torch.cat([real_A, real_B]) if self.nce_idt else real_A
        flipped = c["flip_equivariance"] and torch.rand((), generator=self.rng).item() < 0.5
        with rt.autocast():
            fake = self.G(real.flip(3) if flipped else real)
        fake_B, idt_B = fake[:n], fake[n:]

        # The discriminator on real B and on the detached fake, as the official code.
        self.set_requires_grad([self.D], True)
        self.optimizers["D"].zero_grad(set_to_none=True)
        with rt.autocast():
            loss_D, parts = self.critic_loss("D", real_B, fake_B.detach())
        rt.backward(loss_D)
        rt.step(self.optimizers["D"])

        # Generator and head against the updated, frozen discriminator.
        self.set_requires_grad([self.D], False)
        self.optimizers["G"].zero_grad(set_to_none=True)
        self.optimizers["F"].zero_grad(set_to_none=True)
        with rt.autocast():
            loss_G_GAN = self.fool("D", fake_B) * c["lambda_gan"]
            pairs = [(real_A, fake_B)] + ([(real_B, idt_B)] if self.nce_idt else [])
            loss_NCE = self.nce(pairs, flipped)
        rt.backward(loss_G_GAN + loss_NCE)
        rt.step(self.optimizers["G"])
        rt.step(self.optimizers["F"])
        rt.update()
        logged = {"G_GAN": loss_G_GAN, "NCE": loss_NCE}
        logged.update({f"D_{part}": value for part, value in parts.items()})
        return {k: v.detach().float() for k, v in logged.items()}

    def samples(self, batch: dict[str, torch.Tensor]) -> list[tuple[list[str], list[torch.Tensor]]]:
        G = self.nets["G"]
        real_A, real_B = batch["A"], batch["B"]
        return [
            (["real A", "fake B"], [real_A, G(real_A)]),
            (["real B", "G(real B)"], [real_B, G(real_B)]),
        ]

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self.rng.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rng.set_state(state["rng"])


class FastCUT(CUT):
    """FastCUT: CUT without the identity term, NCE weight 10, flip equivariance, shorter."""

    name = "fastcut"
    options = cut_options(
        lambda_nce=10.0, nce_idt=False, flip_equivariance=True, epochs=150, epochs_decay=50
    )
