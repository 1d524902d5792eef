"""Package surfaces that import their modules on first use, so a command pays only for what it touches.

A package lists its public names and the module holding each; reading one of
them imports that module then (PEP 562). ``eat-curate rank`` therefore never
imports the Parquet writer, and ``eat-curate --help`` never imports torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping


def lazy_exports(package: str, modules_by_name: Mapping[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``: ``modules_by_name`` maps each public name to its module."""

    def __getattr__(name: str) -> object:
        module = modules_by_name.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals_of_package = importlib.import_module(package).__dict__
        globals_of_package[name] = value  # later reads skip this function
        return value

    def __dir__() -> list[str]:
        return sorted(modules_by_name)

    return __getattr__, __dir__
