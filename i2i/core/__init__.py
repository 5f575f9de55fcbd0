"""The core: registries, hook specs, the plugin manager, errors, devices, progress.

Importing the package wires every registry to the plugin manager, so a registry is filled with
the built-in and installed plugins the first time anything reads it.
"""

from i2i.core import plugins as _plugins  # noqa: F401  (binds the registries)
