"""Entry point: `trtmake [COMMAND] [args]`. Maps every error to a one-line message and an exit
code in one place: 0 ok, 1 a build or an assertion failed, 2 user error."""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from trtmake.errors import TrtmakeError

HYDRA_COMMANDS = ("build", "explain")
COMMANDS = (*HYDRA_COMMANDS, "status", "gc", "clean", "merge-timing-cache")
USAGE = """usage: trtmake [COMMAND] target=NAME [group=option ...] [key=value ...] [-m] [--cfg job]

  trtmake target=resnet50_fp32              build (cached stages), validate, report
  trtmake explain target=resnet50_fp32      why each stage is up to date or stale
  trtmake -m target=a,b precision=fp16,int8 a Hydra multirun sweep, one summary table and report
  trtmake -m 'target=glob(*)' hydra/launcher=joblib   every target, in parallel, one cache
  trtmake target=X --cfg job                Hydra's view of the composed target
  trtmake status [--json] [key=value ...]   every target: up to date or stale, passing or failing (builds nothing)
  trtmake gc --max-size 10GB [--all] [--dry-run]   shrink the cache, least recently used first
  trtmake clean target=NAME                 drop a target's last run and what only it uses
  trtmake merge-timing-cache PINNED [PRODUCED ...] merge TensorRT timing caches into the pinned file
  trtmake --version                         trtmake's version and the installed toolchain

options (key=value, with any build):
  show=plan                 print the resolved target (every group's values) as JSON; builds nothing
  show=trtexec              print the trtexec command that builds the same engine; builds nothing
  show=polygraphy           print the `polygraphy run` command that builds and checks the same engine
  revalidate=true           re-run validation even when cached (latency is machine state)
  report.path=PATH          the JSON report (default build/report.json)
  report.junit=PATH         also write JUnit XML (a test case per stage and per assertion)
  cache.dir=PATH            the cache, for every command (or TRTMAKE_CACHE; default cache/)
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
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from trtmake import __version__

    parts = [f"python {platform.python_version()}"]
    for dist in TOOLCHAIN:
        try:
            parts.append(f"{dist} {version(dist)}")
        except PackageNotFoundError:
            parts.append(f"{dist} not installed")
    return f"trtmake {__version__}\n" + ", ".join(parts)


GC_GEN0_THRESHOLD = 50_000


def _tune_gc() -> None:
    """A trtmake run allocates container objects by the hundred thousand (Hydra's config trees,
    the imports of onnx, numpy and onnxruntime) and frees few of them before it exits. At
    Python's default gen-0 threshold (700) a full resnet50 build ran 271 collections costing
    0.056 s (0.022 s on a rebuild from a cached plan); at 50,000 it runs 3 (0.021 s; 0.009 s).
    Cycles are still collected, later."""
    import gc

    gc.set_threshold(GC_GEN0_THRESHOLD, *gc.get_threshold()[1:])


def _error(message: str) -> None:
    sys.stderr.write(f"trtmake: error: {message}\n")


def _console():
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


def _dispatch(command: str, argv: list[str]) -> int:
    from trtmake.project import find_project_root

    root = find_project_root()
    os.environ["TRTMAKE_PROJECT_ROOT"] = str(root)
    if command in HYDRA_COMMANDS:
        return _run_hydra(command, argv, root)
    if command == "status":
        from trtmake import cmd_status

        return cmd_status.main(argv, root, _console())
    if command in ("gc", "clean"):
        from trtmake.commands import gc as cmd_gc

        return (cmd_gc.gc_main if command == "gc" else cmd_gc.clean_main)(argv, root, _console())
    from trtmake.commands import timing_cache as cmd_timing_cache

    return cmd_timing_cache.main(argv, root, _console())


def _progress() -> bool:
    return sys.stderr.isatty() or bool(os.environ.get("TRTMAKE_PROGRESS"))


def _run_hydra(command: str, argv: list[str], root: Path) -> int:
    from trtmake import plan_cache

    check_overrides(split_flags(argv)[1], root)
    snap = None
    if not any(a.startswith("-") for a in argv):  # plain overrides: a cached plan may stand in for Hydra
        snap = plan_cache.snapshot(root)
        plan = plan_cache.load(root, argv, snap)
        if plan is not None:
            return _run_plan(command, plan_cache.target_from_plan(plan, argv, root), root)
    probe = snap is None or plan_cache.sets_hydra_mode(snap, argv)
    with _mode_probe(probe):
        code = _compose_and_run(command, argv, root)
    if snap is not None:
        _store_plan(argv, root, snap)
    return code


@contextmanager
def _mode_probe(keep: bool):
    """@hydra.main composes a single run twice: once only to read `hydra.mode` (Hydra.get_mode,
    ~40% of a composing run), once for the job. With no -m flag and no config or override that
    sets hydra.mode, that probe returns None anyway, which is what it is replaced by here."""
    from hydra._internal.hydra import Hydra

    original = getattr(Hydra, "get_mode", None)
    if keep or original is None:
        yield
        return
    Hydra.get_mode = lambda self, config_name, overrides: None
    try:
        yield
    finally:
        Hydra.get_mode = original


def _run_plan(command: str, target: Any, root: Path) -> int:
    """Up to date plan: what the Hydra task would do with the same composed target."""
    from trtmake import app

    try:
        result = app.execute(target, command == "explain", _progress())
    except Exception as exc:  # as in app.task: a crash around the executor is a failed entry
        import traceback

        result = app.failed_result(list(target.overrides) or [f"target={target.name}"], root, exc)
        result.data["traceback"] = {"text": traceback.format_exc()}
    if result is None:  # show=...: printed, nothing built
        return 0
    return _finish_single(command, [result], root)


def _store_plan(argv: list[str], root: Path, snap: dict) -> None:
    from trtmake import plan_cache, sweep

    pending = list(plan_cache.PENDING)
    plan_cache.PENDING.clear()
    if sweep.STARTED or len(pending) != 1 or pending[0]["overrides"] != argv:
        return
    plan_cache.store(root, argv, snap, pending[0]["target"], pending[0]["job_env"])


def _compose_and_run(command: str, argv: list[str], root: Path) -> int:
    os.environ["HYDRA_FULL_ERROR"] = "1"  # exceptions reach us; we print one line, not a traceback

    import hydra

    import trtmake.config.schema  # noqa: F401  (registers the structured configs)
    from trtmake import app, plan_cache, sweep
    from trtmake.config.errors import to_user_error

    app.RESULTS.clear()
    sweep.STARTED.clear()
    sweep.LAST.clear()
    plan_cache.PENDING.clear()
    progress = _progress()
    mode = [f"+hydra.job.env_set.TRTMAKE_COMMAND={command}",  # applied in whichever process runs a job
            f"+hydra.job.env_set.TRTMAKE_PROGRESS={int(progress)}",
            f"+hydra.job.env_set.TRTMAKE_CLI_PID={os.getpid()}",
            f"+hydra.job.env_set.TRTMAKE_PROJECT_ROOT={_quoted(str(root))}"]  # for jobs on other hosts (Ray)
    entry = hydra.main(version_base="1.3", config_path=str(root / "conf"), config_name="config")(app.task)
    saved = sys.argv
    sys.argv = ["trtmake", *hydra_argv(argv, mode)]
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
    if sweep.STARTED:
        return _finish_multirun(command, root)
    return _finish_single(command, app.RESULTS, root)


# Hydra's flags that take a value (argparse there rejects overrides on both sides of a flag).
_VALUED = {"--cfg", "-c", "--package", "-p", "--config-path", "-cp", "--config-name", "-cn",
           "--config-dir", "-cd", "--experimental-rerun"}
_INFO = ("all", "config", "defaults", "defaults-tree", "plugins", "searchpath")


def hydra_argv(argv: list[str], extra: list[str]) -> list[str]:
    """Flags first, then overrides, then `extra`: `trtmake target=a,b -m` works as `-m target=a,b`."""
    flags, overrides = split_flags(argv)
    return [*flags, *overrides, *extra]


def check_overrides(overrides: list[str], root: Path) -> None:
    """A word that is neither a flag nor KEY=VALUE (nor Hydra's `~KEY`): say what was meant,
    before Hydra's `Error parsing override`."""
    from trtmake.errors import UserError

    for arg in overrides:
        if "=" in arg or arg.startswith("~"):
            continue
        from trtmake.project import target_names

        if arg in target_names(root):
            raise UserError(f"{arg}: not an override; did you mean target={arg}?")
        raise UserError(f"{arg}: not a command or a KEY=VALUE override; commands: {', '.join(COMMANDS)}; "
                        "pick a target with target=NAME (see trtmake --help)")


def split_flags(argv: list[str]) -> tuple[list[str], list[str]]:
    """Hydra's flags (with their values) and the overrides, in their orders."""
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


def _classify(exc: Exception, to_user_error) -> TrtmakeError:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from yaml import YAMLError

    if isinstance(exc, (HydraException, OmegaConfBaseException, ValueError, YAMLError)):
        return to_user_error(exc)
    import re

    from trtmake.errors import UserError

    key = re.search(r"^\s*full_key: (\S+)$", str(exc), re.M)
    if isinstance(exc, AttributeError) and key:  # OmegaConf cannot merge a mapping into a None node
        return UserError(f"{key.group(1)}: cannot be given as a whole on the command line (it is unset in "
                         f"this target); declare it in a recipe file, e.g. engine_recipes/model/NAME.yaml, "
                         f"and select that recipe")
    if isinstance(exc, OSError):  # Hydra makes its run dir under cache.dir before trtmake runs
        from trtmake.cache import storage_error

        user = storage_error(exc, None)
        if user is not None:
            return user
    return TrtmakeError(f"internal error: {type(exc).__name__}: {exc}")


def _finish_single(command: str, results: list, root: Path) -> int:
    from trtmake import report

    if not results:
        return 0
    entries = [report.target_entry(r) for r in results]
    if command == "explain":
        report.print_explain(entries, _console())
        return max(e["exit_code"] for e in entries)
    cfg = results[0].target.cfg.get("report") or {}
    if results[0].exit_code == 2:  # user error: one line, no table (a report only if a stage ran)
        if results[0].stages:
            _write(entries, cfg.get("path"), cfg.get("junit"), root)
        _error(results[0].error or "bad input")
        return 2
    return _report(entries, cfg.get("path"), cfg.get("junit"), root)


def _finish_multirun(command: str, root: Path) -> int:
    from trtmake import report, sweep

    if "entries" not in sweep.LAST:
        raise TrtmakeError(f"multirun: the jobs' results could not be collected from {sweep.STARTED['sweep_dir']} "
                           "(see the warning above); each job's entry is in its subfolder")
    entries = sweep.LAST["entries"]
    if not entries:
        from trtmake.errors import UserError

        raise UserError("multirun: the sweep expanded to no jobs; check the values or the glob(...) pattern")
    if command == "explain":
        report.print_explain(entries, _console())
        return max(e["exit_code"] for e in entries)
    return _report(entries, sweep.STARTED.get("report_path"), sweep.STARTED.get("junit"), root)


def _report(entries: list[dict[str, Any]], path: str | None, junit: str | None, root: Path) -> int:
    from trtmake import report

    data, out = _write(entries, path, junit, root)
    report.print_summary(data, _console(), report_path=out, junit_path=_under(root, junit) if junit else None)
    return exit_code(entries)


def _write(entries: list[dict[str, Any]], path: str | None, junit: str | None, root: Path):
    from trtmake import report

    data = report.report_from_entries(entries)
    out = _under(root, path or "build/report.json")
    report.write_json(data, out)
    if junit:
        report.write_junit(data, _under(root, junit))
    return data, out


def exit_code(entries: list[dict[str, Any]]) -> int:
    """0 all ok; 2 when every failure is a user error; else 1 (a build or an assertion failed)."""
    codes = [e["exit_code"] or (0 if e["ok"] else 1) for e in entries]
    failed = [c for c in codes if c]
    if not failed:
        return 0
    return 2 if all(c == 2 for c in failed) else 1


def _quoted(value: str) -> str:
    """A Hydra override value that stays one string whatever it holds (commas, spaces, quotes)."""
    return "'" + value.replace("'", "\\'") + "'"  # Hydra unescapes only backslashes before quotes


def _under(root: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else root / p
