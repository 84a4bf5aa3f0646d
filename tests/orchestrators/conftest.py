"""Shared fixtures of the orchestrator replay tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from steward import bootstrap


@pytest.fixture
def packaged_rules() -> Iterator[None]:
    """The composition root reset around a test: its decisions use the packaged rules, not another test's."""
    bootstrap.reset()
    yield
    bootstrap.reset()
