"""Throughput of ``i2i apply`` on a folder: images/s end to end (decode, translate, encode).

Prints one JSON line per configuration; never asserts. Compares the PyTorch path (CPU, and CUDA
with fp32/bf16 when present) with the ONNX Runtime CPU path. The networks are resnet9 at ngf 64
with random weights (speed does not depend on training). Reference: the official test.py ran
about 1.0 image/s at 256 px on this 2-core CPU (batch 1, fp32, serial I/O); targets: at least
that (1.5x with ONNX Runtime) on CPU, and 10x official test.py on the same GPU.

    python benchmarks/apply_speed.py --sizes 256 512 --images 16
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

import i2i
from i2i.core.registry import generators
from i2i.infer.apply import apply_paths
from i2i.models.folder import make_config, net_spec, save_model

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "monet2photo" / "testB"
OFFICIAL_CPU_IMAGES_PER_S = {256: 1.0}


def make_inputs(folder: Path, size: int, count: int) -> None:
    folder.mkdir(parents=True)
    photos = sorted(SHARED.glob("*.jpg"))[:count] if SHARED.is_dir() else []
    for i in range(count):
        if photos:
            image = Image.open(photos[i % len(photos)]).convert("RGB").resize((size, size))
        else:
            image = Image.effect_noise((size, size), 64).convert("RGB")
        image.save(folder / f"{i:04d}.jpg", quality=95)


def make_model(folder: Path) -> Path:
    torch.manual_seed(0)
    spec = net_spec(generators, "resnet9", {})
    config = make_config("cyclegan", {"AtoB": spec}, size=256)
    return save_model(folder, config, {"AtoB": i2i.create_generator("resnet9")})


def run(model: Path, inputs: Path, out: Path, **load_kwargs) -> float:
    translator = i2i.load(model, **load_kwargs)
    apply_paths(translator, [str(inputs)], out / "warmup", progress=False)  # warm-up pass
    start = time.perf_counter()
    report = apply_paths(translator, [str(inputs)], out / "timed", progress=False)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    return len(report.written) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--no-onnx", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="i2i-apply-bench-"))
    try:
        model = make_model(work / "model")
        backends = [("torch", "cpu", "fp32")]
        if torch.cuda.is_available():
            backends += [("torch", "cuda", "fp32"), ("torch", "cuda", "bf16")]
        if not args.no_onnx:
            try:
                from i2i.infer.onnx import export_onnx
                from i2i.models.folder import load_model

                config, nets = load_model(model)
                export_onnx(config, nets, work / "onnx", log=lambda _: None)
                backends.append(("onnxruntime", "cpu", "fp32"))
            except i2i.I2IError as error:
                print(
                    json.dumps(
                        {"bench": "apply_speed", "skipped": "onnxruntime", "why": str(error)}
                    )
                )
        for size in args.sizes:
            inputs = work / f"in{size}"
            make_inputs(inputs, size, args.images)
            for backend, device, precision in backends:
                source = work / "onnx" if backend == "onnxruntime" else model
                speed = run(
                    source,
                    inputs,
                    work / f"out-{size}-{backend}-{device}-{precision}",
                    device=device,
                    precision=precision,
                    batch_size=args.batch_size,
                    backend=backend,
                )
                record = {
                    "bench": "apply_speed",
                    "size": size,
                    "backend": backend,
                    "device": device,
                    "precision": precision,
                    "batch_size": args.batch_size,
                    "images": args.images,
                    "images_per_s": round(speed, 3),
                    "torch_threads": torch.get_num_threads(),
                }
                if device == "cuda":
                    record["gpu"] = torch.cuda.get_device_name()
                official = OFFICIAL_CPU_IMAGES_PER_S.get(size)
                if official and device == "cpu":
                    record["official_test_py_images_per_s"] = official
                    record["speedup_vs_official"] = round(speed / official, 2)
                print(json.dumps(record), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
