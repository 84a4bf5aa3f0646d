"""A resource deleted and re-created under the same id is a new incarnation: the sandbox gives it a new
identity / creation time per create, as Azure does (VM ``vmId``/``timeCreated``, disk ``uniqueId``/
``timeCreated``, storage ``creationTime``, PostgreSQL ``systemData.createdAt``), and an update keeps them.
Read through the app's own adapter (``ResourceReader``), as ``handle_resource_gone`` reads them."""

from __future__ import annotations

import pytest

from sandbox.arm import ArmSandbox
from sandbox.estate import Estate
from steward.cloud.clients import CloudClients
from steward.cloud.protection import ResourceReader
from tests.integration.sandbox_core.conftest import SUB

WEU = "westeurope"


@pytest.mark.parametrize("kind", ["vm", "disk", "storage_account", "postgres"])
def test_a_recreated_resource_is_a_new_incarnation_and_an_update_is_not(
    sb: ArmSandbox, clients: CloudClients, kind: str
) -> None:
    est = Estate(clients, SUB)
    group = f"rg-inc-{kind.replace('_', '')}"
    est.resource_group(group, WEU)
    name = f"inc{kind.replace('_', '')}1"
    make = getattr(est, kind)
    rid = make(group, name, WEU)
    reader = ResourceReader(clients)
    first = reader.describe(rid)
    assert first is not None and first.created_at
    make(group, name, WEU, tags={"touched": "yes"})  # an update of the same incarnation
    updated = reader.describe(rid)
    assert updated is not None and (updated.created_at, updated.identity) == (first.created_at, first.identity)

    est.delete(rid)
    assert reader.describe(rid) is None
    sb.advance(60)
    make(group, name, WEU)  # re-created under the same id
    again = reader.describe(rid)
    assert again is not None and again.created_at > first.created_at
    if kind in ("vm", "disk"):  # vmId / uniqueId: a new GUID per create
        assert again.identity and again.identity != first.identity
