"""The report of an evaluation: ``index.html`` from its Jinja template, and the contact sheets.

The page's template is ``eval_report.html.jinja``, installed beside the model cards' templates
(package ``i2i.model_cards``), so the page can be changed without touching code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from importlib.resources import files
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from i2i.core.files import atomic_write_text

__all__ = ["REPORT_FILE", "contact_sheet", "render_report", "summary_line"]

REPORT_FILE = "index.html"
TEMPLATE = "eval_report.html.jinja"


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


def _fmt(value: Any, digits: int = 2) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def summary_line(direction: str, entry: Mapping[str, Any]) -> str:
    kid = entry["kid_mean"]
    if "psnr" in entry:  # aligned pairs: against the targets, not the cycle
        scores = f"PSNR to target {_fmt(entry['psnr'])} dB, SSIM {_fmt(entry['ssim'], 3)}"
    else:
        scores = f"cycle PSNR {_fmt(entry['cycle_psnr'])} dB, SSIM {_fmt(entry['cycle_ssim'], 3)}"
    return (
        f"{direction}: FID {_fmt(entry['fid'])}, KID {'n/a' if kid is None else f'{kid:.4g}'}, "
        f"{scores} ({entry['n_images']} images)"
    )


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
                "target_psnr_text": _fmt(entry.get("psnr")),
                "target_ssim_text": _fmt(entry.get("ssim"), 3),
            }
        )
    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(files("i2i.model_cards").joinpath(TEMPLATE).read_text())
    paired = any("psnr" in entry for entry in report["directions"].values())
    html = template.render(**report, rows=rows, paired=paired)
    path = Path(out_dir) / REPORT_FILE
    atomic_write_text(path, html)
    return path
