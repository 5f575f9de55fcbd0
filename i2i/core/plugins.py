"""The plugin manager: i2i's own parts first, then every entry point in group ``i2i``.

Built-in parts are plain pluggy plugins registered through the same hooks as a third party's.
Each plugin is imported and each of its hooks called in isolation, so one broken plugin is
reported once (a ``PluginLoadWarning`` naming it) and all the others still load.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import warnings
from dataclasses import dataclass, field
from typing import Any

import pluggy

from i2i.core import hookspecs
from i2i.core.errors import I2IWarning
from i2i.core.registry import REGISTRIES, component_name

# i2i's own parts, a plugin in its own right (like llm's DEFAULT_PLUGINS): name -> module.
DEFAULT_PLUGINS = {"i2i": "i2i.parts"}
ENTRY_POINT_GROUP = "i2i"
REGISTRY_HOOKS = {f"register_{kind}": registry for kind, registry in REGISTRIES.items()}
HOOK_NAMES = sorted(name for name in vars(hookspecs) if name.startswith("register_"))


class PluginLoadWarning(I2IWarning):
    """A plugin failed to import or register; the rest of i2i works without it."""


@dataclass
class PluginInfo:
    name: str
    version: str
    module: str
    hooks: list[str] = field(default_factory=list)
    # The installed distribution that provides it (``pip install PACKAGE``); None for a plugin
    # registered at run time.
    package: str | None = None


pm = pluggy.PluginManager("i2i")
pm.add_hookspecs(hookspecs)

_loaded = False
_info: dict[str, PluginInfo] = {}
failures: dict[str, str] = {}


def _report(plugin: str, error: BaseException) -> None:
    message = f"{type(error).__name__}: {error}"
    if plugin in failures:
        return
    failures[plugin] = message
    warnings.warn(
        f"i2i plugin {plugin!r} failed and was skipped ({message})",
        PluginLoadWarning,
        stacklevel=3,
    )


def _register_module(module: Any, name: str, version: str, package: str | None = None) -> None:
    pm.register(module, name=name)
    callers = pm.get_hookcallers(module) or []
    for caller in callers:
        if caller.spec is None:  # pluggy keeps it waiting for a spec that will never come
            close = difflib.get_close_matches(caller.name, HOOK_NAMES, n=1)
            warnings.warn(
                f"i2i plugin {name!r} implements {caller.name}, which is no i2i hook, so it is "
                f"never called"
                + (
                    f"; did you mean {close[0]}?" if close else f" (hooks: {', '.join(HOOK_NAMES)})"
                ),
                PluginLoadWarning,
                stacklevel=3,
            )
    hooks = sorted(caller.name for caller in callers if caller.spec is not None)
    _info[name] = PluginInfo(name, version, module.__name__, hooks, package)


def _recording_register(registry: Any, plugin: str, added: list[tuple[Any, str]]) -> Any:
    """The ``register`` callable a hook receives: attributes the plugin, remembers names."""

    def register(factory: Any, name: str | None = None, *, summary: str | None = None) -> Any:
        registry.register(factory, name, plugin=plugin, summary=summary)
        added.append((registry, component_name(factory, name)))
        return factory

    return register


def _call_registration_hooks(only: str | None = None) -> None:
    added: dict[str, list[tuple[Any, str]]] = {}
    for hook_name, registry in REGISTRY_HOOKS.items():
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            plugin = impl.plugin_name
            if plugin in failures or (only and plugin != only):
                continue
            mine = added.setdefault(plugin, [])
            try:
                impl.function(register=_recording_register(registry, plugin, mine))
            except Exception as error:  # a third party's bug must not break i2i
                for owner, name in mine:  # a skipped plugin leaves nothing registered
                    owner.unregister(name)
                _report(plugin, error)


def load_plugins() -> None:
    """Import and register every plugin once; later calls do nothing."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    from i2i import __version__

    for name, module_name in DEFAULT_PLUGINS.items():
        _register_module(importlib.import_module(module_name), name, __version__, "i2i")
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.has_plugin(ep.name) or ep.name in failures:
            continue
        version = ep.dist.version if ep.dist is not None else "?"
        package = ep.dist.metadata["Name"] if ep.dist is not None else None
        try:
            _register_module(ep.load(), ep.name, version, package)
        except Exception as error:
            _report(ep.name, error)
    _call_registration_hooks()


def register_plugin(module: Any, name: str | None = None, version: str = "?") -> None:
    """Register a plugin object at run time (tests, notebooks); its components appear at once."""
    load_plugins()
    name = name or getattr(module, "__name__", repr(module))
    _register_module(module, name, version)
    _call_registration_hooks(only=name)


def plugin_names() -> list[str]:
    load_plugins()
    return sorted(_info)


def plugin_package(name: str) -> str | None:
    """The distribution that provides plugin ``name``, if it was installed as one."""
    load_plugins()
    return _info[name].package if name in _info else None


def plugins() -> list[PluginInfo]:
    """Installed plugins with versions and the hooks they implement."""
    load_plugins()
    return [_info[n] for n in sorted(_info)]


for _registry in REGISTRIES.values():
    _registry.bind(load_plugins, plugin_names)


def add_plugin_commands(cli: Any) -> None:
    """Let each plugin add click commands; a failing plugin is reported and skipped."""
    load_plugins()
    for impl in pm.hook.register_commands.get_hookimpls():
        if impl.plugin_name in failures:
            continue
        try:
            impl.function(cli=cli)
        except Exception as error:
            _report(impl.plugin_name, error)
