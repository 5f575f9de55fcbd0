"""Image folders, decoding and the unaligned (CycleGAN) and aligned (pix2pix) datasets.

Everything here runs on the CPU (in DataLoader workers or a background thread) and hands over
uint8 tensors: augmentation and the conversion to float happen later on the training device
(Kornia), where they are cheap.

One job per module: ``images`` finds, decodes and saves files; ``cache`` keeps decoded images
in memory (``keep_decoded``); ``datasets`` holds the two folder datasets, the epoch sampler and
``collate``; ``prefetching`` runs a loader a few batches ahead in a background thread. Together
the last two keep decoding off the training step's critical path. Every public name is
importable from ``i2i.data`` itself.
"""

from i2i.data.cache import DecodedCache, default_cache_bytes, keep_decoded
from i2i.data.datasets import AlignedDataset, EpochSampler, UnalignedDataset, collate
from i2i.data.images import (
    IMAGE_EXTENSIONS,
    decode_image,
    find_files,
    find_images,
    image_format,
    image_header,
    kinds_of,
    load_image,
    save_image,
    to_float,
    to_pil,
    to_uint8,
)
from i2i.data.prefetching import prefetch

__all__ = [
    "IMAGE_EXTENSIONS",
    "AlignedDataset",
    "DecodedCache",
    "EpochSampler",
    "UnalignedDataset",
    "collate",
    "decode_image",
    "default_cache_bytes",
    "find_files",
    "find_images",
    "image_format",
    "image_header",
    "keep_decoded",
    "kinds_of",
    "load_image",
    "prefetch",
    "save_image",
    "to_float",
    "to_pil",
    "to_uint8",
]
