"""The Resource Graph reader (the real azure-mgmt-resourcegraph client) against the sandbox's small Resource
Graph (sandbox/arm/providers/resourcegraph.py) reads the same estate as the ARM reader and the audit gives the
same findings. The sandbox's Graph is ours, not Microsoft's: this proves the two paths agree with each other
and with the ARM shapes, not that live Resource Graph rows look exactly like this (UNCONFIRMED)."""

from __future__ import annotations

from sandbox.arm import ArmSandbox
from steward.cloud.clients import CloudClients
from steward.cloud.inventory import ArmEstateReader, graph_reader, read_estate
from steward.domain.audit import EstateInventory, RuleExpectations, audit
from steward.domain.rules import load_rules
from steward.rules_file import default_rules_text
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


def test_a_query_outside_the_sandbox_subset_is_refused_not_widened(clients: CloudClients, built: BuiltEstate) -> None:
    import pytest
    from azure.core.exceptions import HttpResponseError
    from azure.mgmt.resourcegraph import ResourceGraphClient
    from azure.mgmt.resourcegraph.models import QueryRequest

    target = clients.target
    client = ResourceGraphClient(
        clients.credential,
        base_url=target.arm_endpoint,
        connection_verify=target.ca_bundle,
        credential_scopes=[target.arm_endpoint + "/.default"],
    )
    with pytest.raises(HttpResponseError) as refused:
        client.resources(QueryRequest(subscriptions=[SUB1], query="Resources | summarize count() by type"))
    assert refused.value.status_code == 400
    assert refused.value.error is not None and refused.value.error.code == "UnsupportedQuery"


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
