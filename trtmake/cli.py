"""Entry point: `trtmake [COMMAND] [args]`. Maps every error to a one-line message and an exit
code in one place: 0 ok, 1 a build or an assertion failed, 2 user error."""

from __future__ import annotations

import gc
import os
import platform
import re
import sys
from pathlib import Path

from trtmake import __version__, app, planner
from trtmake.cache import storage_error
from trtmake.commands import build
from trtmake.config.errors import to_user_error
from trtmake.errors import TrtmakeError, UserError
from trtmake.heavy import lazy_import
from trtmake.keys import toolchain_versions
from trtmake.planner import Request
from trtmake.project import find_project_root, target_names

cmd_cache = lazy_import("trtmake.commands.cache")
cmd_gc = lazy_import("trtmake.commands.gc")
cmd_timing_cache = lazy_import("trtmake.commands.timing_cache")
status = lazy_import("trtmake.commands.status")

HYDRA_COMMANDS = ("build", "explain")
COMMANDS = (*HYDRA_COMMANDS, "status", "gc", "clean", "cache", "merge-timing-cache")
USAGE = """usage: trtmake [COMMAND] target=NAME [group=option ...] [key=value ...] [-m] [--cfg job]

  trtmake target=resnet50_fp32              build (cached stages), validate, report
  trtmake explain target=resnet50_fp32      why each stage is up to date or stale
  trtmake -m target=a,b precision=fp16,int8 a Hydra multirun sweep, one summary table and report
  trtmake -m 'target=glob(*)' hydra/launcher=joblib   every target, in parallel, one cache
  trtmake target=X --cfg job                Hydra's view of the composed target
  trtmake status [--json] [key=value ...]   every target: up to date or stale, passing or failing (builds nothing)
  trtmake gc --max-size 10GB [--all] [--dry-run]   shrink the cache, least recently used first
  trtmake clean target=NAME                 drop a target's last run and what only it uses
  trtmake cache push|pull [target=NAME]     share records with the remote cache (cache.remote.url or TRTMAKE_REMOTE)
  trtmake cache stats                       what the local and the remote cache hold
  trtmake gc --remote --max-size 100GB      shrink the remote cache, oldest uploads first
  trtmake merge-timing-cache PINNED [PRODUCED ...] merge TensorRT timing caches into the pinned file
  trtmake --version                         trtmake's version and the installed toolchain

options (key=value, with any build):
  show=plan                 print the resolved target (every group's values) as JSON; builds nothing
  show=trtexec              print the trtexec command that builds the same engine; builds nothing
  show=polygraphy           print the `polygraphy run` command that builds and checks the same engine
  revalidate=true           re-run validation even when cached (latency is machine state)
  report.path=PATH          the JSON report (default build/report.json)
  report.junit=PATH         also write JUnit XML (a test case per stage and per assertion)
  report.html=PATH          also write one self-contained HTML page (summary, layers, plots)
  cache.dir=PATH            the cache, for every command (or TRTMAKE_CACHE; default cache/)
  cache.remote.url=URL      a shared remote cache, e.g. s3://bucket/prefix (or TRTMAKE_REMOTE)
  cache.remote.mode=MODE    read-write (default), read-only (fetch, never push) or off
  Relative paths resolve from the project root (the folder holding conf/), not the current folder.

exit codes: 0 built and every assertion passed; 1 a build or an assertion failed;
            2 a user error (bad key or value, missing or malformed input), one line naming it
"""


def main(argv: list[str] | None = None) -> int:
    if argv is None:  # the process entry (console script, python -m trtmake); a library caller keeps its GC
        _tune_gc()
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] in (["--version"], ["-V"]):
        print(version_text())
        return 0
    command = argv.pop(0) if argv and argv[0] in COMMANDS else "build"
    if argv and argv[0] in ("help", "-h", "--help") and command in HYDRA_COMMANDS:
        print(USAGE)
        return 0
    try:
        return _dispatch(command, argv)
    except TrtmakeError as exc:
        _error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        _error("interrupted")
        return 130


TOOLCHAIN = ("hydra-core", "onnx", "onnxruntime", "tensorrt", "torch")


def version_text() -> str:
    """`trtmake --version`: trtmake's own version, then the installed toolchain (read from the
    package metadata, nothing imported)."""
    parts = [f"python {platform.python_version()}"] + [f"{d} {v}" for d, v in toolchain_versions(*TOOLCHAIN).items()]
    return f"trtmake {__version__}\n" + ", ".join(parts)


GC_GEN0_THRESHOLD = 50_000


