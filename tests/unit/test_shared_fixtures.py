"""The one rule for tests that read ../shared/fixtures (tests/shared_fixtures.py): a missing folder skips the
test, naming the folder, unless CI is set, where it fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import shared_fixtures
from tests.shared_fixtures import require


def test_a_missing_folder_skips_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    missing = tmp_path / "event-grid"
    with pytest.raises(pytest.skip.Exception, match=r"event-grid.* is missing"):
        require(tmp_path, missing)


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_under_ci_a_missing_folder_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        require(tmp_path / "azure-rest-examples")


@pytest.mark.parametrize("value", ["", "0", "false"])
def test_ci_off_is_not_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("CI", value)
    assert not shared_fixtures.in_ci()


def test_a_present_folder_runs_the_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    require(tmp_path)  # neither skips nor fails


def test_the_folders_are_the_ones_beside_the_clone() -> None:
    assert Path(__file__).resolve().parents[3] / "shared" / "fixtures" == shared_fixtures.SHARED
    assert shared_fixtures.EVENT_GRID.parent == shared_fixtures.REST_EXAMPLES.parent == shared_fixtures.SHARED
