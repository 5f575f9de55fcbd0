"""``evaluate`` end to end on an untrained model, the report files, and ``cycle_metrics``."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

import i2i
from i2i.core.errors import DataError, I2IError
from i2i.core.registry import generators
from i2i.eval.cycle import cycle_metrics, flat_metrics
from i2i.eval.evaluate import evaluate
from i2i.eval.extractors import FeatureExtractor
from i2i.eval.report import contact_sheet
from i2i.models.folder import make_config, net_spec, save_model
from tests.test_metrics import write_fake_inception_weights


class RandomConv(FeatureExtractor):
    """Test-only features: a fixed random convolution, mean and std pooled (16-d)."""

    name, dim, input_size = "random_conv", 16, 32

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2)
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 0.3)
            self.conv.bias.zero_()

    def embed(self, x):
        h = torch.relu(self.conv(x)).flatten(2)
        return torch.cat([h.mean(2), h.std(2)], 1)


def make_model(folder: Path, directions=("AtoB", "BtoA")) -> Path:
    torch.manual_seed(0)
    nets = {d: i2i.create_generator("resnet6", ngf=8) for d in directions}
    specs = {d: net_spec(generators, "resnet6", {"ngf": 8}) for d in directions}
    config = make_config("cyclegan", specs, domains={"A": "day", "B": "night"}, size=32)
    return save_model(folder, config, nets)


def make_data(folder: Path, n_a: int = 4, n_b: int = 3) -> Path:
    g = torch.Generator().manual_seed(1)
    for domain, count, level in (("A", n_a, 200), ("B", n_b, 60)):
        (folder / f"test{domain}").mkdir(parents=True)
        for i in range(count):
            size = (32, 32) if i % 2 == 0 else (36, 28)  # mixed sizes, not multiples of 4
            pixels = torch.randint(0, 56, (*size, 3), generator=g) + level
            Image.fromarray(pixels.byte().numpy()).save(folder / f"test{domain}" / f"{i}.png")
    return folder


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return make_model(tmp_path_factory.mktemp("model") / "m")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    return make_data(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def report(model_dir, data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    messages: list[str] = []
    result = evaluate(
        i2i.load(model_dir, device="cpu"),
        data_dir,
        out,
        extractor=RandomConv(),
        device="cpu",
        batch_size=3,
        sheet_rows=3,
        tile_size=64,
        log=messages.append,
    )
    return out, result, messages


def test_evaluate_writes_metrics_sheets_and_page(report):
    out, result, messages = report
    assert sorted(p.name for p in out.iterdir()) == [
        "AtoB.png",
        "BtoA.png",
        "index.html",
        "metrics.json",
    ]
    assert json.loads((out / "metrics.json").read_text()) == result
    assert result["model"]["domains"] == {"A": "day", "B": "night"}
    assert result["extractor"]["name"] == "random_conv"
    assert any(m.startswith("AtoB: FID") for m in messages)


def test_evaluate_reports_every_metric_per_direction(report):
    _, result, _ = report
    a2b, b2a = result["directions"]["AtoB"], result["directions"]["BtoA"]
    assert a2b["label"] == "day → night" and b2a["label"] == "night → day"
    assert (a2b["n_images"], a2b["n_real"]) == (4, 3)
    assert (b2a["n_images"], b2a["n_real"]) == (3, 4)
    for entry in (a2b, b2a):
        assert entry["extractor"] == "random_conv"
        assert entry["fid"] > 0 and math.isfinite(entry["kid_mean"]) and entry["kid_std"] >= 0
        assert 0 < entry["cycle_psnr"] < 60 and -1 <= entry["cycle_ssim"] <= 1
        text = " ".join(entry["notes"])
        assert "set sizes differ" in text
        assert "not comparable with published FID" in text
        assert "covariance is singular" in text  # 3-4 images, 16-d features


def test_contact_sheets_hold_input_translated_reconstructed(report):
    out, result, _ = report
    # 3 columns x 3 rows of 64 px tiles (longer side), 2 px gaps, a title band of two lines
    # (titles wider than a tile wrap: "translated" over "(night)")
    with Image.open(out / "AtoB.png") as sheet:
        assert sheet.size == (3 * (64 + 2) + 2, 14 + 12 + 3 * (64 + 2) + 2)
    assert result["directions"]["AtoB"]["contact_sheet_rows"] == 3
    assert result["directions"]["AtoB"]["contact_sheet_columns"] == [
        "input (day)",
        "translated (night)",
        "reconstructed (day)",
    ]


def test_the_page_shows_the_table_and_the_sheets(report):
    out, result, _ = report
    html = (out / "index.html").read_text()
    entry = result["directions"]["AtoB"]
    assert f"{entry['fid']:.2f}" in html and f"{entry['cycle_psnr']:.2f}" in html
    assert 'src="AtoB.png"' in html and 'src="BtoA.png"' in html
    assert "day → night" in html and "not comparable with published FID" in html
    assert "set sizes differ" in html
    assert "input (day) | translated (night) | reconstructed (day)" in html


def test_contact_sheet_layout():
    tiles = [torch.zeros(3, 20, 40)] * 2
    sheet = contact_sheet(["a", "b", "c", "d"], [tiles] * 4, tile_size=50)
    assert sheet.size == (4 * (50 + 2) + 2, 14 + 2 * (25 + 2) + 2)


def test_a_report_of_fewer_directions_replaces_the_earlier_sheets(report, model_dir, data_dir):
    out = report[0].parent / "again"
    shutil.copytree(report[0], out)
    translator = i2i.load(model_dir, device="cpu")
    evaluate(translator, data_dir, out, extractor=RandomConv(), directions=["AtoB"], device="cpu")
    assert sorted(p.name for p in out.iterdir()) == ["AtoB.png", "index.html", "metrics.json"]


def test_sheets_of_an_eval_killed_before_its_metrics_are_replaced_but_pictures_are_not(
    report, model_dir, data_dir
):
    """An eval killed between its sheets and its metrics.json (or in the middle of a sheet)
    left a folder that the next eval refused as the user's own; a user's own AtoB.png is still
    refused."""
    killed = report[0].parent / "killed"
    killed.mkdir()
    shutil.copy(report[0] / "AtoB.png", killed)  # what the killed eval had written
    (killed / ".BtoA.png.k1ll3d_x").write_bytes(b"\x89PNG half")  # and was writing
    translator = i2i.load(model_dir, device="cpu")
    evaluate(translator, data_dir, killed, extractor=RandomConv(), device="cpu")
    assert sorted(p.name for p in killed.iterdir()) == [
        "AtoB.png", "BtoA.png", "index.html", "metrics.json"
    ]  # fmt: skip
    users = report[0].parent / "users"
    users.mkdir()
    Image.new("RGB", (8, 8)).save(users / "AtoB.png")
    with pytest.raises(I2IError, match=r"holds 'AtoB\.png', which is not part of an eval report"):
        evaluate(translator, data_dir, users, extractor=RandomConv(), device="cpu")
    assert [p.name for p in users.iterdir()] == ["AtoB.png"]


def test_unreadable_test_images_are_left_out_and_listed(model_dir, data_dir, tmp_path):
    data = tmp_path / "data"
    shutil.copytree(data_dir, data)
    (data / "testA" / "broken.jpg").write_bytes(b"not a jpeg")
    messages: list[str] = []
    translator = i2i.load(model_dir, device="cpu")
    result = evaluate(
        translator, data, tmp_path / "out", extractor=RandomConv(), device="cpu",
        log=messages.append,
    )  # fmt: skip
    assert [s["path"] for s in result["skipped"]] == [str(data / "testA" / "broken.jpg")]
    n_a = len(list((data_dir / "testA").iterdir()))
    assert result["directions"]["AtoB"]["n_images"] == n_a
    assert any("1 unreadable image left out" in n for n in result["directions"]["BtoA"]["notes"])
    assert any(m.startswith("left out 1 unreadable image") for m in messages)
    for path in (data / "testA").iterdir():
        path.write_bytes(b"not an image either")
    with pytest.raises(DataError, match="no readable image in testA/"):
        evaluate(translator, data, tmp_path / "new" / "out", extractor=RandomConv(), device="cpu")
    assert not (tmp_path / "new").exists()  # a failed evaluation leaves no folder behind
    (tmp_path / "shared").mkdir()  # a parent that another report filled meanwhile stays
    (tmp_path / "shared" / "other").mkdir()
    with pytest.raises(DataError, match="no readable image in testA/"):
        evaluate(translator, data, tmp_path / "shared" / "mine", extractor=RandomConv())
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == ["other"]
    before = {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()}
    with pytest.raises(DataError, match="no readable image in testA/"):
        evaluate(translator, data, tmp_path / "out", extractor=RandomConv(), device="cpu")
    assert {p.name: p.read_bytes() for p in (tmp_path / "out").iterdir()} == before


def test_one_direction_model_has_no_cycle_metrics(tmp_path, data_dir):
    model = make_model(tmp_path / "m", directions=("AtoB",))
    result = evaluate(model, data_dir, tmp_path / "out", extractor=RandomConv(), device="cpu")
    entry = result["directions"]["AtoB"]
    assert list(result["directions"]) == ["AtoB"]
    assert entry["cycle_psnr"] is None and entry["cycle_ssim"] is None
    assert "the model has one direction: no cycle metrics" in entry["notes"]
    assert entry["fid"] is not None
    with Image.open(tmp_path / "out" / "AtoB.png") as sheet:  # input | translated
        assert sheet.size[0] == 2 * (256 + 2) + 2


def test_default_extractor_is_the_fid_inception(model_dir, data_dir, tmp_path, monkeypatch):
    write_fake_inception_weights(tmp_path / "home" / "weights")
    monkeypatch.setenv("I2I_HOME", str(tmp_path / "home"))
    result = evaluate(
        model_dir, data_dir, tmp_path / "out", directions=["AtoB"], max_images=2, device="cpu"
    )
    entry = result["directions"]["AtoB"]
    assert result["extractor"]["name"] == "inception_fid" and result["extractor"]["dim"] == 2048
    assert entry["comparable_with_published_fid"] is True
    assert (entry["n_images"], entry["n_real"]) == (2, 2)
    assert entry["fid"] > 0 and entry["kid_mean"] is not None
    assert not any("not comparable" in n for n in entry["notes"])


def test_missing_test_folder_and_unknown_direction(model_dir, tmp_path):
    data = tmp_path / "data"
    (data / "testA").mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(data / "testA" / "0.png")
    with pytest.raises(DataError, match="no testB/ folder"):
        evaluate(model_dir, data, tmp_path / "out", extractor=RandomConv(), device="cpu")
    model = make_model(tmp_path / "one", directions=("AtoB",))
    with pytest.raises(I2IError, match="no direction BtoA"):
        evaluate(model, data, tmp_path / "out", directions=["BtoA"], extractor=RandomConv())


# -- during training -------------------------------------------------------------------------------
class Shift(nn.Module):
    def __init__(self, by: float):
        super().__init__()
        self.by = by
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x):
        return x * self.scale + self.by


def test_cycle_metrics_on_generator_modules_match_hand_values():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(4, 3, 16, 16, generator=g) - 0.5
    nets = {"AtoB": Shift(0.05), "BtoA": Shift(0.05)}
    nets["BtoA"].eval()
    out = cycle_metrics(nets, a, batch_size=3)
    assert list(out) == ["AtoB"]  # only domain A images given
    # reconstruction = x + 0.1: MSE 0.01 in a range of 2
    assert out["AtoB"]["cycle_psnr"] == pytest.approx(10 * math.log10(400), rel=1e-5)
    assert 0 < out["AtoB"]["cycle_ssim"] < 1 and out["AtoB"]["n_images"] == 4
    assert nets["AtoB"].training and not nets["BtoA"].training  # modes restored


def test_cycle_metrics_with_fid_reuse_the_real_features(model_dir):
    translator = i2i.load(model_dir, device="cpu")
    g = torch.Generator().manual_seed(0)
    images = {"A": torch.rand(3, 3, 32, 32, generator=g) * 2 - 1, "B": torch.rand(3, 3, 32, 32)}
    cache: dict = {}
    first = cycle_metrics(translator, images, extractor=RandomConv(), cache=cache)
    assert {"real:random_conv:A", "real:random_conv:B"} <= set(cache)
    assert set(first) == {"AtoB", "BtoA"}
    assert first["AtoB"]["fid"] is not None and first["AtoB"]["extractor"] == "random_conv"
    second = cycle_metrics(translator, images, extractor=RandomConv(), cache=cache)
    assert second["AtoB"]["fid"] == pytest.approx(first["AtoB"]["fid"])
    flat = flat_metrics(first)
    assert set(flat) >= {"AtoB/fid", "AtoB/kid_mean", "AtoB/cycle_psnr", "BtoA/cycle_ssim"}
    assert all(isinstance(v, float) for v in flat.values())


def test_cycle_metrics_without_extractor_skip_fid(model_dir):
    translator = i2i.load(model_dir, device="cpu")
    out = cycle_metrics(translator, {"B": torch.rand(2, 3, 20, 20) * 2 - 1})
    assert list(out) == ["BtoA"] and "fid" not in out["BtoA"]
    assert out["BtoA"]["cycle_psnr"] is not None


def test_cli_eval_writes_the_report(model_dir, data_dir, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from i2i.cli import cli

    write_fake_inception_weights(tmp_path / "home" / "weights")
    monkeypatch.setenv("I2I_HOME", str(tmp_path / "home"))
    out = tmp_path / "report"
    args = [
        "eval",
        str(model_dir),
        "--data",
        str(data_dir),
        "-o",
        str(out),
        "--max-images",
        "2",
        "--device",
        "cpu",
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "index.html" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["directions"]) == {"AtoB", "BtoA"}


def test_cli_eval_without_inception_weights_is_one_line(model_dir, data_dir, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from i2i.cli import cli

    monkeypatch.setenv("I2I_HOME", str(tmp_path / "empty-home"))
    monkeypatch.setattr("torch.hub.download_url_to_file", _offline_download)
    result = CliRunner().invoke(
        cli, ["eval", str(model_dir), "--data", str(data_dir), "-o", str(tmp_path / "r")]
    )
    assert result.exit_code == 1
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "pt_inception" in errors[0]
    assert "Traceback" not in result.output


def _offline_download(url, dst, *args, **kwargs):
    raise OSError("network is unreachable")
