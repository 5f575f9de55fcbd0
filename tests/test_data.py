from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from i2i.core.errors import DataError, I2IWarning, ImageDecodeError, InvalidArgumentError
from i2i.data import (
    AlignedDataset,
    EpochSampler,
    UnalignedDataset,
    collate,
    find_images,
    load_image,
    save_image,
    to_float,
    to_uint8,
)

RED, BLUE = (255, 0, 0), (0, 0, 255)


def solid(path: Path, size: tuple[int, int] = (16, 12), colour=RED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)
    return path


def pattern(width: int = 16, height: int = 12) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs * 15, ys * 20, (xs + ys) * 7], axis=-1).astype(np.uint8)


def as_hwc(tensor: torch.Tensor) -> np.ndarray:
    return tensor.permute(1, 2, 0).numpy()


# -- find_images ---------------------------------------------------------------------------------
def test_find_images_sorted_recursive_and_skips_hidden(tmp_path):
    for name in ["b.PNG", "a.jpg", "sub/c.webp", ".hidden.png", "._a.jpg", ".git/d.png", "e.txt"]:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    rel = [p.relative_to(tmp_path).as_posix() for p in find_images(tmp_path)]
    assert rel == ["a.jpg", "b.PNG", "sub/c.webp"]
    assert [p.name for p in find_images(tmp_path, recursive=False)] == ["a.jpg", "b.PNG"]
    with pytest.raises(DataError, match="nope"):
        find_images(tmp_path / "nope")


# -- load_image: formats and modes ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("suffix", "options", "exact"),
    [
        (".png", {}, True),
        (".bmp", {}, True),
        (".tif", {}, True),
        (".tiff", {"compression": "tiff_lzw"}, True),
        (".webp", {"lossless": True}, True),
        (".jpg", {"quality": 95}, False),
        (".JPEG", {"quality": 95, "format": "JPEG"}, False),
    ],
)
def test_formats_round_trip(tmp_path, suffix, options, exact):
    pixels = pattern()
    path = tmp_path / f"img{suffix}"
    Image.fromarray(pixels).save(path, **options)
    tensor = load_image(path)
    assert tensor.dtype == torch.uint8 and tensor.shape == (3, 12, 16)
    diff = np.abs(as_hwc(tensor).astype(int) - pixels.astype(int))
    assert diff.max() == 0 if exact else diff.mean() < 4


def test_grayscale_and_single_channel(tmp_path):
    gray = pattern()[:, :, 0]
    Image.fromarray(gray).save(tmp_path / "g.png")
    rgb = load_image(tmp_path / "g.png")
    assert rgb.shape == (3, 12, 16)
    assert all(np.array_equal(rgb[c].numpy(), gray) for c in range(3))
    assert np.array_equal(load_image(tmp_path / "g.png", channels=1)[0].numpy(), gray)
    # colour to one channel is luminance, not the first channel
    solid(tmp_path / "red.png", colour=RED)
    assert load_image(tmp_path / "red.png", channels=1).unique().tolist() == [76]
    with pytest.raises(InvalidArgumentError):
        load_image(tmp_path / "red.png", channels=2)


def test_palette_with_and_without_transparency(tmp_path):
    img = Image.new("P", (4, 2))
    img.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    img.putdata([0, 1, 0, 1, 1, 0, 1, 0])
    img.save(tmp_path / "p.png")
    img.save(tmp_path / "pt.png", transparency=0)
    plain, transparent = (
        as_hwc(load_image(tmp_path / "p.png")),
        as_hwc(load_image(tmp_path / "pt.png")),
    )
    assert tuple(plain[0, 0]) == RED and tuple(plain[0, 1]) == BLUE
    assert tuple(transparent[0, 0]) == (255, 255, 255) and tuple(transparent[0, 1]) == BLUE


def test_alpha_is_composited_on_white(tmp_path):
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = [[0, 255, 128], [0, 255, 128]]
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    out = as_hwc(load_image(tmp_path / "rgba.png"))
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[0, 1]) == (200, 0, 0)
    assert np.abs(out[0, 2].astype(int) - (227, 127, 127)).max() <= 1  # half of each

    la = np.zeros((1, 2, 2), np.uint8)
    la[0, :, 1] = [0, 255]
    Image.fromarray(la).save(tmp_path / "la.png")
    assert load_image(tmp_path / "la.png", channels=1).flatten().tolist() == [255, 0]


