"""GAN objectives and reconstruction losses, registered through the same hook a plugin uses.

Every GAN objective shares :class:`GANLoss`, so a task can swap ``lsgan`` for ``hinge`` or
``wgangp`` without knowing which one it holds: it always calls ``loss(prediction, target_is_real,
for_discriminator)`` and adds ``loss.penalty(D, real, fake)`` to D's loss when that is not None.
Nothing here reads a tensor back to the host, so a training step stays asynchronous on a GPU.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from i2i.core.errors import InvalidArgumentError

Prediction = Tensor | Sequence[Tensor]


class GANLoss(nn.Module, metaclass=abc.ABCMeta):
    """The interface every adversarial objective implements.

    Multi-scale discriminators return one map per scale; each map is scored on its own and the
    scores averaged, so adding scales does not change the loss's magnitude.
    """

    def __init__(self) -> None:  # a signature for the registry; nn.Module's takes **kwargs
        super().__init__()

    def forward(
        self, prediction: Prediction, target_is_real: bool, for_discriminator: bool = True
    ) -> Tensor:
        if isinstance(prediction, Tensor):
            return self.loss(prediction, target_is_real, for_discriminator)
        losses = [self.loss(p, target_is_real, for_discriminator) for p in prediction]
        if not losses:
            raise InvalidArgumentError("a GAN loss needs at least one prediction map")
        return sum(losses) / len(losses)

    @abc.abstractmethod
    def loss(self, prediction: Tensor, target_is_real: bool, for_discriminator: bool) -> Tensor:
        """Score one map; :meth:`forward` averages over scales so subclasses need not."""

    def penalty(
        self, discriminator: Callable[[Tensor], Prediction], real: Tensor, fake: Tensor
    ) -> Tensor | None:
        """A regulariser to add to the discriminator's loss; None for objectives that need none."""
        return None


class _LabelGANLoss(GANLoss):
    """Scores predictions against constant real/fake targets (labels below 1 smooth them)."""

    def __init__(self, real_label: float = 1.0, fake_label: float = 0.0) -> None:
        super().__init__()
        self.real_label = real_label
        self.fake_label = fake_label

    def loss(self, prediction: Tensor, target_is_real: bool, for_discriminator: bool) -> Tensor:
        label = self.real_label if target_is_real else self.fake_label
        return self.criterion(prediction, torch.full_like(prediction, label))

    @abc.abstractmethod
    def criterion(self, prediction: Tensor, target: Tensor) -> Tensor: ...

    def extra_repr(self) -> str:
        return f"real_label={self.real_label}, fake_label={self.fake_label}"


class LSGANLoss(_LabelGANLoss):
    """Least-squares GAN: MSE to the real/fake labels (the official CycleGAN objective).

    Its gradient does not vanish for samples that are confidently classified but still far from
    the decision boundary, which is why CycleGAN trains more stably with it than with BCE.
    """

    def criterion(self, prediction: Tensor, target: Tensor) -> Tensor:
        return F.mse_loss(prediction, target)


