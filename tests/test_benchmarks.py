"""The benchmark kit (FLOP counting, measured peaks, the official-peer command line), the data
path's overlap (``prefetch``, ``keep_decoded``), and ``benchmarks/gpu_check.sh --dry-run``, so
the GPU check cannot rot between the sessions that have a GPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from PIL import Image

import i2i.data
from i2i.core.errors import InvalidArgumentError
from i2i.data import AlignedDataset, UnalignedDataset, keep_decoded, prefetch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import peak  # noqa: E402
import process_cost  # noqa: E402
import whole_run  # noqa: E402


# -- prefetch ------------------------------------------------------------------------------------
def test_prefetch_keeps_order_and_runs_ahead_in_another_thread():
    seen: list[str] = []

    def produce():
        for i in range(5):
            seen.append(threading.current_thread().name)
            yield i

    assert list(prefetch(produce(), depth=2)) == [0, 1, 2, 3, 4]
    assert set(seen) == {"i2i-prefetch"}


def test_prefetch_raises_the_loader_error_at_its_item():
    def produce():
        yield 1
        raise ValueError("bad batch")

    items = prefetch(produce())
    assert next(items) == 1
    with pytest.raises(ValueError, match="bad batch"):
        next(items)


def test_prefetch_stops_its_thread_when_the_consumer_stops():
    produced: list[int] = []

    def produce():
        for i in range(1000):
            produced.append(i)
            yield i

    for item in prefetch(produce(), depth=2):
        if item == 3:
            break
    time.sleep(0.1)
    assert len(produced) <= 3 + 2 + 2  # the item taken, the queue, the one being put
    assert not any(t.name == "i2i-prefetch" for t in threading.enumerate())


def test_prefetch_runs_torch_on_one_thread_and_leaves_the_step_its_cores():
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        inside: list[int] = []

        def produce():
            for i in range(3):
                inside.append(torch.get_num_threads())
                yield i

        assert list(prefetch(produce())) == [0, 1, 2]
        assert inside == [1, 1, 1]  # no second OpenMP team beside the training step's
        assert torch.get_num_threads() == 2  # the consumer keeps its own
        later: list[int] = []
        thread = threading.Thread(target=lambda: later.append(torch.get_num_threads()))
        thread.start()
        thread.join()
        assert later == [2]  # and threads started afterwards get the process's count again
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("depth", [0, -1, 1.5, True])
def test_prefetch_rejects_a_bad_depth(depth):
    with pytest.raises(InvalidArgumentError, match="depth"):
        prefetch([1], depth=depth)


# -- keep_decoded --------------------------------------------------------------------------------
def _folder(path: Path, count: int, size: int = 8) -> Path:
    path.mkdir(parents=True)
    for i in range(count):
        Image.new("RGB", (size, size), (10 * i, 0, 0)).save(path / f"{i}.png")
    return path


@pytest.fixture
def decode_calls(monkeypatch):
    calls: list[str] = []
    load = i2i.data.load_image

    def counting(path, channels=3, min_side=None):
        calls.append(str(path))
        return load(path, channels, min_side)

    monkeypatch.setattr(i2i.data.datasets, "load_image", counting)
    return calls


def test_keep_decoded_decodes_each_image_once(tmp_path, decode_calls):
    _folder(tmp_path / "trainA", 3)
    _folder(tmp_path / "trainB", 5)
    dataset = UnalignedDataset(tmp_path)
    assert keep_decoded(dataset, max_bytes=2**20)
    for epoch in range(3):
        for i in range(len(dataset)):
            item = dataset[epoch * len(dataset) + i]
            assert item["A"].shape == (3, 8, 8)
    assert sorted(decode_calls) == sorted(set(decode_calls))  # never twice
    assert dataset.cache.bytes == 8 * 3 * 8 * 8


def test_keep_decoded_declines_a_dataset_too_big_for_the_budget(tmp_path, decode_calls):
    _folder(tmp_path / "trainA", 4)
    _folder(tmp_path / "trainB", 4)
    dataset = UnalignedDataset(tmp_path)
    assert not keep_decoded(dataset, max_bytes=3 * 8 * 8 * 5)  # 8 images need 8 x 192 bytes
    assert dataset.cache is None
    decode_calls.clear()
    dataset[0], dataset[0]
    assert len(decode_calls) == 4  # decoded every time, as before


def test_keep_decoded_aligned_pairs_and_other_datasets(tmp_path):
    _folder(tmp_path / "trainA", 2)
    _folder(tmp_path / "trainB", 2)
    aligned = AlignedDataset(tmp_path)
    assert keep_decoded(aligned, max_bytes=2**20)
    first = aligned[0]
    assert aligned[0]["A"] is first["A"] and aligned[2]["B"] is first["B"]
    assert not keep_decoded([1, 2, 3], max_bytes=2**20)


def test_a_kept_unreadable_image_is_still_skipped(tmp_path):
    _folder(tmp_path / "trainA", 1)
    _folder(tmp_path / "trainB", 1)
    (tmp_path / "trainB" / "broken.png").write_bytes(b"not an image")
    dataset = UnalignedDataset(tmp_path)
    assert keep_decoded(dataset, max_bytes=2**20)
    items = [dataset[i] for i in range(4 * len(dataset))]
    assert any(item["B"] is None and item["skipped"] for item in items)


def test_prefetched_kept_loader_gives_the_batches_of_the_plain_one(tmp_path):
    _folder(tmp_path / "trainA", 3)
    _folder(tmp_path / "trainB", 5)

    def batches(dataset):
        sampler = i2i.data.EpochSampler(len(dataset), seed=1)
        sampler.set_epoch(2)
        return torch.utils.data.DataLoader(
            dataset, batch_size=2, sampler=sampler, collate_fn=i2i.data.collate
        )

    plain = list(batches(UnalignedDataset(tmp_path)))
    kept = UnalignedDataset(tmp_path)
    assert keep_decoded(kept, max_bytes=2**20)
    ahead = list(prefetch(batches(kept)))
    assert [b["A_path"] for b in ahead] == [b["A_path"] for b in plain]
    assert [b["B_path"] for b in ahead] == [b["B_path"] for b in plain]
    assert all(torch.equal(x["B"], y["B"]) for x, y in zip(ahead, plain, strict=True))


# -- peak and FLOPs --------------------------------------------------------------------------------
def test_count_flops_of_a_matmul_and_rate_fields():
    a = torch.ones(16, 32)
    assert peak.count_flops(lambda: a @ a.T) == 2 * 16 * 32 * 16
    fields = peak.rate_fields(
        4 * 10**9, 2.0, {"peak_matmul_gflops": 8.0, "peak_conv_gflops": 4.0}, per="image"
    )
    assert fields["gflop_per_image"] == 4.0 and fields["gflops"] == 2.0
    assert fields["of_peak_matmul"] == 0.25 and fields["of_peak_conv"] == 0.5


def test_measure_peak_reports_both_rates():
    measured = peak.measure_peak("cpu", "fp32", quick=True)
    assert measured["peak_matmul_gflops"] > 0 and measured["peak_conv_gflops"] > 0


# -- the official peer ---------------------------------------------------------------------------
def test_peer_command_passes_only_the_options_the_official_checkout_declares(tmp_path, monkeypatch):
    source = tmp_path / "official"
    (source / "options").mkdir(parents=True)
    (source / "options" / "base_options.py").write_text(
        "parser.add_argument('--dataroot')\nparser.add_argument('--gpu_ids')\n"
        "parser.add_argument('--netG')\nparser.add_argument('--crop_size')\n"
    )
    (source / "options" / "train_options.py").write_text(
        "parser.add_argument('--n_epochs')\nparser.add_argument('--no_html')\n"
    )
    monkeypatch.setenv(whole_run.PEER_ENV, str(source))
    args = whole_run.parse_args(["--gen", "resnet9", "--size", "128", "--device", "cpu"])
    commands = whole_run.peer_commands(args, tmp_path / "data", tmp_path, steps=7)
    official, cwd = commands["official"]
    assert cwd == source and official[1] == str(source / "train.py")
    flags = official[2:]
    assert flags[flags.index("--netG") + 1] == "resnet_9blocks"
    assert flags[flags.index("--gpu_ids") + 1] == "-1"
    assert flags[flags.index("--crop_size") + 1] == "128"
    assert "--no_html" in flags and "--display_id" not in flags
    ours, _ = commands["i2i"]
    assert ours[ours.index("--max-images") + 1] == "7"


def test_the_official_checkout_defaults_to_the_shared_anchors(tmp_path, monkeypatch):
    monkeypatch.delenv(whole_run.PEER_ENV, raising=False)
    monkeypatch.setattr(whole_run, "ANCHOR", tmp_path / "absent")
    assert whole_run.parse_args([]).official is None
    anchor = tmp_path / "anchors" / "pytorch-CycleGAN-and-pix2pix"
    anchor.mkdir(parents=True)
    monkeypatch.setattr(whole_run, "ANCHOR", anchor)
    assert whole_run.parse_args([]).official == str(anchor)
    assert whole_run.parse_args(["--official", "off"]).official is None
    monkeypatch.setenv(whole_run.PEER_ENV, str(tmp_path / "elsewhere"))
    assert whole_run.parse_args([]).official == str(tmp_path / "elsewhere")


def test_official_stand_ins_import_where_the_packages_are_missing(tmp_path, monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    env, stubbed = whole_run.official_env(tmp_path)
    assert stubbed == ["wandb", "dominate"]
    code = (
        "import wandb, dominate\n"
        "from dominate.tags import meta, h3, table, tr, td, p, a, img, br\n"
        "assert wandb.run is None\n"
        "try:\n    wandb.init()\nexcept RuntimeError:\n    print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.stdout.strip() == "ok", proc.stderr


def test_one_epoch_is_the_larger_domain_capped_in_batches(tmp_path):
    for domain, count in (("A", 3), ("B", 5)):
        (tmp_path / f"train{domain}").mkdir()
        for i in range(count):
            Image.new("RGB", (8, 8)).save(tmp_path / f"train{domain}" / f"{i}.png")
    assert whole_run.steps_in_one_epoch(tmp_path, images=100, batch=1) == 5
    assert whole_run.steps_in_one_epoch(tmp_path, images=4, batch=1) == 4
    assert whole_run.steps_in_one_epoch(tmp_path, images=100, batch=2) == 3


def test_process_cost_counts_the_childs_own_children(tmp_path):
    """A child that holds 150 MB in a grandchild: the tree's PSS sees it, the exit code and the
    wall time come back."""
    code = (
        "import subprocess, sys\n"
        "grandchild = 'b = bytearray(150 * 2**20); import time; time.sleep(1.5)'\n"
        "subprocess.run([sys.executable, '-c', grandchild])\n"
        "sys.exit(3)\n"
    )
    measured = process_cost.run_measured([sys.executable, "-c", code], tmp_path / "log")
    assert measured["returncode"] == 3 and measured["wall_s"] >= 1.5
    assert measured["max_rss_mb"] >= 150  # the grandchild's, reaped by the child
    if Path("/proc/self/smaps_rollup").exists():
        assert measured["peak_pss_mb"] >= 150


# -- the GPU check, dry -----------------------------------------------------------------------------
@pytest.mark.slow
def test_gpu_check_dry_run(tmp_path):
    """Every stage runs on the CPU and reports FLOP rates against a peak measured in the run."""
    env = {k: v for k, v in os.environ.items() if k != whole_run.PEER_ENV}
    env["OUT"] = str(tmp_path)
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    stages = {line["stage"]: line for line in lines if line["bench"] == "gpu_check"}
    assert set(stages) == {
        "environment",
        "train_speed",
        "train_speed_compile",
        "train_speed_no_channels_last",
        "apply_speed",
        "whole_run",
        "whole_run_vs_official",
        "train_bf16_compile",
        "ddp_two_gpus",
        "quality_suite",
    }
    assert all(stage.get("rc", 0) == 0 for stage in stages.values())
    # The known-answer suite at toy scale: the untrained identity and one trained run, tabulated.
    if "skipped" not in stages["quality_suite"]:
        scored = [line for line in lines if line["bench"] == "quality"]
        assert [line["name"] for line in scored] == ["identity.dusk", "cyclegan-quality.dusk.s0"]
        assert "error" not in scored[1], scored[1]
        assert "cyclegan-quality" in (tmp_path / "quality_suite" / "table.md").read_text()
    measured = [line for line in lines if line["bench"] in ("train_speed", "apply_speed")]
    measured += [line for line in lines if line["bench"] == "whole_run"]
    assert measured and all("of_peak_conv" in line and line["gflops"] > 0 for line in measured)
    variants = {line["variant"] for line in lines if line["bench"] == "whole_run"}
    assert variants == {"baseline", "overlap"}
    # Only the comparison's stage runs the official code, and only when its checkout is there.
    peers = [line for line in lines if line["bench"] == "whole_run_peer"]
    assert len(peers) == 1
    ran = "skipped" not in peers[0]
    assert not ran or ("official_error" not in peers[0] and "i2i_error" not in peers[0]), peers[0]
    assert ran == whole_run.ANCHOR.is_dir()
    assert (tmp_path / "train_bf16_compile" / "overlap" / "samples" / "latest.png").is_file()


def test_whole_run_without_shared_photos_trains_on_enlarged_toy_jpegs(tmp_path, monkeypatch):
    monkeypatch.setattr(whole_run, "SHARED", tmp_path / "absent")
    root = whole_run.dataset_root(whole_run.parse_args(["--images", "2"]), tmp_path)
    for domain in "AB":
        images = sorted((root / f"train{domain}").iterdir())
        assert [p.suffix for p in images] == [".jpg", ".jpg"]
        assert Image.open(images[0]).size == (256, 256)


def test_gpu_check_only_runs_the_stages_named(tmp_path):
    env = {**os.environ, "OUT": str(tmp_path)}
    script = str(ROOT / "benchmarks" / "gpu_check.sh")
    proc = subprocess.run(
        ["bash", script, "--dry-run", "--only", "environment"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    ran = [line["stage"] for line in lines if line["bench"] == "gpu_check" and "rc" in line]
    assert ran == ["environment"]
    assert subprocess.run(["bash", script, "--bogus"], capture_output=True).returncode == 2


def test_scale_detail_scores_the_three_ways_against_the_look_of_the_photo(tmp_path, monkeypatch):
    """benchmarks/scale_detail.py: a model whose change the coarse scale holds whole (a
    colour shift) comes close to its truth with the input's detail or as a local map, and the
    enlarged output alone loses the photo's detail."""
    import scale_detail

    from i2i.infer.translator import Translator
    from tests.test_apply import Tint, pattern, save

    for i in range(2):
        save(tmp_path / "photos" / f"{i}.png", pattern(96, 80, seed=i))
    photos = sorted((tmp_path / "photos").iterdir())
    config = {"training": {"load_size": 24}}  # as export records a run trained at 24 px
    monkeypatch.setattr(
        scale_detail.i2i,
        "load",
        lambda run, **kwargs: Translator(config, {"AtoB": Tint()}, **kwargs),
    )
    record = scale_detail.measure(
        tmp_path, lambda x: (Tint()(x[None] * 2 - 1)[0] + 1) / 2, photos, 1
    )
    assert record["photos"] == 2 and record["size"] == [80, 96]
    assert record["own_db"] == float("inf")  # the shift itself, exactly
    assert record["input_db"] > 10 and record["none_db"] < record["input_db"] - 3
    assert record["local_db"] > 10  # a shift is a local linear map of the input
    assert record["own_local_db"] > 10
    assert set(record) >= {"own_s", "own_local_s", "none_s", "input_s", "local_s", "identity_psnr"}
    look = lambda x: (Tint()(x[None] * 2 - 1)[0] + 1) / 2  # noqa: E731
    scale_detail.write_figure(tmp_path, look, photos[0], tmp_path / "figure.jpg")
    assert Image.open(tmp_path / "figure.jpg").width >= 7 * 96  # seven ways side by side


