"""Evaluating a translation model on held-out images: FID, KID, cycle consistency, and a report.

``evaluate`` translates ``DIR/testA`` with the AtoB generator (``DIR/testB`` with BtoA),
compares the translations with the real images of the target domain (FID and KID on features of
the chosen extractor, the translated images quantised to 8 bits as if saved) and, when the model
has both directions, measures how well translating back reconstructs the input (PSNR and SSIM of
x against F(G(x))). It writes ``metrics.json``, a contact sheet per direction and ``index.html``.

``cycle_metrics`` is the light version for use during training: cycle PSNR/SSIM on a fixed batch,
and FID/KID only when an extractor is given (it is expensive).
"""

from __future__ import annotations

import datetime
import json
import math
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from i2i.bridge import BridgeRunner, bridge_of
from i2i.core.checks import check_positive, check_text_path
from i2i.core.device import unwrap
from i2i.core.errors import DataError, I2IError, InvalidArgumentError, writing
from i2i.data import find_images, load_image, to_float, to_uint8
from i2i.eval.metrics import (
    FeatureExtractor,
    compare_features,
    create_extractor,
    extract_features,
    finite_or_none,
    psnr,
    ssim,
)
from i2i.models.checkpoint import atomic_write, atomic_write_text

__all__ = ["contact_sheet", "cycle_metrics", "evaluate", "flat_metrics", "render_report"]

METRICS_FILE = "metrics.json"
REPORT_FILE = "index.html"
SOURCE = {"AtoB": "A", "BtoA": "B"}
TARGET = {"AtoB": "B", "BtoA": "A"}
OTHER = {"AtoB": "BtoA", "BtoA": "AtoB"}
SSIM_MIN = 11


# -- small helpers --------------------------------------------------------------------------------
def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _by_shape(images: Sequence[torch.Tensor]) -> dict[tuple[int, ...], list[int]]:
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, image in enumerate(images):
        groups.setdefault(tuple(image.shape), []).append(index)
    return groups


def _cycle_scores(
    x: torch.Tensor, rec: torch.Tensor, notes: set[str]
) -> tuple[list[float], list[float]]:
    """Per-image PSNR and SSIM of reconstructions, or nothing (with a note) if incomparable."""
    if x.shape != rec.shape:
        notes.add(
            f"reconstructions are {tuple(rec.shape[1:])} but inputs {tuple(x.shape[1:])}: "
            "no cycle metrics"
        )
        return [], []
    rec = rec.clamp(-1.0, 1.0)
    psnrs = psnr(x, rec).tolist()
    if min(x.shape[-2:]) < SSIM_MIN:
        notes.add(f"images smaller than {SSIM_MIN}x{SSIM_MIN}: no SSIM")
        return psnrs, []
    return psnrs, ssim(x, rec).tolist()


def _summarise_cycle(psnrs: list[float], ssims: list[float], notes: set[str]) -> dict[str, Any]:
    mean_psnr = _mean(psnrs)
    if mean_psnr is not None and not math.isfinite(mean_psnr):
        notes.add("some reconstructions equal their input exactly (infinite PSNR): PSNR omitted")
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


