"""The pix2pix task (Isola et al. 2017) for paired translation.

Registered by reference, so listing tasks imports neither the task nor torch.
"""

from collections.abc import Callable
from typing import Any

import i2i


@i2i.hookimpl
def register_tasks(register: Callable[..., Any]) -> None:
    register("i2i_plugins.pix2pix.task:Pix2Pix", "pix2pix")
