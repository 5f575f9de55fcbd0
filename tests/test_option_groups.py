"""Options as typed groups: each key has one owner (its group) and one reader (the group's
module), the run config is never read by key, and generators follow a checked protocol."""

from __future__ import annotations

import ast
import dataclasses
import sys
from pathlib import Path

import pytest
import torch

import i2i
from i2i.core.errors import InvalidArgumentError
from i2i.core.protocol import check_generator, check_generator_factory
from i2i.core.registry import Registry, generators, tasks
from i2i.kit.options import OptionGroup
from tests.conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
TASKS = ("cyclegan", "pix2pix", "cut", "fastcut")


@pytest.mark.parametrize("name", TASKS)
def test_each_option_belongs_to_one_group(name):
    task_cls = tasks.get(name).factory
    owners: dict[str, list[str]] = {}
    for group in task_cls.groups():
        for key in group.names():
            owners.setdefault(key, []).append(group.__name__)
    assert {k: v for k, v in owners.items() if len(v) > 1} == {}
    assert [o.name for o in task_cls.declared_options()] == list(owners)


@pytest.fixture
def group_reads(monkeypatch):
    """Every attribute read of an option group, as (group, key, module of the reading code)."""
    seen: set[tuple[type, str, str]] = set()

    def traced(self, key):
        value = object.__getattribute__(self, key)
        if key in {f.name for f in dataclasses.fields(type(self))}:
            seen.add((type(self), key, sys._getframe(1).f_globals.get("__name__", "?")))
        return value

    monkeypatch.setattr(OptionGroup, "__getattribute__", traced)
    return seen


@pytest.mark.parametrize("name", TASKS)
def test_each_group_is_read_by_its_reader_alone(name, group_reads, tmp_path):
    """A whole run (build, steps, samples, eval, checkpoint) and its export read every group
    only from the module that owns it."""
    from i2i.models.export import export_run

    small = {"num_patches": 16, "nce_channels": 16} if "cut" in name else {}
    if name in ("cut", "fastcut"):  # one way: eval measures FID/KID only
        small["eval_extractor"] = "efficientnet_lite0"
    task = i2i.create_task(
        name, **{**TINY, **small}, max_steps=2, eval_every=2, out=str(tmp_path / "run")
    )
    i2i.fit(task)
    export_run(tmp_path / "run", tmp_path / "model", False, False)
    own_reader = type(task).__module__
    wrong = sorted(
        f"{group.__name__}.{key} read in {module}"
        for group, key, module in group_reads
        if module != (group.reader or own_reader)
    )
    assert wrong == []
    read_groups = {group for group, _, _ in group_reads}
    assert set(type(task).groups()) <= read_groups  # the trace saw every group


def _config_reads(path: Path) -> list[str]:
    """``x.config["key"]``, ``x.config.get("key")`` and the same through a name bound to
    ``x.config`` in that function."""
    found = []
    for function in ast.walk(ast.parse(path.read_text())):
        if not isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef | ast.Module):
            continue
        aliases = {
            target.id
            for node in ast.walk(function)
            if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "config"
            for target in node.targets
            if isinstance(target, ast.Name)
        }

        def is_config(node: ast.AST) -> bool:
            return (isinstance(node, ast.Attribute) and node.attr == "config") or (
                isinstance(node, ast.Name) and node.id in aliases  # noqa: B023
            )

        for node in ast.walk(function):
            if isinstance(node, ast.Subscript) and is_config(node.value):
                key = node.slice
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and is_config(node.func.value)
                and node.args
            ):
                key = node.args[0]
            else:
                continue
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                found.append(f"{path}:{node.lineno} {key.value}")
    return sorted(set(found))  # a function's reads are seen again in its module


def test_no_code_reads_a_task_config_by_key():
    """Tasks, the kit and the trainer read typed groups; the flat config is only resolved
    (i2i/kit/options.py, config.py) and recorded."""
    options = {o.name for name in tasks.list() for o in tasks.get(name).factory.declared_options()}
    sources = [*(ROOT / "i2i").rglob("*.py"), *(ROOT / "plugins").rglob("*.py")]
    sources += (ROOT / "examples").rglob("*.py")
    resolving = {ROOT / "i2i" / "kit" / "options.py", ROOT / "i2i" / "kit" / "config.py"}
    reads = [
        read
        for path in sources
        if path not in resolving and "build" not in path.parts
        for read in _config_reads(path)
        if read.split()[-1] in options
    ]
    assert reads == []


