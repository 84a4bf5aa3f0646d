"""Settings for every test tier."""

import pytest
from hypothesis import settings

from tests import shared_fixtures

# Property tests assert behaviour, not speed: on a loaded 2-core machine (CI, or helpers running beside each other)
# hypothesis' default 200 ms deadline per example failed a pure-domain test that took 390 ms once and 16 ms on
# the retry. Speed is measured by benchmarks/, never by a test's timing.
settings.register_profile("steward", deadline=None)
settings.load_profile("steward")


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """``shared_fixtures(FOLDER, ...)`` marks (tests/shared_fixtures.py): skip when a folder is missing, fail
    under CI. First, before a ``skipif`` or an empty parameter set could skip the test quietly under CI."""
    for mark in item.iter_markers(shared_fixtures.MARK):
        shared_fixtures.require(*mark.args)
