from __future__ import annotations

import numpy as np
from PIL import Image

import i2i.toydata as toydata
from i2i.data import UnalignedDataset, find_images
from i2i.toydata import make_toy_pairs, make_toy_unpaired, toy_dataset_dir


def read(path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"), dtype=float)


def test_layout_sizes_and_loading(tmp_path):
    root = make_toy_unpaired(tmp_path / "toy", n_train=4, n_test=2, size=16)
    for folder, count in (("trainA", 4), ("trainB", 4), ("testA", 2), ("testB", 2)):
        images = find_images(root / folder)
        assert [p.name for p in images] == [f"{i:04d}.png" for i in range(count)]
        assert all(read(p).shape == (16, 16, 3) for p in images)
    assert len(UnalignedDataset(root, split="test")) == 2


def test_deterministic_from_seed_and_independent_of_counts(tmp_path):
    one = make_toy_unpaired(tmp_path / "one", n_train=3, n_test=1, size=24)
    two = make_toy_unpaired(tmp_path / "two", n_train=5, n_test=1, size=24)
    other = make_toy_unpaired(tmp_path / "other", n_train=3, n_test=1, size=24, seed=7)
    for rel in ["trainA/0002.png", "trainB/0000.png", "testB/0000.png"]:
        assert (one / rel).read_bytes() == (two / rel).read_bytes()
        assert (one / rel).read_bytes() != (other / rel).read_bytes()
    assert (one / "trainA/0000.png").read_bytes() != (one / "trainA/0001.png").read_bytes()


def test_pairs_draw_one_scene_by_day_and_by_night(tmp_path):
    discs = make_toy_pairs(tmp_path / "day", tmp_path / "night", n=6, size=48)
    again = make_toy_pairs(tmp_path / "again", tmp_path / "again_night", n=6, size=48)
    assert discs == again and len(set(discs)) == 6
    assert all(0 <= disc.visible <= 1 for disc in discs)
    toy = make_toy_unpaired(tmp_path / "toy", n_train=6, n_test=6, size=48)
    unpaired = {p.read_bytes() for folder in toy.iterdir() for p in find_images(folder)}
    for i, disc in enumerate(discs):
        day, night = (read(tmp_path / side / f"{i:04d}.png") / 255 for side in ("day", "night"))
        for side in ("day", "night"):  # its own streams: no pair is a training or test image
            assert (tmp_path / side / f"{i:04d}.png").read_bytes() not in unpaired
        if disc.visible < 0.9:
            continue  # a ridge in front of the sun
        centre = int(disc.y * 48), int(disc.x * 48)
        r, g, b = day[centre]
        assert r > 0.9 and g > 0.7 and b < 0.5  # the yellow sun where the disc is
        assert night[centre].min() > 0.8  # the pale moon in the same place
        above = int((disc.y - 1.8 * disc.radius) * 48), centre[1]
        if above[0] >= 0:
            assert day[above].mean() > 0.5 and night[above].mean() < 0.5  # sky around it


def test_day_is_brighter_than_night(tmp_path):
    root = make_toy_unpaired(tmp_path, n_train=6, n_test=0, size=32)
    day = np.mean([read(p).mean() for p in find_images(root / "trainA")])
    night = np.mean([read(p).mean() for p in find_images(root / "trainB")])
    assert day > 2 * night


def test_cache_dir_is_generated_once_and_honours_i2i_home(tmp_path, monkeypatch):
    calls = []

    def small(root):
        calls.append(root)
        return make_toy_unpaired(root, n_train=2, n_test=1, size=16)

    monkeypatch.setattr(toydata, "make_toy_unpaired", small)
    monkeypatch.setenv("I2I_HOME", str(tmp_path / "home"))
    path = toy_dataset_dir()
    assert path == tmp_path / "home" / "toy"
    assert len(find_images(path / "trainA")) == 2
    assert toy_dataset_dir() == path and len(calls) == 1
    assert [p.name for p in (tmp_path / "home").iterdir()] == ["toy"]  # no temp leftovers


def test_cache_dir_replaces_an_unfinished_copy(tmp_path, monkeypatch):
    monkeypatch.setattr(
        toydata,
        "make_toy_unpaired",
        lambda root: make_toy_unpaired(root, n_train=1, n_test=1, size=16),
    )
    monkeypatch.setenv("I2I_HOME", str(tmp_path))
    stale = tmp_path / "toy" / "trainA"
    stale.mkdir(parents=True)
    (stale / "junk.png").write_bytes(b"half written")
    path = toy_dataset_dir()
    assert [p.name for p in find_images(path / "trainA")] == ["0000.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["toy"]
