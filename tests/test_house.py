"""The shape of the code: no import circles, inference without training, plugins on the public API."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

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


@pytest.mark.slow
def test_inference_never_imports_training(tmp_path):
    """Loading a model folder and translating leaves i2i.train out of sys.modules."""
    script = textwrap.dedent(
        f"""
        import sys
        import torch
        import i2i
        from i2i.models.folder import save_model, make_config, net_spec
        from i2i.core.registry import generators
        net = i2i.create_generator("resnet6", ngf=4)
        spec = net_spec(generators, "resnet6", {{"ngf": 4}})
        config = make_config("cyclegan", {{"AtoB": spec}})
        save_model(__import__("pathlib").Path(r"{tmp_path}") / "m", config, {{"AtoB": net}})
        for name in [m for m in sys.modules if m.startswith("i2i.train")]:
            del sys.modules[name]
        translator = i2i.load(r"{tmp_path}" + "/m", device="cpu")
        out = translator(torch.rand(1, 3, 20, 20) * 2 - 1)
        i2i.list_generators()
        assert out.shape == (1, 3, 20, 20)
        loaded = sorted(m for m in sys.modules if m.startswith("i2i.train"))
        print("TRAIN", loaded)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "TRAIN []" in result.stdout, result.stdout


def test_plugins_and_examples_import_only_the_public_api():
    offenders = []
    for folder in ("plugins", "examples"):
        for path in (ROOT / folder).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.ImportFrom) and node.module:
                    names = [node.module]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                offenders += [
                    f"{path.relative_to(ROOT)}: {n}" for n in names if n.startswith("i2i.")
                ]
    assert not offenders, offenders


def test_everything_a_task_needs_is_public():
    import i2i

    for name in i2i.__all__:
        assert getattr(i2i, name) is not None, name
