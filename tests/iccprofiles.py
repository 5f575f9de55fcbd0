"""ICC colour profiles written byte by byte for tests: Little CMS reads these as it reads a
phone's Display P3 profile, and no profile file has to ship with the tests."""

from __future__ import annotations

import struct

# sRGB's primaries adapted to D50, as the sRGB IEC61966-2.1 profile carries them.
SRGB_RED = (0.4361, 0.2225, 0.0139)
SRGB_GREEN = (0.3851, 0.7169, 0.0971)
SRGB_BLUE = (0.1431, 0.0606, 0.7141)
_D50 = (0.9642, 1.0, 0.8249)
# sRGB's tone curve as ICC parametric function 3: gamma, a, b, c, d.
_SRGB_CURVE = (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)


def _xyz(values: tuple[float, float, float]) -> bytes:
    return b"XYZ " + bytes(4) + b"".join(struct.pack(">i", round(v * 65536)) for v in values)


def _desc(text: str) -> bytes:
    ascii_text = text.encode("ascii") + b"\0"
    return (
        b"desc" + bytes(4) + struct.pack(">I", len(ascii_text)) + ascii_text + bytes(8)
        + bytes(3) + bytes(67)
    )  # fmt: skip


def rgb_profile(
    red: tuple[float, float, float],
    green: tuple[float, float, float],
    blue: tuple[float, float, float],
    name: str = "test RGB",
) -> bytes:
    """A matrix/TRC display profile with these D50 primaries and sRGB's tone curve."""
    curve = b"para" + bytes(4) + struct.pack(">HH", 3, 0)
    curve += b"".join(struct.pack(">i", round(v * 65536)) for v in _SRGB_CURVE)
    tags = [
        (b"desc", _desc(name)),
        (b"cprt", b"text" + bytes(4) + b"none\0" + bytes(3)),
        (b"wtpt", _xyz(_D50)),
        (b"rXYZ", _xyz(red)),
        (b"gXYZ", _xyz(green)),
        (b"bXYZ", _xyz(blue)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, data = struct.pack(">I", len(tags)), b""
    for signature, body in tags:
        body += bytes(-len(body) % 4)
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    size = offset + len(data)
    header = (
        struct.pack(">I", size) + b"lcms" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
        + struct.pack(">6H", 2026, 12, 6, 0, 0, 0) + b"acsp" + bytes(24) + struct.pack(">I", 0)
        + _xyz(_D50)[8:] + bytes(48)
    )  # fmt: skip
    assert len(header) == 128
    return header + table + data


def swapped_profile() -> bytes:
    """sRGB with red and green swapped: a file's pure red is pure green once the profile is
    applied, a change no rounding can fake."""
    return rgb_profile(SRGB_GREEN, SRGB_RED, SRGB_BLUE, name="swapped red green")
