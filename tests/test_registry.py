"""Registry behaviour: create with checked kwargs, glob listing, describe, and every error."""

import pytest

from i2i.core.errors import DuplicateComponentError, InvalidArgumentError, UnknownComponentError
from i2i.core.registry import Registry


def make_registry() -> Registry:
    registry = Registry("generator")

    def resnet9(in_channels: int = 3, ngf: int = 64):
        """A ResNet generator.

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
    component = make_registry().describe("resnet9")
    assert component.summary == "A ResNet generator."
    assert component.plugin == "core"
    assert [(p.name, p.default) for p in component.parameters] == [("in_channels", 3), ("ngf", 64)]


def test_unknown_name_lists_close_matches_and_plugins():
    import i2i

    with pytest.raises(UnknownComponentError) as info:
        i2i.create_generator("resnet8")
    message = str(info.value)
    assert "unknown generator 'resnet8'" in message
    assert "did you mean" in message and "resnet9" in message
    assert "installed plugins:" in message and "i2i.nets" in message
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
