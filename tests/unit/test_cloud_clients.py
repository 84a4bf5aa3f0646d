"""``steward.cloud.clients`` builds every SDK client the app uses; what it builds and what it refuses."""

from __future__ import annotations

import pytest

from steward.cloud.clients import CloudClients, CloudTarget, blob_service, event_grid_publisher
from tests import azurite

SANDBOX = CloudTarget(
    arm_endpoint="https://127.0.0.1:9", credential_kind="sandbox", sandbox_token_url="https://127.0.0.1:9/token"
)


def test_the_resource_graph_client_is_built_once_per_target_on_its_endpoint() -> None:
    pytest.importorskip("azure.mgmt.resourcegraph")
    clients = CloudClients(SANDBOX)
    graph = clients.resource_graph()
    assert clients.resource_graph() is graph
    assert CloudClients(SANDBOX).resource_graph() is not graph
    assert graph._config.credential_scopes == ["https://127.0.0.1:9/.default"]  # the sandbox's own audience


def test_blob_and_event_grid_clients_need_somewhere_to_go_and_a_way_in() -> None:
    with pytest.raises(ValueError, match="account URL or a connection string"):
        blob_service()
    assert blob_service(connection_string=azurite.connection_string(10000)).account_name == azurite.ACCOUNT
    with pytest.raises(ValueError, match="key or a token credential"):
        event_grid_publisher("https://topic.example/api/events")
