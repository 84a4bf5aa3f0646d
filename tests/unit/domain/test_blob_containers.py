"""Which containers a vaulted blob backup instance gains when containers are created (issue 19 item 2)."""

from __future__ import annotations

from steward.domain import blob_containers as bc


def test_a_new_container_is_appended_and_nothing_is_dropped() -> None:
    plan = bc.plan_containers(["logs", "gone-since"], ["logs", "invoices"])
    assert plan.containers == ("logs", "gone-since", "invoices")  # make-before-break: 'gone-since' stays
    assert plan.added == ("invoices",) and plan.changed and not plan.left_out


def test_nothing_new_changes_nothing() -> None:
    plan = bc.plan_containers(["a", "b"], ["B", "a"])
    assert not plan.changed and plan.containers == ("a", "b")


def test_the_101st_container_is_left_out_with_the_reason() -> None:
    current = [f"c{i:03d}" for i in range(100)]
    plan = bc.plan_containers(current, [*current, "c100", "c101"])
    assert not plan.changed and len(plan.containers) == bc.MAX_VAULTED_CONTAINERS == 100
    assert [entry.container for entry in plan.left_out] == ["c100", "c101"]
    assert "at most 100 containers" in plan.left_out[0].reason and "lists 100" in plan.left_out[0].reason


def test_filling_up_to_the_limit_adds_in_name_order_then_leaves_the_rest_out() -> None:
    current = [f"c{i:03d}" for i in range(98)]
    plan = bc.plan_containers(current, [*current, "z", "y", "x"])
    assert plan.added == ("x", "y") and [e.container for e in plan.left_out] == ["z"]
    assert len(plan.containers) == 100


def test_system_containers_are_never_added_but_root_and_web_are() -> None:
    """Azure's own containers ($logs: Storage Analytics, $blobchangefeed: change feed) are not backed-up data;
    Microsoft's PowerShell refuses any ``$`` container but $root and $web in a vaulted blob backup."""
    plan = bc.plan_containers([], ["$logs", "$blobchangefeed", "data", "$web", "$root"])
    assert plan.added == ("$root", "$web", "data") and not plan.left_out
    assert bc.plan_containers(["data"], ["data", "$logs"]).changed is False
    assert not bc.selectable("$logs") and bc.selectable("$WEB") and bc.selectable("logs")


def test_a_rule_that_names_containers_adds_only_those() -> None:
    plan = bc.plan_containers(["a"], ["a", "b", "scratch"], named_by_rule=["a", "b"])
    assert plan.added == ("b",)
    assert [(e.container, "not among them" in e.reason) for e in plan.left_out] == [("scratch", True)]


def test_modified_instance_keeps_the_instance_and_replaces_only_the_list() -> None:
    instance = {
        "id": "/x/backupInstances/bi",
        "properties": {
            "objectType": "BackupInstance",
            "dataSourceInfo": {"resourceID": "/acct", "datasourceType": "Microsoft.Storage/storageAccounts/blob"},
            "policyInfo": {"policyId": "/p", "policyParameters": {
                "dataStoreParametersList": [{"objectType": "AzureOperationalStoreParameters"}],
                "backupDatasourceParametersList": [
                    {"objectType": "BlobBackupDatasourceParameters", "containersList": ["a"]}]}},
            "currentProtectionState": "ProtectionConfigured",
            "protectionStatus": {"status": "ProtectionConfigured"},
            "provisioningState": "Succeeded",
        },
    }
    assert bc.containers_of(instance) == ["a"]
    body = bc.modified_instance(instance, ["a", "b"])
    props = body["properties"]
    assert bc.containers_of(body) == ["a", "b"]
    assert props["dataSourceInfo"] == instance["properties"]["dataSourceInfo"]
    assert props["policyInfo"]["policyId"] == "/p"
    assert props["policyInfo"]["policyParameters"]["dataStoreParametersList"] == [
        {"objectType": "AzureOperationalStoreParameters"}]
    assert not {"currentProtectionState", "protectionStatus", "provisioningState"} & set(props)
    assert props["validationType"] == "DeepValidation"  # as Update-AzDataProtectionBackupInstance sends it
    assert bc.containers_of(instance) == ["a"]  # the input is not modified
    assert bc.containers_of(None) == [] and bc.containers_of({"properties": {}}) == []
