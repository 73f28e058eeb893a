"""Self-check of the simulator on one release: Polygraphy builds a tiny CNN and runs it; the numbers
must equal onnxruntime's. With --cuda real it runs on the GPU's memory (a GPU machine).

    python tests/trt_double/selfcheck.py --tensorrt 11.4.0.106 --cuda real
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    import numpy as np
    import onnxruntime as ort

    from trt_double import RELEASES, graphs, install

    parser = argparse.ArgumentParser(prog="selfcheck.py")
    parser.add_argument("--tensorrt", choices=RELEASES, default=RELEASES[-1])
    parser.add_argument("--cuda", choices=("fake", "real"), default="fake")
    args = parser.parse_args()
    install(None, version=args.tensorrt, cuda=args.cuda)
    from polygraphy.backend.trt import CreateConfig, EngineFromNetwork, NetworkFromOnnxPath, Profile, TrtRunner

    with tempfile.TemporaryDirectory() as tmp:
        path = graphs.tiny_cnn(Path(tmp) / "cnn.onnx")
        profile = Profile().add("x", (1, 3, 16, 16), (2, 3, 16, 16), (8, 3, 16, 16))
        engine = EngineFromNetwork(NetworkFromOnnxPath(str(path)), CreateConfig(profiles=[profile]))()
        x = np.random.default_rng(0).normal(size=(5, 3, 16, 16)).astype(np.float32)
        with TrtRunner(engine) as runner:
            out = runner.infer({"x": x})["y"]
        ref = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    err = float(np.abs(out - ref).max())
    print(f"release {args.tensorrt}, cuda {args.cuda}: output {out.shape}, max |simulator - onnxruntime| = {err:.3g}")
    return 0 if err < 1e-4 else 1


if __name__ == "__main__":
    sys.exit(main())
