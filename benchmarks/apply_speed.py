"""Throughput of ``i2i apply`` on a folder: images/s end to end (decode, translate, encode).

Prints one JSON line per configuration; never asserts. Compares the PyTorch path (CPU fp32, and
bf16 where the CPU has native bf16; CUDA fp32 and bf16 when present) with ONNX Runtime (its CPU
provider, and its CUDA provider when ``onnxruntime-gpu`` is installed). The networks are resnet9
at ngf 64 with random weights (speed does not depend on training). Each line carries the
generator's FLOPs per image, the achieved GFLOP/s and its fraction of the matmul and convolution
peaks measured in this process on the same device and dtype (``peak.py``; ONNX Runtime lines use
the fp32 peaks of their device).

    python benchmarks/apply_speed.py --sizes 256 512 --images 16
    python benchmarks/apply_speed.py --devices cuda --sizes 256 --images 64
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch
from peak import count_flops, measure_peak, rate_fields
from PIL import Image

import i2i
from i2i.core.device import native_half
from i2i.core.registry import generators
from i2i.infer.apply import ApplyReport, apply_paths
from i2i.infer.translator import Translator
from i2i.models.folder import make_config, net_spec, save_model

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "monet2photo" / "testB"


def make_inputs(folder: Path, size: int, count: int) -> None:
    folder.mkdir(parents=True)
    photos = sorted(SHARED.glob("*.jpg"))[:count] if SHARED.is_dir() else []
    for i in range(count):
        if photos:
            image = Image.open(photos[i % len(photos)]).convert("RGB").resize((size, size))
        else:
            image = Image.effect_noise((size, size), 64).convert("RGB")
        image.save(folder / f"{i:04d}.jpg", quality=95)


def make_model(folder: Path, ngf: int) -> Path:
    torch.manual_seed(0)
    spec = net_spec(generators, "resnet9", {"ngf": ngf})
    config = make_config("cyclegan", {"AtoB": spec}, size=256)
    return save_model(folder, config, {"AtoB": i2i.create_generator("resnet9", ngf=ngf)})


def onnx_cuda_translator(folder: Path) -> Translator:
    """The ONNX model with ONNX Runtime's CUDA provider in place of the CPU one that ``i2i.load``
    uses; raises ``I2IError`` when the provider is missing or falls back to the CPU."""
    import onnxruntime as ort

    from i2i.infer.onnx import load_onnx

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise i2i.I2IError("no CUDAExecutionProvider (pip install onnxruntime-gpu)")
    config, nets = load_onnx(folder)
    for direction, net in nets.items():
        graph = folder / config["onnx"][direction]["file"]
        try:
            net.session = ort.InferenceSession(str(graph), providers=["CUDAExecutionProvider"])
        except Exception as error:  # ONNX Runtime's own error types; a skip, not a crash
            raise i2i.I2IError(f"ONNX Runtime's CUDA provider failed: {error}") from error
        if net.session.get_providers()[0] != "CUDAExecutionProvider":
            raise i2i.I2IError("ONNX Runtime could not start its CUDA provider here")
    return Translator(config, nets, device="cpu", batch_size=4)  # the GPU's default


def run(translator: Translator, inputs: Path, out: Path, batch_size: int) -> tuple[float, float]:
    """Images/s of a timed pass, and the seconds of the warm-up pass before it (compiling)."""

    translator.batch_size = batch_size

    def apply(folder: str) -> ApplyReport:
        return apply_paths(translator, [str(inputs)], out / folder, progress=False)

    start = time.perf_counter()
    apply("warmup")
    warmup_s = time.perf_counter() - start
    start = time.perf_counter()
    report = apply("timed")
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    return len(report.written) / elapsed, warmup_s


def image_flops(size: int, ngf: int) -> int:
    """FLOPs of the generator on one ``size`` x ``size`` image (the same on every device)."""
    net = i2i.create_generator("resnet9", ngf=ngf).eval()
    with torch.no_grad():
        return count_flops(lambda: net(torch.zeros(1, 3, size, size)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument(
        "--batch-sizes",
        type=int,
        nargs="+",
        default=None,
        help="images per network call, each measured (default: the translator's own choice)",
    )
    parser.add_argument(
        "--devices",
        nargs="+",
        choices=("cpu", "cuda"),
        default=None,
        help="cpu and/or cuda (default: cpu, plus cuda)",
    )
    parser.add_argument("--ngf", type=int, default=64, help="generator width (64: official)")
    parser.add_argument(
        "--compile",
        choices=("off", "on", "both"),
        default="off",
        help="torch.compile the PyTorch translators (both: each measured, side by side)",
    )
    parser.add_argument("--no-onnx", action="store_true")
    parser.add_argument("--quick-peak", action="store_true", help="tiny peaks (smoke tests)")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    devices = args.devices or (["cpu", "cuda"] if cuda else ["cpu"])
    if "cuda" in devices and not cuda:
        print(json.dumps({"bench": "apply_speed", "device": "cuda", "skipped": "no CUDA here"}))
        devices.remove("cuda")
    work = Path(tempfile.mkdtemp(prefix="i2i-apply-bench-"))
    try:
        model = make_model(work / "model", args.ngf)
        compiles = {"off": [False], "on": [True], "both": [False, True]}[args.compile]
        precisions = {"cpu": ["fp32"], "cuda": ["fp32", "bf16"]}
        if native_half(torch.device("cpu"), torch.bfloat16):
            precisions["cpu"].append("bf16")
        backends = [  # (backend, device, precision, compiled)
            ("torch", device, precision, compiled)
            for device in devices
            for precision in precisions[device]
            for compiled in compiles
        ]
        if not args.no_onnx:
            try:
                from i2i.infer.onnx import export_onnx
                from i2i.models.folder import load_model

                config, nets = load_model(model)
                export_onnx(config, nets, work / "onnx", log=lambda _: None)
                backends += [("onnxruntime", device, "fp32", False) for device in devices]
            except i2i.I2IError as error:
                print(
                    json.dumps(
                        {"bench": "apply_speed", "skipped": "onnxruntime", "why": str(error)}
                    )
                )
        translators: dict[tuple[str, str, str, bool], Translator] = {}
        for backend, device, precision, compiled in backends:
            try:
                if backend == "onnxruntime" and device == "cuda":
                    translator = onnx_cuda_translator(work / "onnx")
                else:
                    source = work / "onnx" if backend == "onnxruntime" else model
                    translator = i2i.load(
                        source,
                        device=device,
                        precision=precision,
                        backend=backend,
                        compile=compiled,
                    )
            except i2i.I2IError as error:
                why = {"backend": backend, "device": device, "skipped": str(error)}
                print(json.dumps({"bench": "apply_speed", **why}), flush=True)
                continue
            translators[(backend, device, precision, compiled)] = translator
        peaks = {
            (device, precision): measure_peak(device, precision, quick=args.quick_peak)
            for _, device, precision, _ in translators
        }
        for size in args.sizes:
            inputs = work / f"in{size}"
            make_inputs(inputs, size, args.images)
            flops = image_flops(size, args.ngf)
            for (backend, device, precision, compiled), translator in translators.items():
                for batch_size in args.batch_sizes or [translator.batch_size]:
                    name = f"out-{size}-{backend}-{device}-{precision}-{compiled}-{batch_size}"
                    speed, warmup_s = run(translator, inputs, work / name, batch_size)
                    record = {
                        "bench": "apply_speed",
                        "size": size,
                        "backend": backend,
                        "device": device,
                        "precision": precision,
                        "compile": compiled,
                        "batch_size": batch_size,
                        "ngf": args.ngf,
                        "images": args.images,
                        "images_per_s": round(speed, 3),
                        "warmup_s": round(warmup_s, 2),
                        **rate_fields(flops, 1 / speed, peaks[(device, precision)], per="image"),
                        "torch_threads": torch.get_num_threads(),
                    }
                    if device == "cuda":
                        record["gpu"] = torch.cuda.get_device_name()
                    print(json.dumps(record), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
