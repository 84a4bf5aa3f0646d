"""Fidelity of the Microsoft.RecoveryServices sandbox provider against Microsoft's published REST examples.

For every example under ``../shared/fixtures/azure-rest-examples/recoveryservices*/`` (S-RS and S-RSB 2025-02-01)
this sends the example's request -- its path with the example's parameters substituted, its ``$filter``, its
body -- over HTTPS to a fresh sandbox whose subscriptions are the examples' own, and compares:

- the status code with one of the example's responses;
- the headers that matter: every ``Azure-AsyncOperation`` / ``Location`` / ``Retry-After`` the example's
  response shows is present (and the URLs point at this endpoint and answer when polled);
- the response SHAPE: every field the example shows is present with the same JSON type, recursively (values may
  differ; the sandbox may send more fields; an example ``null`` accepts anything; ``tags`` is a free-form map).

What must exist before an example's request (the vault, the VM, a protected item...) is set up through the
same ARM API first (or, for kinds Azure creates through an on-premises agent, the provider's seeding helpers).

Deliberate differences, and why:

- Status-endpoint examples (``*OperationStatus``, ``*OperationResult(s)``) are read for an operation the sandbox
  started (its id) rather than the example's all-zero id.
- Answers the examples list as alternatives are not all produced: PUT vault answers 201 for a new vault (then
  200 when re-PUT), PATCH answers 202 and its final GET is compared with the example's 200, DELETE item answers
  202 (its 200/204 alternatives are never produced); each answer the sandbox gives is checked.
- ProtectionContainers_List sends ``$filter=backupManagementType eq 'AzureWorkload'`` but shows an AzureStorage
  container; the sandbox honours the filter, so the answered container is a workload (VMAppContainer) one,
  compared with the example's shape.
"""

from __future__ import annotations

import json
import re
import ssl
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import pytest

from sandbox.arm import ArmSandbox, SandboxConfig
from sandbox.arm.config import DEFAULT_TENANT, SubscriptionSpec
from sandbox.arm.ids import parse_id
from sandbox.arm.providers.recoveryservices import recovery_services
from tests.shared_fixtures import needs

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO.parent / "shared" / "fixtures" / "azure-rest-examples"
RS = FIXTURES / "recoveryservices/resource-manager/Microsoft.RecoveryServices/stable/2025-02-01/examples"
RSB = FIXTURES / "recoveryservicesbackup/resource-manager/Microsoft.RecoveryServices/stable/2025-02-01/examples"
API = "2025-02-01"
HOUR = 3600.0
SUBSCRIPTIONS = ("77777777-b0c6-47a2-b37c-d8e65a629c18", "00000000-0000-0000-0000-000000000000")

GROUP = "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"
V = GROUP + "/providers/Microsoft.RecoveryServices/vaults/{vaultName}"
ITEM = V + "/backupFabrics/{fabricName}/protectionContainers/{containerName}/protectedItems/{protectedItemName}"
CONTAINER = V + "/backupFabrics/{fabricName}/protectionContainers/{containerName}"

pytestmark = needs(RS, RSB)  # skips, naming the folder, when one is missing; fails under CI


def example_files() -> list[Path]:
    return sorted([*RS.rglob("*.json"), *RSB.rglob("*.json")])


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


# -- shape comparison ------------------------------------------------------------------------------------------
FREE_FORM = ("tags",)


def json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def shape_mismatches(expected: Any, actual: Any, where: str = "$") -> list[str]:
    """Where ``actual`` lacks a field of ``expected`` or holds another JSON type (null in the example: any)."""
    if expected is None:
        return []
    if json_kind(expected) != json_kind(actual):
        return [f"{where}: expected {json_kind(expected)}, got {json_kind(actual)} ({actual!r:.80})"]
    if isinstance(expected, dict):
        if where.rsplit(".", 1)[-1] in FREE_FORM:
            return []
        problems = []
        for key, value in expected.items():
            if key not in actual:
                if value is not None:
                    problems.append(f"{where}.{key}: missing")
            else:
                problems += shape_mismatches(value, actual[key], f"{where}.{key}")
        return problems
    if isinstance(expected, list) and expected:
        if not actual:
            return [f"{where}: expected a non-empty array"]
        problems = []
        for index, item in enumerate(actual):
            problems += shape_mismatches(expected[min(index, len(expected) - 1)], item, f"{where}[{index}]")
        return problems
    return []


