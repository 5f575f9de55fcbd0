"""The colour path of a generator: the linear colour map between two sets, and where it starts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import i2i
from i2i.data import load_image, to_float
from i2i.kit.colour import (
    cell_moments,
    colour_moments,
    colour_pixels,
    colour_turn,
    linear_colour_map,
    region_maps,
)
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


def _scenes(n: int, seed: int) -> list[torch.Tensor]:
    """Pictures of a few broad patches whose colours come from a lopsided palette (foliage,
    sky, earth, a little red, white), clustered as photos' colours are, not spread alike every
    way as ``_images``' are."""
    generator = torch.Generator().manual_seed(seed)
    palette = torch.tensor(
        [[-0.5, 0.1, -0.6], [-0.2, 0.2, 0.7], [0.3, -0.1, -0.4], [0.8, -0.6, -0.5], [0.6] * 3]
    )
    weights = torch.tensor([0.4, 0.3, 0.15, 0.05, 0.1])
    index = torch.multinomial(weights, n * 16, replacement=True, generator=generator)
    coarse = palette[index.view(n, 4, 4)].permute(0, 3, 1, 2)
    coarse = coarse + torch.randn(n, 3, 4, 4, generator=generator) * 0.1
    return list(torch.nn.functional.interpolate(coarse, size=32, mode="bilinear"))


def _hue_turn(degrees: float) -> torch.Tensor:
    """The colour matrix that turns every hue by ``degrees`` about the grey axis."""
    axis = torch.ones(3) / 3**0.5
    cross = torch.linalg.cross(torch.eye(3), axis.expand(3, 3)).T  # cross @ x = axis x x
    angle = torch.tensor(degrees).deg2rad()
    return torch.eye(3) + angle.sin() * cross + (1 - angle.cos()) * cross @ cross


# Looks that the least-moving map cannot make: a turn of every hue, a swap of two channels.
TURNS = {
    "hue": _hue_turn(100),
    "swap": torch.tensor([[0.0, 1, 0], [1, 0, 0], [0, 0, 1]]),
}


def _turn_between(source: list[torch.Tensor], target: list[torch.Tensor]):
    moments = colour_moments(source), colour_moments(target)
    pixels = (torch.stack([colour_pixels(image) for image in s]) for s in (source, target))
    return moments, colour_turn(*moments, *pixels)


@pytest.mark.parametrize("look", TURNS, ids=TURNS)
def test_a_turn_of_the_colours_is_told_by_their_distribution(look):
    """B: other scenes with their hues turned (or two channels swapped). Their colours' mean
    and covariance allow any turn, and the least-moving map is far from the look; the
    colours' whole distribution tells it."""
    source = _scenes(24, 0)
    target = [_apply(TURNS[look], torch.zeros(3), image) for image in _scenes(24, 1)]
    moments, turn = _turn_between(source, target)
    assert turn is not None
    assert turn.T @ turn == pytest.approx(torch.eye(3, dtype=turn.dtype), abs=1e-5)
    assert (linear_colour_map(*moments)[0].float() - TURNS[look]).norm() > 2
    assert (linear_colour_map(*moments, turn)[0].float() - TURNS[look]).norm() < 0.2


def test_no_turn_where_the_least_moving_map_fits_or_the_colours_cannot_tell_which():
    """A look that the least-moving map makes (symmetric) needs no turn; nor can a turn be
    told where the colours spread alike in every direction (``_images``): several turns
    fit as well as the look's own, so the map stays the least-moving one."""
    root = torch.tensor([[0.8, 0.1, 0.0], [0.1, 0.6, 0.2], [0.0, 0.2, 0.9]])
    symmetric = [_apply(root @ root.T, torch.zeros(3), image) for image in _scenes(24, 1)]
    assert _turn_between(_scenes(24, 0), symmetric)[1] is None
    turned = [_apply(TURNS["hue"], torch.zeros(3), image) for image in _images(48, 1)]
    assert _turn_between(_images(48, 0), turned)[1] is None


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
    off = "--gen-kw colour_curve=false --gen-kw colour_gate=false --gen-kw colour_regions=false"
    with pytest.raises(i2i.I2IError, match=f"turn them off too \\({off}\\)"):
        i2i.create_generator(
            "resnet6",
            ngf=8,
            residual=True,
            colour_curve=True,
            colour_gate=True,
            colour_regions=True,
        )


def _shaded(image: torch.Tensor) -> torch.Tensor:
    """A look that changes over the frame: the top darkened, most at the top edge (a graduated
    sky), and a veil lifting the left edge."""
    height, width = image.shape[-2:]
    rows = torch.linspace(1, 0, height)[:, None].clamp(min=0.4) - 0.4
    veil = 0.5 * torch.linspace(1, 0, width)[None, :] ** 2
    darkened = (image + 1) * (1 - 0.8 * rows) - 1
    return darkened * (1 - veil) + 0.6 * veil


