"""Microsoft.RecoveryServices (api-version 2025-02-01): vaults, Azure Backup, and Site Recovery (for teardown).

Routes follow what ``azure.mgmt.recoveryservices`` 4.3.0 (``RecoveryServicesClient``) and
``azure.mgmt.recoveryservicesbackup`` 11.2.0 (``RecoveryServicesBackupClient``) send, and the S-RS / S-RSB
examples. ``V`` = ``/subscriptions/{s}/resourceGroups/{g}/providers/Microsoft.RecoveryServices/vaults/{v}``.

==================================================  ===========================================================
operation                                           answer
==================================================  ===========================================================
PUT V                                               201 new / 200 existing, provisioningState Succeeded (PUTVault)
GET V, GET .../vaults (sub, group)                  200 (GETVault, ListBySubscriptionIds), paged
PATCH V                                             202 + Azure-AsyncOperation V/operationStatus/{id} + Location
                                                    V/operationResults/{id} + Retry-After (PATCHVault)
DELETE V                                            202 + the same headers (DeleteVault); 204 when absent;
                                                    400 when not empty / soft-deleted items
GET|PUT|PATCH V/backupconfig/vaultconfig            200 (BackupResourceVaultConfigs_*); PUT replaces (omitted
                                                    properties reset to defaults), PATCH merges
GET|PUT|PATCH V/backupstorageconfig/vaultstorageconfig  200 / 200 / 204: see :mod:`recoveryservices_storage`
POST .../locations/{r}/backupStatus                 200 (GetBackupStatus)
GET|PUT|DELETE V/backupPolicies[/{p}]               200 (ProtectionPolicies_Get, v2-Get-Policy); DELETE 200/204
POST V/backupFabrics/Azure/refreshContainers        202 + Location .../backupFabrics/Azure/operationResults/{id}
                                                    (RefreshContainers); that Location: 202 then 204
GET V/backupProtectableItems?$filter                200 (BackupProtectableItems_List)
PUT  .../protectedItems/{i}                         202 + Location .../operationResults/{id} + Azure-AsyncOperation
                                                    .../operationsStatus/{id} + Retry-After (ConfigureProtection,
                                                    StopProtection); operationResults: 202 / 200 item
DELETE .../protectedItems/{i}                       202 + Azure-AsyncOperation V/backupOperations/{id} + Location
                                                    V/backupOperationResults/{id} (ProtectedItem_Delete)
GET V/backupProtectedItems?$filter                  200 (BackupProtectedItems_List)
GET V/backupProtectionContainers?$filter            200 (ProtectionContainers_List)
PUT|GET|DELETE .../protectionContainers/{c}         202 register / 200 / 202 unregister + Location +
                                                    Azure-AsyncOperation (ProtectionContainers_Unregister)
GET V/backupEngines[/{e}]                           200 (BackupEngines_List)
DELETE V/registeredIdentities/{name}                204
GET V/backupProtectionIntents, GET|PUT|DELETE       200 / 200 / 204
   V/backupFabrics/{f}/backupProtectionIntent/{n}
GET|DELETE V/privateEndpointConnections/{n}         200 / 202 (+ operationsStatus)
GET|PUT|DELETE V/backupResourceGuardProxies/{n}     200 / 200 / 200 (204 absent); POST .../unlockDelete 200
Site Recovery (replicationFabrics/...)              see :mod:`sandbox.arm.providers.siterecovery_routes`
==================================================  ===========================================================

State and rules live in :mod:`recoveryservices_model`; JSON in :mod:`recoveryservices_views`; error codes and
their provenance (observed vs inferred) in :mod:`recoveryservices_errors`; snapshot support in
:mod:`recoveryservices_persist`.

Seeding (Python; tests, demos, the teardown saga) -- ``p = recovery_services(sandbox)``:

- ``p.seed_every_kind(vault_id, soft_deleted=True, site_recovery=True, private_endpoint=True, prefix="seed")``
  fills a vault with one of everything (VM items incl. a soft-deleted one, SQL and SAP HANA in registered
  VM-app containers + an auto-protection intent, an Azure Files share, MARS, DPM and MABS servers, a private
  endpoint connection, a Site Recovery chain) and returns the names by kind;
- ``p.model.seed_mars_server(vault_id, server, items=("C:\\",))``,
  ``p.model.seed_backup_server(vault_id, server, kind="DPM"|"MABS", items=("SQLDB;db1",))``,
  ``p.model.seed_private_endpoint(vault_id, name)``,
  ``p.model.seed_soft_deleted_item(vault_id, container, item, days_left=...)`` for kinds Azure creates through
  an on-premises agent or another provider; call ``p.sync(vault)`` after seeding a private endpoint so the
  vault record shows it;
- ``p.model.grant_resource_guard_access(vault_id, minutes=60)`` / ``revoke_resource_guard_access(vault_id)``:
  the security admin's approval that MUA-protected operations (disable soft delete, unlockDelete) need;
- ``p.model.timing`` (:class:`Timing`): modelled durations (first backup, LROs, unlock window).

VMs and storage accounts are looked up in the shared store (``Microsoft.Compute/virtualMachines``,
``Microsoft.Storage/storageAccounts`` records with ``location``), whichever provider (or test) put them there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sandbox.arm.context import MovePlan, ProviderContext
from sandbox.arm.errors import ArmError
from sandbox.arm.http import Request, Response, created, no_content, ok
from sandbox.arm.ids import id_key, parse_id
from sandbox.arm.lro import Operation
from sandbox.arm.providers import recoveryservices_persist as persist
from sandbox.arm.providers import recoveryservices_views as views
from sandbox.arm.providers.recoveryservices_kinds import canonical_container_name, canonical_item_name
from sandbox.arm.providers.recoveryservices_model import (
    VAULT_TYPE,
    Pending,
    RecoveryServicesModel,
    Timing,
    VaultState,
)
from sandbox.arm.routing import ProviderRoutes, Router

PROVIDER = "Microsoft.RecoveryServices"
NAMESPACE = PROVIDER
#: the app's version first, then every newer stable version of the vault and backup specs whose bodies match it for
#: the fields modelled here (older ones lack the vault's ``securitySettings.sourceScanConfiguration``):
#: docs/azure-facts.md "Api-versions the sandbox serves"
API_VERSIONS = ("2025-02-01", "2025-08-01", "2026-01-01", "2026-02-01", "2026-05-01", "2026-07-01")
#: registeredIdentities is documented with 2016-06-01 (D-delvault); the SDK sends the client's version.
REGISTERED_IDENTITY_VERSIONS = (*API_VERSIONS, "2016-06-01")

SUB = "/subscriptions/{subscriptionId}"
GROUP = SUB + "/resourceGroups/{resourceGroupName}"
V = GROUP + "/providers/Microsoft.RecoveryServices/vaults/{vaultName}"
FABRIC = V + "/backupFabrics/{fabricName}"
CONTAINER = FABRIC + "/protectionContainers/{containerName}"
ITEM = CONTAINER + "/protectedItems/{protectedItemName}"


class StoreLookup:
    """Other providers' resources, read from the shared store (VMs, storage accounts)."""

    def __init__(self, ctx: ProviderContext) -> None:
        self.store = ctx.store

    def get(self, resource_id: str) -> dict[str, Any] | None:
        return self.store.get(resource_id)

    def list(self, resource_type: str, subscription_id: str) -> list[dict[str, Any]]:
        return self.store.list(resource_type=resource_type, subscription_id=subscription_id)


