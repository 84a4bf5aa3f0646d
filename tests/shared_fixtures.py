"""Microsoft's published samples beside the clone (``../shared/fixtures``): one rule for every test that reads them.

A clean clone has no ``../shared/fixtures``. A test that needs a folder of it then SKIPS, naming the missing
folder, unless ``STEWARD_REQUIRE_FIXTURES`` is set: there a missing folder FAILS the test, loudly, so that the
project's CI (``.ci/run`` sets it; its checkout has the samples beside it) can never go green by skipping the
checks against Microsoft's samples. It is not the generic ``CI`` variable: GitHub Actions sets ``CI=true`` on a
checkout that has no ``../shared`` (the samples are not public in this layout), where skipping is right.

Use the ``shared_fixtures(FOLDER)`` mark on a test or a module (``pytestmark``): ``tests/conftest.py`` applies it
before the test runs. Inside a helper, call :func:`require`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

import pytest

#: ``../shared/fixtures`` beside the repository
SHARED: Final = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures"
EVENT_GRID: Final = SHARED / "event-grid"
REST_EXAMPLES: Final = SHARED / "azure-rest-examples"
MARK: Final = "shared_fixtures"


#: the variable that makes a missing fixture folder fail (``.ci/run`` sets it)
REQUIRE_VARIABLE: Final = "STEWARD_REQUIRE_FIXTURES"


def in_ci() -> bool:
    """``STEWARD_REQUIRE_FIXTURES`` set to anything but an empty, ``0``, ``false`` or ``no`` value."""
    return os.environ.get(REQUIRE_VARIABLE, "").strip().lower() not in {"", "0", "false", "no"}


def require(*folders: Path) -> None:
    """Skip (or, under CI, fail) unless every folder exists."""
    missing = [folder for folder in folders if not folder.is_dir()]
    if not missing:
        return
    reason = (f"the shared fixtures folder {', '.join(str(m) for m in missing)} is missing (a clean clone has no "
              "../shared/fixtures beside it)")
    if in_ci():
        pytest.fail(f"{reason}; {REQUIRE_VARIABLE} is set (.ci/run), so a missing fixture folder fails instead of "
                    "skipping", pytrace=False)
    pytest.skip(reason)


def needs(*folders: Path) -> pytest.MarkDecorator:
    """The mark for a test (or, as ``pytestmark``, a module) that reads these folders."""
    return pytest.mark.shared_fixtures(*folders)
