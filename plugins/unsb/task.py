"""UNSB: unpaired translation as a Schrödinger bridge from domain A to domain B (Kim et al.,
"Unpaired Image-to-Image Translation via Neural Schrödinger Bridge", ICLR 2024).

The translation is a short stochastic path (``i2i.Bridge``, 5 steps by default) from the input
towards the generator's predictions of the endpoint. A training step draws a step number, walks
the path there with the current generator (no gradients), and trains the prediction from that
point: an adversarial term (a time-conditioned PatchGAN), the bridge's own term (an energy
network estimates the entropy of the joint (X_t, X̂₁), plus the transport cost
``τ·||X_t - X̂₁||²``) and CUT's PatchNCE between the input and the prediction (and, as an
identity term, between B and its prediction). Defaults are the paper's horse->zebra settings.
"""

from __future__ import annotations

import inspect
import random
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

import i2i
from i2i_plugins.unsb.recipes import RECIPES

# A one-pass backbone named as --gen (scripts that pass --gen resnet6 to every task) means its
# conditioned version, the same for the default critic.
BRIDGE_GENERATORS = {"resnet9": "unsb_resnet9", "resnet6": "unsb_resnet6"}
TIMED_CRITICS = {"patchgan": "unsb_patchgan", "projected": "unsb_projected"}
# Critics that read RGB images only: the energy network, which reads two (X_t, X̂₁) pairs
# stacked along channels, is then the time-conditioned PatchGAN.
IMAGE_ONLY_CRITICS = {"unsb_projected"}


@dataclass(frozen=True)
class UNSBOptions(i2i.PatchNCEOptions, i2i.MeanShiftOptions):
    bridge_steps: int = i2i.option(
        5, "Steps T of the bridge from A to B (i2i apply may take fewer: --steps).", minimum=1
    )
    tau: float = i2i.option(
        0.01, "Entropy weight of the bridge (the variance of its noise).", minimum=0
    )
    noise_dim: int = i2i.option(256, "Width of the generator's noise vector z.", minimum=1)
    sample_steps: int | None = i2i.option(
        None,
        "Predictions a translation of the trained model walks unless told (i2i apply --steps); "
        "default: all --bridge-steps.",
        minimum=1,
    )
    antialias: bool = i2i.option(
        True, "Anti-aliased down/upsampling in the generator (the official CUT generator)."
    )
    lambda_gan: float = i2i.option(1.0, "Weight of the adversarial loss.", minimum=0)
    lambda_sb: float = i2i.option(
        1.0, "Weight of the bridge's loss (entropy through the energy network, transport cost).",
        minimum=0,
    )  # fmt: skip


def _wide(x: torch.Tensor) -> torch.Tensor:
    """fp32 for half-precision energies (a log-sum-exp over every patch), else as it is."""
    return x.to(torch.promote_types(x.dtype, torch.float32))


def energy_loss(joint: torch.Tensor, cross: torch.Tensor) -> torch.Tensor:
    """The energy network's loss: ``-mean E(joint) + L + L²``, ``L = logsumexp E(cross)``.

    ``joint`` scores (X_t, X̂₁) pairs of one path, ``cross`` pairs across two independent paths;
    the log-sum-exp runs over every patch of every image, as the reference code does, and its
    square keeps the energies from drifting.
    """
    lse = torch.logsumexp(_wide(cross).reshape(-1), dim=0)
    return -_wide(joint).mean() + lse + lse**2


def bridge_loss(
    joint: torch.Tensor,
    cross: torch.Tensor,
    x_t: torch.Tensor,
    predicted: torch.Tensor,
    index: int,
    steps: int,
    tau: float,
) -> torch.Tensor:
    """The generator's bridge term at step ``index``: ``-((T - index)/T)·τ·(mean E(joint) -
    logsumexp E(cross))`` (minus the entropy estimate) ``+ τ·mean ||X_t - X̂₁||²``."""
    entropy = _wide(joint).mean() - torch.logsumexp(_wide(cross).reshape(-1), dim=0)
    transport = (_wide(x_t) - _wide(predicted)).pow(2).mean()
    return -(steps - index) / steps * tau * entropy + tau * transport