def test_shape_comparison_catches_missing_fields_and_wrong_types() -> None:
    assert shape_mismatches({"a": {"b": 1}}, {"a": {"b": 2, "c": 3}}) == []
    assert shape_mismatches({"a": {"b": 1}}, {"a": {}}) == ["$.a.b: missing"]
    assert shape_mismatches({"a": [{"b": "x"}]}, {"a": [{"b": 1}]})[0].startswith("$.a[0].b: expected string")
    assert shape_mismatches({"a": [1]}, {"a": []}) == ["$.a: expected a non-empty array"]
    assert shape_mismatches({"a": None}, {}) == []
    assert shape_mismatches({"tags": {"k": "v"}}, {"tags": {}}) == []
    assert shape_mismatches({"n": 1}, {"n": 1.5}) == []
    assert shape_mismatches({"b": True}, {"b": 1}) == ["$.b: expected boolean, got number (1)"]


# -- a sandbox speaking the examples' subscriptions ---------------------------------------------------------------
@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: Any


class Client:
    def __init__(self, sandbox: ArmSandbox) -> None:
        self.sb = sandbox
        self.context = ssl.create_default_context(cafile=sandbox.ca_bundle)
        self.token = sandbox.mint_token(tenant_id=DEFAULT_TENANT)

    def send(
        self, method: str, path: str, body: Any = None, query: dict[str, str] | None = None, api_version: str = API
    ) -> Answer:
        params = {"api-version": api_version, **(query or {})}
        url = f"{self.sb.endpoint}{quote(path, safe='/;,=')}?{urlencode(params, quote_via=quote)}"
        return self.fetch(method, url, body)

    def fetch(self, method: str, url: str, body: Any = None) -> Answer:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            url,
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(request, context=self.context, timeout=10) as response:
                raw = response.read()
                return Answer(response.status, dict(response.headers), json.loads(raw) if raw else None)
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return Answer(exc.code, dict(exc.headers), json.loads(raw) if raw else None)


@pytest.fixture
def sandbox() -> Iterator[ArmSandbox]:
    subs = tuple(SubscriptionSpec(s, DEFAULT_TENANT, f"example {s[:8]}") for s in SUBSCRIPTIONS)
    # Azure time moves only by advance() (scale 1: a 60 s operation cannot end by itself during a test), and wait
    # hints come as ARM sends them (Retry-After in Azure seconds): nothing here polls on the wall clock
    config = SandboxConfig(
        scale=1.0, subscriptions=subs, providers=("resources", "recoveryservices"), retry_after="azure"
    )
    sb = ArmSandbox(config).start()
    try:
        yield sb
    finally:
        sb.stop()


class World:
    """Sets up what an example's request needs, through the ARM API."""

    def __init__(self, sandbox: ArmSandbox) -> None:
        self.sb = sandbox
        self.client = Client(sandbox)
        self.model = recovery_services(sandbox).model

    def group(self, sub: str, rg: str, location: str = "westus") -> None:
        answer = self.client.send(
            "PUT", f"/subscriptions/{sub}/resourcegroups/{rg}", {"location": location}, api_version="2025-04-01"
        )
        assert answer.status in (200, 201), answer.body

    def vault(self, sub: str, rg: str, name: str, location: str = "westus", tags: dict[str, str] | None = None) -> str:
        self.group(sub, rg, location)
        path = V.format(subscriptionId=sub, resourceGroupName=rg, vaultName=name)
        body = {
            "location": location,
            "sku": {"name": "Standard"},
            "identity": {"type": "SystemAssigned"},
            "tags": tags or {},
            "properties": {"publicNetworkAccess": "Enabled"},
        }
        answer = self.client.send("PUT", path, body)
        assert answer.status in (200, 201), answer.body
        return path

    def resource(self, resource_id: str, location: str) -> None:
        parsed = parse_id(resource_id)
        name, rtype = parsed.name, parsed.full_type
        self.sb.store.put({"id": resource_id, "name": name, "type": rtype, "location": location, "properties": {}})

    def protect(self, vault_path: str, container: str, item: str, vm_id: str, location: str = "westus") -> Answer:
        self.resource(vm_id, location)
        body = {
            "properties": {
                "protectedItemType": "Microsoft.Compute/virtualMachines",
                "sourceResourceId": vm_id,
                "policyId": f"{vault_path}/backupPolicies/DefaultPolicy",
            }
        }
        answer = self.client.send(
            "PUT", f"{vault_path}/backupFabrics/Azure/protectionContainers/{container}/protectedItems/{item}", body
        )
        assert answer.status == 202, answer.body
        return answer

    def advance(self, seconds: float) -> None:
        self.sb.advance(seconds)


