"""``i2i demo``: a web page (Gradio) to try any model in a browser, and the app of its Space.

The page takes one or several images (and a video when PyAV is installed), runs the chosen
direction, optionally in tiles, and shows each input beside its translation (a before/after
slider) with the results to download. Requests wait in Gradio's queue and run one at a time, so
a crowd makes people wait rather than the device run out of memory; uploads are capped in size
and, without tiling, in pixels. Anything wrong with an upload is told in the page in one line.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import signal
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from i2i.core.checks import UNTILED_MAX_PIXELS, check_positive
from i2i.core.errors import I2IError, ImageDecodeError, InvalidArgumentError
from i2i.data import decode_image
from i2i.demo.examples import sample_examples
from i2i.infer.translator import Translator, load
from i2i.models.folder import SAMPLES
from i2i.models.hub import split_revision
from i2i.models.loader import resolve_model

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no phoning home unless asked
try:
    import gradio as gr
except ImportError:
    raise I2IError(
        'the demo needs Gradio, which is not installed: pip install "i2i[demo]"'
    ) from None

__all__ = ["DemoLimits", "build_page", "serve", "translate_uploads"]

TILE_OVERLAP = 32
# Both buttons run the model: they share one slot of the queue, so one runs at a time.
_MODEL_SLOT = "model"
_OUT_OF_MEMORY = "The device ran out of memory: turn on tiling, or choose a smaller tile size."
# Results of requests older than this are deleted when a new request comes.
_KEEP_RESULTS_S = 3600
# An upload size: a whole number with a unit (Gradio's own parser rejects a bare number).
_SIZE = re.compile(r"(\d{1,6})\s*(b|kb|mb|gb)", re.IGNORECASE)
_UNIT = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


@dataclass(frozen=True)
class DemoLimits:
    """What one request may ask for: upload size, pixels without tiling, queue length."""

    max_upload: str = "25mb"
    untiled_max_pixels: int = UNTILED_MAX_PIXELS
    queue_size: int = 16

    def __post_init__(self) -> None:
        self.upload_bytes()  # checked now, not when the server starts
        check_positive("untiled_max_pixels", self.untiled_max_pixels)
        check_positive("queue_size", self.queue_size)

    def upload_bytes(self) -> int:
        """``max_upload`` in bytes: a whole number with a unit, at least 1 kb."""
        found = (
            _SIZE.fullmatch(self.max_upload.strip()) if isinstance(self.max_upload, str) else None
        )
        size = int(found[1]) * _UNIT[found[2].lower()] if found else 0
        if size < 1024:
            raise InvalidArgumentError(
                f"--max-upload must be a size from 1kb, such as 25mb, 500kb or 1gb, got "
                f"{self.max_upload!r}"
            )
        return size


@dataclass
class Results:
    """Translated uploads: (input PNG, output PNG) pairs and one line per file left out."""

    pairs: list[tuple[Path, Path]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _domain(translator: Translator, letter: str) -> str:
    return translator.domains.get(letter, letter)


def direction_label(translator: Translator, direction: str) -> str:
    """``day → night`` for ``AtoB`` of a day/night model."""
    return f"{_domain(translator, direction[0])} → {_domain(translator, direction[-1])}"


def _device_text(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return str(device)


def _open_upload(path: Path) -> Image.Image:
    try:
        return decode_image(path)
    except ImageDecodeError:
        raise I2IError(
            f"{path.name} is not an image this page can read; upload a JPEG, PNG, WebP, TIFF or "
            "BMP file"
        ) from None


def translate_uploads(
    translator: Translator,
    paths: Sequence[str | Path],
    direction: str,
    out_dir: Path,
    *,
    tile: int | None = None,
    untiled_max_pixels: int = DemoLimits.untiled_max_pixels,
) -> Results:
    """Translate uploaded files into ``out_dir``; unreadable or too big ones are skipped, told why.

    Inputs are saved as PNG too, so the page can show any format the browser cannot (TIFF...).
    """
    results = Results()
    images, names = [], []
    for path in map(Path, paths):
        try:
            image = _open_upload(path)
        except I2IError as error:
            results.skipped.append(str(error))
            continue
        height, width = translator.network_size(image.height, image.width)
        if tile is None and height * width > untiled_max_pixels:
            results.skipped.append(
                f"{path.name} is {image.width}x{image.height} pixels; turn on tiling to "
                "translate images this big"
            )
            continue
        images.append(image)
        names.append(path.stem)
    if not images:
        return results
    outputs = translator(images, direction, tile=tile, overlap=TILE_OVERLAP)
    for index, (name, image, output) in enumerate(zip(names, images, outputs, strict=True)):
        stem = f"{index + 1:02d}-{name}"
        before, after = out_dir / f"{stem}.png", out_dir / f"{stem}-{direction}.png"
        image.save(before)
        output.save(after)
        results.pairs.append((before, after))
    return results


class _Handlers:
    """What the page's buttons run; each request writes into a folder of its own."""

    def __init__(self, translator: Translator, limits: DemoLimits) -> None:
        self.translator = translator
        translator.untiled_max_pixels = limits.untiled_max_pixels  # video frames, too
        self.limits = limits
        self.root = Path(tempfile.mkdtemp(prefix="i2i-demo-"))
        # Uploads and results go when the page does (at the latest when the process exits).
        weakref.finalize(self, shutil.rmtree, self.root, True)

    def _request_folder(self) -> Path:
        cutoff = time.time() - _KEEP_RESULTS_S
        for old in self.root.iterdir():
            if old.name != "examples" and old.stat().st_mtime < cutoff:
                shutil.rmtree(old, ignore_errors=True)
        folder = self.root / uuid.uuid4().hex
        folder.mkdir()
        return folder

    def images(
        self, files: list[str] | None, direction: str, tiled: bool, tile: float
    ) -> tuple[Any, ...]:
        if not files:
            raise gr.Error("Upload one or more images first.")
        try:
            results = translate_uploads(
                self.translator,
                files,
                direction,
                self._request_folder(),
                tile=int(tile) if tiled else None,
                untiled_max_pixels=self.limits.untiled_max_pixels,
            )
        except I2IError as error:
            raise gr.Error(str(error)) from None
        except torch.cuda.OutOfMemoryError:
            raise gr.Error(_OUT_OF_MEMORY) from None
        if not results.pairs:
            raise gr.Error(" ".join(results.skipped))
        for message in results.skipped:
            gr.Warning(message)
        outputs = [str(after) for _, after in results.pairs]
        pairs = [(str(before), str(after)) for before, after in results.pairs]
        return pairs[0], outputs, outputs, pairs

    def video(self, video: str | None, direction: str, tiled: bool, tile: float) -> str:
        from i2i.infer.video import translate_video

        if not video:
            raise gr.Error("Upload a video first.")
        source = Path(video)
        target = self._request_folder() / f"{source.stem}-{direction}.mp4"
        try:
            translate_video(
                self.translator,
                source,
                target,
                direction,
                tile=int(tile) if tiled else None,
                overlap=TILE_OVERLAP,
                progress=False,
            )
        except ImageDecodeError:
            raise gr.Error(
                f"{source.name} is not a video this page can read; upload an MP4, MOV, MKV, AVI "
                "or WebM file"
            ) from None
        except I2IError as error:
            raise gr.Error(f"{source.name}: {error}") from None
        except torch.cuda.OutOfMemoryError:
            raise gr.Error(_OUT_OF_MEMORY) from None
        return str(target)

    @staticmethod
    def select(pairs: list[tuple[str, str]], selected: gr.SelectData) -> tuple[str, str]:
        return pairs[selected.index]

    def example_files(self, samples: Path | None) -> list[list[Any]]:
        """[image, direction] rows for ``gr.Examples``, cut from the sample grid."""
        if samples is None:
            return []
        folder = self.root / "examples"
        folder.mkdir(exist_ok=True)
        directions = self.translator.directions
        rows = []
        for index, example in enumerate(sample_examples(samples)):
            direction = directions[min(example.panel, len(directions) - 1)]
            # A domain name is text from the model's config: only safe characters make a name.
            source = re.sub(r"[^\w-]+", "_", _domain(self.translator, direction[0]))[:40]
            path = folder / f"example-{index + 1}-{source}.png"
            example.image.save(path)
            rows.append([str(path), direction])
        return rows


