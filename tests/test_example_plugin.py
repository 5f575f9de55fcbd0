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


@pytest.mark.slow
def test_example_plugin_shows_in_i2i_list(plugin_site):
    result = run(plugin_site, "-m", "i2i", "list", "generators")
    assert result.returncode == 0, result.stderr
    assert "tiny_separable" in result.stdout
    assert "example" in result.stdout  # the providing plugin


@pytest.mark.slow
def test_example_plugin_generator_is_creatable_by_name(plugin_site):
    result = run(
        plugin_site,
        "-c",
        "import i2i, torch; g = i2i.create_generator('tiny_separable', ngf=8); "
        "print(tuple(g(torch.zeros(1, 3, 20, 20)).shape))",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(1, 3, 20, 20)"


@pytest.mark.slow
def test_example_task_trains_exports_and_applies(plugin_site, toy_data, tmp_path):
    """The README's "Writing a task" example: a third party's task through the public API."""
    run_dir, model = tmp_path / "run", tmp_path / "model"
    result = run(
        plugin_site, "-m", "i2i", "train", "onesided", "--data", str(toy_data), "--out",
        str(run_dir), "--ngf", "8", "--ndf", "8", "--load-size", "36", "--crop-size", "32",
        "--max-steps", "2", "--ema-decay", "0.9",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Finished 2 steps" in result.stdout
    assert run(plugin_site, "-m", "i2i", "export", str(run_dir), "-o", str(model)).returncode == 0
    applied = run(
        plugin_site, "-m", "i2i", "apply", str(model), str(toy_data / "testA"), "-o",
        str(tmp_path / "out"),
    )  # fmt: skip
    assert applied.returncode == 0, applied.stderr
    assert len(list((tmp_path / "out").iterdir())) == 2


@pytest.mark.slow
def test_example_plugin_adds_a_command_and_lists_without_torch(plugin_site):
    helped = run(plugin_site, "-m", "i2i", "--help")
    assert helped.returncode == 0, helped.stderr
    assert "tiny-size" in helped.stdout
    result = run(plugin_site, "-m", "i2i", "tiny-size", "--ngf", "8", "--blocks", "2")
    assert result.returncode == 0, result.stderr
    # stem 3->8 (3x3), two blocks of 8 (depthwise 3x3 and pointwise 1x1), head 8->3 (3x3)
    weights = (3 * 8 * 9 + 8) + 2 * ((8 * 9 + 8) + (8 * 8 + 8)) + (8 * 3 * 9 + 3)
    assert result.stdout.strip() == f"tiny_separable ngf 8, 2 blocks: {weights:,} weights"
    # registered by reference: listing the plugin's parts imports no torch
    listed = run(
        plugin_site, "-c",
        "import sys, i2i; print(i2i.list_generators('tiny*'), i2i.list_tasks('one*'), "
        "'torch' in sys.modules)",
    )  # fmt: skip
    assert listed.stdout.strip() == "['tiny_separable'] ['onesided'] False", listed.stderr
