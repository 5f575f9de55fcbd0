"""``i2i apply`` at scale: each torchrun process takes its share of the inputs, and outputs that
exist are kept, so a stopped job resumes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import i2i.data.images as images_module
from i2i.core.device import resolve_device
from i2i.core.errors import InvalidArgumentError, WriteError
from i2i.core.files import temp_sibling
from i2i.core.progress import progress_bar
from i2i.core.ranks import Ranks
from i2i.infer.apply import apply_paths, job_counts
from i2i.infer.translator import Translator
from i2i.models.folder import load_model
from tests.test_apply import RESNET, build_model, pattern, save


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return build_model(tmp_path_factory.mktemp("m") / "model", {"AtoB": RESNET})


@pytest.fixture(scope="module")
def translator(model) -> Translator:
    config, nets = load_model(model)
    return Translator(config, nets, device="cpu")


@pytest.fixture
def folder(tmp_path) -> Path:
    """Six 32 px images, one in a sub-folder."""
    root = tmp_path / "in"
    for i in range(5):
        save(root / f"{i}.png", pattern(32, 32, seed=i))
    save(root / "sub" / "5.png", pattern(32, 32, seed=5))
    return root


def outputs(out: Path) -> dict[str, np.ndarray]:
    return {
        p.relative_to(out).as_posix(): np.asarray(Image.open(p))
        for p in sorted(out.rglob("*"))
        if p.is_file()
    }


# -- shares --------------------------------------------------------------------------------------
@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize("n", [0, 1, 3, 6, 7, 13])
def test_shards_cover_every_input_exactly_once(world_size, n):
    items = [f"img{i:03d}.png" for i in range(n)]
    shards = [Ranks(rank, world_size).shard(items) for rank in range(world_size)]
    assert sorted(item for shard in shards for item in shard) == items
    assert max(map(len, shards)) - min(map(len, shards)) <= 1  # balanced


def test_ranks_come_from_torchruns_environment(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert Ranks.from_env() == Ranks(0, 1, 0) and Ranks.from_env().prefix == ""
    monkeypatch.setenv("RANK", "5")
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert Ranks.from_env() == Ranks(5, 8, 1) and Ranks.from_env().prefix == "rank 5/8: "
    monkeypatch.setenv("RANK", "8")
    with pytest.raises(InvalidArgumentError, match="impossible"):
        Ranks.from_env()
    monkeypatch.setenv("RANK", "one")
    with pytest.raises(InvalidArgumentError, match="whole numbers"):
        Ranks.from_env()


def test_each_process_takes_its_own_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setenv("LOCAL_RANK", "3")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    assert resolve_device("auto") == torch.device("cuda", 3)
    assert resolve_device("cuda") == torch.device("cuda", 3)
    assert resolve_device("cuda:0") == torch.device("cuda", 0)  # named, so kept
    assert resolve_device("cpu") == torch.device("cpu")
    monkeypatch.delenv("LOCAL_RANK")
    assert resolve_device("auto") == torch.device("cuda")


def test_shares_of_a_folder_add_up_to_the_whole_run(translator, folder, tmp_path):
    whole = apply_paths(translator, [folder], tmp_path / "whole", progress=False)
    shared = tmp_path / "shared"
    reports = [
        apply_paths(translator, [folder], shared, progress=False, ranks=Ranks(rank, 2))
        for rank in range(2)
    ]
    assert [len(r.written) for r in reports] == [3, 3]
    assert not set(reports[0].written) & set(reports[1].written)
    assert sorted(reports[0].written + reports[1].written) == sorted(
        shared / p.relative_to(tmp_path / "whole") for p in whole.written
    )
    mine, single = outputs(shared), outputs(tmp_path / "whole")
    assert mine.keys() == single.keys() and len(mine) == 6
    assert all(np.array_equal(mine[name], single[name]) for name in mine)
    assert reports[1].summary().startswith("rank 1/2: Wrote 3 files")
    # One process alone needs no others to sum with (several are summed in the torchrun test).
    assert job_counts(whole) == (6, 0, 0)


# -- resuming ------------------------------------------------------------------------------------
def test_skip_existing_rewrites_nothing_and_a_rerun_writes_only_what_is_missing(
    translator, folder, tmp_path
):
    out = tmp_path / "out"
    first = apply_paths(translator, [folder], out, progress=False)
    assert len(first.written) == 6
    old = 1_000_000_000  # an mtime no write can leave
    for path in first.written:
        os.utime(path, ns=(old, old))
    again = apply_paths(translator, [folder], out, progress=False)
    assert again.written == [] and sorted(again.skipped_existing) == sorted(first.written)
    assert all(path.stat().st_mtime_ns == old for path in first.written)
    assert "kept 6 existing outputs" in again.summary()

    gone = [out / "1.png", out / "sub" / "5.png"]
    for path in gone:
        path.unlink()
    rerun = apply_paths(translator, [folder], out, progress=False)
    assert sorted(rerun.written) == sorted(gone) and len(rerun.skipped_existing) == 4
    kept = [path for path in first.written if path not in gone]
    assert all(path.stat().st_mtime_ns == old for path in kept)
    assert all(path.stat().st_mtime_ns != old for path in gone)


def test_an_interrupted_write_leaves_nothing_a_rerun_would_skip(
    translator, folder, tmp_path, monkeypatch
):
    """A write that dies half-way (a killed job, a full disk) leaves no partial output."""
    out = tmp_path / "out"
    real_to_pil = images_module.to_pil

    class DiesHalfWay:
        def __init__(self, image):
            self.image = real_to_pil(image)

        def save(self, file, **kwargs):
            file.write(b"\x89PNG half an image")
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(images_module, "to_pil", DiesHalfWay)
    with pytest.raises(WriteError):
        apply_paths(translator, [folder], out, progress=False)
    assert [p for p in out.rglob("*") if p.is_file()] == []  # no output, no temp file
    monkeypatch.setattr(images_module, "to_pil", real_to_pil)
    assert len(apply_paths(translator, [folder], out, progress=False).written) == 6


def test_a_rerun_removes_the_temp_files_killed_writes_of_its_share_left(
    translator, folder, tmp_path
):
    """A job killed mid-write (SIGKILL, out of memory) leaves hidden temp files, a whole
    video's worth each. Each process of the rerun removes those of its own share's outputs
    once they are an hour old, and nothing else: not a live write's, not another's."""
    out, hours_ago = tmp_path / "out", time.time() - 2 * 3600

    def leftover(name: str, mtime: float = hours_ago, path: Path | None = None) -> Path:
        path = path or temp_sibling(out / name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x89PNG half an image")
        os.utime(path, (mtime, mtime))
        return path

    save(out / "0.png", pattern(32, 32))  # an output a rerun keeps; its killed rewrite goes
    # Rank 0 of 2 takes 0, 2 and 4.png; rank 1 takes 1, 3 and sub/5.png.
    gone = [leftover("0.png"), leftover("2.png")]
    kept = [
        leftover("4.png", mtime=time.time()),  # a write that may be live
        leftover("1.png"),  # rank 1's
        leftover("other.png"),  # not an output of this job
        leftover("", path=out / ".2.png.0123abcd.jpg"),  # another suffix: not a temp sibling
    ]
    apply_paths(translator, [folder], out, progress=False, ranks=Ranks(0, 2))
    assert not any(path.exists() for path in gone)
    assert all(path.exists() for path in kept)
    apply_paths(translator, [folder], out, progress=False, ranks=Ranks(1, 2))
    assert not kept[1].exists() and kept[2].exists()
    # A video's temp file ends in its suffix, by which PyAV chooses the container.
    video_temp = temp_sibling(out / "clip.mp4")
    assert video_temp.name.startswith(".clip.mp4.") and video_temp.suffix == ".mp4"


def test_progress_of_one_of_several_processes_is_prefixed_lines(capsys):
    with progress_bar(prefix="rank 1/2: ") as bar:
        task = bar.add_task("translating", total=3)
        for _ in range(3):
            bar.advance(task)
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(line.startswith("rank 1/2: translating ") for line in lines)
    assert lines[-1].startswith("rank 1/2: translating 3/3")


# -- torchrun ------------------------------------------------------------------------------------
def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=300
    )


def _torchrun_apply(model: Path, folder: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return _run(
        *("-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"),
        *("-m", "i2i", "apply", str(model), str(folder), "-o", str(out), "--device", "cpu"),
    )


@pytest.mark.slow
def test_torchrun_two_processes_translate_a_folder_once(model, folder, tmp_path):
    single = _run("-m", "i2i", "apply", str(model), str(folder), "-o", str(tmp_path / "single"))
    assert single.returncode == 0, single.stdout + single.stderr
    out = tmp_path / "out"
    result = _torchrun_apply(model, folder, out)
    assert result.returncode == 0, result.stdout + result.stderr
    for rank in range(2):
        assert f"rank {rank}/2: Wrote 3 files" in result.stdout
    assert "All 2 processes: wrote 6, kept 0 existing, failed 0." in result.stdout
    mine, theirs = outputs(out), outputs(tmp_path / "single")
    assert mine.keys() == theirs.keys() and len(mine) == 6
    assert all(np.array_equal(mine[name], theirs[name]) for name in mine)

    # A rerun keeps every output; a bad input fails its process's share without stopping the
    # other process, and the job exits with an error once both are done.
    (folder / "2_broken.png").write_bytes(b"not a png")
    old = 1_000_000_000
    for path in out.rglob("*.png"):
        os.utime(path, ns=(old, old))
    rerun = _torchrun_apply(model, folder, out)
    assert rerun.returncode != 0
    assert "All 2 processes: wrote 0, kept 6 existing, failed 1." in rerun.stdout, rerun.stderr
    assert "rank 0/2: Wrote 0 files" in rerun.stdout and "2_broken.png" in rerun.stdout
    assert "rank 1/2: Wrote 0 files" in rerun.stdout  # finished, not stopped by rank 0's failure
    assert all(path.stat().st_mtime_ns == old for path in out.rglob("*.png"))


def test_a_device_type_this_machine_lacks_is_a_one_line_error(monkeypatch):
    """torch knows mps, xpu, hpu...; one that is absent here fails before any network runs."""
    monkeypatch.setattr("i2i.core.device._available", lambda kind: kind == "xpu")
    with pytest.raises(InvalidArgumentError, match="'mps' asked for, but mps is not available"):
        resolve_device("mps")
    assert resolve_device("xpu:1") == torch.device("xpu", 1)


def test_the_wait_for_the_other_processes_is_polled_so_ctrl_c_stops_it(monkeypatch):
    """gloo's own wait cannot be interrupted: a process that finished its share ignored
    Ctrl-C until torchrun killed it, and waited 7 days for a process that had died."""
    import torch.distributed as dist

    from i2i.core import ranks as ranks_module

    polls = []

    class Work:
        def is_completed(self) -> bool:
            polls.append(1)
            return len(polls) > 3

        def wait(self) -> None:
            pass

    def all_reduce(total, async_op=False):
        assert async_op, "a blocking all_reduce cannot be interrupted"
        total.mul_(2)  # as if a second process had the same counts
        return Work()

    monkeypatch.setattr(dist, "is_initialized", lambda: True)
    monkeypatch.setattr(dist, "get_backend", lambda: "gloo")
    monkeypatch.setattr(dist, "all_reduce", all_reduce)
    two = Ranks(rank=0, world_size=2)
    assert ranks_module.sum_over_ranks(two, [3, 1, 0]) == [6, 2, 0] and len(polls) == 4

    def ctrl_c(seconds):
        raise KeyboardInterrupt

    polls.clear()
    monkeypatch.setattr(ranks_module.time, "sleep", ctrl_c)
    destroyed = []
    monkeypatch.setattr(dist, "is_initialized", lambda: False)  # a group of its own
    monkeypatch.setattr(dist, "init_process_group", lambda *args, **kwargs: None)
    monkeypatch.setattr(dist, "destroy_process_group", lambda: destroyed.append(1))
    with pytest.raises(KeyboardInterrupt):
        ranks_module.sum_over_ranks(two, [3, 1, 0])
    assert destroyed == []  # it would wait for the others to reach the collective
