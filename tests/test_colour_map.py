"""The colour path of a generator: the linear colour map between two sets, and where it starts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import i2i
from i2i.data import load_image, to_float
from i2i.kit.colour import colour_moments, linear_colour_map, region_offsets
from i2i.train.runtime import Runtime
from tests.conftest import TINY
from tests.training import resolve_config


def _images(n: int, seed: int) -> list[torch.Tensor]:
    """Smooth colour images with a cast of their own, in [-1, 1]."""
    generator = torch.Generator().manual_seed(seed)
    coarse = torch.rand(n, 3, 4, 4, generator=generator) * 1.2 - 0.6
    cast = torch.randn(n, 3, 1, 1, generator=generator) * 0.1
    return list(torch.nn.functional.interpolate(coarse, size=32, mode="bilinear") + cast)


def _apply(matrix: torch.Tensor, bias: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    return torch.einsum("ij,jhw->ihw", matrix.to(image), image) + bias.to(image)[:, None, None]


# A look that recolours: warm shadows, a contrast, a mixing of the channels.
LOOK = (
    torch.tensor([[0.9, 0.2, 0.0], [0.1, 0.7, 0.1], [0.0, 0.2, 0.6]]),
    torch.tensor([0.1, -0.05, -0.15]),
)


def test_the_map_gives_the_source_the_targets_colour_moments():
    source = _images(40, 0)
    target = [_apply(*LOOK, image) for image in _images(40, 1)]
    matrix, bias = linear_colour_map(colour_moments(source), colour_moments(target))
    mapped = colour_moments(_apply(matrix, bias, image) for image in source)
    for got, want in zip(mapped, colour_moments(target), strict=True):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-6)  # images in float32


def test_a_symmetric_look_is_recovered_exactly():
    """Of all maps that give the target's moments, the one that moves colours least: when the
    look is itself such a map (symmetric, positive), it is the look."""
    root = torch.tensor([[0.8, 0.1, 0.0], [0.1, 0.6, 0.2], [0.0, 0.2, 0.9]])
    look = (root @ root.T, torch.tensor([0.05, 0.1, -0.2]))
    source = _images(30, 2)
    target = [_apply(*look, image) for image in source]
    matrix, bias = linear_colour_map(colour_moments(source), colour_moments(target))
    torch.testing.assert_close(matrix.float(), look[0], rtol=0, atol=1e-5)
    torch.testing.assert_close(bias.float(), look[1], rtol=0, atol=1e-5)


def test_grey_images_give_a_finite_map_both_ways():
    colour = _images(20, 3)
    grey = [image.mean(0, keepdim=True).expand(3, -1, -1) for image in colour]
    for source, target in ((grey, colour), (colour, grey)):
        matrix, bias = linear_colour_map(colour_moments(source), colour_moments(target))
        assert torch.isfinite(matrix).all() and torch.isfinite(bias).all()
        assert matrix.abs().amax() < 100
    matrix, bias = linear_colour_map(colour_moments(colour), colour_moments(grey))
    greyed = _apply(matrix, bias, colour[0])
    assert (greyed - greyed.mean(0)).abs().amax() < 0.02  # colour to grey: channels alike


def _identity_then_the_map(net: torch.nn.Module) -> torch.Tensor:
    """Checks that a factory's generator with a colour path is the identity, and the map once
    its colour map is set to LOOK's; the images it checked on."""
    x = torch.rand(2, 3, 32, 32) * 1.8 - 0.9
    torch.testing.assert_close(net(x), x, rtol=0, atol=1e-5)
    with torch.no_grad():
        net.colour.weight.copy_(LOOK[0][:, :, None, None])
        net.colour.bias.copy_(LOOK[1])
    want = torch.stack([_apply(*LOOK, image) for image in x]).clamp(-0.999, 0.999)
    torch.testing.assert_close(net(x), want, rtol=0, atol=1e-5)
    return x


def test_a_generator_with_a_colour_path_starts_as_the_identity_and_needs_a_residual():
    _identity_then_the_map(i2i.create_generator("resnet6", ngf=8, residual=True, colour=True))
    with pytest.raises(i2i.I2IError, match="add residual"):
        i2i.create_generator("resnet6", ngf=8, colour=True)