def test_colour_map_scores_the_sets_map_against_a_look_that_recolours(tmp_path):
    """benchmarks/colour_map.py: where the look is a symmetric colour map of every photo, the
    map the two sets tell is that look (beyond 30 dB over the input), and moving the mean
    colour alone is not. The B set holds the same photos in another order (unpaired, with no
    chance difference), the test pairs others."""
    import colour_map

    from i2i.data import save_image

    matrix = torch.tensor([[0.7, 0.15, 0.0], [0.15, 0.8, 0.1], [0.0, 0.1, 0.6]])
    generator = torch.Generator().manual_seed(0)
    for split, count in (("train", 24), ("test", 4)):
        coarse = torch.rand(count, 3, 3, 3, generator=generator) * 1.6 - 0.8
        a = torch.nn.functional.interpolate(coarse, size=24, mode="bilinear")
        b = torch.einsum("ij,njhw->nihw", matrix, a if split == "test" else a.flip(0)) + 0.1
        for domain, images in (("A", a), ("B", b)):
            for i, image in enumerate(images):
                save_image(image.clamp(-1, 1), tmp_path / f"{split}{domain}" / f"{i}.png")
    record = colour_map.measure(tmp_path)
    assert record["n_train"] == [24, 24] and record["n_test"] == 4
    assert record["colour_map"] > 30 > record["mean_only"] + 10


