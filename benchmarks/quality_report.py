"""The quality benchmark's tables and sheets, from its result records (JSON lines).

Two shapes: the grid table (one row per configuration, one pair) and the suite table (one row
per recipe and training length, one column per look, each cell the gain over returning the
input, averaged over seeds). Sheets put the inputs, every configuration's outputs and the truth
side by side.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

from quality_data import KNOWN_PAIRS, MONET, PAINTINGS, TOY_NIGHT

SHEET_IMAGES = 8  # rows of a configuration's own sheet
GRID_IMAGES = 6  # rows of a combined sheet


def is_look(pair: str) -> bool:
    return pair in KNOWN_PAIRS


def painter(pair: str) -> str:
    """The painting side of a painting pair's name: ``monet2photo`` -> ``monet``."""
    return pair.removesuffix("2photo")


def milli(value: float | None) -> str:
    return "-" if value is None else f"{value * 1e3:.1f}"


def caption(record: dict[str, Any]) -> str:
    if is_look(record["pair"]):
        moons = (
            f", moons drawn {record['discs_drawn']:.2f} (shape {record['disc_shape']:.2f})"
            if record.get("discs_drawn") is not None
            else ""
        )
        return (
            f"{record['name']} ({record['pair']}): PSNR {record['psnr']:.2f} dB (identity "
            f"{record['identity_psnr']:.2f}), SSIM {record['ssim']:.3f}, KID x1e3 "
            f"{milli(record.get('kid'))}{moons}, {record['steps']} steps"
        )
    name = painter(record["pair"])
    return (
        f"{record['name']}: KID x1e3 {name}->photo {milli(record.get('kid_AtoB'))}, "
        f"photo->{name} {milli(record.get('kid_BtoA'))}, {record['steps']} steps"
    )


def config_name(record: dict[str, Any]) -> str:
    """A grid configuration's name; a bridge model's (UNSB's) scored at several numbers of
    predictions is one record each, told apart by that number."""
    sampled = record.get("sample_steps")
    if not sampled:
        return record["name"]
    return f"{record['name']} ({sampled} prediction{'s' if sampled != 1 else ''})"


def options_text(record: dict[str, Any]) -> str:
    if record.get("task") == "identity":
        return "no training: output = input"
    parts = []
    for key, value in record.get("options", {}).items():
        if isinstance(value, dict):
            value = ",".join(f"{k}={v}" for k, v in value.items())
        parts.append(f"{key}={value}")
    if record.get("lr_decay"):
        parts.append("lr decay over the 2nd half")
    task = record.get("task", "cyclegan")
    text = "`" + " ".join(parts) + "`" if parts else "paper defaults"
    return text if task == "cyclegan" else f"{task}: {text}"


