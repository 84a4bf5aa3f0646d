"""Api-versions as a generic client meets them: the backup providers serve every stable version whose bodies match
the modelled fields (docs/azure-facts.md "Api-versions the sandbox serves"), provider metadata lists exactly those,
and any other version of a provider type is answered ``NoRegisteredProviderFound`` naming them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.arm import ArmSandbox

from .conftest import SUB, core_config
from .test_sandbox_serving import raw

RS = ("2025-02-01", "2025-08-01", "2026-01-01", "2026-02-01", "2026-05-01", "2026-07-01")
DP = ("2024-04-01", "2025-01-01", "2025-02-01", "2025-07-01", "2025-09-01", "2026-03-01", "2026-06-01")
GROUP = f"/subscriptions/{SUB}/resourceGroups/rg-versions"
RSV = f"{GROUP}/providers/Microsoft.RecoveryServices/vaults/rsv"
BV = f"{GROUP}/providers/Microsoft.DataProtection/backupVaults/bv"


@pytest.fixture(scope="module")
def sb() -> Iterator[ArmSandbox]:
    providers = ("resources", "authorization", "recoveryservices", "recoveryservices_jobs", "dataprotection")
    sandbox = ArmSandbox(core_config(providers=providers)).start()
    raw(sandbox, "PUT", f"{GROUP}?api-version=2025-04-01", {"location": "westeurope"})
    status, _, _ = raw(sandbox, "PUT", f"{RSV}?api-version=2025-02-01", {
        "location": "westeurope", "sku": {"name": "Standard"}, "properties": {"publicNetworkAccess": "Enabled"}})
    assert status in (200, 201)
    status, _, _ = raw(sandbox, "PUT", f"{BV}?api-version=2025-07-01", {
        "location": "westeurope", "identity": {"type": "SystemAssigned"},
        "properties": {"storageSettings": [{"datastoreType": "VaultStore", "type": "LocallyRedundant"}]}})
    assert status in (200, 201)
    yield sandbox
    sandbox.stop()


def _versions(sb: ArmSandbox, namespace: str, resource_type: str) -> list[str]:
    status, _, provider = raw(sb, "GET", f"/subscriptions/{SUB}/providers/{namespace}?api-version=2025-04-01")
    assert status == 200
    [entry] = [t for t in provider["resourceTypes"] if t["resourceType"].lower() == resource_type.lower()]
    return list(entry["apiVersions"])


def test_provider_metadata_lists_the_versions_served(sb: ArmSandbox) -> None:
    assert _versions(sb, "Microsoft.RecoveryServices", "vaults") == sorted(RS, reverse=True)
    assert _versions(sb, "Microsoft.RecoveryServices", "vaults/backupPolicies") == sorted(RS, reverse=True)
    assert _versions(sb, "Microsoft.DataProtection", "backupVaults") == sorted(DP, reverse=True)
    assert _versions(sb, "Microsoft.Authorization", "roleDefinitions") == ["2022-04-01"]


@pytest.mark.parametrize("version", RS)
def test_every_served_recovery_services_version_reads_the_vault_and_its_configs(sb: ArmSandbox, version: str) -> None:
    for path in (RSV, f"{RSV}/backupconfig/vaultconfig", f"{RSV}/backupstorageconfig/vaultstorageconfig",
                 f"{RSV}/backupPolicies", f"{RSV}/backupJobs"):
        status, _, body = raw(sb, "GET", f"{path}?api-version={version}")
        assert status == 200, (path, body)
    status, _, vault = raw(sb, "GET", f"{RSV}?api-version={version}")
    assert vault["properties"]["securitySettings"]["sourceScanConfiguration"]["state"] == "Disabled"


@pytest.mark.parametrize("version", DP)
def test_every_served_data_protection_version_reads_the_vault(sb: ArmSandbox, version: str) -> None:
    status, _, vault = raw(sb, "GET", f"{BV}?api-version={version}")
    assert status == 200 and vault["name"] == "bv"
    status, _, _ = raw(sb, "GET", f"{BV}/backupInstances?api-version={version}")
    assert status == 200


@pytest.mark.parametrize(("path", "version", "served"), [
    (RSV, "2025-01-01", RS),  # lacks securitySettings.sourceScanConfiguration
    (RSV, "2016-06-01", RS),
    (BV, "2024-03-01", DP),  # lacks resourceGuardOperationRequests
    (BV, "2021-01-01", DP),
])
def test_a_version_whose_shape_differs_is_refused_with_the_served_list(
    sb: ArmSandbox, path: str, version: str, served: tuple[str, ...]
) -> None:
    status, _, body = raw(sb, "GET", f"{path}?api-version={version}")
    assert (status, body["error"]["code"]) == (400, "NoRegisteredProviderFound")
    assert f"The supported api-versions are '{', '.join(sorted(served))}'" in body["error"]["message"]


def test_role_definitions_refuse_2015_07_01_whose_permissions_have_no_data_actions(sb: ArmSandbox) -> None:
    status, _, body = raw(sb, "GET", f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions"
                                     "?api-version=2015-07-01")
    assert (status, body["error"]["code"]) == (400, "NoRegisteredProviderFound")


def test_an_lro_started_with_a_newer_version_is_followed_with_it(sb: ArmSandbox) -> None:
    """The Azure-AsyncOperation URL keeps the caller's api-version, so the status route must serve it too."""
    status, headers, _ = raw(sb, "PATCH", f"{RSV}?api-version=2026-07-01", {"tags": {"k": "v"}})
    assert status == 202
    status_url = headers.get("Azure-AsyncOperation") or headers.get("azure-asyncoperation") or ""
    assert "api-version=2026-07-01" in status_url
    status, _, body = raw(sb, "GET", status_url.replace(sb.endpoint, ""))
    assert status == 200, body
    answer: Any = body
    assert answer["status"] in ("InProgress", "Succeeded")
