"""The pix2pix task (Isola et al. 2017) for paired translation."""

import i2i
from i2i_plugins.pix2pix.task import Pix2Pix

__all__ = ["Pix2Pix"]


@i2i.hookimpl
def register_tasks(register):
    register(Pix2Pix)
