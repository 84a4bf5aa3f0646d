"""Site Recovery routes of a Recovery Services vault (``replicationFabrics/...``), as far as teardown needs them.

Paths and methods from ``azure-mgmt-recoveryservicessiterecovery`` (operation code read, not a runtime
dependency): every PUT is an LRO answering 202; ``DELETE`` purges, ``POST .../remove`` removes (disables
replication for items), both 202 then done. The LRO URLs (``replicationOperationStatus`` /
``replicationOperationResults`` under the vault) are the sandbox's own; Azure's pollers follow whatever
``Azure-AsyncOperation``/``Location`` say. State: :mod:`sandbox.arm.providers.siterecovery_model`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sandbox.arm.http import Request, Response, ok
from sandbox.arm.providers import recoveryservices_views as views
from sandbox.arm.providers.recoveryservices_model import Pending
from sandbox.arm.providers.siterecovery_model import (
    CONTAINER_TYPE,
    FABRIC_TYPE,
    ITEM_TYPE,
    MAPPING_TYPE,
    NETWORK_MAPPING_TYPE,
    SiteRecoveryState,
    SrObject,
)

if TYPE_CHECKING:
    from sandbox.arm.providers.recoveryservices import RecoveryServicesProvider
    from sandbox.arm.routing import Router

#: the SDK's default version first; the vault API's version is accepted too
API_VERSIONS = ("2025-08-01", "2025-02-01", "2025-01-01", "2024-10-01")

V = (
    "/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}"
    "/providers/Microsoft.RecoveryServices/vaults/{vaultName}"
)
F = V + "/replicationFabrics/{fabricName}"
C = F + "/replicationProtectionContainers/{protectionContainerName}"
I = C + "/replicationProtectedItems/{replicatedProtectedItemName}"  # noqa: E741
M = C + "/replicationProtectionContainerMappings/{mappingName}"
NM = F + "/replicationNetworks/{networkName}/replicationNetworkMappings/{networkMappingName}"


class SiteRecoveryRoutes:
    def __init__(self, provider: RecoveryServicesProvider) -> None:
        self.p = provider

    def sr(self, req: Request) -> tuple[Any, SiteRecoveryState]:
        vault = self.p.vault(req)
        return vault, vault.site_recovery

    def lro(self, req: Request, effect: Callable[[], Any] | None, done_status: int = 204) -> Response:
        vault = self.p.vault(req)
        lock = self.p.model.lock

        def complete() -> Any:
            if effect is None:
                return None
            with lock:
                return effect()

        op = self.p.begin(
            req,
            Pending("SiteRecovery", self.p.model.timing.site_recovery, complete),
            async_url=f"{vault.id}/replicationOperationStatus/{{operationId}}",
            location_url=f"{vault.id}/replicationOperationResults/{{operationId}}",
            done_status=done_status,
        )
        return self.p.ctx.operations.accept(op)

    @staticmethod
    def path(req: Request, *names: str) -> str:
        segments = {
            "fabricName": "replicationFabrics",
            "protectionContainerName": "replicationProtectionContainers",
            "replicatedProtectedItemName": "replicationProtectedItems",
            "mappingName": "replicationProtectionContainerMappings",
            "networkName": "replicationNetworks",
            "networkMappingName": "replicationNetworkMappings",
        }
        return "/".join(f"{segments[n]}/{req.params[n]}" for n in names)

    def json(self, req: Request, rtype: str, obj: SrObject, *names: str) -> dict[str, Any]:
        vault = self.p.vault(req)
        return views.sr_json(vault, self.path(req, *names), rtype, obj)

    # -- fabrics ------------------------------------------------------------------------------------
    def list_fabrics(self, req: Request) -> Response:
        vault, sr = self.sr(req)
        return self.p.ctx.page(
            req, [views.sr_json(vault, f"replicationFabrics/{f.name}", FABRIC_TYPE, f) for f in sr.fabrics.values()]
        )

    def get_fabric(self, req: Request) -> Response:
        _, sr = self.sr(req)
        return ok(self.json(req, FABRIC_TYPE, sr.fabric(req.params["fabricName"]), "fabricName"))

    def put_fabric(self, req: Request) -> Response:
        _, sr = self.sr(req)
        fabric = sr.put_fabric(req.params["fabricName"], req.json_object())
        body = self.json(req, FABRIC_TYPE, fabric, "fabricName")
        return self.lro(req, lambda: body)

    def remove_fabric(self, req: Request) -> Response:
        _, sr = self.sr(req)
        name = req.params["fabricName"]
        sr.check_remove_fabric(name)
        return self.lro(req, lambda: sr.remove_fabric(name))

    # -- protection containers ---------------------------------------------------------------------------
    def list_containers(self, req: Request) -> Response:
        vault, sr = self.sr(req)
        fabric = sr.fabric(req.params["fabricName"])
        return self.p.ctx.page(
            req,
            [
                views.sr_json(
                    vault,
                    f"replicationFabrics/{fabric.name}/replicationProtectionContainers/{c.name}",
                    CONTAINER_TYPE,
                    c,
                )
                for c in fabric.children.values()
            ],
        )

    def get_container(self, req: Request) -> Response:
        _, sr = self.sr(req)
        container = sr.container(req.params["fabricName"], req.params["protectionContainerName"])
        return ok(self.json(req, CONTAINER_TYPE, container, "fabricName", "protectionContainerName"))

    def put_container(self, req: Request) -> Response:
        _, sr = self.sr(req)
        container = sr.put_container(req.params["fabricName"], req.params["protectionContainerName"], req.json_object())
        body = self.json(req, CONTAINER_TYPE, container, "fabricName", "protectionContainerName")
        return self.lro(req, lambda: body)

    def remove_container(self, req: Request) -> Response:
        _, sr = self.sr(req)
        fabric, name = req.params["fabricName"], req.params["protectionContainerName"]
        sr.check_remove_container(fabric, name)
        return self.lro(req, lambda: sr.remove_container(fabric, name))

    # -- replicated items ------------------------------------------------------------------------------
    def _item_names(self, req: Request) -> tuple[str, str, str]:
        p = req.params
        return p["fabricName"], p["protectionContainerName"], p["replicatedProtectedItemName"]

    def list_items(self, req: Request) -> Response:
        vault, sr = self.sr(req)
        container = sr.container(req.params["fabricName"], req.params["protectionContainerName"])
        base = self.path(req, "fabricName", "protectionContainerName")
        return self.p.ctx.page(
            req,
            [
                views.sr_json(vault, f"{base}/replicationProtectedItems/{i.name}", ITEM_TYPE, i)
                for i in container.children.values()
            ],
        )

    def list_all_items(self, req: Request) -> Response:
        vault, sr = self.sr(req)
        found = [
            views.sr_json(
                vault,
                f"replicationFabrics/{f.name}/replicationProtectionContainers/{c.name}/replicationProtectedItems/{i.name}",
                ITEM_TYPE,
                i,
            )
            for f in sr.fabrics.values()
            for c in f.children.values()
            for i in c.children.values()
        ]
        return self.p.ctx.page(req, found)

    def list_all_mappings(self, req: Request) -> Response:
        vault, sr = self.sr(req)
        found = [
            views.sr_json(
                vault,
                f"replicationFabrics/{f.name}/replicationProtectionContainers/{c.name}"
                f"/replicationProtectionContainerMappings/{m.name}",
                MAPPING_TYPE,
                m,
            )
            for f in sr.fabrics.values()
            for c in f.children.values()
            for m in c.mappings.values()
        ]
        return self.p.ctx.page(req, found)

    def list_all_network_mappings(self, req: Request) -> Response:
        vault, sr = self.sr(req)
        found = [
            views.sr_json(
                vault,
                f"replicationFabrics/{f.name}/replicationNetworks/{n.name}/replicationNetworkMappings/{m.name}",
                NETWORK_MAPPING_TYPE,
                m,
            )
            for f in sr.fabrics.values()
            for n in f.networks.values()
            for m in n.children.values()
        ]
        return self.p.ctx.page(req, found)

    def get_item(self, req: Request) -> Response:
        _, sr = self.sr(req)
        item = sr.item(*self._item_names(req))
        names = ("fabricName", "protectionContainerName", "replicatedProtectedItemName")
        return ok(self.json(req, ITEM_TYPE, item, *names))

    def put_item(self, req: Request) -> Response:
        _, sr = self.sr(req)
        fabric, container, name = self._item_names(req)
        item = sr.put_item(fabric, container, name, req.json_object())
        names = ("fabricName", "protectionContainerName", "replicatedProtectedItemName")
        body = self.json(req, ITEM_TYPE, item, *names)
        return self.lro(req, lambda: body)

    def remove_item(self, req: Request) -> Response:
        """Disable replication (``POST .../remove``) or purge (``DELETE``): the item is gone when the LRO ends."""
        _, sr = self.sr(req)
        fabric, container, name = self._item_names(req)
        item = sr.item(fabric, container, name)
        item.properties["protectionState"] = "UnprotectedStatesBegin"
        return self.lro(req, lambda: sr.remove_item(fabric, container, name))

    # -- container mappings ----------------------------------------------------------------------------
    def _mapping_names(self, req: Request) -> tuple[str, str, str]:
        p = req.params
        return p["fabricName"], p["protectionContainerName"], p["mappingName"]

    def list_mappings(self, req: Request) -> Response:
        vault, sr = self.sr(req)
        container = sr.container(req.params["fabricName"], req.params["protectionContainerName"])
        base = self.path(req, "fabricName", "protectionContainerName")
        return self.p.ctx.page(
            req,
            [
                views.sr_json(vault, f"{base}/replicationProtectionContainerMappings/{m.name}", MAPPING_TYPE, m)
                for m in container.mappings.values()
            ],
        )

    def get_mapping(self, req: Request) -> Response:
        _, sr = self.sr(req)
        mapping = sr.mapping(*self._mapping_names(req))
        return ok(self.json(req, MAPPING_TYPE, mapping, "fabricName", "protectionContainerName", "mappingName"))

    def put_mapping(self, req: Request) -> Response:
        _, sr = self.sr(req)
        fabric, container, name = self._mapping_names(req)
        mapping = sr.put_mapping(fabric, container, name, req.json_object())
        body = self.json(req, MAPPING_TYPE, mapping, "fabricName", "protectionContainerName", "mappingName")
        return self.lro(req, lambda: body)

    def remove_mapping(self, req: Request) -> Response:
        _, sr = self.sr(req)
        fabric, container, name = self._mapping_names(req)
        sr.check_remove_mapping(fabric, container, name)
        return self.lro(req, lambda: sr.remove_mapping(fabric, container, name))

    # -- network mappings ------------------------------------------------------------------------------
    def _network_names(self, req: Request) -> tuple[str, str, str]:
        p = req.params
        return p["fabricName"], p["networkName"], p["networkMappingName"]

    def list_network_mappings(self, req: Request) -> Response:
        vault, sr = self.sr(req)
        fabric = sr.fabric(req.params["fabricName"])
        net = fabric.networks.get(req.params["networkName"].lower())
        base = self.path(req, "fabricName", "networkName")
        found = [
            views.sr_json(vault, f"{base}/replicationNetworkMappings/{m.name}", NETWORK_MAPPING_TYPE, m)
            for m in (net.children.values() if net else [])
        ]
        return self.p.ctx.page(req, found)

    def get_network_mapping(self, req: Request) -> Response:
        _, sr = self.sr(req)
        mapping = sr.network_mapping(*self._network_names(req))
        names = ("fabricName", "networkName", "networkMappingName")
        return ok(self.json(req, NETWORK_MAPPING_TYPE, mapping, *names))

    def put_network_mapping(self, req: Request) -> Response:
        _, sr = self.sr(req)
        fabric, network, name = self._network_names(req)
        mapping = sr.put_network_mapping(fabric, network, name, req.json_object())
        names = ("fabricName", "networkName", "networkMappingName")
        body = self.json(req, NETWORK_MAPPING_TYPE, mapping, *names)
        return self.lro(req, lambda: body)

    def delete_network_mapping(self, req: Request) -> Response:
        _, sr = self.sr(req)
        fabric, network, name = self._network_names(req)
        sr.network_mapping(fabric, network, name)
        return self.lro(req, lambda: sr.remove_network_mapping(fabric, network, name))


def add_site_recovery_routes(router: Router, provider: RecoveryServicesProvider) -> None:
    routes = router.provider("Microsoft.RecoveryServices", API_VERSIONS)
    h = SiteRecoveryRoutes(provider)

    def add(method: str, template: str, handler: Callable[[Request], Response], **kw: Any) -> None:
        status_route = handler in (provider.operation_status, provider.operation_result)
        routes.add(method, template, handler if status_route else provider.guarded(handler), **kw)

    add("GET", V + "/replicationFabrics", h.list_fabrics)
    add("GET", F, h.get_fabric)
    add("PUT", F, h.put_fabric)
    add("DELETE", F, h.remove_fabric)
    add("POST", F + "/remove", h.remove_fabric)
    add("GET", F + "/replicationProtectionContainers", h.list_containers)
    add("GET", C, h.get_container)
    add("PUT", C, h.put_container)
    add("POST", C + "/remove", h.remove_container)
    add("GET", V + "/replicationProtectedItems", h.list_all_items)
    add("GET", C + "/replicationProtectedItems", h.list_items)
    add("GET", I, h.get_item)
    add("PUT", I, h.put_item)
    add("DELETE", I, h.remove_item)
    add("POST", I + "/remove", h.remove_item)
    add("GET", C + "/replicationProtectionContainerMappings", h.list_mappings)
    add("GET", V + "/replicationProtectionContainerMappings", h.list_all_mappings)
    add("GET", V + "/replicationNetworkMappings", h.list_all_network_mappings)
    add("GET", M, h.get_mapping)
    add("PUT", M, h.put_mapping)
    add("DELETE", M, h.remove_mapping)
    add("POST", M + "/remove", h.remove_mapping)
    add("GET", F + "/replicationNetworks/{networkName}/replicationNetworkMappings", h.list_network_mappings)
    add("GET", NM, h.get_network_mapping)
    add("PUT", NM, h.put_network_mapping)
    add("DELETE", NM, h.delete_network_mapping)
    add("GET", V + "/replicationOperationStatus/{operationId}", provider.operation_status, check_scope=False)
    add("GET", V + "/replicationOperationResults/{operationId}", provider.operation_result, check_scope=False)
