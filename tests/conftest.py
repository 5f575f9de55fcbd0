"""Shared fixtures: tiny generated datasets and an isolated i2i home for the toy cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from i2i.toydata import make_toy_unpaired


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tiny networks gain nothing from threads, and on a loaded 2-core machine oversubscribed
    OpenMP threads make them many times slower; subprocesses inherit OMP_NUM_THREADS."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    os.environ["OMP_NUM_THREADS"] = "1"
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _isolated_i2i_home(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("I2I_HOME", str(tmp_path_factory.getbasetemp() / "i2i_home"))


@pytest.fixture(scope="session")
def toy_data(tmp_path_factory) -> Path:
    """6 training and 2 test images per domain at 32 px."""
    return make_toy_unpaired(tmp_path_factory.mktemp("toy"), n_train=6, n_test=2, size=32)


TINY = {
    "gen": "resnet6",
    "ngf": 8,
    "ndf": 8,
    "load_size": 36,
    "crop_size": 32,
    "workers": 0,
    "log_every": 2,
    "sample_every": 4,
    "save_every": 1000,
    "num_samples": 2,
    "epochs": 1,
    "epochs_decay": 1,
}


def tiny_cli_args(data: Path, out: Path) -> list[str]:
    """``i2i train cyclegan`` flags for a tiny run on ``data`` (for subprocess tests)."""
    return [
        "-m", "i2i", "train", "cyclegan", "--data", str(data), "--out", str(out),
        "--gen", "resnet6", "--ngf", "8", "--ndf", "8", "--load-size", "36", "--crop-size", "32",
        "--workers", "0",
    ]  # fmt: skip


@pytest.fixture(scope="session")
def hub_server(tmp_path_factory):
    """A Hub-compatible HTTP server on 127.0.0.1 for the whole session (tests/hubserver.py)."""
    from tests.hubserver import hub_server_fixture

    yield from hub_server_fixture(tmp_path_factory)


@pytest.fixture
def hub(hub_server, tmp_path):
    """huggingface_hub pointed at ``hub_server`` with an empty cache of its own."""
    from tests.hubserver import hub_client_fixture

    yield from hub_client_fixture(hub_server, tmp_path)
