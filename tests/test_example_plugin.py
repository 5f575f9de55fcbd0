"""The worked third-party plugin in examples/ installs, lists and creates by name."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """The example installed by pip into its own folder, so the main environment stays clean."""
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(ROOT / "examples" / "i2i-example-plugin"),
        ],
        check=True,
    )
    return target


def run(site: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True)


def test_example_plugin_shows_in_i2i_list(plugin_site):
    result = run(plugin_site, "-m", "i2i", "list", "generators")
    assert result.returncode == 0, result.stderr
    assert "tiny_separable" in result.stdout
    assert "example" in result.stdout  # the providing plugin


def test_example_plugin_generator_is_creatable_by_name(plugin_site):
    result = run(
        plugin_site,
        "-c",
        "import i2i, torch; g = i2i.create_generator('tiny_separable', ngf=8); "
        "print(tuple(g(torch.zeros(1, 3, 20, 20)).shape))",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(1, 3, 20, 20)"
