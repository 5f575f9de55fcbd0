"""Plugin loading: built-ins through the hooks, entry points, and broken plugins isolated."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import i2i
from i2i.core.plugins import plugin_names, plugins


def test_builtins_are_plugins_registered_through_hooks():
    names = plugin_names()
    for name in ("i2i", "cyclegan", "cut", "pix2pix", "unsb"):
        assert name in names
    assert i2i.core.registry.generators.get("resnet9").plugin == "i2i"
    assert i2i.core.registry.tasks.get("cyclegan").plugin == "cyclegan"
    hooks = {p.name: p.hooks for p in plugins()}
    assert "register_generators" in hooks["i2i"] and "register_losses" in hooks["i2i"]
    assert "register_tasks" in hooks["cyclegan"]


def test_fresh_install_lists_the_built_in_components():
    assert {"resnet9", "resnet6", "unet256", "unet128"} <= set(i2i.list_generators())
    assert {"patchgan", "nlayer", "pixel", "timm"} <= set(i2i.list_discriminators())
    assert {"lsgan", "vanilla", "hinge", "wgangp", "l1", "l2"} <= set(i2i.list_losses())
    assert {"resize_crop", "scale_width", "hflip", "color_jitter", "affine"} <= set(
        i2i.list_augmentations()
    )
    assert "cyclegan" in i2i.list_tasks()


def _fake_distribution(
    root: Path, name: str, entry_points: dict[str, str], modules: dict[str, str]
):
    """An installed distribution on disk: dist-info with entry points, plus its modules."""
    info = root / f"{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    lines = "\n".join(f"{k} = {v}" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(f"[i2i]\n{lines}\n")
    for module, source in modules.items():
        (root / f"{module}.py").write_text(textwrap.dedent(source))


def _run(root: Path, code: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True
    )


@pytest.mark.slow
def test_broken_plugins_are_reported_once_and_others_still_load(tmp_path):
    _fake_distribution(
        tmp_path,
        "broken-plugins",
        {"broken_import": "broken_import", "broken_hook": "broken_hook", "good": "good_plugin"},
        {
            "broken_import": "raise ImportError('no module named made_up_dependency')\n",
            "broken_hook": """
                import i2i
                def ok(in_channels: int = 3, out_channels: int = 3, ngf: int = 1):
                    return ngf
                @i2i.hookimpl
                def register_generators(register):
                    register(ok, "half_registered")
                    raise RuntimeError("bug in plugin")
            """,
            "good_plugin": """
                import i2i
                from torch import nn
                def good_gen(in_channels: int = 3, out_channels: int = 3, ngf: int = 2):
                    \"\"\"A generator from a healthy plugin.\"\"\"
                    return nn.Conv2d(in_channels, ngf, 1)
                @i2i.hookimpl
                def register_generators(register):
                    register(good_gen)
            """,
        },
    )
    result = _run(
        tmp_path,
        """
        import warnings
        warnings.simplefilter("always")
        import i2i
        print(i2i.list_generators())
        print(i2i.list_generators())
        print(i2i.create_generator("good_gen", ngf=5))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert "'good_gen'" in result.stdout and "'resnet9'" in result.stdout
    assert "half_registered" not in result.stdout  # a failed hook leaves nothing behind
    assert result.stdout.strip().endswith("Conv2d(3, 5, kernel_size=(1, 1), stride=(1, 1))")
    assert result.stderr.count("plugin 'broken_import' failed") == 1
    assert "made_up_dependency" in result.stderr
    assert result.stderr.count("plugin 'broken_hook' failed") == 1
    assert "bug in plugin" in result.stderr
    # the CLI says it on one line each, from its first step (--help loads plugins too)
    for argv in (["list", "generators"], ["--help"]):
        cli = _run(
            tmp_path, f"import sys; from i2i.cli import main; sys.argv = ['i2i', *{argv}]; main()"
        )
        assert cli.returncode == 0, cli.stderr
        lines = [line for line in cli.stderr.splitlines() if "broken_import" in line]
        assert len(lines) == 1 and lines[0].startswith("warning: i2i plugin 'broken_import'")
        assert "PluginLoadWarning" not in cli.stderr


@pytest.mark.slow
def test_a_plugin_taking_a_built_in_name_is_reported_with_both_names(tmp_path):
    _fake_distribution(
        tmp_path,
        "clash",
        {"clash": "clash_plugin"},
        {
            "clash_plugin": """
                import i2i
                def resnet9():
                    return None
                @i2i.hookimpl
                def register_generators(register):
                    register(resnet9)
            """
        },
    )
    result = _run(tmp_path, "import i2i; print(i2i.core.registry.generators.get('resnet9').plugin)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "i2i"
    assert "'i2i'" in result.stderr and "'clash'" in result.stderr


@pytest.mark.slow
def test_a_plugin_failing_in_a_later_hook_leaves_no_component_behind(tmp_path):
    _fake_distribution(
        tmp_path,
        "later-fail",
        {"later": "later_fail"},
        {
            "later_fail": """
                import i2i
                def early_gen(in_channels: int = 3, out_channels: int = 3):
                    return None
                @i2i.hookimpl
                def register_generators(register):
                    register(early_gen)
                @i2i.hookimpl
                def register_tasks(register):
                    raise RuntimeError("task hook broke")
            """
        },
    )
    result = _run(tmp_path, "import i2i; print(i2i.list_generators())")
    assert result.returncode == 0, result.stderr
    assert "early_gen" not in result.stdout and "resnet9" in result.stdout
    assert "task hook broke" in result.stderr


def test_a_misspelt_hook_is_named_with_the_hook_meant():
    from i2i.core.plugins import PluginLoadWarning, plugins, pm, register_plugin

    class Misspelt:
        @staticmethod
        @i2i.hookimpl
        def register_generator(register):  # register_generators
            raise AssertionError("never called")

    with pytest.warns(PluginLoadWarning) as caught:
        register_plugin(Misspelt, name="misspelt")
    try:
        assert [str(w.message) for w in caught] == [
            "i2i plugin 'misspelt' implements register_generator, which is no i2i hook, so it "
            "is never called; did you mean register_generators?"
        ]
        assert next(p for p in plugins() if p.name == "misspelt").hooks == []
    finally:
        pm.unregister(name="misspelt")
