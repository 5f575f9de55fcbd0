"""The known-answer suite of benchmarks/quality.py: looks that are fixed functions of the image,
data sets whose truth is exactly the look of the input, the suite's jobs and its table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"
sys.path.insert(0, str(ROOT / "benchmarks"))

import looks  # noqa: E402
import quality  # noqa: E402
import quality_data  # noqa: E402
import quality_report  # noqa: E402

needs_photos = pytest.mark.skipif(
    not (SHARED / "monet2photo" / "testB").is_dir(), reason=f"no photos at {SHARED}"
)


def _photo(seed: int = 0, size: int = 40) -> torch.Tensor:
    """A smooth random picture with edges: enough structure for every look to act on."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.rand((1, 3, 5, 5), generator=g)
    image = torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear")[0]
    image[:, size // 3 :, : size // 2] *= 0.5
    return image.clamp(0, 1)


def _detailed_photo(seed: int = 0, size: int = 40) -> torch.Tensor:
    """With stripes one pixel high: fine detail for a flaw to take away."""
    image = _photo(seed, size)
    image[:, ::2] = 1 - image[:, ::2]
    return image


@pytest.mark.parametrize("name", [*looks.LOOKS, *looks.FLAWS])
def test_every_look_is_a_fixed_function_of_the_image(name):
    x = _photo() if name in looks.LOOKS else _detailed_photo()
    y = looks.apply_look(name, x)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert float(y.min()) >= 0 and float(y.max()) <= 1
    assert torch.equal(y, looks.apply_look(name, x.clone()))  # the same answer every time
    assert float((y - x).abs().mean()) > 0.01  # it changes the picture
    other = looks.apply_look(
        name, _photo(seed=1) if name in looks.LOOKS else _detailed_photo(seed=1)
    )
    assert not torch.equal(y, other)


def test_the_looks_are_of_different_kinds():
    """Global looks change a flat grey image; the local one only sharpens edges (plus grain);
    the graduated filter depends on the position; the autumn look leaves non-green hues."""
    grey = torch.full((3, 32, 32), 0.5)
    crisp = looks.crisp(grey)
    assert float((crisp - grey).abs().mean()) < 0.02  # nothing to sharpen: grain only
    graduated = looks.graduated(grey)
    assert float(graduated[:, 0].mean()) < float(graduated[:, 20].mean())  # darker at the top
    assert float((graduated[:, 16, 16] - 0.5).abs().max()) < 0.02  # the centre is untouched
    red = torch.tensor([0.8, 0.2, 0.2]).view(3, 1, 1).expand(3, 8, 8)
    green = torch.tensor([0.2, 0.7, 0.2]).view(3, 1, 1).expand(3, 8, 8)
    assert float((looks.autumn(red) - red).abs().max()) < 0.1
    autumn_green = looks.autumn(green)
    assert float(autumn_green[0].mean()) > float(autumn_green[1].mean())  # green turned warm
    dusk = looks.dusk(_photo())
    assert float(dusk.mean()) < float(_photo().mean())


def test_the_held_out_looks_do_what_they_say():
    """``soft`` leaves a flat picture flat (only the lift) and lowers edge contrast; ``sepia``
    drops the colour for warm tones that depend on brightness only; ``teal`` moves a blue
    towards teal and an orange-ish red towards orange, and leaves grey alone."""
    grey = torch.full((3, 32, 32), 0.5)
    assert float((looks.soft(grey) - 0.52).abs().max()) < 0.01
    photo = _photo()
    edges = (photo[:, :, 1:] - photo[:, :, :-1]).abs().mean()
    softened = looks.soft(photo)
    assert float((softened[:, :, 1:] - softened[:, :, :-1]).abs().mean()) < float(edges)
    toned = looks.sepia(photo)
    assert bool((toned[0] >= toned[1]).all() and (toned[1] >= toned[2]).all())  # warm
    same_brightness = torch.tensor([[0.7, 0.3, 0.3], [0.3, 0.5, 0.4]])  # equal luma, other hue
    a, b = (looks.sepia(c.view(3, 1, 1).expand(3, 4, 4)) for c in same_brightness)
    assert float((a - b).abs().max()) < 0.02
    blue = torch.tensor([0.2, 0.3, 0.8]).view(3, 1, 1).expand(3, 4, 4)
    graded = looks.teal(blue)
    assert float(graded[1].mean() - blue[1].mean()) > 0.03  # blue gains green: teal
    assert float((looks.teal(grey) - grey).abs().max()) < 1e-4


def test_the_second_held_out_looks_do_what_they_say():
    """``hue`` turns red towards amber and leaves grey; ``ink`` leaves a flat picture alone and
    darkens edges; ``haze`` veils the top more than the bottom; ``infrared`` turns green red
    and leaves grey."""
    grey = torch.full((3, 16, 16), 0.5)
    red = torch.tensor([0.8, 0.2, 0.2]).view(3, 1, 1).expand(3, 4, 4)
    turned = looks.hue(red)
    assert float(turned[1].mean()) > 0.4 and float(turned[2].mean()) < 0.25  # amber
    assert float((looks.hue(grey) - grey).abs().max()) < 1e-4
    assert float((looks.ink(grey) - grey).abs().max()) < 1e-4
    step = grey.clone()
    step[:, :, 8:] = 0.9
    inked = looks.ink(step)
    assert float(inked[:, :, 7:9].mean()) < float(step[:, :, 7:9].mean()) - 0.1  # an outline
    assert float((inked[:, :, :3] - step[:, :, :3]).abs().max()) < 1e-3  # flat: untouched
    black = torch.zeros((3, 32, 32))
    hazed = looks.haze(black)
    assert float(hazed[:, 0].mean()) > float(hazed[:, -1].mean()) + 0.25
    green = torch.tensor([0.2, 0.6, 0.2]).view(3, 1, 1).expand(3, 4, 4)
    false_colour = looks.infrared(green)
    assert float(false_colour[0].mean()) > float(false_colour[1].mean()) + 0.2
    assert float((looks.infrared(grey) - grey).abs().max()) < 1e-5


def test_unknown_look_is_named():
    with pytest.raises(KeyError, match="the looks are film"):
        looks.apply_look("lomo", _photo())


@pytest.mark.slow
@needs_photos
@pytest.mark.parametrize("pair", ["cnn", "blur"])
def test_known_answer_data_holds_the_truth_of_each_input(pair, tmp_path):
    """A look is on the B side and its truth is the look of the input; a flaw is on the A side
    and its truth is the clean photo."""
    size = 16
    data = quality_data.dataset(pair, SHARED, tmp_path, size)
    split = quality_data.photo_split(SHARED)
    names = [p.name for p in quality_data.images_in(data / "testA")]
    assert names == [p.name for p in quality_data.images_in(data / "testB")]
    assert len(names) == quality_data.PHOTO_SPLIT["test"]
    changed_side = "A" if pair in looks.FLAWS else "B"
    for folder, photos in (("trainA", "A"), ("trainB", "B"), ("testA", "test"), ("testB", "test")):
        first = quality_data.images_in(data / folder)[0]
        photo = quality_data.read_photo(
            next(p for p in split[photos] if p.stem == first.stem), size
        )
        if folder.endswith(changed_side):
            photo = looks.apply_look(pair, photo)
        got = quality_data.load_folder(data / folder)[0]
        torch.testing.assert_close(got, (photo * 255).round() / 127.5 - 1, atol=1e-6, rtol=0)
    # A and B are disjoint photos: unpaired.
    a = {p.stem for p in quality_data.images_in(data / "trainA")}
    b = {p.stem for p in quality_data.images_in(data / "trainB")}
    assert not a & b and len(a) == len(b) == 300
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["version"] == quality_data.DATA_VERSION and manifest["size"] == size


def test_the_flaws_remove_what_a_network_must_put_back():
    """Noise is new in every pixel and seeded by the image; blur and JPEG take fine detail
    away; gray takes the colour."""
    x = _detailed_photo(size=64)
    noisy = looks.noise(x)
    assert 0.05 < float((noisy - x).std()) < 0.1 and torch.equal(noisy, looks.noise(x.clone()))
    for flaw, kept in ((looks.blur, 0.5), (looks.jpeg, 0.9)):
        rows = flaw(x).diff(dim=1).abs().mean()
        assert float(rows) < kept * float(x.diff(dim=1).abs().mean())
    grey = looks.gray(x)
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])


