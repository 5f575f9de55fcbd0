"""UNSB, the unpaired neural Schrödinger bridge (Kim et al., ICLR 2024), written only against
``import i2i``: the task and its time-conditioned networks."""

import i2i
from i2i_plugins.unsb.networks import unsb_patchgan, unsb_resnet6, unsb_resnet9
from i2i_plugins.unsb.task import UNSB

__all__ = ["UNSB", "unsb_patchgan", "unsb_resnet6", "unsb_resnet9"]


@i2i.hookimpl
def register_generators(register):
    register(unsb_resnet9)
    register(unsb_resnet6)


@i2i.hookimpl
def register_discriminators(register):
    register(unsb_patchgan)


@i2i.hookimpl
def register_tasks(register):
    register(UNSB)
