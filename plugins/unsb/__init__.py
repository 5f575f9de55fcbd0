"""UNSB, the unpaired neural Schrödinger bridge (Kim et al., ICLR 2024), written only against
``import i2i``: the task and its time-conditioned networks.

Registered by reference, so listing them imports neither the networks nor torch.
"""

from collections.abc import Callable
from typing import Any

import i2i


@i2i.hookimpl
def register_generators(register: Callable[..., Any]) -> None:
    register("i2i_plugins.unsb.networks:unsb_resnet9")
    register("i2i_plugins.unsb.networks:unsb_resnet6")


@i2i.hookimpl
def register_discriminators(register: Callable[..., Any]) -> None:
    register("i2i_plugins.unsb.networks:unsb_patchgan")
    register("i2i_plugins.unsb.networks:unsb_projected")


@i2i.hookimpl
def register_tasks(register: Callable[..., Any]) -> None:
    register("i2i_plugins.unsb.task:UNSB", "unsb")
