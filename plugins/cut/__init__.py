"""CUT and FastCUT (Park, Efros, Zhang, Zhu, ECCV 2020), written only against ``import i2i``.

Registered by reference, so listing tasks imports neither the tasks nor torch.
"""

import i2i


@i2i.hookimpl
def register_tasks(register):
    register("i2i_plugins.cut.task:CUT", "cut")
    register("i2i_plugins.cut.task:FastCUT", "fastcut")