# What the header says of --detail; the default, the input's detail kept, goes unsaid.
_DETAIL_SHOWN = {
    "input": [],
    "none": ["the network's output enlarged"],
    "local": ["only the colour change, on the input's own detail"],
}


def _header(name: str, translator: Translator) -> str:
    directions = ", ".join(direction_label(translator, d) for d in translator.directions)
    generators = sorted(
        {spec.get("name", "?") for spec in translator.config["generators"].values()}
    )
    task = translator.config.get("task", "?")
    how = [f"shorter side at {translator.scale} px"] if translator.scale else []
    how += _DETAIL_SHOWN[translator.detail]
    shown = f" · **Translates:** {', '.join(how)}" if how else ""
    return (
        f"# {name}\n"
        f"**Directions:** {directions} · **Runs on:** `{_device_text(translator.device)}` · "
        f"**Model:** {task}, {', '.join(generators)} (i2i){shown}\n\n"
        "Upload one or several images, choose the direction and press **Translate**; the "
        "results download from the list below the comparison."
    )


def build_page(
    translator: Translator,
    name: str,
    *,
    samples: Path | None = None,
    limits: DemoLimits | None = None,
) -> gr.Blocks:
    """The page for ``translator``, queued (one request at a time), not yet launched."""
    limits = limits or DemoLimits()
    handlers = _Handlers(translator, limits)
    choices = [(direction_label(translator, d), d) for d in translator.directions]
    with gr.Blocks(title=f"{name} · i2i", delete_cache=(_KEEP_RESULTS_S, _KEEP_RESULTS_S)) as page:
        gr.Markdown(_header(name, translator), elem_id="i2i-header")
        direction = gr.Radio(
            choices,
            value=translator.resolve_direction(),
            label="Direction",
            visible=len(choices) > 1,
            elem_id="i2i-direction",
        )
        with gr.Row():
            tiled = gr.Checkbox(
                False,
                label="Tile big images",
                info="Translate in overlapping tiles: for images too big to fit in memory at once.",
            )
            tile = gr.Slider(128, 1024, value=512, step=64, label="Tile size (pixels)")
        with gr.Tab("Images"):
            with gr.Row():
                with gr.Column():
                    files = gr.File(
                        file_count="multiple",
                        file_types=["image"],
                        label=f"Images (up to {limits.max_upload} each)",
                        elem_id="i2i-images",
                    )
                    run = gr.Button("Translate", variant="primary", elem_id="i2i-translate")
                with gr.Column():
                    compare = gr.ImageSlider(
                        label="Before / after", type="filepath", format="png", elem_id="i2i-compare"
                    )
                    gallery = gr.Gallery(
                        label="Results (click one to compare)",
                        columns=6,
                        height=160,
                        fit_columns=False,
                        object_fit="contain",
                        format="png",
                    )
                    downloads = gr.File(label="Download", file_count="multiple", elem_id="i2i-out")
            pairs = gr.State([])
            run.click(
                handlers.images,
                [files, direction, tiled, tile],
                [compare, gallery, downloads, pairs],
                api_name="translate",
                concurrency_id=_MODEL_SLOT,
            )
            gallery.select(handlers.select, pairs, compare, api_name=False, queue=False)
            examples = handlers.example_files(samples)
            if examples:
                # A hidden image input shows the examples as thumbnails; a click uploads one.
                picked = gr.Image(type="filepath", label="Image", visible="hidden")
                gr.Examples(
                    examples,
                    [picked, direction],
                    outputs=files,
                    fn=lambda path, _direction: [path],
                    run_on_click=True,
                    cache_examples=False,
                    api_visibility="private",
                    label="Examples from the model's samples",
                    elem_id="i2i-examples",
                )
        if importlib.util.find_spec("av") is not None:
            with gr.Tab("Video"):
                with gr.Row():
                    video_in = gr.Video(sources=["upload"], include_audio=True, format=None)
                    video_out = gr.Video(label="Translated", format=None)
                gr.Button("Translate video").click(
                    handlers.video,
                    [video_in, direction, tiled, tile],
                    video_out,
                    api_name="translate_video",
                    concurrency_id=_MODEL_SLOT,
                )
    page.queue(default_concurrency_limit=1, max_size=limits.queue_size)
    return page


