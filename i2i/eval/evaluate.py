"""Evaluating a translation model on held-out images: FID, KID, cycle consistency, and a report.

``evaluate`` translates ``DIR/testA`` with the AtoB generator (``DIR/testB`` with BtoA),
compares the translations with the real images of the target domain (FID and KID on features of
the chosen extractor, the translated images quantised to 8 bits as if saved) and, when the model
has both directions, measures how well translating back reconstructs the input (PSNR and SSIM of
x against F(G(x))). It writes ``metrics.json``, a contact sheet per direction and ``index.html``.

For a model of a paired task (pix2pix) it reads the test pairs instead (``DIR/test`` side by
side, or ``DIR/testA`` and ``DIR/testB`` by name), compares the translations with their targets
(FID/KID) and scores each against its own target (PSNR and SSIM).

The light version for use during training, ``cycle_metrics``, lives in ``cycle.py``; the page
and the contact sheets are drawn by ``report.py``.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import torch
from PIL import Image, PngImagePlugin

from i2i.core.checks import check_positive, check_text_path
from i2i.core.errors import DataError, I2IError, ImageDecodeError, count, first_of, writing
from i2i.core.files import atomic_write, atomic_write_target, atomic_write_text
from i2i.core.protocol import REVERSE, SOURCE, TARGET
from i2i.core.registry import REGISTRIES
from i2i.data import AlignedDataset, find_images, load_image, to_float, to_uint8
from i2i.eval.cycle import (
    TARGETS,
    as_model,
    cycle_scores,
    summarise_cycle,
)
from i2i.eval.extractors import FeatureExtractor, create_extractor, embed_images
from i2i.eval.report import REPORT_FILE, contact_sheet, render_report, summary_line
from i2i.eval.statistics import compare_features, finite_or_none

__all__ = ["evaluate"]

METRICS_FILE = "metrics.json"


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _by_shape(shapes: Sequence[tuple[int, ...]]) -> dict[tuple[int, ...], list[int]]:
    groups: dict[tuple[int, ...], list[int]] = {}
    for index, shape in enumerate(shapes):
        groups.setdefault(shape, []).append(index)
    return groups


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


def _load_all(
    paths: Sequence[Path], channels: int, skipped: dict[str, str]
) -> Iterator[torch.Tensor]:
    """The images that decode; the others are left out with their reason in ``skipped``, so that
    one bad file does not cost the whole evaluation (as in apply and train)."""
    for path in paths:
        try:
            yield load_image(path, channels)
        except ImageDecodeError as error:
            skipped[str(path)] = str(error)


def _example(skipped: dict[str, str]) -> str:
    for path, reason in skipped.items():
        return f"e.g. {Path(path).name}: {reason}"
    return "no images were found"


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


@dataclass
class _Translated:
    """What translating one direction's test images gave: the features of the translations,
    the cycle scores, the first rows of the contact sheet and notes on what was left out."""

    cycle: bool
    features: list[torch.Tensor] = field(default_factory=list)
    psnrs: list[float] = field(default_factory=list)
    ssims: list[float] = field(default_factory=list)
    # Aligned pairs only: the targets' features and each translation's scores against its target.
    target_features: list[torch.Tensor] = field(default_factory=list)
    target_psnrs: list[float] = field(default_factory=list)
    target_ssims: list[float] = field(default_factory=list)
    sheet: list[tuple[torch.Tensor, ...]] = field(default_factory=list)
    notes: set[str] = field(default_factory=set)


# The images of some test items: (input, target) with target None for unpaired data.
Loader = Callable[[Sequence[Any]], list[tuple[torch.Tensor, torch.Tensor | None]]]


def _translate(
    translator: Any,
    direction: str,
    items: Sequence[Any],
    load: Loader,
    ext: FeatureExtractor,
    batch_size: int,
    sheet_rows: int,
) -> _Translated:
    """Translate the inputs of ``items`` (and back, when the model has both directions) in
    batches of images of one size, keeping features, cycle scores, scores against the targets
    of aligned pairs and sheet rows in file order."""
    done = _Translated(cycle=REVERSE[direction] in translator.directions)
    for chunk in _chunks(items, batch_size):
        pairs = load(chunk)
        images = [image for image, _ in pairs]
        shapes = [(*image.shape, *(() if t is None else t.shape)) for image, t in pairs]
        rows: dict[int, tuple[torch.Tensor, ...]] = {}
        for indices in _by_shape(shapes).values():
            x = to_float(torch.stack([images[i] for i in indices]))
            fake = translator(x, direction=direction).clamp(-1.0, 1.0)
            done.features.append(embed_images(ext, to_uint8(fake), batch_size))
            rec = translator(fake, direction=REVERSE[direction]) if done.cycle else None
            if rec is not None:
                p, s = cycle_scores(x, rec, done.notes)
                done.psnrs += p
                done.ssims += s
            target = None
            if pairs[indices[0]][1] is not None:
                targets = torch.stack([pairs[i][1] for i in indices])
                done.target_features.append(embed_images(ext, targets, batch_size))
                target = to_float(targets)
                p, s = cycle_scores(target, fake, done.notes, TARGETS)
                done.target_psnrs += p
                done.target_ssims += s
            for row, i in enumerate(indices):
                rows[i] = (x[row], fake[row])
                rows[i] += (rec[row],) if rec is not None else ()
                rows[i] += (target[row],) if target is not None else ()
        done.sheet += [rows[i] for i in sorted(rows)][: max(0, sheet_rows - len(done.sheet))]
    return done


def _unpaired(channels: int, skipped: dict[str, str]) -> Loader:
    return lambda paths: [(image, None) for image in _load_all(paths, channels, skipped)]


def _paired(pairs: AlignedDataset, skipped: dict[str, str]) -> Loader:
    def load(indices: Sequence[int]) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        loaded = []
        for item in (pairs[i] for i in indices):
            skipped.update(item["skipped"])
            if item["A"] is not None:
                loaded.append((item["A"], item["B"]))
        return loaded

    return load


def _channels(translator: Any, direction: str) -> tuple[int, int]:
    """The channels of ``direction``'s inputs and outputs (3 where the model does not say)."""
    config = getattr(translator, "config", None) or {}
    kwargs = config.get("generators", {}).get(direction, {}).get("kwargs", {})
    source = translator.input_channels(direction) if hasattr(translator, "input_channels") else 3
    return source, int(kwargs.get("out_channels", 3))


