"""Image files: finding them, decoding any file Pillow reads into a uint8 tensor, and saving.

Decoding is forgiving in what it takes (EXIF orientation, colour profiles, transparency, 16-bit
and float samples, animations) and strict in what it gives: a ``(C, H, W)`` uint8 tensor with
C = 1 or 3, or an ``ImageDecodeError`` that says which file and why.
"""

from __future__ import annotations

import functools
import io
import math
import os
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageCms, ImageOps

from i2i.core.errors import DataError, ImageDecodeError, InvalidArgumentError, one_line
from i2i.core.files import temp_sibling

IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
)

PathLike = str | os.PathLike[str]

_WHITE = (255, 255, 255, 255)
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})


# -- finding files -------------------------------------------------------------------------------
def find_images(folder: PathLike, recursive: bool = True) -> list[Path]:
    """Image files under ``folder``, sorted by relative path so every machine sees one order.

    Hidden files and folders (``.DS_Store``, macOS ``._x.jpg`` forks, ``.ipynb_checkpoints``) are
    skipped because they are never training data. Symlinked sub-folders are followed, since
    datasets are often assembled from links, but each real folder is visited once and a link
    to a folder above is not followed.
    """
    return find_files(folder, IMAGE_EXTENSIONS, recursive)[0]


def find_files(
    folder: PathLike, suffixes: frozenset[str], recursive: bool = True
) -> tuple[list[Path], list[Path]]:
    """Files under ``folder`` with one of ``suffixes`` (lower case), and the other visible files.

    The others are returned so that a caller can say what it left out (a ``.heic`` or ``.jp2``
    that a user expected translated) instead of skipping it without a word. Both lists follow
    ``find_images``'s rules and order.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"image folder {root} does not exist or is not a folder")
    found: list[tuple[str, Path]] = []
    others: list[tuple[str, Path]] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:
            dirnames.clear()
            continue
        seen.add(real)
        # A link to a folder above (``trainA/loop -> ..``) would pull the other domain in.
        dirnames[:] = (
            [d for d in dirnames if not d.startswith(".") and not _links_up(dirpath, d, real)]
            if recursive
            else []
        )
        for name in filenames:
            path = Path(dirpath, name)
            if name.startswith(".") or not path.is_file():
                continue
            wanted = found if path.suffix.lower() in suffixes else others
            wanted.append((path.relative_to(root).as_posix(), path))
    return [path for _, path in sorted(found)], [path for _, path in sorted(others)]


# Pictures in kinds that i2i does not take (phones', cameras', other formats): worth telling the
# user to convert, where a .txt or .xmp beside the images is not.
# fmt: off
_OTHER_PICTURES = frozenset({
    ".heic", ".heif", ".avif", ".jxl", ".jp2", ".j2k", ".jfif", ".ppm", ".pgm", ".pbm", ".pnm",
    ".tga", ".ico", ".psd", ".dng", ".cr2", ".cr3", ".nef", ".arw", ".orf", ".rw2", ".raf",
    ".raw", ".exr", ".hdr", ".svg",
})
# fmt: on


def kinds_of(files: list[Path], most: int = 4) -> str:
    """The files by extension, most common first (``.heic (12), .txt (1)``), and what to do
    about the pictures among them, so that nothing is left out without a word."""
    kinds = Counter(file.suffix.lower() or "(no extension)" for file in files)
    shown = ", ".join(f"{kind} ({n})" for kind, n in kinds.most_common(most))
    shown += f" and {len(kinds) - most} other kinds" if len(kinds) > most else ""
    pictures = sorted(kind for kind in kinds if kind in _OTHER_PICTURES)
    if pictures:
        shown += f"; convert the {', '.join(pictures)} files to .png or .jpg to use them"
    return shown


def _links_up(dirpath: str, name: str, real: str) -> bool:
    """Whether sub-folder ``name`` of ``dirpath`` (real path ``real``) resolves to an ancestor."""
    target = os.path.realpath(os.path.join(dirpath, name))
    return real == target or real.startswith(target.rstrip(os.sep) + os.sep)


# -- decoding ------------------------------------------------------------------------------------
def _scale_to_8bit(array: np.ndarray) -> Image.Image:
    """Map high-bit-depth or float samples onto 0..255 by range, because Pillow would clip them.

    Integer modes (``I;16*``, ``I``) are taken as 16-bit data. Float data is taken as 0..1 when it
    fits there, else as 0..255, else as 16-bit, which covers the files that tools actually write.
    """
    values = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if array.dtype.kind == "f":
        peak = values.max(initial=0.0)
        full_scale = 1.0 if peak <= 1.0 else 255.0 if peak <= 255.0 else 65535.0
    else:
        full_scale = 65535.0
    scaled = np.clip(values, 0.0, full_scale) * (255.0 / full_scale)
    return Image.fromarray(np.rint(scaled).astype(np.uint8))


def to_srgb(img: Image.Image) -> Image.Image:
    """The pixels in sRGB, the space the networks learn in and that viewers assume for an
    untagged file: an embedded RGB colour profile (a phone's Display P3, Adobe RGB) is
    applied, where reading its numbers as sRGB would mute or shift the colours. A profile that
    Little CMS cannot read, or one for other pixels than the image's (grey, CMYK), is ignored,
    as viewers do; an sRGB profile needs nothing."""
    icc = img.info.get("icc_profile")
    if not icc:
        return img
    if img.mode in ("P", "PA") or (img.mode == "RGB" and "transparency" in img.info):
        img = _with_alpha_channel(img)  # a palette or a colour key: the profile is of colours
    if img.mode not in ("RGB", "RGBA"):
        return img
    transform = _srgb_transform(bytes(icc), img.mode)
    if transform is None:
        return img
    converted = ImageCms.applyTransform(img, transform)
    converted.info = {key: value for key, value in img.info.items() if key != "icc_profile"}
    return converted


def _with_alpha_channel(img: Image.Image) -> Image.Image:
    """A palette or colour-keyed image as RGB(A) pixels, keeping its profile: the key (a
    colour) would no longer match once the colours are converted."""
    keyed = img.mode == "PA" or "transparency" in img.info
    converted = img.convert("RGBA" if keyed else "RGB")
    converted.info = {key: value for key, value in img.info.items() if key != "transparency"}
    return converted


# Profile names of sRGB's primaries with a linear tone curve, which is not sRGB.
_LINEAR = ("linear", "g10", "gamma1.0")


@functools.lru_cache(maxsize=16)
def _srgb_transform(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """A transform from profile ``icc`` to sRGB, built once per profile (a folder of photos from
    one phone carries one); None where none is needed or none can be built."""
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        name = ImageCms.getProfileDescription(profile).lower().replace(" ", "")
        if "srgb" in name and not any(word in name for word in _LINEAR):
            return None
        return ImageCms.buildTransform(profile, ImageCms.createProfile("sRGB"), mode, mode)
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None


def normalize_mode(img: Image.Image) -> Image.Image:
    """Reduce any Pillow mode to ``L`` or ``RGB``; transparency is flattened onto white (and
    ``info["flattened"]`` says so; an alpha channel that is opaque everywhere is just dropped)."""
    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        return _scale_to_8bit(np.asarray(img))
    if mode == "1":
        return img.convert("L")
    if mode in _ALPHA_MODES or "transparency" in img.info:
        img = img.convert("RGBA")
        if img.getchannel("A").getextrema()[0] == 255:  # a screenshot's alpha: opaque
            return img.convert("RGB")
        background = Image.new("RGBA", img.size, _WHITE)
        flat = Image.alpha_composite(background, img).convert("RGB")
        flat.info["flattened"] = True
        return flat
    if img.mode in ("L", "RGB"):
        return img
    return img.convert("RGB")  # P, CMYK, YCbCr, HSV, ...


def decode_image(path: Path, min_side: int | None = None) -> Image.Image:
    """Open, orient and normalize ``path``; every failure becomes an ``ImageDecodeError``.

    The size a file claims is checked before it is decoded: above Pillow's decompression-bomb
    limit (``Image.MAX_IMAGE_PIXELS``, 89 MP) it is refused, where Pillow would only warn up to
    twice that. An animated image gives its first frame, as a still image does.

    ``min_side``: a much bigger image is shrunk by a whole factor that keeps its shorter side at
    least twice this long (a JPEG decoded at 1/2, 1/4 or 1/8 scale, then a box filter), so the
    resize that follows still does the filtering: training at a 286 px load size then decodes,
    caches and resizes a 12 MP photo as a 0.5 MP one.
    """
    try:
        with Image.open(path) as img:
            if img.width * img.height > (Image.MAX_IMAGE_PIXELS or math.inf):
                raise Image.DecompressionBombError(
                    f"it claims {img.width}x{img.height} pixels, more than "
                    f"{Image.MAX_IMAGE_PIXELS / 1e6:.0f} megapixels (a decompression bomb?)"
                )
            if min_side:
                img.draft(None, (2 * min_side, 2 * min_side))  # JPEG only; else a no-op
            img.load()
            oriented = ImageOps.exif_transpose(img)
            # Shrunk before the colour transform where its mode allows (a transform of 12 MP
            # takes a third of a second), else once it is L or RGB.
            srgb = to_srgb(_shrunk(oriented, min_side))
            return _shrunk(normalize_mode(srgb), min_side)
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        raise ImageDecodeError(f"cannot read image {path}: {_reason(e, path)}") from e


def _reason(error: BaseException, path: Path) -> str:
    """Pillow's reason without the path it repeats ("cannot identify image file '...'")."""
    return one_line(error).replace(f" {str(path)!r}", "")


# The modes Pillow's reduce() takes.
_REDUCIBLE = frozenset({"L", "LA", "RGB", "RGBA", "CMYK", "I", "F"})


def _shrunk(img: Image.Image, min_side: int | None) -> Image.Image:
    factor = min(img.size) // (2 * min_side) if min_side else 1
    return img.reduce(factor) if factor >= 2 and img.mode in _REDUCIBLE else img


_ORIENTATION = 0x0112  # the EXIF tag


def _turned(img: Image.Image) -> bool:
    """Whether the EXIF orientation is a quarter turn; a PNG's EXIF chunk may sit after the
    pixels, so a file whose pixels are cut short (the header is all apply reads first) has
    none to tell."""
    if img.format == "PNG" and "exif" not in img.info:  # Pillow would decode it to look
        return False
    try:
        return img.getexif().get(_ORIENTATION) in (5, 6, 7, 8)
    except (OSError, SyntaxError, ValueError, EOFError):
        return False


def image_header(path: Path) -> tuple[int, int, bool]:
    """(width, height, animated) that ``path`` claims, read from its header without decoding;
    the size as it decodes, upright (a camera's quarter turn swaps the sides)."""
    try:
        with Image.open(path) as img:
            width, height = img.size
            if _turned(img):
                width, height = height, width
            return width, height, bool(getattr(img, "is_animated", False))
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
        raise ImageDecodeError(f"cannot read image {path}: {_reason(e, path)}") from e


def check_channels(channels: int) -> int:
    if channels not in (1, 3):
        raise InvalidArgumentError(f"channels must be 1 or 3, got {channels!r}")
    return channels


def to_tensor(img: Image.Image, channels: int) -> torch.Tensor:
    img = img.convert("L" if channels == 1 else "RGB")
    array = np.array(img, dtype=np.uint8)
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array).permute(2, 0, 1).contiguous()


