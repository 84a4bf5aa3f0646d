"""Blob containers in the sandbox (issue 19 item 2): containers are ARM resources whose write raises an event,
and a vaulted blob backup instance lists at most 100 of them (docs/azure-facts.md "Blob containers")."""

from __future__ import annotations

from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from sandbox.estate import VAULTED_BLOB_POLICY
from tests.integration.sandbox_dp.conftest import BLOB, STORAGE, Estate, error_code, make_vault

CONTAINERS_API = "2023-05-01"


def _put_container(estate: Estate, account: str, name: str) -> Any:
    return estate.clients.resources(estate.subscription).resources.begin_create_or_update_by_id(
        f"{account}/blobServices/default/containers/{name}", {"properties": {}}, api_version=CONTAINERS_API
    ).result()


def _with_containers(body: dict[str, Any], names: list[str]) -> dict[str, Any]:
    body["policyInfo"]["policyParameters"] = {"backupDatasourceParametersList": [
        {"objectType": "BlobBackupDatasourceParameters", "containersList": names}]}
    return body


def test_a_container_write_is_a_resource_and_an_event(estate: Estate) -> None:
    rg = estate.group("cont")
    account = estate.datasource(rg, STORAGE, "cont")
    made = _put_container(estate, account, "invoices")
    assert made.type == "Microsoft.Storage/storageAccounts/blobServices/containers" and made.name == "invoices"
    [raised] = [e for e in estate.sandbox.events.raised if e["subject"].lower().endswith("/containers/invoices")]
    assert raised["eventType"] == "Microsoft.Resources.ResourceWriteSuccess"
    assert raised["data"]["operationName"] == "Microsoft.Storage/storageAccounts/blobServices/containers/write"
    assert raised["data"]["resourceUri"].lower() == f"{account}/blobServices/default/containers/invoices".lower()
    with pytest.raises(HttpResponseError) as refused:
        _put_container(estate, account, "Bad_Name")
    assert error_code(refused.value) == "ContainerOperationFailure"


def test_the_101st_container_is_refused_with_azures_limit(estate: Estate) -> None:
    rg = estate.group("cont101")
    vault = make_vault(estate, rg)
    account = estate.datasource(rg, STORAGE, "c101")
    names = [f"c{i:03d}" for i in range(101)]
    for name in names:
        _put_container(estate, account, name)
    vault.grant("Storage Account Backup Contributor", account)
    policy = vault.policy(BLOB)
    with pytest.raises(HttpResponseError) as refused:
        vault.protect("bi", _with_containers(vault.instance_body(account, BLOB, policy), names))
    assert error_code(refused.value) == "UserErrorMaxContainersLimitExceeded"
    assert "at most 100 containers" in str(refused.value)
    made = vault.protect("bi", _with_containers(vault.instance_body(account, BLOB, policy), names[:100]))
    assert len(made.properties.policy_info.policy_parameters.backup_datasource_parameters_list[0].containers_list) \
        == 100


def test_a_listed_container_must_exist(estate: Estate) -> None:
    rg = estate.group("contmiss")
    vault = make_vault(estate, rg)
    account = estate.datasource(rg, STORAGE, "cmiss")
    _put_container(estate, account, "here")
    vault.grant("Storage Account Backup Contributor", account)
    body = _with_containers(vault.instance_body(account, BLOB, vault.policy(BLOB)), ["here", "nowhere"])
    with pytest.raises(HttpResponseError) as refused:
        vault.protect("bi", body)
    assert error_code(refused.value) == "UserErrorContainerNotFound"


def test_change_feed_brings_azures_own_container_which_no_backup_may_list(estate: Estate) -> None:
    """Enabling the change feed makes Azure keep it in ``$blobchangefeed`` (storage-blob-change-feed.md), listed
    with the account's containers (inferred); a vaulted blob backup may list no ``$`` container but $root and $web
    (Microsoft's Az.DataProtection refuses the others; the service's refusal and its code are inferred)."""
    rg = estate.group("contsys")
    vault = make_vault(estate, rg)
    account = estate.datasource(rg, STORAGE, "csys")
    _put_container(estate, account, "data")
    estate.clients.resources(estate.subscription).resources.begin_create_or_update_by_id(
        f"{account}/blobServices/default", {"properties": {"changeFeed": {"enabled": True}}},
        api_version=CONTAINERS_API).result()
    made = estate.clients.resources(estate.subscription).resources.get_by_id(
        f"{account}/blobServices/default/containers/$blobchangefeed", api_version=CONTAINERS_API)
    assert made.name == "$blobchangefeed"
    vault.grant("Storage Account Backup Contributor", account)
    body = _with_containers(vault.instance_body(account, BLOB, vault.policy(BLOB)), ["$blobchangefeed", "data"])
    with pytest.raises(HttpResponseError) as refused:
        vault.protect("bi", body)
    assert error_code(refused.value) == "UserErrorInvalidContainerName"
    vault.protect("bi", _with_containers(vault.instance_body(account, BLOB, vault.policy(BLOB)), ["data"]))


