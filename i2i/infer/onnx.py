"""ONNX export with a parity check, and an ONNX Runtime generator that the Translator can run.

Each direction becomes its own graph with dynamic batch, height and width (where the network
allows), next to a ``config.json`` that records what the graphs expect. Export fails, leaving
nothing behind, when ONNX Runtime's output differs from PyTorch's by more than the tolerance.

A bridge generator (UNSB's) becomes the graph of one prediction, ``(image, time_index, noise)
-> translated``; the walk along the bridge stays in the runner (``i2i.bridge``), the same code
that runs the PyTorch model, and the parity check covers the prediction at every step of a
walk.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from i2i.bridge import Bridge, bridge_of, seeded_noise
from i2i.core.errors import CheckpointError, I2IError, InvalidArgumentError, writing
from i2i.core.files import write_file
from i2i.core.protocol import size_limits
from i2i.models.folder import CONFIG, prepare_output_folder, publish_folder, read_config
from i2i.models.safefiles import regular_file

DEFAULT_TOLERANCE = 1e-4
INPUT, OUTPUT = "image", "translated"
TIME, NOISE = "time_index", "noise"  # a bridge's other inputs
FRAME = "frame"  # where the image lies in its picture, for a generator with colour regions


def _need_onnx() -> None:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
        import onnxscript  # noqa: F401
    except ImportError:
        raise I2IError(
            'ONNX export needs onnx, onnxscript and onnxruntime: pip install "i2i[onnx]"'
        ) from None


def _probe_size(net: nn.Module, base: int) -> int:
    multiple, smallest = size_limits(net)
    size = max(base, smallest, multiple)
    return -(-size // multiple) * multiple


def _session(path: Path) -> Any:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _inputs(net: nn.Module, batch: int, in_channels: int, height: int, width: int) -> tuple:
    """Random inputs for ``net``: an image, for a bridge a step number and a noise vector, and
    for a generator with colour regions a frame (a tile's: the middle half of the rows)."""
    image = torch.rand(batch, in_channels, height, width) * 2 - 1
    if getattr(net, "takes_frame", False):
        return image, torch.tensor([[0.25, 0.0, 0.5, 1.0]]).repeat(batch, 1)
    bridge = bridge_of(net)
    if bridge is None:
        return (image,)
    return image, torch.randint(bridge.steps, (batch,)), torch.randn(batch, bridge.noise_dim)


def _export_one(net: nn.Module, path: Path, example: tuple) -> bool:
    """Export with dynamic batch/height/width; fall back to a fixed size. Returns dynamic-ness."""
    batch = torch.export.Dim("batch")
    dims: tuple = ({0: batch, 2: torch.export.Dim("height"), 3: torch.export.Dim("width")},)
    names = [INPUT]
    if len(example) > 1:  # a bridge's step numbers and noise vectors, or a frame: the batch's
        names += [FRAME] if getattr(net, "takes_frame", False) else [TIME, NOISE]
        dims += ({0: batch},) * (len(names) - 1)
    common = dict(input_names=names, output_names=[OUTPUT], verbose=False, external_data=False)
    try:
        with warnings.catch_warnings():  # the three inputs' shared batch axis keeps one name
            warnings.filterwarnings("ignore", message=".*axis name: batch will not be used")
            torch.onnx.export(net, example, str(path), dynamic_shapes=dims, **common)
        return True
    except Exception:  # the network's shapes cannot be symbolic (e.g. fixed-depth U-Nets)
        torch.onnx.export(net, example, str(path), **common)
        return False


def parity(net: nn.Module, path: Path, inputs: torch.Tensor | tuple) -> float:
    """Max absolute difference between ONNX Runtime and PyTorch on ``inputs``."""
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    session = _session(path)
    with torch.no_grad():
        want = net(*inputs).numpy()
    names = [i.name for i in session.get_inputs()]
    got = session.run(None, {n: t.numpy() for n, t in zip(names, inputs, strict=True)})[0]
    return float(abs(got - want).max())


def walk_parity(net: nn.Module, path: Path, spec: dict[str, Any], x: torch.Tensor) -> float:
    """A bridge: the max absolute difference of the ONNX runner's prediction at every step of
    PyTorch's walk from ``x``, each on PyTorch's inputs (so that differences do not compound
    along the path; they do when the two walk on their own, chaotically for random weights)."""
    bridge = bridge_of(net)
    assert bridge is not None
    runner = OnnxGenerator(path, spec)
    worst = 0.0

    def step(x_t: torch.Tensor, index: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        nonlocal worst
        want = net(x_t, index, z)
        worst = max(worst, float((runner(x_t, index, z) - want).abs().max()))
        return want

    with torch.no_grad():
        bridge.sample(step, x, noise=seeded_noise(1, "cpu"))
    return worst


def export_onnx(
    config: dict[str, Any],
    generators: dict[str, nn.Module],
    out_dir: Path,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    overwrite: bool = False,
    log: Any = print,
) -> Path:
    """Write ``<direction>.onnx`` per direction plus ``config.json`` into ``out_dir``."""
    if not 0 <= tolerance < float("inf"):  # NaN too: no difference is ever above NaN
        raise InvalidArgumentError(f"--tolerance must be a number from 0, got {tolerance}")
    _need_onnx()
    out_dir = Path(out_dir)
    with writing(out_dir):
        prepare_output_folder(out_dir, overwrite)
        tmp = Path(tempfile.mkdtemp(dir=out_dir.parent, prefix=f".{out_dir.name}."))
    try:
        graphs = {}
        base = int(config.get("preprocess", {}).get("size") or 64)
        for direction, net in generators.items():
            net = net.float().cpu().eval()
            in_channels = int(config["generators"][direction]["kwargs"].get("in_channels", 3))
            size = _probe_size(net, min(base, 64))
            path = tmp / f"{direction}.onnx"
            dynamic = _export_one(net, path, _inputs(net, 1, in_channels, size, size))
            # Check on a second, non-square size when the graph claims to take any size.
            multiple, smallest = size_limits(net)
            other = _probe_size(net, size + 2 * multiple) if dynamic else size
            torch.manual_seed(0)
            batch = 2 if dynamic else 1  # a fixed graph was traced at batch 1
            diffs = [parity(net, path, _inputs(net, batch, in_channels, size, other))]
            if dynamic:
                diffs.append(parity(net, path, _inputs(net, 1, in_channels, other, size)))
            bridge = bridge_of(net)
            graph = {
                "file": path.name,
                "dynamic": dynamic,
                "size": None if dynamic else size,
                "size_multiple": multiple,
                "min_size": smallest,
            }
            if bridge is not None:
                graph["bridge"] = bridge.as_dict()
                image = _inputs(net, batch, in_channels, size, other)[0]
                diffs.append(walk_parity(net, path, graph, image))
            worst = max(diffs)
            log(
                f"{direction}: ONNX vs PyTorch max abs difference {worst:.2e} "
                f"(tolerance {tolerance:.0e}){'' if dynamic else f', fixed size {size}x{size}'}"
            )
            if not worst <= tolerance:  # a NaN difference fails too
                raise I2IError(
                    f"ONNX parity check failed for {direction}: max abs difference {worst:.2e} > "
                    f"{tolerance:.0e}; nothing was written"
                )
            graphs[direction] = {**graph, "max_abs_diff": worst}
        with writing(out_dir):
            write_file(
                tmp / CONFIG, (json.dumps({**config, "onnx": graphs}, indent=2) + "\n").encode()
            )
            publish_folder(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


class OnnxGenerator(nn.Module):
    """An exported graph behind the same call as a generator, so the Translator's padding,
    batching and tiling work unchanged with ONNX Runtime (and its bridge walk, for a bridge)."""

    def __init__(self, path: Path, spec: dict[str, Any]) -> None:
        super().__init__()
        self.session = _session(path)
        self.names = [i.name for i in self.session.get_inputs()]
        self.size_multiple = spec.get("size_multiple", 1)
        self.min_size = spec.get("min_size", 1)
        self.fixed_size = spec.get("size")
        self.takes_frame = FRAME in self.names
        if spec.get("bridge"):
            self.bridge = Bridge.from_dict(spec["bridge"])

    def forward(self, x: torch.Tensor, *conditions: torch.Tensor) -> torch.Tensor:
        if self.fixed_size and tuple(x.shape[-2:]) != (self.fixed_size, self.fixed_size):
            raise I2IError(
                f"this ONNX graph takes {self.fixed_size}x{self.fixed_size} images only; use "
                f"--tile {self.fixed_size} or the PyTorch backend"
            )
        x = x.detach().float()
        arrays = [t.detach().cpu().contiguous().numpy() for t in (x, *conditions)]
        if self.fixed_size:  # traced at batch 1: run the images one by one
            outs = [self._run([a[i : i + 1] for a in arrays]) for i in range(len(arrays[0]))]
            return torch.from_numpy(np.concatenate(outs)).to(x.device)
        return torch.from_numpy(self._run(arrays)).to(x.device)

    def _run(self, arrays: list[np.ndarray]) -> np.ndarray:
        return self.session.run(None, dict(zip(self.names, arrays, strict=True)))[0]


def load_onnx(folder: Path) -> tuple[dict[str, Any], dict[str, nn.Module]]:
    """Config and ONNX Runtime generators of a folder written by ``export_onnx``."""
    _need_onnx()
    config = read_config(folder)
    graphs = config.get("onnx")
    if not graphs:
        raise I2IError(
            f"{folder} holds no ONNX graphs; make them with `i2i export {folder} --format onnx -o DIR`"
        )
    if not isinstance(graphs, dict) or not set(graphs) <= set(config["generators"]):
        raise CheckpointError(f'{folder}/{CONFIG}: "onnx" must map directions to graphs')
    return config, {d: OnnxGenerator(_graph_file(folder, d, g), g) for d, g in graphs.items()}


def _graph_file(folder: Path, direction: str, graph: Any) -> Path:
    """The graph file a config entry names: a plain name of a regular file in ``folder``, with
    sizes that are positive integers (the Translator pads to them)."""
    name = graph.get("file") if isinstance(graph, dict) else None
    sizes = [graph.get(k, 1) for k in ("size_multiple", "min_size")] if name else []
    if (
        not isinstance(name, str)
        or Path(name).name != name
        or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sizes)
        or not isinstance(graph.get("size") or 1, int)
    ):
        raise CheckpointError(
            f"{folder}/{CONFIG}: the ONNX graph of {direction} must name a file in the folder "
            f"and positive sizes, got {str(graph)[:100]}"
        )
    return regular_file(Path(folder) / name, Path(folder), "ONNX graph")
