"""CUT and FastCUT (Park, Efros, Zhang, Zhu, ECCV 2020), written only against ``import i2i``."""

import i2i
from i2i_plugins.cut.task import CUT, FastCUT

__all__ = ["CUT", "FastCUT"]


@i2i.hookimpl
def register_tasks(register):
    register(CUT)
    register(FastCUT)
