"""Translating images with a trained model: any size, any number of files, big images in tiles.

Generators only take sizes that are multiples of their ``size_multiple`` (4 for the ResNets, 128
or 256 for the U-Nets), so every image is padded (reflect, or replicate when the image is too
small to reflect) to the next valid size, translated and cropped back: the output always has the
input's resolution and nothing is resized.

Images too big for memory can be translated in overlapping tiles that are blended with cosine
ramps, so there are no seams. A network with instance norm (the CycleGAN default) normalises each
tile with that tile's own statistics, so tiled output is close to, but not identical with, the
untiled output; a network without normalisation over space gives the same result up to the
edges of its receptive field.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch import nn

from i2i.bridge import (
    PATH_NOISE,
    Bridge,
    BridgeRunner,
    bridge_of,
    check_path_noise,
    check_seed,
)
from i2i.core.checks import UNTILED_MAX_PIXELS, check_pixels, check_positive
from i2i.core.device import autocast, resolve_device, unwrap, usable_precision
from i2i.core.errors import I2IError, InvalidArgumentError, one_line, short
from i2i.core.protocol import size_limits
from i2i.data.images import normalize_mode, to_pil, to_srgb, to_tensor, to_uint8
from i2i.infer.detail import DETAILS, resize, with_detail

__all__ = ["Translator", "load"]


# ITU-R 601-2 luma, the weights Pillow uses for "L", so tensors and files turn grey alike.
_LUMA = (0.299, 0.587, 0.114)


# -- checks --------------------------------------------------------------------------------------
def check_tiling(tile: int | None, overlap: int) -> None:
    if tile is None:
        return
    check_positive("tile", tile)
    if tile < 32:
        raise InvalidArgumentError(
            f"--tile {tile} is too small: each tile is one network pass; use --tile 32 or more "
            f"(256 or more keeps the passes few)"
        )
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
        raise InvalidArgumentError(f"overlap must be an integer >= 0, got {overlap!r}")
    if tile <= 2 * overlap:
        raise InvalidArgumentError(
            f"tile ({tile}) must be more than twice the overlap ({overlap}); use a bigger --tile "
            "or a smaller --overlap"
        )


# -- padding and tiling --------------------------------------------------------------------------
def _valid_size(size: int, multiple: int, minimum: int) -> int:
    return max(-(-size // multiple), -(-minimum // multiple)) * multiple


def _pad_to_valid(x: torch.Tensor, multiple: int, minimum: int) -> tuple[torch.Tensor, int, int]:
    """Pad symmetrically to a size the network takes; returns the padded tensor and the offsets."""
    height, width = x.shape[-2:]
    extra_h = _valid_size(height, multiple, minimum) - height
    extra_w = _valid_size(width, multiple, minimum) - width
    if not extra_h and not extra_w:
        return x, 0, 0
    top, left = extra_h // 2, extra_w // 2
    pads = (left, extra_w - left, top, extra_h - top)
    # reflect cannot pad by as much as the side it mirrors
    fits = max(pads[:2]) < width and max(pads[2:]) < height
    return F.pad(x, pads, mode="reflect" if fits else "replicate"), top, left


def _frames(
    boxes: Sequence[tuple[int, int]],
    padded: tuple[int, int],
    pads: tuple[int, int],
    whole: tuple[int, int],
    device: torch.device,
) -> torch.Tensor:
    """Where each padded input lies in its whole picture, as a generator with colour regions
    takes it (``RegionMap.forward``): rows of top, left, height, width, as fractions of the
    picture's ``whole`` height and width. ``boxes``: each input's (top, left) before padding by
    ``pads`` (top, left) to the ``padded`` size."""
    rows = [
        (
            (top - pads[0]) / whole[0],
            (left - pads[1]) / whole[1],
            padded[0] / whole[0],
            padded[1] / whole[1],
        )
        for top, left in boxes
    ]
    return torch.tensor(rows, dtype=torch.float32, device=device)


def _tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Evenly spread tile origins covering ``length`` with at least ``overlap`` shared pixels."""
    if length <= tile:
        return [0]
    count = math.ceil((length - tile) / (tile - overlap)) + 1
    step = (length - tile) / (count - 1)
    return [round(i * step) for i in range(count)]


