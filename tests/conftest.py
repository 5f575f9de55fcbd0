"""Shared fixtures: tiny generated datasets and an isolated i2i home for the toy cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from i2i.toydata import make_toy_unpaired


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
