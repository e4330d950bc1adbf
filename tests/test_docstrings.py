"""Every public function and class of gcxr has a numpydoc docstring.

Public: the names in ``gcxr.__all__`` and, in every submodule of gcxr, the names without a leading
underscore that the module defines itself (its ``__all__`` when it has one, else every such
function and class), plus the public methods and properties those classes define.  Each needs a
docstring with a one-line summary; a function or method that takes parameters (other than
``self``/``cls``) needs a numpydoc ``Parameters`` section, unless it documents them in the class
docstring (``__init__``) or is a dunder method; and the names a ``Parameters`` section lists are
exactly the function's parameters.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import pytest

import gcxr

PARAMETERS = re.compile(r"^\s*Parameters\n\s*-{3,}\s*$", re.M)


def submodules() -> list[str]:
    names = ["gcxr"]
    for info in pkgutil.walk_packages(gcxr.__path__, "gcxr."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]) or ".tests" in info.name:
            continue
        names.append(info.name)
    return sorted(names)


def _defined_here(obj, module) -> bool:
    return getattr(obj, "__module__", None) == module.__name__


def _overrides_foreign_api(cls, attr: str) -> bool:
    """Whether ``attr`` overrides a hook of a base class outside gcxr (e.g. pydantic's
    ``model_post_init``), documented by that library."""
    return any(attr in vars(base) for base in cls.__mro__[1:] if not base.__module__.startswith("gcxr"))


def public_objects() -> dict[str, object]:
    """Qualified name -> object, for every public function, class, method and property of gcxr."""
    found: dict[str, object] = {}
    for modname in submodules():
        module = importlib.import_module(modname)
        names = getattr(module, "__all__", None)
        if names is None:
            names = [n for n in vars(module) if not n.startswith("_")]
        for name in names:
            obj = getattr(module, name, None)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)) or not _defined_here(obj, module):
                continue
            found.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if attr.startswith("_") or _overrides_foreign_api(obj, attr):
                        continue
                    if isinstance(member, (staticmethod, classmethod)):
                        member = member.__func__
                    fn = member.fget if isinstance(member, property) else member
                    if not inspect.isfunction(fn) or not fn.__qualname__.startswith(obj.__qualname__ + "."):
                        continue     # not written in gcxr (e.g. hooks that pydantic adds)
                    if inspect.isfunction(member) or isinstance(member, property):
                        found.setdefault(f"{obj.__module__}.{obj.__qualname__}.{attr}", member)
    return found


def _takes_parameters(fn) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return False
    return any(p.name not in ("self", "cls") and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in sig.parameters.values())


def docstring_problems(name: str, obj) -> list[str]:
    doc = inspect.getdoc(obj.fget if isinstance(obj, property) else obj)
    if not doc or not doc.strip():
        return [f"{name}: no docstring"]
    if isinstance(obj, property) or inspect.isclass(obj):
        return []
    if _takes_parameters(obj) and not PARAMETERS.search(doc):
        return [f"{name}: takes parameters but its docstring has no 'Parameters' section"]
    return []


def documented_parameters(doc: str) -> set[str]:
    """The names listed in a numpydoc ``Parameters`` section (``a, b : type`` lists two)."""
    m = re.search(r"^Parameters\n-+\n(.*?)(?:\n\n[A-Z][A-Za-z ]+\n-+\n|\Z)", doc, re.S | re.M)
    names: set[str] = set()
    for line in (m.group(1).splitlines() if m else []):
        if line and not line.startswith(" "):
            names |= {n.strip().lstrip("*") for n in line.split(" : ")[0].split(",")}
    return names


def test_public_api_is_found():
    """The walker sees the top-level API, submodule functions, classes and their methods."""
    objs = public_objects()
    for name in ("gcxr.analysis.Analysis", "gcxr.analysis.Analysis.run_fit", "gcxr.fit.fit",
                 "gcxr.models.collection.Models.read", "gcxr.estimators.flux_points.flux_points", "gcxr.geom.SkyGeom"):
        assert name in objs, name
    assert all(not part.startswith("_") for name in objs for part in name.split(".")[1:])
    for name in gcxr.__all__:
        if name != "__version__":
            assert inspect.ismodule(getattr(gcxr, name)) or callable(getattr(gcxr, name)), name


def test_docstring_checker_flags_what_it_should():
    def documented(x):
        """Summary.

        Parameters
        ----------
        x : int
            A number.
        """

    def no_section(x):
        """Summary only."""

    def no_parameters():
        """Summary only."""

    def bare(x):
        pass

    assert docstring_problems("documented", documented) == []
    assert docstring_problems("no_parameters", no_parameters) == []
    assert docstring_problems("no_section", no_section) == [
        "no_section: takes parameters but its docstring has no 'Parameters' section"]
    assert docstring_problems("bare", bare) == ["bare: no docstring"]
    assert documented_parameters(inspect.getdoc(documented)) == {"x"}
    assert documented_parameters("S.\n\nParameters\n----------\na, b : float\n    Ends.\n**kwargs\n    More.\n\n"
                                 "Returns\n-------\nfloat\n    Sum.") == {"a", "b", "kwargs"}


def test_every_public_function_and_class_has_a_numpydoc_docstring():
    problems = [p for name, obj in sorted(public_objects().items()) for p in docstring_problems(name, obj)]
    assert not problems, f"{len(problems)} public objects lack a docstring or its Parameters section:\n" + \
        "\n".join(problems)


def test_documented_parameters_match_the_signatures():
    """A Parameters section lists exactly the function's parameters (no stale or missing names)."""
    problems = []
    for name, obj in sorted(public_objects().items()):
        if isinstance(obj, property) or inspect.isclass(obj):
            continue
        doc = inspect.getdoc(obj) or ""
        documented = documented_parameters(doc)
        if not documented:
            continue
        try:
            params = {p.name for p in inspect.signature(obj).parameters.values()} - {"self", "cls"}
        except (TypeError, ValueError):
            continue
        if documented != params:
            problems.append(f"{name}: documented {sorted(documented)}, signature {sorted(params)}")
    assert not problems, "\n".join(problems)
