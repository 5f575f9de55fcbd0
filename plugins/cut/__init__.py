"""CUT and FastCUT (Park, Efros, Zhang, Zhu, ECCV 2020), written only against ``import i2i``.

Registered by reference, so listing tasks imports neither the tasks nor torch.
"""

from collections.abc import Callable
from typing import Any

import i2i


@i2i.hookimpl
def register_tasks(register: Callable[..., Any]) -> None:
    register("i2i_plugins.cut.task:CUT", "cut")
    register("i2i_plugins.cut.task:FastCUT", "fastcut")