def test_the_scan_finds_reads_by_key(tmp_path):
    source = tmp_path / "sample.py"
    source.write_text(
        "def f(self):\n    c = self.config\n    return c['lr'] + self.config.get('seed')\n"
    )
    assert [r.split()[-1] for r in _config_reads(source)] == ["lr", "seed"]


def test_task_defaults_must_name_known_options():
    class Broken(i2i.GANTask):
        name = "broken"
        defaults = {"gem": "resnet6"}

    with pytest.raises(i2i.I2IError, match="gem"):
        Broken.declared_options()


@pytest.mark.parametrize(
    ("task", "flag"),
    [
        ("cyclegan", "--dropout"),
        ("pix2pix", "--no-dropout"),
        ("cut", "--no-antialias"),
        ("cut", "--no-nce-idt"),
        ("fastcut", "--nce-idt"),
        ("fastcut", "--no-flip-equivariance"),
        ("cyclegan", "--no-flip"),
        ("cyclegan", "--compile"),
    ],
)
def test_a_boolean_flag_flips_the_task_default(task, flag):
    flags = {o.flag for o in tasks.get(task).factory.declared_options()}
    assert flag in flags


# -- the generator protocol ---------------------------------------------------------------------
def test_a_generator_factory_must_take_the_channels():
    registry = Registry("generator", check_generator_factory, check_generator)

    def grey_only(ngf: int = 8) -> torch.nn.Module:
        return torch.nn.Identity()

    with pytest.raises(InvalidArgumentError, match="in_channels and out_channels"):
        registry.register(grey_only)

    def flexible(**kwargs) -> torch.nn.Module:
        return torch.nn.Identity()

    registry.register(flexible)  # **kwargs may take them


def test_declared_sizes_are_checked_at_registration_and_creation():
    registry = Registry("generator", check_generator_factory, check_generator)

    class Odd(torch.nn.Module):
        size_multiple = 0

        def __init__(self, in_channels: int = 3, out_channels: int = 3):
            super().__init__()

    with pytest.raises(InvalidArgumentError, match=r"Odd\.size_multiple must be a positive"):
        registry.register(Odd)

    def late(in_channels: int = 3, out_channels: int = 3) -> torch.nn.Module:
        net = torch.nn.Identity()
        net.min_size = "8"
        return net

    def not_a_module(in_channels: int = 3, out_channels: int = 3):
        return lambda x: x

    registry.register(late)
    registry.register(not_a_module)
    with pytest.raises(InvalidArgumentError, match="min_size must be a positive"):
        registry.create("late")
    with pytest.raises(InvalidArgumentError, match=r"not a torch\.nn\.Module"):
        registry.create("not_a_module")


def test_built_in_generators_follow_the_protocol():
    from i2i.core.protocol import size_limits

    built_in = [c.name for c in generators if c.plugin == "i2i"]
    assert built_in
    for name in built_in:
        net = generators.create(name, in_channels=1, out_channels=3, ngf=8)
        multiple, smallest = size_limits(net)
        side = max(multiple, smallest)
        assert net(torch.zeros(1, 1, side, side)).shape == (1, 3, side, side)


def test_a_group_field_must_be_an_option():
    @dataclasses.dataclass(frozen=True)
    class Loose(i2i.OptionGroup):
        weight: float = 1.0

    with pytest.raises(InvalidArgumentError, match=r"Loose declares weight without i2i\.option"):
        Loose.declared()


def test_a_misspelt_option_is_named_with_the_one_meant(tmp_path):
    from tests.training import resolve_config

    (tmp_path / "options.yaml").write_text("lod_size: 40\n")
    with pytest.raises(InvalidArgumentError, match=r"lod_size in config file; did you mean load_size\? \(valid: data,"):  # fmt: skip
        resolve_config("cyclegan", {}, tmp_path / "options.yaml")
    with pytest.raises(InvalidArgumentError, match=r"did you mean crop_size for crop_sise, lr for lrr\?"):  # fmt: skip
        resolve_config("cyclegan", {"crop_sise": 8, "lrr": 1.0, "zzz": 1})


def test_recipe_none_drops_the_recipe_a_config_file_names(tmp_path):
    from tests.training import resolve_config

    (tmp_path / "options.yaml").write_text("recipe: quality\n")
    assert resolve_config("cyclegan", {}, tmp_path / "options.yaml")["disc"] == "projected"
    config = resolve_config("cyclegan", {"recipe": "none"}, tmp_path / "options.yaml")
    assert config["recipe"] is None and config["disc"] == "patchgan"
