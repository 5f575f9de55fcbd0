"""The history of generated images that discriminators learn from (Shrivastava et al. 2017).

Showing D a mix of current and older fakes damps oscillation; CycleGAN keeps 50. The random
choices use Python's ``random`` (host only, no device sync); its state is in every checkpoint.
"""

from __future__ import annotations

import random
from typing import Any

import torch


class ImagePool:
    def __init__(self, size: int = 50) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Return a batch of fakes: each is the new image, or (half the time once the pool is
        full) an older one that the new image replaces."""
        if self.size == 0:
            return images
        out = []
        for image in images.detach().unbind(0):
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif random.uniform(0, 1) > 0.5:
                index = random.randint(0, self.size - 1)
                out.append(self.images[index])
                self.images[index] = image
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict[str, Any]:
        stacked = torch.cat(self.images).cpu() if self.images else torch.empty(0)
        return {"size": self.size, "images": stacked}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.size = state["size"]
        self.images = [i.unsqueeze(0).to(device) for i in state["images"].unbind(0)]
