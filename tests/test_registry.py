"""Registry behaviour: create with checked kwargs, glob listing, describe, and every error."""

import pytest

from i2i.core.errors import DuplicateComponentError, InvalidArgumentError, UnknownComponentError
from i2i.core.registry import Registry


def make_registry() -> Registry:
    registry = Registry("generator")

    def resnet9(in_channels: int = 3, ngf: int = 64):
        """A ResNet generator, its first sentence
        on two lines (e.g. ``resnet9``, i.e. Kim's). Not the summary.

        More text that is not the summary."""
        return ("resnet9", in_channels, ngf)

    def resnet6(ngf: int = 64):
        return ("resnet6", ngf)

    def needs(size: int, **extra):
        return (size, extra)

    registry.register(resnet9, plugin="core")
    registry.register(resnet6, plugin="core")
    registry.register(needs, "needs_size", plugin="third")
    return registry


def test_create_passes_kwargs():
    assert make_registry().create("resnet9", ngf=8) == ("resnet9", 3, 8)


def test_list_with_glob_patterns():
    registry = make_registry()
    assert registry.list() == ["needs_size", "resnet6", "resnet9"]
    assert registry.list("resnet*") == ["resnet6", "resnet9"]
    assert registry.list("*9") == ["resnet9"]
    assert registry.list("nothing*") == []


def test_describe_gives_summary_parameters_and_plugin():
    component = make_registry().get("resnet9")
    assert component.summary == (
        "A ResNet generator, its first sentence on two lines (e.g. ``resnet9``, i.e. Kim's)."
    )
    assert component.plugin == "core"
    assert [(p.name, p.default) for p in component.parameters] == [("in_channels", 3), ("ngf", 64)]


def test_unknown_name_lists_close_matches_and_plugins():
    import i2i

    with pytest.raises(UnknownComponentError) as info:
        i2i.create_generator("resnet8")
    message = str(info.value)
    assert "unknown generator 'resnet8'" in message
    assert "did you mean" in message and "resnet9" in message
    assert "installed plugins:" in message and "cyclegan" in message
    assert "\n" not in message


def test_unknown_kwarg_names_the_valid_ones():
    with pytest.raises(InvalidArgumentError) as info:
        make_registry().create("resnet9", ngf=8, channels=4)
    assert "'channels'" in str(info.value)
    assert "valid arguments: in_channels, ngf" in str(info.value)


def test_missing_required_argument():
    with pytest.raises(InvalidArgumentError, match="needs argument"):
        make_registry().create("needs_size")


def test_var_kwargs_factories_accept_anything():
    assert make_registry().create("needs_size", size=3, anything=1) == (3, {"anything": 1})


def test_duplicate_name_names_both_plugins():
    registry = make_registry()
    with pytest.raises(DuplicateComponentError) as info:
        registry.register(lambda: None, "resnet9", plugin="other")
    assert "'core'" in str(info.value) and "'other'" in str(info.value)


def test_name_defaults_to_name_attribute_then_function_name():
    registry = Registry("task")

    class Recipe:
        name = "recipe"

    def helper():
        pass

    registry.register(Recipe)
    registry.register(helper)
    assert registry.list() == ["helper", "recipe"]


# -- factories registered by reference ("module:attribute") ---------------------------------------
REFERENCED = '''
"""A module that a registry names but has not imported."""

IMPORTED = []
IMPORTED.append(True)


def small(in_channels: int = 3, out_channels: int = 3, width: int = 4):
    """A small generator, imported on first use (its first sentence wraps onto a second
    line). Not the summary.

    Not the summary either."""
    return ("small", in_channels, out_channels, width)


class Base:
    """A base whose docstring is inherited.

    Not the summary."""


class Inherits(Base):
    pass
'''


@pytest.fixture
def referenced(tmp_path, monkeypatch):
    import sys

    (tmp_path / "referenced_parts.py").write_text(REFERENCED)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "referenced_parts"
    sys.modules.pop("referenced_parts", None)


def test_a_reference_is_listed_from_its_source_and_imported_on_first_use(referenced):
    import sys

    registry = Registry("generator")
    registry.register(f"{referenced}:small", plugin="third")
    assert registry.list() == ["small"]
    (listed,) = list(registry)
    assert (listed.name, listed.plugin, listed.summary) == (
        "small",
        "third",
        "A small generator, imported on first use (its first sentence wraps onto a second line).",
    )
    assert referenced not in sys.modules  # listing read the source only
    assert registry.create("small", width=8) == ("small", 3, 3, 8)
    assert referenced in sys.modules
    component = registry.get("small")
    assert [p.name for p in component.parameters] == ["in_channels", "out_channels", "width"]
    assert component.factory is sys.modules[referenced].small
    assert sys.modules[referenced].IMPORTED == [True]  # imported once


def test_a_reference_without_a_docstring_in_its_source_is_imported_for_its_summary(referenced):
    registry = Registry("loss")
    registry.register(f"{referenced}:Inherits", "inherits")
    assert registry.get("inherits").summary == "A base whose docstring is inherited."


def test_a_reference_runs_the_kind_protocol_when_it_is_imported(referenced, tmp_path):
    from i2i.core.protocol import check_generator_factory

    (tmp_path / "no_channels.py").write_text('def net(width: int = 1):\n    """A net."""\n')
    registry = Registry("generator", check_generator_factory)
    registry.register("no_channels:net")  # not imported: nothing to check yet
    with pytest.raises(InvalidArgumentError, match="does not take in_channels"):
        registry.create("net")


def test_bad_references_are_one_line_errors(referenced):
    from i2i.core.errors import I2IError

    registry = Registry("generator")
    for target in ("no_colon", f"{referenced}:", ":small", f"{referenced}:not-a-name"):
        with pytest.raises(InvalidArgumentError, match=r"must read 'package\.module:attribute'"):
            registry.register(target, "x")
    with pytest.raises(InvalidArgumentError, match="no module named 'absent_module_xyz'"):
        registry.register("absent_module_xyz:net")
    registry.register(f"{referenced}:missing", "missing", summary="named, but not there")
    with pytest.raises(I2IError) as info:
        registry.create("missing")
    message = str(info.value)
    assert "generator 'missing' of plugin '<direct>' cannot be imported" in message
    assert "AttributeError" in message and "\n" not in message


def test_a_huge_wrong_value_is_shown_cut_to_one_readable_line():
    """A config.json may hold a megabyte where a number belongs; the error stays one line."""

    def tiny(ngf: int = 8) -> int:
        return ngf

    registry = Registry("generator")
    registry.register(tiny, "tiny")
    with pytest.raises(InvalidArgumentError) as error:
        registry.create("tiny", ngf="x" * 100_000)
    message = str(error.value)
    assert "argument ngf must be int, got 'xxx" in message and message.endswith("...")
    assert len(message) < 200 and "\n" not in message