def _as_model(model: Any) -> Any:
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
    features = extract_features(extractor, to_uint8(images))
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
    """
    check_positive("batch_size", batch_size)
    runner = _as_model(model)
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
        fakes, psnrs, ssims = [], [], []
        for chunk in x.split(batch_size):
            fake = runner(chunk, direction=direction)
            fakes.append(fake)
            if OTHER[direction] in runner.directions:
                rec = runner(fake, direction=OTHER[direction])
                p, s = _cycle_scores(chunk, rec, notes)
                psnrs += p
                ssims += s
        entry: dict[str, Any] = {"n_images": x.shape[0]}
        if OTHER[direction] in runner.directions:
            entry.update(_summarise_cycle(psnrs, ssims, notes))
        else:
            entry.update(cycle_psnr=None, cycle_ssim=None)
            notes.add("the model has one direction: no cycle metrics")
        real = batches.get(TARGET[direction])
        if ext is not None and real is not None:
            real_features = _cached_real_features(cache, ext, TARGET[direction], real)
            fake_features = extract_features(ext, to_uint8(torch.cat(fakes)), batch_size)
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
        for key in ("fid", "kid_mean", "kid_std", "cycle_psnr", "cycle_ssim"):
            value = entry.get(key)
            if isinstance(value, int | float) and math.isfinite(value):
                flat[f"{direction}/{key}"] = float(value)
    return flat


# -- the full evaluation --------------------------------------------------------------------------
def _default_device() -> torch.device:
    from i2i.core.device import resolve_device

    return resolve_device("auto")


def _domain_paths(data_dir: Path, domain: str, max_images: int | None) -> list[Path]:
    folder = data_dir / f"test{domain}"
    if not folder.is_dir():
        raise DataError(
            f"{data_dir} has no test{domain}/ folder; evaluation reads DIR/testA and DIR/testB "
            "(held-out images of each domain)"
        )
    paths = find_images(folder)
    if not paths:
        raise DataError(f"{folder} holds no images")
    return paths[:max_images] if max_images else paths


def _load_all(paths: Sequence[Path], channels: int) -> Iterator[torch.Tensor]:
    for path in paths:
        yield load_image(path, channels)


def _fit_tile(image: torch.Tensor, size: int) -> torch.Tensor:
    """A (C, H, W) float image scaled so its longer side is ``size`` pixels."""
    height, width = image.shape[-2:]
    scale = size / max(height, width)
    target = (max(1, round(height * scale)), max(1, round(width * scale)))
    if target == (height, width):
        return image
    x = image[None].float()
    if scale > 1:
        return F.interpolate(x, size=target, mode="nearest")[0]
    return F.interpolate(x, size=target, mode="bilinear", antialias=True, align_corners=False)[0]


def contact_sheet(
    titles: Sequence[str], columns: Sequence[Sequence[torch.Tensor]], tile_size: int = 256
) -> Any:
    """A PIL image: one column per title, one row per image, each tile fit to ``tile_size``."""
    from i2i.viz import image_grid

    fitted = [[_fit_tile(image, tile_size) for image in column] for column in columns]
    return image_grid([(list(titles), fitted)], min_tile=1)


def _model_summary(translator: Any) -> dict[str, Any]:
    config = getattr(translator, "config", {}) or {}
    summary = {
        "task": config.get("task"),
        "domains": dict(getattr(translator, "domains", {"A": "A", "B": "B"})),
        "generators": {d: spec.get("name") for d, spec in config.get("generators", {}).items()},
    }
    sampling = getattr(translator, "sampling", None)
    if sampling:  # a bridge model: how many steps it walked, with which seed
        summary["sampling"] = sampling
    return summary


def evaluate(
    translator: Any,
    data_dir: str | Path,
    out_dir: str | Path,
    extractor: str | FeatureExtractor = "inception_fid",
    directions: Sequence[str] | None = None,
    max_images: int | None = None,
    batch_size: int = 8,
    device: str | torch.device | None = "auto",
    *,
    sheet_rows: int = 6,
    tile_size: int = 256,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Evaluate every direction of a model on ``data_dir``'s test images; write the report.

    ``translator`` is a ``Translator`` or anything ``i2i.load`` takes (a model folder, a run, a
    Hub id), loaded on ``device``; the feature extractor runs on ``device`` too. ``max_images``
    caps the images read from each test folder (the first ones in sorted order). Returns the
    dict written to ``out_dir/metrics.json``; ``out_dir/index.html`` shows it with the contact
    sheets (input | translated | reconstructed).
    """
    check_positive("batch_size", batch_size)
    check_positive("max_images", max_images, allow_none=True)
    check_positive("sheet_rows", sheet_rows)
    check_positive("tile_size", tile_size)
    say = log or (lambda message: None)
    from i2i.core.device import resolve_device

    target_device = resolve_device(device)
    if isinstance(translator, str | Path):
        import i2i

        translator = i2i.load(translator, device=str(target_device))
    translator = _as_model(translator)
    wanted = list(directions) if directions else list(translator.directions)
    missing = [d for d in wanted if d not in translator.directions]
    if missing:
        raise I2IError(
            f"this model has no direction {', '.join(missing)}; it has "
            f"{', '.join(translator.directions)}"
        )
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    check_text_path(out_dir, "-o")
    with writing(out_dir):  # a read-only or foreign -o fails now, not after the work
        out_dir.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out_dir).close()
    paths = {d: _domain_paths(data_dir, SOURCE[d], max_images) for d in wanted}
    real_paths = {TARGET[d]: _domain_paths(data_dir, TARGET[d], max_images) for d in wanted}
    say(f"loading feature extractor {extractor if isinstance(extractor, str) else extractor.name}")
    ext = create_extractor(extractor, target_device)
    info = ext.info()
    domains = getattr(translator, "domains", {"A": "A", "B": "B"})

    real_features: dict[str, torch.Tensor] = {}
    for domain, domain_paths in real_paths.items():
        say(f"features of {len(domain_paths)} real {domains.get(domain, domain)} images")
        real_features[domain] = extract_features(
            ext, _load_all(domain_paths, 3), batch_size=batch_size
        )

    results: dict[str, Any] = {}
    for direction in wanted:
        started = time.perf_counter()
        source, target = SOURCE[direction], TARGET[direction]
        label = f"{domains.get(source, source)} → {domains.get(target, target)}"
        cycle = OTHER[direction] in translator.directions
        channels = (
            translator.input_channels(direction) if hasattr(translator, "input_channels") else 3
        )
        say(f"{direction} ({label}): translating {len(paths[direction])} images")
        notes: set[str] = set()
        features, psnrs, ssims = [], [], []
        sheet: list[tuple[torch.Tensor, ...]] = []
        for chunk in _chunks(paths[direction], batch_size):
            images = [load_image(p, channels) for p in chunk]
            rows: dict[int, tuple[torch.Tensor, ...]] = {}
            for indices in _by_shape(images).values():
                x = to_float(torch.stack([images[i] for i in indices]))
                fake = translator(x, direction=direction).clamp(-1.0, 1.0)
                features.append(extract_features(ext, to_uint8(fake), batch_size))
                rec = translator(fake, direction=OTHER[direction]) if cycle else None
                if rec is not None:
                    p, s = _cycle_scores(x, rec, notes)
                    psnrs += p
                    ssims += s
                for row, i in enumerate(indices):
                    rows[i] = (x[row], fake[row]) + ((rec[row],) if rec is not None else ())
            sheet += [rows[i] for i in sorted(rows)][: max(0, sheet_rows - len(sheet))]
        fake_features = torch.cat(features)
        stats = compare_features(
            real_features[target],
            fake_features,
            kid_subsets=kid_subsets,
            kid_subset_size=kid_subset_size,
            seed=seed,
        )
        notes.update(stats.pop("notes"))
        if cycle:
            cycle_stats = _summarise_cycle(psnrs, ssims, notes)
        else:
            cycle_stats = {"cycle_psnr": None, "cycle_ssim": None}
            notes.add("the model has one direction: no cycle metrics")
        if not ext.comparable:
            notes.add(f"features from {ext.name}: FID/KID not comparable with published FID")
        # plain ASCII: Pillow's default font has no arrows
        titles = [f"input ({domains.get(source, source)})"]
        titles.append(f"translated ({domains.get(target, target)})")
        if cycle:
            titles.append(f"reconstructed ({domains.get(source, source)})")
        sheet_name = f"{direction}.png"
        image = contact_sheet(titles, list(zip(*sheet, strict=True)), tile_size)
        atomic_write(out_dir / sheet_name, lambda f, image=image: image.save(f, format="PNG"))
        results[direction] = {
            "direction": direction,
            "label": label,
            "source": f"test{source}",
            "target": f"test{target}",
            "fid": finite_or_none(stats["fid"]),
            "kid_mean": finite_or_none(stats["kid_mean"]),
            "kid_std": finite_or_none(stats["kid_std"]),
            **cycle_stats,
            "n_images": stats["n_fake"],
            "n_real": stats["n_real"],
            "extractor": ext.name,
            "comparable_with_published_fid": ext.comparable,
            "notes": sorted(notes),
            "contact_sheet": sheet_name,
            "contact_sheet_rows": len(sheet),
            "contact_sheet_columns": titles,
            "seconds": round(time.perf_counter() - started, 2),
        }
        say(_one_line_summary(direction, results[direction]))

    from i2i import __version__

    report = {
        "i2i_version": __version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "data_dir": str(data_dir),
        "model": _model_summary(translator),
        "extractor": info,
        "kid": {"subsets": kid_subsets, "subset_size": kid_subset_size, "seed": seed},
        "directions": results,
    }
    atomic_write_text(
        out_dir / METRICS_FILE, json.dumps(report, indent=2, ensure_ascii=False) + "\n"
    )
    render_report(report, out_dir)
    say(f"wrote {out_dir / METRICS_FILE} and {out_dir / REPORT_FILE}")
    return report