@pytest.fixture
def world(sandbox: ArmSandbox) -> World:
    return World(sandbox)


# -- the examples ----------------------------------------------------------------------------------------------
@dataclass
class Case:
    """How to send one example: its method and path template; ``setup`` prepares the world and may return
    parameters to override (e.g. the operation id of an operation it started)."""

    method: str
    template: str
    setup: Callable[[World, dict[str, Any]], dict[str, Any] | None] | None = None


def _vault_from(
    params: dict[str, Any], location: str = "westus", tags: dict[str, str] | None = None
) -> Callable[[World], str]:
    def make(world: World) -> str:
        return world.vault(params["subscriptionId"], params["resourceGroupName"], params["vaultName"], location, tags)

    return make


def setup_vault(world: World, params: dict[str, Any]) -> None:
    _vault_from(params)(world)


def setup_get_vault(world: World, params: dict[str, Any]) -> None:
    path = _vault_from(params)(world)
    world.model.seed_private_endpoint(path, "pe114.backup")
    recovery_services(world.sb).sync(world.model.vault(path))


def setup_vault_list(world: World, params: dict[str, Any]) -> None:
    world.vault(params["subscriptionId"], "Default-RecoveryServices-ResourceGroup", "swaggerExample")


def _example_vm(params: dict[str, Any]) -> str:
    return (
        f"/subscriptions/{params['subscriptionId']}/resourceGroups/netsdktestrg/providers/"
        "Microsoft.Compute/virtualMachines/netvmtestv2vm1"
    )


def setup_configure_protection(world: World, params: dict[str, Any]) -> None:
    setup_vault(world, params)
    world.resource(_example_vm(params), "westus")


def after_configure_protection(world: World, params: dict[str, Any], answer: Answer, example: dict[str, Any]) -> None:
    world.advance(7 * HOUR)  # the first backup ran: the item is Protected, as the example's 200 shows
    got = world.client.send("GET", ITEM.format(**params))
    assert got.status == 200
    assert shape_mismatches(example["responses"]["200"]["body"], got.body) == []


def setup_protected(world: World, params: dict[str, Any]) -> None:
    path = _vault_from(params)(world)
    world.protect(path, params["containerName"], params["protectedItemName"], _example_vm(params))
    world.advance(7 * HOUR)


def setup_backup_status(world: World, params: dict[str, Any]) -> None:
    sub, region = params["subscriptionId"], params["azureRegion"]
    vm = params["parameters"]["resourceId"]
    path = world.vault(sub, "testRg", "testVault", region)
    world.protect(
        path, "iaasvmcontainer;iaasvmcontainerv2;testRg;testVm", "vm;iaasvmcontainerv2;testRg;testVm", vm, region
    )


def setup_list_protected(world: World, params: dict[str, Any]) -> None:
    path = _vault_from(params)(world)
    world.protect(
        path,
        "IaasVMContainer;iaasvmcontainerv2;netsdktestrg;netvmtestv2vm1",
        "VM;iaasvmcontainerv2;netsdktestrg;netvmtestv2vm1",
        _example_vm(params),
    )
    world.advance(7 * HOUR)