class VanillaGANLoss(_LabelGANLoss):
    """The original GAN objective: binary cross-entropy on logits (pix2pix's default).

    The discriminator must output raw logits; the sigmoid is fused into the loss for numerical
    stability.
    """

    def criterion(self, prediction: Tensor, target: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(prediction, target)


class HingeGANLoss(GANLoss):
    """Hinge loss (SAGAN/BigGAN): margin 1 for the discriminator, mean logit for the generator.

    The discriminator stops being pushed on samples beyond the margin, which bounds its logits.
    The generator side has no margin; it maximises D's logit on fakes (``-mean``), and with
    ``target_is_real=False`` it would minimise it (``+mean``).
    """

    def loss(self, prediction: Tensor, target_is_real: bool, for_discriminator: bool) -> Tensor:
        if for_discriminator:
            sign = -1.0 if target_is_real else 1.0
            return F.relu(1.0 + sign * prediction).mean()
        return -prediction.mean() if target_is_real else prediction.mean()


class WGANGPLoss(GANLoss):
    """Wasserstein GAN with gradient penalty: D's mean score gap, kept 1-Lipschitz by a penalty.

    The critic is scored by ``-mean`` on real and ``+mean`` on fake, for D and G alike. The
    penalty pushes the norm of D's input gradient towards ``constant`` at ``gp_type`` points:
    random interpolates between real and fake (``mixed``, Gulrajani et al.), or the real or fake
    samples themselves.
    """

    GP_TYPES = ("mixed", "real", "fake")

    def __init__(
        self, lambda_gp: float = 10.0, constant: float = 1.0, gp_type: str = "mixed"
    ) -> None:
        super().__init__()
        if gp_type not in self.GP_TYPES:
            raise InvalidArgumentError(
                f"gp_type must be one of {', '.join(self.GP_TYPES)}; got {gp_type!r}"
            )
        self.lambda_gp = lambda_gp
        self.constant = constant
        self.gp_type = gp_type

    def loss(self, prediction: Tensor, target_is_real: bool, for_discriminator: bool) -> Tensor:
        return -prediction.mean() if target_is_real else prediction.mean()

    def penalty(
        self, discriminator: Callable[[Tensor], Prediction], real: Tensor, fake: Tensor
    ) -> Tensor:
        """``lambda_gp * mean((||grad_x D(x)||_2 - constant)^2)``, differentiable w.r.t. D.

        The critic's value for one sample is the mean of its output map (averaged over maps for
        a multi-scale D), exactly what :meth:`loss` scores, so the Lipschitz constraint applies to
        the function the objective uses whatever the patch count or batch size. Samples are
        independent (no batch norm in a WGAN critic), so the gradient of the batch sum gives each
        sample's own gradient.
        """
        real, fake = real.detach(), fake.detach()
        if self.gp_type == "real":
            points = real
        elif self.gp_type == "fake":
            points = fake
        else:
            shape = (real.shape[0],) + (1,) * (real.dim() - 1)
            alpha = torch.rand(shape, device=real.device, dtype=real.dtype)
            points = torch.lerp(fake, real, alpha)
        points.requires_grad_(True)
        prediction = discriminator(points)
        maps = [prediction] if isinstance(prediction, Tensor) else list(prediction)
        critic = sum(m.reshape(m.shape[0], -1).mean(1) for m in maps) / len(maps)
        (gradient,) = torch.autograd.grad(critic.sum(), points, create_graph=True)
        norm = torch.linalg.vector_norm(gradient.flatten(1), dim=1)
        return self.lambda_gp * ((norm - self.constant) ** 2).mean()

    def extra_repr(self) -> str:
        return f"lambda_gp={self.lambda_gp}, constant={self.constant}, gp_type={self.gp_type!r}"


class PatchNCELoss(nn.Module):
    """InfoNCE over image patches: CUT's contrastive loss (Park et al., ECCV 2020).

    Each query patch (a feature of the output image) must pick its own key patch (the feature of
    the input at the same place) among the other patches as negatives. Query and key are
    l2-normalised patch features of shape (batch, patches, channels); keys get no gradient.
    ``negatives="image"`` (the paper's default) draws negatives from the same image only,
    ``"batch"`` from every image of the batch. Values per patch equal the official
    ``PatchNCELoss``; ``reduction="none"`` returns them (batch-major), ``"mean"`` averages.
    """

    def __init__(
        self, temperature: float = 0.07, negatives: str = "image", reduction: str = "mean"
    ) -> None:
        super().__init__()
        if negatives not in ("image", "batch"):
            raise InvalidArgumentError(f"negatives must be 'image' or 'batch', got {negatives!r}")
        if reduction not in ("mean", "none"):
            raise InvalidArgumentError(f"reduction must be 'mean' or 'none', got {reduction!r}")
        if not temperature > 0:
            raise InvalidArgumentError(f"temperature must be positive, got {temperature!r}")
        self.temperature, self.negatives, self.reduction = temperature, negatives, reduction

    def forward(self, query: Tensor, key: Tensor) -> Tensor:
        if query.dim() != 3 or query.shape != key.shape:
            raise InvalidArgumentError(
                "patchnce takes query and key of one shape (batch, patches, channels), got "
                f"{tuple(query.shape)} and {tuple(key.shape)}"
            )
        batch, patches, channels = query.shape
        key = key.detach()
        count = batch * patches
        positive = torch.bmm(query.reshape(count, 1, channels), key.reshape(count, channels, 1))
        groups = batch if self.negatives == "image" else 1
        q, k = query.reshape(groups, -1, channels), key.reshape(groups, -1, channels)
        negative = torch.bmm(q, k.transpose(2, 1))
        same = torch.eye(q.shape[1], device=query.device, dtype=torch.bool)[None]
        negative = negative.masked_fill(same, -10.0).reshape(count, -1)
        logits = torch.cat([positive.reshape(count, 1), negative], dim=1) / self.temperature
        target = torch.zeros(count, dtype=torch.long, device=query.device)
        return nn.functional.cross_entropy(logits, target, reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}, negatives={self.negatives!r}"


def l1(reduction: str = "mean") -> nn.L1Loss:
    """Mean absolute error: pix2pix's reconstruction term, CycleGAN's cycle and identity terms.

    L1 rather than L2 because it blurs less: it does not square away small errors in favour of
    averaging over plausible outputs.
    """
    return nn.L1Loss(reduction=reduction)


def l2(reduction: str = "mean") -> nn.MSELoss:
    """Mean squared error, for reconstruction terms that should punish outliers harder than L1."""
    return nn.MSELoss(reduction=reduction)
