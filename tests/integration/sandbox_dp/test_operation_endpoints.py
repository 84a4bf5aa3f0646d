"""Every operation-status / operation-result flavour the SDK knows, read through its own operation groups."""

from __future__ import annotations

from .conftest import Estate, make_vault, protected_disk


def operation_id(url: str, marker: str) -> str:
    return url.split(marker)[1].split("?", maxsplit=1)[0]


def test_status_and_result_endpoints_answer_through_the_sdk(estate: Estate) -> None:
    protected = protected_disk(estate)
    v = protected.vault
    dp = estate.dp

    stop = dp.backup_instances.begin_stop_protection(v.rg, v.name, "bi")
    headers = stop.polling_method()._initial_response.http_response.headers
    stop.result()
    op = operation_id(headers["Azure-AsyncOperation"], "/operationStatus/")

    assert dp.operation_status_backup_vault_context.get(v.rg, v.name, op).status == "Succeeded"
    assert dp.operation_status_resource_group_context.get(v.rg, op).status == "Succeeded"
    assert dp.operation_status.get("westus", op).status == "Succeeded"
    result = dp.backup_instances.get_backup_instance_operation_result(v.rg, v.name, "bi", op)
    assert result.properties.current_protection_state == "ProtectionStopped"
    assert dp.backup_vault_operation_results.get(v.rg, v.name, op).id.lower() == v.id.lower()

    delete = dp.backup_instances.begin_delete(v.rg, v.name, "bi")
    gone = operation_id(delete.polling_method()._initial_response.http_response.headers["Location"],
                        "/operationResults/")
    delete.result()
    assert estate.dp.operation_status.get("westus", gone).status == "Succeeded"


def test_validation_result_is_served_by_the_location_scoped_operation_result(estate: Estate) -> None:
    rg = estate.group("opresult")
    vault = make_vault(estate, rg)
    account = estate.datasource(rg, "Microsoft.Storage/storageAccounts", "acct")
    vault.grant("Storage Account Backup Contributor", account)
    body = vault.instance_body(account, "Microsoft.Storage/storageAccounts/blobServices",
                               vault.policy("Microsoft.Storage/storageAccounts/blobServices"))
    poller = estate.dp.backup_instances.begin_validate_for_backup(rg, "vault", {"backupInstance": body})
    location = poller.polling_method()._initial_response.http_response.headers["Location"]
    job = poller.result()
    result = estate.dp.operation_result.get(operation_id(location, "/operationResults/"), "westus")
    assert result.job_id == job.job_id
