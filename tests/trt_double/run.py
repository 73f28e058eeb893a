"""Run trtmake with the TensorRT simulator installed (an end-to-end run without TensorRT).

    python tests/trt_double/run.py --tensorrt 11.4.0.106 [--cuda fake|real] -- target=tiny_cnn_fp32 backend=tensorrt

Installs the simulated `tensorrt` of that release (and, with --cuda fake, the fake libcudart
behind Polygraphy's CUDA wrapper), then runs trtmake.cli.main(argv) in this process and exits
with its exit code. Works from any directory: the repository root goes on sys.path.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    rest: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, rest = argv[:i], argv[i + 1:]
    for path in (str(ROOT / "tests"), str(ROOT)):
        if path not in sys.path:
            sys.path.insert(0, path)
    from trt_double import RELEASES, install

    parser = argparse.ArgumentParser(prog="run.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--tensorrt", required=True, choices=RELEASES, help="the TensorRT release to simulate")
    parser.add_argument("--cuda", choices=("fake", "real"), default="fake",
                        help="fake: host memory behind Polygraphy's CUDA wrapper; real: the GPU's libcudart")
    args = parser.parse_args(argv)
    from trtmake.cli import main as trtmake_main

    install(None, version=args.tensorrt, cuda=args.cuda)
    code = trtmake_main(rest)
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