def _fmt(value: Any, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _one_line_summary(direction: str, entry: Mapping[str, Any]) -> str:
    kid = entry["kid_mean"]
    return (
        f"{direction}: FID {_fmt(entry['fid'])}, KID {'n/a' if kid is None else f'{kid:.4g}'}, "
        f"cycle PSNR {_fmt(entry['cycle_psnr'])} dB, SSIM {_fmt(entry['cycle_ssim'], 3)} "
        f"({entry['n_images']} images)"
    )


# -- the HTML page --------------------------------------------------------------------------------
_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>i2i evaluation{% if model.task %}: {{ model.task }}{% endif %}</title>
<style>
  :root { --ink: #222; --muted: #666; --line: #ddd; --accent: #1f77b4; --warn: #9a5b00; }
  body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink);
         max-width: 1100px; margin: 2rem auto; padding: 0 1rem; }
  h1 { font-size: 1.6rem; margin-bottom: .2rem; }
  h2 { font-size: 1.2rem; margin-top: 2rem; border-bottom: 1px solid var(--line); }
  .meta { color: var(--muted); margin-top: 0; }
  table { border-collapse: collapse; width: 100%; margin: 1rem 0; }
  th, td { padding: .45rem .7rem; border-bottom: 1px solid var(--line); text-align: right; }
  th:first-child, td:first-child { text-align: left; }
  th { font-weight: 600; background: #f6f6f6; }
  td.num { font-variant-numeric: tabular-nums; }
  .hint { color: var(--muted); font-size: .85rem; font-weight: normal; }
  .badge { display: inline-block; padding: .1rem .5rem; border-radius: .8rem; font-size: .8rem;
           background: #e8f1fa; color: var(--accent); }
  .badge.warn { background: #fdf1e0; color: var(--warn); }
  ul.notes { color: var(--warn); font-size: .9rem; margin: .3rem 0 0; }
  figure { margin: 1rem 0 2rem; }
  figure img { max-width: 100%; image-rendering: auto; border: 1px solid var(--line); }
  figcaption { color: var(--muted); font-size: .9rem; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; }
  dt { color: var(--muted); }
</style>
</head>
<body>
<h1>Evaluation{% if model.task %} of a {{ model.task }} model{% endif %}</h1>
<p class="meta">{{ created }} · i2i {{ i2i_version }} · data: <code>{{ data_dir }}</code></p>

<h2>Metrics</h2>
<table>
  <thead><tr>
    <th>direction</th><th>images</th>
    <th>FID <span class="hint">lower is better</span></th>
    <th>KID &times;10&sup3; <span class="hint">lower is better</span></th>
    <th>cycle PSNR <span class="hint">dB, higher</span></th>
    <th>cycle SSIM <span class="hint">higher, max 1</span></th>
  </tr></thead>
  <tbody>
  {% for d in rows %}
  <tr>
    <td><strong>{{ d.label }}</strong> <span class="hint">{{ d.direction }}</span></td>
    <td class="num">{{ d.n_images }} <span class="hint">vs {{ d.n_real }} real</span></td>
    <td class="num">{{ d.fid_text }}</td>
    <td class="num">{{ d.kid_text }}</td>
    <td class="num">{{ d.psnr_text }}</td>
    <td class="num">{{ d.ssim_text }}</td>
  </tr>
  {% if d.notes %}
  <tr><td colspan="6"><ul class="notes">{% for n in d.notes %}<li>{{ n }}</li>{% endfor %}</ul></td></tr>
  {% endif %}
  {% endfor %}
  </tbody>
</table>

<dl>
  <dt>features</dt>
  <dd><code>{{ extractor.name }}</code> ({{ extractor.dim }}-d)
    {% if extractor.comparable_with_published_fid %}<span class="badge">comparable with published FID</span>
    {% else %}<span class="badge warn">not comparable with published FID</span>{% endif %}
    <br><span class="hint">{{ extractor.description }}</span></dd>
  <dt>FID</dt><dd>Fréchet distance between Gaussian fits of the features of translated and real
    target-domain images. Biased upwards at small image counts: compare only equal counts.</dd>
  <dt>KID</dt><dd>Unbiased squared MMD with a cubic polynomial kernel, mean ± std over
    {{ kid.subsets }} subsets of up to {{ kid.subset_size }} images; unbiased at any count.</dd>
  <dt>cycle</dt><dd>PSNR and SSIM of each input against its reconstruction
    (translated there and back), averaged over images.</dd>
  {% if model.generators %}<dt>generators</dt><dd>{% for k, v in model.generators.items() %}{{ k }}: <code>{{ v }}</code>{% if not loop.last %}, {% endif %}{% endfor %}</dd>{% endif %}
</dl>

{% for d in rows %}
<h2>{{ d.label }}</h2>
<figure>
  <a href="{{ d.contact_sheet }}"><img src="{{ d.contact_sheet }}" alt="contact sheet {{ d.direction }}" loading="lazy"></a>
  <figcaption>Columns: {{ d.contact_sheet_columns | join(" | ") }}; the first {{ d.contact_sheet_rows }} images of {{ d.source }}.</figcaption>
</figure>
{% endfor %}
</body>
</html>
"""


def render_report(report: Mapping[str, Any], out_dir: str | Path) -> Path:
    """Write ``index.html`` for a result of ``evaluate`` (the contact sheets sit beside it)."""
    import jinja2

    rows = []
    for entry in report["directions"].values():
        kid, std = entry.get("kid_mean"), entry.get("kid_std")
        rows.append(
            {
                **entry,
                "fid_text": _fmt(entry.get("fid")),
                "kid_text": "n/a" if kid is None else f"{kid * 1e3:.2f} ± {(std or 0) * 1e3:.2f}",
                "psnr_text": _fmt(entry.get("cycle_psnr")),
                "ssim_text": _fmt(entry.get("cycle_ssim"), 3),
            }
        )
    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    html = env.from_string(_TEMPLATE).render(**report, rows=rows)
    path = Path(out_dir) / REPORT_FILE
    atomic_write_text(path, html)
    return path
