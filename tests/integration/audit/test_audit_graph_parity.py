"""The Resource Graph reader (the real azure-mgmt-resourcegraph client) against the sandbox's small Resource
Graph (sandbox/arm/providers/resourcegraph.py) reads the same estate as the ARM reader and the audit gives the
same findings. The sandbox's Graph is ours, not Microsoft's: this proves the two paths agree with each other
and with the ARM shapes, not that live Resource Graph rows look exactly like this (UNCONFIRMED)."""

from __future__ import annotations

from typing import Any

from sandbox.arm import ArmSandbox
from steward.cloud.clients import CloudClients
from steward.cloud.inventory import ArmEstateReader, graph_reader, read_estate
from steward.domain.audit import EstateInventory, RuleExpectations, audit
from steward.rules_file import default_rules_text, load_rules
from tests.integration.audit.audit_sandbox_estate import SUB1, SUB2, BuiltEstate


def _soft_deleted_instances(inventory: EstateInventory) -> EstateInventory:
    """Graph (as far as the docs say) has no deleted Backup vault instances: compare without them."""
    from dataclasses import replace

    return replace(inventory, backup_instances=tuple(b for b in inventory.backup_instances if not b.soft_deleted))


def test_graph_and_arm_readers_give_the_same_inventory_and_findings(
    sandbox: ArmSandbox, clients: CloudClients, built: BuiltEstate
) -> None:
    arm = _soft_deleted_instances(read_estate(ArmEstateReader(clients), [SUB1, SUB2]))
    reader = graph_reader(clients, [SUB1, SUB2])
    graph = read_estate(reader, [SUB1, SUB2])
    assert graph.gaps == ()
    assert {r.id.lower() for r in graph.resources} == {r.id.lower() for r in arm.resources}
    assert {(r.type, r.location) for r in graph.resources} == {(r.type, r.location) for r in arm.resources}
    assert {v.id.lower() for v in graph.vaults} == {v.id.lower() for v in arm.vaults}
    assert {i.id.lower() for i in graph.protected_items} == {i.id.lower() for i in arm.protected_items}
    assert reader.queries_sent >= 8  # four queries per subscription, paged
    rules = load_rules(default_rules_text(), "defaults")
    now = sandbox.clock.now()
    graph_findings = {(f.id, f.control_id) for f in audit(graph, RuleExpectations(rules, graph.vaults), now).findings}
    arm_findings = {(f.id, f.control_id) for f in audit(arm, RuleExpectations(rules, arm.vaults), now).findings}
    assert graph_findings == arm_findings
    assert {c for _, c in graph_findings} >= {"BKP-001", "BKP-002", "BKP-004", "BKP-006", "ORP-001", "VLT-005"}


def _graph(clients: CloudClients) -> Any:
    from azure.mgmt.resourcegraph import ResourceGraphClient

    target = clients.target
    return ResourceGraphClient(
        clients.credential,
        base_url=target.arm_endpoint,
        connection_verify=target.ca_bundle,
        credential_scopes=[target.arm_endpoint + "/.default"],
    )


def _rows(clients: CloudClients, query: str) -> list[dict[str, Any]]:
    from azure.mgmt.resourcegraph.models import QueryRequest

    answer = _graph(clients).resources(QueryRequest(subscriptions=[SUB1], query=query))
    return list(answer.data)


def test_a_query_outside_the_sandbox_subset_is_refused_not_widened(clients: CloudClients, built: BuiltEstate) -> None:
    import pytest
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.resourcegraph.models import QueryRequest

    for query, token in (
        ("Resources | mv-expand tags", "mv-expand"),
        ("Resources | parse id with * '/providers/' rest", "parse"),
        ("Resources | where tags['env'] == 'prod'", "["),
        ("Resources | join kind=fullouter (Resources | project id) on id", "fullouter"),
        ("Resources | summarize dcount(type)", "dcount"),
    ):
        with pytest.raises(HttpResponseError) as refused:
            _graph(clients).resources(QueryRequest(subscriptions=[SUB1], query=query))
        assert refused.value.status_code == 400, query
        error = refused.value.error
        assert error is not None and error.code == "BadRequest", query
        details = {d.code: d for d in error.details or []}
        assert "InvalidQuery" in details and "UnsupportedBySandbox" in details, query
        assert token in str(details["UnsupportedBySandbox"].message), query


def test_summarize_count_and_count_agree_with_the_rows(clients: CloudClients, built: BuiltEstate) -> None:
    everything = _rows(clients, "Resources | project id, type")
    by_type = _rows(clients, "resources | summarize count() by type")
    expected: dict[str, int] = {}
    for row in everything:
        expected[row["type"]] = expected.get(row["type"], 0) + 1
    assert {r["type"]: r["count_"] for r in by_type} == expected
    assert _rows(clients, "Resources | count") == [{"Count": len(everything)}]
    named = _rows(clients, "Resources | where type =~ 'Microsoft.Compute/virtualMachines' | summarize n = count()")
    assert named == [{"n": expected.get("microsoft.compute/virtualmachines", 0)}]
    assert len(_rows(clients, "Resources | order by id asc | take 2")) == min(2, len(everything))


def test_microsofts_unprotected_vm_query_finds_exactly_the_vms_without_a_backup_item(
    clients: CloudClients, built: BuiltEstate
) -> None:
    """The left-outer join of Microsoft's backup Resource Graph article (learn.microsoft.com
    backup/query-backups-using-azure-resource-graph), verbatim but one line break."""
    query = """Resources
| where type in~ ('microsoft.compute/virtualmachines','microsoft.classiccompute/virtualmachines')
| extend resourceId=tolower(id)
| join kind=leftouter (RecoveryServicesResources
  | where type == "microsoft.recoveryservices/vaults/backupfabrics/protectioncontainers/protecteditems"
  | where properties.backupManagementType == "AzureIaasVM"
  | project resourceId=tolower(tostring(properties.sourceResourceId)), backupItemid=id) on resourceId
| where isempty(backupItemid) | project id,name,resourceGroup,location,tags"""
    unprotected = {r["id"].lower() for r in _rows(clients, query)}
    inventory = read_estate(ArmEstateReader(clients), [SUB1])
    vms = {r.id.lower() for r in inventory.resources if r.type.lower() == "microsoft.compute/virtualmachines"}
    protected = {i.source_id.lower() for i in inventory.protected_items}
    assert vms, "the estate has VMs"
    assert unprotected == vms - protected
    assert vms & protected, "the estate has protected VMs too, so the join is exercised both ways"


def test_the_cli_reads_through_graph_and_auto(sandbox: ArmSandbox, built: BuiltEstate) -> None:
    import io
    import json

    from steward.audit_cli import EXIT_OK, main

    target = [
        "--arm-endpoint",
        sandbox.endpoint,
        "--ca-bundle",
        sandbox.ca_bundle,
        "--sandbox-token-url",
        sandbox.token_url,
        "--format",
        "json",
        "--no-progress",
    ]
    documents = {}
    for source in ("arm", "graph", "auto"):
        out, err = io.StringIO(), io.StringIO()
        assert main([*target, "--source", source, "--subscription", SUB1], stdout=out, stderr=err) == EXIT_OK, err
        documents[source] = {(f["id"], f["control"]) for f in json.loads(out.getvalue())["findings"]}
    assert documents["graph"] == documents["arm"] == documents["auto"]