@pytest.mark.slow
@needs_photos
@pytest.mark.parametrize("pair", list(quality_data.PAINTINGS))
def test_painting_pairs_hold_out_paintings_and_photos(pair, tmp_path):
    """Paintings (or prints) against the A photos, unpaired, with both held out for KID."""
    folder, held_out = quality_data.PAINTINGS[pair]
    if not (SHARED / folder).is_dir():
        pytest.skip(f"no paintings at {SHARED / folder}")
    data = quality_data.dataset(pair, SHARED, tmp_path, 16)
    stems = {d: {p.stem for p in quality_data.images_in(data / d)} for d in
             ("trainA", "trainB", "testA", "testB")}  # fmt: skip
    paintings = {p.stem for p in quality_data.images_in(SHARED / folder)}
    assert len(stems["testA"]) == held_out and not stems["trainA"] & stems["testA"]
    assert stems["trainA"] | stems["testA"] == paintings
    split = quality_data.photo_split(SHARED)
    assert stems["trainB"] == {p.stem for p in split["A"]}
    assert stems["testB"] == {p.stem for p in split["test"]}


def test_a_suite_names_its_painting_pairs(tmp_path):
    """monet<->photo by default; a suite may list ukiyo-e too, or none; others are refused."""
    suite = tmp_path / "suite.json"
    for paintings, want in ((None, ["monet2photo"]), ([], []),
                            (["monet2photo", "ukiyoe2photo"], ["monet2photo", "ukiyoe2photo"])):  # fmt: skip
        spec = {"looks": ["film"], "rows": [{"name": "a"}]}
        suite.write_text(json.dumps(spec | ({} if paintings is None else {"paintings": paintings})))
        _, jobs = quality.suite_jobs(quality.parse_args(["--suite", str(suite)]))
        assert [j["name"] for j in jobs if j["row"] == "a"] == [
            f"a.{pair}.s0" for pair in ["film", *want]
        ]
    suite.write_text(
        json.dumps({"looks": ["film"], "paintings": ["vangogh"], "rows": [{"name": "a"}]})
    )
    with pytest.raises(
        quality_data.BenchmarkError, match="'paintings' takes a list of monet2photo"
    ):
        quality.suite_jobs(quality.parse_args(["--suite", str(suite)]))
    for bad in (["x"], [["monet2photo"]], [""], "monet2photo", {"a": 1}):
        suite.write_text(json.dumps({"looks": ["film"], "paintings": bad, "rows": [{"name": "a"}]}))
        with pytest.raises(quality_data.BenchmarkError, match="'paintings' takes a list"):
            quality.suite_jobs(quality.parse_args(["--suite", str(suite)]))
    # A pair named twice runs once (two runs of one name would share a folder).
    twice = {"looks": ["film", "film"], "paintings": ["monet2photo"] * 2, "rows": [{"name": "a"}]}
    suite.write_text(json.dumps(twice))
    _, jobs = quality.suite_jobs(quality.parse_args(["--suite", str(suite)]))
    assert [j["name"] for j in jobs] == [
        "identity.film",
        "identity.monet2photo",
        "a.film.s0",
        "a.monet2photo.s0",
    ]