class UNSB(i2i.GANTask):
    """Unpaired Neural Schrödinger Bridge A -> B: a few stochastic refinement steps."""

    name = "unsb"
    Options = UNSBOptions
    defaults: dict[str, Any] = {
        "gen": "unsb_resnet9",
        "disc": "unsb_patchgan",
        "init": "xavier",
        "epochs": 200,
        "epochs_decay": 200,
    }
    toy_defaults = {
        **i2i.TOY_TRAINING,
        "gen": "unsb_resnet6",
        "domain_a": "day",
        "domain_b": "night",
    }
    recipes = RECIPES

    option_aliases = {"gen": BRIDGE_GENERATORS, "disc": TIMED_CRITICS}
    argument_options = {"steps": "bridge_steps"}

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        o = self.opts
        if o.sample_steps is not None and o.sample_steps > o.bridge_steps:
            raise i2i.I2IError(
                f"--sample-steps {o.sample_steps} is more than the bridge's --bridge-steps "
                f"{o.bridge_steps}: give at most {o.bridge_steps}"
            )
        a, b = self.channels
        if a != b:
            raise i2i.I2IError(
                f"unsb walks from A images to B images, so both need one channel count; got "
                f"--channels-a {a} and --channels-b {b}"
            )

    # -- networks ----------------------------------------------------------------------------
    def generators(self) -> dict[str, dict[str, Any]]:
        o = self.opts
        bridge = {"steps": o.bridge_steps, "tau": o.tau, "noise_dim": o.noise_dim}
        if o.sample_steps is not None:  # configs without it walk all the steps
            bridge["sample_steps"] = o.sample_steps
        return {"G": self.generator_spec("AtoB", antialias=o.antialias, **bridge)}

    def discriminators(self) -> dict[str, dict[str, Any]]:
        """D judges B images; E scores two (X_t, X̂₁) pairs stacked along channels."""
        d = self.discriminator_spec("B")
        e = self.discriminator_spec("B", "unsb_patchgan") if d["name"] in IMAGE_ONLY_CRITICS else d
        pairs = 4 * self.channels[1]
        return {"D": d, "E": {"name": e["name"], "kwargs": {**e["kwargs"], "in_channels": pairs}}}

    def build(self, example: dict[str, torch.Tensor]) -> None:
        o = self.opts
        self.build_gan()
        generator = self.nets["G"]
        self.bridge = getattr(generator, "bridge", None)
        if not isinstance(self.bridge, i2i.Bridge):
            raise i2i.I2IError(
                f"unsb trains a bridge generator (unsb_resnet9, unsb_resnet6: one that takes a "
                f"time step and noise); --gen {self.generators()['G']['name']} is not one"
            )
        for critic in ("D", "E"):
            if len(inspect.signature(self.nets[critic].forward).parameters) < 2:
                raise i2i.I2IError(
                    f"unsb needs a time-conditioned critic (unsb_patchgan); --disc "
                    f"{self.discriminators()[critic]['name']} takes no time step"
                )
        self.nce_loss = i2i.create_loss(
            "patchnce", temperature=o.nce_temperature, negatives=o.nce_negatives
        )
        self.layers = i2i.nce_layers(o.nce_layers)
        self.nce_idt = o.nce_idt and o.lambda_nce > 0
        # The head's input widths are those of the generator's features on the first batch.
        start = example["A"][:1]
        feats = i2i.probe_features(
            generator,
            lambda: generator.features(start, self._index(start, 0), self._zeros(1), self.layers),
            o.nce_layers,
            self.generators()["G"]["name"],
        )
        head = i2i.PatchProjection([f.shape[1] for f in feats], o.nce_channels, self.init_gain)
        self.F = self.add_network("F", head)
        # build_gan made "G" over G; the two critics get one optimizer each, and the head its own.
        self.adam("D", ["D"], discriminator=True)
        self.adam("E", ["E"], discriminator=True)
        self.adam("F", ["F"])
        # Random streams, saved and resumed with the run. Patch locations on the CPU, moved to
        # the device as index tensors; the bridge's Gaussian noise on the device. The step each
        # training step walks to decides how many passes it makes, so it is a host number:
        # drawn from a Python stream (one from a torch stream would be read back from a tensor),
        # seeded as the kit seeds a task's streams.
        self.rng = self.random_stream()
        self.time_rng = random.Random(self.random_stream().initial_seed())
        self.noise_rng = torch.Generator(device=self.device).manual_seed(
            self.seed + self.runtime.rank
        )
        # The previous batch of A: the second, independent path of the entropy term.
        self.previous_A: torch.Tensor | None = None
        self.mean_shift = self.mean_shift_term() if o.lambda_shift else None
        self.start_colour_maps({"G": ("A", "B")})

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state["time_rng"] = self.time_rng.getstate()
        state["previous_A"] = None if self.previous_A is None else self.previous_A.cpu()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        state = dict(state)
        previous = state.pop("previous_A")
        self.previous_A = None if previous is None else previous.to(self.device)
        if "time_rng" in state:  # runs saved before the steps had their own stream lack it
            self.time_rng.setstate(state.pop("time_rng"))
        super().load_state_dict(state)

    # -- the maths ---------------------------------------------------------------------------
    def _noise(self, shape: Any) -> torch.Tensor:
        return torch.randn(tuple(shape), generator=self.noise_rng, device=self.device)

    def _zeros(self, n: int) -> torch.Tensor:
        return torch.zeros(n, self.bridge.noise_dim, device=self.device)

    def _index(self, x: torch.Tensor, k: int) -> torch.Tensor:
        return torch.full((x.shape[0],), k, dtype=torch.int64, device=x.device)

    def other_paths_start(self, real_A: torch.Tensor) -> torch.Tensor:
        """A images independent of ``real_A``: the previous batch (at the first step, or when
        an epoch's last batch is smaller, this batch rolled by one)."""
        previous = self.previous_A
        if previous is None or previous.shape != real_A.shape:
            return real_A.roll(1, dims=0)
        return previous

    def energies(
        self, E: nn.Module, x_t: torch.Tensor, x1: torch.Tensor, x_t2: torch.Tensor,
        x1_2: torch.Tensor, index: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        """E on joint pairs ((X_t, X̂₁) twice) and cross pairs ((X_t, X̂₁) with the other
        path's), in one pass."""
        joint = torch.cat([x_t, x1], dim=1)
        cross = torch.cat([x_t2, x1_2], dim=1)
        pairs = torch.cat([torch.cat([joint, joint], dim=1), torch.cat([joint, cross], dim=1)])
        return E(pairs, torch.cat([index, index])).chunk(2)

    def nce(self, pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
        """PatchNCE between each source and the prediction made from its path, on the
        generator's features at step 0 with one noise vector per pair (as the reference)."""
        G = self.nets["G"]
        features = []
        for source, output in pairs:
            index, z = self._index(source, 0), self._noise((source.shape[0], self.bridge.noise_dim))
            feat_q = G.features(output, index, z, self.layers)
            with torch.no_grad():
                feat_k = G.features(source, index, z, self.layers)
            features.append((feat_k, feat_q))
        o = self.opts
        return i2i.patch_nce(
            features, self.F, self.nce_loss, o.num_patches, self.rng,
            key_head=self.nets["F"], weight=o.lambda_nce,
        )  # fmt: skip

    def step(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        o, bridge = self.opts, self.bridge
        real_A, real_B = batch["A"], batch["B"]
        if self.mean_shift is not None:
            self.mean_shift.observe(real_A, real_B)
        n = real_A.shape[0]
        k = self.time_rng.randrange(bridge.steps)
        starts = [real_A, self.other_paths_start(real_A)] + ([real_B] if self.nce_idt else [])
        paths = torch.cat(starts)
        index = self._index(paths, k)
        at_k = index[:n]
        # The paths to step k by the current generator (eval mode, as the reference: no dropout).
        G = self.nets["G"]
        with torch.no_grad():
            G.eval()
            x_t = bridge.walk(G, paths, k, self._noise)
            G.train()
        predicted = self.G(x_t, index, self._noise((paths.shape[0], bridge.noise_dim)))
        x_t_A, x_t_A2 = x_t[:n], x_t[n : 2 * n]
        fake_B, fake_B2, idt_B = predicted[:n], predicted[n : 2 * n], predicted[2 * n :]

        # The critics on the detached predictions: D (real B against fake B at step k), then
        # the energy network E.
        logged = self.train_critics(D=(real_B, fake_B, at_k))
        with self.optimizing("E") as energy:
            joint, cross = self.energies(
                self.E, x_t_A, fake_B.detach(), x_t_A2, fake_B2.detach(), at_k
            )
            logged["E"] = energy_loss(joint, cross)
            energy.minimize(logged["E"])

        # The generator and the head against the updated, frozen critics.
        with self.optimizing("G", "F") as g:
            logged["G_GAN"] = loss_G = self.fool("D", fake_B, at_k) * o.lambda_gan
            if o.lambda_sb > 0:
                joint, cross = self.energies(self.judge("E"), x_t_A, fake_B, x_t_A2, fake_B2, at_k)
                logged["SB"] = bridge_loss(joint, cross, x_t_A, fake_B, k, bridge.steps, bridge.tau)
                loss_G = loss_G + o.lambda_sb * logged["SB"]
            if o.lambda_nce > 0:
                pairs = [(real_A, fake_B)] + ([(real_B, idt_B)] if self.nce_idt else [])
                logged["NCE"] = self.nce(pairs)
                loss_G = loss_G + logged["NCE"]
            if self.mean_shift is not None:
                # Every prediction of the endpoint, from any step of the path, is a translation
                # of real A.
                shift = self.mean_shift.loss(real_A, fake_B, "A")
                logged["shift"] = shift * o.lambda_shift
                loss_G = loss_G + logged["shift"]
            g.minimize(loss_G)
        self.previous_A = real_A
        return logged

    # -- samples -----------------------------------------------------------------------------
    def samples(self, batch: dict[str, torch.Tensor]) -> list[tuple[list[str], list[torch.Tensor]]]:
        G, bridge = self.nets["G"], self.bridge
        real_A, real_B = batch["A"], batch["B"]
        walks = sorted({1, bridge.check_steps(None), bridge.steps})  # apply's default, 1, all
        panels = [
            (
                ["real A", *(f"{k} step{'s' if k > 1 else ''}" for k in walks)],
                [real_A, *(bridge.sample(G, real_A, k) for k in walks)],
            )
        ]
        if self.nce_idt:
            panels.append((["real B", "G(real B)"], [real_B, bridge.sample(G, real_B)]))
        return panels