def test_colour_map_scores_the_regions_against_a_look_that_varies_over_the_frame(tmp_path):
    """benchmarks/colour_map.py: where the look darkens the top of every photo, neither the map
    nor moving the mean colour makes it, and the map with its regional gains and offsets makes
    most of it: 13 dB over the input against under 5 (not all: the shade's spread over the
    frame widens the colour map itself, and each cell's numbers are shrunk by the photos'
    spread). The B set holds the same photos in another order, so the sets differ by the look
    alone."""
    import colour_map

    from i2i.data import save_image

    generator = torch.Generator().manual_seed(1)
    shade = torch.linspace(-0.3, 0.0, 4)[:, None].expand(4, 4)
    for split, count in (("train", 96), ("test", 4)):
        coarse = torch.rand(count, 3, 3, 3, generator=generator) * 0.6 - 0.3
        a = torch.nn.functional.interpolate(coarse, size=24, mode="bilinear")
        looked = a + torch.nn.functional.interpolate(shade[None, None], size=24, mode="bilinear")
        b = looked if split == "test" else looked.flip(0)
        for domain, images in (("A", a), ("B", b)):
            for i, image in enumerate(images):
                save_image(image.clamp(-1, 1), tmp_path / f"{split}{domain}" / f"{i}.png")
    record = colour_map.measure(tmp_path)
    assert record["colour_regions"] > max(record["colour_map"], record["mean_only"]) + 6