def load_image(path: PathLike, channels: int = 3, min_side: int | None = None) -> torch.Tensor:
    """Decode any image Pillow reads into a uint8 ``(C, H, W)`` tensor with C = ``channels``.

    Camera photos are turned upright from their EXIF orientation and brought into sRGB from their
    colour profile, transparent pixels become white
    (the usual look of a cut-out), 16-bit and float images are rescaled rather than clipped, and
    ``channels=1`` gives luminance; ``min_side`` shrinks big images (``decode_image``). A file
    that cannot be decoded raises ``ImageDecodeError``.
    """
    return to_tensor(decode_image(Path(path), min_side), check_channels(channels))


# -- conversion and saving -----------------------------------------------------------------------
def to_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 0..255 to float32 -1..1, the range the generators' tanh output lives in."""
    if x.dtype != torch.uint8:
        raise InvalidArgumentError(f"to_float expects a uint8 tensor, got {x.dtype}")
    return x.to(torch.float32) / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float -1..1 to uint8, clamping the overshoot that a generator may produce."""
    return ((x.detach().clamp(-1.0, 1.0) + 1.0) * 127.5).round().to(torch.uint8)


# Writer settings by Pillow format: JPEG and WebP at 95, near the source's look.
SAVE_OPTIONS = {"JPEG": {"quality": 95}, "WEBP": {"quality": 95}}


def image_format(path: PathLike) -> str | None:
    """The Pillow writer for the path's suffix, or None when Pillow cannot write it."""
    fmt = Image.registered_extensions().get(Path(path).suffix.lower())
    return fmt if fmt in Image.SAVE else None


