"""The Inception-v3 of published FID, as pytorch-fid, clean-fid, torchmetrics and torch-fidelity
use it.

``inception_fid`` (the default extractor) is the TF-ported "pt_inception-2015-12-05" weights
that pytorch-fid releases, with the FID-specific pooling, 299x299 bilinear resize (pytorch-fid's,
no antialiasing) and the 2048-d pool features. Its weights are downloaded on first use into
``$I2I_HOME/weights`` (default ``~/.cache/i2i/weights``).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from i2i.core.errors import I2IError, one_line
from i2i.eval.extractors import FeatureExtractor, weights_dir
from i2i.nets.pretrained import load_strict, read_state

INCEPTION_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
    "pt_inception-2015-12-05-6726825d.pth"
)
INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"


@functools.cache
def _fid_inception_blocks() -> tuple[type[nn.Module], ...]:
    """torchvision's Inception blocks with the pooling of the TF graph that FID was defined on.

    The TF graph averages without counting the padding (``count_include_pad=False``) in the
    Mixed_5*, Mixed_6b-e and Mixed_7b blocks, and its last block (Mixed_7c) max-pools instead.
    """
    from torchvision.models import inception as tv

    def avg(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)

    class FIDInceptionA(tv.InceptionA):
        def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
            b5 = self.branch5x5_2(self.branch5x5_1(x))
            b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
            return [self.branch1x1(x), b5, b3, self.branch_pool(avg(x))]

    class FIDInceptionC(tv.InceptionC):
        def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
            b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
            d = x
            for layer in (
                self.branch7x7dbl_1,
                self.branch7x7dbl_2,
                self.branch7x7dbl_3,
                self.branch7x7dbl_4,
                self.branch7x7dbl_5,
            ):
                d = layer(d)
            return [self.branch1x1(x), b7, d, self.branch_pool(avg(x))]

    class FIDInceptionE(tv.InceptionE):
        max_pool = False

        def _forward(self, x: torch.Tensor) -> list[torch.Tensor]:
            b3 = self.branch3x3_1(x)
            b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
            d = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
            d = torch.cat([self.branch3x3dbl_3a(d), self.branch3x3dbl_3b(d)], 1)
            if self.max_pool:
                pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
            else:
                pooled = avg(x)
            return [self.branch1x1(x), b3, d, self.branch_pool(pooled)]

    class FIDInceptionEMax(FIDInceptionE):
        max_pool = True

    return FIDInceptionA, FIDInceptionC, FIDInceptionE, FIDInceptionEMax


def _fid_inception_net() -> nn.Module:
    """The FID Inception-v3 (1008-class head, no aux logits) on the meta device: shapes only.

    Building on ``meta`` skips initialising 24M parameters that the weights file replaces.
    """
    from torchvision.models import inception as tv

    block_a, block_c, block_e, block_e_max = _fid_inception_blocks()
    with torch.device("meta"):
        return _build_fid_inception(tv, block_a, block_c, block_e, block_e_max)


def _build_fid_inception(
    tv: Any, block_a: Any, block_c: Any, block_e: Any, block_e_max: Any
) -> nn.Module:
    net = tv.Inception3(
        num_classes=1008,
        aux_logits=False,
        init_weights=False,
        inception_blocks=[
            tv.BasicConv2d,
            block_a,
            tv.InceptionB,
            block_c,
            tv.InceptionD,
            block_e,
            tv.InceptionAux,
        ],
    )
    net.Mixed_7c = block_e_max(2048)
    return net


def _inception_weights(path: Path | None, download: bool) -> Path:
    explicit = path is not None
    target = Path(path) if explicit else weights_dir() / INCEPTION_FILE
    if target.is_file():
        return target
    reason = "download disabled"
    if download and not explicit:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            # writes to a temporary file beside the target and renames it: never half a file
            torch.hub.download_url_to_file(INCEPTION_URL, str(target), progress=False)
            return target
        except Exception as error:  # offline, proxy, disk: all end in the same advice
            reason = one_line(error)
    raise I2IError(
        f"FID Inception weights not found at {target} and not downloaded ({reason}); download "
        f"{INCEPTION_URL} and save it as {target} (I2I_HOME sets the folder), or choose another "
        "extractor (`i2i list feature_extractors`)"
    )


class InceptionFID(FeatureExtractor):
    """Inception-v3 of published FID: 2048-d pool features, TF-ported weights (pytorch-fid)."""

    name = "inception_fid"
    dim = 2048
    input_size = 299
    comparable = True
    description = (
        "Inception-v3 with pytorch-fid's pt_inception-2015-12-05 weights (the TF FID graph), "
        "299x299 bilinear, 2048-d pool3 features: the standard for published FID/KID"
    )

    def __init__(self, weights: str | os.PathLike[str] | None = None, download: bool = True):
        super().__init__()
        path = _inception_weights(Path(weights) if weights is not None else None, download)
        net = _fid_inception_net()
        load_strict(net, read_state(path), "FID Inception-v3", path)
        self.net = net.eval().requires_grad_(False)
        self.weights_path = str(path)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        n = self.net
        for layer in (
            n.Conv2d_1a_3x3,
            n.Conv2d_2a_3x3,
            n.Conv2d_2b_3x3,
            n.maxpool1,
            n.Conv2d_3b_1x1,
            n.Conv2d_4a_3x3,
            n.maxpool2,
            n.Mixed_5b,
            n.Mixed_5c,
            n.Mixed_5d,
            n.Mixed_6a,
            n.Mixed_6b,
            n.Mixed_6c,
            n.Mixed_6d,
            n.Mixed_6e,
            n.Mixed_7a,
            n.Mixed_7b,
            n.Mixed_7c,
        ):
            x = layer(x)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


def inception_fid(weights: str | None = None, download: bool = True) -> FeatureExtractor:
    """Inception-v3 of published FID (pytorch-fid weights, 2048-d); downloaded on first use."""
    return InceptionFID(weights, download)