def _ramp(start: int, size: int, length: int, overlap: int) -> torch.Tensor:
    """1-D blending weight of one tile: cosine ramps on the sides that meet another tile.

    The ramps never reach zero, so every pixel keeps a positive total weight; image borders keep
    weight 1 because no other tile covers them.
    """
    weight = torch.ones(size)
    if overlap:
        ramp = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(overlap) + 0.5) / overlap)
        if start > 0:
            weight[:overlap] = ramp
        if start + size < length:
            weight[-overlap:] = ramp.flip(0)
    return weight


def _match_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    if x.shape[1] == channels:
        return x
    if x.shape[1] == 1 and channels == 3:
        return x.expand(-1, 3, -1, -1)
    if x.shape[1] == 3 and channels == 1:
        luma = torch.tensor(_LUMA, device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
        return (x * luma).sum(1, keepdim=True)
    raise InvalidArgumentError(
        f"images must have 1 or 3 channels (this generator takes {channels}), got {x.shape[1]}"
    )


def _input_channels(net: nn.Module, spec: Mapping[str, Any]) -> int:
    """What the generator reads: its config kwargs say so, else its first convolution."""
    kwargs = spec.get("kwargs", {})
    if "in_channels" in kwargs:
        return int(kwargs["in_channels"])
    for module in net.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            return module.in_channels
    return 3


# -- the translator ------------------------------------------------------------------------------
def default_batch_size(device: torch.device) -> int:
    """How many images go through a network at once unless the caller says.

    A GPU needs a batch to fill it. A CPU's convolution kernels already use every core for one
    image, and a batch only makes the activations fall out of cache: resnet9 at 256 px ran
    1.3x faster per image one at a time than in fours on the development CPU, 1.2x at 512 px
    (``benchmarks/apply_speed.py --batch-sizes 1 4``).
    """
    return 1 if device.type == "cpu" else 4


class Translator:
    """A loaded model, ready to translate PIL images or tensors of any size.

    Networks go to ``device`` once, in eval mode (channels-last on CUDA); ``precision`` bf16 or
    fp16 runs them under autocast, on a GPU or on a CPU alike (a CPU with AVX512-BF16 or AMX
    runs bf16 about twice as fast as fp32; one that only emulates it runs fp32 and says so).
    ``batch_size`` bounds how many images or tiles go through the network at once, which
    with ``untiled_max_pixels`` (above it, an image needs ``tile``) is what bounds memory; by
    default 4 on a GPU and 1 on the CPU (``default_batch_size``).
    ``compile`` runs the networks through ``torch.compile`` with frozen weights, which fuses the
    norms and activations around the convolutions: ``i2i apply`` with resnet9 ran 1.15x faster at
    256 px and 1.45x at 512 px on the development CPU, after 10-15 seconds of compiling for each
    new image size, so it pays off on folders and videos, not on a single image.

    ``scale`` translates at a scale other than the input's: each image's shorter side resized to
    ``scale`` pixels before the network and the result resized back to the input's size, so that
    a model trained on downscaled photos (286 px loads of 1024 px pictures) sees textures at the
    size it learned them; ``"model"`` is the load size it was trained at (what the official
    test.py's ``--load_size`` does, there without the way back). ``detail`` says what the result
    takes from the full-size input (``i2i.infer.detail``): with ``scale``, ``"input"`` (default)
    adds its finer detail back, so the network's textures stay at the scale they were drawn, and
    ``"none"`` gives the output enlarged and soft; ``"local"``, with or without ``scale``, keeps
    only the colour change the network made, as a smooth local linear map of the input: sharp
    and without the network's artefacts, for looks, light, grades and seasons (not strokes or
    stripes).
    ``benchmarks/scale_detail.py`` measures them against a look's truth.

    A bridge generator (UNSB's, ``i2i.bridge``) is run as its model declares: ``steps``
    predictions along its path from the input (default: its bridge's ``sample_steps``, else
    all the steps it was trained with), with noise drawn from ``seed``, walking ``path_noise``
    of the path's noise (default 0: its mean; 1: the paper's sampling, ``i2i.bridge`` says
    why); one-pass generators take none.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        generators: Mapping[str, nn.Module],
        device: str | torch.device | None = "auto",
        precision: str = "fp32",
        batch_size: int | None = None,
        compile: bool = False,
        steps: int | None = None,
        seed: int = 0,
        path_noise: float | None = None,
        scale: int | str | None = None,
        detail: str = "input",
    ) -> None:
        if not generators:
            raise I2IError("a Translator needs at least one generator")
        self.device = resolve_device(device)
        self.precision = usable_precision(self.device, precision)
        self.batch_size = (
            default_batch_size(self.device)
            if batch_size is None
            else check_positive("batch_size", batch_size)
        )
        self._config = dict(config)
        self.scale = check_scale_and_detail(scale, detail, self._config)
        self.detail = detail
        self.untiled_max_pixels = UNTILED_MAX_PIXELS
        self._channels_last = self.device.type == "cuda"
        specs = self._config.get("generators", {})
        self._nets: dict[str, nn.Module] = {}
        self._compiled: dict[str, nn.Module] = {}
        self._in_channels: dict[str, int] = {}
        self._bridges: dict[str, Bridge | None] = {}
        for direction, net in generators.items():
            net = net.to(self.device).eval()
            if self._channels_last:
                net = net.to(memory_format=torch.channels_last)
            self._nets[direction] = net
            if compile:
                # Freezing folds the weights into the graph: inference only, which this is.
                self._compiled[direction] = torch.compile(net, options={"freezing": True})
            self._in_channels[direction] = _input_channels(net, specs.get(direction, {}))
            self._bridges[direction] = bridge_of(net)
        self.steps, self.seed, self.path_noise = _check_sampling(
            self._bridges, steps, seed, path_noise
        )

    def __repr__(self) -> str:
        domains, specs = self.domains, self._config.get("generators", {})
        nets = ", ".join(
            f"{d} {domains.get(d[0], d[0])}->{domains.get(d[-1], d[-1])}: "
            f"{specs.get(d, {}).get('name', type(net).__name__)}"
            for d, net in self._nets.items()
        )
        backend = ", onnxruntime" if "onnx" in self._config else ""
        scale = f", scale {self.scale}" if self.scale else ""
        scale += f", detail {self.detail}" if self.detail != "input" else ""
        return (
            f"Translator({self._config.get('task', '?')}; {nets}; {self.device}, "
            f"{self.precision}, batch {self.batch_size}{scale}{backend})"
        )

    @property
    def directions(self) -> tuple[str, ...]:
        return tuple(self._nets)

    @property
    def domains(self) -> dict[str, str]:
        return dict(self._config.get("domains", {"A": "A", "B": "B"}))

    @property
    def config(self) -> dict[str, Any]:
        return self._config

    @property
    def sampling(self) -> dict[str, dict[str, float]]:
        """Per bridge direction, the steps it walks, the noise's seed and the share of the path's
        noise it walks (empty: one pass)."""
        return {
            d: {
                "steps": bridge.check_steps(self.steps),
                "seed": self.seed,
                "path_noise": self.path_noise,
            }
            for d, bridge in self._bridges.items()
            if bridge is not None
        }

    # -- the Hub object interface (like huggingface_hub's mixins and diffusers) ---------------
    @classmethod
    def from_pretrained(
        cls,
        model: str | Path,
        *,
        revision: str | None = None,
        device: str = "auto",
        precision: str = "fp32",
        batch_size: int | None = None,
        backend: str = "auto",
        compile: bool = False,
        steps: int | None = None,
        seed: int = 0,
        path_noise: float | None = None,
        scale: int | str | None = None,
        detail: str = "input",
    ) -> Translator:
        """A Hub id (``user/repo[@rev]``), a model folder, or a run (its last checkpoint).

        ``backend="onnxruntime"`` runs a folder written by ``i2i export --format onnx``, on the
        CPU; ``"auto"`` runs such a folder so and everything else with ``"torch"``. ``steps``,
        ``seed`` and ``path_noise`` are a bridge model's sampling (see the class).
        """
        from i2i.models.folder import WEIGHTS
        from i2i.models.loader import resolve_model

        if backend not in ("auto", "torch", "onnxruntime"):
            raise InvalidArgumentError(
                f"unknown backend {backend!r}; use auto, torch or onnxruntime"
            )
        chosen = ""
        if backend == "auto":
            folder = Path(model)
            onnx = not (folder / WEIGHTS).exists() and any(folder.glob("*.onnx"))
            backend = "onnxruntime" if folder.is_dir() and onnx else "torch"
            chosen = f"{model} is an ONNX export, so " if backend == "onnxruntime" else ""
        if backend == "onnxruntime":
            from i2i.infer.onnx import load_onnx

            if precision != "fp32" or compile:
                raise InvalidArgumentError(
                    f"{chosen}the onnxruntime backend runs the exported fp32 graph as it is; "
                    "use --precision fp32 without --compile"
                )
            if device not in ("auto", "cpu"):
                raise InvalidArgumentError(
                    f"{chosen}the onnxruntime backend runs on the CPU; drop --device {device} "
                    f"(for a GPU, apply the model it was exported from)"
                )

            _, path = resolve_model(model, revision)
            config, generators = load_onnx(path)
            device = "cpu"
        else:
            from i2i.models.loader import load_generators

            config, generators = load_generators(model, revision=revision, device=device)
        return cls(
            config,
            generators,
            device=device,
            precision=precision,
            batch_size=batch_size,
            compile=compile,
            steps=steps,
            seed=seed,
            path_noise=path_noise,
            scale=scale,
            detail=detail,
        )

    def save_pretrained(self, folder: str | Path, overwrite: bool = False) -> Path:
        """Write this model as a model folder (config.json, model.safetensors, card)."""
        from i2i.models.folder import save_model

        if "onnx" in self._config:
            raise I2IError("an ONNX Runtime model cannot be saved as safetensors; use the source")
        return save_model(Path(folder), self._config, self._nets, overwrite=overwrite)

    def push_to_hub(
        self,
        repo_id: str,
        *,
        private: bool = False,
        revision: str | None = None,
        message: str | None = None,
        token: str | None = None,
        license: str | None = None,
        datasets: Sequence[str] = (),
    ) -> Any:
        """Upload to the Hub as ``i2i push`` does; returns huggingface_hub's ``CommitInfo``."""
        import tempfile

        from i2i.models.hub import push

        with tempfile.TemporaryDirectory(prefix="i2i-") as tmp:
            folder = self.save_pretrained(Path(tmp) / "model")
            return push(
                folder, repo_id, private=private, revision=revision, message=message, token=token,
                license=license, datasets=datasets,
            )  # fmt: skip

    def resolve_direction(self, direction: str | None = None) -> str:
        """The direction to run: the only one a model has, else ``AtoB`` unless one is named."""
        if direction is None:
            direction = self.directions[0] if len(self._nets) == 1 else "AtoB"
        if direction not in self._nets:
            raise I2IError(
                f"this model has no direction {direction!r}; it has {', '.join(self.directions)}"
            )
        return direction

    def network_size(self, height: int, width: int) -> tuple[int, int]:
        """The (height, width) an image of this size goes through the network at (``scale``)."""
        scaled_height, scaled_width = _scaled_size((height, width), self.scale)
        return scaled_height, scaled_width

    def check_size(self, height: int, width: int, tile: int | None) -> None:
        """Refuse an image too big for one network pass at the size it runs at (``scale``),
        before any memory is spent on it (apply reads the size from the file's header)."""
        scaled = self.network_size(height, width)
        other_way = ""
        if self.scale is None and self.training_scale is not None:
            other_way = (
                ", or at the scale the model was trained at with --scale model (scale='model')"
            )
        check_pixels(scaled[0], scaled[1], tile, self.untiled_max_pixels, other_way)

    @property
    def training_scale(self) -> int | None:
        """The load size ``scale="model"`` runs at; None where the model records none."""
        try:
            return _check_scale("model", self._config)
        except InvalidArgumentError:
            return None

    def input_channels(self, direction: str | None = None) -> int:
        return self._in_channels[self.resolve_direction(direction)]

    def __call__(
        self,
        x: Image.Image | Sequence[Image.Image] | torch.Tensor,
        direction: str | None = None,
        *,
        tile: int | None = None,
        overlap: int = 32,
    ) -> Image.Image | list[Image.Image] | torch.Tensor:
        """Translate and return the same kind: PIL image(s) of the input sizes, or a tensor.

        A tensor is float in [-1, 1], (N, C, H, W) or (C, H, W), and comes back on its own
        device and dtype. ``tile`` splits images bigger than ``tile`` pixels into overlapping
        tiles (see the module docstring for how close that is to the untiled result).
        """
        direction = self.resolve_direction(direction)
        check_tiling(tile, overlap)
        if isinstance(x, Image.Image):
            return self._translate_pil([x], direction, tile, overlap)[0]
        if isinstance(x, torch.Tensor):
            return self._translate_tensor(x, direction, tile, overlap)
        if isinstance(x, list | tuple) and all(isinstance(i, Image.Image) for i in x):
            return self._translate_pil(list(x), direction, tile, overlap)
        raise InvalidArgumentError(
            "expected a PIL image, a list of PIL images or a float tensor (N, C, H, W) in "
            f"[-1, 1], got {type(x).__name__}"
        )

    def translate_batch(
        self,
        images: torch.Tensor,
        direction: str | None = None,
        *,
        tile: int | None = None,
        overlap: int = 32,
        batch_size: int | None = None,
    ) -> torch.Tensor:
        """uint8 (N, C, H, W) on the CPU in, uint8 out: the path files and videos take.

        uint8 crosses to the device (a quarter of the bytes of float), is converted there, and
        the result comes back in one copy: no other host sync per image.
        """
        direction = self.resolve_direction(direction)
        check_tiling(tile, overlap)
        if images.dtype != torch.uint8 or images.ndim != 4:
            raise InvalidArgumentError(
                f"translate_batch expects a uint8 (N, C, H, W) tensor, got {images.dtype} "
                f"{tuple(images.shape)}"
            )
        if self.device.type == "cuda":
            images = images.pin_memory()
        x = images.to(self.device, non_blocking=True).float() / 127.5 - 1.0
        out = self._infer(x, direction, tile, overlap, batch_size)
        # Outside inference mode, so the caller gets an ordinary tensor.
        return to_uint8(out).cpu()

    # -- internals -------------------------------------------------------------------------------
    def _translate_pil(
        self, images: list[Image.Image], direction: str, tile: int | None, overlap: int
    ) -> list[Image.Image]:
        """Same-size images share a batch; the results come back in the input order, upright
        and in sRGB (a camera's EXIF orientation and colour profile applied, as a viewer shows
        the photo)."""
        channels = self._in_channels[direction]
        tensors = [to_tensor(normalize_mode(to_srgb(_upright(i))), channels) for i in images]
        by_size: dict[tuple[int, ...], list[int]] = {}
        for index, tensor in enumerate(tensors):
            by_size.setdefault(tuple(tensor.shape[-2:]), []).append(index)
        results: dict[int, Image.Image] = {}
        for indices in by_size.values():
            batch = torch.stack([tensors[i] for i in indices])
            out = self.translate_batch(batch, direction, tile=tile, overlap=overlap)
            results.update(zip(indices, map(to_pil, out), strict=True))
        return [results[i] for i in range(len(images))]

    def _translate_tensor(
        self, x: torch.Tensor, direction: str, tile: int | None, overlap: int
    ) -> torch.Tensor:
        if not x.is_floating_point() or x.ndim not in (3, 4):
            raise InvalidArgumentError(
                "expected a float tensor in [-1, 1] of shape (N, C, H, W) or (C, H, W), got "
                f"{x.dtype} {tuple(x.shape)}; i2i.data.to_float converts uint8 images"
            )
        batch = x if x.ndim == 4 else x[None]
        out = self._infer(batch.to(self.device, torch.float32), direction, tile, overlap, None)
        out = out if x.ndim == 4 else out[0]
        # A copy outside inference mode: callers may use the result in autograd or in place.
        return out.to(device=x.device, dtype=x.dtype, copy=True)

    def _infer(
        self,
        x: torch.Tensor,
        direction: str,
        tile: int | None,
        overlap: int,
        batch_size: int | None,
    ) -> torch.Tensor:
        """float (N, C, H, W) on the device in, float32 of the same size out."""
        net: Any = self._compiled.get(direction, self._nets[direction])
        bridge = self._bridges[direction]
        if bridge is not None:
            net = BridgeRunner(net, bridge, self.steps, self.seed, self.path_noise)
        batch_size = batch_size or self.batch_size
        size = tuple(x.shape[-2:])
        self.check_size(size[0], size[1], tile)
        scaled = _scaled_size(size, self.scale)
        x = _match_channels(x, self._in_channels[direction])
        with torch.inference_mode(), autocast(self.device, self.precision):
            full = x
            if scaled != size:  # bicubic overshoots, where training's PIL resize clamps
                x = resize(x, scaled).clamp(-1, 1)
            if tile is None or (x.shape[-2] <= tile and x.shape[-1] <= tile):
                out = torch.cat([self._run(net, chunk) for chunk in x.split(batch_size)])
            else:
                out = self._run_tiled(net, x, tile, overlap, batch_size)
            if scaled == size and self.detail != "local":
                return out
            return with_detail(out, x, full, self.detail).clamp(-1, 1)

    def _run(
        self,
        net: Any,
        x: torch.Tensor,
        boxes: Sequence[tuple[int, int]] | None = None,
        whole: tuple[int, int] | None = None,
    ) -> torch.Tensor:
        """``net`` on ``x``, padded to a size it takes; ``boxes``: each input's (top, left) in
        its whole picture of size ``whole`` (tiles; None: each input is a whole picture), for a
        generator whose output depends on the position (colour regions)."""
        padded, top, left = _pad_to_valid(x, *size_limits(unwrap(net)))
        if self._channels_last:
            padded = padded.contiguous(memory_format=torch.channels_last)
        args = [padded]
        if getattr(unwrap(net), "takes_frame", False):
            boxes = boxes or [(0, 0)] * len(x)
            size = tuple(padded.shape[-2:])
            args.append(_frames(boxes, size, (top, left), whole or x.shape[-2:], x.device))
        try:
            out = net(*args)
        except torch._dynamo.exc.TorchDynamoException as error:  # only compiled networks raise it
            raise I2IError(
                f"torch.compile failed ({type(error).__name__}: {one_line(error)}); run without "
                f"--compile"
            ) from error
        if out.shape[-2:] != padded.shape[-2:]:
            raise I2IError(
                f"the generator turned a {padded.shape[-2]}x{padded.shape[-1]} input into "
                f"{out.shape[-2]}x{out.shape[-1]}; apply needs generators that keep the size"
            )
        height, width = x.shape[-2:]
        return out[..., top : top + height, left : left + width].float()

    def _run_tiled(
        self, net: Any, x: torch.Tensor, tile: int, overlap: int, batch_size: int
    ) -> torch.Tensor:
        """Run every tile of every image in batches, accumulate weighted, divide by the weights."""
        n, _, height, width = x.shape
        tile_h, tile_w = min(tile, height), min(tile, width)
        boxes = [
            (top, left)
            for top in _tile_starts(height, tile, overlap)
            for left in _tile_starts(width, tile, overlap)
        ]
        weights = {
            (top, left): (
                _ramp(top, tile_h, height, overlap)[:, None]
                * _ramp(left, tile_w, width, overlap)[None, :]
            ).to(x.device)
            for top, left in boxes
        }
        total = torch.zeros(height, width, device=x.device)
        for top, left in boxes:
            total[top : top + tile_h, left : left + tile_w] += weights[top, left]
        jobs = [(i, box) for i in range(n) for box in boxes]
        out: torch.Tensor | None = None
        for start in range(0, len(jobs), batch_size):
            chunk = jobs[start : start + batch_size]
            tiles = torch.stack([x[i, :, y : y + tile_h, z : z + tile_w] for i, (y, z) in chunk])
            result = self._run(net, tiles, [box for _, box in chunk], (height, width))
            if out is None:
                out = torch.zeros(n, result.shape[1], height, width, device=x.device)
            for (i, (y, z)), piece in zip(chunk, result, strict=True):
                out[i, :, y : y + tile_h, z : z + tile_w] += piece * weights[y, z]
        assert out is not None  # there is always at least one tile
        return out / total


def _check_sampling(
    bridges: Mapping[str, Bridge | None],
    steps: int | None,
    seed: int,
    path_noise: float | None,
) -> tuple[int | None, int, float]:
    """``steps`` (None: each bridge's own), ``seed`` and ``path_noise`` (None: ``PATH_NOISE``)
    for the bridges among ``bridges``."""
    check_seed(seed)
    found = [b for b in bridges.values() if b is not None]
    for option, value in (("--steps", steps), ("--path-noise", path_noise)):
        if value is not None and not found:
            raise InvalidArgumentError(
                f"{option} is for a bridge model (UNSB), which walks a path in steps; this "
                f"model translates in one pass, drop {option}"
            )
    for bridge in found:
        bridge.check_steps(steps)
    return steps, seed, check_path_noise(PATH_NOISE if path_noise is None else path_noise)


def _upright(image: Image.Image) -> Image.Image:
    """The photo as a viewer shows it (EXIF orientation); as it is where its EXIF is broken."""
    try:
        return ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, EOFError, KeyError):
        return image


