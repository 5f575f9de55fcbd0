"""Pictures people would rather look at than read: sample grids and loss curves, drawn with Pillow.

Kept free of plotting libraries on purpose: Pillow is already a dependency and these pictures
only need lines, text and pasted images.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from PIL import Image, ImageDraw, ImageFont

BACKGROUND = (255, 255, 255)
INK = (40, 40, 40)
GRID = (225, 225, 225)
COLOURS = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]


def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default()


def tensor_to_pil(x: torch.Tensor) -> Image.Image:
    """A (C,H,W) float image in [-1, 1] (1 or 3 channels) as an RGB Pillow image."""
    x = x.detach().float().cpu()
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    array = ((x[:3].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(array, "RGB")


def image_grid(
    panels: Sequence[tuple[Sequence[str], Sequence[torch.Tensor]]],
    pad: int = 2,
    caption: str | None = None,
    min_tile: int = 128,
) -> Image.Image:
    """Panels stacked vertically; in each, one column per title and one row per image.

    Small tiles are enlarged (nearest neighbour, by a whole factor) up to ``min_tile`` so a
    64 px training sample stays readable; ``caption`` (e.g. the step and metrics) heads it,
    in as many lines as a narrow grid needs.
    """
    title_h = 14
    rendered = []
    for titles, columns in panels:
        tiles = [[_enlarge(tensor_to_pil(img), min_tile) for img in column] for column in columns]
        w = max(t.width for col in tiles for t in col)
        h = max(t.height for col in tiles for t in col)
        rows = max(len(col) for col in tiles)
        wrapped = [_wrap(title, w - 4) for title in titles]
        head = title_h + LINE_H * (max(len(lines) for lines in wrapped) - 1)
        panel = Image.new(
            "RGB", (len(tiles) * (w + pad) + pad, head + rows * (h + pad) + pad), BACKGROUND
        )
        draw = ImageDraw.Draw(panel)
        for c, (lines, col) in enumerate(zip(wrapped, tiles, strict=True)):
            x = pad + c * (w + pad)
            draw.multiline_text((x + 2, 1), "\n".join(lines), fill=INK, font=_font(), spacing=1)
            for r, tile in enumerate(col):
                panel.paste(tile, (x, head + pad + r * (h + pad)))
        rendered.append(panel)
    if caption:
        width = max(p.width for p in rendered)
        lines = _wrap(caption, width - 2 * pad - 4, breaks=" ")  # between its words
        bar = Image.new("RGB", (width, title_h + 2 + LINE_H * (len(lines) - 1)), BACKGROUND)
        ImageDraw.Draw(bar).multiline_text(
            (pad + 2, 2), "\n".join(lines), fill=INK, font=_font(), spacing=1
        )
        rendered.insert(0, bar)
    width = max(p.width for p in rendered)
    out = Image.new("RGB", (width, sum(p.height for p in rendered)), BACKGROUND)
    y = 0
    for p in rendered:
        out.paste(p, (0, y))
        y += p.height
    return out


LINE_H = 12  # one more line of a wrapped title
BREAKS = " .-_/=,"


def _wrap(title: str, width: int, breaks: str = BREAKS) -> list[str]:
    """``title`` in lines no wider than ``width`` pixels, broken after a separator where one
    is near (run names like ``cyclegan-quality.ink.s0``), so a long title never runs over
    the next column, nor a caption off the grid's edge."""
    font = _font()
    lines: list[str] = []
    rest = title
    while rest and font.getlength(rest) > width:
        cut = 1
        while cut < len(rest) and font.getlength(rest[: cut + 1]) <= width:
            cut += 1
        soft = max(rest.rfind(ch, 0, cut) for ch in breaks) + 1
        cut = soft if soft > cut // 2 else cut
        lines.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip()
    return [*lines, rest] if rest or not lines else lines


def _enlarge(image: Image.Image, min_size: int) -> Image.Image:
    factor = max(1, min_size // max(1, max(image.size)))
    if factor == 1:
        return image
    return image.resize((image.width * factor, image.height * factor), Image.NEAREST)


def _nice(value: float) -> str:
    return f"{value:.3g}"


def line_charts(
    series: dict[str, tuple[Sequence[float], Sequence[float]]],
    x_label: str = "step",
    panel_size: tuple[int, int] = (300, 170),
    columns: int = 3,
) -> Image.Image:
    """One small chart per named series of (x, y) values, laid out in a grid."""
    names = list(series)
    cols = max(1, min(columns, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    pw, ph = panel_size
    image = Image.new("RGB", (cols * pw, rows * ph), BACKGROUND)
    draw = ImageDraw.Draw(image)
    font = _font()
    for i, name in enumerate(names):
        xs, ys = series[name]
        ox, oy = (i % cols) * pw, (i // cols) * ph
        left, right, top, bottom = ox + 48, ox + pw - 10, oy + 18, oy + ph - 22
        draw.text((ox + 48, oy + 3), name, fill=INK, font=font)
        draw.rectangle((left, top, right, bottom), outline=GRID)
        pts = [(x, y) for x, y in zip(xs, ys, strict=True) if math.isfinite(y)]
        if not pts:
            continue
        x0, x1 = min(p[0] for p in pts), max(p[0] for p in pts)
        y0, y1 = min(p[1] for p in pts), max(p[1] for p in pts)
        x1 = x1 if x1 > x0 else x0 + 1
        y1 = y1 if y1 > y0 else y0 + max(abs(y0) * 1e-6, 1e-8)  # a flat line, whatever its scale
        draw.text((ox + 2, top - 4), _nice(y1), fill=INK, font=font)
        draw.text((ox + 2, bottom - 8), _nice(y0), fill=INK, font=font)
        draw.text((left, bottom + 4), f"{x_label} {_nice(x0)}", fill=INK, font=font)
        draw.text((right - 40, bottom + 4), _nice(x1), fill=INK, font=font)
        scaled = [
            (
                left + (x - x0) / (x1 - x0) * (right - left),
                bottom - (y - y0) / (y1 - y0) * (bottom - top),
            )
            for x, y in pts
        ]
        colour = COLOURS[i % len(COLOURS)]
        if len(scaled) == 1:
            draw.ellipse(
                (scaled[0][0] - 2, scaled[0][1] - 2, scaled[0][0] + 2, scaled[0][1] + 2),
                fill=colour,
            )
        else:
            draw.line(scaled, fill=colour, width=2)
    return image
