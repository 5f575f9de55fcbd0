"""Which packages install: found, never listed by hand, so a new sub-package cannot be left out.

Everything else is in pyproject.toml. Two folders install under other names (its package-dir):
plugins/ as i2i_plugins and model_cards/ as i2i.model_cards. packages.find names packages after
their folders, so the packages in those two are found here and given their installed names.
"""

from setuptools import find_packages, setup

RENAMED = {"plugins": "i2i_plugins", "model_cards": "i2i.model_cards"}

packages = find_packages(include=["i2i", "i2i.*"])
for folder, name in RENAMED.items():
    packages += [name, *(f"{name}.{package}" for package in find_packages(folder))]

setup(packages=packages)