def _pair_direction(translator: Any) -> str | None:
    """For a model of a paired task (pix2pix), which side of the test pairs is its input;
    None for an unpaired one."""
    config = getattr(translator, "config", None) or {}
    task, training = config.get("task"), config.get("training")
    if not isinstance(task, str) or task not in REGISTRIES["tasks"]:
        return None
    if not getattr(REGISTRIES["tasks"].get(task).factory, "paired", False):
        return None
    direction = training.get("direction") if isinstance(training, dict) else None
    return direction if direction in ("AtoB", "BtoA") else "AtoB"


# Written into every contact sheet (a PNG text chunk), so a report folder that lost its
# metrics.json (an eval killed between the two) is still known as one.
_SHEET_MARK = ("Software", "i2i eval")


def _save_sheet(image: Any, file: BinaryIO) -> None:
    info = PngImagePlugin.PngInfo()
    info.add_text(*_SHEET_MARK)
    image.save(file, format="PNG", pnginfo=info)


def _is_eval_sheet(path: Path) -> bool:
    if path.suffix != ".png" or not path.is_file():
        return False
    try:
        with Image.open(path) as image:
            return image.format == "PNG" and image.info.get(_SHEET_MARK[0]) == _SHEET_MARK[1]
    except (OSError, ValueError):  # not a picture, or not one Pillow reads
        return False


