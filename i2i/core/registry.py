"""One registry class; generators, discriminators, losses, augmentations and tasks are instances.

Factories are plain callables (functions or classes). Their signature is the contract: ``create``
checks keyword arguments against it, ``describe`` reads defaults from it, and the first sentence
of the docstring is the one-line summary that ``i2i list`` shows.

A factory may also be registered by reference, ``"package.module:attribute"``: it is imported
the first time it is used (``get``, ``create``), and until then its summary is read from the
module's source. That is how ``i2i list`` and ``i2i --help`` show every built-in part without
importing torch.
"""

from __future__ import annotations

import ast
import difflib
import fnmatch
import functools
import importlib
import importlib.util
import inspect
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from i2i.core.errors import (
    BuildError,
    DuplicateComponentError,
    I2IError,
    InvalidArgumentError,
    UnknownComponentError,
    short,
)
from i2i.core.protocol import check_generator, check_generator_factory


@dataclass(frozen=True)
class Parameter:
    name: str
    default: Any
    annotation: str
    required: bool


@dataclass(frozen=True)
class Listed:
    """What ``i2i list`` shows of a component, known without importing it."""

    kind: str
    name: str
    plugin: str
    summary: str


@dataclass(frozen=True)
class Reference(Listed):
    """A factory registered as ``"module:attribute"``, not imported yet."""

    target: str


@dataclass(frozen=True)
class Component(Listed):
    """A registered factory and where it came from."""

    factory: Callable[..., Any]
    parameters: tuple[Parameter, ...] = field(default=())
    accepts_any_kwargs: bool = False


def component_name(factory: Callable[..., Any] | str, name: str | None = None) -> str:
    """The name a factory registers under: ``name``, else its ``name`` attribute or
    ``__name__``; a reference's attribute."""
    if name:
        return name
    if isinstance(factory, str):
        return factory.rpartition(":")[2]
    return getattr(factory, "name", None) or factory.__name__


# A stop, then a capital, a backtick or a bracket; not the stops of "e.g." and "i.e.".
_SENTENCE_END = re.compile(r"(?<!\be\.g\.)(?<!\bi\.e\.)(?<=[.!?])\s+(?=[A-Z`(])")


def _first_sentence(doc: str) -> str:
    """A docstring's first sentence on one line: a summary that wraps onto a second source
    line is not cut in the middle of a clause."""
    paragraph = " ".join(re.split(r"\n\s*\n", inspect.cleandoc(doc))[0].split())
    return _SENTENCE_END.split(paragraph, maxsplit=1)[0]


def _summary(factory: Callable[..., Any]) -> str:
    return _first_sentence(inspect.getdoc(factory) or "")


@functools.cache
def _docstrings(path: str) -> dict[str, str]:
    """Summaries of the top-level functions and classes in a source file, from their docstrings."""
    with open(path, encoding="utf-8") as file:
        tree = ast.parse(file.read(), path)
    found = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            doc = ast.get_docstring(node)
            if doc and doc.strip():
                found[node.name] = _first_sentence(doc)
    return found


def _split_reference(target: str) -> tuple[str, str]:
    module, _, attribute = target.partition(":")
    if not module or not attribute.isidentifier():
        raise InvalidArgumentError(
            f"a factory reference must read 'package.module:attribute', got {target!r}"
        )
    return module, attribute


def _referenced_summary(target: str) -> str:
    """The summary of a referenced factory, from its module's source when it has one there
    (nothing is imported but the module's packages), else from the imported factory."""
    module, attribute = _split_reference(target)
    spec = importlib.util.find_spec(module)
    if spec is None:
        raise InvalidArgumentError(f"no module named {module!r} (factory reference {target!r})")
    if spec.origin and spec.origin.endswith(".py"):
        summary = _docstrings(spec.origin).get(attribute)
        if summary is not None:
            return summary
    return _summary(getattr(importlib.import_module(module), attribute))


def _parameters(factory: Callable[..., Any]) -> tuple[tuple[Parameter, ...], bool]:
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):
        return (), True
    params, any_kwargs = [], False
    for p in sig.parameters.values():
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            any_kwargs = True
            continue
        if p.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.POSITIONAL_ONLY):
            continue
        annotation = p.annotation if p.annotation is not inspect.Parameter.empty else ""
        if not isinstance(annotation, str):
            annotation = getattr(annotation, "__name__", str(annotation))
        required = p.default is inspect.Parameter.empty
        params.append(Parameter(p.name, None if required else p.default, annotation, required))
    return tuple(params), any_kwargs