def setup_list_protectable(world: World, params: dict[str, Any]) -> None:
    path = _vault_from(params)(world)
    world.resource(_example_vm(params), "westus")
    answer = world.client.send("POST", f"{path}/backupFabrics/Azure/refreshContainers")
    assert answer.status == 202
    world.advance(HOUR)


def setup_item_delete_status(world: World, params: dict[str, Any]) -> dict[str, Any]:
    path = _vault_from(params)(world)
    group = f"/subscriptions/{params['subscriptionId']}/resourceGroups/pysdktestrg"
    vm = f"{group}/providers/Microsoft.Compute/virtualMachines/pysdktestv2vm1"
    container, item = (
        "iaasvmcontainer;iaasvmcontainerv2;pysdktestrg;pysdktestv2vm1",
        "vm;iaasvmcontainerv2;pysdktestrg;pysdktestv2vm1",
    )
    world.protect(path, container, item, vm)
    world.advance(7 * HOUR)
    answer = world.client.send(
        "DELETE", f"{path}/backupFabrics/Azure/protectionContainers/{container}/protectedItems/{item}"
    )
    assert answer.status == 202
    return {"operationId": operation_id(answer.headers["Location"])}


def setup_item_delete(world: World, params: dict[str, Any]) -> None:
    path = _vault_from(params)(world)
    vm = (
        f"/subscriptions/{params['subscriptionId']}/resourceGroups/pysdktestrg/providers/"
        "Microsoft.Compute/virtualMachines/pysdktestv2vm1"
    )
    world.protect(path, params["containerName"], params["protectedItemName"], vm)
    world.advance(7 * HOUR)


def setup_item_operation(world: World, params: dict[str, Any]) -> dict[str, Any]:
    path = _vault_from(params)(world)
    answer = world.protect(path, params["containerName"], params["protectedItemName"], _example_vm(params))
    return {"operationId": operation_id(answer.headers["Location"])}


def setup_item_operation_done(world: World, params: dict[str, Any]) -> dict[str, Any]:
    found = setup_item_operation(world, params)
    world.advance(HOUR)
    return found


def setup_policy(world: World, params: dict[str, Any], example: dict[str, Any]) -> None:
    path = _vault_from(params)(world)
    body = {"properties": example["responses"]["200"]["body"]["properties"]}
    answer = world.client.send("PUT", f"{path}/backupPolicies/{params['policyName']}", body)
    assert answer.status == 200, answer.body


def setup_containers(world: World, params: dict[str, Any]) -> None:
    path = _vault_from(params)(world)
    sub, rg = params["subscriptionId"], params["resourceGroupName"]
    vm = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachines/sqlvm"
    account = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Storage/storageAccounts/files1"
    world.resource(vm, "westus")
    world.resource(account, "westus")
    for name, body in (
        (
            f"VMAppContainer;compute;{rg};sqlvm",
            {
                "containerType": "VMAppContainer",
                "sourceResourceId": vm,
                "workloadType": "SQLDataBase",
                "backupManagementType": "AzureWorkload",
            },
        ),
        (
            f"StorageContainer;Storage;{rg};files1",
            {"containerType": "StorageContainer", "sourceResourceId": account, "backupManagementType": "AzureStorage"},
        ),
    ):
        answer = world.client.send(
            "PUT", f"{path}/backupFabrics/Azure/protectionContainers/{name}", {"properties": body}
        )
        assert answer.status == 202, answer.body
    world.advance(HOUR)


def setup_unregister(world: World, params: dict[str, Any]) -> None:
    _vault_from(params)(world)
    _, _, rg, account = params["containerName"].split(";")
    group = f"/subscriptions/{params['subscriptionId']}/resourceGroups/{rg}"
    account_id = f"{group}/providers/Microsoft.Storage/storageAccounts/{account}"
    world.resource(account_id, "westus")
    # unregistering a storage account needs Storage Account Contributor on it (backup-rbac-rs-vault.md)
    from sandbox.arm.providers.authorization_model import grant_built_in_role

    grant_built_in_role(world.sb.store, world.sb.config.default_principal_id, "Storage Account Contributor",
                        account_id, world.sb.clock.now())
    answer = world.client.send(
        "PUT",
        CONTAINER.format(**params),
        {
            "properties": {
                "containerType": "StorageContainer",
                "sourceResourceId": account_id,
                "backupManagementType": "AzureStorage",
            }
        },
    )
    assert answer.status == 202, answer.body
    world.advance(HOUR)


