"""The real bindings' API, read from NVIDIA's pybind11 sources (tests/data/trt_api/), enforced on
the simulator's classes.

`signatures(version)` is the JSON for a release (11.4 uses the 11.1 JSON: the newest open-source
bindings). `finalize(impl, sig, ns)` turns one implementation class into the class a release
exposes: members the release lacks are removed (AttributeError, as on the real module), methods
check their arguments the way pybind11 does (count, keyword names, overloads, types: an enum
parameter refuses an int, a str parameter refuses bytes... -> TypeError "incompatible function
arguments"), read-only properties refuse assignment and instances refuse unknown attributes.
Enums are generated from the JSON, so their members and values are the real ones.
"""

from __future__ import annotations

import enum
import functools
import gzip
import json
import re
from pathlib import Path
from typing import Any, Callable

DATA = Path(__file__).resolve().parents[1] / "data" / "trt_api"
RELEASES = {"10": "10.13.3", "11": "11.1"}  # major -> signatures file


@functools.lru_cache(maxsize=None)
def signatures(version: str) -> dict[str, Any]:
    """The signatures JSON of the bindings for `version` ("10.13.3.9" -> signatures-10.13.3)."""
    major = version.split(".")[0]
    if major not in RELEASES:
        raise ValueError(f"no TensorRT binding signatures for release {version}; known majors: {sorted(RELEASES)}")
    with gzip.open(DATA / f"signatures-{RELEASES[major]}.json.gz", "rt") as f:
        return json.load(f)


@functools.lru_cache(maxsize=None)
def names(version: str) -> frozenset[str]:
    """Identifier tokens of the compiled module of a release (tensorrt-<version>.names)."""
    with gzip.open(DATA / f"tensorrt-{version}.names.gz", "rt") as f:
        return frozenset(f.read().split())


