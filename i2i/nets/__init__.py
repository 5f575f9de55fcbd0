"""The built-in generators and discriminators, one file per family (registered in ``i2i.parts``).

Layouts follow junyanz/pytorch-CycleGAN-and-pix2pix (models/networks.py) key for key, so its
released checkpoints load into these modules with ``strict=True``.
"""