def test_a_vaulted_blob_backup_without_a_container_is_refused(estate: Estate) -> None:
    """Observed (Azure/azure-cli-extensions#7499): "(UserErrorNoContainersSelectedForOperation) No containers
    selected for operation" for a vaulted blob backup instance with no container; an operational one needs none."""
    rg = estate.group("contnone")
    vault = make_vault(estate, rg)
    account = estate.datasource(rg, STORAGE, "cnone")
    vault.grant("Storage Account Backup Contributor", account)
    vaulted = estate.dp.backup_policies.create_or_update(rg, vault.name, "vaulted", VAULTED_BLOB_POLICY).id
    for body in (vault.instance_body(account, BLOB, vaulted), _with_containers(
            vault.instance_body(account, BLOB, vaulted), [])):
        with pytest.raises(HttpResponseError) as refused:
            vault.validate(body)
        assert error_code(refused.value) == "UserErrorNoContainersSelectedForOperation"
        with pytest.raises(HttpResponseError) as refused:
            vault.protect("bi", body)
        assert error_code(refused.value) == "UserErrorNoContainersSelectedForOperation"
    _put_container(estate, account, "first")
    vault.protect("bi", _with_containers(vault.instance_body(account, BLOB, vaulted), ["first"]))


def _instance_with(vault: Any, account: str, names: list[str], validation: str | None = None) -> dict[str, Any]:
    body = _with_containers(vault.instance_body(account, BLOB, vault.policy(BLOB)), names)
    if validation:
        body["validationType"] = validation
    return body


def test_an_update_checks_its_containers_again_only_with_deep_validation(estate: Estate) -> None:
    """S-DP BackupInstance.validationType: "In case of DeepValidation, all validations from /validateForBackup API
    will run again"; Microsoft's Update-AzDataProtectionBackupInstance sets it. That a shallow update (the default)
    does not check the containers is inferred (docs/azure-facts.md "Blob containers")."""
    rg = estate.group("contdeep")
    vault = make_vault(estate, rg)
    account = estate.datasource(rg, STORAGE, "cdeep")
    _put_container(estate, account, "here")
    vault.grant("Storage Account Backup Contributor", account)
    vault.protect("bi", _instance_with(vault, account, ["here"]))
    with pytest.raises(HttpResponseError) as refused:
        vault.protect("bi", _instance_with(vault, account, ["here", "nowhere"], "DeepValidation"))
    assert error_code(refused.value) == "UserErrorContainerNotFound"
    shallow = vault.protect("bi", _instance_with(vault, account, ["here", "nowhere"]))
    assert shallow.properties.policy_info.policy_parameters.backup_datasource_parameters_list[0].containers_list \
        == ["here", "nowhere"]
    assert shallow.properties.validation_type is None  # a request-only field, never echoed (PutBackupInstance.json)


def test_the_app_modifies_an_instance_with_deep_validation_as_microsofts_client_does(
    estate: Estate, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``set_blob_containers`` asks Azure to validate the modified list again: a container gone since it was listed
    is refused there and then, not accepted unchecked (before, the app sent no validationType)."""
    from activities import protection as protection_activities
    from steward import bootstrap
    from steward.cloud.arm_cache import ArmCache
    from steward.cloud.protection import BackupVaultProtection

    monkeypatch.setattr(bootstrap, "clients", lambda: estate.clients)
    monkeypatch.setattr(bootstrap, "arm_cache", lambda: ArmCache(300))
    rg = estate.group("contapp")
    vault = make_vault(estate, rg)
    account = estate.datasource(rg, STORAGE, "capp")
    _put_container(estate, account, "here")
    vault.grant("Storage Account Backup Contributor", account)
    made = vault.protect("bi", _instance_with(vault, account, ["here"]))
    instance = BackupVaultProtection(estate.clients).instance(vault.id, "bi")
    assert instance is not None and instance["id"].lower() == made.id.lower()
    activity = protection_activities.set_blob_containers
    run = activity._function.get_user_function() if hasattr(activity, "_function") else activity
    request = {"vault_id": vault.id, "name": "bi", "account_id": account, "instance": instance}
    refused = run({**request, "containers": ["here", "gone"]})
    assert refused.get("ok") is False and refused.get("code") == "UserErrorContainerNotFound", refused
    _put_container(estate, account, "new")
    accepted = run({**request, "containers": ["here", "new"]})
    assert accepted.get("ok", True) is not False, accepted


def test_a_changed_container_list_is_answered_202_with_headers_and_no_body(estate: Estate) -> None:
    """PutBackupInstance.json's 202: Azure-AsyncOperation, Location, Retry-After, no body (which update gets it rather
    than 200 is inferred: here a change of what is backed up; a tags-only re-PUT stays 200)."""
    rg = estate.group("cont202")
    vault = make_vault(estate, rg)
    account = estate.datasource(rg, STORAGE, "c202")
    for name in ("aaa", "bbb"):
        _put_container(estate, account, name)
    vault.grant("Storage Account Backup Contributor", account)
    vault.protect("bi", _instance_with(vault, account, ["aaa"]))
    poller = estate.dp.backup_instances.begin_create_or_update(
        vault.rg, vault.name, "bi", {"properties": _instance_with(vault, account, ["aaa", "bbb"], "DeepValidation")})
    initial = poller.polling_method()._initial_response.http_response
    assert initial.status_code == 202 and not initial.content
    # the wait hint: Retry-After (retry-after-ms at this test's fast clock, sandbox/arm/lro.py)
    assert {"azure-asyncoperation", "location"} <= {k.lower() for k in initial.headers}
    assert {"retry-after", "retry-after-ms"} & {k.lower() for k in initial.headers}
    assert "/backupInstances/bi/operationResults/" in initial.headers["Location"]
    done = poller.result()
    assert done.properties.policy_info.policy_parameters.backup_datasource_parameters_list[0].containers_list == [
        "aaa", "bbb"]
