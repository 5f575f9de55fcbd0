"""Issue 19's list of failures, and more hostile input, as one table.

Each row does what a new user or a hostile file would (the CLI in-process, or the Python API)
and checks how it ends: exit status and the one ``Error:`` line, or the correct result; and
that nothing was lost or written outside its place (every file of the test's folders and of
the dataset is byte for byte as before, except in the folders the row may write). A static
test then guards every ``raise`` of the package against tracebacks coming back.
"""

from __future__ import annotations

import ast
import builtins
import errno
import gc
import hashlib
import io
import json
import os
import re
import shlex
import shutil
import signal
import struct
import types
import zlib
from collections.abc import Callable
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import i2i
from i2i.cli import cli
from i2i.core.errors import I2IError
from i2i.models.export import export_run
from tests.conftest import TINY
from tests.training import train

pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

ROOT = Path(__file__).resolve().parents[1]
TINY_FLAGS = [
    "--gen", "resnet6", "--ngf", "8", "--ndf", "8", "--load-size", "36", "--crop-size", "32",
    "--workers", "0", "--sample-every", "1000", "--num-samples", "2",
]  # fmt: skip
COPIED = ("run", "recipe_run", "readme_run", "model")


# -- the world the rows run in ------------------------------------------------------------------
def _readme_command() -> list[str]:
    """The README's main command, the ``i2i train`` part, as arguments."""
    text = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- main-command -->\n```\n(.*?)\n```", text, re.S)
    assert block is not None
    command = shlex.split(block.group(1).split("&&")[-1])
    assert command[:3] == ["i2i", "train", "cyclegan"] and "--recipe" in command
    return command[1:]


@pytest.fixture(scope="module")
def world(tmp_path_factory, toy_data) -> dict[str, Any]:
    """A finished 2-step run, a 1-step --recipe quality run, the README's main command's run
    (one step), the Ctrl-C hint of an interrupted recipe run, and a model exported."""
    base = tmp_path_factory.mktemp("hostile")
    train("cyclegan", data=str(toy_data), out=str(base / "run"), max_steps=2, **TINY)
    recipe = {**TINY, "recipe": "quality"}
    train("cyclegan", data=str(toy_data), out=str(base / "recipe_run"), max_steps=1, **recipe)
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(base)
        # The README's command trains on the built-in toy data: a small stand-in here (the full
        # one takes 14 s to draw; the slow test below runs the command as it is).
        from i2i import toydata

        patch.setenv("I2I_HOME", str(base / "i2i_home"))
        small = toydata.make_toy_unpaired
        patch.setattr(toydata, "make_toy_unpaired", lambda root: small(root, 4, 2, size=32))
        result = CliRunner().invoke(cli, [*_readme_command(), "--max-steps", "1"])
        assert result.exit_code == 0, result.output
        shutil.move(base / "runs" / "toy", base / "readme_run")
        # Ctrl-C at the first step: the signal handler's flag, raised before the loop starts.
        from i2i.train.stop import StopFlag

        patch.setattr(StopFlag, "__init__", lambda self: setattr(self, "signum", 2))
        printed = io.StringIO()
        with redirect_stdout(printed):
            stopped = train("cyclegan", data=str(toy_data), out=str(base / "stopped"), **recipe)
    assert stopped.interrupted
    hint = next(line for line in printed.getvalue().splitlines() if "Resume with:" in line)
    export_run(base / "run", base / "model")
    image = base / "photo.png"
    Image.effect_noise((32, 32), 40).convert("RGB").save(image)
    return {"base": base, "data": toy_data, "image": image, "hint": hint}


def snapshot(*folders: Path) -> dict[str, str]:
    """Every file under ``folders`` and a hash of its bytes (links and FIFOs as such)."""
    found = {}
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            key = str(path)
            if path.is_symlink():
                found[key] = f"link:{os.readlink(path)}"
            elif path.is_fifo():
                found[key] = "fifo"
            elif path.is_file():
                found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
            elif path.is_dir():
                found[key] = "dir"
    return found


# -- making hostile files -----------------------------------------------------------------------
def _edit_json(path: Path, change: Callable[[dict], Any]) -> None:
    config = json.loads(path.read_text())
    change(config)
    path.write_text(json.dumps(config))


def _model_config(change: Callable[[dict], Any]) -> Callable[[dict], None]:
    return lambda w: _edit_json(w["model"] / "config.json", change)


def _run_config(change: Callable[[dict], Any]) -> Callable[[dict], None]:
    return lambda w: _edit_json(w["run"] / "config.json", change)


def _gen_kwargs(**values: Any) -> Callable[[dict], None]:
    return _model_config(lambda c: c["generators"]["AtoB"]["kwargs"].update(values))


def _raw_config(text: Callable[[str], str]) -> Callable[[dict], None]:
    def prepare(w: dict) -> None:
        path = w["model"] / "config.json"
        path.write_text(text(path.read_text()))

    return prepare


def _latest(w: dict) -> Path:
    run = w["run"]
    return run / "checkpoints" / (run / "checkpoints" / "latest").read_text().strip()