# -- the grid table ---------------------------------------------------------------------------
def grid_table(records: list[dict[str, Any]]) -> str:
    """Known-answer rows, then painting-pair rows, in the records' order."""
    lines: list[str] = []
    known = [r for r in records if is_look(r.get("pair", ""))]
    paintings = [r for r in records if r.get("pair") in PAINTINGS]
    if known:
        lines += [
            "| config | look | options | PSNR dB | vs identity dB | SSIM | KID x10³ | steps | it/s "
            "| B→A vs identity dB |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in known:
            head = f"| {config_name(r)} | {r['pair']} | {options_text(r)} |"
            if "error" in r:
                lines.append(f"{head} failed: {r['error']} |||||||")
                continue
            reverse = r.get("psnr_vs_identity_BtoA")
            lines.append(
                f"{head} {r['psnr']:.2f} | {r['psnr_vs_identity']:+.2f} | {r['ssim']:.3f} | "
                f"{milli(r.get('kid'))} | {r['steps']} | {r.get('it_per_s', '-')} | "
                f"{'-' if reverse is None else f'{reverse:+.2f}'} |"
            )
    if paintings:
        lines += [
            "",
            "| config | pair | options | KID x10³ painting→photo | KID x10³ photo→painting | "
            "steps | it/s |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in paintings:
            head = f"| {config_name(r)} | {r['pair']} | {options_text(r)} |"
            if "error" in r:
                lines.append(f"{head} failed: {r['error']} ||||")
                continue
            lines.append(
                f"{head} {milli(r.get('kid_AtoB'))} | {milli(r.get('kid_BtoA'))} | {r['steps']} | "
                f"{r.get('it_per_s', '-')} |"
            )
    return "\n".join(lines) + "\n"


# -- the suite table --------------------------------------------------------------------------
def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _count_range(counts: list[int]) -> str:
    """``3``, or ``1-3`` where looks were run with different numbers of seeds."""
    low, high = min(counts), max(counts)
    return str(low) if low == high else f"{low}-{high}"


def suite_summary(
    records: list[dict[str, Any]], gain: str = "psnr_vs_identity"
) -> list[dict[str, Any]]:
    """One entry per (row, steps) or (row, wall-time budget): per look the seeds' mean gain over
    the identity, its spread and seed count; the mean over looks and the worst look; the
    painting pairs' KIDs (``kid[pair][direction]``). A budgeted row's steps are what its runs
    reached (their mean). ``gain``: the record's key of the gain (``psnr_vs_identity_BtoA``:
    taking the look off)."""
    Key = tuple[str, int, float]
    gains: dict[Key, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    kids: dict[Key, dict[tuple[str, str], list[float]]] = defaultdict(lambda: defaultdict(list))
    reached: dict[Key, list[int]] = defaultdict(list)
    order: list[Key] = []
    for r in records:
        if "error" in r or r.get("task") == "identity":
            continue
        budget = r.get("seconds") or 0.0
        key = (r["row"], 0 if budget else r["steps"], budget)
        reached[key].append(r["steps"])
        if key not in order:
            order.append(key)
        if is_look(r["pair"]):
            if r.get(gain) is not None:
                gains[key][r["pair"]].append(r[gain])
        elif r["pair"] in PAINTINGS:
            for direction in ("AtoB", "BtoA"):
                if r.get(f"kid_{direction}") is not None:
                    kids[key][r["pair"], direction].append(r[f"kid_{direction}"])
    summary = []
    rows = list(dict.fromkeys(key[0] for key in order))
    for key in sorted(order, key=lambda k: (rows.index(k[0]), k[2], k[1])):
        looks = {look: (*_mean_std(values), len(values)) for look, values in gains[key].items()}
        # the toy's night is a column of its own: its palette is drawn at random, so its dB are
        # not a look's, and the colour map alone gains about +9.5 there
        means = [m for look, (m, _, _) in looks.items() if look != TOY_NIGHT]
        summary.append(
            {
                "row": key[0],
                "steps": key[1] or f"{key[2]:g} s (~{sum(reached[key]) / len(reached[key]):.0f})",
                "looks": looks,
                "mean": sum(means) / len(means) if means else None,
                "worst": min(means) if means else None,
                "seeds": _count_range(
                    [n for _, _, n in looks.values()] or [len(v) for v in kids[key].values()] or [0]
                ),
                "kid": {
                    pair: {d: _mean_std(v)[0] for (p, d), v in kids[key].items() if p == pair}
                    for pair in dict.fromkeys(p for p, _ in kids[key])
                },
            }
        )
    return summary


REVERSE = "psnr_vs_identity_BtoA"


def suite_table(records: list[dict[str, Any]], looks: list[str]) -> str:
    """Rows: recipe x steps; columns: dB over returning the input per look (mean of the
    seeds, their spread after ±), the mean over looks, the worst look, the painting pairs' KID
    both ways (monet<->photo always, the others where the records have them).

    Where runs were scored the other way too (models with a B->A generator), a second table
    follows: the same gains for taking the look off the truth."""
    table = _gain_table(records, looks, "psnr_vs_identity")
    if any(r.get(REVERSE) is not None for r in records):
        table += (
            "\nTaking the look off (B->A: the truth translated back, against the input; the "
            "same identity baseline):\n\n" + _gain_table(records, looks, REVERSE)
        )
    return table


def _gain_table(records: list[dict[str, Any]], looks: list[str], gain: str) -> str:
    identity = {r["pair"]: r for r in records if r.get("task") == "identity" and "error" not in r}
    # monet<->photo's columns always stand (the tables in the READMEs have them); the other
    # painting pairs' where the records have them.
    paintings = [MONET, *(p for p in PAINTINGS if p != MONET and _has_pair(records, p))]
    kid_heads = [
        f"{'KID x10³ ' if i == 0 else ''}{name}" for i, name in enumerate(_kid_names(paintings))
    ]
    head = ["row", "steps", "seeds", *looks, "mean", "worst", *kid_heads]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    cells = [
        f"{identity[look]['identity_psnr']:.2f} dB" if look in identity else "-" for look in looks
    ]
    kids = [
        milli(identity.get(pair, {}).get(f"kid_{direction}_identity"))
        for pair in paintings
        for direction in ("AtoB", "BtoA")
    ]
    lines.append(_line(["*identity* (PSNR to the truth)", "-", "-", *cells, "0", "0", *kids]))
    for entry in suite_summary(records, gain):
        if gain == REVERSE and not entry["looks"]:
            continue  # one-way models and monet-only rows have nothing to show here
        cells = []
        for look in looks:
            if look not in entry["looks"]:
                cells.append("-")
                continue
            mean, std, n = entry["looks"][look]
            cells.append(f"{mean:+.2f} ±{std:.2f}" if n > 1 else f"{mean:+.2f}")
        mean = "-" if entry["mean"] is None else f"**{entry['mean']:+.2f}**"
        worst = "-" if entry["worst"] is None else f"{entry['worst']:+.2f}"
        kids = [
            milli(entry["kid"].get(pair, {}).get(direction))
            for pair in paintings
            for direction in ("AtoB", "BtoA")
        ]
        lines.append(
            _line([entry["row"], entry["steps"], entry["seeds"], *cells, mean, worst, *kids])
        )
    return "\n".join(lines) + "\n"


def _has_pair(records: list[dict[str, Any]], pair: str) -> bool:
    return any(r.get("pair") == pair and "error" not in r for r in records)


def _kid_names(paintings: list[str]) -> list[str]:
    """``monet→photo``, ``photo→monet``, ... for the KID columns of each painting pair."""
    return [name for p in paintings for name in (f"{painter(p)}→photo", f"photo→{painter(p)}")]


def _line(cells: list[Any]) -> str:
    return "| " + " | ".join(map(str, cells)) + " |"


# -- sheets -----------------------------------------------------------------------------------
SOURCES = ("input", "painting", "photo")  # each starts a panel of a sample sheet


def _panels(columns: dict[str, Any]) -> list[tuple[list[str], list[Any]]]:
    panels: list[tuple[list[str], list[Any]]] = []
    for title, images in columns.items():
        if title in SOURCES or not panels:
            panels.append(([], []))
        panels[-1][0].append(title)
        panels[-1][1].append(images)
    return panels


def _tag(record: dict[str, Any]) -> str:
    """The milestone, and a bridge model's sampling steps where the record has them."""
    sampled = record.get("sample_steps")
    return f"{record['steps']}" + (f"_{sampled}step" if sampled else "")


def save_sheets(folder: Path, record: dict[str, Any], columns: dict[str, Any]) -> Path:
    """``sheet.png`` (the first images of each column) and one strip per column, kept for the
    combined sheets."""
    import torch

    from i2i.viz import image_grid

    sheet = folder / f"sheet_{_tag(record)}.png"
    shown = {title: images[:SHEET_IMAGES] for title, images in columns.items()}
    image_grid(_panels(shown), caption=caption(record), min_tile=144).save(sheet)
    for title, images in columns.items():
        strip = folder / f"strip_{_tag(record)}_{title.replace(' ', '_')}.pt"
        torch.save(images[:GRID_IMAGES].clone(), strip)
    return sheet


def _strip(record: dict[str, Any], column: str) -> Any:
    import torch

    name = f"strip_{_tag(record)}_{column.replace(' ', '_')}.pt"
    path = Path(record["sheet"]).parent / name
    return torch.load(path, weights_only=True) if path.is_file() else None


def combined_sheet(records: list[dict[str, Any]], pair: str, label: str = "name") -> Any:
    """The inputs, every configuration's outputs (one column each, titled by ``label``) and,
    for a look, the truth last."""
    from i2i.viz import image_grid

    done = [r for r in records if r.get("pair") == pair and "error" not in r and "sheet" in r]
    if not done:
        return None
    first = done[0]
    directions = (
        [("input", "output", "truth")]
        if is_look(pair)
        else [("painting", "as photo", None), ("photo", "as painting", None)]
    )
    panels = []
    for source, output, truth in directions:
        titles, columns = [source], [_strip(first, source)]
        for r in done:
            if r.get("task") != "identity":
                titles.append(config_name(r) if label == "name" else str(r[label]))
                columns.append(_strip(r, output))
        if truth:
            titles.append(truth)
            columns.append(_strip(first, truth))
        kept = [(t, c) for t, c in zip(titles, columns, strict=True) if c is not None]
        if kept:  # records from another machine name strips that are not here
            panels.append(([t for t, _ in kept], [c for _, c in kept]))
    return image_grid(panels, min_tile=96) if panels else None