def _cells(images: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack([cell_moments(image, 4) for image in images])


def _set(regions: i2i.RegionMap, gain: torch.Tensor, offset: torch.Tensor) -> None:
    with torch.no_grad():
        regions.gain.copy_(gain.reshape(regions.gain.shape))
        regions.offset.copy_(offset.reshape(regions.offset.shape))


def test_colour_regions_start_as_nothing_and_follow_where_an_input_lies_in_its_picture():
    """The regional map is the identity at the start (the generator still is); once set, it
    maps each pixel by the gain and offset where the pixel lies in its whole picture: a tile
    told where it lies gets the whole picture's map there, and an input without a frame is a
    whole picture. It follows the colour map, and needs it."""
    net = i2i.create_generator("resnet6", ngf=8, residual=True, colour=True, colour_regions=True)
    x = _identity_then_the_map(net)
    regions = net.colour_regions
    _set(regions, torch.rand(16) + 0.5, torch.rand(3, 16) - 0.5)
    whole = regions(x)
    changed = whole - x
    assert (changed[..., :8, :8] - changed[..., -8:, -8:]).abs().amax() > 0.05  # varies over it
    torch.testing.assert_close(regions(x, torch.tensor([[0.0, 0, 1, 1]] * 2)), whole)
    tiles = torch.tensor([[8 / 32, 4 / 32, 16 / 32, 24 / 32], [0.0, 0.25, 0.5, 0.75]])
    cut = regions(torch.stack([x[0, :, 8:24, 4:28], x[1, :, :16, 8:]]), tiles)
    torch.testing.assert_close(cut[0], whole[0, :, 8:24, 4:28])
    torch.testing.assert_close(cut[1], whole[1, :, :16, 8:])
    _set(regions, torch.full((16,), 0.5), torch.zeros(3, 16))  # a gain scales the colours
    torch.testing.assert_close(regions(x), 0.5 * x)
    mapped = i2i.mapped_colours(net.colour, None, x, regions=regions)
    torch.testing.assert_close(mapped, 0.5 * net.colour(x))
    with pytest.raises(i2i.I2IError, match="add colour"):
        i2i.create_generator("resnet6", ngf=8, residual=True, colour_regions=True)


def test_region_maps_tell_a_look_that_varies_over_the_frame_and_not_the_sets_chance():
    """Region by region, what the colour map leaves of the sets' difference: the darkened top
    (a gain under 1) and the veiled left edge (a gain under 1, its colours lifted) of
    ``_shaded``, made nearly whole by the regions; and next to nothing between two sets of
    different images with no look, whose cells differ by chance alone."""
    a, b = _images(60, 7), [_shaded(image) for image in _images(60, 8)]
    matrix, bias = linear_colour_map(colour_moments(a), colour_moments(b))
    gain, shift = region_maps(_cells(a), _cells(b), (matrix, bias))
    assert gain.shape == (1, 4, 4) and shift.shape == (3, 4, 4)
    assert gain[0, 0].mean() < gain[0, 3].mean() - 0.2  # the top darkened: its spread shrunk
    assert gain[0, :, 0].mean() < gain[0, :, 3].mean() - 0.2  # the veiled edge flattened
    regions = i2i.RegionMap(3)
    _set(regions, gain.float(), shift.float())
    tests = _images(8, 9)
    truth = torch.stack([_shaded(image) for image in tests])
    mapped = torch.stack([_apply(matrix, bias, image) for image in tests])
    error, error_before = (
        (regions(mapped) - truth).square().mean(),
        (mapped - truth).square().mean(),
    )
    assert error < error_before / 4
    same = _images(60, 10)
    gain, shift = region_maps(_cells(a), _cells(same), (torch.eye(3), torch.zeros(3)))
    raw = _cells(same)[:, :3].mean(0) - _cells(a)[:, :3].mean(0)
    assert (gain == 1).float().mean() > 0.4 and (gain - 1).abs().mean() < 0.05  # most told 1
    assert shift.abs().mean() < raw.abs().mean() / 3
    gain, shift = region_maps(_cells(a[:1]), _cells(b), (matrix, bias))
    assert (gain == 1).all() and not shift.any()  # one image tells nothing of its set's spread


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


def test_a_task_starts_both_ways_at_one_turn_where_the_sets_tell_it(tmp_path):
    """B: other scenes with two channels swapped. CycleGAN's G_AB starts at the swap, read
    from the image files, and G_BA at its inverse (one turn, told once), not at the
    least-moving maps."""
    a = _scenes(24, 0)
    b = [_apply(TURNS["swap"], torch.zeros(3), image) for image in _scenes(24, 1)]
    _save(a, tmp_path / "trainA")
    _save(b, tmp_path / "trainB")
    config = resolve_config(
        "cyclegan", {"data": str(tmp_path), **TINY, "gen_kw": {"residual": True, "colour": True}}
    )
    task = i2i.create_task("cyclegan", **config)
    task.attach(Runtime("cpu"))
    task.build({"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1})
    forward, backward = (task.nets[n].colour.weight[:, :, 0, 0] for n in ("G_AB", "G_BA"))
    assert (forward - TURNS["swap"]).norm() < 0.2
    torch.testing.assert_close(backward @ forward, torch.eye(3), rtol=0, atol=1e-4)


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


def test_region_maps_recover_each_cells_gain_after_a_colour_map_that_lifts():
    """A known answer: B is each A image through a colour map that lifts the colours (a bias,
    which enters the mapped brightness's spread), then scaled per region by known gains; told
    that map, the regions find each gain (the shuffled B set differs by the look alone)."""
    a = torch.stack(_images(80, 11))
    map_ = (0.8 * torch.eye(3), torch.full((3,), 0.2))
    gains = torch.tensor([[0.5, 0.7, 1.0, 1.6]]).expand(4, 4).T  # by row: top half darkened
    upsampled = torch.nn.functional.interpolate(gains[None, None], size=32, mode="nearest")[0]
    mapped = torch.einsum("ij,njhw->nihw", map_[0], a) + map_[1][:, None, None]
    b = list((upsampled * mapped).flip(0))
    gain, _ = region_maps(_cells(list(a)), _cells(b), map_)
    torch.testing.assert_close(gain[0].float(), gains, rtol=0.05, atol=0)


def test_region_maps_stay_bounded_on_flat_cells_and_mirror_when_training_flips():
    """A corner black in every source image has no spread to scale: its gain stays within
    LARGEST_REGION_GAIN, not the hundreds a floorless ratio gives. With ``mirrored`` (training
    flips the images), each cell's gain is its mirror cell's."""
    from i2i.kit.colour import LARGEST_REGION_GAIN

    a = _images(40, 12)
    for image in a:
        image[:, :8, :8] = -1  # a black corner
    b = _images(40, 13)
    identity = (torch.eye(3), torch.zeros(3))
    gain, bias = region_maps(_cells(a), _cells(b), identity)
    assert torch.isfinite(gain).all() and torch.isfinite(bias).all()
    assert gain.max() <= LARGEST_REGION_GAIN + 1e-6 and gain.min() >= 1 / LARGEST_REGION_GAIN - 1e-6
    assert gain[0, 0, 0] > 2  # the corner is told to spread out, within the bound
    gain, bias = region_maps(_cells(a), _cells(b), identity, mirrored=True)
    torch.testing.assert_close(gain, gain.flip(-1))
    torch.testing.assert_close(bias, bias.flip(-1))


@pytest.mark.parametrize(
    ("name", "flip"), [("cyclegan", False), ("cut", False), ("cyclegan", True)]
)
def test_a_task_starts_the_colour_regions_at_what_the_sets_tell_region_by_region(
    tmp_path, name, flip
):
    """B: other images with a recolouring and a shading over the frame. Each generator's
    regional map starts at what its colour map leaves of the difference region by region, read
    from the image files (CycleGAN's B->A the other way), so that the generator starts at the
    colour map with the shading; mirrored, where training flips the images."""
    a = _images(24, 4)
    b = [_shaded(_apply(*LOOK, image)) for image in _images(24, 5)]
    for split in ("train", "test"):
        _save(a, tmp_path / f"{split}A")
        _save(b, tmp_path / f"{split}B")
    gen_kw = {"residual": True, "colour": True, "colour_regions": True}
    options = {"data": str(tmp_path), **TINY, "gen_kw": gen_kw, "flip": flip}
    task = i2i.create_task(name, **resolve_config(name, options))
    task.attach(Runtime("cpu"))
    task.build({"A": torch.rand(1, 3, 32, 32) * 2 - 1, "B": torch.rand(1, 3, 32, 32) * 2 - 1})
    files = {d: [to_float(load_image(p)) for p in sorted((tmp_path / f"train{d}").iterdir())]
             for d in "AB"}  # fmt: skip
    moments = {d: colour_moments(images) for d, images in files.items()}
    generators = {"G_AB": "AB", "G_BA": "BA"} if name == "cyclegan" else {"G": "AB"}
    for net, (source, target) in generators.items():
        matrix, bias = linear_colour_map(moments[source], moments[target])
        cells = _cells(files[source]), _cells(files[target])
        gain, shift = region_maps(*cells, (matrix, bias), mirrored=flip)
        regions = task.nets[net].colour_regions
        torch.testing.assert_close(regions.gain[0], gain.float(), rtol=0, atol=1e-5)
        torch.testing.assert_close(regions.offset[0], shift.float(), rtol=0, atol=1e-5)
        # The veiled left edge flattened on the way to B, given its spread back on the way to A;
        # with flips, the veil is on either side as often.
        left_over_right = (regions.gain[0, 0, :, 0].mean() / regions.gain[0, 0, :, 3].mean()).item()
        if flip:
            assert left_over_right == pytest.approx(1)
        else:
            assert left_over_right < 0.9 if source == "A" else left_over_right > 1.1