# Annotations checked before a factory runs: a string where a number belongs fails far inside
# it ("not all arguments converted during string formatting"), or worse, builds something.
_SIMPLE_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "str": (str,),
}


def _fits(annotation: str, value: Any) -> bool:
    """Whether ``value`` fits a plain ``int``/``float``/``bool``/``str`` annotation (any other
    annotation is the factory's to check)."""
    kinds = _SIMPLE_TYPES.get(annotation)
    if kinds is None:
        return True
    if isinstance(value, bool) and bool not in kinds:
        return False
    return isinstance(value, kinds)


class Registry:
    """Named factories of one kind, filled by plugins through a ``register_*`` hook."""

    def __init__(
        self,
        kind: str,
        check_factory: Callable[[str, Any, set[str], bool], None] | None = None,
        check_built: Callable[[str, Any], None] | None = None,
    ) -> None:
        self.kind = kind
        # A kind's protocol, if it has one: checked on registration and on each creation.
        self._check_factory, self._check_built = check_factory, check_built
        self._components: dict[str, Component] = {}
        # Set by the plugin manager (``bind``), so that this module needs nothing from it.
        self._loader: Callable[[], None] | None = None
        self._plugin_names: Callable[[], list[str]] = list

    def bind(self, loader: Callable[[], None], plugin_names: Callable[[], list[str]]) -> None:
        """Fill lazily through ``loader`` on first read; name ``plugin_names()`` in errors."""
        self._loader, self._plugin_names = loader, plugin_names

    # -- filling -----------------------------------------------------------------------------
    def register(
        self,
        factory: Callable[..., Any] | str,
        name: str | None = None,
        *,
        plugin: str = "<direct>",
        summary: str | None = None,
    ) -> Callable[..., Any] | str:
        """Add ``factory`` under ``name`` (default: see ``component_name``); a string
        ``"module:attribute"`` registers a reference, imported when first used."""
        name = component_name(factory, name)
        if not isinstance(name, str) or not name:
            raise InvalidArgumentError(f"{self.kind} names must be non-empty strings, got {name!r}")
        if name in self._components:
            other = self._components[name].plugin
            raise DuplicateComponentError(
                f"{self.kind} {name!r} is registered by both plugin {other!r} and plugin "
                f"{plugin!r}; uninstall one of them or rename the component"
            )
        if isinstance(factory, str):
            summary = _referenced_summary(factory) if summary is None else summary
            self._components[name] = Reference(self.kind, name, plugin, summary, factory)
        else:
            self._components[name] = self._component(factory, name, plugin, summary)
        return factory

    def _component(
        self, factory: Callable[..., Any], name: str, plugin: str, summary: str | None
    ) -> Component:
        params, any_kwargs = _parameters(factory)
        if self._check_factory is not None:
            self._check_factory(name, factory, {p.name for p in params}, any_kwargs)
        return Component(
            kind=self.kind,
            name=name,
            plugin=plugin,
            summary=summary if summary is not None else _summary(factory),
            factory=factory,
            parameters=params,
            accepts_any_kwargs=any_kwargs,
        )

    def _imported(self, reference: Reference) -> Component:
        """The component a reference names, imported and checked (once)."""
        module, attribute = _split_reference(reference.target)
        try:
            factory = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as error:
            raise I2IError(
                f"{self.kind} {reference.name!r} of plugin {reference.plugin!r} cannot be "
                f"imported from {reference.target} ({type(error).__name__}: {error}); "
                f"reinstall or update the plugin"
            ) from error
        component = self._component(factory, reference.name, reference.plugin, reference.summary)
        self._components[reference.name] = component
        return component

    def unregister(self, name: str) -> None:
        self._components.pop(name, None)

    # -- reading -----------------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if self._loader is not None:
            self._loader()

    def __contains__(self, name: object) -> bool:
        self._ensure_loaded()
        return name in self._components

    def __iter__(self) -> Iterator[Listed]:
        """Every component, by name, as listed: references stay unimported."""
        self._ensure_loaded()
        return iter(sorted(self._components.values(), key=lambda c: c.name))

    def __len__(self) -> int:
        self._ensure_loaded()
        return len(self._components)

    def get(self, name: str) -> Component:
        """The component called ``name``; an unknown name lists close matches and plugins."""
        self._ensure_loaded()
        try:
            entry = self._components[name]
        except KeyError:
            raise UnknownComponentError(self._unknown_message(name)) from None
        return self._imported(entry) if isinstance(entry, Reference) else entry

    @property
    def plural(self) -> str:
        """``generators``, ``losses``: the name of ``i2i list`` for this kind."""
        return self.kind + ("es" if self.kind.endswith("s") else "s")

    def _unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(str(name), list(self._components), n=3, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        return (
            f"unknown {self.kind} {name!r}; {hint}available: "
            f"{', '.join(sorted(self._components)) or 'none'} "
            f"(installed plugins: {', '.join(self._plugin_names()) or 'none'}); "
            f"`i2i list {self.plural}` shows them all"
        )

    def list(self, pattern: str = "*") -> list[str]:
        """Sorted names matching a glob pattern, like ``timm.list_models``."""
        self._ensure_loaded()
        return sorted(n for n in self._components if fnmatch.fnmatchcase(n, pattern))

    def check_kwargs(self, name: str, kwargs: dict[str, Any]) -> Component:
        """Fail with the valid names when ``kwargs`` holds one that ``name`` does not take."""
        component = self.get(name)
        valid = [p.name for p in component.parameters]
        unknown = sorted(set(kwargs) - set(valid))
        if unknown and not component.accepts_any_kwargs:
            raise InvalidArgumentError(
                f"{self.kind} {name!r} takes no argument {', '.join(map(repr, unknown))}; "
                f"valid arguments: {', '.join(valid) or 'none'}"
            )
        for p in component.parameters:
            if p.name in kwargs and not _fits(p.annotation, kwargs[p.name]):
                raise InvalidArgumentError(
                    f"{self.kind} {name!r} argument {p.name} must be {p.annotation}, "
                    f"got {short(kwargs[p.name])}"
                )
        missing = [p.name for p in component.parameters if p.required and p.name not in kwargs]
        if missing:
            raise InvalidArgumentError(
                f"{self.kind} {name!r} needs argument(s) {', '.join(missing)}"
            )
        return component

    def create(self, name: str, **kwargs: Any) -> Any:
        """Build the component ``name`` with checked keyword arguments."""
        component = self.check_kwargs(name, kwargs)
        try:
            built = component.factory(**kwargs)
        except BuildError:
            raise  # a component built on another (unsb_projected on projected): the inner one
        except (TypeError, ValueError) as error:
            # Usually a value of the wrong type from the command line (ngf=abc).
            raise BuildError(
                f"{self.kind} {name!r} cannot be built with {kwargs}: {error}"
            ) from error
        if self._check_built is not None:
            self._check_built(name, built)
        return built


generators = Registry("generator", check_generator_factory, check_generator)
discriminators = Registry("discriminator")
losses = Registry("loss")
augmentations = Registry("augmentation")
tasks = Registry("task")
feature_extractors = Registry("feature_extractor")

REGISTRIES: dict[str, Registry] = {
    "generators": generators,
    "discriminators": discriminators,
    "losses": losses,
    "augmentations": augmentations,
    "tasks": tasks,
    "feature_extractors": feature_extractors,
}


def find(name: str, kind: str | None = None) -> list[Component]:
    """Every component called ``name`` (of ``kind``, a key of ``REGISTRIES``, if given); none is
    an ``UnknownComponentError`` naming the closest registered name of any kind."""
    if kind is not None and kind not in REGISTRIES:
        raise InvalidArgumentError(f"unknown kind {kind!r}; kinds: {', '.join(REGISTRIES)}")
    registries = [REGISTRIES[kind]] if kind else list(REGISTRIES.values())
    found = [registry.get(name) for registry in registries if name in registry]
    if found:
        return found
    if kind:
        REGISTRIES[kind].get(name)  # raises, with that kind's close matches
    scored = [
        (difflib.SequenceMatcher(None, name, other).ratio(), registry.kind, other)
        for registry in registries
        for other in registry.list()
    ]
    score, closest_kind, closest = max(scored, default=(0.0, "", ""))
    guess = f"; did you mean {closest_kind} {closest!r}?" if score >= 0.7 else ""
    raise UnknownComponentError(
        f"nothing is registered as {short(name)}{guess} (`i2i list` shows every generator, "
        f"discriminator, loss, augmentation, task and feature extractor)"
    )