def setup_engines(world: World, params: dict[str, Any]) -> None:
    path = _vault_from(params)(world)
    world.model.seed_backup_server(path, "testServer1", kind="DPM")
    world.model.seed_backup_server(path, "testServer5", kind="DPM")


def operation_id(url: str) -> str:
    match = re.search(
        r"/(?:operationResults|operationsStatus|backupOperationResults|backupOperations|"
        r"operationStatus)/([^/?]+)",
        url,
    )
    assert match, url
    return match.group(1)


CASES: dict[str, Case] = {
    "GETVault.json": Case("GET", V, setup_get_vault),
    "PUTVault.json": Case("PUT", V, lambda w, p: w.group(p["subscriptionId"], p["resourceGroupName"])),
    "PATCHVault.json": Case("PATCH", V, setup_vault),
    "DeleteVault.json": Case("DELETE", V, setup_vault),
    "ListBySubscriptionIds.json": Case(
        "GET", "/subscriptions/{subscriptionId}/providers/Microsoft.RecoveryServices/vaults", setup_vault_list
    ),
    "AzureIaasVm/ConfigureProtection.json": Case("PUT", ITEM, setup_configure_protection),
    "AzureIaasVm/StopProtection.json": Case("PUT", ITEM, setup_protected),
    "AzureIaasVm/GetBackupStatus.json": Case(
        "POST",
        "/subscriptions/{subscriptionId}/providers/Microsoft.RecoveryServices/locations/{azureRegion}/backupStatus",
        setup_backup_status,
    ),
    "AzureIaasVm/BackupProtectedItems_List.json": Case("GET", V + "/backupProtectedItems", setup_list_protected),
    "AzureIaasVm/BackupProtectableItems_List.json": Case("GET", V + "/backupProtectableItems", setup_list_protectable),
    "AzureIaasVm/ProtectedItemOperationStatus.json": Case(
        "GET", ITEM + "/operationsStatus/{operationId}", setup_item_operation_done
    ),
    "AzureIaasVm/ProtectedItemOperationResults.json": Case(
        "GET", ITEM + "/operationResults/{operationId}", setup_item_operation
    ),
    "AzureIaasVm/ProtectionPolicies_Get.json": Case("GET", V + "/backupPolicies/{policyName}"),
    "AzureIaasVm/V2Policy/v2-Get-Policy.json": Case("GET", V + "/backupPolicies/{policyName}"),
    "AzureStorage/ProtectionContainers_List.json": Case("GET", V + "/backupProtectionContainers", setup_containers),
    "AzureWorkload/ProtectionContainers_Unregister.json": Case("DELETE", CONTAINER, setup_unregister),
    "Common/BackupResourceVaultConfigs_Get.json": Case("GET", V + "/backupconfig/vaultconfig", setup_vault),
    "Common/BackupResourceVaultConfigs_Put.json": Case("PUT", V + "/backupconfig/vaultconfig", setup_vault),
    "Common/ProtectedItem_Delete.json": Case("DELETE", ITEM, setup_item_delete),
    "Common/ProtectedItem_Delete_OperationStatus.json": Case(
        "GET", V + "/backupOperations/{operationId}", setup_item_delete_status
    ),
    "Common/ProtectedItem_Delete_OperationResult.json": Case(
        "GET", V + "/backupOperationResults/{operationId}", setup_item_delete_status
    ),
    "Common/RefreshContainers.json": Case("POST", V + "/backupFabrics/{fabricName}/refreshContainers", setup_vault),
    "Dpm/BackupEngines_List.json": Case("GET", V + "/backupEngines", setup_engines),
}
POLICY_EXAMPLES = ("AzureIaasVm/ProtectionPolicies_Get.json", "AzureIaasVm/V2Policy/v2-Get-Policy.json")
TRACKED_HEADERS = ("Azure-AsyncOperation", "Location", "Retry-After")