def test_every_painting_pair_gets_kid_columns_of_its_own():
    """monet<->photo's columns always stand; ukiyo-e's come in where it has records."""

    def rec(row, pair, task, **kids):
        return {"row": row, "name": f"{row}.{pair}.s0", "pair": pair, "seed": 0, "steps": 1000,
                "task": task} | kids  # fmt: skip

    film = rec("r", "film", "cyclegan", psnr_vs_identity=2.0)
    monet = rec("r", "monet2photo", "cyclegan", kid_AtoB=0.031, kid_BtoA=0.041)
    ukiyoe = rec("r", "ukiyoe2photo", "cyclegan", kid_AtoB=0.052, kid_BtoA=0.063)
    identity = rec("identity", "ukiyoe2photo", "identity", kid_AtoB_identity=0.09,
                   kid_BtoA_identity=0.08)  # fmt: skip
    lines = quality_report.suite_table([identity, film, monet, ukiyoe], ["film"]).splitlines()
    assert lines[0].endswith("| KID x10³ monet→photo | photo→monet | ukiyoe→photo | photo→ukiyoe |")
    assert "| - | - | 90.0 | 80.0 |" in lines[2]
    assert "| r | 1000 | 1 | +2.00 | **+2.00** | +2.00 | 31.0 | 41.0 | 52.0 | 63.0 |" in lines[3]
    # Without ukiyo-e's records the table is as it always was.
    lines = quality_report.suite_table([film, monet], ["film"]).splitlines()
    assert lines[0].endswith("| KID x10³ monet→photo | photo→monet |")
    # A ukiyo-e-only row: its seeds come from its KID records.
    [entry] = quality_report.suite_summary([ukiyoe])
    assert entry["seeds"] == "1" and entry["kid"] == {
        "ukiyoe2photo": {"AtoB": 0.052, "BtoA": 0.063}
    }
    grid = quality_report.grid_table([ukiyoe | {"it_per_s": 2.0}])
    assert (
        "| r.ukiyoe2photo.s0 | ukiyoe2photo | paper defaults | 52.0 | 63.0 | 1000 | 2.0 |" in grid
    )
    assert quality_report.caption(ukiyoe).startswith(
        "r.ukiyoe2photo.s0: KID x1e3 ukiyoe->photo 52.0"
    )
    # A bridge model scored at one and at five predictions: two rows that say which is which.
    bridge = [ukiyoe | {"task": "unsb", "sample_steps": n, "kid_BtoA": None} for n in (1, 5)]
    grid = quality_report.grid_table(bridge)
    assert "| r.ukiyoe2photo.s0 (1 prediction) | ukiyoe2photo |" in grid
    assert "| r.ukiyoe2photo.s0 (5 predictions) | ukiyoe2photo |" in grid
    # A record written by hand (a run scored one way only) lacks the other KID: a dash.
    one_way = {k: v for k, v in ukiyoe.items() if k != "kid_BtoA"}
    assert "| paper defaults | 52.0 | - | 1000 |" in quality_report.grid_table([one_way])
    assert quality_report.caption(one_way).endswith("photo->ukiyoe -, 1000 steps")