class RecoveryServicesProvider:
    def __init__(self, ctx: ProviderContext, timing: Timing | None = None) -> None:
        self.ctx = ctx
        self.model = RecoveryServicesModel(ctx.clock, StoreLookup(ctx), timing)
        self.model.discovery = lambda: (ctx.propagation.vm_discovery, ctx.propagation.vm_auto_discovery_seconds)
        #: with a state file, every vault's backup state rides in its store record (see recoveryservices_persist)
        self.persisting = getattr(ctx.config, "state_file", None) is not None
        self.resume()

    # -- persistence ---------------------------------------------------------------------------------
    def resume(self) -> None:
        """Rebuild the vaults a loaded snapshot holds."""
        for record in self.ctx.store.list(resource_type=VAULT_TYPE):
            state = self.ctx.store.private(record["id"]).get(persist.STATE_KEY)
            if state is not None:
                vault = persist.load_vault(state)
                vault.id = record["id"]  # a move may have rewritten it after the last save
                self.model.vaults[id_key(vault.id)] = vault

    def write_tags(self, resource_id: str, tags: dict[str, str]) -> bool:
        """``Microsoft.Resources/tags`` at a vault's scope: the model holds a vault's tags (True when it is one)."""
        with self.model.lock:
            vault = self.model.find_vault(resource_id)
            if vault is None or id_key(vault.id) != id_key(resource_id):
                return False
            vault.tags = dict(tags)
            self.sync(vault)
        self.persist(vault.id)
        return True

    def persist(self, vault_id: str) -> None:
        if not self.persisting:
            return
        with self.model.lock:
            vault = self.model.find_vault(vault_id)
            if vault is None or not self.ctx.store.exists(vault.id):
                return
            private = self.ctx.store.private(vault.id)
            private[persist.STATE_KEY] = persist.dump_vault(vault)
            self.ctx.store.set_private(vault.id, private)

    # -- plumbing ----------------------------------------------------------------------------------
    def settle(self) -> None:
        """Bring the model up to the clock (first backups, purges) and forget vaults whose group was deleted.

        Due LROs are settled by the framework before every handler; never settle them here: guards and move
        hooks run inside an LRO completion.
        """
        with self.model.lock:
            for key, vault in list(self.model.vaults.items()):
                if not self.ctx.store.exists(vault.id):
                    self.model.vaults.pop(key, None)  # its group was deleted (ARM deletes what is inside)
            self.model.settle()

    @staticmethod
    def vault_id(req: Request) -> str:
        p = req.params
        return (
            f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}"
            f"/providers/Microsoft.RecoveryServices/vaults/{p['vaultName']}"
        )

    def vault(self, req: Request) -> VaultState:
        return self.model.vault(self.vault_id(req))

    def sync(self, vault: VaultState) -> None:
        """Mirror the vault into the shared store (generic resource reads, moves, group deletes see it)."""
        record = views.vault_json(self.model, vault)
        private = self.ctx.store.private(vault.id) if self.ctx.store.exists(vault.id) else {}
        private["recoveryServicesVault"] = vault.uid
        self.ctx.store.put(record, private)

    def begin(
        self,
        req: Request,
        pending: Pending,
        *,
        async_url: str | None,
        location_url: str | None,
        done_status: int = 204,
    ) -> Operation:
        effect, undo = pending.effect, pending.undo
        vault_id = self.vault_id(req) if "vaultName" in req.params else None

        def complete() -> Any:
            result = effect() if effect is not None else None
            if vault_id is not None:
                self.persist(vault_id)
            return result

        def failed(_error: ArmError) -> None:
            if undo is not None:
                undo()
            if vault_id is not None:
                self.persist(vault_id)

        return self.ctx.operations.begin(
            req,
            duration=pending.seconds,
            complete=complete,
            on_failure=failed,
            async_url=async_url,
            location_url=location_url,
            retry_after=self.model.timing.retry_after,
            done_status=done_status,
        )

    def guarded(self, handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        """Run a model handler on a settled model, holding the model lock (the app calls concurrently).

        Lock order: the engine's settling lock, then the model lock (LRO completions take the model lock while
        the engine settles). So a guarded handler must never ask the engine to settle: status routes are
        registered with :meth:`unguarded`.
        """

        def run(req: Request) -> Response:
            with self.model.lock:
                self.settle()
                response = handler(req)
                if req.method != "GET" and "vaultName" in req.params:
                    self.persist(self.vault_id(req))
                return response

        return run

    @staticmethod
    def unguarded(handler: Callable[[Request], Response]) -> Callable[[Request], Response]:
        return handler

    # -- vaults ------------------------------------------------------------------------------------
    def put_vault(self, req: Request) -> Response:
        sub = req.params["subscriptionId"]
        self.ctx.require_resource_group(sub, req.params["resourceGroupName"])
        self.ctx.require_group_unlocked(sub, req.params["resourceGroupName"])
        tenant = self.ctx.require_subscription(sub).tenant_id
        vault, is_new = self.model.put_vault(self.vault_id(req), req.json_object(), tenant_id=tenant)
        self.sync(vault)
        body = views.vault_json(self.model, vault)
        return created(body) if is_new else ok(body)

    def get_vault(self, req: Request) -> Response:
        return ok(views.vault_json(self.model, self.vault(req)))

    def patch_vault(self, req: Request) -> Response:
        self.ctx.require_group_unlocked(req.params["subscriptionId"], req.params["resourceGroupName"])
        vault, pending = self.model.patch_vault(self.vault_id(req), req.json_object())
        self.sync(vault)
        op = self.begin(
            req,
            pending,
            async_url=f"{vault.id}/operationStatus/{{operationId}}",
            location_url=f"{vault.id}/operationResults/{{operationId}}",
        )
        return self.ctx.operations.accept(op)

    def delete_vault(self, req: Request) -> Response:
        vault_id = self.vault_id(req)
        self.ctx.require_group_unlocked(req.params["subscriptionId"], req.params["resourceGroupName"])
        pending = self.model.delete_vault(vault_id)
        if pending is None:
            return no_content()
        self.ctx.store.delete(vault_id)
        op = self.begin(
            req,
            pending,
            async_url=f"{vault_id}/operationStatus/{{operationId}}",
            location_url=f"{vault_id}/operationResults/{{operationId}}",
        )
        return self.ctx.operations.accept(op)

    def list_vaults_in_subscription(self, req: Request) -> Response:
        vaults = self.model.list_vaults(req.params["subscriptionId"])
        return self.ctx.page(req, [views.vault_json(self.model, v) for v in vaults])

    def list_vaults_in_group(self, req: Request) -> Response:
        vaults = self.model.list_vaults(req.params["subscriptionId"], req.params["resourceGroupName"])
        return self.ctx.page(req, [views.vault_json(self.model, v) for v in vaults])

    def operation_status(self, req: Request) -> Response:
        return self.ctx.operations.status_response(req.params["operationId"])

    def operation_result(self, req: Request) -> Response:
        """Location flavour; while running it also names the status URL, as the backup examples show."""
        response = self.ctx.operations.result_response(req.params["operationId"])
        if response.status == 202:
            op = self.ctx.operations.get(req.params["operationId"])
            if op.async_url:
                response.headers["Azure-AsyncOperation"] = op.async_url
        return response

    def job_status(self, req: Request) -> Response:
        """Backup operation status: generic body + ``properties`` naming the job (ProtectedItemOperationStatus)."""
        response = self.ctx.operations.status_response(req.params["operationId"])
        body = dict(response.body)
        body["id"] = body["name"]
        body.setdefault("endTime", "0001-01-01T00:00:00.00000Z")
        body["properties"] = {"objectType": "OperationStatusJobExtendedInfo", "jobId": body["name"]}
        response.body = body
        return response

    def backup_operation_status(self, req: Request) -> Response:
        """Vault-level backupOperations/{id} (ProtectedItem_Delete_OperationStatus): no ``properties``."""
        response = self.ctx.operations.status_response(req.params["operationId"])
        body = dict(response.body)
        body["id"] = body["name"]
        body.setdefault("endTime", "0001-01-01T00:00:00.00000Z")
        response.body = body
        return response

    # -- vault config, status, policies -------------------------------------------------------------
    def get_vault_config(self, req: Request) -> Response:
        return ok(views.vault_config_json(self.vault(req)))

    def put_vault_config(self, req: Request) -> Response:
        # PUT replaces the config (omitted properties go back to their defaults), PATCH merges: see the model
        replace = req.method.upper() == "PUT"
        vault = self.model.put_vault_config(self.vault_id(req), req.json_object(), replace=replace)
        self.sync(vault)
        return ok(views.vault_config_json(vault))

    def backup_status(self, req: Request) -> Response:
        body = self.model.backup_status(req.params["subscriptionId"], req.params["azureRegion"], req.json_object())
        return ok(body)

    def list_policies(self, req: Request) -> Response:
        vault = self.vault(req)
        wanted = self.ctx.filter(req, ("backupManagementType",))
        found = [
            views.policy_json(self.model, vault, p)
            for p in vault.policies.values()
            if "backupManagementType" not in wanted
            or str(p.properties.get("backupManagementType", "")).lower() == wanted["backupManagementType"].lower()
        ]
        return self.ctx.page(req, found)

    def get_policy(self, req: Request) -> Response:
        vault = self.vault(req)
        policy = self.model.policy(vault.id, req.params["policyName"])
        return ok(views.policy_json(self.model, vault, policy))

    def put_policy(self, req: Request) -> Response:
        vault = self.vault(req)
        policy = self.model.put_policy(vault.id, req.params["policyName"], req.json_object())
        return ok(views.policy_json(self.model, vault, policy))

    def delete_policy(self, req: Request) -> Response:
        vault = self.vault(req)
        removed = self.model.delete_policy(vault.id, req.params["policyName"])
        return ok() if removed else no_content()

    # -- discovery ---------------------------------------------------------------------------------
    def refresh_containers(self, req: Request) -> Response:
        vault = self.vault(req)
        fabric = req.params["fabricName"]
        pending = self.model.refresh_containers(vault.id, fabric)
        op = self.begin(
            req,
            pending,
            async_url=None,
            location_url=f"{vault.id}/backupFabrics/{fabric}/operationResults/{{operationId}}",
        )
        return self.ctx.operations.accept(op)

    def list_protectable(self, req: Request) -> Response:
        vault = self.vault(req)
        self.ctx.filter(req, ("backupManagementType", "workloadType"))
        found = self.model.protectable_items(vault.id, req.query.get("$filter"))
        return self.ctx.page(req, [views.protectable_json(vault, vm) for vm in found])

    # -- protected items -----------------------------------------------------------------------------
    def _item_urls(self, req: Request) -> tuple[str, str]:
        vault_id = self.vault_id(req)
        container = canonical_container_name(req.params["containerName"])
        item = canonical_item_name(req.params["protectedItemName"])
        fabric = req.params["fabricName"]
        base = f"{vault_id}/backupFabrics/{fabric}/protectionContainers/{container}/protectedItems/{item}"
        return f"{base}/operationsStatus/{{operationId}}", f"{base}/operationResults/{{operationId}}"

    def put_item(self, req: Request) -> Response:
        vault = self.vault(req)
        container = req.params["containerName"]
        name = req.params["protectedItemName"]
        pending = self.model.put_item(vault.id, req.params["fabricName"], container, name, req.json_object())
        effect = pending.effect

        def complete() -> Any:
            if effect is not None:
                effect()
            with self.model.lock:
                current = self.model.find_vault(vault.id)
                if current is None:
                    return None
                try:
                    item = self.model.item(current.id, container, name)
                except ArmError:
                    return None
                return views.item_json(self.model, current, item)

        status_url, result_url = self._item_urls(req)
        wrapped = Pending(pending.name, pending.seconds, complete, pending.undo)
        op = self.begin(req, wrapped, async_url=status_url, location_url=result_url)
        return self.ctx.operations.accept(op)

    def get_item(self, req: Request) -> Response:
        vault = self.vault(req)
        item = self.model.item(vault.id, req.params["containerName"], req.params["protectedItemName"])
        return ok(views.item_json(self.model, vault, item))

    def delete_item(self, req: Request) -> Response:
        vault = self.vault(req)
        pending = self.model.delete_item(vault.id, req.params["containerName"], req.params["protectedItemName"])
        op = self.begin(
            req,
            pending,
            async_url=f"{vault.id}/backupOperations/{{operationId}}",
            location_url=f"{vault.id}/backupOperationResults/{{operationId}}",
        )
        return self.ctx.operations.accept(op)

    def list_items(self, req: Request) -> Response:
        vault = self.vault(req)
        self.ctx.filter(req, ("backupManagementType", "itemType", "policyName", "healthState", "name"))
        items = self.model.list_items(vault.id, req.query.get("$filter"))
        return self.ctx.page(req, [views.item_json(self.model, vault, i) for i in items])

    # -- containers ---------------------------------------------------------------------------------
    def list_containers(self, req: Request) -> Response:
        vault = self.vault(req)
        self.ctx.filter(req, ("backupManagementType", "friendlyName", "status", "fabricName"))
        containers = self.model.list_containers(vault.id, req.query.get("$filter"))
        return self.ctx.page(req, [views.container_json(vault, c) for c in containers])

    def list_deleted_containers(self, req: Request) -> Response:
        vault = self.vault(req)
        self.ctx.filter(req, ("backupManagementType",))
        containers = self.model.deleted_containers(vault.id)
        return self.ctx.page(req, [views.container_json(vault, c) for c in containers])

    def get_container(self, req: Request) -> Response:
        vault = self.vault(req)
        return ok(views.container_json(vault, self.model.container(vault.id, req.params["containerName"])))

    def _container_urls(self, vault: VaultState, req: Request, name: str) -> tuple[str, str]:
        base = f"{vault.id}/backupFabrics/{req.params['fabricName']}/protectionContainers/{name}"
        return f"{base}/operationsStatus/{{operationId}}", f"{base}/operationResults/{{operationId}}"

    def register_container(self, req: Request) -> Response:
        vault = self.vault(req)
        container, pending = self.model.register_container(vault.id, req.params["containerName"], req.json_object())

        def complete() -> Any:
            with self.model.lock:
                current = self.model.find_vault(vault.id)
                return views.container_json(current, container) if current is not None else None

        status_url, result_url = self._container_urls(vault, req, container.name)
        op = self.begin(
            req, Pending(pending.name, pending.seconds, complete), async_url=status_url, location_url=result_url
        )
        return self.ctx.operations.accept(op)

    def unregister_container(self, req: Request) -> Response:
        vault = self.vault(req)
        container = self.model.container(vault.id, req.params["containerName"])
        if container.kind == "Storage":
            self._require_storage_account_contributor(req, container.source_id)
        pending = self.model.unregister_container(vault.id, container.name)
        status_url, result_url = self._container_urls(vault, req, container.name)
        op = self.begin(req, pending, async_url=status_url, location_url=result_url)
        return self.ctx.operations.accept(op)

    STORAGE_ACTION = "Microsoft.Storage/storageAccounts/write"

    def _require_storage_account_contributor(self, req: Request, account_id: str) -> None:
        """Unregistering a storage account from a vault needs Storage Account Contributor on the account besides
        Backup Contributor on the vault (MicrosoftDocs/azure-docs ``backup/backup-rbac-rs-vault.md``, "Unregister
        storage account from vault"). The sandbox checks a role of the caller granting ``STORAGE_ACTION`` there
        (Storage Account Contributor, Contributor, Owner); the action checked and the answer (403
        ``LinkedAuthorizationFailed``, ARM's code for a check on a linked resource) are **inferred**."""
        from sandbox.arm.providers.authorization_model import RoleAssignments

        who = req.principal.object_id if req.principal else ""
        if RoleAssignments(self.ctx.store).allows(who, self.STORAGE_ACTION, account_id):
            return
        raise ArmError(
            403,
            "LinkedAuthorizationFailed",
            f"The client '{who}' has permission to unregister the container, but it does not have permission to "
            f"perform action '{self.STORAGE_ACTION}' on the linked scope '{account_id}' (Storage Account "
            "Contributor on the storage account is required), or the linked scope is invalid.",
        )

    # -- engines, registered identities ---------------------------------------------------------------
    def list_engines(self, req: Request) -> Response:
        vault = self.vault(req)
        self.ctx.filter(req, ("backupManagementType",))
        return self.ctx.page(req, [views.engine_json(vault, e) for e in self.model.list_engines(vault.id)])

    def get_engine(self, req: Request) -> Response:
        vault = self.vault(req)
        return ok(views.engine_json(vault, self.model.engine(vault.id, req.params["backupEngineName"])))

    def delete_registered_identity(self, req: Request) -> Response:
        vault = self.vault(req)
        self.model.delete_registered_identity(vault.id, req.params["identityName"])
        return no_content()

    # -- intents ---------------------------------------------------------------------------------------
    def list_intents(self, req: Request) -> Response:
        vault = self.vault(req)
        self.ctx.filter(req, ("backupManagementType", "itemType", "parentName", "itemName"))
        intents = self.model.list_intents(vault.id, req.query.get("$filter"))
        return self.ctx.page(req, [views.intent_json(vault, i) for i in intents])

    def get_intent(self, req: Request) -> Response:
        vault = self.vault(req)
        return ok(views.intent_json(vault, self.model.intent(vault.id, req.params["intentObjectName"])))

    def put_intent(self, req: Request) -> Response:
        vault = self.vault(req)
        intent = self.model.put_intent(
            vault.id, req.params["fabricName"], req.params["intentObjectName"], req.json_object()
        )
        return ok(views.intent_json(vault, intent))

    def delete_intent(self, req: Request) -> Response:
        vault = self.vault(req)
        self.model.delete_intent(vault.id, req.params["intentObjectName"])
        return no_content()

    # -- private endpoint connections ------------------------------------------------------------------
    def list_private_endpoints(self, req: Request) -> Response:
        vault = self.vault(req)
        return self.ctx.page(req, [views.private_endpoint_json(vault, p) for p in vault.private_endpoints.values()])

    def get_private_endpoint(self, req: Request) -> Response:
        vault = self.vault(req)
        connection = self.model.private_endpoint(vault.id, req.params["privateEndpointConnectionName"])
        return ok(views.private_endpoint_json(vault, connection))

    def delete_private_endpoint(self, req: Request) -> Response:
        vault = self.vault(req)
        name = req.params["privateEndpointConnectionName"]
        pending = self.model.delete_private_endpoint(vault.id, name)
        if pending is None:
            return no_content()
        effect = pending.effect

        def complete() -> None:
            if effect is not None:
                effect()
            current = self.model.find_vault(vault.id)
            if current is not None:
                self.sync(current)

        self.sync(vault)
        base = f"{vault.id}/privateEndpointConnections/{name}"
        op = self.begin(
            req,
            Pending(pending.name, pending.seconds, complete),
            async_url=f"{base}/operationsStatus/{{operationId}}",
            location_url=f"{base}/operationResults/{{operationId}}",
        )
        return self.ctx.operations.accept(op)

    # -- resource guard proxies ---------------------------------------------------------------------------
    def list_proxies(self, req: Request) -> Response:
        vault = self.vault(req)
        return self.ctx.page(req, [views.proxy_json(vault, p) for p in vault.proxies.values()])

    def get_proxy(self, req: Request) -> Response:
        vault = self.vault(req)
        return ok(views.proxy_json(vault, self.model.proxy(vault.id, req.params["resourceGuardProxyName"])))

    def put_proxy(self, req: Request) -> Response:
        vault = self.vault(req)
        proxy = self.model.put_proxy(vault.id, req.params["resourceGuardProxyName"], req.json_object())
        self.sync(vault)
        return ok(views.proxy_json(vault, proxy))

    def delete_proxy(self, req: Request) -> Response:
        vault = self.vault(req)
        removed = self.model.delete_proxy(vault.id, req.params["resourceGuardProxyName"])
        self.sync(vault)
        return ok() if removed else no_content()

    def unlock_delete(self, req: Request) -> Response:
        vault = self.vault(req)
        body = req.json() or {}
        until = self.model.unlock_delete(vault.id, req.params["resourceGuardProxyName"], body)
        return ok({"unlockDeleteExpiryTime": until.isoformat().replace("+00:00", "Z")})

    # -- moves ----------------------------------------------------------------------------------------------
    def guard_move(self, plan: MovePlan) -> None:
        """A vault configured for Site Recovery cannot move (D-mvvault)."""
        self.settle()
        for resource in plan.resources:
            if str(resource.get("type", "")).lower() != VAULT_TYPE.lower():
                continue
            veto = self.model.move_veto(resource["id"])
            if veto is not None:
                raise veto

    def after_move(self, moved: list[tuple[str, str]]) -> None:
        for old_id, new_id in moved:
            if parse_id(old_id).full_type.lower() == VAULT_TYPE.lower():
                self.model.rename_vault(old_id, new_id)
                vault = self.model.find_vault(new_id)
                if vault is not None:
                    self.sync(vault)
                    self.persist(vault.id)

    def vault_for_store_id(self, resource_id: str) -> VaultState | None:
        return self.model.vaults.get(id_key(resource_id))

    # -- seeding: a vault full of every kind (tests, demos, the teardown saga) --------------------------
    def seed_every_kind(
        self,
        vault_id: str,
        *,
        soft_deleted: bool = True,
        site_recovery: bool = True,
        private_endpoint: bool = True,
        prefix: str = "seed",
    ) -> dict[str, list[str]]:
        """Fill a vault with one of everything Azure lets a Recovery Services vault hold.

        Azure VM items (one protected, and one soft-deleted when ``soft_deleted``), SQL and SAP HANA databases in
        registered VM-app containers (+ a SQL auto-protection intent), an Azure Files share in a registered storage
        container, a MARS agent, a DPM and a MABS server, a private endpoint connection and a Site Recovery chain
        (fabric, container, container mapping, network mapping, replicated item). VMs and the storage account are
        created in the shared store (the vault's group and region). Every backup item has had its first backup.
        Returns what was made, by kind.
        """
        with self.model.lock:
            self.settle()
            vault = self.model.vault(vault_id)
            group = f"/subscriptions/{vault.subscription_id}/resourceGroups/{vault.resource_group}"
            policy = f"{vault.id}/backupPolicies/DefaultPolicy"
            made: dict[str, list[str]] = {}

            def resource(full_type: str, name: str) -> str:
                rid = f"{group}/providers/{full_type}/{name}"
                if not self.ctx.store.exists(rid):
                    self.ctx.store.put(
                        {
                            "id": rid,
                            "name": name,
                            "type": full_type,
                            "location": vault.location,
                            "tags": {},
                            "properties": {"provisioningState": "Succeeded"},
                        }
                    )
                return rid

            def vm_item(name: str) -> tuple[str, str]:
                vm = resource("Microsoft.Compute/virtualMachines", name)
                container, item = (
                    f"IaasVMContainer;iaasvmcontainerv2;{vault.resource_group};{name}",
                    (f"VM;iaasvmcontainerv2;{vault.resource_group};{name}"),
                )
                self.model.put_item(
                    vault.id,
                    "Azure",
                    container,
                    item,
                    {
                        "properties": {
                            "protectedItemType": "Microsoft.Compute/virtualMachines",
                            "sourceResourceId": vm,
                            "policyId": policy,
                        }
                    },
                )
                return container, item

            made["vm"] = [vm_item(f"{prefix}-vm")[1]]
            if soft_deleted:
                container, item = vm_item(f"{prefix}-vm-deleted")
                self.model.seed_soft_deleted_item(vault.id, container, item, days_left=vault.security.retention_days)
                made["softDeleted"] = [item]
            for kind, workload, item_name, item_type in (
                ("sql", "SQLDataBase", "SQLDataBase;mssqlserver;db1", "AzureVmWorkloadSQLDatabase"),
                ("hana", "SAPHanaDatabase", "SAPHanaDatabase;hxe;systemdb", "AzureVmWorkloadSAPHanaDatabase"),
            ):
                vm = resource("Microsoft.Compute/virtualMachines", f"{prefix}-{kind}vm")
                container = f"VMAppContainer;compute;{vault.resource_group};{prefix}-{kind}vm"
                self.model.register_container(
                    vault.id,
                    container,
                    {
                        "properties": {
                            "containerType": "VMAppContainer",
                            "sourceResourceId": vm,
                            "workloadType": workload,
                        }
                    },
                )
                self.model.put_item(
                    vault.id,
                    "Azure",
                    container,
                    item_name,
                    {"properties": {"protectedItemType": item_type, "policyId": policy}},
                )
                made[kind] = [item_name]
                made.setdefault("containers", []).append(container)
            sql_container = made["containers"][0]
            intent = f"{prefix}-sql-autoprotect"
            self.model.put_intent(
                vault.id,
                "Azure",
                intent,
                {
                    "properties": {
                        "protectionIntentItemType": "AzureWorkloadSQLAutoProtectionIntent",
                        "itemId": f"{vault.id}/backupFabrics/Azure/protectionContainers/{sql_container}"
                        "/protectableItems/sqlinstance;mssqlserver",
                        "policyId": policy,
                    }
                },
            )
            made["intents"] = [intent]
            account = resource("Microsoft.Storage/storageAccounts", f"{prefix}files".replace("-", ""))
            storage = f"StorageContainer;Storage;{vault.resource_group};{account.rsplit('/', 1)[-1]}"
            self.model.register_container(
                vault.id, storage, {"properties": {"containerType": "StorageContainer", "sourceResourceId": account}}
            )
            self.model.put_item(
                vault.id,
                "Azure",
                storage,
                "AzureFileShare;share1",
                {
                    "properties": {
                        "protectedItemType": "AzureFileShareProtectedItem",
                        "policyId": policy,
                        "sourceResourceId": account,
                    }
                },
            )
            made["afs"] = ["AzureFileShare;share1"]
            made["containers"].append(storage)
            made["mars"] = [self.model.seed_mars_server(vault.id, f"{prefix}-mars.contoso.com").name]
            made["dpm"] = [self.model.seed_backup_server(vault.id, f"{prefix}-dpm.contoso.com", kind="DPM").name]
            made["mabs"] = [self.model.seed_backup_server(vault.id, f"{prefix}-mabs.contoso.com", kind="MABS").name]
            if private_endpoint:
                made["privateEndpoints"] = [self.model.seed_private_endpoint(vault.id, f"{prefix}-pe.backup").name]
            if site_recovery:
                sr = vault.site_recovery
                fabric, sr_container = f"{prefix}-fabric", f"{prefix}-container"
                sr.put_fabric(fabric, {})
                sr.put_container(fabric, sr_container, {})
                sr.put_mapping(fabric, sr_container, f"{prefix}-mapping", {})
                sr.put_network_mapping(fabric, f"{prefix}-vnet", f"{prefix}-netmap", {})
                sr.put_item(fabric, sr_container, f"{prefix}-replicated-vm", {})
                made["siteRecovery"] = [
                    fabric,
                    sr_container,
                    f"{prefix}-mapping",
                    f"{prefix}-netmap",
                    f"{prefix}-replicated-vm",
                ]
            now = self.model.now()
            for item in vault.items.values():
                if item.protection_state == "IRPending":
                    item.first_backup_at = now
            self.model.settle()
            self.sync(vault)
            self.persist(vault.id)
            return made


def register(router: Router, ctx: ProviderContext) -> RecoveryServicesProvider:
    provider = RecoveryServicesProvider(ctx)
    routes = router.provider(NAMESPACE, API_VERSIONS)
    _vault_routes(routes, provider)
    _backup_routes(routes, provider)
    _container_routes(routes, provider)
    _security_routes(routes, provider)
    from sandbox.arm.providers.recoveryservices_storage import add_storage_config_routes

    add_storage_config_routes(routes, provider, V)
    from sandbox.arm.providers.siterecovery_routes import add_site_recovery_routes

    add_site_recovery_routes(router, provider)
    ctx.add_move_guard(provider.guard_move)
    ctx.on_moved(provider.after_move)
    ctx.tag_writers.append(provider.write_tags)
    setattr(ctx, _CTX_ATTRIBUTE, provider)  # ProviderContext has no registry of providers (yet)
    return provider


_CTX_ATTRIBUTE = "_recovery_services_provider"


def recovery_services(sandbox: Any) -> RecoveryServicesProvider:
    """The Recovery Services provider of an :class:`~sandbox.arm.server.ArmSandbox` (or of its context)."""
    ctx = getattr(sandbox, "ctx", sandbox)
    provider = getattr(ctx, _CTX_ATTRIBUTE, None)
    if not isinstance(provider, RecoveryServicesProvider):
        raise LookupError("this sandbox was started without the recoveryservices provider")
    return provider


def _add(
    routes: ProviderRoutes, p: RecoveryServicesProvider, method: str, template: str, handler: Any, **kw: Any
) -> None:
    status_route = handler in (p.operation_status, p.operation_result, p.job_status, p.backup_operation_status)
    routes.add(method, template, p.unguarded(handler) if status_route else p.guarded(handler), **kw)


def _vault_routes(routes: ProviderRoutes, p: RecoveryServicesProvider) -> None:
    _add(routes, p, "PUT", V, p.put_vault)
    _add(routes, p, "GET", V, p.get_vault)
    _add(routes, p, "PATCH", V, p.patch_vault)
    _add(routes, p, "DELETE", V, p.delete_vault)
    _add(routes, p, "GET", SUB + "/providers/Microsoft.RecoveryServices/vaults", p.list_vaults_in_subscription)
    _add(routes, p, "GET", GROUP + "/providers/Microsoft.RecoveryServices/vaults", p.list_vaults_in_group)
    _add(routes, p, "GET", V + "/operationStatus/{operationId}", p.operation_status, check_scope=False)
    _add(routes, p, "GET", V + "/operationResults/{operationId}", p.operation_result, check_scope=False)


def _backup_routes(routes: ProviderRoutes, p: RecoveryServicesProvider) -> None:
    config = V + "/backupconfig/vaultconfig"
    _add(routes, p, "GET", config, p.get_vault_config)
    _add(routes, p, "PUT", config, p.put_vault_config)
    _add(routes, p, "PATCH", config, p.put_vault_config)
    _add(
        routes,
        p,
        "POST",
        SUB + "/providers/Microsoft.RecoveryServices/locations/{azureRegion}/backupStatus",
        p.backup_status,
        operation="Microsoft.RecoveryServices/locations/backupStatus/action",
    )
    _add(routes, p, "GET", V + "/backupPolicies", p.list_policies)
    _add(routes, p, "GET", V + "/backupPolicies/{policyName}", p.get_policy)
    _add(routes, p, "PUT", V + "/backupPolicies/{policyName}", p.put_policy)
    _add(routes, p, "DELETE", V + "/backupPolicies/{policyName}", p.delete_policy)
    _add(
        routes,
        p,
        "POST",
        FABRIC + "/refreshContainers",
        p.refresh_containers,
        operation="Microsoft.RecoveryServices/vaults/backupFabrics/refreshContainers/action",
    )
    _add(routes, p, "GET", FABRIC + "/operationResults/{operationId}", p.operation_result)
    _add(routes, p, "GET", FABRIC + "/operationsStatus/{operationId}", p.operation_status)
    _add(routes, p, "GET", V + "/backupProtectableItems", p.list_protectable)
    _add(routes, p, "GET", V + "/backupProtectedItems", p.list_items)
    _add(routes, p, "PUT", ITEM, p.put_item)
    _add(routes, p, "GET", ITEM, p.get_item)
    _add(routes, p, "DELETE", ITEM, p.delete_item)
    _add(routes, p, "GET", ITEM + "/operationsStatus/{operationId}", p.job_status)
    _add(routes, p, "GET", ITEM + "/operationResults/{operationId}", p.operation_result)
    _add(routes, p, "GET", V + "/backupOperations/{operationId}", p.backup_operation_status)
    _add(routes, p, "GET", V + "/backupOperationResults/{operationId}", p.operation_result)


def _container_routes(routes: ProviderRoutes, p: RecoveryServicesProvider) -> None:
    _add(routes, p, "GET", V + "/backupProtectionContainers", p.list_containers)
    _add(routes, p, "GET", V + "/backupDeletedProtectionContainers", p.list_deleted_containers)
    _add(routes, p, "GET", CONTAINER, p.get_container)
    _add(routes, p, "PUT", CONTAINER, p.register_container)
    _add(routes, p, "DELETE", CONTAINER, p.unregister_container)
    _add(routes, p, "GET", CONTAINER + "/operationResults/{operationId}", p.operation_result)
    _add(routes, p, "GET", CONTAINER + "/operationsStatus/{operationId}", p.job_status)
    _add(routes, p, "GET", V + "/backupEngines", p.list_engines)
    _add(routes, p, "GET", V + "/backupEngines/{backupEngineName}", p.get_engine)
    _add(
        routes,
        p,
        "DELETE",
        V + "/registeredIdentities/{identityName}",
        p.delete_registered_identity,
        api_versions=REGISTERED_IDENTITY_VERSIONS,
    )
    _add(routes, p, "GET", V + "/backupProtectionIntents", p.list_intents)
    intent = FABRIC + "/backupProtectionIntent/{intentObjectName}"
    _add(routes, p, "GET", intent, p.get_intent)
    _add(routes, p, "PUT", intent, p.put_intent)
    _add(routes, p, "DELETE", intent, p.delete_intent)


def _security_routes(routes: ProviderRoutes, p: RecoveryServicesProvider) -> None:
    pec = V + "/privateEndpointConnections/{privateEndpointConnectionName}"
    _add(routes, p, "GET", V + "/privateEndpointConnections", p.list_private_endpoints)
    _add(routes, p, "GET", pec, p.get_private_endpoint)
    _add(routes, p, "DELETE", pec, p.delete_private_endpoint)
    _add(routes, p, "GET", pec + "/operationsStatus/{operationId}", p.operation_status)
    _add(routes, p, "GET", pec + "/operationResults/{operationId}", p.operation_result)
    proxy = V + "/backupResourceGuardProxies/{resourceGuardProxyName}"
    _add(routes, p, "GET", V + "/backupResourceGuardProxies", p.list_proxies)
    _add(routes, p, "GET", proxy, p.get_proxy)
    _add(routes, p, "PUT", proxy, p.put_proxy)
    _add(routes, p, "DELETE", proxy, p.delete_proxy)
    _add(
        routes,
        p,
        "POST",
        proxy + "/unlockDelete",
        p.unlock_delete,
        operation="Microsoft.RecoveryServices/vaults/backupResourceGuardProxies/unlockDelete/action",
    )
