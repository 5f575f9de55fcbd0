"""The CycleGAN task (Zhu et al. 2017), shipped as a plugin through the same hooks as anyone's."""

import i2i
from i2i_plugins.cyclegan.task import CycleGAN

__all__ = ["CycleGAN"]


@i2i.hookimpl
def register_tasks(register):
    register(CycleGAN)
