"""The history of generated images that discriminators learn from (Shrivastava et al. 2017).

Showing D a mix of current and older fakes damps oscillation; CycleGAN keeps 50. The images stay
on the device in one buffer; the random choices come from the pool's own CPU stream and reach
the device as index tensors, so a query never waits for the device and has no branch on a
tensor's value. The buffer, the fill count and the stream are in every checkpoint.
"""

from __future__ import annotations

from typing import Any

import torch

from i2i.core.errors import I2IError, out_of_memory


class ImagePool:
    def __init__(self, size: int = 50, generator: torch.Generator | None = None) -> None:
        self.size = size
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self.images: torch.Tensor | None = None  # (size, C, H, W), from the first query on
        self.filled = 0

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Return a batch of fakes: each is the new image, or (half the time once the pool is
        full) an older one that the new image replaces, in the batch's order."""
        if self.size == 0:
            return images
        images = images.detach()
        n = images.shape[0]
        if self.images is None:
            self.images = self._buffer(images, images.device)
        # Drawn on the host for every image, so that the stream advances the same way always.
        swap = torch.rand(n, generator=self.generator) > 0.5
        slot = torch.randint(self.size, (n,), generator=self.generator)
        order = torch.arange(self.filled, self.filled + n)
        filling = order < self.size  # while filling: keep the image, hand it back as it is
        slot = torch.where(filling, order, slot)
        give_old, store = swap & ~filling, swap | filling
        self.filled = min(self.size, self.filled + n)
        slot, give_old, store = (
            t.to(images.device, non_blocking=True) for t in (slot, give_old, store)
        )
        out = []
        for i in range(n):  # one at a time: two images may draw the same slot
            index = slot[i : i + 1]
            old, new = self.images.index_select(0, index), images[i : i + 1]
            out.append(torch.where(give_old[i], old, new))
            self.images.index_copy_(0, index, torch.where(store[i], new, old))
        return torch.cat(out)

    def state_dict(self) -> dict[str, Any]:
        kept = self.images[: self.filled].cpu() if self.images is not None else torch.empty(0)
        return {"size": self.size, "images": kept, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.size, kept = state["size"], state["images"]
        if "generator" in state:  # runs saved before the pool had its own stream lack it
            self.generator.set_state(state["generator"])
        self.filled = kept.shape[0]
        self.images = None
        if self.filled:
            self.images = self._buffer(kept, device)
            self.images[: self.filled] = kept.to(device)

    def _buffer(self, like: torch.Tensor, device: torch.device) -> torch.Tensor:
        """Room for ``size`` images shaped like ``like``'s; a pool too large for the device is
        a user's setting, so its failure names the option rather than the networks."""
        try:
            return torch.zeros((self.size, *like.shape[1:]), dtype=like.dtype, device=device)
        except (MemoryError, RuntimeError) as error:
            if not out_of_memory(error):
                raise
            need = self.size * like[:1].numel() * like.element_size() / 2**30
            raise I2IError(
                f"the image pool of {self.size:,} images needs {need:,.1f} GiB, more than "
                f"{torch.device(device).type} memory holds; use a smaller --pool-size (0: none)"
            ) from error
