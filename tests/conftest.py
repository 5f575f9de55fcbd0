"""Shared fixtures: tiny generated datasets, an isolated i2i home for the toy cache, and a fake
Hugging Face Hub that the real huggingface_hub client is pointed at."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest
import torch

from i2i.toydata import make_toy_unpaired
from tests.hubserver import HubServer, client_env


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


HUB: HubServer | None = None
HF_HOME = Path(tempfile.mkdtemp(prefix="i2i-tests-hf-"))


def pytest_configure(config):
    """Point huggingface_hub at the fake Hub, with a cache of the session's own, before any test
    module imports it: the client reads these variables once, on import. A developer's own
    token and cache are never used; subprocesses inherit the same Hub."""
    global HUB
    assert "huggingface_hub" not in sys.modules, "huggingface_hub was imported before conftest"
    HUB = HubServer()
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_CACHE", "HF_TOKEN_PATH"):
        os.environ.pop(name, None)
    os.environ.update(client_env(HUB.url, HF_HOME))


def pytest_unconfigure(config):
    if HUB is not None:
        HUB.stop()
    shutil.rmtree(HF_HOME, ignore_errors=True)


@pytest.fixture
def hub():
    """The fake Hub (tests/hubserver.py), serving; fails the test if the fake itself broke."""
    assert HUB is not None
    HUB.start()
    failures = len(HUB.errors)
    yield HUB
    assert HUB.errors[failures:] == [], HUB.errors[failures:]
