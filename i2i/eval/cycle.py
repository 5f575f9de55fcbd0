"""``cycle_metrics``: the light check for use during training, and the cycle scores that the full
evaluation shares with it.

Cycle PSNR/SSIM on a fixed batch, and FID/KID only when an extractor is given (it is
expensive). Both take a ``Translator`` or a mapping of direction -> generator module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from i2i.bridge import BridgeRunner, bridge_of
from i2i.core.checks import check_positive
from i2i.core.device import unwrap
from i2i.core.errors import InvalidArgumentError
from i2i.core.protocol import REVERSE, SOURCE, TARGET
from i2i.data import to_uint8
from i2i.eval.extractors import FeatureExtractor, create_extractor, embed_images
from i2i.eval.statistics import compare_features, finite_or_none, psnr, ssim

__all__ = ["cycle_metrics", "flat_metrics"]

SSIM_MIN = 11


# -- small helpers --------------------------------------------------------------------------------
def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


# What is compared with what: the cycle (reconstructions with their inputs) or, for aligned
# pairs, the translations with their targets.
CYCLE = ("reconstructions", "inputs", "no cycle metrics")
TARGETS = ("translations", "targets", "no PSNR/SSIM against the targets")


def cycle_scores(
    x: torch.Tensor, rec: torch.Tensor, notes: set[str], kind: tuple[str, str, str] = CYCLE
) -> tuple[list[float], list[float]]:
    """Per-image PSNR and SSIM of ``rec`` against ``x``, or nothing (with a note) if
    incomparable; ``kind`` names the two for the notes."""
    if x.shape != rec.shape:
        outputs, references, consequence = kind
        notes.add(
            f"{outputs} are {tuple(rec.shape[1:])} but {references} {tuple(x.shape[1:])}: "
            f"{consequence}"
        )
        return [], []
    rec = rec.clamp(-1.0, 1.0)
    psnrs = psnr(x, rec).tolist()
    if min(x.shape[-2:]) < SSIM_MIN:
        notes.add(f"images smaller than {SSIM_MIN}x{SSIM_MIN}: no SSIM")
        return psnrs, []
    return psnrs, ssim(x, rec).tolist()


def summarise_cycle(
    psnrs: list[float], ssims: list[float], notes: set[str], kind: tuple[str, str, str] = CYCLE
) -> dict[str, Any]:
    mean_psnr = _mean(psnrs)
    if mean_psnr is not None and not math.isfinite(mean_psnr):
        outputs, references, _ = kind
        notes.add(f"some {outputs} equal their {references} exactly (infinite PSNR): PSNR omitted")
    return {"cycle_psnr": finite_or_none(mean_psnr), "cycle_ssim": finite_or_none(_mean(ssims))}


# -- the lighter check for training ---------------------------------------------------------------
class _Generators:
    """Raw generator modules behind the Translator's call signature (no padding: valid sizes)."""

    def __init__(self, nets: Mapping[str, nn.Module]):
        unknown = sorted(set(nets) - set(SOURCE))
        if unknown or not nets:
            raise InvalidArgumentError(
                f"generators must be keyed by direction (AtoB, BtoA), got {sorted(nets)}"
            )
        self.nets = {d: unwrap(n) for d, n in nets.items()}
        self.directions = tuple(self.nets)

    def __call__(self, x: torch.Tensor, direction: str) -> torch.Tensor:
        net = self.nets[direction]
        device = next(iter(net.parameters()), torch.empty(0)).device
        was_training = net.training
        net.eval()
        bridge = bridge_of(net)
        run = net if bridge is None else BridgeRunner(net, bridge)
        try:
            with torch.no_grad():
                return run(x.to(device)).float().to(x.device)
        finally:
            net.train(was_training)


def as_model(model: Any) -> Any:
    if isinstance(model, Mapping):
        return _Generators(model)
    if callable(model) and hasattr(model, "directions"):
        return model
    raise InvalidArgumentError(
        "expected a Translator (i2i.load(...)) or a mapping of direction -> generator module, got "
        f"{type(model).__name__}"
    )


def _cached_real_features(
    cache: dict[str, Any], extractor: FeatureExtractor, domain: str, images: torch.Tensor
) -> torch.Tensor:
    key = f"real:{extractor.name}:{domain}"
    stamp = (tuple(images.shape), float(images.double().sum()))
    hit = cache.get(key)
    if hit is not None and hit[0] == stamp:
        return hit[1]
    features = embed_images(extractor, to_uint8(images))
    cache[key] = (stamp, features)
    return features


