"""``i2i demo`` (the Gradio page) and ``i2i space``: pure helpers, the served page through
``gradio_client`` and a real headless Chromium, and Space repos on the local Hub server."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import i2i
from i2i.cli import cli
from i2i.core.registry import generators
from i2i.data import load_image
from i2i.infer.translator import Translator
from i2i.models.folder import make_config, net_spec, save_model
from i2i.models.hub import push
from i2i.viz import image_grid, tensor_to_pil
from tests.hubserver import client_env

gr = pytest.importorskip("gradio", reason='the demo needs Gradio: pip install "i2i[demo]"')
gradio_client = pytest.importorskip("gradio_client")

from i2i.demo.examples import cut_sample_grid, sample_examples  # noqa: E402
from i2i.demo.page import DemoLimits, build_page, load_page, translate_uploads  # noqa: E402
from i2i.demo.space import DEFAULT_REQUIREMENT, space_files  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning"),
    # Gradio's queue statistics on pandas 3:
    pytest.mark.filterwarnings("ignore:The copy keyword is deprecated"),
    pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
]

# Real photos when the project's shared data sits beside the checkout; else a generated picture,
# so a clean clone still runs every test.
PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "data" / "monet2photo" / "testB"
SERVER_ENV = {"GRADIO_ANALYTICS_ENABLED": "False", "OMP_NUM_THREADS": "1"}


def _photo(folder: Path, index: int = 0) -> Path:
    if PHOTOS.is_dir():
        return sorted(PHOTOS.glob("*.jpg"))[index]
    path = folder / f"photo{index}.png"
    if not path.exists():
        rows, columns = np.mgrid[0:80, 0:96]
        rgb = np.stack([columns * 2.5, rows * 3.0, np.full_like(rows, 60 * index)], axis=-1)
        Image.fromarray(rgb.clip(0, 255).astype(np.uint8)).save(path)
    return path


def _batch(folder: Path, first: int) -> torch.Tensor:
    images = [load_image(_photo(folder, first + i)).float()[:, :32, :32] for i in range(2)]
    return torch.stack(images) / 127.5 - 1


def _make_model(folder: Path, tmp: Path, seed: int = 0) -> Path:
    """A tiny two-way model whose sample grid is drawn exactly as training draws it."""
    torch.manual_seed(seed)
    spec = net_spec(generators, "resnet6", {"ngf": 8})
    nets = {d: i2i.create_generator("resnet6", ngf=8) for d in ("AtoB", "BtoA")}
    config = make_config(
        "cyclegan", {"AtoB": spec, "BtoA": spec}, size=32, domains={"A": "day", "B": "night"}
    )
    a, b = _batch(tmp, 0), _batch(tmp, 2)
    with torch.no_grad():
        panels = [
            (["real A", "fake B", "rec A"], [a, nets["AtoB"](a), a]),
            (["real B", "fake A", "rec B"], [b, nets["BtoA"](b), b]),
        ]
    grid = tmp / f"grid{seed}.png"
    image_grid(panels, caption="step 2  fid=1.0").save(grid)
    return save_model(folder, config, nets, samples=grid)


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("demo_model")
    return _make_model(tmp / "day2night", tmp)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status == 200
    except OSError:
        return False


@contextlib.contextmanager
def _serving(args: list[str], port: int, env: dict[str, str], cwd: Path) -> Iterator[str]:
    """Run a page server in a subprocess (output in ``cwd``) until it answers; stop it after."""
    url, log = f"http://127.0.0.1:{port}/", cwd / f"server-{port}.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            args, env={**os.environ, **SERVER_ENV, **env}, cwd=cwd, stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 180
        while not _answers(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"{args} did not serve {url}:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def served(model, tmp_path_factory) -> Iterator[str]:
    """``i2i demo MODEL`` itself, on a free loopback port, with a 1 MB upload limit."""
    port = _free_port()
    cwd = tmp_path_factory.mktemp("demo_server")
    args = [sys.executable, "-m", "i2i", "demo", str(model), "--port", str(port)]
    with _serving([*args, "--max-upload", "1mb", "--device", "cpu"], port, {}, cwd) as url:
        yield url


def _check_translation(source: Path, output: Path | bytes) -> None:
    """The output decodes, has the input's size and is not the input."""
    data = output if isinstance(output, bytes) else Path(output).read_bytes()
    with Image.open(io.BytesIO(data)) as image:
        result = np.asarray(image.convert("RGB"), dtype=np.float32)
    with Image.open(source) as image:
        original = np.asarray(image.convert("RGB"), dtype=np.float32)
    assert result.shape == original.shape
    assert np.abs(result - original).mean() > 5