def test_a_colour_curve_starts_flat_bends_each_pixel_alone_and_needs_a_colour_path():
    """The curve adds nothing at first (the generator is still the identity), and once it is
    bent, what it gives a pixel depends on that pixel's colour alone: an object keeps its
    outline."""
    net = i2i.create_generator("resnet6", ngf=8, residual=True, colour=True, colour_curve=True)
    x = torch.rand(2, 3, 32, 32) * 1.8 - 0.9
    torch.testing.assert_close(net(x), x, rtol=0, atol=1e-5)
    with torch.no_grad():
        torch.nn.init.normal_(net.colour_curve[-1].weight, std=0.5)
    bent = i2i.mapped_colours(net.colour, net.colour_curve, x)
    linear = net.colour(x)
    assert (bent - linear).abs().amax() > 0.05  # it bends
    probe = x.clone()
    probe[:, :, 5, 7] = -probe[:, :, 5, 7]  # one pixel changed
    changed = (i2i.mapped_colours(net.colour, net.colour_curve, probe) - bent).abs().sum(1)
    assert changed[:, 5, 7].min() > 0 and changed.flatten(1).sum(1).sub(changed[:, 5, 7]).max() == 0
    with pytest.raises(i2i.I2IError, match="add colour"):
        i2i.create_generator("resnet6", ngf=8, residual=True, colour_curve=True)


def test_a_colour_gate_starts_at_the_whole_map_and_lets_a_pixel_keep_its_colour():
    """At the start each pixel takes all of the map's change (the generator is the map); a gate
    shut for one colour keeps the input's colour on the pixels of that colour, and what the
    others get does not depend on them: the toy's sun can keep its own bright disc while the
    sky is mapped."""
    net = i2i.create_generator(
        "resnet6", ngf=8, residual=True, colour=True, colour_curve=True, colour_gate=True
    )
    assert net.colour_curve[-1].out_channels == 4  # three bends and a gate
    x = _identity_then_the_map(net)
    # A gate that shuts on bright red pixels (one hidden unit reads red past its level 0.5).
    red = x.clone()
    red[:, :, 4:8, 4:8] = torch.tensor([0.9, -0.8, -0.8])[:, None, None]
    with torch.no_grad():
        hidden, last = net.colour_curve[0], net.colour_curve[-1]
        hidden.weight.zero_()
        hidden.bias.fill_(-10.0)
        hidden.weight[0, 0] = 40.0
        hidden.bias[0] = -20.0
        last.weight[-1, 0] = -10.0
    gated = i2i.mapped_colours(net.colour, net.colour_curve, red, gated=True)
    torch.testing.assert_close(gated[:, :, 4:8, 4:8], red[:, :, 4:8, 4:8], rtol=0, atol=1e-3)
    elsewhere = i2i.mapped_colours(net.colour, net.colour_curve, x, gated=True)
    outside = torch.ones(32, 32, dtype=torch.bool)
    outside[4:8, 4:8] = False
    torch.testing.assert_close(gated[:, :, outside], elsewhere[:, :, outside])  # each pixel alone
    with pytest.raises(i2i.I2IError, match="add colour_curve"):
        i2i.create_generator("resnet6", ngf=8, residual=True, colour=True, colour_gate=True)
    # The quality recipe with --gen-kw colour=false: one line that names all it takes.
    off = "--gen-kw colour_curve=false --gen-kw colour_gate=false"
    with pytest.raises(i2i.I2IError, match=f"turn them off too \\({off}\\)"):
        i2i.create_generator("resnet6", ngf=8, residual=True, colour_curve=True, colour_gate=True)


def _shaded(image: torch.Tensor) -> torch.Tensor:
    """A look that changes over the frame: the top darkened, most at the top edge (a graduated
    sky), and the left edge lifted a little."""
    height, width = image.shape[-2:]
    rows = torch.linspace(1, 0, height)[:, None].clamp(min=0.4) - 0.4
    cols = torch.linspace(1, 0, width)[None, :]
    return image - 0.5 * rows + 0.1 * cols**4


def _cells(images: list[torch.Tensor]) -> torch.Tensor:
    return torch.nn.functional.adaptive_avg_pool2d(torch.stack(images).double(), 4)