def test_cmyk(tmp_path):
    img = Image.new("CMYK", (2, 1))
    img.putdata([(0, 0, 0, 0), (0, 255, 255, 0)])
    img.save(tmp_path / "cmyk.tif")
    out = as_hwc(load_image(tmp_path / "cmyk.tif"))
    assert tuple(out[0, 0]) == (255, 255, 255) and tuple(out[0, 1]) == RED
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")
    assert np.abs(as_hwc(load_image(tmp_path / "cmyk.jpg")).astype(int) - RED).max() < 8


SIXTEEN_BIT = [0, 257, 32896, 65535]  # -> 0, 1, 128, 255 when scaled, not clipped


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_sixteen_bit_is_scaled(tmp_path, mode):
    img = Image.new(mode, (4, 1))
    img.putdata(SIXTEEN_BIT)
    path = tmp_path / ("x.png" if mode == "I;16" else "x.tif")
    img.save(path)
    with Image.open(path) as check:
        assert check.mode == mode
    assert load_image(path, channels=1).flatten().tolist() == [0, 1, 128, 255]
    assert load_image(path).shape == (3, 1, 4)


def test_float_image(tmp_path):
    Image.fromarray(np.array([[0.0, 0.5, 1.0]], np.float32)).save(tmp_path / "unit.tif")
    assert load_image(tmp_path / "unit.tif", channels=1).flatten().tolist() == [0, 128, 255]
    Image.fromarray(np.array([[0.0, 100.0, 255.0]], np.float32)).save(tmp_path / "byte.tif")
    assert load_image(tmp_path / "byte.tif", channels=1).flatten().tolist() == [0, 100, 255]


def test_exif_orientation_is_applied(tmp_path):
    pixels = np.zeros((8, 16, 3), np.uint8)
    pixels[:, :8] = RED  # left half red, right half blue, 16 wide and 8 high
    pixels[:, 8:] = BLUE
    exif = Image.Exif()
    exif[0x0112] = 6  # stored sideways: display after rotating 90 degrees clockwise
    Image.fromarray(pixels).save(tmp_path / "photo.jpg", exif=exif, quality=95)
    out = as_hwc(load_image(tmp_path / "photo.jpg")).astype(int)
    assert out.shape == (16, 8, 3)
    assert np.abs(out[2, 4] - RED).max() < 40  # left half went to the top
    assert np.abs(out[13, 4] - BLUE).max() < 40


def test_a_colour_profile_is_applied_and_srgb_or_a_broken_one_left_alone(tmp_path):
    from tests.iccprofiles import SRGB_BLUE, SRGB_GREEN, SRGB_RED, rgb_profile

    def swapped(name: str) -> bytes:  # red and green swapped: a change no rounding can fake
        return rgb_profile(SRGB_GREEN, SRGB_RED, SRGB_BLUE, name=name)

    cases = {
        "swapped": swapped("swapped red green"),
        "linear": swapped("sRGB-elle-V4-g10"),  # sRGB's primaries, but not its tone curve
        "srgb": swapped("sRGB IEC61966-2.1"),  # taken for sRGB by its name, as viewers do
        "broken": b"\x00garbage" * 20,
    }
    for name, profile in cases.items():
        Image.fromarray(pattern(16, 12)).save(tmp_path / f"{name}.png", icc_profile=profile)
    # Red in a file whose profile swaps red and green is green as a viewer shows it (not a
    # rounding: the networks would otherwise learn the file's numbers as sRGB).
    for name in ("swapped", "linear"):
        seen = as_hwc(load_image(tmp_path / f"{name}.png")).astype(int)[..., [1, 0, 2]]
        assert np.abs(seen - pattern(16, 12)).max() <= 2, name
    for name in ("srgb", "broken"):  # nothing to do, or nothing to trust: the numbers as stored
        np.testing.assert_array_equal(as_hwc(load_image(tmp_path / f"{name}.png")), pattern(16, 12))