def test_suite_jobs_cover_rows_looks_and_seeds(tmp_path):
    suite = tmp_path / "suite.json"
    suite.write_text(
        json.dumps(
            {
                "looks": ["film", "dusk"],
                "seeds": [0, 1],
                "rows": [{"name": "a", "task": "cyclegan"}, {"name": "b", "task": "cut"}],
            }
        )
    )
    args = quality.parse_args(["--suite", str(suite)])
    _spec, jobs = quality.suite_jobs(args)
    trained = [j for j in jobs if j["task"] != "identity"]
    assert len(trained) == 2 * 3 * 2  # rows x (looks + monet) x seeds
    assert {j["pair"] for j in jobs if j["task"] == "identity"} == {"film", "dusk", "monet2photo"}
    assert {(j["row"], j["pair"], j["seed"]) for j in trained} == {
        (r, p, s) for r in "ab" for p in ("film", "dusk", "monet2photo") for s in (0, 1)
    }
    args = quality.parse_args(["--suite", str(suite), "--rows", "b", "--looks", "dusk"])
    _, jobs = quality.suite_jobs(args)
    assert [j["name"] for j in jobs] == ["identity.dusk", "b.dusk.s0", "b.dusk.s1"]
    with pytest.raises(quality_data.BenchmarkError, match="no row"):
        quality.suite_jobs(quality.parse_args(["--suite", str(suite), "--rows", "c"]))
    # A row's own seeds and steps (a cheap baseline beside a recipe measured on every seed);
    # --seeds still overrides every row.
    spec = json.loads(suite.read_text())
    spec["rows"][1].update(seeds=[0], steps=[1000])
    suite.write_text(json.dumps(spec))
    _, jobs = quality.suite_jobs(quality.parse_args(["--suite", str(suite), "--looks", "dusk"]))
    assert [j["name"] for j in jobs] == ["identity.dusk", "a.dusk.s0", "a.dusk.s1", "b.dusk.s0"]
    assert jobs[-1]["steps"] == [1000]
    args = quality.parse_args(["--suite", str(suite), "--looks", "dusk", "--seeds", "2"])
    assert [j["name"] for j in quality.suite_jobs(args)[1]][1:] == ["a.dusk.s2", "b.dusk.s2"]
    # A row's wall-time budget and sampling step counts are checked before anything trains.
    for bad, message in (
        ({"sample_steps": []}, "sample_steps needs positive"),
        ({"sample_steps": [1, "x"]}, "sample_steps needs positive"),
        ({"sample_steps": "1,x"}, "sample_steps takes numbers"),
        ({"seconds": "abc"}, "seconds must be a positive number"),
        ({"seconds": -1}, "seconds must be a positive number"),
    ):
        spec["rows"][1] = {"name": "b", "task": "unsb", **bad}
        suite.write_text(json.dumps(spec))
        with pytest.raises(quality_data.BenchmarkError, match=f"row 'b': {message}"):
            quality.suite_jobs(quality.parse_args(["--suite", str(suite)]))
    spec["rows"][1] = {"name": "b", "task": "cut", "seeds": [0], "steps": [1000]}
    suite.write_text(json.dumps(spec))
    # monet <-> photo alone: a pair with KID columns, not a look.
    args = quality.parse_args(["--suite", str(suite), "--looks", "monet2photo", "--rows", "b"])
    spec, jobs = quality.suite_jobs(args)
    assert spec["looks"] == [] and [j["name"] for j in jobs] == [
        "identity.monet2photo",
        "b.monet2photo.s0",
    ]
    monet = {"row": "b", "name": "b.monet2photo.s0", "pair": "monet2photo", "task": "cut",
             "steps": 1000, "kid_AtoB": 0.0685, "kid_BtoA": None}  # fmt: skip
    identity = {"row": "identity", "name": "identity.monet2photo", "pair": "monet2photo",
                "task": "identity", "steps": 0, "kid_AtoB_identity": 0.075}  # fmt: skip
    quality.write_summary(tmp_path, [identity, monet], spec)
    table = (tmp_path / "table.md").read_text()
    assert "| b | 1000 | 1 | - | - | 68.5 | - |" in table and "| 75.0 |" in table


def test_suite_table_averages_seeds_and_looks():
    def rec(row, pair, seed, gain, steps=1000):
        return {"row": row, "name": f"{row}.{pair}.s{seed}", "pair": pair, "seed": seed,
                "steps": steps, "task": "cyclegan", "psnr_vs_identity": gain}  # fmt: skip

    records = [
        {
            "row": "identity",
            "name": "identity.film",
            "pair": "film",
            "task": "identity",
            "steps": 0,
            "identity_psnr": 21.0,
        },
        rec("r", "film", 0, 1.0),
        rec("r", "film", 1, 3.0),
        rec("r", "dusk", 0, -1.0),
        rec("r", "dusk", 1, -1.0),
        rec("r", "film", 0, 5.0, steps=5000),
    ]
    summary = quality_report.suite_summary(records)
    assert [(e["row"], e["steps"]) for e in summary] == [("r", 1000), ("r", 5000)]
    first = summary[0]
    assert first["looks"]["film"][:1] == (2.0,) and first["looks"]["film"][2] == 2
    assert first["mean"] == pytest.approx(0.5) and first["worst"] == pytest.approx(-1.0)
    table = quality_report.suite_table(records, ["film", "dusk"])
    assert "| r | 1000 | 2 | +2.00 ±1.41 | -1.00 ±0.00 | **+0.50** | -1.00 |" in table
    assert "| r | 5000 | 1 | +5.00 | - | **+5.00** | +5.00 |" in table
    assert "21.00 dB" in table


def test_the_reverse_direction_gets_a_table_of_its_own():
    """CycleGAN's runs are scored both ways; a one-way row (CUT) has no row in the second."""
    identity = {"row": "identity", "name": "identity.film", "pair": "film", "task": "identity",
                "steps": 0, "identity_psnr": 21.0}  # fmt: skip
    both = {"row": "cyc", "name": "cyc.film.s0", "pair": "film", "seed": 0, "steps": 1000,
            "task": "cyclegan", "psnr_vs_identity": 2.0, "psnr_vs_identity_BtoA": 1.5}  # fmt: skip
    one = {"row": "cut", "name": "cut.film.s0", "pair": "film", "seed": 0, "steps": 1000,
           "task": "cut", "psnr_vs_identity": 3.0}  # fmt: skip
    forward, _, reverse = quality_report.suite_table([identity, both, one], ["film"]).partition(
        "Taking the look off"
    )
    assert "| cyc | 1000 | 1 | +2.00 |" in forward and "| cut | 1000 | 1 | +3.00 |" in forward
    assert "| cyc | 1000 | 1 | +1.50 |" in reverse and "| cut |" not in reverse
    assert "Taking the look off" not in quality_report.suite_table([identity, one], ["film"])


