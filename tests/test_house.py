"""The shape of the code, read from the sources (AST): no import circles, arrows that point down,\ninference without training, plugins on the public API; and `import i2i` without torch."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Every i2i module and the i2i modules it imports, at any depth of the file."""
    modules = {_module_name(p): p for p in (ROOT / "i2i").rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("i2i"):
                for alias in node.names:
                    full = f"{node.module}.{alias.name}"
                    found.add(full if full in modules else node.module)
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("i2i")}
        # The package root (i2i/__init__) only re-exports lazily; a package's own __init__ is
        # not a dependency of its submodules.
        graph[name] = {m for m in found if m in modules and m != "i2i" and m != name}
    return graph


def test_no_import_circles_between_modules():
    graph = _imports()
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            cycle = [*path[path.index(node) :], node]
            # A package importing its own submodule (core/__init__ -> core.plugins) is no circle.
            if not (len(cycle) == 3 and cycle[1].startswith(cycle[0] + ".")):
                raise AssertionError("import circle: " + " -> ".join(cycle))
            return
        if node in done:
            return
        for dep in sorted(graph.get(node, ())):
            visit(dep, [*path, node])
        done.add(node)

    for module in sorted(graph):
        visit(module, [])


# Arrows point down (/work/shared/DESIGN.md): a module imports its own layer or lower ones.
LAYERS = (
    ("i2i.core",),
    (
        "i2i.nets",
        "i2i.losses",
        "i2i.augment",
        "i2i.diffaugment",
        "i2i.data",
        "i2i.bridge",
        "i2i.viz",
        "i2i.toydata",
        "i2i.parts",
    ),
    ("i2i.kit", "i2i.models"),
    ("i2i.train", "i2i.infer", "i2i.eval", "i2i.demo"),
    ("i2i.cli", "i2i.__main__"),
)
# Only these import the trainer: inference, models, evaluation, the demo and the task kit never do.
TRAIN_USERS = ("i2i.cli", "i2i.train")


def _group(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_arrows_point_down_and_only_the_cli_and_train_import_train():
    graph = _imports()
    layer = {group: depth for depth, groups in enumerate(LAYERS) for group in groups}
    unplaced = sorted({_group(m) for m in graph if m != "i2i"} - set(layer))
    assert not unplaced, f"place these in LAYERS: {unplaced}"
    assert all(dep.startswith("i2i.core.") for dep in graph["i2i"]), graph["i2i"]
    broken = set()
    for module, deps in graph.items():
        if module == "i2i":
            continue
        for dep in deps:
            up = layer[_group(dep)] > layer[_group(module)]
            into_train = _group(dep) == "i2i.train" and _group(module) not in TRAIN_USERS
            if up or into_train:
                broken.add((module, dep))
    assert not broken, sorted(broken)


def test_import_i2i_and_its_listing_commands_do_not_import_torch():
    """`import i2i`, `i2i --help`, `i2i list` and `i2i train --help` leave torch unloaded."""
    script = textwrap.dedent(
        """
        import sys
        import i2i
        assert "torch" not in sys.modules, "import i2i"
        from click.testing import CliRunner
        from i2i.cli import cli
        for args in (["--help"], ["list"], ["plugins"], ["train", "--help"]):
            result = CliRunner().invoke(cli, args)
            assert result.exit_code == 0, (args, result.output)
            assert "torch" not in sys.modules, args
        print(len(i2i.list_generators()))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 4


def test_plugins_and_examples_import_only_the_public_api():
    """``import i2i`` and names from it, never an i2i submodule (``i2i.x`` or ``from i2i import
    x`` where x is a module)."""
    submodules = {p.stem for p in (ROOT / "i2i").iterdir() if p.suffix == ".py" or p.is_dir()}
    offenders = []
    for folder in ("plugins", "examples"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.ImportFrom) and node.module == "i2i":
                    names = [f"i2i.{a.name}" for a in node.names if a.name in submodules]
                elif isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                offenders += [
                    f"{path.relative_to(ROOT)}: {n}" for n in names if n.startswith("i2i.")
                ]
    assert not offenders, offenders


def test_every_public_name_is_the_object_of_its_home_module():
    import importlib

    import i2i

    assert set(i2i._LAZY) <= set(i2i.__all__), set(i2i._LAZY) - set(i2i.__all__)
    for name in i2i.__all__:
        value = getattr(i2i, name)
        home = i2i._LAZY.get(name)
        if home is None:
            assert name in vars(i2i), name  # defined in i2i/__init__.py itself
        else:
            assert value is getattr(importlib.import_module(home), name), name