def test_a_colour_profile_is_applied_to_see_through_and_palette_pictures(tmp_path):
    from tests.iccprofiles import swapped_profile

    profile = swapped_profile()
    Image.new("RGBA", (8, 8), (255, 0, 0, 90)).save(tmp_path / "alpha.png", icc_profile=profile)
    keyed = np.zeros((2, 4, 3), np.uint8)
    keyed[0], keyed[1] = RED, (0, 0, 255)  # red rows see-through by the PNG's colour key
    Image.fromarray(keyed).save(tmp_path / "keyed.png", icc_profile=profile, transparency=RED)
    Image.fromarray(keyed).convert("P").save(tmp_path / "palette.png", icc_profile=profile)
    assert load_image(tmp_path / "alpha.png")[:, 0, 0].tolist() == [165, 255, 165]  # on white
    assert as_hwc(load_image(tmp_path / "keyed.png"))[:, 0].tolist() == [[255, 255, 255],
                                                                          [0, 0, 255]]  # fmt: skip
    assert as_hwc(load_image(tmp_path / "palette.png"))[:, 0].tolist() == [[0, 255, 0],
                                                                            [0, 0, 255]]  # fmt: skip


def test_corrupt_truncated_and_missing_files(tmp_path):
    (tmp_path / "noise.png").write_bytes(b"\x00garbage" * 20)
    (tmp_path / "text.jpg").write_text("not an image\nsecond line\n")
    Image.fromarray(pattern(64, 64)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    Image.fromarray(pattern(64, 64)).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    for name in ["noise.png", "text.jpg", "cut.png", "cut.jpg", "missing.png"]:
        with pytest.raises(ImageDecodeError) as info:
            load_image(tmp_path / name)
        message = str(info.value)
        assert name in message and "\n" not in message


# -- UnalignedDataset ----------------------------------------------------------------------------
def unaligned(root: Path, n_a: int, n_b: int, size=(16, 12)) -> Path:
    for domain, count, colour in (("A", n_a, RED), ("B", n_b, BLUE)):
        for i in range(count):
            solid(root / f"train{domain}" / f"{i:02d}.png", size, colour)
    return root


def test_unaligned_missing_and_empty_folders(tmp_path):
    with pytest.raises(DataError) as info:
        UnalignedDataset(tmp_path)
    message = str(info.value)
    assert "trainA" in message and "trainB" in message and "\n" not in message
    (tmp_path / "trainA").mkdir()
    (tmp_path / "trainB").mkdir()
    solid(tmp_path / "trainA" / "x.png")
    (tmp_path / "trainB" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match=r"trainB.*holds no images"):
        UnalignedDataset(tmp_path)
    for name in ("a.heic", "b.HEIC"):  # what phones give: named, with the way out
        (tmp_path / "trainB" / name).write_bytes(b"x")
    with pytest.raises(
        DataError, match=r"holds \.heic \(2\), \.txt \(1\); convert the \.heic files"
    ):
        UnalignedDataset(tmp_path)


def test_unaligned_length_max_images_and_items(tmp_path):
    root = unaligned(tmp_path, 3, 5)
    data = UnalignedDataset(root)
    assert len(data) == 5
    item = data[0]
    assert item["A"].shape == (3, 12, 16) and item["A"].dtype == torch.uint8
    assert tuple(item["A"][:, 0, 0].tolist()) == RED and tuple(item["B"][:, 0, 0].tolist()) == BLUE
    assert item["A_path"].endswith("00.png") and item["skipped"] == []
    # indices past the end are later epochs; A cycles through its list
    assert data[5 + 4]["A_path"] == data[4]["A_path"] == str(data.paths_a[1])
    capped = UnalignedDataset(root, max_images=2)
    assert len(capped) == 2 and [p.name for p in capped.paths_b] == ["00.png", "01.png"]
    gray = UnalignedDataset(root, channels=(1, 3))[0]
    assert gray["A"].shape == (1, 12, 16) and gray["B"].shape == (3, 12, 16)
    with pytest.raises(InvalidArgumentError):
        UnalignedDataset(root, max_images=0)


def test_unaligned_partner_is_deterministic(tmp_path):
    root = unaligned(tmp_path, 4, 6)
    data, again, other = (
        UnalignedDataset(root),
        UnalignedDataset(root),
        UnalignedDataset(root, seed=1),
    )
    steps = range(4 * len(data))
    partners = [data.partner_index(i) for i in steps]
    assert [again[i]["B_path"] for i in steps] == [str(data.paths_b[p]) for p in partners]
    assert partners != [other.partner_index(i) for i in steps]
    epoch0, epoch1 = partners[: len(data)], partners[len(data) : 2 * len(data)]
    assert epoch0 != epoch1
    assert set(partners) == set(range(6))


def test_unaligned_pairs_do_not_depend_on_workers(tmp_path):
    data = UnalignedDataset(unaligned(tmp_path, 3, 4))

    def pairs(workers: int) -> list[tuple[str, str]]:
        loader = torch.utils.data.DataLoader(
            data, batch_size=2, num_workers=workers, collate_fn=collate, sampler=range(3, 11)
        )
        return [
            pair for batch in loader for pair in zip(batch["A_path"], batch["B_path"], strict=True)
        ]

    assert pairs(0) == pairs(2)


def test_unaligned_corrupt_file_is_skipped_not_raised(tmp_path):
    root = unaligned(tmp_path, 2, 2)
    (root / "trainA" / "01.png").write_bytes(b"broken")
    item = UnalignedDataset(root)[1]
    assert item["A"] is None and item["B"] is not None
    [(path, reason)] = item["skipped"]
    assert path.endswith("01.png") and "01.png" in reason


# -- AlignedDataset ------------------------------------------------------------------------------
def side_by_side(path: Path, size=(8, 6)) -> Path:
    img = Image.new("RGB", (2 * size[0], size[1]), RED)
    img.paste(BLUE, (size[0], 0, 2 * size[0], size[1]))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def test_aligned_side_by_side_and_direction(tmp_path):
    for i in range(3):
        side_by_side(tmp_path / "train" / f"{i}.png")
    data = AlignedDataset(tmp_path)
    assert len(data) == 3 and data.side_by_side
    item = data[4]  # wraps around
    assert item["A"].shape == item["B"].shape == (3, 6, 8)
    assert (item["A"][0] == 255).all() and (item["A"][2] == 0).all()  # exactly the left half
    assert tuple(item["A"][:, 0, 0].tolist()) == RED and tuple(item["B"][:, 0, 0].tolist()) == BLUE
    swapped = AlignedDataset(tmp_path, direction="BtoA")[1]
    assert tuple(swapped["A"][:, 0, 0].tolist()) == BLUE
    assert len(AlignedDataset(tmp_path, max_images=2)) == 2
    with pytest.raises(InvalidArgumentError):
        AlignedDataset(tmp_path, direction="sideways")


def test_aligned_two_folders_match_by_stem(tmp_path):
    solid(tmp_path / "trainA" / "x.png", colour=RED)
    solid(tmp_path / "trainB" / "x.bmp", colour=BLUE)
    solid(tmp_path / "trainA" / "sub" / "y.png", colour=RED)
    solid(tmp_path / "trainB" / "sub" / "y.jpg", colour=BLUE)
    data = AlignedDataset(tmp_path)
    assert not data.side_by_side and len(data) == 2
    assert [(a.name, b.name) for a, b in data.pairs] == [("y.png", "y.jpg"), ("x.png", "x.bmp")]
    item = AlignedDataset(tmp_path, direction="BtoA")[1]
    assert item["A_path"].endswith("x.bmp") and tuple(item["A"][:, 0, 0].tolist()) == BLUE


def test_aligned_missing_partner_and_size_mismatch(tmp_path):
    solid(tmp_path / "trainA" / "x.png")
    solid(tmp_path / "trainB" / "x.png", size=(8, 8))
    solid(tmp_path / "trainA" / "lonely.png")
    with pytest.raises(DataError, match=r"lonely\.png has no partner"):
        AlignedDataset(tmp_path)
    (tmp_path / "trainA" / "lonely.png").unlink()
    item = AlignedDataset(tmp_path)[0]
    assert item["A"] is None and item["B"] is None
    [(path, reason)] = item["skipped"]
    assert path.endswith("x.png") and "same view" in reason and "16x12" in reason


def test_aligned_partners_of_one_shape_meet_at_the_larger_size(tmp_path):
    solid(tmp_path / "trainA" / "x.png", size=(8, 6), colour=RED)
    solid(tmp_path / "trainB" / "x.png", size=(16, 12), colour=BLUE)
    item = AlignedDataset(tmp_path)[0]
    assert item["A"].shape == item["B"].shape == (3, 12, 16) and not item.get("skipped")
    assert tuple(item["A"][:, 5, 7].tolist()) == RED


def test_plain_photos_in_the_side_by_side_layout_are_questioned(tmp_path):
    for i in range(3):
        solid(tmp_path / "train" / f"{i}.png", size=(12, 12))
    with pytest.warns(I2IWarning, match=r"0\.png is 12x12.*left half -> right half.*trainA/"):
        AlignedDataset(tmp_path)
    side_by_side(tmp_path / "test" / "0.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AlignedDataset(tmp_path, split="test")  # a real A|B pair: nothing to say


def test_aligned_missing_layout(tmp_path):
    with pytest.raises(DataError) as info:
        AlignedDataset(tmp_path, split="val")
    assert all(name in str(info.value) for name in ("val", "valA", "valB"))


# -- EpochSampler --------------------------------------------------------------------------------
def test_epoch_sampler_is_deterministic_and_encodes_epoch():
    sampler = EpochSampler(10, seed=3)
    sampler.set_epoch(2)
    first = list(sampler)
    assert sorted(first) == list(range(20, 30)) and len(sampler) == 10
    assert first == list(sampler)
    again = EpochSampler(10, seed=3)
    again.set_epoch(2)
    assert list(again) == first
    sampler.set_epoch(3)
    assert [i - 30 for i in sampler] != [i - 20 for i in first]
    ordered = EpochSampler(5, shuffle=False)
    ordered.set_epoch(1)
    assert list(ordered) == [5, 6, 7, 8, 9]


def test_epoch_sampler_leaves_global_rng_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    sampler = EpochSampler(50)
    sampler.set_epoch(1)
    list(sampler)
    assert torch.equal(torch.rand(3), expected)


def test_epoch_sampler_shards_are_padded_and_cover_everything():
    shards = []
    for rank in range(3):
        sampler = EpochSampler(10, seed=1, rank=rank, world_size=3)
        sampler.set_epoch(0)
        shards.append(list(sampler))
    assert [len(s) for s in shards] == [4, 4, 4]
    assert set().union(*shards) == set(range(10))
    tiny = EpochSampler(2, rank=3, world_size=5)
    tiny.set_epoch(0)
    assert len(list(tiny)) == 1
    with pytest.raises(InvalidArgumentError):
        EpochSampler(10, rank=2, world_size=2)


def test_epoch_sampler_start_resumes_mid_epoch():
    sampler = EpochSampler(10, seed=5, rank=1, world_size=2)
    sampler.set_epoch(4)
    full = list(sampler)
    sampler.set_epoch(4, start=3)
    assert list(sampler) == full[3:] and len(sampler) == 2
    sampler.set_epoch(4, start=99)
    assert list(sampler) == [] and len(sampler) == 0


# -- collate and conversions ---------------------------------------------------------------------
def item(a, b, name="x") -> dict:
    return {"A": a, "B": b, "A_path": f"{name}A", "B_path": f"{name}B", "skipped": []}


def test_collate_drops_bad_items_and_resizes():
    big = torch.full((3, 8, 12), 200, dtype=torch.uint8)
    small = torch.full((3, 4, 6), 100, dtype=torch.uint8)
    bad = item(None, small, "bad")
    bad["skipped"] = [("badA", "cannot read image badA: broken")]
    batch = collate([item(big, small, "one"), bad, item(small, big, "two")])
    assert batch["A"].shape == (2, 3, 8, 12) and batch["A"].dtype == torch.uint8
    assert batch["B"].shape == (2, 3, 4, 6)
    assert batch["A"][1].unique().tolist() == [100] and batch["B"][1].unique().tolist() == [200]
    assert batch["A_path"] == ["oneA", "twoA"] and batch["B_path"] == ["oneB", "twoB"]
    assert batch["skipped"] == [("badA", "cannot read image badA: broken")]
    empty = collate([bad])
    assert empty["A"] is None and empty["B"] is None and empty["A_path"] == []
    assert len(empty["skipped"]) == 1


def test_float_conversions_round_trip():
    x = torch.arange(256, dtype=torch.uint8).reshape(1, 16, 16)
    f = to_float(x)
    assert f.dtype == torch.float32 and f.min() == -1 and f.max() == 1
    assert torch.equal(to_uint8(f), x)
    assert to_uint8(torch.tensor([-3.0, 3.0])).tolist() == [0, 255]
    with pytest.raises(InvalidArgumentError):
        to_float(f)


def test_save_image_uint8_and_float(tmp_path):
    pixels = torch.from_numpy(pattern()).permute(2, 0, 1).contiguous()
    save_image(pixels, tmp_path / "out" / "u8.png")
    assert torch.equal(load_image(tmp_path / "out" / "u8.png"), pixels)
    save_image(to_float(pixels), tmp_path / "f.png")
    assert torch.equal(load_image(tmp_path / "f.png"), pixels)
    save_image(pixels[:1], tmp_path / "gray.jpg")
    assert load_image(tmp_path / "gray.jpg", channels=1).shape == (1, 12, 16)
    with pytest.raises(InvalidArgumentError):
        save_image(pixels[None], tmp_path / "batch.png")
    with pytest.raises(InvalidArgumentError, match=r"Pillow writes no \.xyz files"):
        save_image(pixels, tmp_path / "odd.xyz")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.png", "gray.jpg", "out"]


def test_big_photos_are_decoded_no_bigger_than_training_needs(tmp_path):
    """A whole factor that keeps the shorter side at least twice the load size (JPEG's DCT
    scaling, then a box filter); smaller images are untouched."""
    import i2i
    from i2i.data.images import load_image
    from i2i.train.trainer import Trainer

    rng = np.random.default_rng(0)
    photo = Image.fromarray((rng.random((900, 1200, 3)) * 255).astype(np.uint8))
    for name in ("big.jpg", "big.png"):
        photo.save(tmp_path / name)
        # JPEG: decoded at 1/4 scale; PNG: a box filter of factor 4 (900 // 200)
        assert tuple(load_image(tmp_path / name, 3, min_side=100).shape) == (3, 225, 300)
        assert tuple(load_image(tmp_path / name, 3, min_side=500).shape) == (3, 900, 1200)
    for split in ("trainA", "trainB"):
        (tmp_path / "data" / split).mkdir(parents=True)
        photo.save(tmp_path / "data" / split / "big.jpg")
    task = i2i.create_task(
        "cyclegan", data=str(tmp_path / "data"), out=str(tmp_path / "run"), load_size=36,
        crop_size=32, gen="resnet6", ngf=8, ndf=8, workers=0,
    )  # fmt: skip
    trainer = Trainer(task)
    try:
        assert trainer.dataset.min_side == 36
        assert tuple(trainer.dataset[0]["A"].shape) == (3, 113, 150)  # JPEG at 1/8: >= 72
    finally:
        trainer.folder.release(failed=True)


def test_an_unreadable_file_is_named_once(tmp_path):
    from i2i.data.images import load_image

    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(ImageDecodeError) as info:
        load_image(tmp_path / "broken.jpg")
    assert str(info.value).count("broken.jpg") == 1


def test_preprocess_none_with_images_of_two_sizes_is_told_before_training(tmp_path):
    import i2i
    from i2i.train.trainer import Trainer

    for split, size in (("trainA", (48, 48)), ("trainB", (48, 48))):
        (tmp_path / "data" / split).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", size, (i * 40, 90, 200)).save(tmp_path / "data" / split / f"{i}.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 48x64, upright 64x48: its header size is the upright one
    Image.new("RGB", (48, 64)).save(tmp_path / "data" / "trainB" / "3.jpg", exif=exif)
    options = {"gen": "resnet6", "ngf": 8, "ndf": 8, "workers": 0, "preprocess": "none"}
    task = i2i.create_task(
        "cyclegan", data=str(tmp_path / "data"), out=str(tmp_path / "r"), **options
    )
    with pytest.raises(DataError, match=r"0.png is 48x48 but .*3.jpg is 64x48; resize them"):
        Trainer(task)
    assert not (tmp_path / "r").exists()


def test_thumbnails_and_banners_among_the_training_images_are_told_before_training(tmp_path):
    import i2i
    from i2i.train.trainer import Trainer

    sizes = {"trainA": [(48, 48), (48, 48), (8, 8)], "trainB": [(48, 40), (200, 40), (48, 48)]}
    for split, listed in sizes.items():
        (tmp_path / "data" / split).mkdir(parents=True)
        for i, size in enumerate(listed):
            Image.new("RGB", size, (i * 40, 90, 200)).save(tmp_path / "data" / split / f"{i}.png")

    def told(**options) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            task = i2i.create_task(
                "cyclegan", data=str(tmp_path / "data"), out=str(tmp_path / "r"), gen="resnet6",
                ngf=8, ndf=8, workers=0, crop_size=32, **options,
            )  # fmt: skip
            Trainer(task).folder.release(failed=True)
        return [str(w.message) for w in caught if issubclass(w.category, I2IWarning)]

    assert told(load_size=32) == [
        f"1 training image has one side over 4 times the other, which resizing squashes or cuts "
        f"to a sliver (e.g. {tmp_path / 'data' / 'trainB' / '1.png'}, 200x40); crop them, or "
        f"remove them"
    ]  # the 8x8 icon at 32 px: blown up 4 times, just within
    assert told(load_size=40)[0] == (
        f"1 training image is under 10 px on a side, which --load-size 40 blows up into a blur "
        f"(e.g. {tmp_path / 'data' / 'trainA' / '2.png'}, 8x8); remove them, or train at a "
        f"smaller --load-size"
    )


_FILE_SIZE_LIMITED = """
import resource, signal, sys
import torch
from PIL import Image
from i2i.core.files import atomic_write
from i2i.data import save_image

signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))
noise = torch.randint(0, 256, (3, 128, 128), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
folder = sys.argv[1]
for name, write in (
    ("saved.jpg", lambda path: save_image(noise, path)),
    ("grid.jpg", lambda path: atomic_write(path, lambda f: Image.fromarray(
        noise.permute(1, 2, 0).numpy()).save(f, format="JPEG", quality=95))),
):
    try:
        write(f"{folder}/{name}")
        print(name, "written")
    except OSError as error:
        print(name, "refused:", type(error).__name__)
"""


@pytest.mark.skipif(sys.platform != "linux", reason="a file size limit needs Linux")
def test_a_full_disk_leaves_no_cut_image_that_looks_finished(tmp_path):
    """Given a real file, Pillow's encoders write to its descriptor and drop a short write: a
    full disk left an 8 KB piece of a 17 KB JPEG that a rerun kept as finished."""
    done = subprocess.run(
        [sys.executable, "-c", _FILE_SIZE_LIMITED, str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "saved.jpg refused: OSError",
        "grid.jpg refused: WriteError",
    ]
    assert list(tmp_path.iterdir()) == []  # no image, no temp file


def test_a_rank_whose_first_batch_is_unreadable_steps_on_the_first_readable_item(tmp_path):
    """Under DDP every rank must step; one whose first batch was all unreadable files stopped
    the whole job, where one process skips them."""
    import i2i
    from i2i.train.trainer import Trainer

    for split in ("trainA", "trainB"):
        (tmp_path / "data" / split).mkdir(parents=True)
        for i in range(3):
            Image.new("RGB", (40, 40), (i * 40, 90, 200)).save(
                tmp_path / "data" / split / f"{i}.png"
            )
    task = i2i.create_task(
        "cyclegan", data=str(tmp_path / "data"), out=str(tmp_path / "r"), gen="resnet6", ngf=8,
        ndf=8, workers=0, load_size=40, crop_size=32,
    )  # fmt: skip
    trainer = Trainer(task)
    try:
        trainer.runtime.distributed = True  # as one rank of several
        said: list[str] = []
        broken = {"A": None, "B": None, "skipped": [("x.png", "x.png: cut short")]}
        batch = trainer.data.usable(broken, said.append)
        assert batch["A"].shape == (1, 3, 40, 40) and said == [
            "warning: skipping an unreadable file: x.png: cut short"
        ]
    finally:
        trainer.runtime.distributed = False
        trainer.folder.release(failed=True)
