"""Translator, tiling, apply_paths and video, on tiny untrained networks saved as model folders."""

from __future__ import annotations

import builtins
import itertools
import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from torch import nn

import i2i
from i2i.cli import cli
from i2i.core.errors import I2IError, InvalidArgumentError
from i2i.core.ranks import Ranks
from i2i.core.registry import generators
from i2i.infer.apply import ApplyReport, apply_paths
from i2i.infer.translator import Translator, _tile_starts, default_batch_size
from i2i.models.folder import load_model, make_config, net_spec, read_config, save_model


# -- test networks -------------------------------------------------------------------------------
class LocalNet(nn.Module):
    """Two zero-padded 3x3 convs, no normalisation: each output pixel sees only a 5x5 window."""

    radius = 2

    def __init__(self, in_channels: int = 3, out_channels: int = 3):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, 8, 3, padding=1),
            nn.Tanh(),
            nn.Conv2d(8, out_channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def local_net(in_channels: int = 3, out_channels: int = 3) -> LocalNet:
    """Test generator: local, so tiling can be exact."""
    return LocalNet(in_channels, out_channels)


def norm_only(in_channels: int = 3, out_channels: int = 3) -> nn.Module:
    """Test generator: only instance norm, the part of CycleGAN's nets that sees a whole tile."""
    return nn.InstanceNorm2d(in_channels)


@pytest.fixture(scope="module", autouse=True)
def _test_generators():
    for factory in (local_net, norm_only):
        generators.register(factory, plugin="tests")
    yield
    for factory in (local_net, norm_only):
        generators.unregister(factory.__name__)


def build_model(folder: Path, specs: dict[str, tuple[str, dict]], seed: int = 0) -> Path:
    """An untrained model folder, saved as a user's trained model would arrive."""
    torch.manual_seed(seed)
    nets = {d: i2i.create_generator(name, **kw) for d, (name, kw) in specs.items()}
    config = make_config(
        "cyclegan", {d: net_spec(generators, name, kw) for d, (name, kw) in specs.items()}
    )
    return save_model(folder, config, nets)


def make_translator(folder: Path, specs: dict[str, tuple[str, dict]], **kwargs) -> Translator:
    config, nets = load_model(build_model(folder, specs))
    return Translator(config, nets, device="cpu", **kwargs)


RESNET = ("resnet6", {"ngf": 8})


@pytest.fixture(scope="module")
def translator(tmp_path_factory) -> Translator:
    return make_translator(tmp_path_factory.mktemp("m") / "model", {"AtoB": RESNET, "BtoA": RESNET})


def pattern(width: int, height: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    rgb = np.stack([xs * 255 // max(width - 1, 1), ys * 255 // max(height - 1, 1), (xs ^ ys) & 255])
    rgb = (rgb.transpose(1, 2, 0) + rng.integers(0, 40, (height, width, 3))).clip(0, 255)
    return Image.fromarray(rgb.astype(np.uint8)).convert(mode)


def noise(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed)) * 2 - 1


# -- Translator ----------------------------------------------------------------------------------
def test_an_opaque_alpha_channel_gets_no_transparency_note(translator, tmp_path):
    save(tmp_path / "screenshot.png", pattern(32, 32, "RGBA"))  # alpha 255 everywhere
    report = apply_paths(translator, [tmp_path / "screenshot.png"], tmp_path / "out")
    assert report.written and report.notes == []


def test_a_photo_with_exif_orientation_comes_back_upright(translator, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to view: stored 40x24, shown 24x40
    pattern(40, 24).save(tmp_path / "phone.jpg", exif=exif)
    with Image.open(tmp_path / "phone.jpg") as photo:
        assert translator(photo).size == (24, 40)


def test_a_photo_with_a_colour_profile_is_translated_as_a_viewer_shows_it(translator):
    from tests.iccprofiles import swapped_profile

    tagged = Image.new("RGB", (32, 32), (255, 0, 0))
    tagged.info["icc_profile"] = swapped_profile()  # its red is green in sRGB
    assert np.array_equal(
        np.asarray(translator(tagged)),
        np.asarray(translator(Image.new("RGB", (32, 32), (0, 255, 0)))),
    )


def test_ctrl_c_during_apply_says_how_far_it_got_and_how_to_go_on(tmp_path, monkeypatch):
    from i2i.infer.apply import ApplyStopped

    model = build_model(tmp_path / "model", {"AtoB": RESNET})
    for i in range(7):
        pattern(32, 32, seed=i).save(tmp_path / f"{i}.png")
    for out in ("api", "cli"):  # an input refused before any is translated: not "left"
        (tmp_path / out / "6.png").mkdir(parents=True)
    real = Translator.translate_batch
    calls = itertools.count()

    def interrupted_at_the_third(self, *args, **kwargs):
        if next(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Translator, "translate_batch", interrupted_at_the_third)
    paths = [tmp_path / f"{i}.png" for i in range(7)]
    with pytest.raises(ApplyStopped) as stopped:  # still a KeyboardInterrupt for the API
        apply_paths(i2i.load(model, device="cpu", batch_size=1), paths, tmp_path / "api")
    assert isinstance(stopped.value, KeyboardInterrupt)
    assert sorted(p.name for p in stopped.value.report.written) == ["0.png", "1.png"]
    assert sorted(p.name for p in (tmp_path / "api").iterdir()) == ["0.png", "1.png", "6.png"]
    calls = itertools.count()
    argv = ["apply", str(model), *map(str, paths), "-o", str(tmp_path / "cli"), "--batch-size", "1"]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 130
    assert "Stopped: wrote 2 files to " in result.output
    assert "4 of 6 not done. Run the same command again to translate them" in result.output


def test_scale_runs_the_network_at_that_size_and_gives_the_inputs_size(tmp_path):
    folder = build_model(tmp_path / "m", {"AtoB": ("local_net", {})})
    seen: list[tuple[int, ...]] = []
    plain = i2i.load(folder, device="cpu")
    scaled = i2i.load(folder, device="cpu", scale=16)
    scaled._nets["AtoB"].register_forward_pre_hook(lambda m, args: seen.append(args[0].shape))
    x = noise(2, 3, 40, 64)
    out = scaled(x, "AtoB")
    assert out.shape == x.shape and seen == [(1, 3, 16, 26), (1, 3, 16, 26)]
    assert (out - plain(x, "AtoB")).abs().mean() > 0.01  # another scale, another result
    same = i2i.load(folder, device="cpu", scale=40)(x, "AtoB")  # the input's own scale
    torch.testing.assert_close(same, plain(x, "AtoB"))
    config = read_config(folder)
    config["training"] = {"load_size": 20}  # what export records of the run
    assert Translator(config, load_model(folder)[1], scale="model").scale == 20
    for record in ({}, {"load_size": 10**9}):  # none, or one no file should claim
        with pytest.raises(I2IError, match=r"records no usable training size .*; give --scale"):
            Translator(
                {**config, "training": record, "preprocess": {}}, {"AtoB": LocalNet()},
                scale="model",
            )  # fmt: skip
    x_out = noise(1, 3, 32, 32) * 3  # a tensor beyond [-1, 1] at its own scale: passed as is
    torch.testing.assert_close(
        i2i.load(folder, device="cpu", scale=32)(x_out, "AtoB"), plain(x_out, "AtoB")
    )
    for bad in (0, 10**9, "big"):
        with pytest.raises(I2IError, match="--scale is pixels of the shorter side, 1 to 4096"):
            i2i.load(folder, scale=bad)
    none = {**config, "training": {"load_size": 20, "preprocess": "none"}}
    with pytest.raises(I2IError, match=r"trained with --preprocess none.*without --scale"):
        Translator(none, {"AtoB": LocalNet()}, scale="model")
    # the pixel budget is the scaled image's: a big photo at a small scale needs no tiles
    save(tmp_path / "big.png", pattern(120, 80))
    scaled.untiled_max_pixels = plain.untiled_max_pixels = 40 * 40
    report = apply_paths(scaled, [tmp_path / "big.png"], tmp_path / "out", progress=False)
    assert report.written == [tmp_path / "out" / "big.png"] and not report.failed
    assert Image.open(tmp_path / "out" / "big.png").size == (120, 80)
    report = apply_paths(plain, [tmp_path / "big.png"], tmp_path / "out2", progress=False)
    assert "megapixel budget" in report.failed[0][1]
    assert "--scale model" not in report.failed[0][1]  # it records no training size
    plain._config["training"] = {"load_size": 20}  # one that does: the other way out is named
    report = apply_paths(plain, [tmp_path / "big.png"], tmp_path / "out3", progress=False)
    assert report.failed[0][1].endswith(
        "or at the scale the model was trained at with --scale model (scale='model')"
    )


class Tint(nn.Module):
    """A colour grade: the same change at every pixel, which a coarse scale holds whole."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + torch.tensor([0.2, 0.0, -0.1]).view(1, 3, 1, 1)


class TintWithArtefacts(Tint):
    """A grade drawn with a network's faults: a checkerboard that no photo has."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows, cols = torch.meshgrid(
            torch.arange(x.shape[-2]), torch.arange(x.shape[-1]), indexing="ij"
        )
        return super().forward(x) + 0.1 * ((rows + cols) % 2 * 2 - 1)


def _photo_like(channels: int = 3) -> torch.Tensor:
    """Smooth shading with fine grain on top: detail at every scale, within [-0.8, 0.8]."""
    rows, cols = torch.meshgrid(torch.linspace(-1, 1, 40), torch.linspace(-1, 1, 64), indexing="ij")
    shade = torch.stack([rows * 0.5, cols * 0.5, (rows * cols) * 0.5])[:channels]
    return (shade + 0.2 * noise(1, channels, 40, 64)[0].clamp(-1, 1))[None].clamp(-0.8, 0.8)


def test_scale_puts_back_the_fine_detail_so_a_look_comes_out_sharp(tmp_path):
    """Translated at a smaller scale and enlarged, the result lost every detail of the photo
    finer than that scale. --detail input adds the input's fine band back; local keeps the
    network's colour change as a local map of the input, without the network's artefacts;
    none is the enlarged output alone."""
    config = read_config(build_model(tmp_path / "m", {"AtoB": ("local_net", {})}))
    x = _photo_like()
    truth = Tint()(x)

    def translated(net: nn.Module, detail: str, image: torch.Tensor = x) -> torch.Tensor:
        model = Translator(config, {"AtoB": net}, device="cpu", scale=16, detail=detail)
        return model(image, "AtoB")

    torch.testing.assert_close(translated(Tint(), "input"), truth, atol=1e-5, rtol=0)
    assert (translated(Tint(), "local") - truth).abs().mean() < 0.02
    assert (translated(Tint(), "none") - truth).abs().mean() > 0.05  # soft: the grain is gone
    # the network's checkerboard: added back with the enlarged output, gone from the local map
    faulty = {
        d: (translated(TintWithArtefacts(), d) - truth).abs().mean() for d in ("input", "local")
    }
    assert faulty["local"] < faulty["input"] / 2, faulty
    # a grey input's detail goes into every colour of a colour output
    grey = _photo_like(channels=1)
    grey_truth = Tint()(grey.expand(1, 3, 40, 64))
    torch.testing.assert_close(translated(Tint(), "input", grey), grey_truth, atol=1e-5, rtol=0)
    assert (translated(Tint(), "local", grey) - grey_truth).abs().mean() < 0.02
    model = Translator(config, {"AtoB": Tint()}, device="cpu", scale=16, detail="none")
    assert "scale 16, detail none" in repr(model)
    with pytest.raises(
        InvalidArgumentError, match=r"--detail none applies with --scale \(Python: scale=\)"
    ):
        Translator(config, {"AtoB": Tint()}, detail="none")
    with pytest.raises(
        InvalidArgumentError, match=r"--detail \(Python: detail=\) is one of input, local, none"
    ):
        Translator(config, {"AtoB": Tint()}, scale=16, detail="sharp")


def test_detail_local_at_the_inputs_own_size_keeps_the_change_without_the_artefacts(tmp_path):
    """Without --scale, 'local' fits the output as a local map of the input at its own size
    (on a copy of at most FIT_SIDE px for big pictures): the grade stays, the checkerboard goes."""
    config = read_config(build_model(tmp_path / "m", {"AtoB": ("local_net", {})}))
    x = _photo_like()
    truth = Tint()(x)
    plain = Translator(config, {"AtoB": TintWithArtefacts()}, device="cpu")(x, "AtoB")
    local = Translator(config, {"AtoB": TintWithArtefacts()}, device="cpu", detail="local")
    assert "detail local" in repr(local)
    error = (local(x, "AtoB") - truth).abs().mean()
    assert error < (plain - truth).abs().mean() / 2, error
    big = torch.nn.functional.interpolate(x, scale_factor=8, mode="bilinear")  # 320 x 512
    assert (local(big, "AtoB") - Tint()(big)).abs().mean() < 0.03  # fitted on a 256 px copy
    # the change is what is fitted: a network that changes nothing keeps the finest grain (a
    # fit of the output itself flattened grain that the 256 px copy no longer held)
    grain = (big + 0.03 * noise(*big.shape)).clamp(-1, 1)
    unchanged = Translator(config, {"AtoB": nn.Identity()}, device="cpu", detail="local")
    torch.testing.assert_close(unchanged(grain, "AtoB"), grain, atol=1e-5, rtol=0)


def test_photos_far_bigger_than_the_training_scale_get_a_note_on_scale_model(tmp_path):
    folder = build_model(tmp_path / "m", {"AtoB": ("local_net", {})})
    config = {**read_config(folder), "training": {"load_size": 20}}
    save(tmp_path / "in" / "big.png", pattern(64, 60))  # 3x the 20 px it was trained at
    save(tmp_path / "in" / "small.png", pattern(64, 59))
    plain = Translator(config, load_model(folder)[1], device="cpu")
    report = apply_paths(plain, [tmp_path / "in"], tmp_path / "out", progress=False)
    assert report.notes == [
        "big.png: 3x or more the 20 px the model was trained at; --scale model translates at "
        "that scale, keeping the detail, with textures at the size it learned them and in a "
        "fraction of the time"
    ]
    scaled = Translator(config, load_model(folder)[1], device="cpu", scale="model")
    assert apply_paths(scaled, [tmp_path / "in"], tmp_path / "o2", progress=False).notes == []


def test_cli_detail_needs_scale_and_none_gives_a_softer_picture(tmp_path):
    folder = build_model(tmp_path / "m", {"AtoB": ("local_net", {})})
    save(tmp_path / "in" / "a.png", pattern(64, 48))
    runner = CliRunner()
    outputs = {}
    for detail in ("input", "local", "none"):
        result = runner.invoke(
            cli, ["apply", str(folder), str(tmp_path / "in"), "-o", str(tmp_path / detail),
                  "--scale", "16", "--detail", detail],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        outputs[detail] = np.asarray(Image.open(tmp_path / detail / "a.png"), dtype=np.float64)
    # the input's detail: the picture's own edges; none: a smooth enlargement of 16 px (local
    # follows what the network did, here a random network: its sharpness is tested with a grade)
    sharpness = {k: np.abs(np.diff(v, axis=1)).mean() for k, v in outputs.items()}
    assert sharpness["input"] > 1.5 * sharpness["none"], sharpness
    result = runner.invoke(cli, ["apply", str(folder), str(tmp_path / "in"), "-o",
                                 str(tmp_path / "x"), "--detail", "none"])  # fmt: skip
    assert result.exit_code == 1 and "--detail none applies with --scale" in result.output
    assert not (tmp_path / "x").exists()
    result = runner.invoke(cli, ["apply", str(folder), str(tmp_path / "in"), "-o",
                                 str(tmp_path / "own"), "--detail", "local"])  # fmt: skip
    assert result.exit_code == 0 and (tmp_path / "own" / "a.png").is_file(), result.output


@pytest.mark.parametrize("size", [(37, 53), (32, 32), (5, 3), (64, 33)])
def test_pil_keeps_size_at_any_resolution(translator, size):
    out = translator(pattern(*size))
    assert out.size == size and out.mode == "RGB"


def test_pil_modes_become_the_generator_channels(translator):
    for mode in ("L", "RGBA", "P", "I;16"):
        out = translator(pattern(20, 12, "RGB").convert(mode))
        assert (out.size, out.mode) == ((20, 12), "RGB")


def test_unet_pads_to_its_multiple_of_128(tmp_path):
    unet = make_translator(tmp_path / "u", {"AtoB": ("unet128", {"ngf": 4})})
    out = unet(pattern(37, 53))
    assert out.size == (37, 53)
    assert unet(noise(1, 3, 40, 130)).shape == (1, 3, 40, 130)


def test_list_of_pil_keeps_order_and_sizes(translator):
    images = [pattern(32, 32, seed=0), pattern(20, 36, seed=1), pattern(32, 32, seed=2)]
    outs = translator(images, "BtoA")
    assert [o.size for o in outs] == [(32, 32), (20, 36), (32, 32)]
    for image, out in zip(images, outs, strict=True):
        alone = np.asarray(translator(image, "BtoA"), dtype=int)
        assert np.abs(np.asarray(out, dtype=int) - alone).max() <= 1  # batched vs alone rounding
    assert translator([]) == []


def test_tensor_equals_a_direct_network_call_when_no_padding_is_needed(tmp_path):
    config, nets = load_model(build_model(tmp_path / "m", {"AtoB": RESNET}))
    translator = Translator(config, nets, device="cpu", batch_size=2)
    x = noise(5, 3, 32, 48)  # 5 images in chunks of 2
    with torch.no_grad():
        expected = nets["AtoB"](x)
    out = translator(x)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=0)
    torch.testing.assert_close(translator(x[0]), expected[0], atol=1e-5, rtol=0)
    assert not out.is_inference()  # usable in autograd and in place, like any tensor


def test_tensor_input_checks(translator):
    with pytest.raises(InvalidArgumentError, match="float tensor"):
        translator(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(InvalidArgumentError, match="1 or 3 channels"):
        translator(torch.zeros(1, 4, 8, 8))
    with pytest.raises(InvalidArgumentError, match="PIL image"):
        translator("picture.jpg")


def test_grayscale_generator(tmp_path):
    gray = make_translator(
        tmp_path / "g", {"AtoB": ("resnet6", {"ngf": 8, "in_channels": 1, "out_channels": 1})}
    )
    assert gray(pattern(24, 16)).mode == "L"
    assert gray(noise(2, 3, 16, 16)).shape == (2, 1, 16, 16)


def test_directions_default_and_errors(tmp_path, translator):
    only = make_translator(tmp_path / "b", {"BtoA": RESNET})
    assert only.directions == ("BtoA",)
    assert only(pattern(16, 16)).size == (16, 16)  # the only direction, not "AtoB"
    with pytest.raises(I2IError, match=r"no direction 'AtoB'; it has BtoA"):
        only(pattern(16, 16), "AtoB")
    assert translator.directions == ("AtoB", "BtoA")
    assert translator.domains == {"A": "A", "B": "B"}
    assert translator.config["task"] == "cyclegan"
    with pytest.raises(I2IError, match="it has AtoB, BtoA"):
        translator(pattern(16, 16), "sideways")


def test_bad_settings_are_one_line_errors(translator):
    with pytest.raises(InvalidArgumentError, match="more than twice the overlap"):
        translator(pattern(16, 16), tile=32, overlap=16)
    with pytest.raises(InvalidArgumentError, match=r"use --tile 32 or more"):
        translator(pattern(16, 16), tile=30, overlap=4)
    assert translator(pattern(16, 16), tile=32, overlap=4).size == (16, 16)  # as it says
    with pytest.raises(InvalidArgumentError, match="tile must be a positive integer"):
        translator(pattern(16, 16), tile=0)
    with pytest.raises(InvalidArgumentError, match="overlap must be"):
        translator(pattern(16, 16), tile=32, overlap=-1)
    with pytest.raises(InvalidArgumentError, match="precision"):
        Translator({}, {"AtoB": nn.Identity()}, device="cpu", precision="fp8")
    with pytest.raises(InvalidArgumentError, match="batch_size"):
        Translator({}, {"AtoB": nn.Identity()}, device="cpu", batch_size=0)


def test_batch_size_defaults_to_one_image_on_the_cpu_and_four_on_a_gpu(tmp_path, monkeypatch):
    assert Translator({}, {"AtoB": nn.Identity()}, device="cpu").batch_size == 1
    assert Translator({}, {"AtoB": nn.Identity()}, device="cpu", batch_size=3).batch_size == 3
    assert default_batch_size(torch.device("cuda")) == 4
    seen = []
    counting = Translator({}, {"AtoB": nn.Identity()}, device="cpu", batch_size=2)
    original = counting._run
    monkeypatch.setattr(counting, "_run", lambda net, x: seen.append(len(x)) or original(net, x))
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        save(folder / f"{i}.png", pattern(16, 16, seed=i))
    apply_paths(counting, [str(folder)], tmp_path / "out", progress=False)
    assert sorted(seen) == [1, 2]  # the translator's own batch size, when apply is not told


# -- tiling --------------------------------------------------------------------------------------
@pytest.mark.parametrize(("length", "tile", "overlap"), [(64, 32, 8), (100, 40, 10), (33, 32, 0)])
def test_tiles_cover_the_image_with_at_least_the_overlap(length, tile, overlap):
    starts = _tile_starts(length, tile, overlap)
    assert starts[0] == 0 and starts[-1] + tile == length
    assert all(tile - overlap >= b - a > 0 for a, b in itertools.pairwise(starts))


def _near_inner_tile_edges(length: int, tile: int, overlap: int, radius: int) -> torch.Tensor:
    """Pixels within ``radius`` of a tile edge that is not an image border."""
    near = torch.zeros(length, dtype=torch.bool)
    for start in _tile_starts(length, tile, overlap):
        if start > 0:
            near[start : start + radius] = True
        if start + tile < length:
            near[start + tile - radius : start + tile] = True
    return near


def test_tiled_equals_untiled_for_a_local_network(tmp_path):
    """Exact where it can be: a pixel's tile output equals the untiled one unless the tile's edge
    (zero padding) lies inside its 5x5 receptive field. Only within ``radius`` of an inner tile
    edge can a tile be wrong, and there the cosine ramp weights it by under 4% (its first two
    pixels weigh 0.004 and 0.038 at overlap 8), so the error stays small."""
    translator = make_translator(tmp_path / "l", {"AtoB": ("local_net", {})})
    x = noise(2, 3, 64, 72)
    tile, overlap = 32, 8
    whole, tiled = translator(x), translator(x, tile=tile, overlap=overlap)
    rows = _near_inner_tile_edges(64, tile, overlap, LocalNet.radius)
    cols = _near_inner_tile_edges(72, tile, overlap, LocalNet.radius)
    far = ~(rows[:, None] | cols[None, :])
    error = (whole - tiled).abs().amax((0, 1))
    assert far.float().mean() > 0.6
    assert error[far].max() < 1e-5
    assert error.max() < 0.05
    # Hard stitching (no overlap) leaves the full edge error in place: what the ramps remove.
    hard = (whole - translator(x, tile=tile, overlap=0)).abs().max()
    assert hard > 3 * error.max()


def test_a_model_with_colour_regions_gets_the_whole_pictures_map_in_every_tile(tmp_path):
    """A generator whose colour map varies over the frame (``colour_regions``), trunk and
    colour map still the identity: each output pixel is its input mapped by the gain and offset
    where it lies in the whole picture, untiled (padded to the network's multiple of 4) and
    tiled alike."""
    torch.manual_seed(0)
    kw = {"ngf": 8, "residual": True, "colour": True, "colour_regions": True}
    net = i2i.create_generator("resnet6", **kw)
    with torch.no_grad():
        net.colour_regions.gain.uniform_(0.6, 1.4)
        net.colour_regions.offset.uniform_(-0.4, 0.4)
    config = make_config("cyclegan", {"AtoB": net_spec(generators, "resnet6", kw)})
    config, nets = load_model(save_model(tmp_path / "m", config, {"AtoB": net}))
    translator = Translator(config, nets, device="cpu")
    x = noise(2, 3, 62, 70) * 0.5
    with torch.no_grad():
        want = net.colour_regions(x).clamp(-0.999, 0.999)
    torch.testing.assert_close(translator(x), want, rtol=0, atol=1e-5)
    torch.testing.assert_close(translator(x, tile=32, overlap=8), want, rtol=0, atol=1e-5)


def test_tiled_is_close_to_untiled_with_instance_norm(translator):
    """Instance norm normalises each tile with the tile's own statistics, so the results differ,
    and an untrained net amplifies that (random weights, no smooth mapping learned). A fair test
    takes a statistically uniform image, whose tiles share the whole image's statistics, and asks
    that the tiled output be far closer to the untiled one than to a different image's output:
    under a third of that distance, under 0.1 on the [-1, 1] scale, and correlated above 0.9."""
    x, other = noise(1, 3, 64, 64, seed=1), noise(1, 3, 64, 64, seed=2)
    whole, tiled = translator(x), translator(x, tile=48, overlap=16)
    diff = (whole - tiled).abs().mean()
    assert diff < 0.1
    assert diff < (whole - translator(other)).abs().mean() / 3
    assert torch.corrcoef(torch.stack([whole.flatten(), tiled.flatten()]))[0, 1] > 0.9


def test_tile_blending_leaves_no_seam(tmp_path):
    """A network of only instance norm maps each tile to a differently shifted and scaled copy:
    the worst case for seams. Hard stitching jumps by about 3 at every tile edge. Blended, every
    pixel in a band lies between the two tiles' outputs, and no step between neighbouring pixels
    is larger than a few times the untiled output's steepest step."""
    translator = make_translator(tmp_path / "n", {"AtoB": ("norm_only", {})})
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 32), torch.linspace(-1, 1, 96), indexing="ij")
    x = torch.stack([xs, 0.5 * xs + 0.3 * ys, 0.5 * torch.sin(3 * xs)])[None]
    tile, overlap = 48, 12
    whole, tiled = translator(x), translator(x, tile=tile, overlap=overlap)
    hard = translator(x, tile=32, overlap=0)

    def steepest(y: torch.Tensor) -> float:
        return (y[..., 1:] - y[..., :-1]).abs().max().item()

    assert steepest(hard) > 2.5
    assert steepest(tiled) < 3 * steepest(whole)
    starts = _tile_starts(96, tile, overlap)
    outs = [translator(x[..., s : s + tile]) for s in starts]
    for (left, a), (right, b) in zip(
        zip(starts, outs, strict=True), zip(starts[1:], outs[1:], strict=True), strict=False
    ):
        band = tiled[..., right : left + tile]
        a, b = a[..., right - left :], b[..., : left + tile - right]
        assert (band >= torch.minimum(a, b) - 1e-5).all() and (
            band <= torch.maximum(a, b) + 1e-5
        ).all()


def test_tiled_pil_and_batches_of_tiles(translator):
    image = pattern(61, 45)
    out = translator(image, tile=32, overlap=8)
    assert out.size == (61, 45)
    whole = np.asarray(translator(image), dtype=float)
    assert np.abs(np.asarray(out, dtype=float) - whole).mean() < 40  # of 255; see the test above


# -- apply_paths ---------------------------------------------------------------------------------
def save(path: Path, image: Image.Image) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


@pytest.fixture
def tree(tmp_path) -> Path:
    root = tmp_path / "in"
    save(root / "a.jpg", pattern(32, 32))
    cut_out = pattern(32, 32, "RGBA", seed=1)
    cut_out.putalpha(Image.linear_gradient("L").resize((32, 32)))  # see-through at the top
    save(root / "b.png", cut_out)
    save(root / "sub" / "c.png", pattern(40, 24, "L", seed=2))
    save(root / "sub" / "deeper" / "d.jpg", pattern(32, 32, seed=3))
    (root / "notes.txt").write_text("not an image")
    return root


def test_apply_folder_mirrors_relative_paths(translator, tree, tmp_path, monkeypatch):
    out = tmp_path / "out"
    monkeypatch.setattr(translator, "batch_size", 2)
    report = apply_paths(translator, [str(tree)], out, progress=False)
    rel = sorted(p.relative_to(out).as_posix() for p in report.written)
    assert rel == ["a.jpg", "b.png", "sub/c.png", "sub/deeper/d.jpg"]
    for name in rel:
        src, dst = Image.open(tree / name), Image.open(out / name)
        assert dst.size == src.size and dst.format == src.format and dst.mode == "RGB"
    assert report.failed == [] and report.skipped_existing == []
    assert not [p for p in out.rglob("*") if p.name.startswith(".")]  # no temp files left
    assert "Wrote 4 files" in report.summary()
    # notes.txt is named, not skipped without a word (and no advice to convert it); b.png's
    # alpha is flattened, and said so
    assert report.notes == [
        "left out 1 file that is not an image or a video by name: .txt (1)",
        "b.png had transparency: translated on white, written without it",
    ]


def test_files_a_folder_holds_but_apply_leaves_out_are_counted_by_kind(translator, tree, tmp_path):
    pattern(32, 32).save(tree / "scan.ppm")  # Pillow reads it; apply takes images by name
    pattern(32, 32).save(tree / "sub" / "also.ppm")
    (tree / "sub" / "README").write_text("no extension")
    out = tmp_path / "out"
    report = apply_paths(translator, [str(tree)], out, progress=False)
    assert len(report.written) == 4
    assert report.notes[0].startswith("left out 4 files that are not images or videos by name: ")
    assert ".ppm (2)" in report.notes[0] and "(no extension) (1)" in report.notes[0]
    assert report.notes[0].endswith("; convert the .ppm files to .png or .jpg to use them")
    assert report.notes[0] in report.summary()


def test_apply_files_and_globs_go_to_their_names(translator, tree, tmp_path):
    out = tmp_path / "out"
    report = apply_paths(
        translator, [tree / "a.jpg", f"{tree}/**/*.png"], out, direction="BtoA", progress=False
    )
    assert sorted(p.name for p in report.written) == ["a.jpg", "b.png", "c.png"]
    assert (out / "c.png").is_file() and not (out / "sub").exists()


def test_unreadable_files_are_skipped_and_listed(translator, tree, tmp_path):
    (tree / "broken.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    report = apply_paths(translator, [tree], tmp_path / "out", progress=False)
    assert len(report.written) == 4
    assert [Path(p).name for p, _ in report.failed] == ["broken.jpg"]
    assert "broken.jpg" in report.failed[0][1]
    assert "skipped 1 input" in report.summary()


def test_existing_outputs_are_kept_unless_overwrite(translator, tree, tmp_path):
    out = tmp_path / "out"
    save(out / "a.jpg", Image.new("RGB", (4, 4)))
    report = apply_paths(translator, [tree], out, progress=False)
    assert report.skipped_existing == [out / "a.jpg"] and len(report.written) == 3
    assert Image.open(out / "a.jpg").size == (4, 4)
    assert "kept 1 existing output" in report.summary()
    report = apply_paths(translator, [tree], out, overwrite=True, progress=False)
    assert len(report.written) == 4 and Image.open(out / "a.jpg").size == (32, 32)


def test_a_folder_in_the_way_of_an_output_is_a_failure_not_a_kept_output(
    translator, tree, tmp_path
):
    out = tmp_path / "out"
    (out / "a.jpg").mkdir(parents=True)
    for overwrite in (False, True):
        report = apply_paths(translator, [tree], out, overwrite=overwrite, progress=False)
        assert report.skipped_existing == [] and len(report.written) == 3
        assert [Path(p).name for p, _ in report.failed] == ["a.jpg"]
        assert "a folder is in the way" in report.failed[0][1]
        assert (out / "a.jpg").is_dir()


def test_inputs_are_never_outputs(translator, tree):
    with pytest.raises(I2IError, match="which is an input"):
        apply_paths(translator, [tree], tree, overwrite=True, progress=False)
    with pytest.raises(I2IError, match="which is an input"):
        apply_paths(translator, [tree / "a.jpg"], tree, overwrite=True, progress=False)
    with pytest.raises(I2IError, match="which is an input"):
        apply_paths(translator, [f"{tree}/*.jpg"], tree, overwrite=True, progress=False)
    assert Image.open(tree / "a.jpg").size == (32, 32)


def test_outputs_inside_an_input_folder_are_not_inputs_next_time(translator, tree):
    first = apply_paths(translator, [tree], tree / "out", progress=False)
    second = apply_paths(translator, [tree], tree / "out", progress=False)
    assert len(first.written) == 4 and len(second.skipped_existing) == 4
    # The glob matches out/b.png too, an earlier output: not an input, so no input-is-output error.
    again = apply_paths(translator, [f"{tree}/**/*.png"], tree / "out", progress=False)
    assert again.written == [tree / "out" / "c.png"]
    assert again.skipped_existing == [tree / "out" / "b.png"]


def test_an_output_folder_above_the_input_folder_is_fine(translator, tree):
    report = apply_paths(translator, [tree / "sub"], tree, progress=False)
    assert sorted(p.relative_to(tree).as_posix() for p in report.written) == [
        "c.png",
        "deeper/d.jpg",
    ]


def test_one_output_name_for_two_inputs_is_an_error(translator, tree, tmp_path):
    save(tmp_path / "other" / "a.jpg", pattern(32, 32))
    with pytest.raises(I2IError, match="both be written"):
        apply_paths(translator, [tree / "a.jpg", tmp_path / "other" / "a.jpg"], tmp_path / "o")


def test_nothing_found(translator, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(I2IError, match="no images or videos found in"):
        apply_paths(translator, [tmp_path / "empty", f"{tmp_path}/*.jpg"], tmp_path / "out")
    (tmp_path / "empty" / "photo.heic").write_bytes(b"x")
    with pytest.raises(I2IError, match=r"hold only 1 file .* \.heic \(1\); convert the \.heic"):
        apply_paths(translator, [tmp_path / "empty"], tmp_path / "out")
    with pytest.raises(I2IError, match="does not exist"):
        apply_paths(translator, [tmp_path / "missing.jpg"], tmp_path / "out")


def test_report_summary_lists_a_few_failures():
    report = ApplyReport(failed=[(f"{i}.jpg", f"cannot read image {i}.jpg") for i in range(5)])
    assert report.summary().endswith("cannot read image 2.jpg; and 2 more.")


# -- video ---------------------------------------------------------------------------------------
def write_video(path: Path, frames: int = 8, size: tuple[int, int] = (32, 32), rate=12) -> Path:
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=rate)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        for i in range(frames):
            image = np.asarray(pattern(*size, seed=i))
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def probe(path: Path) -> tuple[int, Fraction, int, int]:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = sum(1 for _ in container.decode(stream))
        return count, stream.average_rate, stream.width, stream.height


def test_video_round_trip(translator, tmp_path, monkeypatch):
    src = write_video(tmp_path / "clip.mp4", frames=8, size=(32, 32), rate=12)
    save(tmp_path / "still.jpg", pattern(32, 32))
    monkeypatch.setattr(translator, "batch_size", 3)
    report = apply_paths(translator, [src, tmp_path / "still.jpg"], tmp_path / "out")
    assert sorted(p.name for p in report.written) == ["clip.mp4", "still.jpg"]
    assert probe(tmp_path / "out" / "clip.mp4") == (8, 12, 32, 32)


def test_a_folder_gives_its_videos_too(translator, tmp_path):
    (tmp_path / "in" / "clips").mkdir(parents=True)
    write_video(tmp_path / "in" / "clips" / "clip.mp4", frames=3)
    save(tmp_path / "in" / "still.png", pattern(32, 32))
    report = apply_paths(translator, [tmp_path / "in"], tmp_path / "out", progress=False)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in report.written) == [
        "clips/clip.mp4",
        "still.png",
    ]
    assert probe(tmp_path / "out" / "clips" / "clip.mp4")[0] == 3


def test_video_odd_size_and_tiles(translator, tmp_path):
    from i2i.infer.video import translate_video

    src = write_video(tmp_path / "clip.avi", frames=3, size=(48, 32), rate=Fraction(30000, 1001))
    count = translate_video(translator, src, tmp_path / "o" / "clip.avi", tile=32, overlap=8)
    assert count == 3 and probe(tmp_path / "o" / "clip.avi") == (3, Fraction(30000, 1001), 48, 32)


def test_a_video_of_odd_sides_is_written_even_and_says_so(translator, tmp_path):
    av = pytest.importorskip("av")
    src = tmp_path / "odd.avi"
    with av.open(str(src), "w") as container:  # PNG frames: odd sides, which 4:2:0 cannot hold
        stream = container.add_stream("png", rate=12)
        stream.width, stream.height, stream.pix_fmt = 33, 23, "rgb24"
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(np.asarray(pattern(33, 23, seed=i)), format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    report = apply_paths(translator, [src], tmp_path / "out", progress=False)
    assert report.written == [tmp_path / "out" / "odd.avi"]
    assert probe(tmp_path / "out" / "odd.avi") == (3, 12, 34, 24)
    assert any("odd.avi is 33x23; its translation is written 34x24" in n for n in report.notes)
    from i2i.core.errors import ImageDecodeError
    from i2i.infer.video import VideoOptions, translate_video

    notes: list[str] = []  # a video that then fails gets its error, not a note on its size
    with pytest.raises(ImageDecodeError, match="no frames between 60 s"):
        translate_video(
            translator, src, tmp_path / "cut.avi", options=VideoOptions(start=60), warn=notes.append
        )
    assert notes == [] and not (tmp_path / "cut.avi").exists()


def test_unreadable_video_is_skipped(translator, tmp_path):
    pytest.importorskip("av")
    (tmp_path / "bad.mp4").write_bytes(b"not a video")
    report = apply_paths(translator, [tmp_path / "bad.mp4"], tmp_path / "out", progress=False)
    assert report.written == [] and "cannot read video" in report.failed[0][1]
    assert not (tmp_path / "out" / "bad.mp4").exists()


def test_video_without_pyav_says_how_to_install(translator, tmp_path, monkeypatch):
    (tmp_path / "clip.mp4").write_bytes(b"")
    real_import = builtins.__import__

    def no_av(name, *args, **kwargs):
        if name == "av":
            raise ImportError("No module named 'av'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_av)
    with pytest.raises(I2IError, match=r'pip install "i2i\[video\]"'):
        apply_paths(translator, [tmp_path / "clip.mp4"], tmp_path / "out", progress=False)
    # A folder of photos with a clip among them: the photos are translated, the clip listed;
    # decided on the whole request, so a rerun (the photos done) and every process agree.
    mixed = tmp_path / "mixed"
    save(mixed / "still.png", pattern(32, 32))
    (mixed / "clip.mp4").write_bytes(b"")
    why = 'clip.mp4: video needs PyAV, which is not installed: pip install "i2i[video]"'
    for _ in range(2):
        report = apply_paths(translator, [mixed], tmp_path / "out", progress=False)
        assert report.failed == [(str(mixed / "clip.mp4"), why)]
    assert [p.name for p in report.skipped_existing] == ["still.png"]
    shares = [
        apply_paths(translator, [mixed], tmp_path / "o2", progress=False, ranks=Ranks(r, 2))
        for r in (0, 1)
    ]
    assert [len(share.failed) + len(share.written) for share in shares] == [1, 1]


@pytest.mark.slow
def test_sigterm_stops_apply_as_ctrl_c_does_saying_how_far_it_got(tmp_path):
    """What torchrun, SLURM and kill send: apply ended without a word."""
    model = build_model(tmp_path / "model", {"AtoB": ("resnet6", {"ngf": 16})})
    (tmp_path / "in").mkdir()
    for i in range(400):
        pattern(128, 128, seed=i).save(tmp_path / "in" / f"{i:03d}.png")
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "i2i", "apply", str(model), str(tmp_path / "in"), "-o", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [*argv, "--batch-size", "1"], env=env, stderr=subprocess.PIPE, text=True
    )
    deadline = time.time() + 120
    while len(list(out.glob("*.png"))) < 3 and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err
    written = sorted(out.glob("*.png"))
    assert f"Stopped: wrote {len(written)} files to {out}, each whole" in err
    assert 0 < len(written) < 400
    for path in written:  # whole, as the line says
        Image.open(path).load()
