"""The CycleGAN task (Zhu et al. 2017), shipped as a plugin through the same hooks as anyone's."""

from i2i.core.hookspecs import hookimpl
from i2i_plugins.cyclegan.task import CycleGAN

__all__ = ["CycleGAN"]


@hookimpl
def register_tasks(register):
    register(CycleGAN)
