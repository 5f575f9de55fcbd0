"""ONNX export: parity with PyTorch, dynamic sizes, failure leaves nothing, onnxruntime backend."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import i2i
from i2i.cli import cli
from i2i.core.errors import I2IError
from i2i.core.registry import generators
from i2i.models.folder import make_config, net_spec, read_config, save_model

pytest.importorskip("onnxruntime", reason="the onnx extra is not installed")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    nets = {
        "AtoB": i2i.create_generator("resnet6", ngf=8),
        "BtoA": i2i.create_generator("resnet6", ngf=8),
    }
    spec = net_spec(generators, "resnet6", {"ngf": 8})
    config = make_config("cyclegan", {"AtoB": spec, "BtoA": spec}, size=32)
    return save_model(tmp_path_factory.mktemp("m") / "model", config, nets)


@pytest.fixture(scope="module")
def onnx_dir(model_dir, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("o") / "onnx"
    result = CliRunner().invoke(cli, ["export", str(model_dir), "--format", "onnx", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "max abs difference" in result.output
    return out


@pytest.mark.slow
def test_one_graph_per_direction_with_dynamic_sizes(onnx_dir):
    assert sorted(p.name for p in onnx_dir.iterdir()) == ["AtoB.onnx", "BtoA.onnx", "config.json"]
    graphs = read_config(onnx_dir)["onnx"]
    assert graphs["AtoB"]["dynamic"] is True
    assert graphs["AtoB"]["max_abs_diff"] < 1e-4
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_dir / "AtoB.onnx"), providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape
    assert isinstance(shape[2], str) and isinstance(shape[3], str)  # symbolic height and width


@pytest.mark.slow
def test_parity_failure_writes_nothing(model_dir, tmp_path):
    from i2i.infer.onnx import export_onnx
    from i2i.models.folder import load_model

    config, nets = load_model(model_dir)
    with pytest.raises(I2IError, match="parity check failed"):
        export_onnx(config, nets, tmp_path / "out", tolerance=0.0, log=lambda _: None)
    assert list(tmp_path.iterdir()) == []


def test_onnxruntime_backend_matches_pytorch(model_dir, onnx_dir):
    from PIL import Image

    image = Image.effect_noise((45, 37), 60).convert("RGB")
    torch_out = i2i.load(model_dir, device="cpu")(image, direction="BtoA")
    onnx_out = i2i.load(onnx_dir, backend="onnxruntime")(image, direction="BtoA")
    assert onnx_out.size == torch_out.size == (45, 37)
    a = torch.tensor(list(torch_out.tobytes()), dtype=torch.int16)
    b = torch.tensor(list(onnx_out.tobytes()), dtype=torch.int16)
    assert (a - b).abs().max() <= 1  # uint8 rounding of outputs within 1e-4


def test_apply_cli_with_onnxruntime(onnx_dir, tmp_path):
    from PIL import Image

    (tmp_path / "in").mkdir()
    Image.new("RGB", (36, 28), (10, 200, 30)).save(tmp_path / "in" / "a.png")
    result = CliRunner().invoke(
        cli,
        [
            "apply",
            str(onnx_dir),
            str(tmp_path / "in"),
            "-o",
            str(tmp_path / "out"),
            "--backend",
            "onnxruntime",
        ],
    )
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "out" / "a.png").size == (36, 28)


def test_an_onnx_export_runs_with_onnx_runtime_unless_torch_is_asked_for(onnx_dir, model_dir):
    assert "onnx" in i2i.load(onnx_dir).config  # --backend auto
    assert "onnx" not in i2i.load(model_dir).config
    with pytest.raises(I2IError, match=r"is an ONNX export.*`i2i apply` runs it"):
        i2i.load(onnx_dir, backend="torch")
    with pytest.raises(I2IError, match="unknown backend 'tensorrt'"):
        i2i.load(onnx_dir, backend="tensorrt")


def test_onnx_backend_on_a_folder_without_graphs(model_dir):
    with pytest.raises(I2IError, match="--format onnx"):
        i2i.load(model_dir, backend="onnxruntime")


def test_any_forward_argument_name_exports_with_dynamic_sizes(tmp_path):
    from torch import nn

    from i2i.infer.onnx import export_onnx

    class Renamed(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, img):
            return torch.tanh(self.conv(img))

    config = {
        "generators": {"AtoB": {"name": "x", "kwargs": {}}},
        "format": "i2i-model",
        "format_version": 1,
        "preprocess": {"size": 16},
    }
    out = export_onnx(config, {"AtoB": Renamed()}, tmp_path / "o", log=lambda _: None)
    assert read_config(out)["onnx"]["AtoB"]["dynamic"] is True


@pytest.mark.slow
@pytest.mark.parametrize(
    "kwargs",
    [
        {"antialias": True},
        {"residual": True},
        {"residual": True, "colour": True, "colour_curve": True, "colour_gate": True},
        {"residual": True, "colour": True, "colour_regions": True},
    ],
)
def test_cut_and_residual_generators_export_and_match(tmp_path, kwargs):
    """CUT's anti-aliased layers (grouped conv / transposed conv) and the residual generator's
    atanh/tanh (with its colour path, curve and gate: CycleGAN's recipe) export with dynamic sizes, and ONNX Runtime
    agrees with PyTorch."""
    from i2i.infer.onnx import export_onnx

    torch.manual_seed(0)
    net = i2i.create_generator("resnet6", ngf=4, **kwargs).eval()
    if net.colour is not None:  # as a training starts it: a map, not the identity
        with torch.no_grad():
            net.colour.weight.copy_(torch.eye(3)[:, :, None, None] * 0.8 + 0.05)
            net.colour.bias.fill_(0.1)
            if net.colour_curve is not None:
                torch.nn.init.normal_(net.colour_curve[-1].weight, std=0.3)  # bent, gate moved
            if net.colour_regions is not None:
                net.colour_regions.gain.uniform_(0.7, 1.3)
                net.colour_regions.offset.uniform_(-0.3, 0.3)
    config = {
        "generators": {"AtoB": {"name": "resnet6", "kwargs": {"ngf": 4, **kwargs}}},
        "format": "i2i-model",
        "format_version": 1,
        "preprocess": {"size": 32},
    }
    out = export_onnx(config, {"AtoB": net}, tmp_path / "o", log=lambda _: None)
    translator = i2i.load(out, backend="onnxruntime")
    x = torch.rand(1, 3, 40, 48) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(translator(x), net(x), atol=1e-4, rtol=1e-4)
        if net.takes_frame:  # tiles (and padding) are told where they lie, as in PyTorch
            pytorch = i2i.Translator(config, {"AtoB": net}, device="cpu")
            y = torch.rand(1, 3, 70, 90) * 2 - 1
            tiled = translator(y, tile=32, overlap=8)
            torch.testing.assert_close(tiled, pytorch(y, tile=32, overlap=8), atol=1e-4, rtol=1e-4)
            assert translator._nets["AtoB"].takes_frame  # the graph has its frame input