def test_the_grid_table_shows_the_reverse_direction_where_there_is_one():
    base = {"pair": "film", "psnr": 23.0, "ssim": 0.9, "kid": 0.01, "steps": 10}
    both = {**base, "name": "cyc", "task": "cyclegan", "psnr_vs_identity": 2.0,
            "psnr_vs_identity_BtoA": -0.5}  # fmt: skip
    one = {**base, "name": "cut", "task": "cut", "psnr_vs_identity": 1.0}
    failed = {"name": "bad", "task": "cut", "pair": "film", "error": "unknown option"}
    lines = quality_report.grid_table([both, one, failed]).splitlines()
    assert lines[0].count("|") == lines[1].count("|") == 11
    assert lines[2].startswith("| cyc |") and lines[2].endswith("| -0.50 |")
    assert lines[3].startswith("| cut |") and lines[3].endswith("| - |")
    assert all(line.count("|") == 11 for line in lines[2:])


def test_tables_of_several_invocations_combine(tmp_path, capsys):
    """Seeds run by separate invocations (or machines) make one table: --table A B --out C."""
    files = []
    for seed, gain in ((0, 1.0), (1, 3.0)):
        record = {"bench": "quality", "row": "r", "name": f"r.film.s{seed}", "pair": "film",
                  "seed": seed, "steps": 1000, "task": "cyclegan", "psnr_vs_identity": gain,
                  # drawn on another machine: its strips are not here, the table still is
                  "sheet": str(tmp_path / "elsewhere" / "sheet_1000.png")}  # fmt: skip
        files.append(tmp_path / f"{seed}.jsonl")
        files[-1].write_text(json.dumps(record) + "\n")
    out = tmp_path / "combined"
    assert quality.main(["--table", *map(str, files), "--out", str(out)]) == 0
    line = "| r | 1000 | 2 | +2.00 ±1.41 | **+2.00** | +2.00 |"
    assert line in capsys.readouterr().out and line in (out / "table.md").read_text()
    assert len((out / "results.jsonl").read_text().splitlines()) == 2
    # A look with fewer seeds than another: the seeds column says so.
    dusk = json.loads(files[0].read_text()) | {"pair": "dusk", "name": "r.dusk.s0"}
    files.append(tmp_path / "dusk.jsonl")
    files[-1].write_text(json.dumps(dusk) + "\n")
    assert quality.main(["--table", *map(str, files)]) == 0
    assert "| r | 1000 | 1-2 | +2.00 ±1.41 | +1.00 | **+1.50** | +1.00 |" in capsys.readouterr().out
    # An --out folder stands for its results.jsonl; a path with neither is a one-line error.
    assert quality.main(["--table", str(out)]) == 0
    assert line in capsys.readouterr().out
    assert quality.main(["--table", str(tmp_path / "missing")]) == 2
    assert "--table: no results file" in capsys.readouterr().err
    # Whatever is not a quality.py record is a one-line error, not a traceback or an empty table.
    for name, content in (("text", b"not json\n"), ("png", b"\x89PNG\r\n"), ("list", b"[1]\n"),
                          ("other", b'{"bench": "quality_way"}\n'), ("empty", b"")):  # fmt: skip
        (tmp_path / name).write_bytes(content)
        assert quality.main(["--table", str(tmp_path / name)]) == 2
        assert capsys.readouterr().err.startswith("Error: --table: ")
    # --table OUT --out OUT rewrites the folder it reads, whole; --out a file is an error.
    before = (out / "results.jsonl").read_text()
    assert quality.main(["--table", str(out), "--out", str(out)]) == 0
    assert (out / "results.jsonl").read_text() == before
    assert quality.main(["--table", str(out), "--out", str(files[0])]) == 2
    assert "is a file" in capsys.readouterr().err