# The largest --scale: a 4096 px shorter side is already 22 MP at 4:3, as the resized copy
# is held whole before any tiling.
_MAX_SCALE = 4096


def check_scale_and_detail(
    scale: int | str | None, detail: str, config: Mapping[str, Any]
) -> int | None:
    """``scale`` in pixels for the model of ``config``, after checking that it and ``detail``
    suit that model: a Translator checks them, and so does ``i2i space`` before it publishes."""
    pixels = _check_scale(scale, config)
    if detail not in DETAILS:
        raise InvalidArgumentError(
            f"--detail (Python: detail=) is one of {', '.join(DETAILS)}; got {detail!r}"
        )
    if detail == "none" and pixels is None:
        raise InvalidArgumentError(
            "--detail none applies with --scale (Python: scale=); without it the network "
            "runs at the input's own size and its output is the result"
        )
    return pixels


def _check_scale(scale: int | str | None, config: Mapping[str, Any]) -> int | None:
    """``scale`` as pixels of the shorter side: a positive number, or ``"model"``, the load size
    the model was trained at (recorded by export), else its training crop size."""
    if scale is None:
        return None
    if scale == "model":
        training, preprocess = config.get("training") or {}, config.get("preprocess") or {}
        how = training.get("preprocess", "resize_crop")
        if how != "resize_crop":  # none: the images' own scale; scale_width: their width
            raise InvalidArgumentError(
                f"this model was trained with --preprocess {how}, not at one load size; "
                + (
                    "apply it without --scale"
                    if how == "none"
                    else "give --scale in pixels of the shorter side"
                )
            )
        found = training.get("load_size") or preprocess.get("size")
        if not (isinstance(found, int) and not isinstance(found, bool) and 0 < found <= _MAX_SCALE):
            raise InvalidArgumentError(
                f"this model records no usable training size ({short(found)}); give --scale in "
                f"pixels (e.g. --scale 286)"
            )
        return found
    if isinstance(scale, bool) or not isinstance(scale, int) or not 1 <= scale <= _MAX_SCALE:
        raise InvalidArgumentError(
            f"--scale is pixels of the shorter side, 1 to {_MAX_SCALE} (e.g. 286), or 'model'; "
            f"got {scale!r}"
        )
    return scale


def _scaled_size(size: tuple[int, ...], scale: int | None) -> tuple[int, ...]:
    """(H, W) with the shorter side at ``scale`` pixels and the shape kept."""
    if scale is None or min(size) == scale:
        return size
    factor = scale / min(size)
    return tuple(max(1, round(side * factor)) for side in size)


# ``i2i.load``: the classmethod itself, so that help() and editors show its arguments.
load = Translator.from_pretrained
