"""The one rule for tests that read ../shared/fixtures (tests/shared_fixtures.py): a missing folder skips the
test, naming the folder, unless STEWARD_REQUIRE_FIXTURES is set (.ci/run), where it fails; the generic CI variable
alone (GitHub Actions sets it on a checkout without ../shared) does not."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests import shared_fixtures
from tests.shared_fixtures import require


def test_a_missing_folder_skips_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STEWARD_REQUIRE_FIXTURES", raising=False)
    monkeypatch.setenv("CI", "true")  # GitHub Actions: a checkout with no ../shared skips
    missing = tmp_path / "event-grid"
    with pytest.raises(pytest.skip.Exception, match=r"event-grid.* is missing"):
        require(tmp_path, missing)


@pytest.mark.parametrize("value", ["true", "1", "yes"])
def test_under_ci_a_missing_folder_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("STEWARD_REQUIRE_FIXTURES", value)
    with pytest.raises(pytest.fail.Exception, match="STEWARD_REQUIRE_FIXTURES is set"):
        require(tmp_path / "azure-rest-examples")


@pytest.mark.parametrize("value", ["", "0", "false"])
def test_ci_off_is_not_ci(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("STEWARD_REQUIRE_FIXTURES", value)
    assert not shared_fixtures.in_ci()


def test_a_present_folder_runs_the_test(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STEWARD_REQUIRE_FIXTURES", "true")
    require(tmp_path)  # neither skips nor fails


def test_the_folders_are_the_ones_beside_the_clone() -> None:
    assert Path(__file__).resolve().parents[3] / "shared" / "fixtures" == shared_fixtures.SHARED
    assert shared_fixtures.EVENT_GRID.parent == shared_fixtures.REST_EXAMPLES.parent == shared_fixtures.SHARED