def key_of(path: Path) -> str:
    base = RS if path.is_relative_to(RS) else RSB
    return str(path.relative_to(base))


def test_every_recovery_services_example_has_a_case() -> None:
    assert sorted(key_of(p) for p in example_files()) == sorted(CASES)


def split_params(params: dict[str, Any]) -> tuple[dict[str, str], Any]:
    query = {k: v for k, v in params.items() if k.startswith("$")}
    bodies = [v for v in params.values() if isinstance(v, dict)]
    return query, (bodies[0] if bodies else None)


def check_headers(world: World, expected: dict[str, Any], answer: Answer) -> None:
    for name in TRACKED_HEADERS:
        if name not in expected:
            continue
        value = answer.headers.get(name)
        assert value, f"{name} missing from {answer.headers}"
        if name != "Retry-After":
            assert urlsplit(value).netloc == urlsplit(world.sb.endpoint).netloc, value
            assert "api-version=" in value
            polled = world.client.fetch("GET", value)
            assert polled.status in (200, 202, 204), (value, polled.body)


@pytest.mark.parametrize("path", example_files(), ids=key_of)
def test_example_request_gets_the_example_answer(world: World, path: Path) -> None:
    example = load(path)
    key = key_of(path)
    case = CASES[key]
    params = dict(example["parameters"])
    if key in POLICY_EXAMPLES:
        setup_policy(world, params, example)
    elif case.setup is not None:
        params.update(case.setup(world, params) or {})
    query, body = split_params(params)
    url_params = {k: v for k, v in params.items() if isinstance(v, str) and not k.startswith("$")}
    answer = world.client.send(case.method, case.template.format(**url_params), body, query)

    responses = example["responses"]
    assert str(answer.status) in responses, f"{answer.status} {answer.body} not among {sorted(responses)}"
    expected = responses[str(answer.status)]
    check_headers(world, expected.get("headers") or {}, answer)
    if "body" in expected:
        assert shape_mismatches(expected["body"], answer.body) == []
    if key == "AzureIaasVm/ConfigureProtection.json":
        after_configure_protection(world, url_params, answer, example)
    if answer.status == 202 and "200" in responses and "body" in responses["200"] and case.method in ("PUT", "PATCH"):
        world.advance(8 * HOUR)
        final = world.client.send("GET", case.template.format(**url_params))
        assert final.status == 200
        assert shape_mismatches(responses["200"]["body"], final.body) == []


def test_vault_re_put_answers_200_as_the_example_shows(world: World) -> None:
    example = load(RS / "PUTVault.json")
    params = example["parameters"]
    world.group(params["subscriptionId"], params["resourceGroupName"])
    path = V.format(**{k: v for k, v in params.items() if isinstance(v, str)})
    assert world.client.send("PUT", path, params["vault"]).status == 201
    again = world.client.send("PUT", path, params["vault"])
    assert again.status == 200
    assert shape_mismatches(example["responses"]["200"]["body"], again.body) == []


def test_vault_delete_of_a_missing_vault_answers_204(world: World) -> None:
    params = load(RS / "DeleteVault.json")["parameters"]
    world.group(params["subscriptionId"], params["resourceGroupName"])
    path = V.format(**{k: v for k, v in params.items() if isinstance(v, str)})
    assert world.client.send("DELETE", path).status == 204


def test_operation_results_end_204_as_the_examples_show(world: World) -> None:
    params = dict(load(RSB / "Common/ProtectedItem_Delete_OperationResult.json")["parameters"])
    params.update(setup_item_delete_status(world, params))
    url = (V + "/backupOperationResults/{operationId}").format(
        **{k: v for k, v in params.items() if isinstance(v, str)}
    )
    assert world.client.send("GET", url).status == 202
    world.advance(HOUR)
    assert world.client.send("GET", url).status == 204