def load_page(
    model: str | Path,
    *,
    revision: str | None = None,
    device: str = "auto",
    limits: DemoLimits | None = None,
    scale: int | str | None = None,
    detail: str = "input",
) -> gr.Blocks:
    """The page for MODEL (a Hub id, a model folder or a run folder), as everywhere in i2i,
    translating at ``scale`` with ``detail`` (as ``i2i.load``)."""
    kind, path = resolve_model(model, revision)
    if Path(model).exists():
        name = Path(model).resolve().name
    else:
        name = split_revision(str(model))[0]
    samples = path / "samples" / "latest.png" if kind == "run" else path / SAMPLES
    translator = load(path, device=device, scale=scale, detail=detail)
    return build_page(translator, name, samples=samples, limits=limits)


@contextlib.contextmanager
def _own_gradio_folder() -> Iterator[None]:
    """Gradio keeps uploads and the results it serves in GRADIO_TEMP_DIR (by default one
    gradio/ folder in the system's temp for every app), and a page stopped with Ctrl-C leaves
    them there: this page gets a folder of its own (inside GRADIO_TEMP_DIR when it is set),
    removed when the page stops."""
    before = os.environ.get("GRADIO_TEMP_DIR")
    parent = Path(before) if before else Path(tempfile.gettempdir())
    parent.mkdir(parents=True, exist_ok=True)
    folder = tempfile.mkdtemp(prefix="i2i-demo-uploads-", dir=parent)
    os.environ["GRADIO_TEMP_DIR"] = folder
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("GRADIO_TEMP_DIR", None)
        else:
            os.environ["GRADIO_TEMP_DIR"] = before
        shutil.rmtree(folder, ignore_errors=True)


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[threading.Event]:
    """An event that Ctrl-C and SIGTERM (a service manager's, a Space's) set, from the start
    (while the model loads too): the page stops at it and cleans up with no exception thrown
    into the clean-up, and further signals change nothing. The handlers are put back after;
    off the main thread, where signals cannot be handled, the event is only the caller's."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    numbers = (signal.SIGINT, signal.SIGTERM)
    before = {number: signal.getsignal(number) for number in numbers}
    for number in numbers:
        signal.signal(number, lambda *_: stop.set())
    try:
        yield stop
    finally:
        for number, handler in before.items():  # None: set outside Python; the default then
            signal.signal(number, signal.SIG_DFL if handler is None else handler)


def serve(
    model: str | Path,
    *,
    revision: str | None = None,
    host: str | None = None,
    port: int | None = None,
    device: str = "auto",
    limits: DemoLimits | None = None,
    scale: int | str | None = None,
    detail: str = "input",
) -> None:
    """Serve the page until Ctrl-C or SIGTERM, then delete what was uploaded and made;
    ``host``/``port`` None: Gradio's own defaults and env; ``scale`` and ``detail`` as for
    ``i2i.load``.

    (``GRADIO_SERVER_NAME``/``GRADIO_SERVER_PORT``, which Hugging Face Spaces set.)
    """
    limits = limits or DemoLimits()
    with _stopped_by_signals() as stop, _own_gradio_folder():
        page = load_page(
            model, revision=revision, device=device, limits=limits, scale=scale, detail=detail
        )
        if not stop.is_set():  # not stopped while the model loaded
            _launch_until(page, stop, host, port, limits, str(model))
    print("stopped; the uploads and results are deleted", flush=True)


def _launch_until(
    page: gr.Blocks,
    stop: threading.Event,
    host: str | None,
    port: int | None,
    limits: DemoLimits,
    name: str,
) -> None:
    """Serve ``page`` until ``stop`` is set (or the server ends), then close it."""
    try:
        page.launch(
            server_name=host,
            server_port=port,
            max_file_size=limits.upload_bytes(),
            ssr_mode=False,
            quiet=True,
            prevent_thread_lock=True,
        )
    except OSError as error:  # Gradio's words for a busy port or an address it cannot bind
        raise I2IError(
            f"cannot serve on {host or 'the default address'}:{port or 'the default port'} "
            f"({str(error).split('. ')[0]}); choose another --port or --host"
        ) from None
    print(f"serving {name} at {page.local_url} (Ctrl-C stops)", flush=True)
    try:
        while page.is_running and not stop.wait(0.1):
            pass
    finally:
        page.close()
