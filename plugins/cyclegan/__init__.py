"""The CycleGAN task (Zhu et al. 2017), shipped as a plugin through the same hooks as anyone's.

Registered by reference, so listing tasks imports neither the task nor torch.
"""

from collections.abc import Callable
from typing import Any

import i2i


@i2i.hookimpl
def register_tasks(register: Callable[..., Any]) -> None:
    register("i2i_plugins.cyclegan.task:CycleGAN", "cyclegan")