def test_colour_regions_start_at_nothing_and_follow_where_an_input_lies_in_its_picture():
    """The offset is zero at the start (the generator is still the identity); once set, a tile
    told where it lies gets the whole picture's offset there, which depends on the position, and
    an input without a frame is a whole picture. It needs the colour path."""
    net = i2i.create_generator("resnet6", ngf=8, residual=True, colour=True, colour_regions=True)
    x = _identity_then_the_map(net)
    with torch.no_grad():
        net.colour_regions.grid.uniform_(-0.5, 0.5)
    whole = net.colour_regions(x).expand(len(x), -1, -1, -1)  # one offset for every picture
    assert (whole[..., :8, :8] - whole[..., -8:, -8:]).abs().amax() > 0.05  # varies over it
    torch.testing.assert_close(net.colour_regions(x, torch.tensor([[0.0, 0, 1, 1]] * 2)), whole)
    tiles = torch.tensor([[8 / 32, 4 / 32, 16 / 32, 24 / 32], [0.0, 0.25, 0.5, 0.75]])
    cut = net.colour_regions(x[..., :16, :24], tiles)
    torch.testing.assert_close(cut[0], whole[0, :, 8:24, 4:28])
    torch.testing.assert_close(cut[1], whole[1, :, :16, 8:])
    mapped = i2i.mapped_colours(net.colour, None, x, regions=net.colour_regions)
    torch.testing.assert_close(mapped, net.colour(x) + whole)
    with pytest.raises(i2i.I2IError, match="add colour"):
        i2i.create_generator("resnet6", ngf=8, residual=True, colour_regions=True)


def test_region_offsets_tell_a_look_that_varies_over_the_frame_and_not_the_sets_chance():
    """Region by region, what the colour map leaves of the sets' difference: the darkened top
    and lifted left edge of ``_shaded``, and next to nothing between two sets of different
    images with no look, whose cells differ by chance alone."""
    a, b = _images(60, 7), [_shaded(image) for image in _images(60, 8)]
    matrix, bias = linear_colour_map(colour_moments(a), colour_moments(b))
    offsets = region_offsets(_cells(a), _cells(b), (matrix, bias))
    want = _cells(b).mean(0) - _cells([_apply(matrix, bias, image) for image in a]).mean(0)
    assert offsets.shape == (3, 4, 4)
    lumas = offsets.mean(0)
    assert lumas[0].mean() < lumas[3].mean() - 0.1  # the top darker than the bottom
    assert lumas[:, 0].mean() > lumas[:, 3].mean() + 0.02  # the left edge lifted
    assert (offsets - want).abs().amax() < 0.05  # a clear difference is told whole, nearly
    same = _images(60, 9)
    chance = region_offsets(_cells(a), _cells(same), (torch.eye(3), torch.zeros(3)))
    raw = _cells(same).mean(0) - _cells(a).mean(0)
    assert chance.abs().mean() < raw.abs().mean() / 3
    one = region_offsets(_cells(a[:1]), _cells(b), (matrix, bias))
    assert not one.any()  # one image tells nothing of its set's spread