def to_pil(image: torch.Tensor) -> Image.Image:
    """A ``(C, H, W)`` uint8 or float -1..1 tensor, C in {1, 3}, as a Pillow image (L or RGB)."""
    if image.ndim != 3 or image.shape[0] not in (1, 3):
        raise InvalidArgumentError(
            f"expected a (C, H, W) image tensor with 1 or 3 channels, got {tuple(image.shape)}"
        )
    if image.dtype != torch.uint8:
        image = to_uint8(image)
    array = image.detach().cpu().permute(1, 2, 0).numpy()
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


def save_image(image: torch.Tensor, path: PathLike) -> Path:
    """Write an image tensor (as ``to_pil`` takes it) in the suffix's format, through a temp
    file beside the target renamed into place, so a reader never sees half an image. Write
    errors are the writer's own ``OSError``, for the caller to tell a full disk from one bad
    file; a suffix Pillow cannot write is refused before anything is written."""
    pil, path = to_pil(image), Path(path)
    fmt = image_format(path)
    if fmt is None:
        raise InvalidArgumentError(
            f"cannot write {path.name}: Pillow writes no {path.suffix or 'suffix-less'} files; "
            f"use .png or .jpg"
        )
    # Encoded in memory: given a file, Pillow writes to its descriptor and drops a short write
    # on a full disk without a word, leaving a cut image that looks finished.
    encoded = io.BytesIO()
    pil.save(encoded, format=fmt, **SAVE_OPTIONS.get(fmt, {}))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_sibling(path)
    try:
        with open(tmp, "xb") as file:  # unlike mkstemp, "x" honours the umask
            file.write(encoded.getbuffer())  # raises on a short write, as Pillow does not
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
