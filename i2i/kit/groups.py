"""The option groups every task has, each with the one part of the code that reads it.

| group | read by |
|---|---|
| ``RunOptions`` | the trainer (``i2i.train.trainer``): loop, schedule, devices, logging, EMA |
| ``AugmentationOptions`` | the trainer's augmentation (``i2i.train.augmentation``) |
| ``DataOptions`` | the task kit (``i2i.kit.task``): dataset, domains, channels |
| ``OptimizerOptions`` | the task kit: Adam |
| ``GANOptions`` | the task kit's GAN part (``i2i.kit.task``): networks, objective, critic view |

A task adds its own group (``Task.Options``), read by the task alone. ``reader`` names each
group's reader; a test traces every read of a training run and export against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from i2i.kit.options import OptionGroup, option

NORMS = ("instance", "batch", "layer", "none")  # i2i.nets.norm.NORMS, without torch


@dataclass(frozen=True)
class RunOptions(OptionGroup):
    reader: ClassVar[str] = "i2i.train.trainer"

    out: str | None = option(None, "Run folder (default: runs/<task>-<time>).")
    resume: str | None = option(None, "Continue the run in this folder from its last checkpoint.")
    init_from: str | None = option(
        None, "Start from this model's weights: a model folder, a training run or "
        "USER/REPO[@REVISION] on the Hub (fine-tuning); its generators must match this run's.",
    )  # fmt: skip
    epochs: int = option(100, "Epochs at the initial learning rate.", minimum=0)
    epochs_decay: int = option(
        100, "Epochs of linear learning-rate decay to zero after that.", minimum=0
    )
    max_steps: int | None = option(
        None, "Stop after this many steps in total (checkpoint saved).", minimum=0, resumable=True
    )
    batch_size: int = option(1, "Images per domain per step (per GPU under torchrun).", minimum=1)
    warmup_steps: int = option(
        0, "Ramp the learning rate up linearly over this many first steps (0: off).", minimum=0
    )
    seed: int = option(0, "Random seed (each rank adds its rank).")
    device: str = option("auto", "auto, cpu, cuda or cuda:N.", resumable=True)
    precision: str = option("fp32", "Autocast precision.", choices=("fp32", "bf16", "fp16"))
    compile: bool = option(False, "torch.compile the networks.", resumable=True)
    threads: int | None = option(
        None, "Torch CPU threads (default: torch's choice, one per core).", minimum=1,
        resumable=True,
    )  # fmt: skip
    workers: int | None = option(
        None, "DataLoader worker processes (default: 0 on CPU, up to 4 with CUDA).", minimum=0,
        resumable=True,
    )  # fmt: skip
    log_every: int = option(
        50, "Steps between loss lines (the only host syncs).", minimum=1, resumable=True
    )
    sample_every: int = option(
        500, "Steps between sample grids (0: only the last).", minimum=0, resumable=True
    )
    save_every: int = option(1000, "Steps between checkpoints.", minimum=1, resumable=True)
    eval_every: int = option(
        0,
        "Steps between held-out metrics (cycle PSNR/SSIM; for aligned pairs, PSNR/SSIM against "
        "the targets; 0: off).",
        minimum=0,
        resumable=True,
    )
    eval_extractor: str | None = option(
        None, "Also FID/KID during eval with this feature extractor.", resumable=True
    )
    eval_images: int = option(
        16, "Held-out images per domain for --eval-every.", minimum=1, resumable=True
    )
    keep_checkpoints: int = option(2, "How many checkpoints to keep.", minimum=1, resumable=True)
    num_samples: int = option(
        4, "Fixed images per domain in the sample grids.", minimum=1, resumable=True
    )
    ema_decay: float = option(
        0.0,
        "Keep an exponential moving average of the generators with this decay (e.g. 0.999; "
        "0: off); samples, eval and the exported model use the averaged weights.",
        minimum=0,
        below=1,
    )
    # Read when options are resolved: the values it names are recorded, not the name's meaning.
    recipe: str | None = option(
        None, "A named set of option values (see `i2i describe TASK`); none: no recipe."
    )


@dataclass(frozen=True)
class AugmentationOptions(OptionGroup):
    reader: ClassVar[str] = "i2i.train.augmentation"

    load_size: int = option(286, "Resize images to this size before cropping.", minimum=1)
    crop_size: int = option(256, "Random crop size (the size the networks train at).", minimum=1)
    preprocess: str = option(
        "resize_crop", "Geometric preprocessing.", choices=("resize_crop", "scale_width", "none")
    )
    flip: bool = option(True, "Random horizontal flips.")
    augment: str | None = option(
        None, "Extra Kornia augmentations, ';'-separated, e.g. 'color_jitter;affine:degrees=5'."
    )


@dataclass(frozen=True)
class DataOptions(OptionGroup):
    reader: ClassVar[str] = "i2i.kit.task"

    data: str | None = option(None, "Dataset folder; omit to train on the built-in toy dataset.")
    max_images: int | None = option(
        None, "Use at most this many images per domain: the first in sorted path order.", minimum=1
    )
    domain_a: str = option("A", "Name of domain A (the input, for paired tasks), e.g. monet.")
    domain_b: str = option("B", "Name of domain B, e.g. photo.")
    channels_a: int = option(3, "Channels of domain A images (1 for grayscale).", minimum=1)
    channels_b: int = option(3, "Channels of domain B images.", minimum=1)


@dataclass(frozen=True)
class OptimizerOptions(OptionGroup):
    reader: ClassVar[str] = "i2i.kit.task"

    lr: float = option(2e-4, "Adam learning rate.", minimum=0)
    beta1: float = option(0.5, "Adam beta1.", minimum=0, below=1)
    beta2: float = option(0.999, "Adam beta2.", minimum=0, below=1)
    lr_d: float | None = option(None, "Learning rate of critics (TTUR; default: --lr).", minimum=0)


@dataclass(frozen=True)
class GANOptions(OptionGroup):
    reader: ClassVar[str] = "i2i.kit.gan"

    gen: str = option("resnet9", "Generator (any registered name).")
    disc: str = option("patchgan", "Discriminator (any registered name).")
    gen_kw: dict[str, Any] = option(
        None,
        "Extra generator argument KEY=VALUE (repeatable).",
        keyvalue=True,
        arguments_of="gen",
        reserved=("in_channels", "out_channels", "ngf", "norm", "dropout", "init", "init_gain"),
    )
    disc_kw: dict[str, Any] = option(
        None,
        "Extra discriminator argument KEY=VALUE (repeatable).",
        keyvalue=True,
        arguments_of="disc",
        reserved=("in_channels", "ndf", "norm=norm_d", "init", "init_gain"),
    )
    gan_loss: str = option("lsgan", "GAN objective (any registered loss).")
    ngf: int = option(64, "Generator width.", minimum=1)
    ndf: int = option(64, "Discriminator width.", minimum=1)
    norm: str = option("instance", "Normalisation.", choices=NORMS)
    norm_d: str | None = option(
        None,
        "Discriminator normalisation (default: --norm). 'layer' and 'none' keep the global "
        "colour and contrast statistics that instance norm removes (a colour grade the "
        "instance-norm critic cannot see); pair 'none' with spectral norm.",
        choices=NORMS,
    )
    dropout: bool = option(False, "Dropout in the generators.")
    init: str = option(
        "normal", "Weight init.", choices=("normal", "xavier", "kaiming", "orthogonal")
    )
    init_gain: float = option(0.02, "Weight init gain.", minimum=0)
    d_augment: str | None = option(
        None,
        "Differentiable augmentation of every image the discriminator sees, real or fake "
        "(DiffAugment), e.g. 'translation,cutout,color'.",
    )