def _png_claiming(path: Path, width: int, height: int) -> None:
    """A PNG of a few bytes whose header claims ``width`` x ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)


def _jpeg_claiming(path: Path, width: int, height: int) -> None:
    """A JPEG whose frame header (SOF0) claims ``width`` x ``height`` pixels."""
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, format="JPEG")
    data = buffer.getvalue()
    sof = data.index(b"\xff\xc0")
    path.write_bytes(data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9 :])


def _video(path: Path, sizes: list[tuple[int, int]]) -> Path:
    """An MJPEG video whose frames have the given sizes (each frame its own JPEG, as MJPEG
    allows, so the size may change mid-stream)."""
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mjpeg", rate=8)
        stream.width, stream.height = sizes[0]
        stream.pix_fmt = "yuvj420p"
        for index, (width, height) in enumerate(sizes):
            encoder = av.CodecContext.create("mjpeg", "w")
            encoder.width, encoder.height, encoder.pix_fmt = width, height, "yuvj420p"
            encoder.time_base = Fraction(1, 8)
            rows, columns = np.mgrid[0:height, 0:width]
            rgb = np.stack([columns * 4 + index * 3, rows * 4, rows * 0 + 128], axis=-1)
            frame = av.VideoFrame.from_ndarray((rgb % 256).astype(np.uint8), format="rgb24")
            for packet in [*encoder.encode(frame), *encoder.encode(None)]:
                packet.stream, packet.pts, packet.dts = stream, index, index
                container.mux(packet)
    return path


def _make(name: str, make: Callable[[Path], Any]) -> Callable[[dict], None]:
    return lambda w: make(w["tmp"] / name)


def _read_only(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """``folder`` as on a read-only file system, for any user (root ignores chmod)."""
    real_open, real_mkdir = os.open, os.mkdir
    inside = str(folder.resolve())

    def refuse(path: Any) -> None:
        if os.path.abspath(os.fsdecode(path)).startswith(inside):
            raise OSError(errno.EROFS, "Read-only file system", os.fsdecode(path))

    def open_(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT):
            refuse(path)
        return real_open(path, flags, *args, **kwargs)

    def mkdir(path: Any, *args: Any, **kwargs: Any) -> None:
        refuse(path)
        real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", open_)
    monkeypatch.setattr(os, "mkdir", mkdir)


def _full_disk_for_checkpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills up halfway through a checkpoint's file."""
    import i2i.models.checkpoint as checkpoint

    real = checkpoint.write_file

    def write_half(path: Path, data: bytes) -> None:
        real(path, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(checkpoint, "write_file", write_half)


def _full_disk_for_videos(monkeypatch: pytest.MonkeyPatch) -> None:
    """The disk fills up while the video's packets are written (PyAV raises an OSError)."""
    import i2i.infer.video as video

    av = pytest.importorskip("av")

    class Full:
        def __init__(self, container: Any) -> None:
            self._container = container

        def __getattr__(self, name: str) -> Any:
            return getattr(self._container, name)

        def mux(self, packets: Any) -> None:
            raise OSError(errno.ENOSPC, "No space left on device")

    def open_(path: str, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        container = av.open(path, mode, *args, **kwargs)
        return Full(container) if mode == "w" else container

    proxy = types.SimpleNamespace(**{k: getattr(av, k) for k in dir(av) if not k.startswith("__")})
    proxy.open = open_
    monkeypatch.setattr(video, "require_av", lambda: proxy)


# -- API rows -----------------------------------------------------------------------------------
def _resume_in_python(w: dict) -> None:
    result = i2i.fit(i2i.create_task("cyclegan", resume=str(w["recipe_run"]), max_steps=2))
    assert result.step == 2


def _space_app_is_only_literals(w: dict) -> None:
    """A revision (or repo id) holding quotes and code stays a string literal in app.py."""
    from i2i.demo.space import space_files

    evil = '"""\nimport os\nos.system("echo pwned")\n"""'
    app = space_files("user/model", evil)["app.py"]
    module = ast.parse(app)
    kinds = [type(node).__name__ for node in module.body]
    assert kinds == ["Expr", "ImportFrom", "Expr"], kinds  # docstring, import, serve(...)
    call = module.body[2].value
    assert isinstance(call, ast.Call) and call.func.id == "serve"
    assert [a.value for a in call.args] == ["user/model"]
    assert call.keywords[0].value.value == evil
    assert "pwned" not in module.body[0].value.value


def _space_refuses_a_hostile_commit(w: dict) -> None:
    from huggingface_hub import HfApi

    from i2i.demo.space import publish_space

    answer = types.SimpleNamespace(
        sha='abc"""\nimport os\n', siblings=[types.SimpleNamespace(rfilename="config.json")]
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(HfApi, "model_info", lambda self, *a, **k: answer)
        publish_space("user/model", "user/space")


def _demo_examples_stay_in_their_folder(w: dict) -> None:
    pytest.importorskip("gradio")
    from i2i.demo.page import DemoLimits, _Handlers

    translator = i2i.load(str(w["model"]), device="cpu")
    translator._config["domains"] = {"A": "../../../escaped/day", "B": "night/../../x"}
    handlers = _Handlers(translator, DemoLimits())
    rows = handlers.example_files(w["model"] / "samples.png")
    assert rows, "the model has a sample grid"
    for path, _ in rows:
        assert Path(path).resolve().parent == (handlers.root / "examples").resolve()
    root = handlers.root
    del handlers, rows
    gc.collect()
    assert not root.exists()  # no /tmp/i2i-demo-* folder left behind


def _demo_video_has_a_pixel_cap(w: dict) -> None:
    pytest.importorskip("gradio")
    from i2i.demo.page import DemoLimits, _Handlers

    clip = _video(w["tmp"] / "wide.mkv", [(1200, 800)] * 2)
    translator = i2i.load(str(w["model"]), device="cpu")
    handlers = _Handlers(translator, DemoLimits(untiled_max_pixels=512 * 512))
    try:
        handlers.video(str(clip), "AtoB", False, 512)
    except Exception as error:  # gr.Error
        raise I2IError(str(error)) from None
    finally:
        shutil.rmtree(handlers.root, ignore_errors=True)


class _NeedsRealValues(torch.nn.Module):
    """A third party's generator that cannot be built on the meta device (``.item()``)."""

    size_multiple = 1

    def __init__(self, in_channels: int = 3, out_channels: int = 3, width: int = 4) -> None:
        super().__init__()
        self.scale = float(torch.ones(1).item())
        self.body = torch.nn.Conv2d(in_channels, width, 3, padding=1)
        self.head = torch.nn.Conv2d(width, out_channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.head(self.body(x)) * self.scale)


def _unplannable_model(w: dict, width: int) -> Path:
    from i2i.core.registry import generators
    from i2i.models.folder import make_config, net_spec, save_model

    spec = net_spec(generators, "needs_real_values", {"width": 4})
    folder = save_model(
        w["tmp"] / "unplannable", make_config("x", {"AtoB": spec}), {"AtoB": _NeedsRealValues()}
    )
    _edit_json(
        folder / "config.json", lambda c: c["generators"]["AtoB"]["kwargs"].update(width=width)
    )
    return folder


def _unplannable_loads(width: int) -> Callable[[dict], None]:
    """Load a model of ``_NeedsRealValues`` whose config says ``width`` (the file holds 4)."""

    def load(w: dict) -> None:
        from i2i.core.registry import generators

        generators.register(_NeedsRealValues, "needs_real_values", plugin="tests")
        try:
            i2i.load(str(_unplannable_model(w, width)), device="cpu")
        finally:
            generators.unregister("needs_real_values")

    return load


# -- the table ----------------------------------------------------------------------------------
@dataclass
class Row:
    """One case: what is run, how it must end, what it may write (keys of the world)."""

    name: str
    run: Callable[[dict], list[str]] | None = None  # CLI arguments
    api: Callable[[dict], Any] | None = None  # or a Python call
    expect: str = ""  # a fragment of the one Error: line, or of the output when it succeeds
    code: int = 1
    prepare: Callable[[dict], Any] = lambda w: None
    writes: tuple[str, ...] = ()
    check: Callable[[dict], Any] = lambda w: None
    patch: Callable[[pytest.MonkeyPatch, dict], Any] = lambda m, w: None
    summary: bool = False  # the expected text ends apply's summary line, not an Error: line
    env: dict[str, str] = field(default_factory=dict)


def _train(
    *flags: str, out: str | Callable[[dict], Any] = "out", data: Callable[[dict], Any] | None = None
) -> Callable[[dict], list[str]]:
    """``i2i train cyclegan`` of one tiny step; ``out``: a key of the world or a path of it."""

    def argv(w: dict) -> list[str]:
        folder = out(w) if callable(out) else w[out]
        source = data(w) if data else w["data"]
        return ["train", "cyclegan", "--data", str(source), "--out", str(folder), *TINY_FLAGS,
                "--max-steps", "1", *flags]  # fmt: skip

    return argv


def _not_utf8(key: str) -> Callable[[dict], str]:
    """The world's path ``key`` with a byte that is not UTF-8 at its end."""
    return lambda w: os.fsdecode(bytes(w[key]) + b"\xff")


def _resume(key: str = "run", *flags: str) -> Callable[[dict], list[str]]:
    return lambda w: ["train", "cyclegan", "--resume", str(w[key]), *flags]


def _apply(key: str = "model", *inputs: str, flags: tuple[str, ...] = ()) -> Callable:
    def argv(w: dict) -> list[str]:
        sources = [str(w["tmp"] / name) for name in inputs] or [str(w["image"])]
        return ["apply", str(w[key]), *sources, "-o", str(w["out"]), *flags]

    return argv


def _export(key: str = "run") -> Callable[[dict], list[str]]:
    return lambda w: ["export", str(w[key]), "-o", str(w["out"])]


def _written(*names: str) -> Callable[[dict], None]:
    def check(w: dict) -> None:
        for name in names:
            assert (w["out"] / name).is_file(), f"{name} was not written"

    return check


def _resumed_to(key: str, step: int, recipe: str | None = "quality") -> Callable[[dict], None]:
    def check(w: dict) -> None:
        run = w[key]
        assert (run / "checkpoints" / "latest").read_text().strip() == f"step_{step:08d}"
        options = json.loads((run / "config.json").read_text())["options"]
        assert options["recipe"] == recipe
        if recipe == "quality":
            assert options["gen_kw"]["residual"] and options["ema_decay"] == 0.999
        assert not (run / ".i2i-lock").exists()  # the lock goes with the training

    return check


def _hold(key: str) -> Callable[[dict], Any]:
    """Another training holds the folder (the lock is taken here, in this process)."""

    def prepare(w: dict) -> None:
        from i2i.train.run_folder import claim_run_folder

        folder = w[key]
        folder.mkdir(exist_ok=True)
        holder = claim_run_folder(None, str(folder), "cyclegan")
        w["cleanup"].append(holder.release)

    return prepare


def _put_files(key: str, *names: str) -> Callable[[dict], None]:
    def prepare(w: dict) -> None:
        w[key].mkdir(parents=True, exist_ok=True)
        for name in names:
            (w[key] / name).write_text("mine\n")

    return prepare


def _yaml(text: str) -> Callable[[dict], None]:
    return lambda w: (w["tmp"] / "options.yaml").write_bytes(text.encode())


def _alias_bomb() -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        previous = f"*a{level - 1}"
        lines.append(f"a{level}: &a{level} [{', '.join([previous] * 9)}]")
    return "\n".join(lines) + "\n"


def _with_config(*flags: str) -> Callable[[dict], list[str]]:
    return lambda w: [*_train(*flags)(w), "--config", str(w["tmp"] / "options.yaml")]


def _symlink(target: Callable[[dict], Path], link: Callable[[dict], Path]) -> Callable:
    def prepare(w: dict) -> None:
        path = link(w)
        path.unlink()
        path.symlink_to(target(w))

    return prepare


def _fifo(path: Callable[[dict], Path]) -> Callable[[dict], None]:
    def prepare(w: dict) -> None:
        path(w).unlink()
        os.mkfifo(path(w))

    return prepare


def _hub_snapshot(w: dict) -> None:
    """The model laid out as the Hugging Face cache lays out a pull: links into blobs/."""
    repo = w["tmp"] / "hub" / "models--user--model"
    (repo / "blobs").mkdir(parents=True)
    snapshot = repo / "snapshots" / ("a" * 40)
    snapshot.mkdir(parents=True)
    for file in w["model"].iterdir():
        blob = repo / "blobs" / hashlib.sha256(file.read_bytes()).hexdigest()
        shutil.copyfile(file, blob)
        (snapshot / file.name).symlink_to(os.path.relpath(blob, snapshot))
    w["snapshot"] = snapshot


def _onnx_config(graph: dict) -> Callable[[dict], None]:
    def prepare(w: dict) -> None:
        config = json.loads((w["model"] / "config.json").read_text())
        config["onnx"] = {"AtoB": graph}
        (w["model"] / "config.json").write_text(json.dumps(config))

    return prepare


def _model_with(extra: Callable[[dict], Any]) -> Callable[[dict], None]:
    """``out`` holds a copy of the exported model, plus what ``extra`` puts there."""

    def prepare(w: dict) -> None:
        shutil.copytree(w["model"], w["out"])
        extra(w)

    return prepare


def _unreachable(repo_id: str, revision: str | None = None) -> None:
    from i2i.models.hub import HubError

    raise HubError("the Hub is not here")


def _gone(folder: Path) -> None:
    assert not folder.exists(), sorted(p.name for p in folder.iterdir())


def _no_memory(task: Any) -> None:
    raise RuntimeError(
        "[enforce fail at alloc_cpu.cpp:127] DefaultCPUAllocator: can't allocate memory: you "
        "tried to allocate 4831838208 bytes"
    )


def _seeded_noise(seed: int) -> Any:
    from i2i.bridge import seeded_noise

    return seeded_noise(seed, "cpu")


def _line_charts(series: dict) -> Any:
    from i2i.viz import line_charts

    return line_charts(series)


def _nan_weights(w: dict) -> None:
    from safetensors.torch import load_file, save_file

    path = w["model"] / "model.safetensors"
    weights = load_file(str(path))
    key = next(k for k in sorted(weights) if k.startswith("AtoB.") and weights[k].ndim == 4)
    weights[key][0, 0, 0, 0] = float("nan")
    save_file(weights, str(path), metadata={"format": "pt", "i2i_format": "i2i-model"})


ROWS = [
    # 1. A run trained with --recipe resumes: the CLI, the Ctrl-C hint, Python, the README's run
    Row("1-recipe-run-resumes", _resume("recipe_run", "--max-steps", "2"), expect="Finished 2",
        code=0, writes=("recipe_run",), check=_resumed_to("recipe_run", 2)),
    Row("1-the-ctrl-c-hint-resumes",
        lambda w: [*shlex.split(w["hint"].split("Resume with: ")[1])[1:], "--max-steps", "2"],
        expect="Finished 2", code=0, writes=("stopped",),
        check=_resumed_to("stopped", 2)),
    Row("1-create-task-resume", api=_resume_in_python, code=0, writes=("recipe_run",),
        check=_resumed_to("recipe_run", 2)),
    Row("1-readme-main-command-resumes", _resume("readme_run", "--max-steps", "2"),
        expect="Finished 2", code=0, writes=("readme_run",), check=_resumed_to("readme_run", 2)),
    Row("1-recipe-run-resumed-with-its-own-command",
        lambda w: ["train", "cyclegan", "--recipe", "quality", "--gen-kw", "antialias=true",
                   "--resume", str(w["recipe_run"]), "--max-steps", "2"],
        expect="Finished 2", code=0, writes=("recipe_run",), check=_resumed_to("recipe_run", 2)),
    Row("1-another-recipe-on-resume-is-refused", _resume("recipe_run", "--recipe", "nope"),
        expect="unknown recipe 'nope'; available: quality"),
    # 2. One training per run folder
    Row("2-resume-of-a-folder-in-use", _resume("run", "--max-steps", "4"), prepare=_hold("run"),
        expect=f"is in use by a training in process {os.getpid()}"),
    Row("2-new-training-into-a-folder-in-use", _train(), prepare=_hold("out"),
        expect=f"is in use by a training in process {os.getpid()}", writes=("out",)),
    Row("2-new-training-into-a-run", _train(out="run"),
        expect="already holds a cyclegan run; continue it with `i2i train cyclegan --resume"),
    Row("2-other-task-into-a-run", lambda w: [*_train(out="run")(w)[:1], "fastcut",
                                              *_train(out="run")(w)[2:]],
        expect="holds a cyclegan run, not a fastcut one"),
    Row("2-a-run-stopped-before-its-first-checkpoint-resumes",
        _resume("run", "--max-steps", "1"),
        prepare=lambda w: shutil.rmtree(w["run"] / "checkpoints"),
        expect="no checkpoint yet; training it from step 0", code=0, writes=("run",)),
    # 3. train --out never clobbers a model or other files
    Row("3-train-into-an-exported-model", _train(out="model"), expect="is an exported model"),
    Row("3-train-into-a-folder-of-files", _train(), prepare=_put_files("out", "notes.txt", "a.jpg"),
        expect="is not empty (it holds a.jpg, notes.txt)", writes=()),
    Row("3-train-out-is-a-file", _train(out=lambda w: w["image"]),
        expect="is a file, not a folder"),
    # 4. A model folder is only data
    Row("4-discriminators-are-never-built-to-apply",
        _apply(), prepare=_model_config(lambda c: c.__setitem__("discriminators", {
            "D_A": {"name": "timm", "kwargs": {"backbone": "hf-hub:evil/net"}},
            "D_B": {"name": "timm", "kwargs": {"backbone": "local-dir:/nonexistent"}},
        })), code=0, expect="Wrote 1 file", writes=("out",), check=_written("photo.png")),
    Row("4-latest-names-an-absolute-path", _apply("run"),
        prepare=lambda w: (w["run"] / "checkpoints" / "latest").write_text("/etc\n"),
        expect="names '/etc', not a checkpoint of this run"),
    Row("4-latest-climbs-out-on-resume", _resume("run", "--max-steps", "4"),
        prepare=lambda w: (w["run"] / "checkpoints" / "latest").write_text(
            "../../model/step_00000002\n"), expect="not a checkpoint of this run"),
    Row("4-checkpoint-links-out-of-the-run", _export(),
        prepare=_symlink(lambda w: w["model"] / "model.safetensors",
                         lambda w: _latest(w) / "networks.safetensors"),
        expect="points outside"),
    Row("4-weights-are-a-fifo", _apply(), prepare=_fifo(lambda w: w["model"] / "model.safetensors"),
        expect="model.safetensors is not a regular file"),
    Row("4-config-links-out-of-the-model", _apply(),
        prepare=_symlink(lambda w: w["run"] / "config.json", lambda w: w["model"] / "config.json"),
        expect="points outside"),
    Row("4-weights-link-to-a-device", _apply(),
        prepare=_symlink(lambda w: Path("/dev/zero"), lambda w: w["model"] / "model.safetensors"),
        expect="points outside"),
    Row("4-a-hub-cache-snapshot-may-link-into-its-blobs",
        lambda w: ["apply", str(w["snapshot"]), str(w["image"]), "-o", str(w["out"])],
        prepare=_hub_snapshot, code=0, expect="Wrote 1 file", writes=("out", "hub")),
    Row("4-onnx-graph-outside-the-folder", _apply(flags=("--backend", "onnxruntime")),
        prepare=_onnx_config({"file": "../run/config.json"}),
        expect="must name a file in the folder"),
    # 5. Generated code never runs an outside string
    Row("5-space-app-holds-hostile-values-as-literals", api=_space_app_is_only_literals, code=0),
    Row("5-space-refuses-a-commit-that-is-not-one", api=_space_refuses_a_hostile_commit,
        expect="which is not a commit id"),
    # 6. Bounded work from small inputs
    Row("6-yaml-alias-bomb", _with_config(), prepare=_yaml(_alias_bomb()),
        expect="anchors and aliases (&name, *name) are not allowed"),
    Row("6-json-config-nested-deep", lambda w: [*_train()(w), "--config", str(w["tmp"] / "o.json")],
        prepare=_make("o.json", lambda p: p.write_text("[" * 100000 + "]" * 100000)),
        expect="nested deeper than 32 levels"),
    Row("6-yaml-config-nested-deep", _with_config(),
        prepare=_yaml("a:\n" + "".join("  " * i + "b:\n" for i in range(1, 60)) + "  " * 60 + "c: 1\n"),
        expect="nested deeper than 32 levels"),
    Row("6-model-config-nested-deep", _apply(),
        prepare=_raw_config(lambda t: t[:-1] + ', "x": ' + "[" * 100000 + "]" * 100000 + "}"),
        expect="nested deeper than 32 levels"),
    Row("6-model-config-over-a-megabyte", _apply(),
        prepare=_raw_config(lambda t: t[:-1] + ', "x": "' + "y" * (1 << 20) + '"}'),
        expect="is over 1024 KiB"),
    Row("6-unplannable-generator-is-built-within-a-budget", api=_unplannable_loads(10**7),
        expect="AtoB config describes a network far bigger than its weights file (over 64 MiB",
        writes=("unplannable",)),
    Row("6-unplannable-generator-of-the-right-size-loads", api=_unplannable_loads(4), code=0,
        writes=("unplannable",)),
    Row("6-untiled-png-over-the-pixel-budget", _apply("model", "big.png"),
        prepare=_make("big.png", lambda p: _png_claiming(p, 4000, 4000)),
        expect="over the 4.2-megapixel budget of one network pass; translate it in tiles with "
        "--tile 512 (Python: tile=512), or at the scale the model was trained at with --scale "
        "model", summary=True, writes=("out",)),
    Row("6-png-claiming-144-megapixels", _apply("model", "bomb.png", flags=("--tile", "512")),
        prepare=_make("bomb.png", lambda p: _png_claiming(p, 12000, 12000)),
        expect="claims 12000x12000 pixels, more than 89 megapixels", summary=True, writes=("out",)),
    Row("6-jpeg-claiming-billions-of-pixels", _apply("model", "bomb.jpg", flags=("--tile", "512")),
        prepare=_make("bomb.jpg", lambda p: _jpeg_claiming(p, 60000, 60000)),
        expect="decompression bomb", summary=True, writes=("out",)),
    Row("6-untiled-video-over-the-pixel-budget", _apply("model", "wide.mkv"),
        prepare=_make("wide.mkv", lambda p: _video(p, [(2400, 1800)] * 2)),
        expect="wide.mkv: a 2400x1800 image is over the 4.2-megapixel budget", summary=True,
        writes=("out",)),
    Row("6-demo-video-over-the-pixel-budget", api=_demo_video_has_a_pixel_cap,
        expect="a 1200x800 image is over the 0.3-megapixel budget", writes=("wide.mkv",)),
    # 7. One line, not a traceback
    Row("7-nce-layers-by-name", lambda w: [*_train()(w)[:1], "cut", *_train()(w)[2:],
                                           "--nce-layers", "model.1,model.4", "--num-patches", "8"],
        expect="Finished 1", code=0, writes=("out",)),
    Row("7-nce-layers-beyond-the-generator",
        lambda w: [*_train()(w)[:1], "cut", *_train()(w)[2:], "--nce-layers", "0,99"],
        expect="--nce-layers 0,99 does not fit --gen resnet6: layer 99 is outside model[0.."),
    Row("7-nce-layers-beyond-the-bridge-generator",
        lambda w: [*_train()(w)[:1], "unsb", *_train()(w)[2:], "--nce-layers", "0,99"],
        expect="--nce-layers 0,99 does not fit --gen unsb_resnet6: layer 99 is outside the "
               "encoder"),
    Row("7-cut-between-grey-and-colour",
        lambda w: [*_train()(w)[:1], "cut", *_train()(w)[2:], "--channels-a", "1"],
        expect="cut compares patches of A images with patches of their translations through one "
               "encoder, so both need one channel count; got --channels-a 1 and --channels-b 3"),
    Row("7-crop-larger-than-load",
        lambda w: ["train", "cyclegan", "--data", str(w["data"]), "--out", str(w["out"]),
                   *TINY_FLAGS, "--max-steps", "1", "--crop-size", "40", "--load-size", "36"],
        expect="--crop-size 40 is larger than --load-size 36: the crop is cut from the image "
               "resized to --load-size; give --load-size 40 or more"),
    Row("7-out-inside-the-data",
        lambda w: ["train", "cyclegan", "--data", str(w["data"]), "--out",
                   str(w["data"] / "trainA" / "run"), *TINY_FLAGS, "--max-steps", "1"],
        expect="which training reads; put the run folder elsewhere"),
    Row("7-one-name-for-both-domains",
        lambda w: ["train", "cyclegan", "--data", str(w["data"]), "--out", str(w["out"]),
                   *TINY_FLAGS, "--max-steps", "1", "--domain-a", "photo", "--domain-b", "photo"],
        expect="--domain-a 'photo' and --domain-b 'photo' must be two different names"),
    Row("7-two-channels",
        lambda w: ["train", "cyclegan", "--data", str(w["data"]), "--out", str(w["out"]),
                   *TINY_FLAGS, "--max-steps", "1", "--channels-a", "2"],
        expect="--channels-a must be 1 (grey) or 3 (colour), got 2"),
    Row("7-nce-layers-with-an-empty-entry",
        lambda w: [*_train()(w)[:1], "cut", *_train()(w)[2:], "--nce-layers", "foo,,-1"],
        expect="--nce-layers takes comma-separated layer indices or submodule names"),
    Row("7-preprocess-none-with-a-and-b-of-two-sizes", lambda w: [
        "train", "cyclegan", "--data", str(w["tmp"] / "mixed"), "--out", str(w["out"]),
        *TINY_FLAGS, "--max-steps", "1", "--preprocess", "none"],
        prepare=lambda w: _mixed_sizes(w), expect="0000.png is 32x32 but "),
    Row("7-preprocess-none-cut", lambda w: [
        "train", "cut", "--data", str(w["tmp"] / "mixed"), "--out", str(w["out"]),
        *TINY_FLAGS, "--max-steps", "1", "--preprocess", "none", "--num-patches", "8"],
        prepare=lambda w: _mixed_sizes(w), expect="0000.png is 32x32 but "),
    *[Row(f"7-video-frames-change-size{'-' + '-'.join(f.lstrip('-') for f in flags) if flags else ''}",
          _apply("model", "vary.mkv", flags=flags),
          prepare=_make("vary.mkv", lambda p: _video(p, [(64, 48)] * 3 + [(32, 24)] * 3)),
          expect="changes its frame size from 64x48 to 32x24; such frames were scaled", code=0,
          writes=("out",), check=_written("vary.mkv"))
      for flags in [(), ("--temporal",), ("--batch-size", "4"), ("--temporal", "--batch-size", "4")]],
    Row("7-eval-video-frames-change-size",
        lambda w: ["eval", "--video", str(w["tmp"] / "vary.mkv"), str(w["tmp"] / "vary.mkv")],
        prepare=_make("vary.mkv", lambda p: _video(p, [(64, 48)] * 3 + [(32, 24)] * 3)),
        expect="warping error over 6 frames", code=0),
    Row("7-frames-under-12-px-with-temporal", _apply("model", "tiny.mkv", flags=("--temporal",)),
        prepare=_make("tiny.mkv", lambda p: _video(p, [(8, 8)] * 4)), expect="Wrote 1 file",
        code=0, writes=("out",), check=_written("tiny.mkv")),
    Row("7-full-disk-while-writing-a-video", _apply("model", "clip.mkv"),
        prepare=_make("clip.mkv", lambda p: _video(p, [(32, 32)] * 3)),
        patch=lambda m, w: _full_disk_for_videos(m),
        expect="clip.mkv: No space left on device; free some space", writes=("out",),
        check=lambda w: not list(w["out"].iterdir()) or pytest.fail("a half-written video")),
    Row("7-full-disk-while-writing-a-checkpoint", _resume("run", "--max-steps", "3"),
        patch=lambda m, w: _full_disk_for_checkpoints(m), writes=("run",),
        expect="step_00000003: No space left on device; the previous checkpoint is intact; free "
        "some space, then --resume the run",
        check=lambda w: (
            _latest(w).name == "step_00000002"
            and not list((w["run"] / "checkpoints").glob(".step_*"))
            and not (w["run"] / "checkpoints" / "step_00000003").exists()
        ) or pytest.fail("a half-written checkpoint was left")),
    Row("7-full-disk-at-the-first-checkpoint", _train(),
        patch=lambda m, w: _full_disk_for_checkpoints(m), writes=("out",),
        expect="step_00000001: No space left on device; no checkpoint was saved yet; free some "
        "space, then start the training again",
        check=lambda w: not w["out"].exists() or pytest.fail("a run with nothing to resume")),
    Row("7-read-only-run-resumed", _resume("run", "--max-steps", "3"),
        patch=lambda m, w: _read_only(m, w["run"]),
        expect="Read-only file system; make it writable to resume it"),
    Row("7-read-only-out-train", _train(out="ro_out"), patch=lambda m, w: _read_only(m, w["ro"]),
        expect="Read-only file system; choose another --out"),
    Row("7-read-only-out-export", lambda w: ["export", str(w["run"]), "-o", str(w["ro_out"])],
        patch=lambda m, w: _read_only(m, w["ro"]),
        expect="Read-only file system; choose another output folder"),
    Row("7-read-only-out-eval", lambda w: ["eval", str(w["model"]), "--data", str(w["data"]), "-o",
                                           str(w["ro_out"]), "--extractor", "nope"],
        patch=lambda m, w: _read_only(m, w["ro"]),
        expect="Read-only file system; choose another output folder"),
    Row("7-out-with-a-byte-that-is-not-utf8", _train(out=_not_utf8("out")),
        expect="is not valid UTF-8"),
    Row("7-data-with-a-byte-that-is-not-utf8", _train(data=_not_utf8("data")),
        expect="is not valid UTF-8"),
    Row("7-config-of-binary-bytes", _with_config(),
        prepare=lambda w: (w["tmp"] / "options.yaml").write_bytes(bytes(range(256)) * 4),
        expect="is not text (UTF-8)"),
    Row("7-model-ngf-negative", _apply(), prepare=_gen_kwargs(ngf=-8),
        expect="does not build 'resnet6': Trying to create tensor with negative dimension"),
    Row("7-model-init-gain-nan", _apply(),
        prepare=_raw_config(lambda t: t.replace('"init_gain": 0.02', '"init_gain": NaN', 1)),
        expect="NaN is not a JSON number"),
    Row("7-model-5000-digit-number", _apply(),
        prepare=_raw_config(lambda t: t.replace('"ngf": 8', '"ngf": ' + "9" * 5000, 1)),
        expect="is not valid JSON"),
    Row("7-model-40-digit-number", _apply(),
        prepare=_raw_config(lambda t: t.replace('"ngf": 8', '"ngf": ' + "9" * 40, 1)),
        expect="is too large a number"),
    Row("7-run-generator-without-direction", _export(),
        prepare=_run_config(lambda c: c["generators"]["G_AB"].pop("direction")),
        expect='generator G_AB needs a "direction" of its own'),
    Row("7-model-domains-of-the-wrong-type", _apply(), prepare=_model_config(
        lambda c: c.__setitem__("domains", ["day", "night"])), expect='"domains" must map A and B'),
    Row("7-model-domain-not-text", _apply(), prepare=_model_config(
        lambda c: c.__setitem__("domains", {"A": 5, "B": "night"})), expect='"domains" must map'),
    Row("7-model-generator-spec-of-the-wrong-type", _apply(), prepare=_model_config(
        lambda c: c["generators"].__setitem__("AtoB", ["resnet6"])), expect='needs a "name"'),
    Row("7-demo-port-out-of-range", lambda w: ["demo", str(w["model"]), "--port", "99999"],
        expect="99999 is not in the range 1<=x<=65535", code=2),
    Row("7-demo-max-upload-not-a-size", lambda w: ["demo", str(w["model"]), "--max-upload", "abc"],
        expect="--max-upload must be a size from 1kb, such as 25mb"),
    Row("7-demo-domain-names-make-safe-file-names", api=_demo_examples_stay_in_their_folder, code=0),
    # 8. Minor
    Row("8-animated-gif-says-it-gave-one-frame", _apply("model", "anim.gif"),
        prepare=_make("anim.gif", lambda p: _animated_gif(p)), code=0, writes=("out",),
        expect="anim.gif is animated; only its first frame was translated", check=_written("anim.gif")),
    Row("8-gifs-in-a-folder-are-found", lambda w: ["apply", str(w["model"]), str(w["tmp"] / "gifs"),
                                                   "-o", str(w["out"])],
        prepare=lambda w: (w["tmp"] / "gifs").mkdir() or _animated_gif(w["tmp"] / "gifs" / "a.gif", 1),
        code=0, expect="Wrote 1 file", writes=("out",), check=_written("a.gif")),
    Row("8-apply-into-a-read-only-folder",
        lambda w: ["apply", str(w["model"]), str(w["image"]), "-o", str(w["ro_out"])],
        patch=lambda m, w: _read_only(m, w["ro"]), expect="Read-only file system; choose another -o"),
    # Not in the list: more hostile files and clumsy hands
    Row("x-model-weights-truncated", _apply(), prepare=lambda w: (w["model"] / "model.safetensors")
        .write_bytes((w["model"] / "model.safetensors").read_bytes()[:1000]),
        expect="not a safetensors file"),
    Row("x-model-weights-claim-a-huge-header", _apply(),
        prepare=lambda w: (w["model"] / "model.safetensors").write_bytes(struct.pack("<Q", 1 << 60)
                                                                         + b"{}"),
        expect="not a safetensors file"),
    Row("x-model-weights-are-a-folder", _apply(), prepare=lambda w: (
        (w["model"] / "model.safetensors").unlink(), (w["model"] / "model.safetensors").mkdir()),
        expect="is not a regular file"),
    Row("x-model-kwarg-of-the-wrong-type", _apply(), prepare=_gen_kwargs(ngf="8"),
        expect="argument ngf must be int, got '8'"),
    Row("x-model-kwarg-float-for-int", _apply(), prepare=_gen_kwargs(ngf=8.0),
        expect="argument ngf must be int, got 8.0"),
    Row("x-model-kwarg-key-not-a-name", _apply(),
        prepare=_model_config(lambda c: c["generators"]["AtoB"]["kwargs"].update({"a b": 1})),
        expect='"kwargs" must be a mapping of argument: value'),
    Row("x-model-preprocess-size-text", _apply(), prepare=_model_config(
        lambda c: c["preprocess"].__setitem__("size", "big")), expect='"size" must be a number'),
    Row("x-model-config-is-a-list", _apply(), prepare=_raw_config(lambda t: "[1, 2]"),
        expect='lacks "format": "i2i-model"'),
    Row("x-state-without-a-step", _export(),
        prepare=lambda w: torch.save({}, _latest(w) / "state.pt"), expect="does not hold a training state"),
    Row("x-state-of-another-shape-on-resume", _resume("run", "--max-steps", "3"),
        prepare=lambda w: torch.save({"step": 2, "optimizers": 5}, _latest(w) / "state.pt"),
        expect="does not hold this run's training state"),
    Row("x-run-options-of-the-wrong-type", _resume("run", "--max-steps", "3"),
        prepare=_run_config(lambda c: c["options"].__setitem__("lr", [1])),
        expect="--lr must be a finite float, got [1]"),
    Row("x-config-values-of-the-wrong-kind", _with_config(),
        prepare=_yaml("domain_a: {a: 1}\n"), expect="--domain-a must be text, got {'a': 1}"),
    Row("x-config-recipe-a-list", _with_config(), prepare=_yaml("recipe: [quality]\n"),
        expect="--recipe must be text"),
    Row("x-config-date-for-a-float", _with_config(), prepare=_yaml("lr: 2020-01-01\n"),
        expect="--lr must be a finite float"),
    Row("x-config-seed-too-large", _with_config(), prepare=_yaml(f"seed: {10**30}\n"),
        expect="is too large a number"),
    Row("x-config-is-a-fifo", _with_config(), prepare=lambda w: os.mkfifo(w["tmp"] / "options.yaml"),
        expect="is not a regular file"),
    Row("x-config-is-a-device", lambda w: [*_train()(w), "--config", "/dev/zero"],
        expect="is not a regular file"),
    Row("x-eval-video-from-a-fifo",
        lambda w: ["eval", "--video", str(w["tmp"] / "a.mkv"), str(w["tmp"] / "b.mkv")],
        prepare=lambda w: (_video(w["tmp"] / "a.mkv", [(16, 16)] * 2), os.mkfifo(w["tmp"] / "b.mkv")),
        expect="b.mkv: it is not a regular file"),
    Row("x-an-unforeseen-write-failure-is-one-line", _train(), writes=("out",),
        patch=lambda m, w: m.setattr("i2i.train.logger._tensorboard_writer", _denied),
        expect="Permission denied (events); free some space, or use a folder you can write"),
    Row("x-space-requirement-of-two-lines",
        lambda w: ["space", "user/model", "user/space", "--requirement", "i2i\n--index-url x"],
        expect="--requirement must be one line"),
    Row("x-convert-a-fifo",
        lambda w: ["convert", "official", str(w["tmp"] / "g.pth"), "--gen", "resnet6", "-o",
                   str(w["out"])], prepare=lambda w: os.mkfifo(w["tmp"] / "g.pth"),
        expect="is not a regular file"),
    # y. The second hostile pass: lost files, diverged trainings, folders left behind
    Row("y-export-overwrite-keeps-the-run-it-exports",
        lambda w: ["export", str(w["out"] / "run"), "-o", str(w["out"]), "--overwrite"],
        prepare=_model_with(lambda w: shutil.copytree(w["run"], w["out"] / "run")),
        expect="holds 'run', which is not part of a model"),
    Row("y-export-overwrite-keeps-other-files", lambda w: [*_export()(w), "--overwrite"],
        prepare=_model_with(lambda w: _put_files("out", "notes.txt", "photo.png")(w)),
        expect="holds 'notes.txt' and 1 more, which is not part of a model"),
    Row("y-export-overwrite-replaces-a-model", lambda w: [*_export()(w), "--overwrite"],
        prepare=_model_with(lambda w: None), code=0, expect="model written to",
        writes=("out",), check=_written("config.json", "model.safetensors")),
    Row("y-eval-into-the-test-images",
        lambda w: ["eval", str(w["model"]), "--data", str(w["data"]), "-o",
                   str(w["data"] / "testA"), "--extractor", "nope"],
        expect="is inside --data"),
    Row("y-eval-into-a-folder-of-files",
        lambda w: ["eval", str(w["model"]), "--data", str(w["data"]), "-o", str(w["out"]),
                   "--extractor", "nope"],
        prepare=_put_files("out", "index.html"), expect="holds 'index.html', which is not part"),
    Row("y-eval-replaces-its-own-report",
        lambda w: ["eval", str(w["model"]), "--data", str(w["data"]), "-o", str(w["out"]),
                   "--extractor", "nope"],
        prepare=_put_files("out", "index.html", "metrics.json", "AtoB.png"),
        expect="unknown feature_extractor 'nope'"),
    Row("y-a-training-that-diverges-stops-and-leaves-nothing",
        _train("--lr", "1e12", "--log-every", "1", "--max-steps", "6"),
        expect="training diverged by step", check=lambda w: _gone(w["out"])),
    Row("y-a-run-failing-at-its-first-step-leaves-nothing", _train("--gen", "unet256"),
        expect="needs height and width divisible by 256", check=lambda w: _gone(w["out"])),
    Row("y-out-of-memory-is-one-line", _train(),
        patch=lambda m, w: m.setattr("i2i.train.trainer.BatchAugmentation.for_task", _no_memory),
        expect="can't allocate memory: you tried to allocate 4831838208 bytes); use smaller",
        check=lambda w: _gone(w["out"])),
    Row("y-an-image-pool-too-large-names-its-option", _train("--pool-size", "1000000000"),
        expect="use a smaller --pool-size (0: none)", check=lambda w: _gone(w["out"])),
    Row("y-augment-that-resizes", _train("--augment", "scale_width"),
        expect="--augment 'scale_width' sets the training size"),
    Row("y-adam-beta-of-2", _train("--beta1", "2"), expect="--beta1 must be below 1, got 2.0"),
    Row("y-ema-decay-of-1.5", _train("--ema-decay", "1.5"), expect="--ema-decay must be below 1"),
    Row("y-bridge-seed-too-large", api=lambda w: _seeded_noise(2**70),
        expect="--seed must be from 0 to 2**63 - 1"),
    Row("y-bridge-crop-not-divisible-by-4",
        lambda w: ["train", "unsb", "--data", str(w["data"]), "--out", str(w["out"]), *TINY_FLAGS,
                   "--crop-size", "30", "--max-steps", "1"],
        expect="unsb_resnet6 needs height and width divisible by 4", check=lambda w: _gone(w["out"])),
    Row("y-negative-seed-refused-before-any-work", _apply(flags=("--seed", "-5")),
        expect="--seed must be from 0 to 2**63 - 1, got -5", check=lambda w: _gone(w["out"])),
    Row("y-demo-max-upload-without-a-unit",
        lambda w: ["demo", str(w["model"]), "--max-upload", "25"],
        expect="--max-upload must be a size from 1kb"),
    Row("y-demo-max-upload-of-nothing", lambda w: ["demo", str(w["model"]), "--max-upload", "0mb"],
        expect="--max-upload must be a size from 1kb"),
    Row("y-i2i-home-is-a-file",
        lambda w: ["train", "cyclegan", "--out", str(w["out"]), *TINY_FLAGS, "--max-steps", "1"],
        env={"I2I_HOME": "/dev/null"}, expect="set I2I_HOME to a folder you can write"),
    Row("y-onnx-tolerance-nan",
        lambda w: ["export", str(w["run"]), "-o", str(w["out"]), "--format", "onnx",
                   "--tolerance", "nan"], expect="--tolerance must be a number from 0, got nan"),
    Row("y-path-noise-on-a-one-pass-model", _apply(flags=("--path-noise", "1")),
        expect="translates in one pass, drop --path-noise"),
    Row("y-eval-path-noise-on-a-one-pass-model",
        lambda w: ["eval", str(w["model"]), "--data", str(w["data"]), "-o", str(w["out"]),
                   "--path-noise", "0.5"],
        expect="translates in one pass, drop --path-noise"),
    Row("y-sample-steps-beyond-the-bridge",
        lambda w: [*_train()(w)[:1], "unsb", *_train()(w)[2:], "--bridge-steps", "2",
                   "--sample-steps", "3"],
        expect="--sample-steps 3 is more than the bridge's --bridge-steps 2: give at most 2"),
    Row("y-sample-steps-zero",
        lambda w: [*_train()(w)[:1], "unsb", *_train()(w)[2:], "--sample-steps", "0"],
        expect="--sample-steps must be at least 1, got 0"),
    Row("y-model-weights-nan", _apply(), prepare=_nan_weights,
        expect="holds NaN or infinite weights (AtoB."),
    Row("y-apply-one-output-that-cannot-be-written-skips-it", _apply("model", "x.xbm", "y.png"),
        prepare=lambda w: [Image.new("1", (16, 16)).save(w["tmp"] / n) for n in ("x.xbm", "y.png")],
        expect="skipped 1 input: cannot write", summary=True, writes=("out",),
        check=_written("y.png")),
    Row("y-a-local-path-that-is-not-there-says-so", _apply("model", flags=()),
        patch=lambda m, w: (m.setitem(w, "model", Path("runs") / "nothing-here"),
                            m.setattr("i2i.models.loader.pull", _unreachable)),
        expect="there is no folder 'runs/nothing-here' here; as a Hub id: the Hub is not here"),
    Row("y-resume-in-a-config-file",
        lambda w: ["train", "cyclegan", "--config", str(w["tmp"] / "options.yaml")],
        prepare=lambda w: _yaml(f"resume: {w['run']}\nmax_steps: 3\n")(w),
        expect="Finished 3", code=0, writes=("run",), check=_resumed_to("run", 3, recipe=None)),
    Row("y-an-empty-out-folder", _apply(flags=("-o", "")), expect="is empty; give a folder",
        code=2),
    Row("y-a-time-like-value-is-not-base-60", _train("--augment", "affine:degrees=5:6"),
        expect="argument degrees must be float, got '5:6'"),
    Row("y-cut-with-nothing-to-learn",
        lambda w: ["train", "cut", *_train("--lambda-gan", "0", "--lambda-nce", "0")(w)[2:]],
        expect="--lambda-gan and --lambda-nce are both 0", check=lambda w: _gone(w["out"])),
    Row("y-convert-an-unknown-task",
        lambda w: ["convert", "official", str(w["image"]), "--gen", "resnet6", "--task", "unsb",
                   "-o", str(w["out"])], expect="'unsb' is not one of 'cyclegan', 'pix2pix'",
        code=2),
    Row("y-onnxruntime-on-a-gpu-device",
        _apply(flags=("--backend", "onnxruntime", "--device", "cuda")),
        expect="the onnxruntime backend runs on the CPU; drop --device cuda"),
    Row("y-video-options-on-images-are-said", _apply(flags=("--start", "2")), code=0,
        expect="apply to videos only, and there is none among the inputs", writes=("out",)),
    Row("y-loss-curve-of-a-value-too-large-to-scale",
        api=lambda w: _line_charts({"G": ([1, 2, 3], [1e24, float("nan"), float("inf")])}),
        code=0),
]  # fmt: skip


def _denied(folder: Path, start_step: int) -> None:
    raise PermissionError(errno.EACCES, "Permission denied", "events")


def _mixed_sizes(w: dict) -> None:
    from i2i.toydata import make_toy_unpaired

    mixed = w["tmp"] / "mixed"
    shutil.copytree(w["data"], mixed)
    shutil.rmtree(mixed / "trainB")
    make_toy_unpaired(w["tmp"] / "big", n_train=2, n_test=1, size=48)
    shutil.copytree(w["tmp"] / "big" / "trainB", mixed / "trainB")


def _animated_gif(path: Path, frames: int = 3) -> None:
    images = [Image.new("RGB", (16, 16), (60 * i, 80, 120)) for i in range(frames)]
    images[0].save(path, save_all=frames > 1, append_images=images[1:], duration=100, loop=0)


def test_a_passed_row_leaves_no_copies_on_disk(pytestconfig):
    """Every row copies the world's runs (~50 MB); kept until the session ends, the rows filled
    CI's disk, so a passed test's tmp_path goes when it ends."""
    assert pytestconfig.getini("tmp_path_retention_policy") == "failed"


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_hostile_input_ends_in_one_line_or_a_correct_result(row, world, tmp_path, monkeypatch):
    w: dict[str, Any] = {"tmp": tmp_path, "out": tmp_path / "out", "cleanup": []}
    w["ro"] = tmp_path / "ro"  # a folder made read-only by the rows that say so
    w["ro"].mkdir()
    w["ro_out"] = w["ro"] / "out"
    for key in COPIED:
        w[key] = tmp_path / key
        shutil.copytree(world["base"] / key, w[key], symlinks=True)
    shutil.copytree(world["base"] / "stopped", tmp_path / "stopped", symlinks=True)
    w["stopped"] = tmp_path / "stopped"
    w["hint"] = world["hint"].replace(str(world["base"] / "stopped"), str(w["stopped"]))
    w.update(data=world["data"], image=world["image"])
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # nothing may reach out for the network
    monkeypatch.setenv("I2I_HOME", str(world["base"] / "i2i_home"))  # the small toy data
    monkeypatch.delenv("I2I_DEBUG", raising=False)
    for key, value in row.env.items():
        monkeypatch.setenv(key, value)
    try:
        row.prepare(w)
        before = snapshot(tmp_path, w["data"])
        row.patch(monkeypatch, w)
        output = _run(row, w)
        monkeypatch.undo()  # the patches end with the command
        row.check(w)
        after = snapshot(tmp_path, w["data"])
    finally:
        for release in w["cleanup"]:
            release()
    allowed = [str(tmp_path / key) for key in row.writes]
    changed = sorted(
        path
        for path in set(before) | set(after)
        if before.get(path) != after.get(path)
        and not any(path == a or path.startswith(a + os.sep) for a in allowed)
    )
    assert changed == [], f"written or lost outside its place: {changed[:5]}\n{output}"
    for stale in tmp_path.rglob(".*"):  # temp files of atomic writes, lock files
        assert stale.name != ".i2i-lock", stale
        # step_ and out. folders; temp_sibling's .NAME.xxxxxxxx.SUFFIX; mkstemp's .NAME.xxxxxxxx
        temp = r"\.(step_|out\.|.*\.tmp$|.+\.[a-z0-9_]{8}(\.\w+)?$)"
        assert not re.match(temp, stale.name), f"left behind: {stale}"


def _run(row: Row, w: dict) -> str:
    """Run the row; check how it ended (exit status, the one line, no traceback)."""
    if row.api is not None:
        if row.code == 0:
            row.api(w)
            return ""
        with pytest.raises(I2IError) as raised:
            row.api(w)
        message = str(raised.value)
        assert "\n" not in message and row.expect in message, message
        return message
    result = CliRunner().invoke(cli, row.run(w))
    output = result.output
    assert "Traceback" not in output, output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == row.code, output
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    if row.code == 0:
        assert errors == [] and row.expect in output, output
    elif row.summary:
        assert errors == [] and row.expect in output.strip().splitlines()[-1], output
    else:
        assert len(errors) == 1 and row.expect in errors[0], output
    return output


@pytest.mark.slow
def test_the_readme_main_command_resumes(tmp_path):
    """The README's main command as it is (one step of it), then --resume, as a user types
    them."""
    import subprocess
    import sys

    command = _readme_command()
    out = command[command.index("--out") + 1]
    for argv in (
        [*command, "--max-steps", "1"],
        ["train", "cyclegan", "--resume", out, "--max-steps", "2"],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "i2i", *argv], cwd=tmp_path, capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / out / "checkpoints" / "latest").read_text().strip() == "step_00000002"


@pytest.mark.slow
def test_two_trainings_into_one_folder_in_two_processes(toy_data, tmp_path):
    """The lock holds across processes: a second training or a resume stops at once with the
    holder's pid, and the first goes on with a log of its own steps only."""
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    argv = [sys.executable, "-m", "i2i", "train", "cyclegan", "--data", str(toy_data), "--out",
            str(run), *TINY_FLAGS, "--log-every", "1", "--max-steps", "100000"]  # fmt: skip
    first = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (run / "losses.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        second = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        resumed = subprocess.run(
            [sys.executable, "-m", "i2i", "train", "cyclegan", "--resume", str(run)],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        first.send_signal(signal.SIGINT)  # Ctrl-C: save and stop
        first.wait(timeout=120)
    assert first.returncode == 130
    for other in (second, resumed):
        assert other.returncode == 1, other.stderr
        assert f"is in use by a training in process {first.pid}" in other.stderr, other.stderr
        assert "Traceback" not in other.stderr
    steps = [json.loads(line)["step"] for line in (run / "losses.jsonl").read_text().splitlines()]
    assert steps == list(range(1, len(steps) + 1))
    assert not (run / ".i2i-lock").exists()


# -- the guard against tracebacks ----------------------------------------------------------------
_BUILTIN_ERRORS = {
    name
    for name in dir(builtins)
    if name.endswith("Error") or name in ("Exception", "KeyboardInterrupt")
}
# Raised on purpose, and why they never reach a user as a traceback.
_ALLOWED = {
    ("i2i/__init__.py", "AttributeError"),  # module __getattr__: Python's protocol
    ("i2i/train/stop.py", "KeyboardInterrupt"),  # a second Ctrl-C stops at once
    ("i2i/cli/using.py", "KeyboardInterrupt"),  # SIGTERM stops an apply as Ctrl-C does
}


def _caught_here(node: ast.AST, parents: dict[ast.AST, ast.AST], name: str) -> bool:
    """Whether a try around ``node`` in the same function has a handler for ``name``."""
    child, parent = node, parents.get(node)
    while parent is not None and not isinstance(parent, ast.FunctionDef | ast.AsyncFunctionDef):
        if isinstance(parent, ast.Try) and child in parent.body:
            for handler in parent.handlers:
                caught = handler.type
                names = (
                    [e.id for e in caught.elts if isinstance(e, ast.Name)]
                    if isinstance(caught, ast.Tuple)
                    else [caught.id]
                    if isinstance(caught, ast.Name)
                    else []
                )
                if caught is None or name in names or "Exception" in names:
                    return True
        child, parent = parent, parents.get(parent)
    return False


def test_every_raise_is_a_one_line_user_error_or_caught():
    """Every ``raise`` in the package raises an ``I2IError`` (which the CLI prints as one
    ``Error:`` line) with a message of one line, or a builtin error that a ``try`` around it
    turns into one; a new ``raise ValueError(...)`` that could reach a user fails here."""
    offenders = []
    for folder in ("i2i", "plugins"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            tree = ast.parse(path.read_text())
            parents = {
                child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)
            }
            where = path.relative_to(ROOT).as_posix()
            for node in ast.walk(tree):
                if not isinstance(node, ast.Raise) or node.exc is None:
                    continue
                call = node.exc if isinstance(node.exc, ast.Call) else None
                target = call.func if call else node.exc
                name = (
                    target.attr if isinstance(target, ast.Attribute) else getattr(target, "id", "")
                )
                for arg in call.args if call else []:
                    parts = arg.values if isinstance(arg, ast.JoinedStr) else [arg]
                    text = "".join(p.value for p in parts if isinstance(p, ast.Constant)
                                   and isinstance(p.value, str))  # fmt: skip
                    if "\n" in text:
                        offenders.append(f"{where}:{node.lineno}: a message of several lines")
                builtin = name in _BUILTIN_ERRORS and (where, name) not in _ALLOWED
                if builtin and not _caught_here(node, parents, name):
                    offenders.append(f"{where}:{node.lineno}: raise {name} reaches the user")
    assert offenders == []


def test_the_cli_prints_an_error_with_a_name_that_is_not_utf8(tmp_path, monkeypatch):
    """A path with a byte that is not UTF-8 is said, not a UnicodeEncodeError."""
    monkeypatch.delenv("I2I_DEBUG", raising=False)
    odd = os.fsdecode(bytes(tmp_path) + b"/mod\xe9l")
    result = CliRunner().invoke(cli, ["apply", odd, str(tmp_path), "-o", str(tmp_path / "o")])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    assert result.output.startswith("Error: ") and "mod\ufffdl" in result.output


def test_control_characters_in_file_names_are_printed_escaped(world, tmp_path, monkeypatch):
    """A newline would split the one line; an escape sequence would drive the terminal."""
    monkeypatch.delenv("I2I_DEBUG", raising=False)
    (tmp_path / "in").mkdir()
    for name in ("bad\nname.png", "\x1b[2Jclear.png", "\u009b2Jc1.png"):
        (tmp_path / "in" / name).write_bytes(b"not an image")
    Image.new("RGB", (16, 16)).save(tmp_path / "in" / "fine.png")
    model = str(world["base"] / "model")
    apply = ["apply", model, str(tmp_path / "in"), "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, apply)
    assert result.exit_code == 1
    assert "\x1b" not in result.output and "\\x1b[2Jclear.png" in result.output
    assert "\u009b" not in result.output and "\\x9b2Jc1.png" in result.output
    summary = result.output.strip().splitlines()[-1]
    assert summary.startswith("Wrote 1 file") and "bad\\nname.png" in summary
    result = CliRunner().invoke(cli, ["apply", model, str(tmp_path / "no\nsuch"), "-o", "o"])
    assert (
        result.output
        == f"Error: input {tmp_path}/no\\nsuch does not exist (not a file, a folder or a glob)\n"
    )


def test_interrupting_with_a_signal_leaves_the_folder_free(toy_data, tmp_path, monkeypatch):
    """Ctrl-C saves, prints the hint with the path quoted for a shell, and releases the lock."""
    from i2i.train.stop import StopFlag

    run = tmp_path / "my run"
    monkeypatch.setattr(StopFlag, "__init__", lambda self: setattr(self, "signum", signal.SIGINT))
    printed = io.StringIO()
    with redirect_stdout(printed):
        train("cyclegan", data=str(toy_data), out=str(run), **TINY)
    assert f"--resume '{run}'" in printed.getvalue()
    assert not (run / ".i2i-lock").exists()