@pytest.mark.slow
@needs_photos
def test_suite_command_trains_resumes_and_tabulates(tmp_path):
    """The one command, end to end at toy scale: two milestones of one run (the second a
    resume of the first), the identity, a table and a sheet."""
    suite = tmp_path / "suite.json"
    suite.write_text(
        json.dumps(
            {
                "size": 32,
                "steps": [2, 4],
                "seeds": [0],
                "base": {"gen": "resnet6", "ngf": 8, "ndf": 8},
                "looks": ["dusk"],
                "paintings": [],
                "rows": [{"name": "quality", "task": "cyclegan", "options": {"recipe": "quality"}}],
            }
        )
    )
    out = tmp_path / "out"
    command = [sys.executable, str(ROOT / "benchmarks" / "quality.py"), "--suite", str(suite),
               "--out", str(out), "--work", str(tmp_path / "work"), "--cache", str(tmp_path),
               "--shared-data", str(SHARED), "--device", "cpu", "--jobs", "1"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    trained = [r for r in records if r["task"] != "identity"]
    assert [r["steps"] for r in trained] == [2, 4]
    assert all("error" not in r for r in records)
    # The critic of B rated on the B images it trained on and on held-out ones, per milestone.
    assert all(isinstance(r["memory"], float) and abs(r["memory"]) < 1 for r in trained)
    assert all("memory" not in r for r in records if r["task"] == "identity")
    # CycleGAN's reverse generator is scored on taking the look off the truth.
    for r in trained:
        assert r["psnr_vs_identity_BtoA"] == pytest.approx(
            r["psnr_BtoA"] - r["identity_psnr"], abs=1e-3
        )
        assert isinstance(r["way_BtoA"], float) and isinstance(r["off_BtoA"], float)
    table = (out / "table.md").read_text()
    assert "| quality | 2 |" in table and "| quality | 4 |" in table
    assert "Taking the look off" in table
    assert (out / "sheet_dusk.png").is_file()


def test_rows_at_equal_wall_time_group_by_their_budget():
    """Runs stopped by a time budget reach different steps per look: they are one row, its
    steps column the budget and the steps reached."""
    records = [
        {
            "row": "cut",
            "name": f"cut.{pair}.s0",
            "pair": pair,
            "seed": 0,
            "steps": steps,
            "seconds": 300.0,
            "task": "cut",
            "psnr_vs_identity": gain,
        }
        for pair, steps, gain in (("film", 600, 1.0), ("dusk", 640, -2.0))
    ]
    [entry] = quality_report.suite_summary(records)
    assert entry["steps"] == "300 s (~620)" and entry["mean"] == pytest.approx(-0.5)
    assert "| cut | 300 s (~620) | 1 | +1.00 | -2.00 | **-0.50** |" in (
        quality_report.suite_table(records, ["film", "dusk"])
    )


@pytest.mark.slow
@needs_photos
def test_a_bridge_model_is_scored_at_each_sampling_step_count(tmp_path):
    """UNSB at 1 and at 5 predictions from one training: two rows, two sheets."""
    out = tmp_path / "run"
    assert quality.main(["--child", "--name", "u", "--row", "unsb", "--task", "unsb",
                         "--pair", "dusk", "--steps", "2", "--size", "32", "--device", "cpu",
                         "--base-json", json.dumps({"ngf": 8, "ndf": 8, "gen": "resnet6"}),
                         "--sample-steps", "1,5", "--out", str(out), "--cache", str(tmp_path),
                         "--shared-data", str(SHARED)]) == 0  # fmt: skip
    records = [json.loads(line) for line in (out / "result.jsonl").read_text().splitlines()]
    assert [(r["row"], r["sample_steps"], r["steps"]) for r in records] == [
        ("unsb-1step", 1, 2),
        ("unsb-5step", 5, 2),
    ]
    assert {Path(r["sheet"]).name for r in records} == {"sheet_2_1step.png", "sheet_2_5step.png"}
    assert {r["memory"] for r in records} == {None}  # UNSB's critic reads the step as well
    assert (out / "strip_2_5step_output.pt").is_file()


def _one_look_suite(tmp_path: Path) -> Path:
    suite = tmp_path / "suite.json"
    suite.write_text(json.dumps({"looks": ["dusk"], "paintings": [], "rows": [{"name": "a"}]}))
    return suite


def test_two_suite_runs_never_share_a_folder(tmp_path, capsys):
    """A second run into a folder another run is writing to stops at once, in one line, and
    leaves the first run's results alone."""
    out, work = tmp_path / "out", tmp_path / "work"
    (out / "results.jsonl").parent.mkdir()
    (out / "results.jsonl").write_text('{"kept": true}\n')
    for held in (out, work):
        fd = quality.hold_folder(held)
        try:
            argv = ["--suite", str(_one_look_suite(tmp_path)), "--out", str(out),
                    "--work", str(work), "--cache", str(tmp_path / "cache")]  # fmt: skip
            assert quality.main(argv) == 2
        finally:
            os.close(fd)
        error = capsys.readouterr().err
        assert f"another quality.py run is writing to {held}" in error
        assert (out / "results.jsonl").read_text() == '{"kept": true}\n'


@pytest.mark.parametrize(
    "flags, threads", [([], max(1, (os.cpu_count() or 1) // 2)), (["--threads", "3"], 3)]
)
def test_a_suite_gives_each_run_its_share_of_threads_or_those_asked(
    tmp_path, monkeypatch, flags, threads
):
    """Each of --jobs runs gets the machine's cores shared out, unless --threads says how many
    (two suites sharing a machine)."""
    given = []
    monkeypatch.setattr(quality, "dataset", lambda *args: None)
    monkeypatch.setattr(quality, "_run_children", lambda *args: given.append(args[6]) or [])
    argv = ["--suite", str(_one_look_suite(tmp_path)), "--out", str(tmp_path / "out"),
            "--work", str(tmp_path / "work"), "--jobs", "2", *flags]  # fmt: skip
    quality.main(argv)
    assert given == [threads]


@pytest.mark.parametrize("flags", [["--threads", "0"], ["--threads", "-2"], ["--jobs", "0"]])
def test_a_suite_refuses_no_threads_or_jobs_in_one_line(tmp_path, monkeypatch, flags, capsys):
    monkeypatch.setattr(quality, "_run_children", lambda *args: pytest.fail("a run started"))
    argv = ["--suite", str(_one_look_suite(tmp_path)), "--out", str(tmp_path / "out"),
            "--work", str(tmp_path / "work"), *flags]  # fmt: skip
    assert quality.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"Error: {flags[0]} must be at least 1, got {flags[1]}"
    assert not (tmp_path / "out").exists() and not (tmp_path / "work").exists()


@pytest.mark.parametrize("size", ["2", "0", "-64"])
def test_a_size_too_small_for_the_looks_is_refused_in_one_line(tmp_path, size, capsys):
    """A 2 px crop made the looks' blurs fail with a traceback (reflect padding)."""
    argv = ["--pair", "ink", "--size", size, "--steps", "1", "--cache", str(tmp_path / "cache"),
            "--out", str(tmp_path / "out"), "--shared-data", str(tmp_path)]  # fmt: skip
    assert quality.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: --size must be at least 16 px") and err.endswith(f"got {size}")
    assert not (tmp_path / "cache").exists() and not (tmp_path / "out").exists()


_STOPPED_PARENT = """
import sys, time
from pathlib import Path
sys.path.insert(0, {benchmarks!r})
import quality
folder = Path({folder!r})
quality.dataset = lambda *args: None
quality.child_command = lambda args, spec, job, where, threads: [
    sys.executable, "-c",
    f"import os, time; open({{str(folder / job['name'])!r}}, 'w').write(str(os.getpid())); "
    "time.sleep(120)",
]
sys.exit(quality.main(sys.argv[1:]))
"""


def test_a_stopped_suite_run_stops_its_children(tmp_path):
    """SIGTERM (or Ctrl-C) to the parent stops the runs it started and starts no more:
    none is left training into its folders."""
    import signal
    import time

    pids = tmp_path / "pids"
    pids.mkdir()
    script = tmp_path / "parent.py"
    script.write_text(_STOPPED_PARENT.format(benchmarks=str(ROOT / "benchmarks"), folder=str(pids)))
    command = [sys.executable, str(script), "--suite", str(_one_look_suite(tmp_path)),
               "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work"), "--jobs", "1"]  # fmt: skip
    parent = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not [p for p in pids.iterdir() if p.read_text()]:
        assert time.monotonic() < deadline and parent.poll() is None, parent.stderr.read()
        time.sleep(0.1)
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=30) == 128 + signal.SIGTERM
    started = [int(p.read_text()) for p in pids.iterdir()]
    assert len(started) == 1  # the second job (of two) was never started
    for pid in started:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and "Z" not in _state(pid):
            assert time.monotonic() < deadline, f"child {pid} still running"
            time.sleep(0.1)


def _state(pid: int) -> str:
    """The process's state letter (zombies count as stopped)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def _tiny_child(out: Path, cache: Path, *extra: str) -> list[str]:
    return ["--child", "--name", "c", "--task", "cyclegan", "--pair", "dusk", "--size", "32",
            "--device", "cpu", "--base-json", json.dumps({"ngf": 8, "ndf": 8, "gen": "resnet6"}),
            "--out", str(out), "--cache", str(cache), "--shared-data", str(SHARED),
            *extra]  # fmt: skip


@pytest.mark.slow
@needs_photos
def test_a_wall_time_budget_is_scored_and_an_outside_stop_is_not(tmp_path):
    """``--seconds``: the run stops at its budget and is scored at the step it reached. A stop
    from outside (SIGTERM, Ctrl-C) is not a budget: the child ends with one line, unscored."""
    import signal
    import time

    argv = _tiny_child(tmp_path / "c", tmp_path, "--steps", "100000", "--seconds", "3")
    assert quality.main(argv) == 0
    (record,) = [json.loads(line) for line in (tmp_path / "c" / "result.jsonl").open()]
    assert record["interrupted"] and record["seconds"] == 3 and 0 < record["steps"] < 100000
    assert "psnr" in record

    out = tmp_path / "stopped"
    argv = _tiny_child(out, tmp_path, "--steps", "100000")  # the same data, built once
    child = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "quality.py"), *argv],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    losses, deadline = out / "run" / "losses.jsonl", time.monotonic() + 300
    while not (losses.is_file() and losses.stat().st_size):  # the training loop is running
        assert time.monotonic() < deadline and child.poll() is None, child.stderr.read()
        time.sleep(0.2)
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=120) == 2
    assert "Error: stopped at step" in child.stderr.read()
    assert not (out / "result.jsonl").exists()


@pytest.mark.parametrize("critic", ["instance", "projected"])
def test_critic_sight_tells_a_visible_look_from_a_blind_critic(critic, tmp_path):
    """benchmarks/critic_sight.py on a look any critic sees (B is A darkened): it scores near
    1, and its table names each critic. The real figures (which critic sees which look) come
    from the benchmark; here only that the measurement measures."""
    import critic_sight
    from PIL import Image

    for domain, scale in (("trainA", 1.0), ("trainB", 0.4), ("testA", 1.0), ("testB", 0.4)):
        (tmp_path / domain).mkdir()
        for i in range(6):
            photo = _photo(seed=i if domain.startswith("test") else 10 + i, size=72)
            if domain == "trainB":
                photo = _photo(seed=20 + i, size=72)
            pixels = (photo * scale * 255).round().byte().permute(1, 2, 0).numpy()
            Image.fromarray(pixels).save(tmp_path / domain / f"{i}.png")
    domains = critic_sight.load_domains(tmp_path)
    record = critic_sight.sight(domains, critic, steps=40, seed=0, ndf=8, batch=4)
    assert record["sees"] == 1.0 and record["gap"] > 0
    table = critic_sight.table([{"look": "dark", "critic": critic, **record}])
    assert "| dark | 1.00 (" in table and f"{critic}: sees" in table


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--looks", "lomo"], "unknown look 'lomo'"),
        (["--looks", ","], "--looks and --critics need at least one name"),
        (["--critics", "group"], "unknown critic 'group'"),
        (["--steps", "0"], "--steps must be at least 1, got 0"),
        (["--ndf", "-3"], "--ndf must be at least 1, got -3"),
        (["--threads", "0"], "--threads must be at least 1, got 0"),
        (["--out", "."], "is a folder; give a file"),
    ],
)
def test_critic_sight_refuses_bad_options_in_one_line(flags, message, capsys):
    import critic_sight

    assert critic_sight.main(["--looks", "teal", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: ") and message in err and "\n" not in err


def test_look_progress_separates_moving_too_little_from_moving_wrongly():
    x = _photo(1)
    truth = looks.dusk(x)
    half = x + 0.5 * (truth - x)
    assert quality.look_progress(x, x, truth) == {"way": 0.0, "off": 0.0}
    assert quality.look_progress(x, truth, truth) == {"way": 1.0, "off": 0.0}
    assert quality.look_progress(x, half, truth) == {"way": 0.5, "off": 0.0}
    wrong = quality.look_progress(x, x + (x - truth).flip(-1), truth)
    assert wrong["off"] > 0.5
    assert quality.look_progress(x, x + 0.1, x) == {"way": 0.0, "off": 0.0}  # no look to make


def test_the_toy_night_is_a_known_answer_that_asks_for_the_moon(tmp_path):
    data = quality_data.dataset(quality_data.TOY_NIGHT, tmp_path / "no-photos", tmp_path, 40)
    assert quality_report.is_look(quality_data.TOY_NIGHT)
    manifest = json.loads((data / "manifest.json").read_text())
    assert manifest["trainA"] == manifest["trainB"] == 200
    assert manifest["testA"] == quality_data.TOY_NIGHT_TEST
    discs = json.loads((data / "discs.json").read_text())["discs"][:8]
    days = quality_data.load_folder(data / "testA")[:8]
    nights = quality_data.load_folder(data / "testB")[:8]
    assert quality.discs_drawn(nights, nights, discs) == {"discs_drawn": 1.0, "disc_shape": 1.0}
    # the day itself, and the night with its moon painted over with the sky, draw no moon
    assert quality.discs_drawn(days, nights, discs)["discs_drawn"] == 0.0
    moonless = nights.clone()
    side = nights.shape[-1]
    at = (torch.arange(side) + 0.5) / side
    for night, disc in zip(moonless, discs, strict=True):
        dist = torch.hypot(at[None, :] - disc["x"], at[:, None] - disc["y"])
        ring = (dist > 1.5 * disc["radius"]) & (dist < 2.5 * disc["radius"])
        sky = night[:, ring].median(1).values
        night[:, dist < 1.2 * disc["radius"]] = sky[:, None]
    drawn = quality.discs_drawn(moonless, nights, discs)
    assert drawn["discs_drawn"] == 0.0 and drawn["disc_shape"] < 0.5
    # a disc the hills hide is not scored
    hidden = [{**disc, "visible": 0.5} for disc in discs]
    assert quality.discs_drawn(days, nights, hidden) == {"discs_drawn": None, "disc_shape": None}


def test_a_cache_that_is_a_file_is_refused_in_one_line(tmp_path, capsys):
    cache = tmp_path / "cache"
    cache.write_text("not a folder")
    args = ["--pair", quality_data.TOY_NIGHT, "--task", "identity", "--cache", str(cache)]
    assert quality.main([*args, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"Error: --cache {cache} is a file; give a folder for the data sets"
    assert cache.read_text() == "not a folder"


def test_a_look_scored_on_the_toy_night_says_whether_the_moon_was_drawn(tmp_path):
    class NoKid:
        def kid(self, *args):
            return 0.0, 0.0

    data = quality_data.dataset(quality_data.TOY_NIGHT, tmp_path / "no-photos", tmp_path, 40)
    metrics, _ = quality.score_look(None, data, "cpu", NoKid())
    assert metrics["discs_drawn"] == 0.0 and 0.6 < metrics["disc_shape"] < 0.9  # the day
    assert "moons drawn 0.00" in quality_report.caption(
        {"name": "identity", "pair": quality_data.TOY_NIGHT, "steps": 0, **metrics}
    )


def test_critic_ratings_average_each_map_over_the_centre_crop():
    """A rating is the mean over a critic's maps of each map's mean, on the centre crop only
    (the border a random crop may show is left out)."""
    images = torch.zeros(3, 3, 8, 8)
    images[:, :, 2:6, 2:6] = torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1, 1)  # the centre
    images[:, :, 0] = 100.0  # a border row the 4-pixel centre crop must not see

    def critic(x):
        return [x.mean(1, keepdim=True), 3 * x.mean(1, keepdim=True)]  # two levels

    ratings = quality_data.critic_ratings(critic, images, 4)
    assert ratings.tolist() == [2.0, 4.0, 6.0]  # (v + 3v) / 2 per image


def test_the_grid_status_reads_the_trainers_log_lines(tmp_path, capsys):
    from i2i.train.logger import RunLogger

    logger = RunLogger(tmp_path / "run", total_steps=1000, start_step=0)
    logger.log(300, 1, {"G_AB": 0.5})
    logger.close()
    (tmp_path / "job").mkdir()
    (tmp_path / "job" / "log.txt").write_text(capsys.readouterr().err)  # as a child's log
    line = quality.status_line([tmp_path / "job", tmp_path / "queued"], 12.0)
    assert "running: job step 300 (" in line and line.endswith("queued: 1")