def _save(images: list[torch.Tensor], folder: Path) -> None:
    folder.mkdir(parents=True)
    for i, image in enumerate(images):
        pixels = ((image.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(np.ascontiguousarray(pixels)).save(folder / f"{i:03d}.png")


@pytest.mark.parametrize(
    ("name", "curve"),
    [
        ("cyclegan", False),
        ("cut", False),
        ("unsb", False),
        ("cyclegan", True),
        ("unsb", True),
        ("cyclegan", "gate"),
        ("unsb", "gate"),
    ],
)
def test_a_task_starts_each_colour_path_at_the_map_between_its_domains(tmp_path, name, curve):
    """A: photos; B: other photos with the look. Each generator starts as the map from its
    input's set to its output's (CycleGAN's B->A the other way), read from the image files, its
    curve (if any) flat; UNSB's bridge generator reads its base's colour path."""
    a, b = _images(12, 4), [_apply(*LOOK, image) for image in _images(12, 5)]
    for split in ("train", "test"):
        _save(a, tmp_path / f"{split}A")
        _save(b, tmp_path / f"{split}B")
    gen_kw = {"residual": True, "colour": True, "colour_curve": bool(curve)}
    if curve == "gate":
        gen_kw["colour_gate"] = True
    tiny = {**TINY, "num_patches": 16, "noise_dim": 16} if name == "unsb" else TINY
    config = resolve_config(name, {"data": str(tmp_path), **tiny, "gen_kw": gen_kw})
    task = i2i.create_task(name, **config)
    task.attach(Runtime("cpu"))
    task.build({"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1})
    # The files hold the images rounded to 8 bits.
    a8, b8 = ([to_float(load_image(p)) for p in sorted((tmp_path / f"train{d}").iterdir())]
              for d in "AB")  # fmt: skip
    moments = {"A": colour_moments(a8), "B": colour_moments(b8)}
    generators = {"G_AB": "AB", "G_BA": "BA"} if name == "cyclegan" else {"G": "AB"}
    for net, (source, target) in generators.items():
        matrix, bias = linear_colour_map(moments[source], moments[target])
        colour = task.nets[net].colour
        torch.testing.assert_close(colour.weight[:, :, 0, 0], matrix.float(), rtol=0, atol=1e-5)
        torch.testing.assert_close(colour.bias, bias.float(), rtol=0, atol=1e-5)
        assert (task.nets[net].colour_curve is not None) == bool(curve)
        assert task.nets[net].colour_gate == (curve == "gate")
        if name == "unsb":
            if curve:  # the bridge generator's prediction goes through its base's curve
                G, x = task.nets[net], torch.stack(a8[:2])
                index, z = torch.zeros(2, dtype=torch.long), torch.zeros(2, 16)
                before = G(x, index, z)
                with torch.no_grad():
                    torch.nn.init.normal_(G.colour_curve[-1].weight, std=0.5)
                assert (G(x, index, z) - before).abs().amax() > 0.01
            continue  # its generator also reads a time step and noise
        x = torch.stack(a8[:2] if source == "A" else b8[:2])
        want = torch.stack([_apply(matrix, bias, image) for image in x]).clamp(-0.999, 0.999)
        torch.testing.assert_close(task.nets[net](x), want, rtol=0, atol=1e-4)


def test_a_set_with_no_readable_image_is_a_one_line_data_error(tmp_path):
    _save(_images(4, 6), tmp_path / "trainB")
    (tmp_path / "trainA").mkdir()
    for i in range(4):
        (tmp_path / "trainA" / f"{i}.png").write_bytes(b"not a png")
    config = resolve_config(
        "cyclegan", {"data": str(tmp_path), **TINY, "gen_kw": {"residual": True, "colour": True}}
    )
    task = i2i.create_task("cyclegan", **config)
    task.attach(Runtime("cpu"))
    with pytest.raises(i2i.I2IError, match=r"none of the 4 training images of A .* colour map"):
        task.build({})


@pytest.mark.parametrize("name", ["cyclegan", "cut"])
def test_a_task_starts_the_colour_regions_at_what_the_sets_tell_region_by_region(tmp_path, name):
    """B: other images with a recolouring and a shading over the frame. Each generator's offsets
    start at what its map leaves of the difference region by region, read from the image files
    (CycleGAN's B->A the other way), so that the generator starts at the map with the shading."""
    a = _images(24, 4)
    b = [_shaded(_apply(*LOOK, image)) for image in _images(24, 5)]
    for split in ("train", "test"):
        _save(a, tmp_path / f"{split}A")
        _save(b, tmp_path / f"{split}B")
    gen_kw = {"residual": True, "colour": True, "colour_regions": True}
    config = resolve_config(name, {"data": str(tmp_path), **TINY, "gen_kw": gen_kw})
    task = i2i.create_task(name, **config)
    task.attach(Runtime("cpu"))
    task.build({"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1})
    files = {d: [to_float(load_image(p)) for p in sorted((tmp_path / f"train{d}").iterdir())]
             for d in "AB"}  # fmt: skip
    moments = {d: colour_moments(images) for d, images in files.items()}
    generators = {"G_AB": "AB", "G_BA": "BA"} if name == "cyclegan" else {"G": "AB"}
    for net, (source, target) in generators.items():
        matrix, bias = linear_colour_map(moments[source], moments[target])
        want = region_offsets(_cells(files[source]), _cells(files[target]), (matrix, bias))
        grid = task.nets[net].colour_regions.grid[0]
        torch.testing.assert_close(grid, want.float(), rtol=0, atol=1e-5)
        top_minus_bottom = (grid[:, 0].mean() - grid[:, 3].mean()).item()
        assert top_minus_bottom < -0.05 if source == "A" else top_minus_bottom > 0.05
