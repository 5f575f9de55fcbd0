"""The speed settings: half precision on the CPU runs where asked (training and inference alike),
stays close to fp32, and a CPU that only emulates it says so up front; a compiled translator
gives the eager one's pictures."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

import i2i
from i2i.core.device import autocast, native_half, usable_precision
from i2i.core.errors import I2IError, InvalidArgumentError
from i2i.core.registry import generators
from i2i.infer.translator import Translator
from i2i.models.folder import make_config, net_spec
from i2i.train.runtime import Runtime

CPU = torch.device("cpu")


def _set_cpu_bf16(monkeypatch, native: bool) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)


def test_autocast_runs_convolutions_in_the_half_precision_on_the_cpu():
    x, w = torch.randn(1, 4, 8, 8), torch.randn(4, 4, 3, 3)
    with autocast(CPU, "bf16"):
        assert F.conv2d(x, w).dtype == torch.bfloat16
    with autocast(CPU, "fp32"):
        assert F.conv2d(x, w).dtype == torch.float32
    with pytest.raises(InvalidArgumentError, match="unknown precision"):
        autocast(CPU, "fp8")


def test_native_half_follows_the_cpu_instructions(monkeypatch):
    assert native_half(torch.device("cuda"), torch.bfloat16)
    assert native_half(CPU, torch.float32)
    _set_cpu_bf16(monkeypatch, True)
    assert native_half(CPU, torch.bfloat16)
    _set_cpu_bf16(monkeypatch, False)
    assert not native_half(CPU, torch.bfloat16)


def test_emulated_half_precision_runs_fp32_and_says_so(monkeypatch):
    _set_cpu_bf16(monkeypatch, False)
    with pytest.warns(UserWarning, match="no bf16 instructions .*running fp32 instead"):
        assert usable_precision(CPU, "bf16") == "fp32"
    with pytest.warns(UserWarning, match="no bf16 instructions"):
        assert Runtime("cpu", "bf16").precision == "fp32"
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with pytest.warns(UserWarning, match="running fp32 instead"):
        emulated = Translator(*_parts(), device="cpu", precision="bf16")
    assert emulated.precision == "fp32"
    torch.testing.assert_close(emulated(x), _translator()(x), atol=0, rtol=0)
    _set_cpu_bf16(monkeypatch, True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert usable_precision(CPU, "bf16") == "bf16"
        assert usable_precision(CPU, "fp32") == "fp32"
        assert Runtime("cpu", "bf16").precision == "bf16"


def _parts() -> tuple[dict, dict[str, torch.nn.Module]]:
    torch.manual_seed(0)
    net = i2i.create_generator("resnet6", ngf=8)
    return make_config("cyclegan", {"AtoB": net_spec(generators, "resnet6", {"ngf": 8})}), {
        "AtoB": net
    }


def _translator(precision: str = "fp32", **kwargs) -> Translator:
    return Translator(*_parts(), device="cpu", precision=precision, **kwargs)


def test_translator_runs_bf16_on_the_cpu_close_to_fp32(monkeypatch):
    _set_cpu_bf16(monkeypatch, True)  # as on a CPU with bf16 instructions, emulated or not
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    fp32, bf16 = _translator("fp32")(x), _translator("bf16")(x)
    assert bf16.dtype == torch.float32 and bf16.shape == x.shape
    difference = (fp32 - bf16).abs()
    assert difference.max() > 0  # it did run in bf16, not silently in fp32
    psnr = 10 * torch.log10(4 / difference.square().mean())  # outputs span [-1, 1]
    assert psnr > 30


def test_onnxruntime_backend_refuses_a_half_precision(tmp_path):
    with pytest.raises(
        InvalidArgumentError,
        match="exported fp32 graph as it is; use --precision fp32 without --compile",
    ):
        i2i.load(tmp_path, backend="onnxruntime", precision="bf16")


@pytest.mark.slow
def test_compiled_translator_matches_eager_and_saves_plain_weights(tmp_path):
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    from torch._dynamo.utils import counters

    counters.clear()
    compiled = _translator(compile=True)
    torch.testing.assert_close(compiled(x), _translator()(x), atol=1e-4, rtol=0)
    assert counters["stats"]["unique_graphs"] >= 1  # the network did go through the compiler
    saved = compiled.save_pretrained(tmp_path / "model")
    torch.testing.assert_close(
        Translator.from_pretrained(saved, device="cpu")(x), compiled(x), atol=1e-4, rtol=0
    )
    config, nets = _parts()
    with torch.no_grad():
        for p in nets["AtoB"].parameters():
            p.mul_(0.5)  # other weights in the same architecture: their own frozen graph
    other = Translator(config, nets, device="cpu", compile=True)
    torch.testing.assert_close(
        other(x), Translator(config, nets, device="cpu")(x), atol=1e-4, rtol=0
    )


def test_cli_refuses_compile_with_onnxruntime_in_one_line(tmp_path):
    from click.testing import CliRunner

    from i2i.cli import cli

    args = ["apply", str(tmp_path), str(tmp_path), "-o", str(tmp_path / "out")]
    result = CliRunner().invoke(cli, [*args, "--backend", "onnxruntime", "--compile"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: the onnxruntime backend runs the exported fp32 graph")
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_failing_compiler_is_a_one_line_error(monkeypatch):
    import torch._inductor.config as inductor

    torch._dynamo.reset()  # a graph compiled by an earlier test would be reused, not compiled
    monkeypatch.setattr(inductor, "fx_graph_cache", False)
    monkeypatch.setattr(inductor.cpp, "cxx", (None, "/nonexistent/g++"))
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with pytest.raises(I2IError, match=r"^torch.compile failed \(.*\); run without --compile$"):
        _translator(compile=True)(x)
