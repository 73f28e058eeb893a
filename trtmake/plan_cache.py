"""The plan cache: a composed and resolved Target, reused while no config file changed.

Composing one target with Hydra 1.3 costs ~43 ms in-process and ~0.5 s for a `@hydra.main`
run (it composes twice); `status` over 200 targets would compose 200 times. Like ninja's
manifest, a plan is kept next to the build cache and trusted while the stat (size, mtime_ns,
inode) of every file composition could read is unchanged:

- every `*.yaml`/`*.yml` under `conf/` and `engine_recipes/` (a file added or removed also
  counts: the whole listing is compared),
- the Python that shapes a plan: trtmake's structured-config schema (`trtmake/config/`),
  `trtmake/target.py`, this module, the project's `hydra_plugins/`, and the `__init__.py`
  of hydra and omegaconf (a new version replaces them),
- the environment variables the config reads through `${oc.env:NAME}` (recorded by name when
  the plan is stored, compared by value when it is loaded).

A target composed with an extra config folder (`hydra.searchpath`, on the command line or in a
watched file) is never planned: the files of that folder are not watched.

A plan is keyed by (project root, the overrides in a canonical order). It is stored only for a
config that resolves deterministically: a resolver other than `oc.env`, `oc.select`,
`oc.decode`, `oc.create`, `oc.dict.*` or `hydra` (e.g. `${now:...}`) in a watched file
(outside its top-level `hydra` section) or in an override makes plans uncacheable. A config file modified within RACY_SECONDS
of the snapshot is not trusted (git's racy-clean rule): its edit could share an mtime tick
with the version that was composed. `TRTMAKE_PLAN_CACHE=0` turns the plan cache off.

Light on purpose: json, hashlib and os only; no Hydra, OmegaConf, numpy or onnx.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from trtmake import __version__
from trtmake.cache import PLANS
from trtmake.cache_dir import resolve_cache_dir
from trtmake.hashing import RACY_SECONDS, digest_json, stat_signature

FORMAT = 1
DISABLE_ENV = "TRTMAKE_PLAN_CACHE"
_PACKAGE = Path(__file__).resolve().parent
_DETERMINISTIC = {"oc.env", "oc.select", "oc.decode", "oc.create", "oc.dict.keys", "oc.dict.values", "hydra"}
_RESOLVER = re.compile(r"\$\{\s*([A-Za-z_][\w.]*)\s*:")
_ENV = re.compile(r"\$\{\s*oc\.env\s*:\s*([^,}\s]+)")


def enabled() -> bool:
    return os.environ.get(DISABLE_ENV, "1") not in ("0", "false", "no", "off")


# -- the files a composition could read -------------------------------------------------------
def watched_files(root: Path) -> list[str]:
    files: list[str] = []
    for folder in (root / "conf", root / "engine_recipes"):
        _walk(str(folder), (".yaml", ".yml"), files)
    _walk(str(_PACKAGE / "config"), (".py",), files)
    files += [str(_PACKAGE / "target.py"), str(_PACKAGE / "plan_cache.py")]
    for plugins in {_PACKAGE.parent / "hydra_plugins", root / "hydra_plugins"}:
        _walk(str(plugins), (".py",), files)
    files += _package_inits("hydra", "omegaconf")
    return files


def _walk(folder: str, suffixes: tuple[str, ...], out: list[str]) -> None:
    for parent, dirs, names in os.walk(folder, followlinks=True):  # a missing folder yields nothing
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        out += [os.path.join(parent, n) for n in names if n.endswith(suffixes)]


def _package_inits(*names: str) -> list[str]:
    """The __init__.py of installed packages, found without importing them."""
    out = []
    for name in names:
        for entry in sys.path:
            init = os.path.join(entry or ".", name, "__init__.py")
            if os.path.isfile(init):
                out.append(os.path.abspath(init))
                break
    return out


def snapshot(root: Path) -> dict[str, Any]:
    """{"taken_ns", "files": {path: [size, mtime_ns, inode]}}: one stat per watched file (the scans
    below memoise what they read of the files in it, once per snapshot)."""
    taken = time.time_ns()
    files = {}
    for path in watched_files(root):
        try:
            st = os.stat(path)
        except OSError:
            continue
        files[path] = stat_signature(st)
    return {"taken_ns": taken, "files": files}


# -- where plans live ---------------------------------------------------------------------------
def plan_dir(root: Path, overrides: list[str]) -> Path:
    """<cache dir>/plans, with the cache dir as far as it can be known before composing:
    the last `cache.dir=` override, else TRTMAKE_CACHE, else `cache` (the schema's default).
    Only where plans are looked up; the plan itself holds the resolved cache.dir."""
    return resolve_cache_dir(root, overrides, interpolate=False) / PLANS


def canonical(overrides: list[str]) -> list[str]:
    """Overrides in a canonical order: by key, keeping the given order within one key. Hydra
    applies group choices before values and the last value of a key wins, so overrides of
    different keys commute (`cache.dir=X target=a` composes as `target=a cache.dir=X`)."""
    return sorted(overrides, key=lambda o: o.split("=", 1)[0].lstrip("+~"))


def plan_path(root: Path, overrides: list[str]) -> Path:
    key = digest_json({"format": FORMAT, "root": str(root), "overrides": canonical(overrides)})
    return plan_dir(root, overrides) / key[:2] / f"{key}.json"


# -- load and store -------------------------------------------------------------------------------
def _texts(snap: dict[str, Any]) -> dict[str, str | None]:
    """The text of every watched config file (yaml) and schema module, read once per snapshot
    (None: unreadable). What the scans below look for in them."""
    if "texts" not in snap:
        schema = str(_PACKAGE / "config") + os.sep
        texts: dict[str, str | None] = {}
        for path in snap["files"]:
            if path.endswith((".yaml", ".yml")) or path.startswith(schema):
                try:
                    texts[path] = Path(path).read_text()
                except (OSError, UnicodeDecodeError):
                    texts[path] = None
        snap["texts"] = texts
    return snap["texts"]


def _yaml_texts(snap: dict[str, Any]):
    return ((path, text) for path, text in _texts(snap).items() if path.endswith((".yaml", ".yml")))


def _searchpath_override(overrides: list[str]) -> bool:
    return any("searchpath" in o.split("=", 1)[0] for o in overrides)


def extra_search_path(snap: dict[str, Any], overrides: list[str]) -> bool:
    """Whether composition could read config folders this module does not watch: an override or a
    watched file that sets `hydra.searchpath` (conservative). Such targets are never planned."""
    return _searchpath_override(overrides) or any(text is None or "searchpath" in text
                                                  for _, text in _yaml_texts(snap))


def load(root: Path, overrides: list[str], snap: dict[str, Any]) -> dict[str, Any] | None:
    """The stored target ({"name", "overrides", "cfg"}) if its plan is still valid, else None."""
    if not enabled() or _searchpath_override(overrides):
        return None
    try:
        data = json.loads(plan_path(root, overrides).read_text())
        if data.get("format") != FORMAT or data.get("check") != _check(data):
            return None
    except (OSError, ValueError):
        return None
    if data["files"] != snap["files"] or data["overrides"] != canonical(overrides) or data["root"] != str(root) \
            or data["trtmake"] != __version__:
        return None
    if any(os.environ.get(name) != value for name, value in data["env"].items()):
        return None
    newest = max((sig[1] for sig in data["files"].values()), default=0)
    if newest >= data["taken_ns"] - RACY_SECONDS * 1e9:
        return None  # racy: an edit in the same mtime tick as the composed version would look unchanged
    return data["target"]


def interpolations(snap: dict[str, Any], overrides: list[str]) -> tuple[list[str], bool]:
    """(env var names that config could read through ${oc.env:NAME}, whether every resolver it
    uses is deterministic), from the text of the watched files and the overrides. Conservative:
    a name read by any recipe invalidates every plan when it changes. A file's top-level `hydra`
    section is skipped (conf/config.yaml names its run dir with ${now:...}; that is not the plan).
    Scanned once per snapshot, not per target."""
    if "interpolations" not in snap:
        snap["interpolations"] = _scan(value for path, text in _texts(snap).items()
                                       if text is not None and "${" in text for value in _outside_hydra(path, text))
    in_files, files_ok = snap["interpolations"]
    names, ok = _scan(overrides)
    return sorted(names | in_files), ok and files_ok


def _outside_hydra(path: str, text: str):
    if not path.endswith((".yaml", ".yml")):
        yield text
        return
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        yield text  # Hydra will say what is wrong; scan it whole
        return
    if isinstance(data, dict):
        data = {k: v for k, v in data.items() if k != "hydra"}
    yield from _strings(data)


def sets_hydra_mode(snap: dict[str, Any], overrides: list[str]) -> bool:
    """Whether an override or a watched config file could set `hydra.mode` (conservative)."""
    if any("hydra.mode" in o or o.startswith("hydra=") for o in overrides):
        return True
    for _, text in _yaml_texts(snap):
        if text is not None and "hydra" in text and "mode" in text:
            import yaml

            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError:
                return True
            hydra = data.get("hydra") if isinstance(data, dict) else None
            if "hydra.mode" in text or (isinstance(hydra, dict) and "mode" in hydra):
                return True
    return False


def _scan(texts) -> tuple[set[str], bool]:
    """(the env var names `texts` read through ${oc.env:NAME}, whether every resolver they use is
    deterministic and every name is plain)."""
    names: set[str] = set()
    ok = True
    for text in texts:
        if "${" in text:
            found = set(_ENV.findall(text))
            names |= found
            ok = ok and all(r in _DETERMINISTIC for r in _RESOLVER.findall(text)) and not any("$" in n for n in found)
    return names, ok


def _strings(value: Any):
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def store(root: Path, overrides: list[str], snap: dict[str, Any], target: Any, job_env: Any = None) -> None:
    """Write the plan under the plan dir: temp file + rename, no fsync (a plan is a cache: a
    plan torn by a crash fails its checksum and is composed again). A failure costs a compose.
    A composition that sets `hydra.job.env_set` (`job_env`, the composed mapping) is not stored:
    only Hydra applies those variables around a job, and a plan runs without Hydra."""
    if not enabled() or job_env:
        return
    env_names, deterministic = interpolations(snap, overrides)
    if not deterministic or extra_search_path(snap, overrides):
        return
    data = {"format": FORMAT, "trtmake": __version__, "root": str(root), "overrides": canonical(overrides),
            "taken_ns": snap["taken_ns"], "files": snap["files"],
            "env": {name: os.environ.get(name) for name in env_names},
            "target": {"name": target.name, "cfg": target.cfg}}
    data["check"] = _check(data)
    path = plan_path(root, overrides)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(data, separators=(",", ":")))
        os.replace(tmp, path)
    except (OSError, TypeError, ValueError):
        with contextlib.suppress(OSError):
            tmp.unlink()


def _check(data: dict[str, Any]) -> str:
    return digest_json({k: v for k, v in data.items() if k != "check"})