# -- pure helpers ---------------------------------------------------------------------------
def test_examples_are_the_real_inputs_of_the_sample_grid(tmp_path):
    a, b = _batch(tmp_path, 0), _batch(tmp_path, 2)
    grid = image_grid(
        [(["real A", "fake B"], [a, -a]), (["real B", "fake A"], [b, -b])], caption="step 9"
    )
    examples = cut_sample_grid(grid)
    assert [e.panel for e in examples] == [0, 0, 1, 1]
    for example, tensor in zip(examples, [*a, *b], strict=True):
        tile = tensor_to_pil(tensor).resize((128, 128), Image.Resampling.NEAREST)
        assert example.image.tobytes() == tile.tobytes()  # exactly the enlarged real input
    grid.save(tmp_path / "grid.png")
    assert [e.panel for e in sample_examples(tmp_path / "grid.png", limit=3)] == [0, 1, 0]
    assert sample_examples(tmp_path / "missing.png") == []


def test_translate_uploads_keeps_size_and_skips_bad_files(tmp_path, model):
    translator = i2i.load(model, device="cpu")
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    photo = _photo(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    with Image.open(photo) as image:
        pixels = image.width * image.height
    inputs = [photo, tmp_path / "broken.jpg"]
    results = translate_uploads(translator, inputs, "BtoA", out, untiled_max_pixels=pixels)
    assert len(results.pairs) == 1
    assert results.skipped == [
        "broken.jpg is not an image this page can read; upload a JPEG, PNG, WebP, TIFF or BMP file"
    ]
    before, after = results.pairs[0]
    _check_translation(photo, after)
    assert after.name.endswith("-BtoA.png") and Image.open(before).size == Image.open(after).size

    too_big = translate_uploads(translator, [photo], "AtoB", out, untiled_max_pixels=pixels - 1)
    assert too_big.pairs == [] and "turn on tiling" in too_big.skipped[0]
    tiled = translate_uploads(translator, [photo], "AtoB", out, tile=128, untiled_max_pixels=1)
    _check_translation(photo, tiled.pairs[0][1])


def test_a_page_with_scale_translates_photos_at_the_models_size(tmp_path, model):
    """``i2i demo MODEL --scale model``: the header says so, and a photo over the budget of one
    pass at its own size goes through at the model's 32 px and comes back at its own size."""
    page = load_page(model, device="cpu", scale="model", detail="none")
    header, _ = _header_and_examples(page)
    assert "**Translates:** shorter side at 32 px, the network's output enlarged" in header
    assert "Translates" not in _header_and_examples(load_page(model, device="cpu"))[0]
    photo = _photo(tmp_path)
    with Image.open(photo) as image:
        pixels = image.width * image.height
    out = tmp_path / "out"
    out.mkdir()
    budget = pixels // 4
    whole = translate_uploads(i2i.load(model, device="cpu"), [photo], "AtoB", out,
                              untiled_max_pixels=budget)  # fmt: skip
    assert whole.pairs == [] and "turn on tiling" in whole.skipped[0]
    scaled = i2i.load(model, device="cpu", scale="model")
    results = translate_uploads(scaled, [photo], "AtoB", out, untiled_max_pixels=budget)
    assert results.skipped == []
    _check_translation(photo, results.pairs[0][1])


def test_demo_passes_scale_and_detail_to_the_page(model, monkeypatch):
    served = {}
    monkeypatch.setattr("i2i.demo.page.serve", lambda model, **kwargs: served.update(kwargs))
    result = CliRunner().invoke(cli, ["demo", str(model), "--scale", "model", "--detail", "local"])
    assert result.exit_code == 0, result.output
    assert (served["scale"], served["detail"]) == ("model", "local")
    CliRunner().invoke(cli, ["demo", str(model), "--scale", "300"])
    assert (served["scale"], served["detail"]) == (300, "input")
    result = CliRunner().invoke(cli, ["demo", str(model), "--scale", "big"])
    assert result.exit_code == 2 and "is pixels (e.g. 286) or 'model', got 'big'" in result.output


def test_space_files_pin_the_model_and_this_i2i(tmp_path):
    import yaml

    files = space_files("someone/1e5", "a" * 40)
    card = yaml.safe_load(files["README.md"].split("---")[1])
    assert card["title"] == "1e5"
    assert card["sdk"] == "gradio" and card["app_file"] == "app.py"
    assert card["models"] == ["someone/1e5"]
    assert card["sdk_version"] == gr.__version__
    assert f"i2i[demo]=={i2i.__version__}" == DEFAULT_REQUIREMENT
    assert DEFAULT_REQUIREMENT in files["requirements.txt"].splitlines()
    app = files["app.py"]
    compile(app, "app.py", "exec")
    assert "serve('someone/1e5', revision='" + "a" * 40 + "')" in app


def _header_and_examples(page: gr.Blocks) -> tuple[str, list]:
    blocks = list(page.blocks.values())
    header = next(b.value for b in blocks if getattr(b, "elem_id", None) == "i2i-header")
    datasets = [b for b in blocks if isinstance(b, gr.Dataset)]
    return header, [row for d in datasets for row in d.samples]


@pytest.mark.slow
def test_page_for_a_training_run(toy_data, tmp_path):
    """A run folder works like a model: its latest checkpoint, its sample grid as examples."""
    from tests.conftest import TINY
    from tests.training import train

    run = tmp_path / "toyrun"
    train("cyclegan", data=str(toy_data), out=str(run), max_steps=2, **TINY)
    page = load_page(run, device="cpu")
    header, examples = _header_and_examples(page)
    assert header.startswith("# toyrun\n") and "A → B, B → A" in header
    assert [direction for _, direction in examples] == ["AtoB", "BtoA", "AtoB", "BtoA"]


# -- the page through gradio_client ------------------------------------------------------------
def test_gradio_client_translates_photos(served, tmp_path):
    client = gradio_client.Client(served, verbose=False)
    photos = [_photo(tmp_path, 0), _photo(tmp_path, 1)]
    files = [gradio_client.handle_file(str(p)) for p in photos]
    compare, gallery, downloads = client.predict(files, "BtoA", False, 512, api_name="/translate")
    assert len(gallery) == len(downloads) == 2
    for photo, output in zip(photos, downloads, strict=True):
        assert Path(output).name.endswith("-BtoA.png")
        _check_translation(photo, Path(output))
    _check_translation(photos[0], Path(compare[1]))  # the slider's "after" is the first result
    tiled = client.predict(files[:1], "AtoB", True, 128, api_name="/translate")[2]
    _check_translation(photos[0], Path(tiled[0]))


def test_a_stopped_page_leaves_no_upload_or_result_behind(model, tmp_path):
    """Gradio keeps uploads and served results in GRADIO_TEMP_DIR; the page stopped (SIGTERM
    here, as a service manager stops it; Ctrl-C alike) deletes its own."""
    port, cache = _free_port(), tmp_path / "gradio"
    args = [sys.executable, "-m", "i2i", "demo", str(model), "--port", str(port)]
    env = {"GRADIO_TEMP_DIR": str(cache)}
    with _serving([*args, "--device", "cpu"], port, env, tmp_path) as url:
        client = gradio_client.Client(url, verbose=False)
        photo = gradio_client.handle_file(str(_photo(tmp_path)))
        client.predict([photo], "AtoB", False, 512, api_name="/translate")
        assert [p for p in cache.rglob("*") if p.is_file()]  # the upload and its translation
    assert [p for p in cache.rglob("*") if p.is_file()] == []
    log = (tmp_path / f"server-{port}.log").read_text()
    assert "stopped; the uploads and results are deleted" in log and "share=True" not in log


def test_bad_uploads_get_one_line_messages(served, tmp_path):
    client = gradio_client.Client(served, verbose=False)
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n but not an image")
    with pytest.raises(gradio_client.exceptions.AppError) as error:
        client.predict([gradio_client.handle_file(str(broken))], "AtoB", False, 512, api_name="/translate")  # fmt: skip
    assert str(error.value) == (
        "broken.png is not an image this page can read; upload a JPEG, PNG, WebP, TIFF or BMP file"
    )
    huge = tmp_path / "huge.png"
    huge.write_bytes(os.urandom(1_200_000))  # over the server's 1 MB limit
    request = urllib.request.Request(
        served + "gradio_api/upload",
        data=b'--x\r\nContent-Disposition: form-data; name="files"; filename="huge.png"\r\n\r\n'
        + huge.read_bytes()
        + b"\r\n--x--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 413
    assert "maximum allowed size" in refused.value.read().decode()


def _clip(path: Path) -> Path:
    """A 6-frame 48x32 MPEG-4 clip."""
    av = pytest.importorskip("av", reason='video needs PyAV: pip install "i2i[video]"')
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        for i in range(6):
            frame = np.full((32, 48, 3), 40 * i, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def test_gradio_client_translates_a_video(served, tmp_path):
    import av

    clip = _clip(tmp_path / "clip.mp4")
    client = gradio_client.Client(served, verbose=False)
    video = gradio_client.handle_file(str(clip))
    result = client.predict(video, "AtoB", False, 512, api_name="/translate_video")
    assert Path(result).name == "clip-AtoB.mp4"
    with av.open(result) as translated:
        frames = list(translated.decode(video=0))
    assert len(frames) == 6 and (frames[0].width, frames[0].height) == (48, 32)
    (tmp_path / "broken.mp4").write_bytes(b"not a video")
    with pytest.raises(gradio_client.exceptions.AppError, match=r"^broken\.mp4 is not a video"):
        broken = gradio_client.handle_file(str(tmp_path / "broken.mp4"))
        client.predict(broken, "AtoB", False, 512, api_name="/translate_video")


class _CountingTranslator(Translator):
    """A translator that records how many images or videos it works on at once."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lock, self.running, self.most = threading.Lock(), 0, 0

    @contextlib.contextmanager
    def _counted(self) -> Iterator[None]:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.3)
            yield
        finally:
            with self.lock:
                self.running -= 1

    def _infer(self, *args, **kwargs):  # where images, lists and video frames all go
        with self._counted():
            return super()._infer(*args, **kwargs)


def test_concurrent_requests_wait_in_the_queue(model, tmp_path):
    from i2i.models.folder import load_model

    translator = _CountingTranslator(*load_model(model), device="cpu")
    page = build_page(translator, "counting", limits=DemoLimits(queue_size=8))
    port = _free_port()
    page.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        client = gradio_client.Client(f"http://127.0.0.1:{port}/", verbose=False)
        photo = gradio_client.handle_file(str(_photo(tmp_path)))
        video = gradio_client.handle_file(str(_clip(tmp_path / "clip.mp4")))
        jobs = [client.submit([photo], "AtoB", False, 512, api_name="/translate") for _ in range(3)]
        jobs.append(client.submit(video, "AtoB", False, 512, api_name="/translate_video"))
        results = [job.result(timeout=120) for job in jobs]
    finally:
        page.close()
    assert all(len(downloads) == 1 for _, _, downloads in results[:3])
    assert Path(results[3]).name == "clip-AtoB.mp4"
    assert translator.most == 1  # four requests at once, images and video: one at a time


# -- the page in a real browser ----------------------------------------------------------------
def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    executable = _chromium()
    if executable is None:
        pytest.skip("no Chromium here: `apt-get install chromium` (Debian) runs the browser tests")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def test_browser_uploads_a_photo_and_gets_its_translation(browser, served, model, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(served)
    header = page.locator("#i2i-header")
    header.wait_for(timeout=60_000)
    text = header.inner_text()
    assert "day2night" in text and "day → night" in text and "night → day" in text
    assert "cpu" in text
    page.get_by_text("Examples from the model's samples").wait_for(timeout=90_000)

    photo = _photo(tmp_path)
    page.locator("#i2i-images input[type=file]").set_input_files(str(photo))
    # The file list shows a name as stem and extension in two spans, labelled with the whole name.
    images = page.locator("#i2i-images")
    images.get_by_label(photo.name).wait_for(timeout=90_000)  # uploaded
    page.get_by_label("night → day").check()
    page.locator("#i2i-translate").click()
    link = page.locator("#i2i-out a").first
    link.wait_for(timeout=120_000)
    href = link.get_attribute("href")
    assert urllib.parse.unquote(href).endswith(f"{photo.stem}-BtoA.png")
    with urllib.request.urlopen(href, timeout=30) as answer:
        _check_translation(photo, answer.read())
    page.locator("#i2i-compare img").nth(1).wait_for(timeout=90_000)  # before and after
    shot = tmp_path / "demo.png"
    page.screenshot(path=str(shot), full_page=True)
    assert Image.open(shot).size[0] == 1280

    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    images.locator("button[aria-label='Clear']").first.click()
    images.get_by_label(photo.name).wait_for(state="detached", timeout=60_000)
    images.locator("input[type=file]").set_input_files(str(broken))
    images.get_by_label("broken.png").wait_for(timeout=90_000)
    page.locator("#i2i-translate").click()
    message = page.get_by_text("broken.png is not an image this page can read")
    message.wait_for(timeout=60_000)
    assert "Traceback" not in page.content()

    page.locator("#i2i-examples tbody tr").first.click()  # the first example: day → night
    page.locator("#i2i-images").get_by_text("example-1-day").wait_for(timeout=90_000)
    assert page.get_by_label("day → night").is_checked()
    page.locator("#i2i-translate").click()
    page.locator("#i2i-out a[href$='example-1-day-AtoB.png']").wait_for(timeout=120_000)
    page.close()


# -- the command line and the Space ------------------------------------------------------------
def test_cli_errors_are_one_line(tmp_path, model):
    result = CliRunner().invoke(cli, ["demo", str(tmp_path / "nothing")])
    assert result.exit_code == 1 and result.output.startswith("Error: ")
    assert len(result.output.strip().splitlines()) == 1
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(cli, ["demo", str(model), "--port", str(port)])
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: cannot serve on 127.0.0.1:{port} (")
    assert len(result.output.strip().splitlines()) == 1
    result = CliRunner().invoke(cli, ["space", str(model), "someone/space"])
    assert result.exit_code == 1
    assert "pass --model-repo USER/REPO" in result.output
    assert len(result.output.strip().splitlines()) == 1


def _space_app(hub, space_id: str) -> str:
    from huggingface_hub import HfApi, hf_hub_download

    info = HfApi(token=hub.token).space_info(space_id)
    assert info.sdk == "gradio"
    return Path(hf_hub_download(space_id, "app.py", repo_type="space")).read_text()


def test_space_is_created_then_updated_at_pinned_commits(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", hub.token)
    repo, space_id = hub.unique_repo_id("day2night"), hub.unique_repo_id("day2night-demo")
    first = push(_make_model(tmp_path / "v1", tmp_path, seed=1), repo, token=hub.token).oid
    result = CliRunner().invoke(cli, ["space", repo, space_id])
    assert result.exit_code == 0, result.output
    assert f"serves {repo} at commit {first[:12]}" in result.output
    assert f"revision={first!r}" in _space_app(hub, space_id)
    files = hub.files(space_id, "main", repo_type="space")
    assert set(files) == {".gitattributes", "app.py", "requirements.txt", "README.md"}

    second = push(_make_model(tmp_path / "v2", tmp_path, seed=2), repo, token=hub.token).oid
    assert CliRunner().invoke(cli, ["space", repo, space_id]).exit_code == 0
    assert f"revision={second!r}" in _space_app(hub, space_id)  # updated, pinned anew
    pinned_old = CliRunner().invoke(cli, ["space", f"{repo}@{first}", space_id])
    assert pinned_old.exit_code == 0 and f"revision={first!r}" in _space_app(hub, space_id)

    local = hub.unique_repo_id("pushed")
    args = ["space", str(tmp_path / "v1"), space_id, "--model-repo", local]
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert f"serve({local!r}, revision=" in _space_app(hub, space_id)


def test_a_space_serves_at_the_models_scale_checked_before_it_is_written(
    hub, tmp_path, monkeypatch
):
    """``i2i space ... --scale model``: the Space's page translates at the model's size; a
    scale the model cannot take is refused in one line, before any Space is written."""
    from huggingface_hub import HfApi

    monkeypatch.setenv("HF_TOKEN", hub.token)
    repo, space_id = hub.unique_repo_id("scaled"), hub.unique_repo_id("scaled-demo")
    push(_make_model(tmp_path / "m", tmp_path, seed=5), repo, token=hub.token)
    result = CliRunner().invoke(
        cli, ["space", repo, space_id, "--scale", "model", "--detail", "local"]
    )
    assert result.exit_code == 0, result.output
    assert "scale='model', detail='local')" in _space_app(hub, space_id)

    sizeless = tmp_path / "sizeless"
    model = _make_model(tmp_path / "m2", tmp_path, seed=6)
    shutil.copytree(model, sizeless)
    config = json.loads((sizeless / "config.json").read_text())
    config["preprocess"]["size"] = None
    (sizeless / "config.json").write_text(json.dumps(config))
    unsized = hub.unique_repo_id("unsized")
    push(sizeless, unsized, token=hub.token)
    garbled = hub.unique_repo_id("garbled")
    push(model, garbled, token=hub.token)
    HfApi(token=hub.token).upload_file(
        path_or_fileobj=b"[not json", path_in_repo="config.json", repo_id=garbled
    )
    for args, message in [
        ([repo, "--detail", "none"], "--detail none applies with --scale"),
        ([repo, "--scale", "0"], "--scale is pixels of the shorter side"),
        ([unsized, "--scale", "model"], "this model records no usable training size"),
        ([garbled, "--scale", "model"], "config.json is not valid JSON"),
    ]:
        never = hub.unique_repo_id("never")
        result = CliRunner().invoke(cli, ["space", args[0], never, *args[1:]])
        assert result.exit_code == 1 and result.output.startswith("Error: "), result.output
        assert message in result.output and len(result.output.strip().splitlines()) == 1
        assert ("space", never) not in hub.repos


def test_a_space_of_a_private_model_uses_the_token_it_is_given(hub, tmp_path):
    """No HF_TOKEN in the environment: the token passed must also pin the private model."""
    from i2i.demo.space import publish_space

    repo, space_id = hub.unique_repo_id("private"), hub.unique_repo_id("private-demo")
    model = _make_model(tmp_path / "m", tmp_path, seed=4)
    pushed = push(model, repo, private=True, token=hub.token).oid
    published = publish_space(repo, space_id, private=True, token=hub.token)
    assert published.revision == pushed


def test_push_with_space_publishes_the_pushed_commit(hub, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", hub.token)
    repo, space_id = hub.unique_repo_id("pushed"), hub.unique_repo_id("pushed-demo")
    model = _make_model(tmp_path / "m", tmp_path, seed=3)
    result = CliRunner().invoke(cli, ["push", str(model), repo, "--space", space_id])
    assert result.exit_code == 0, result.output
    assert f"space {space_id} serves {repo} at commit" in result.output
    assert f"serve({repo!r}, revision=" in (app := _space_app(hub, space_id))
    assert "scale=" not in app and "detail=" not in app  # i2i demo's defaults

    args = ["push", str(model), repo, "--space", space_id, "--scale", "model", "--detail", "local"]
    assert CliRunner().invoke(cli, args).exit_code == 0
    assert "scale='model', detail='local')" in _space_app(hub, space_id)


def test_a_space_scale_the_model_cannot_take_is_refused_before_the_model_is_pushed(
    hub, tmp_path, monkeypatch
):
    """``i2i push --space`` and ``i2i space LOCAL --model-repo``: a model whose config records
    no training size cannot serve at --scale model; neither the model nor a Space is written."""
    monkeypatch.setenv("HF_TOKEN", hub.token)
    sizeless = _make_model(tmp_path / "m", tmp_path, seed=7)
    config = json.loads((sizeless / "config.json").read_text())
    config["preprocess"]["size"] = None
    (sizeless / "config.json").write_text(json.dumps(config))
    repo, space_id = hub.unique_repo_id("sizeless"), hub.unique_repo_id("sizeless-demo")
    for args in [
        ["push", str(sizeless), repo, "--space", space_id, "--scale", "model"],
        ["space", str(sizeless), space_id, "--model-repo", repo, "--scale", "model"],
    ]:
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1 and result.output.startswith("Error: "), result.output
        assert "this model records no usable training size" in result.output
        assert len(result.output.strip().splitlines()) == 1
        assert ("model", repo) not in hub.repos and ("space", space_id) not in hub.repos

    result = CliRunner().invoke(cli, ["push", str(sizeless), repo, "--space", "not a space"])
    assert result.exit_code == 1 and "'not a space' is not a valid Space id" in result.output
    assert ("model", repo) not in hub.repos
    result = CliRunner().invoke(cli, ["push", str(sizeless), repo, "--scale", "300"])
    assert result.exit_code == 1, result.output
    assert "give them with --space" in result.output and ("model", repo) not in hub.repos


@pytest.mark.slow
def test_space_app_starts_and_serves_the_model(hub, tmp_path, monkeypatch):
    """The Space's own app.py, run as the Hub runs it, pulls the pinned model and answers."""
    monkeypatch.setenv("HF_TOKEN", hub.token)
    from huggingface_hub import snapshot_download

    repo, space_id = hub.unique_repo_id("space-model"), hub.unique_repo_id("space-app")
    push(_make_model(tmp_path / "m", tmp_path, seed=3), repo, token=hub.token)
    assert CliRunner().invoke(cli, ["space", repo, space_id]).exit_code == 0
    space = Path(snapshot_download(space_id, repo_type="space", local_dir=tmp_path / "space"))
    port = _free_port()
    env = {
        **client_env(hub.url, tmp_path / "space_hf_home"),
        "GRADIO_SERVER_NAME": "127.0.0.1",  # what Spaces set (there to 0.0.0.0)
        "GRADIO_SERVER_PORT": str(port),
    }
    with _serving([sys.executable, "app.py"], port, env, space) as url:
        client = gradio_client.Client(url, verbose=False)
        photo = _photo(tmp_path)
        result = client.predict([gradio_client.handle_file(str(photo))], "AtoB", False, 512, api_name="/translate")  # fmt: skip
    _check_translation(photo, Path(result[2][0]))
