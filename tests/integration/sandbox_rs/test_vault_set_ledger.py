"""A vault set's ledger (issue 19) through the real activities against the sandbox's Recovery Services: the choice is
reserved with a member's listed count, a listing that shows the resource protected ends its reservation (Azure
counts it from then: ``sourceResourceId`` of the listed items), a release ends a reservation that did not land."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from activities import protection as protection_activities
from steward import bootstrap
from steward.cloud.arm_cache import ArmCache
from steward.domain.ids import ResourceId
from steward.domain.kernel import VaultKind
from steward.domain.rules import VaultSet
from steward.domain.rules import vault_sets as vs
from steward.report.store import LocalReportStore
from steward.settings import Settings

from .conftest import Estate

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def _activity(function: Any) -> Any:
    return function._function.get_user_function() if hasattr(function, "_function") else function


@pytest.fixture
def store(estate: Estate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalReportStore:
    made = LocalReportStore(tmp_path)
    monkeypatch.setattr(bootstrap, "clients", lambda: estate.clients)
    monkeypatch.setattr(bootstrap, "arm_cache", lambda: ArmCache(300))
    monkeypatch.setattr(bootstrap, "report_store", lambda: made)
    monkeypatch.setattr(bootstrap, "settings", lambda: Settings(auto_create_vaults=True, arm_cache_seconds=300))
    return made


def _reserve(target: VaultSet, vault_id: str, resource: str, at: datetime, **asked: Any) -> vs.SetReservation:
    request = vs.SetReservationAsked(target, resource, at, (vault_id,), **asked).to_record()
    return vs.SetReservation.from_record(_activity(protection_activities.reserve_in_set)(request))


def test_a_listing_that_shows_the_resource_ends_its_reservation(
    estate: Estate, store: LocalReportStore, monkeypatch: pytest.MonkeyPatch,
) -> None:
    rg = estate.group("ledger")
    vault_id = str(estate.vault(rg, f"rsv-{estate.tag}-01").id)
    target = VaultSet(VaultKind.RECOVERY_SERVICES, estate.subscription, "westeurope", name_prefix=f"rsv-{estate.tag}-")
    model = estate.provider.model
    model.seed_vm_items(vault_id, 899, prefix=f"old{estate.tag}")
    landing = (f"/subscriptions/{estate.subscription}/resourceGroups/rg-land{estate.tag}/providers/"
               f"Microsoft.Compute/virtualMachines/land{estate.tag}-0001")

    first = _reserve(target, vault_id, landing, NOW)
    assert first.vault_id == vault_id and not first.fallback  # 899 listed + this reservation = 900, the threshold
    second = _reserve(target, vault_id, f"{landing}-b", NOW + timedelta(seconds=1))
    assert second.vault_id is None and second.create is not None  # held at the threshold: the set must grow
    assert second.create.name == f"rsv-{estate.tag}-02"

    model.seed_vm_items(vault_id, 1, prefix=f"land{estate.tag}")  # Azure protects the first VM: it is listed now
    third = _reserve(target, vault_id, f"{landing}-c", NOW + timedelta(seconds=2), fresh=True)
    assert third.vault_id is None
    ledger = vs.SetLedger.from_document(json.loads(store.get(vs.ledger_name(target)) or b"{}"))
    assert [r.resource_id for r in ledger.reservations] == []  # the landed one ended; the others reserved nothing
    assert vs.held_load(ledger, ResourceId.parse(vault_id)) == vs.VaultLoad(900, 900)

    # the set may not grow: the member still below Azure's limit is reserved, and released when it does not land
    monkeypatch.setattr(bootstrap, "settings", lambda: Settings(auto_create_vaults=False, arm_cache_seconds=300))
    fallback = _reserve(target, vault_id, f"{landing}-d", NOW + timedelta(seconds=3))
    assert fallback.vault_id == vault_id and fallback.fallback
    _activity(protection_activities.release_in_set)(
        vs.SetReleaseAsked(target, f"{landing}-d", vault_id).to_record())
    ledger = vs.SetLedger.from_document(json.loads(store.get(vs.ledger_name(target)) or b"{}"))
    assert ledger.reservations == ()