def cycle_metrics(
    model: Any,
    images: Mapping[str, torch.Tensor] | torch.Tensor,
    *,
    extractor: str | FeatureExtractor | None = None,
    cache: dict[str, Any] | None = None,
    batch_size: int = 8,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    device: str | torch.device | None = None,
    paired: bool = False,
) -> dict[str, dict[str, Any]]:
    """Cycle PSNR/SSIM per direction on a fixed batch; FID/KID too when ``extractor`` is given.

    ``model`` is a ``Translator`` or ``{"AtoB": G_AB, "BtoA": G_BA}`` (modules are run in eval
    mode under ``no_grad`` and put back in their previous mode; DDP wrappers are unwrapped; no
    padding, so sizes must suit the generators, as training crops do). ``images`` maps a domain
    (``"A"``, ``"B"``) to a float (N, C, H, W) batch in [-1, 1]; a bare tensor means domain A.
    FID/KID compare the translations with the real images of the target domain in ``images``,
    so both domains must be given; pass the same dict as ``cache`` on every call to compute the
    real images' features (and the extractor) once. The extractor runs on ``device`` (default:
    CUDA when present). Call it on one rank only under DDP.

    ``paired`` says the two batches are aligned pairs (pix2pix), so each translation is also
    scored against its own target (``psnr``, ``ssim``): a one-way model then has a measure of
    its own, not only FID/KID.
    """
    check_positive("batch_size", batch_size)
    runner = as_model(model)
    batches = {"A": images} if isinstance(images, torch.Tensor) else dict(images)
    cache = {} if cache is None else cache
    ext: FeatureExtractor | None = None
    if extractor is not None:
        key = f"extractor:{extractor if isinstance(extractor, str) else id(extractor)}"
        if key not in cache:
            cache[key] = create_extractor(extractor, device or _default_device())
        ext = cache[key]
    results: dict[str, dict[str, Any]] = {}
    for direction in runner.directions:
        x = batches.get(SOURCE[direction])
        if x is None:
            continue
        if not x.is_floating_point() or x.ndim != 4:
            raise InvalidArgumentError(
                f"images must be float (N, C, H, W) in [-1, 1], got {x.dtype} {tuple(x.shape)}"
            )
        notes: set[str] = set()
        fakes, psnrs, ssims, target_psnrs, target_ssims = [], [], [], [], []
        real = batches.get(TARGET[direction])
        targets = None
        if paired and real is not None and len(real) == len(x):
            targets = real.split(batch_size)
        elif paired:
            notes.add(f"no aligned {TARGET[direction]} batch as long as the inputs: no PSNR/SSIM")
        for index, chunk in enumerate(x.split(batch_size)):
            fake = runner(chunk, direction=direction)
            fakes.append(fake)
            if targets is not None:
                p, s = cycle_scores(targets[index], fake, notes, TARGETS)
                target_psnrs += p
                target_ssims += s
            if REVERSE[direction] in runner.directions:
                rec = runner(fake, direction=REVERSE[direction])
                p, s = cycle_scores(chunk, rec, notes)
                psnrs += p
                ssims += s
        entry: dict[str, Any] = {"n_images": x.shape[0]}
        if REVERSE[direction] in runner.directions:
            entry.update(summarise_cycle(psnrs, ssims, notes))
        else:
            entry.update(cycle_psnr=None, cycle_ssim=None)
            notes.add("the model has one direction: no cycle metrics")
        if targets is not None:
            scores = summarise_cycle(target_psnrs, target_ssims, notes, TARGETS)
            entry.update(psnr=scores["cycle_psnr"], ssim=scores["cycle_ssim"])
        if ext is not None and real is not None:
            real_features = _cached_real_features(cache, ext, TARGET[direction], real)
            fake_features = embed_images(ext, to_uint8(torch.cat(fakes)), batch_size)
            stats = compare_features(
                real_features,
                fake_features,
                kid_subsets=kid_subsets,
                kid_subset_size=kid_subset_size,
            )
            notes.update(stats.pop("notes"))
            entry.update(stats, extractor=ext.name)
        elif ext is not None:
            notes.add(f"no real {TARGET[direction]} images given: no FID/KID")
        entry["notes"] = sorted(notes)
        results[direction] = entry
    return results


def flat_metrics(results: Mapping[str, Any]) -> dict[str, float]:
    """``{"AtoB/fid": 41.2, "AtoB/cycle_psnr": 27.5, ...}``: the numbers only, for logging."""
    per_direction = results.get("directions", results)
    flat = {}
    for direction, entry in per_direction.items():
        for key in ("fid", "kid_mean", "kid_std", "cycle_psnr", "cycle_ssim", "psnr", "ssim"):
            value = entry.get(key)
            if isinstance(value, int | float) and math.isfinite(value):
                flat[f"{direction}/{key}"] = float(value)
    return flat


def _default_device() -> torch.device:
    from i2i.core.device import resolve_device

    return resolve_device("auto")