def _check_report_folder(out_dir: Path, data_dir: Path) -> None:
    """The report replaces an earlier report and nothing else: never the test images it
    reads (it would then count its own sheets as test images), never a user's files."""
    if out_dir.resolve().is_relative_to(data_dir.resolve()):
        raise I2IError(f"-o {out_dir} is inside --data {data_dir}; write the report elsewhere")
    if not out_dir.is_dir():
        return
    ours = {METRICS_FILE, REPORT_FILE, *(f"{d}.png" for d in SOURCE)}
    names = sorted(p.name for p in out_dir.iterdir())
    killed = [name for name in names if atomic_write_target(name) in ours]  # writes of ours
    names = [name for name in names if name not in killed]
    foreign = [name for name in names if name not in ours]
    if names and not foreign and METRICS_FILE not in names:
        # A page or pictures of the user's own; sheets that say they are an eval's were left
        # by one that stopped before its metrics.json.
        foreign = [name for name in names if not _is_eval_sheet(out_dir / name)]
    if foreign:
        raise I2IError(
            f"-o {out_dir} holds {first_of([repr(n) for n in foreign])}, which is not part of "
            f"an eval report; choose an empty or new folder"
        )
    for name in killed:
        (out_dir / name).unlink(missing_ok=True)


@contextlib.contextmanager
def _report_folder(out_dir: Path) -> Iterator[None]:
    """Create ``out_dir`` (a read-only or foreign -o fails now, not after the work) and, if the
    evaluation then fails, remove the folders it made: a failed run leaves nothing behind. Only
    ``out_dir`` is removed with its contents (the report writes nothing there until the work has
    succeeded); the parents it made go only while empty, so nothing another process put there
    in the meantime is touched."""
    made = [p for p in [out_dir, *out_dir.parents] if not p.exists()]
    with writing(out_dir):
        out_dir.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out_dir).close()
    try:
        yield
    except BaseException:
        if made and made[0] == out_dir:
            shutil.rmtree(out_dir, ignore_errors=True)
        for parent in made[1:]:
            try:
                parent.rmdir()
            except OSError:  # not empty: someone else's by now
                break
        raise


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
    sheets (input | translated | reconstructed, or | target for aligned pairs).
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
    translator = as_model(translator)
    wanted = list(directions) if directions else list(translator.directions)
    missing = [d for d in wanted if d not in translator.directions]
    if missing:
        raise I2IError(
            f"this model has no direction {', '.join(missing)}; it has "
            f"{', '.join(translator.directions)}"
        )
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    check_text_path(out_dir, "-o")
    _check_report_folder(out_dir, data_dir)
    with _report_folder(out_dir):
        skipped: dict[str, str] = {}
        sheets: dict[str, Any] = {}
        pair_direction = _pair_direction(translator)
        if pair_direction is None:
            sources: dict[str, Sequence[Any]] = {
                d: _domain_paths(data_dir, SOURCE[d], max_images) for d in wanted
            }
            real_paths = {TARGET[d]: _domain_paths(data_dir, TARGET[d], max_images) for d in wanted}
            loaders = {d: _unpaired(_channels(translator, d)[0], skipped) for d in wanted}
        else:  # the targets are the real images, read beside their inputs
            sources, real_paths, loaders = {}, {}, {}
            for d in wanted:
                sides = pair_direction if d == "AtoB" else REVERSE[pair_direction]
                pairs = AlignedDataset(
                    data_dir, "test", sides, max_images, _channels(translator, d)
                )
                sources[d], loaders[d] = range(len(pairs)), _paired(pairs, skipped)
        extractor_name = extractor if isinstance(extractor, str) else extractor.name
        say(f"loading feature extractor {extractor_name}")
        ext = create_extractor(extractor, target_device)
        info = ext.info()
        domains = getattr(translator, "domains", {"A": "A", "B": "B"})

        real_features: dict[str, torch.Tensor] = {}
        for domain, domain_paths in real_paths.items():
            say(f"features of {len(domain_paths)} real {domains.get(domain, domain)} images")
            real_images = _load_all(domain_paths, 3, skipped)
            real_features[domain] = embed_images(ext, real_images, batch_size=batch_size)
            if not len(real_features[domain]):
                raise DataError(
                    f"no readable image in test{domain}/ of {data_dir}; {_example(skipped)}"
                )

        results: dict[str, Any] = {}
        for direction in wanted:
            started = time.perf_counter()
            source, target = SOURCE[direction], TARGET[direction]
            label = f"{domains.get(source, source)} → {domains.get(target, target)}"
            say(f"{direction} ({label}): translating {len(sources[direction])} images")
            done = _translate(
                translator, direction, sources[direction], loaders[direction], ext, batch_size,
                sheet_rows,
            )  # fmt: skip
            if not done.features:
                where = f"test{source}/" if pair_direction is None else "the test pairs"
                raise DataError(f"no readable image in {where} of {data_dir}; {_example(skipped)}")
            if pair_direction is not None:
                real_features[target] = torch.cat(done.target_features)
            stats = compare_features(
                real_features[target],
                torch.cat(done.features),
                kid_subsets=kid_subsets,
                kid_subset_size=kid_subset_size,
                seed=seed,
            )
            notes = done.notes | set(stats.pop("notes"))
            if skipped:
                notes.add(
                    f"{count(len(skipped), 'unreadable image')} left out ({_example(skipped)})"
                )
            if done.cycle:
                cycle_stats = summarise_cycle(done.psnrs, done.ssims, notes)
            else:
                cycle_stats = {"cycle_psnr": None, "cycle_ssim": None}
                if pair_direction is None:
                    notes.add("the model has one direction: no cycle metrics")
            if not ext.comparable:
                notes.add(f"features from {ext.name}: FID/KID not comparable with published FID")
            # plain ASCII: Pillow's default font has no arrows
            titles = [f"input ({domains.get(source, source)})"]
            titles.append(f"translated ({domains.get(target, target)})")
            if done.cycle:
                titles.append(f"reconstructed ({domains.get(source, source)})")
            if done.target_features:
                titles.append(f"target ({domains.get(target, target)})")
                scores = summarise_cycle(done.target_psnrs, done.target_ssims, notes, TARGETS)
                cycle_stats.update(psnr=scores["cycle_psnr"], ssim=scores["cycle_ssim"])
            sheet_name = f"{direction}.png"
            image = contact_sheet(titles, list(zip(*done.sheet, strict=True)), tile_size)
            sheets[sheet_name] = image
            results[direction] = {
                "direction": direction,
                "label": label,
                "source": f"test{source}" if pair_direction is None else "test pairs",
                "target": f"test{target}" if pair_direction is None else "test pairs",
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
                "contact_sheet_rows": len(done.sheet),
                "contact_sheet_columns": titles,
                "seconds": round(time.perf_counter() - started, 2),
            }
            say(summary_line(direction, results[direction]))

        from i2i import __version__

        report = {
            "i2i_version": __version__,
            "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "data_dir": str(data_dir),
            "model": _model_summary(translator),
            "extractor": info,
            "kid": {"subsets": kid_subsets, "subset_size": kid_subset_size, "seed": seed},
            "directions": results,
            "skipped": [{"path": path, "reason": reason} for path, reason in skipped.items()],
        }
        for name, image in sheets.items():  # the report is written once the work has succeeded
            atomic_write(out_dir / name, lambda f, image=image: _save_sheet(image, f))
        atomic_write_text(
            out_dir / METRICS_FILE, json.dumps(report, indent=2, ensure_ascii=False) + "\n"
        )
        render_report(report, out_dir)
        if skipped:
            say(f"left out {count(len(skipped), 'unreadable image')}: {', '.join(skipped)}")
        for direction in SOURCE.keys() - results.keys():  # an earlier report's, now replaced
            (out_dir / f"{direction}.png").unlink(missing_ok=True)
        say(f"wrote {out_dir / METRICS_FILE} and {out_dir / REPORT_FILE}")
    return report
