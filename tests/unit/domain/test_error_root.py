"""One error root: every exception class the app defines in ``steward/`` derives from ``StewardError``
(``steward/domain/errors.py`` promises it), so a caller at an edge can tell ours from a bug."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import steward
from steward.domain.errors import StewardError


def _steward_exceptions() -> list[type[BaseException]]:
    found: list[type[BaseException]] = []
    for module_info in pkgutil.walk_packages(steward.__path__, "steward."):
        module = importlib.import_module(module_info.name)
        for _, value in inspect.getmembers(module, inspect.isclass):
            if issubclass(value, BaseException) and value.__module__ == module.__name__:
                found.append(value)
    return found


def test_every_error_class_of_the_app_derives_from_the_one_root() -> None:
    classes = _steward_exceptions()
    assert len(classes) > 20, "the walk found the app's errors"
    outside = sorted(f"{c.__module__}.{c.__qualname__}" for c in classes if not issubclass(c, StewardError))
    assert outside == []
