"""Entry point: `trtmake [COMMAND] [hydra overrides]`. Maps every error to a one-line message
and an exit code in one place: 0 ok, 1 a build or an assertion failed, 2 user error."""

from __future__ import annotations

import os
import sys

from trtmake.errors import TrtmakeError, UserError

COMMANDS = ("build", "explain")
USAGE = """usage: trtmake [build|explain] target=NAME [group=option ...] [key=value ...] [-m] [--cfg job]

  trtmake target=resnet50_fp32              build (cached stages), validate, report
  trtmake explain target=resnet50_fp32      why each stage is up to date or stale
  trtmake -m target=a,b precision=fp16,int8 a Hydra multirun sweep, one summary table
  trtmake target=X --cfg job                Hydra's view of the composed target
"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in COMMANDS else "build"
    if argv and argv[0] in ("help", "-h", "--help"):
        print(USAGE)
        return 0
    try:
        return _run(command, argv)
    except TrtmakeError as exc:
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


def _error(message: str) -> None:
    sys.stderr.write(f"trtmake: error: {message}\n")


def _run(command: str, argv: list[str]) -> int:
    from trtmake.project import find_project_root

    root = find_project_root()
    os.environ["TRTMAKE_PROJECT_ROOT"] = str(root)
    os.environ["HYDRA_FULL_ERROR"] = "1"  # exceptions reach us; we print one line, not a traceback

    import hydra

    import trtmake.config.schema  # noqa: F401  (registers the structured configs)
    from trtmake import app
    from trtmake.config.errors import to_user_error

    app.RESULTS.clear()
    app.MODE.update(explain=command == "explain", progress=sys.stderr.isatty() or bool(os.environ.get("TRTMAKE_PROGRESS")))
    entry = hydra.main(version_base="1.3", config_path=str(root / "conf"), config_name="config")(app.task)
    saved = sys.argv
    sys.argv = ["trtmake", *argv]
    try:
        entry()
    except SystemExit as exc:  # --help, --cfg and friends exit through here
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        if code:
            return code
    except TrtmakeError:
        raise
    except Exception as exc:
        raise _classify(exc, to_user_error) from None
    finally:
        sys.argv = saved
    return _finish(command, app.RESULTS, root)


def _classify(exc: Exception, to_user_error) -> TrtmakeError:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if isinstance(exc, (HydraException, OmegaConfBaseException, ValueError)):
        return to_user_error(exc)
    return TrtmakeError(f"internal error: {type(exc).__name__}: {exc}")


def _finish(command: str, results: list, root) -> int:
    from pathlib import Path

    from rich.console import Console

    from trtmake import report

    if not results:
        return 0
    console = Console(width=None if sys.stdout.isatty() else 160)
    if command == "explain":
        report.print_explain(results, console)
        return max(r.exit_code for r in results)
    data = report.report_dict(results)
    cfg = results[0].target.cfg.get("report") or {}
    path = Path(cfg.get("path") or "build/report.json")
    path = path if path.is_absolute() else root / path
    if results[0].stages or len(results) > 1:  # a config error before any stage writes no report
        report.write_json(data, path)
        if cfg.get("junit"):
            junit = Path(cfg["junit"])
            report.write_junit(data, junit if junit.is_absolute() else root / junit)
    if len(results) == 1 and results[0].exit_code == 2:
        _error(results[0].error or "bad input")  # user error: one line, no table
        return 2
    report.print_summary(data, console, report_path=path)
    codes = [r.exit_code for r in results]
    return 0 if data["ok"] else (2 if all(c == 2 for c in codes if c) else 1)