def _tune_gc() -> None:
    """A trtmake run allocates container objects by the hundred thousand (Hydra's config trees,
    the imports of onnx, numpy and onnxruntime) and frees few of them before it exits. At
    Python's default gen-0 threshold (700) a full resnet50 build ran 271 collections costing
    0.056 s (0.022 s on a rebuild from a cached plan); at 50,000 it runs 3 (0.021 s; 0.009 s).
    Cycles are still collected, later."""
    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])


def _error(message: str) -> None:
    sys.stderr.write(f"trtmake: error: {message}\n")


def _console():
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


def show_progress() -> bool:
    """The progress display: only on a terminal."""
    return sys.stderr.isatty()


def _dispatch(command: str, argv: list[str]) -> int:
    root = find_project_root()
    if command in HYDRA_COMMANDS:
        return _run(Request(command, root, show_progress(), os.getpid()), argv)
    if command == "status":
        return status.main(argv, root, _console())
    if command == "cache":
        return cmd_cache.main(argv, root, _console())
    if command in ("gc", "clean"):
        return (cmd_gc.gc_main if command == "gc" else cmd_gc.clean_main)(argv, root, _console())
    return cmd_timing_cache.main(argv, root, _console())


def _run(request: Request, argv: list[str]) -> int:
    """A build or explain: through the target's cached plan when it is valid, else through Hydra."""
    root = request.project_root
    flags, overrides = split_flags(argv)
    check_overrides(overrides, root)
    target, snap = planner.cached(root, argv)
    if target is not None:  # what the Hydra job would do with the same composed target
        result = app.guarded(lambda: app.execute(target, request), list(target.overrides) or [f"target={target.name}"],
                             root)
        return build.finish_single(request, [result] if result else [], _console(), _error)
    job = app.Job(request)
    try:
        code = planner.run_hydra(job, flags, overrides, root, snap)
    except TrtmakeError:
        raise
    except Exception as exc:
        raise _classify(exc) from None
    if code:
        return code
    planner.store_single(root, argv, snap, job.plans)
    if job.sweep is not None:
        return build.finish_multirun(request, job.sweep, _console())
    if not job.results and {"-m", "--multirun"} & set(flags):  # another sweeper, jobs run in other processes
        raise TrtmakeError("multirun: no job's result reached this process (the trtmake sweeper collects them "
                           "from any launcher; drop hydra/sweeper=...); each job's entry is in its folder under the sweep dir")
    return build.finish_single(request, job.results, _console(), _error)


# Hydra's flags that take a value (argparse there rejects overrides on both sides of a flag).
_VALUED = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
           "--config-dir", "-cd", "--experimental-rerun"}
_INFO = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")


def check_overrides(overrides: list[str], root: Path) -> None:
    """A word that is neither a flag nor KEY=VALUE (nor Hydra's `~KEY`): say what was meant,
    before Hydra's `Error parsing override`."""
    for arg in overrides:
        if "=" in arg or arg.startswith("~"):
            continue
        if arg in target_names(root):
            raise UserError(f"{arg}: not an override; did you mean target={arg}?")
        raise UserError(f"{arg}: not a command or a KEY=VALUE override; commands: {', '.join(COMMANDS)}; "
                        "pick a target with target=NAME (see trtmake --help)")


def split_flags(argv: list[str]) -> tuple[list[str], list[str]]:
    """Hydra's flags (with their values) and the overrides, in their orders: Hydra is given the
    flags first (`trtmake target=a,b -m` works as `-m target=a,b`)."""
    flags, overrides = [], []
    it = iter(range(len(argv)))
    for i in it:
        arg = argv[i]
        if not arg.startswith("-"):
            overrides.append(arg)
            continue
        flags.append(arg)
        takes_value = arg in _VALUED or (arg in ("--info", "-i") and i + 1 < len(argv) and argv[i + 1] in _INFO)
        if takes_value and i + 1 < len(argv):
            flags.append(argv[next(it)])
    return flags, overrides


def _classify(exc: Exception) -> TrtmakeError:
    """An exception out of Hydra: a user error with one line naming the key or file, else internal."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException
    from yaml import YAMLError

    if isinstance(exc, (HydraException, OmegaConfBaseException, ValueError, YAMLError)):
        return to_user_error(exc)
    key = re.search(r"^\s*full_key: (\S+)$", str(exc), re.M)
    if isinstance(exc, AttributeError) and key:  # OmegaConf cannot merge a mapping into a None node
        return UserError(f"{key.group(1)}: cannot be given as a whole on the command line (it is unset in "
                         f"this target); declare it in a recipe file, e.g. engine_recipes/model/NAME.yaml, "
                         f"and select that recipe")
    if isinstance(exc, OSError):  # Hydra makes its run dir under cache.dir before trtmake runs
        user = storage_error(exc, None)
        if user is not None:
            return user
    return TrtmakeError(f"internal error: {type(exc).__name__}: {exc}")