def overloads(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return entry.get("overloads", [entry])


def class_members(sig: dict[str, Any], name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(methods, properties) of a class including its bases; a derived class hides base names."""
    methods: dict[str, Any] = {}
    props: dict[str, Any] = {}
    for cls in reversed(_lineage(sig, name)):
        entry = sig["classes"][cls]
        for m, e in entry.get("methods", {}).items():
            methods[m] = e
            props.pop(m, None)
        for p, e in entry.get("properties", {}).items():
            props[p] = e
            methods.pop(p, None)
    return methods, props


def _lineage(sig: dict[str, Any], name: str) -> list[str]:
    out, todo = [], [name]
    while todo:
        cls = todo.pop(0)
        if cls in sig["classes"] and cls not in out:
            out.append(cls)
            todo += [b.split("::")[-1] for b in sig["classes"][cls].get("bases", [])]
    return out


# -- enums ---------------------------------------------------------------------------------------------
class TrtEnum(enum.Enum):
    """pybind11 enum semantics: int(e), e.name, e.value; never equal to a plain int."""

    def __int__(self) -> int:
        return self.value

    def __index__(self) -> int:
        return self.value

    def __hash__(self) -> int:
        return hash(self.value)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}.{self.name}: {self.value}>"


def make_enums(sig: dict[str, Any]) -> dict[str, type[TrtEnum]]:
    """One enum class per JSON enum ("ILogger.Severity" keyed by its full name)."""
    out = {}
    for full, entry in sig["enums"].items():
        values = {k: v for k, v in entry["values"].items() if v is not None}
        out[full] = TrtEnum(full.split(".")[-1], values, qualname=full, module="tensorrt")
    return out


# -- argument checking -----------------------------------------------------------------------------------
_INT = re.compile(r"^(const )?(u?int(8|16|32|64)?_t|int|long|size_t|std::size_t|unsigned.*)( const)?$")
_FLOAT = re.compile(r"^(const )?(float|double)( const)?$")


def _bare(cpp: str) -> str:
    """"nvinfer1::ITensor const&" -> "ITensor": the type without namespace, qualifiers, & and *."""
    cpp = cpp.replace("nvinfer1::", "").replace("nvonnxparser::", "")
    return re.sub(r"\bconst\b|[&*]", "", cpp).strip()


class Checker:
    """Decides whether a Python value converts to a C++ parameter type, like pybind11's casters."""

    def __init__(self, enums: dict[str, type], classes: dict[str, type]) -> None:
        self.enums = {name.split(".")[-1]: cls for name, cls in enums.items()}
        self.classes = classes  # filled as classes are finalized

    def accepts(self, cpp: str | None, value: Any) -> bool:
        if not cpp:
            return True
        cpp = cpp.strip()
        bare = _bare(cpp)
        pointer = "*" in cpp
        if value is None:  # nullptr for pointers and C strings; False for bool (pybind11's convert pass)
            return pointer or bare in ("py::object", "py::handle", "bool") or cpp in ("char const*", "const char*")
        if _INT.match(cpp) or bare in ("int32_t", "int64_t", "uint64_t", "size_t", "uint32_t", "int"):
            if pointer and bare == "void":
                return True
            return not isinstance(value, (float, str, bytes)) and hasattr(value, "__index__")
        if bare in ("void",) and pointer:
            return hasattr(value, "__index__")
        if _FLOAT.match(cpp):
            return isinstance(value, (int, float)) and not isinstance(value, bool) or hasattr(value, "__float__")
        if bare == "bool":  # pybind11 converts anything with nb_bool: bools, numbers, numpy bools
            return isinstance(value, (bool, int, float)) or type(value).__name__ == "bool_"
        if "string" in cpp or bare in ("char", "AsciiChar"):
            return isinstance(value, str)
        if bare in ("Dims", "Dims2", "Dims3", "Dims4", "DimsHW") or "vector<int64_t>" in cpp or "vector<int32_t>" in cpp:
            sequence = isinstance(value, (list, tuple)) or type(value).__name__.startswith("Dims")
            return sequence and all(hasattr(v, "__index__") and not isinstance(v, float) for v in value)
        if bare.startswith("py::buffer"):
            try:
                memoryview(value)
                return True
            except TypeError:
                return False
        if bare in self.enums:
            return isinstance(value, self.enums[bare])
        key = bare.split("::")[-1]
        if key in self.enums:
            return isinstance(value, self.enums[key])
        if key in self.classes:
            return isinstance(value, self.classes[key])
        return True  # a type the simulator does not model: let it through


def pybind_type_error(qualname: str, sigs: list[dict[str, Any]], args: tuple, kwargs: dict) -> TypeError:
    lines = [f"{qualname}(): incompatible function arguments. The following argument types are supported:"]
    for i, s in enumerate(sigs, 1):
        params = ", ".join(f"{a['name']}: {a.get('py_type') or a.get('cpp_type')}" for a in s["args"])
        lines.append(f"    {i}. (self, {params}) -> {s.get('returns', {}).get('py', 'None')}")
    given = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
    lines.append(f"\nInvoked with: {given}")
    return TypeError("\n".join(lines))


def bind(sig: dict[str, Any], args: tuple, kwargs: dict, checker: Checker) -> dict[str, Any] | None:
    """Arguments by name for one overload, or None when they do not fit it."""
    params = sig["args"]
    if len(args) > len(params):
        return None
    bound = {}
    for p, v in zip(params, args):
        bound[p["name"]] = v
    positional_only = sig.get("positional_only") or any(p.get("implicit_name") for p in params)
    for k, v in kwargs.items():
        if positional_only or k in bound or k not in {p["name"] for p in params}:
            return None
        bound[k] = v
    for i, p in enumerate(params):
        if p["name"] not in bound and i < sig.get("min_args", len(params)) and "default" not in p:
            return None
    for p in params:
        if p["name"] in bound and not checker.accepts(p.get("cpp_type"), bound[p["name"]]):
            return None
    return bound


def checked(qualname: str, fn: Callable, entry: dict[str, Any], checker: Checker) -> Callable:
    """Wrap an implementation so calls must fit one of the binding's overloads."""
    sigs = overloads(entry)

    @functools.wraps(fn)
    def method(self: Any, *args: Any, **kwargs: Any) -> Any:
        for sig in sigs:
            bound = bind(sig, args, kwargs, checker)
            if bound is not None:
                return fn(self, **bound)
        raise pybind_type_error(qualname, sigs, args, kwargs)

    method.__signatures__ = sigs  # type: ignore[attr-defined]
    return method


class Absent:
    """A member the release lacks: reading it raises AttributeError like a missing attribute."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name, self.owner = name, owner.__name__

    def __get__(self, obj: Any, owner: type | None = None) -> Any:
        raise AttributeError(f"type object '{self.owner}' has no attribute '{self.name}'" if obj is None
                             else f"'tensorrt.{self.owner}' object has no attribute '{self.name}'")

    def __set__(self, obj: Any, value: Any) -> None:
        self.__get__(obj)


_PY_PROTOCOL = {"__init__", "__enter__", "__exit__", "__bool__", "__nonzero__", "__len__", "__getitem__",
                "__setitem__", "__eq__", "__str__", "__repr__", "__buffer__", "__iter__", "__hash__", "__del__"}


def finalize(impl: type, name: str, sig: dict[str, Any], checker: Checker, extra: dict[str, Any],
             bases: tuple[type, ...] = ()) -> type:
    """The release's class `name`, built on `impl` (which may offer more than one release has)."""
    methods, props = class_members(sig, name)
    ns: dict[str, Any] = {"__module__": "tensorrt", "__qualname__": name, **extra}
    public = set()
    for klass in impl.__mro__:
        if klass is object:
            continue
        public |= {n for n in vars(klass) if not n.startswith("_") or n in _PY_PROTOCOL}
    for attr in sorted(public):
        value = getattr(impl, attr, None)
        if attr in props:
            p = props[attr]
            impl_prop = _find_property(impl, attr)
            if impl_prop is None:
                continue
            fset = None if p.get("readonly") else impl_prop.fset
            ns[attr] = property(impl_prop.fget, fset, doc=p.get("doc_ivar"))
        elif attr in methods and callable(value) and not attr.startswith("__"):
            ns[attr] = checked(f"{name}.{attr}", value, methods[attr], checker)
        elif attr.startswith("__"):
            if attr in methods and callable(value):
                python_layer = methods[attr].get("python_layer")
                ns[attr] = value if python_layer else checked(f"{name}.{attr}", value, methods[attr], checker)
                if attr == "__init__":
                    ns[attr] = _marking_init(ns[attr])
            elif attr in ("__enter__", "__exit__"):
                ns[attr] = Absent()  # no context manager on this class in the bindings
            continue
        elif attr in extra or attr.startswith("_"):
            continue
        else:
            ns[attr] = Absent()
    if "__init__" not in methods and "__init__" not in ns:
        ns["__init__"] = _no_constructor(name)
    ns["__setattr__"] = _strict_setattr
    cls = PybindMeta(name, (impl, *bases), ns)
    for attr, value in ns.items():
        if isinstance(value, Absent):
            value.__set_name__(cls, attr)
    checker.classes[name] = cls
    return cls


class PybindMeta(type):
    """pybind11's rule for Python subclasses: a subclass overriding __init__ must call the base
    class's __init__ (trt.ILogger.__init__(self)), else constructing it raises TypeError."""

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        obj = super().__call__(*args, **kwargs)
        if not getattr(obj, "_pybind_init", False):
            base = next((k for k in cls.__mro__ if k.__module__ == "tensorrt"), cls)
            raise TypeError(f"tensorrt.tensorrt.{base.__name__}.__init__() must be called when overriding __init__")
        return obj


def _marking_init(init: Callable) -> Callable:
    @functools.wraps(init)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        object.__setattr__(self, "_pybind_init", True)
    return __init__


def _find_property(impl: type, attr: str) -> property | None:
    for klass in impl.__mro__:
        value = vars(klass).get(attr)
        if isinstance(value, property):
            return value
    return None


def _no_constructor(name: str) -> Callable:
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        raise TypeError(f"tensorrt.tensorrt.{name}: No constructor defined!")
    return __init__


def _strict_setattr(self: Any, attr: str, value: Any) -> None:
    """pybind11 objects have no __dict__: only settable properties (user subclasses may add any)."""
    cls = type(self)
    if attr.startswith("_") or cls.__module__ != "tensorrt":
        object.__setattr__(self, attr, value)
        return
    descriptor = None
    for klass in cls.__mro__:
        if attr in vars(klass):
            descriptor = vars(klass)[attr]
            break
    if isinstance(descriptor, property):
        if descriptor.fset is None:
            raise AttributeError(f"property '{attr}' of '{cls.__name__}' object has no setter")
        descriptor.fset(self, value)
        return
    if isinstance(descriptor, Absent):
        descriptor.__set__(self, value)
    raise AttributeError(f"'tensorrt.{cls.__name__}' object has no attribute '{attr}'")


def make(impl: type, name: str, *, construct: bool = False, **state: Any) -> Any:
    """Create an instance of a finalized class without its Python constructor (internal use)."""
    obj = object.__new__(impl)
    for k, v in state.items():
        object.__setattr__(obj, k, v)
    return obj
