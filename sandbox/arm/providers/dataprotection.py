"""Microsoft.DataProtection (api-version 2025-07-01): Backup vaults, policies, backup instances, soft delete.

Routes and status codes follow ``azure.mgmt.dataprotection`` 2.2.0 (``DataProtectionMgmtClient``) and the S-DP
examples (``specification/dataprotection/resource-manager/Microsoft.DataProtection/stable/2025-07-01/examples``):

==============================================  =============================================================
operation                                       answer
==============================================  =============================================================
PUT backupVaults/{v} (new)                      201 + Azure-AsyncOperation (vault operationStatus), Retry-After
PUT backupVaults/{v} (existing)                 200 (PutBackupVault.json)
PATCH backupVaults/{v}                          202 + Azure-AsyncOperation + Location
DELETE backupVaults/{v}                         202 + Azure-AsyncOperation (group operationStatus) + Location
                                                (vault operationResults) (DeleteBackupVault.json); 204 if absent
PUT/GET/DELETE backupPolicies/{p}               200 / 200 / 200 (204 if absent)
POST validateForBackup                          202 + Azure-AsyncOperation + Location, both location-scoped
                                                (D-diskrest); final GET on Location -> OperationJobExtendedInfo
PUT backupInstances/{bi} (new)                  201 + Azure-AsyncOperation (PutBackupInstance.json)
PUT backupInstances/{bi} (existing)             200; a changed policyInfo (policy, containers): 202 +
                                                Azure-AsyncOperation + Location + Retry-After, no body
                                                (PutBackupInstance.json; which update gets which: inferred)
DELETE backupInstances/{bi}                     202 + Azure-AsyncOperation + Location (DeleteBackupInstance.json)
POST .../{stopProtection|suspendBackups|        202 + Azure-AsyncOperation + Location
      resumeProtection|resumeBackups}
POST backupInstances/{bi}/sync                  202 + Azure-AsyncOperation + Location + Retry-After 60
                                                (SyncBackupInstance.json); see :meth:`sync_instance`
POST deletedBackupInstances/{bi}/undelete       202 + Azure-AsyncOperation + Location (UndeleteDeleted...json)
PUT/GET/DELETE backupResourceGuardProxies/{p}   200 / 200 / 200 (204 if absent); POST .../unlockDelete 200
GET operationStatus (location, group, vault)    200 {id,name,status,startTime,endTime?,error?} (GetOperationStatus)
GET operationResults (location, vault, bi)      202 while running; then 200 + result / 204
==============================================  =============================================================

Azure's rules and their sources: :mod:`sandbox.arm.providers.dataprotection_rules`; error codes and their
provenance: :mod:`sandbox.arm.providers.dataprotection_errors`. Soft-deleted instances are purged lazily:
every read or write that touches a vault first drops the deleted instances whose ``scheduledPurgeTime`` has
passed on the virtual clock.

Multi-user authorization (D-mua): a vault with a resource guard proxy refuses deleting a backup instance,
stopping protection and turning soft delete off (``UserErrorCriticalOperationNotAuthorizedByResourceGuard``,
inferred) unless the security admin granted access (:func:`grant_resource_guard_access`, standing in for
Contributor on the Resource Guard); deleting the proxy (disabling MUA) always needs an ``unlockDelete`` first,
which itself needs the grant. Sandbox convenience: the proxy body may carry ``vaultCriticalOperationExclusionList``
(Azure keeps that list on the Resource Guard, which the sandbox does not model) to leave operations unprotected.

The guarded operation is named in the request (issue #13 item 3). Azure computes the proxy's
``resourceGuardOperationDetails`` from the guard (S-DP ``ResourceGuardProxyCRUD/PutResourceGuardProxy.json``: the
request names only ``resourceGuardResourceId``, the answer lists ``backupInstances/delete`` ->
``{guard}/deleteBackupInstanceRequests/default`` and ``backupResourceGuardProxies/delete`` ->
``{guard}/deleteResourceGuardProxyRequests/default``). Deleting a backup instance needs an ``unlockDelete`` whose
``resourceToBeDeleted`` is the instance and whose ``resourceGuardOperationRequests`` name that one
``deleteBackupInstanceRequests/default`` (UnlockDeleteRequest in the 2025-07-01 spec; the request Microsoft's
UnlockDeleteResourceGuardProxy.json example sends; the dataprotection CLI extension's ``operation_request_map``
``DeleteBackupInstance``; PowerShell's ``Unlock-AzDataProtectionResourceGuardOperation`` example, then
``Remove-AzDataProtectionBackupInstance``). A grant alone no longer deletes an instance. An ``unlockDelete`` that
names no request, or requests of other operations, is refused: **inferred** (every Microsoft client sends exactly
the request of the operation it unlocks; Azure's own answer to other requests is not published).
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Final

from sandbox.arm.context import MovePlan, ProviderContext
from sandbox.arm.errors import ArmError, not_found
from sandbox.arm.http import Request, Response, no_content, ok
from sandbox.arm.ids import id_key, parse_id
from sandbox.arm.lro import IN_PROGRESS, Operation
from sandbox.arm.providers import dataprotection_errors as errors
from sandbox.arm.providers import dataprotection_rules as rules
from sandbox.arm.providers.authorization_model import RoleAssignments
from sandbox.arm.routing import ProviderRoutes, Router

#: the app's version first, then every stable version whose bodies match it for the fields modelled here (resource,
#: list and POST-action bodies compared in Azure/bicep-types-az's types generated from the specs; older versions
#: lack ``resourceGuardOperationRequests``): docs/azure-facts.md "Api-versions the sandbox serves"
API_VERSIONS: Final = ("2025-07-01", "2024-04-01", "2025-01-01", "2025-02-01", "2025-09-01", "2026-03-01",
                       "2026-06-01")
NAMESPACE: Final = "Microsoft.DataProtection"
VAULT_TYPE: Final = "Microsoft.DataProtection/backupVaults"
POLICY_TYPE: Final = "Microsoft.DataProtection/backupVaults/backupPolicies"
INSTANCE_TYPE: Final = "Microsoft.DataProtection/backupVaults/backupInstances"
DELETED_TYPE: Final = "Microsoft.DataProtection/backupVaults/deletedBackupInstances"
PROXY_TYPE: Final = "Microsoft.DataProtection/backupVaults/backupResourceGuardProxies"
#: ``Operation.extra`` key: the ``properties`` a Succeeded operation status carries (dataprotection_jobs sets it)
STATUS_PROPERTIES: Final = "statusProperties"
#: operations a resource guard protects unless the proxy lists them in vaultCriticalOperationExclusionList
#: (deleting the proxy itself -- disabling MUA -- is always protected; D-mua)
OP_DELETE_INSTANCE: Final = "deleteBackupInstance"
OP_STOP_PROTECTION: Final = "stopProtection"
OP_DISABLE_SOFT_DELETE: Final = "disableSoftDelete"
OPTIONALLY_PROTECTED: Final = (OP_DELETE_INSTANCE, OP_STOP_PROTECTION, OP_DISABLE_SOFT_DELETE)
#: how long an unlockDelete keeps one protected delete open (Azure seconds)
UNLOCK_WINDOW: Final = 30 * 60.0
#: the proxy's resourceGuardOperationDetails as Azure computes them (S-DP PutResourceGuardProxy.json)
GUARD_REQUESTS: Final = (
    ("Microsoft.DataProtection/backupVaults/backupInstances/delete", "deleteBackupInstanceRequests"),
    ("Microsoft.DataProtection/backupVaults/backupResourceGuardProxies/delete", "deleteResourceGuardProxyRequests"),
)


def _guard_request(guard_id: str, request: str) -> str:
    return f"{guard_id}/{request}/default"


def grant_resource_guard_access(ctx: ProviderContext, vault_id: str, minutes: float = 60.0) -> datetime:
    """Sandbox control: the security admin grants access on the vault's resource guard for ``minutes``.

    Stands in for Contributor on the Resource Guard (and the auxiliary token the caller would send): while the
    grant lasts, MUA-protected operations on the vault go through and ``unlockDelete`` opens a delete window.
    """
    until = ctx.clock.now() + timedelta(minutes=minutes)
    state = ctx.store.private(vault_id)
    state["muaGrantUntil"] = _iso(until)
    ctx.store.set_private(vault_id, state)
    return until


def revoke_resource_guard_access(ctx: ProviderContext, vault_id: str) -> None:
    state = ctx.store.private(vault_id)
    state.pop("muaGrantUntil", None)
    state.pop("muaUnlocks", None)
    ctx.store.set_private(vault_id, state)

SUB: Final = "/subscriptions/{subscriptionId}"
GROUP: Final = SUB + "/resourceGroups/{resourceGroupName}"
VAULT: Final = GROUP + "/providers/Microsoft.DataProtection/backupVaults/{vaultName}"
LOCATION: Final = SUB + "/providers/Microsoft.DataProtection/locations/{location}"

#: a running operation's status and end time as Data Protection answers them (``operation_status``)
DP_IN_PROGRESS: Final = "Inprogress"
NO_END_TIME: Final = "0001-01-01T00:00:00"

#: modelled durations (Azure seconds) and the Retry-After the examples show
#: (a sync retries a configuration: it lasts as long as one, inferred; its Retry-After is SyncBackupInstance.json's)
DURATIONS: Final = {"vault": 20.0, "vault_delete": 20.0, "validate": 30.0, "instance": 60.0, "action": 30.0,
                    "sync": 60.0}
RETRY_AFTER: Final = {"vault": 10.0, "validate": 10.0, "instance": 60.0, "action": 60.0, "sync": 60.0}


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


def _parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _region(location: str) -> str:
    return location.replace(" ", "").lower()


#: Backup vaults per subscription (issue 19; errors.VAULTS_PER_SUBSCRIPTION_LIMIT; tests lower it). No per-vault limit
#: on backup instances is published for Backup vaults (docs/azure-facts.md "Vault capacity"): none is modelled.
VAULTS_PER_SUBSCRIPTION = 500


class DataProtectionProvider:
    def __init__(self, ctx: ProviderContext) -> None:
        self.ctx = ctx
        self.store = ctx.store
        self.roles = RoleAssignments(
            ctx.store, now=ctx.clock.now, propagation_seconds=lambda: ctx.propagation.rbac_seconds
        )

    # == helpers ===============================================================================================
    @staticmethod
    def vault_id(req: Request) -> str:
        p = req.params
        return (f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}"
                f"/providers/Microsoft.DataProtection/backupVaults/{p['vaultName']}")

    def require_vault(self, req: Request) -> dict[str, Any]:
        """The vault the request names (404 if absent); writes also need its group not locked by a move."""
        if req.method != "GET":
            self.ctx.require_group_unlocked(req.params["subscriptionId"], req.params["resourceGroupName"])
        vault_id = self.vault_id(req)
        record = self.store.get(vault_id)
        if record is None or str(record.get("type", "")).lower() != VAULT_TYPE.lower():
            raise not_found(vault_id, VAULT_TYPE)
        self.purge_expired(record["id"])
        return record

    def child_id(self, vault: dict[str, Any], collection: str, name: str) -> str:
        return f"{vault['id']}/{collection}/{name}"

    def begin(self, req: Request, *, kind: str, complete: Callable[[], Any] | None, async_url: str,
              location_url: str | None = None, on_failure: Callable[[ArmError], None] | None = None,
              duration: str | None = None) -> Operation:
        return self.ctx.operations.begin(
            req,
            duration=DURATIONS[duration or kind],
            complete=complete,
            async_url=async_url,
            location_url=location_url,
            retry_after=RETRY_AFTER.get(kind, 10.0),
            on_failure=on_failure,
        )

    # == soft delete bookkeeping ===============================================================================
    def purge_expired(self, vault_id: str) -> list[str]:
        """Drop soft-deleted instances whose retention has passed on the virtual clock."""
        now = self.ctx.clock.now()
        purged = []
        with self.store.transaction():
            for record in self.store.children(vault_id, resource_type=DELETED_TYPE, direct=True):
                purge_at = record.get("properties", {}).get("deletionInfo", {}).get("scheduledPurgeTime")
                if purge_at and _parse_iso(purge_at) <= now:
                    self.store.delete(record["id"])
                    purged.append(record["id"])
        return purged

    # == vaults ================================================================================================
    def put_vault(self, req: Request) -> Response:
        body = req.json_object()
        vault_id = self.vault_id(req)
        sub = req.params["subscriptionId"]
        self.ctx.require_resource_group(sub, req.params["resourceGroupName"])
        self.ctx.require_group_unlocked(sub, req.params["resourceGroupName"])
        location = body.get("location")
        if not isinstance(location, str) or not location:
            raise ArmError(400, "LocationRequired", "The location property is required for this definition.")
        props = body.get("properties")
        if not isinstance(props, dict) or not isinstance(props.get("storageSettings"), list):
            raise ArmError(400, "InvalidRequestContent",
                           "The Backup vault needs 'properties.storageSettings' (a list of datastore settings).")
        with self.store.transaction():
            existing = self.store.get(vault_id)
            if existing is not None:
                return self._update_vault(req, existing, body, replace_properties=True)
            tenant = self.ctx.require_subscription(sub).tenant_id
            count = len(self.store.list(resource_type=VAULT_TYPE, subscription_id=sub))
            if count >= VAULTS_PER_SUBSCRIPTION:
                raise errors.VAULTS_PER_SUBSCRIPTION_LIMIT.error(subscription=sub, count=count,
                                                                 limit=VAULTS_PER_SUBSCRIPTION)
            record = {
                "id": vault_id,
                "name": req.params["vaultName"],
                "type": VAULT_TYPE,
                "location": location,
                "tags": body.get("tags") or {},
                "identity": self._identity(body.get("identity"), None, tenant),
                "properties": self._vault_properties(props, None, req.params["vaultName"]),
                "systemData": self.ctx.system_data(req),
            }
            record["properties"]["provisioningState"] = "Provisioning"
            # when the create is due: a sandbox restarted from its state file before the LRO ended (operations
            # are not persisted) still sees the vault finish provisioning
            ready_at = self.ctx.clock.now() + timedelta(seconds=DURATIONS["vault"])
            self.store.put(record, private={"readyAt": _iso(ready_at)})

        def complete() -> None:
            with self.store.transaction():
                current = self.store.get(vault_id)
                if current is not None:
                    current["properties"]["provisioningState"] = "Succeeded"
                    self.store.put(current)

        def failed(_error: ArmError) -> None:
            with self.store.transaction():
                current = self.store.get(vault_id)
                if current is not None:
                    current["properties"]["provisioningState"] = "Failed"
                    self.store.put(current)

        op = self.begin(req, kind="vault", complete=complete, on_failure=failed,
                        async_url=f"{vault_id}/operationStatus/{{operationId}}")
        return self.ctx.operations.accept(op, 201, self.render_vault(record))

    def patch_vault(self, req: Request) -> Response:
        vault = self.require_vault(req)
        body = req.json_object()
        with self.store.transaction():
            return self._update_vault(req, vault, body, replace_properties=False)

    def _update_vault(self, req: Request, existing: dict[str, Any], body: dict[str, Any], *,
                      replace_properties: bool) -> Response:
        name = existing["name"]
        if "location" in body and not rules.same_location(str(body["location"]), existing["location"]):
            raise errors.LOCATION_CHANGE.error(vault=name, current=existing["location"], wanted=body["location"])
        updated = copy.deepcopy(existing)
        props = body.get("properties") or {}
        if not isinstance(props, dict):
            raise ArmError(400, "InvalidRequestContent", "'properties' must be an object.")
        if replace_properties:
            merged = self._vault_properties(props, existing["properties"], name)
        else:
            merged = copy.deepcopy(existing["properties"])
            for key, value in props.items():
                if key == "securitySettings" and isinstance(value, dict):
                    security = merged.setdefault("securitySettings", {})
                    for sub_key, sub_value in value.items():
                        security[sub_key] = {**security.get(sub_key, {}), **sub_value} if isinstance(
                            sub_value, dict) else sub_value
                else:
                    merged[key] = value
            merged = self._vault_properties(merged, existing["properties"], name)
        old_state = str(existing["properties"]["securitySettings"]["softDeleteSettings"].get("state", "On"))
        new_state = str(merged["securitySettings"]["softDeleteSettings"]["state"])
        if rules.soft_delete_active(old_state) and not rules.soft_delete_active(new_state):
            self.require_mua(existing, OP_DISABLE_SOFT_DELETE)
        merged["provisioningState"] = "Succeeded"
        updated["properties"] = merged
        if "tags" in body:
            updated["tags"] = body.get("tags") or {}
        if "identity" in body:
            tenant = self.ctx.require_subscription(parse_id(existing["id"]).subscription_id or "").tenant_id
            updated["identity"] = self._identity(body.get("identity"), existing.get("identity"), tenant)
        updated["systemData"] = self.ctx.system_data(req, existing)
        self.store.put(updated)
        if replace_properties:
            return ok(self.render_vault(updated))
        op = self.begin(req, kind="vault", complete=None, async_url=f"{existing['id']}/operationStatus/{{operationId}}",
                        location_url=f"{existing['id']}/operationResults/{{operationId}}")
        return self.ctx.operations.accept(op, 202)

    @staticmethod
    def _identity(wanted: Any, existing: dict[str, Any] | None, tenant: str) -> dict[str, Any]:
        kind = str((wanted or {}).get("type") or "None") if isinstance(wanted, dict) or wanted is None else "None"
        if kind.lower() == "systemassigned":
            if existing and str(existing.get("type", "")).lower() == "systemassigned" and existing.get("principalId"):
                return {"type": "SystemAssigned", "principalId": existing["principalId"],
                        "tenantId": existing.get("tenantId", tenant)}
            return {"type": "SystemAssigned", "principalId": str(uuid.uuid4()), "tenantId": tenant}
        if kind.lower() != "none":
            raise errors.INVALID_ENUM.error(value=kind, field="identity.type", allowed="['None', 'SystemAssigned']")
        return {"type": "None"}

    @staticmethod
    def _vault_properties(props: dict[str, Any], existing: dict[str, Any] | None, name: str) -> dict[str, Any]:
        result = copy.deepcopy(props)
        for readonly in ("provisioningState", "resourceMoveState", "resourceMoveDetails",
                         "isVaultProtectedByResourceGuard", "secureScore", "bcdrSecurityLevel", "replicatedRegions"):
            result.pop(readonly, None)
        security = result.setdefault("securitySettings", {}) or {}
        result["securitySettings"] = security
        old_security = (existing or {}).get("securitySettings", {})
        soft = security.get("softDeleteSettings") or copy.deepcopy(old_security.get("softDeleteSettings")) or {
            "state": "On", "retentionDurationInDays": 14}
        state = str(soft.get("state", "On"))
        if state.lower() not in rules.SOFT_DELETE_ALIASES:
            raise errors.INVALID_ENUM.error(value=state, field="securitySettings.softDeleteSettings.state",
                                            allowed=list(rules.SOFT_DELETE_STATES))
        days = soft.get("retentionDurationInDays", 14)
        if not isinstance(days, int | float) or not rules.SOFT_DELETE_MIN_DAYS <= days <= rules.SOFT_DELETE_MAX_DAYS:
            raise errors.SOFT_DELETE_RETENTION_RANGE.error(days=days)
        old_soft = old_security.get("softDeleteSettings")
        if old_soft and not rules.soft_delete_change_allowed(str(old_soft.get("state", "On")), state):
            raise errors.SOFT_DELETE_ALWAYS_ON.error(vault=name, wanted=state)
        security["softDeleteSettings"] = {"state": state, "retentionDurationInDays": days}
        immut = security.get("immutabilitySettings") or old_security.get("immutabilitySettings")
        if immut:
            wanted = str(immut.get("state", "Disabled"))
            if wanted.lower() not in {s.lower() for s in rules.IMMUTABILITY_STATES}:
                raise errors.INVALID_ENUM.error(value=wanted, field="securitySettings.immutabilitySettings.state",
                                                allowed=list(rules.IMMUTABILITY_STATES))
            old_immut = old_security.get("immutabilitySettings")
            if old_immut and not rules.immutability_change_allowed(str(old_immut.get("state", "Disabled")), wanted):
                raise errors.IMMUTABILITY_LOCKED.error(vault=name, wanted=wanted)
            security["immutabilitySettings"] = {"state": wanted}
        return result

    def render_vault(self, record: dict[str, Any]) -> dict[str, Any]:
        body = copy.deepcopy(record)
        props = body["properties"]
        props.setdefault("provisioningState", "Succeeded")
        ready_at = self.store.private(record["id"]).get("readyAt")
        if props["provisioningState"] == "Provisioning" and ready_at and _parse_iso(ready_at) <= self.ctx.clock.now():
            props["provisioningState"] = "Succeeded"
        props["secureScore"] = "Adequate" if rules.soft_delete_active(
            props["securitySettings"]["softDeleteSettings"]["state"]) else "Minimum"
        props["bcdrSecurityLevel"] = "Good" if props["secureScore"] == "Adequate" else "Fair"
        props.setdefault("resourceMoveState", "Unknown")
        props["isVaultProtectedByResourceGuard"] = bool(self.proxies(record["id"]))
        return body

    def get_vault(self, req: Request) -> Response:
        return ok(self.render_vault(self.require_vault(req)))

    def list_vaults_in_subscription(self, req: Request) -> Response:
        sub = req.params["subscriptionId"]
        self.ctx.require_subscription(sub)
        vaults = self.store.list(resource_type=VAULT_TYPE, subscription_id=sub)
        return self.ctx.page(req, [self.render_vault(v) for v in vaults])

    def list_vaults_in_group(self, req: Request) -> Response:
        sub, group = req.params["subscriptionId"], req.params["resourceGroupName"]
        self.ctx.require_resource_group(sub, group)
        vaults = self.store.children(self.ctx.resource_group_id(sub, group), resource_type=VAULT_TYPE, direct=True)
        return self.ctx.page(req, [self.render_vault(v) for v in vaults])

    def delete_vault(self, req: Request) -> Response:
        self.ctx.require_group_unlocked(req.params["subscriptionId"], req.params["resourceGroupName"])
        vault_id = self.vault_id(req)
        record = self.store.get(vault_id)
        if record is None:
            return no_content()
        self.purge_expired(vault_id)
        blockers = []
        for label, kind in (("backup instances", INSTANCE_TYPE), ("soft-deleted backup instances", DELETED_TYPE),
                            ("backup policies", POLICY_TYPE)):
            names = [r["name"] for r in self.store.children(vault_id, resource_type=kind, direct=True)]
            if names:
                blockers.append(f"{label}: {', '.join(names)}")
        if blockers:
            raise errors.VAULT_NOT_EMPTY.error(details="; ".join(blockers))

        def complete() -> None:
            self.store.delete(vault_id)

        p = req.params
        group_scope = f"/subscriptions/{p['subscriptionId']}/resourceGroups/{p['resourceGroupName']}"
        op = self.begin(req, kind="vault", duration="vault_delete", complete=complete,
                        async_url=f"{group_scope}/providers/Microsoft.DataProtection/operationStatus/{{operationId}}",
                        location_url=f"{vault_id}/operationResults/{{operationId}}")
        return self.ctx.operations.accept(op, 202)

    # == policies ==============================================================================================
    def put_policy(self, req: Request) -> Response:
        vault = self.require_vault(req)
        body = req.json_object()
        props = body.get("properties")
        if not isinstance(props, dict):
            raise errors.POLICY_INVALID.error(reason="the body needs a 'properties' object")
        if str(props.get("objectType", "")) != "BackupPolicy":
            raise errors.POLICY_INVALID.error(reason="properties.objectType must be 'BackupPolicy'")
        types = props.get("datasourceTypes")
        if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
            raise errors.POLICY_INVALID.error(reason="properties.datasourceTypes must be a non-empty list of strings")
        policy_rules = props.get("policyRules")
        if not isinstance(policy_rules, list) or not policy_rules:
            raise errors.POLICY_INVALID.error(reason="properties.policyRules must be a non-empty list")
        name = req.params["backupPolicyName"]
        policy_id = self.child_id(vault, "backupPolicies", name)
        existing = self.store.get(policy_id)
        record = {"id": policy_id, "name": name, "type": POLICY_TYPE, "properties": self._policy_properties(props),
                  "systemData": self.ctx.system_data(req, existing)}
        return ok(self.store.put(record))

    @staticmethod
    def _policy_properties(props: dict[str, Any]) -> dict[str, Any]:
        """The stored policy: as sent, plus the read-only ``tagInfo.id`` (``<tagName>_``) Azure adds."""
        result = copy.deepcopy(props)
        for rule in result["policyRules"]:
            trigger = rule.get("trigger") if isinstance(rule, dict) else None
            for criterion in (trigger or {}).get("taggingCriteria") or []:
                tag = criterion.get("tagInfo") if isinstance(criterion, dict) else None
                if isinstance(tag, dict) and tag.get("tagName"):
                    tag["id"] = f"{tag['tagName']}_"
        return result

    def get_policy(self, req: Request) -> Response:
        vault = self.require_vault(req)
        policy_id = self.child_id(vault, "backupPolicies", req.params["backupPolicyName"])
        record = self.store.get(policy_id)
        if record is None:
            raise not_found(policy_id, POLICY_TYPE)
        return ok(record)

    def list_policies(self, req: Request) -> Response:
        vault = self.require_vault(req)
        return self.ctx.page(req, self.store.children(vault["id"], resource_type=POLICY_TYPE, direct=True))

    def delete_policy(self, req: Request) -> Response:
        vault = self.require_vault(req)
        policy_id = self.child_id(vault, "backupPolicies", req.params["backupPolicyName"])
        with self.store.transaction():
            if self.store.get(policy_id) is None:
                return no_content()
            key = id_key(policy_id)
            blockers = ((INSTANCE_TYPE, errors.POLICY_IN_USE), (DELETED_TYPE, errors.POLICY_USED_BY_SOFT_DELETED))
            for kind, spec in blockers:
                for record in self.store.children(vault["id"], resource_type=kind, direct=True):
                    if id_key(str(record["properties"].get("policyInfo", {}).get("policyId", ""))) == key:
                        raise spec.error()
            self.store.delete(policy_id)
        return ok()

    # == backup instance checks ================================================================================
    def _check_instance(self, vault: dict[str, Any], props: Any, *, instance_id: str | None,
                        deep: bool = True) -> dict[str, Any]:
        """Synchronous checks shared by validateForBackup and PUT; returns the datasource record. ``deep`` false
        (an update of an instance without ``validationType: DeepValidation``): the listed containers' existence is
        not checked again (see :meth:`put_instance`)."""
        if not isinstance(props, dict):
            raise errors.INVALID_BACKUP_INSTANCE.error(reason="the backup instance needs a properties object")
        if str(props.get("objectType", "")) != "BackupInstance":
            raise errors.INVALID_BACKUP_INSTANCE.error(reason="objectType must be 'BackupInstance'")
        info = props.get("dataSourceInfo")
        if not isinstance(info, dict) or not info.get("resourceID") or not info.get("datasourceType"):
            raise errors.INVALID_BACKUP_INSTANCE.error(
                reason="dataSourceInfo with resourceID and datasourceType is required")
        policy_id = str((props.get("policyInfo") or {}).get("policyId") or "")
        if not policy_id:
            raise errors.INVALID_BACKUP_INSTANCE.error(reason="policyInfo.policyId is required")
        policy_name = parse_id(policy_id).name
        policy = self.store.get(self.child_id(vault, "backupPolicies", policy_name))
        if id_key(parse_id(policy_id).parent or "") != id_key(vault["id"]) or policy is None:
            raise errors.POLICY_NOT_FOUND.error(policy=policy_id, vault=vault["id"])
        datasource_id = str(info["resourceID"])
        datasource = self.store.get(datasource_id)
        workload = rules.workload_for(str(info["datasourceType"]))
        policy_types = [str(t) for t in policy["properties"].get("datasourceTypes") or []]
        if workload is not None and workload.datasource_type.lower() not in {t.lower() for t in policy_types}:
            raise errors.POLICY_WRONG_DATASOURCE.error(policy=policy_name, policy_types=policy_types,
                                                       datasource_type=workload.datasource_type)
        if datasource is None or (workload is not None and str(datasource.get("type", "")).lower()
                                  != workload.resource_type.lower()):
            raise errors.DATASOURCE_NOT_FOUND.error(datasource=datasource_id)
        self._check_not_protected(datasource_id, instance_id)
        if workload is not None:
            if workload.same_region and not rules.same_location(str(datasource.get("location", "")),
                                                                 vault["location"]):
                raise errors.REGION_MISMATCH.error(
                    datasource=datasource_id, datasource_location=datasource.get("location"), vault=vault["name"],
                    vault_location=vault["location"], workload=workload.friendly)
            if workload.same_tenant:
                self._check_same_tenant(vault, datasource_id, workload)
            snapshot_group = self.snapshot_group(props)
            problem = rules.snapshot_group_problem(datasource_id, snapshot_group, workload)
            if problem is None and snapshot_group and workload.snapshot_group_roles and not self.store.exists(
                    snapshot_group):
                problem = "the resource group does not exist"
            if problem is not None:
                raise errors.SNAPSHOT_RG_INVALID.error(group=snapshot_group or "", reason=problem)
            self._check_containers(datasource_id, props, policy, deep=deep)
        return datasource

    #: Vaulted blob backup: at most 100 containers per storage account (MicrosoftDocs
    #: backup/blob-backup-support-matrix.md, vaulted tab); the refusal's code is inferred (dataprotection_errors).
    MAX_BLOB_CONTAINERS: Final = 100

    def _check_containers(self, datasource_id: str, props: dict[str, Any], policy: dict[str, Any], *,
                          deep: bool = True) -> None:
        """``BlobBackupDatasourceParameters.containersList`` (S-DP): at most 100 names, each a container of the
        account and none a system container but $root / $web (``errors.SYSTEM_CONTAINER``); a vaulted blob backup
        (a VaultStore backup rule) needs at least one (``errors.NO_CONTAINERS_SELECTED``, observed)."""
        params = (props.get("policyInfo") or {}).get("policyParameters") or {}
        selected = [c for entry in params.get("backupDatasourceParametersList") or [] if isinstance(entry, dict)
                    and entry.get("objectType") == "BlobBackupDatasourceParameters"
                    for c in entry.get("containersList") or []]
        if not selected and self._vaulted_blob_policy(props, policy):
            # observed: a vaulted blob backup instance with no container selected is refused,
            # "(UserErrorNoContainersSelectedForOperation) No containers selected for operation"
            # (Azure/azure-cli-extensions#7499, az dataprotection backup-instance create with a vaulted policy rule)
            raise errors.NO_CONTAINERS_SELECTED.error()
        for entry in params.get("backupDatasourceParametersList") or []:
            if not isinstance(entry, dict) or entry.get("objectType") != "BlobBackupDatasourceParameters":
                continue
            names = [str(c) for c in entry.get("containersList") or []]
            if len(names) > self.MAX_BLOB_CONTAINERS:
                raise errors.TOO_MANY_CONTAINERS.error(count=len(names), account=parse_id(datasource_id).name,
                                                       limit=self.MAX_BLOB_CONTAINERS)
            for name in names:
                if name.startswith("$") and name.lower() not in ("$root", "$web"):
                    raise errors.SYSTEM_CONTAINER.error(container=name, account=parse_id(datasource_id).name)
                if deep and not self.store.exists(f"{datasource_id}/blobServices/default/containers/{name}"):
                    raise errors.CONTAINER_NOT_FOUND.error(container=name, account=parse_id(datasource_id).name)

    @staticmethod
    def _vaulted_blob_policy(props: dict[str, Any], policy: dict[str, Any]) -> bool:
        """A blob backup whose policy backs up to the vault (a VaultStore backup rule): vaulted blob backup."""
        datasource_type = str((props.get("dataSourceInfo") or {}).get("datasourceType") or "")
        if datasource_type.lower() != rules.BLOB.lower():
            return False
        return any(str(r.get("objectType")) == "AzureBackupRule"
                   and str((r.get("dataStore") or {}).get("dataStoreType") or "").lower() == "vaultstore"
                   for r in policy["properties"].get("policyRules") or [] if isinstance(r, dict))

    def _check_same_tenant(self, vault: dict[str, Any], datasource_id: str, workload: rules.Workload) -> None:
        vault_spec = self.ctx.subscriptions.get(parse_id(vault["id"]).subscription_id or "")
        source_spec = self.ctx.subscriptions.get(parse_id(datasource_id).subscription_id or "")
        if vault_spec and source_spec and vault_spec.tenant_id.lower() != source_spec.tenant_id.lower():
            raise errors.TENANT_MISMATCH.error(
                datasource=datasource_id, datasource_tenant=source_spec.tenant_id, vault=vault["name"],
                vault_tenant=vault_spec.tenant_id, workload=workload.friendly)

    def _check_not_protected(self, datasource_id: str, instance_id: str | None) -> None:
        key = id_key(datasource_id)
        for record in self.store.list(resource_type=INSTANCE_TYPE):
            props = record.get("properties", {})
            if id_key(str(props.get("dataSourceInfo", {}).get("resourceID", ""))) != key:
                continue
            if instance_id is not None and id_key(record["id"]) == id_key(instance_id):
                continue
            if props.get("currentProtectionState") == "ConfiguringProtectionFailed":
                continue  # a failed configuration protects nothing (inferred)
            raise errors.ALREADY_PROTECTED.error(vault=parse_id(record["id"]).parent)

    @staticmethod
    def snapshot_group(props: dict[str, Any]) -> str | None:
        params = (props.get("policyInfo") or {}).get("policyParameters") or {}
        for entry in params.get("dataStoreParametersList") or []:
            if isinstance(entry, dict) and entry.get("resourceGroupId"):
                return str(entry["resourceGroupId"])
        return None

    def missing_roles(self, vault_id: str, props: dict[str, Any]) -> list[str]:
        """The roles the vault identity lacks for this instance (empty: permissions are complete)."""
        info = props["dataSourceInfo"]
        workload = rules.workload_for(str(info["datasourceType"]))
        if workload is None:
            return []  # no documented requirement for other datasource types: nothing to check
        principal, who = self.acting_identity(vault_id, props)
        grants = rules.required_grants(workload, str(info["resourceID"]), self.snapshot_group(props))
        if not principal:
            return [f"'{g.role}' {g.why} ({g.scope}): {who}" for g in grants]
        return [f"'{g.role}' {g.why} ({g.scope})" for g in grants
                if not self.roles.holds_role(principal, g.role, g.scope)]

    def acting_identity(self, vault_id: str, props: dict[str, Any]) -> tuple[str, str]:
        """(principal id, description) of the identity the instance backs up with; '' when there is none.

        ``identityDetails.useSystemAssignedIdentity: false`` names a user-assigned identity by ARM id; its
        principal is read from that resource's record (``properties.principalId``) when the store has it.
        """
        details = props.get("identityDetails") or {}
        if details.get("useSystemAssignedIdentity") is False and details.get("userAssignedIdentityArmUrl"):
            uami = str(details["userAssignedIdentityArmUrl"])
            record = self.store.get(uami) or {}
            principal = str((record.get("properties") or {}).get("principalId") or "")
            return principal, (f"user-assigned identity '{uami}'" if principal
                               else f"the user-assigned identity '{uami}' is unknown")
        vault = self.store.get(vault_id) or {}
        principal = str((vault.get("identity") or {}).get("principalId") or "")
        return principal, ("the Backup vault's identity" if principal
                           else "the vault has no system-assigned identity")

    def _require_roles(self, vault_id: str, props: dict[str, Any]) -> None:
        missing = self.missing_roles(vault_id, props)
        if missing:
            principal, who = self.acting_identity(vault_id, props)
            raise errors.MISSING_PERMISSIONS.error(
                details=f"{who} '{principal or '(none)'}' lacks: " + "; ".join(missing) + ".")

    # == validate ==============================================================================================
    def validate_for_backup(self, req: Request) -> Response:
        vault = self.require_vault(req)
        body = req.json_object()
        instance = body.get("backupInstance")
        self._check_instance(vault, instance, instance_id=None)
        assert isinstance(instance, dict)
        vault_id = vault["id"]

        def complete() -> dict[str, Any]:
            self._require_roles(vault_id, instance)
            return {"jobId": str(uuid.uuid4()), "objectType": "OperationJobExtendedInfo"}

        location = f"/subscriptions/{req.params['subscriptionId']}/providers/Microsoft.DataProtection/locations/" \
                   f"{_region(vault['location'])}"
        op = self.begin(req, kind="validate", complete=complete,
                        async_url=f"{location}/operationStatus/{{operationId}}",
                        location_url=f"{location}/operationResults/{{operationId}}")
        return self.ctx.operations.accept(op, 202)

    # == backup instances ======================================================================================
    def put_instance(self, req: Request) -> Response:
        vault = self.require_vault(req)
        body = req.json_object()
        props = body.get("properties")
        name = req.params["backupInstanceName"]
        instance_id = self.child_id(vault, "backupInstances", name)
        with self.store.transaction():
            existing = self.store.get(instance_id)
            # An update of a configured instance re-runs validateForBackup's checks (the listed containers exist,
            # the vault identity's roles) only with validationType DeepValidation: "Specifies the type of
            # validation. In case of DeepValidation, all validations from /validateForBackup API will run again"
            # (S-DP 2025-07-01 BackupInstance.validationType, ShallowValidation | DeepValidation), and Microsoft's
            # own update sets it ("deep validate for update-BI", Azure/azure-powershell
            # DataProtection.Autorest/custom/Cmdlets/Platform/BackupInstance/Update-AzDataProtectionBackupInstance.ps1).
            # INFERRED: that a shallow update checks neither (the sandbox accepts a container the account lacks).
            update = existing is not None and existing["properties"].get("currentProtectionState") not in \
                rules.FAILED_STATES
            asked = str(props.get("validationType") or "") if isinstance(props, dict) else ""
            deep = not update or asked.lower() == "deepvalidation"
            self._check_instance(vault, props, instance_id=instance_id, deep=deep)
            assert isinstance(props, dict)
            record = {
                "id": instance_id,
                "name": name,
                "type": INSTANCE_TYPE,
                "tags": body.get("tags") or (existing or {}).get("tags") or {},
                "properties": self._instance_properties(props, existing),
                "systemData": self.ctx.system_data(req, existing),
            }
            # a re-PUT of an instance whose configuration failed (or that is in ProtectionError) configures it
            # again - INFERRED (no source says so; Azure's documented remedy is POST .../sync, "retry last failed
            # operation"); any other re-PUT updates it in place
            if update:
                assert existing is not None
                if deep:
                    self._require_roles(vault["id"], record["properties"])
                self.store.put(record)
                if record["properties"].get("policyInfo") == existing["properties"].get("policyInfo"):
                    return ok(self.render_instance(record))
                # A change of what is backed up (the policy or its parameters, e.g. the blob containers) answers
                # 202 with Azure-AsyncOperation, Location (the instance's operationResults), Retry-After 60 and NO
                # body: PutBackupInstance.json's 202. Which PUTs Azure answers so (rather than 200) is INFERRED.
                op = self.begin(req, kind="instance", complete=None,
                                async_url=f"{vault['id']}/operationStatus/{{operationId}}",
                                location_url=f"{instance_id}/operationResults/{{operationId}}")
                return self.ctx.operations.accept(op, 202)
            record["properties"].update({"provisioningState": "Provisioning",
                                         "currentProtectionState": "ConfiguringProtection",
                                         "protectionStatus": {"status": "ConfiguringProtection"}})
            record["properties"].pop("protectionErrorDetails", None)
            self.store.put(record)
        vault_id = vault["id"]
        datasource_id = str(props["dataSourceInfo"]["resourceID"])

        def complete() -> None:
            self._require_roles(vault_id, record["properties"])
            failure = self._injected_configuration_failure(datasource_id)
            if failure is not None and failure[0] == rules.PROTECTION_ERROR:
                self._set_instance_state(instance_id, rules.PROTECTION_ERROR, provisioning="Succeeded",
                                         error=failure[1].body()["error"])
                return
            if failure is not None:
                raise failure[1]
            self._set_instance_state(instance_id, rules.CONFIGURED, provisioning="Succeeded")

        def failed(error: ArmError) -> None:
            self._set_instance_state(instance_id, "ConfiguringProtectionFailed", provisioning="Failed",
                                     error={"code": error.code, "message": error.message})

        op = self.begin(req, kind="instance", complete=complete, on_failure=failed,
                        async_url=f"{vault_id}/operationStatus/{{operationId}}")
        return self.ctx.operations.accept(op, 201, self.render_instance(record))

    def _injected_configuration_failure(self, datasource_id: str) -> tuple[str, ArmError] | None:
        """FaultConfig.fail_backup_configurations: (the state it leaves, the error) while this datasource has
        configurations left to fail, counting this one; None once they are used up (or the switch is off)."""
        faults = self.ctx.operations.faults
        cfg = faults.config if faults is not None else None
        if cfg is None or cfg.fail_backup_configurations <= 0:
            return None
        if not self.store.exists(datasource_id):
            return None
        state = self.store.private(datasource_id)  # kept on the datasource's record: it survives restarts
        failed = int(state.get("dataProtectionConfigurationFailures", 0))
        if failed >= cfg.fail_backup_configurations:
            return None
        state["dataProtectionConfigurationFailures"] = failed + 1
        self.store.set_private(datasource_id, state)
        error = ArmError(400, cfg.backup_configuration_error_code,
                         f"Configuring protection failed (sandbox-injected, {failed + 1} of "
                         f"{cfg.fail_backup_configurations} for this datasource).")
        return cfg.backup_configuration_failure, error

    @staticmethod
    def _instance_properties(props: dict[str, Any], existing: dict[str, Any] | None) -> dict[str, Any]:
        result = copy.deepcopy(props)
        # read-only fields, and request-only ones Azure does not echo (PutBackupInstance.json: the secret-store
        # reference and the validation type are absent from every response)
        for dropped in ("provisioningState", "protectionStatus", "currentProtectionState", "protectionErrorDetails",
                        "validationType", "datasourceAuthCredentials"):
            result.pop(dropped, None)
        info = result["dataSourceInfo"]
        info.setdefault("objectType", "Datasource")
        info.setdefault("resourceName", parse_id(str(info["resourceID"])).name)
        info.setdefault("resourceType", parse_id(str(info["resourceID"])).full_type)
        result.setdefault("friendlyName", info.get("resourceName"))
        policy = result.setdefault("policyInfo", {})
        policy.setdefault("policyVersion", "")
        if existing is not None:
            for keep in ("provisioningState", "protectionStatus", "currentProtectionState"):
                if keep in existing["properties"]:
                    result[keep] = existing["properties"][keep]
        else:
            result["provisioningState"] = "Succeeded"
            result["currentProtectionState"] = rules.CONFIGURED
            result["protectionStatus"] = {"status": rules.CONFIGURED}
        return result

    def _set_instance_state(self, instance_id: str, state: str, *, provisioning: str = "Succeeded",
                            error: dict[str, Any] | None = None) -> None:
        with self.store.transaction():
            record = self.store.get(instance_id)
            if record is None:
                return
            props = record["properties"]
            props["currentProtectionState"] = state
            props["provisioningState"] = provisioning
            status: dict[str, Any] = {"status": rules.protection_status(state)}
            if error is not None:
                status["errorDetails"] = error
                props["protectionErrorDetails"] = error
            props["protectionStatus"] = status
            self.store.put(record)

    @staticmethod
    def render_instance(record: dict[str, Any]) -> dict[str, Any]:
        return copy.deepcopy(record)

    def require_instance(self, req: Request) -> tuple[dict[str, Any], dict[str, Any]]:
        vault = self.require_vault(req)
        instance_id = self.child_id(vault, "backupInstances", req.params["backupInstanceName"])
        record = self.store.get(instance_id)
        if record is None:
            raise not_found(instance_id, INSTANCE_TYPE)
        return vault, record

    def get_instance(self, req: Request) -> Response:
        _vault, record = self.require_instance(req)
        return ok(self.render_instance(record))

    def list_instances(self, req: Request) -> Response:
        vault = self.require_vault(req)
        records = self.store.children(vault["id"], resource_type=INSTANCE_TYPE, direct=True)
        return self.ctx.page(req, [self.render_instance(r) for r in records])

    def delete_instance(self, req: Request) -> Response:
        vault = self.require_vault(req)
        instance_id = self.child_id(vault, "backupInstances", req.params["backupInstanceName"])
        if self.store.get(instance_id) is None:
            return no_content()
        self.require_unlock(vault, OP_DELETE_INSTANCE, instance_id)
        vault_id = vault["id"]

        def complete() -> None:
            self._remove_instance(vault_id, instance_id)

        op = self.begin(req, kind="action", complete=complete,
                        async_url=f"{vault_id}/operationStatus/{{operationId}}",
                        location_url=f"{instance_id}/operationResults/{{operationId}}")
        return self.ctx.operations.accept(op, 202)

    def _remove_instance(self, vault_id: str, instance_id: str) -> None:
        with self.store.transaction():
            record = self.store.get(instance_id)
            vault = self.store.get(vault_id)
            if record is None:
                return
            self.store.delete(instance_id)
            soft = (vault or {}).get("properties", {}).get("securitySettings", {}).get("softDeleteSettings", {})
            if not vault or not rules.soft_delete_active(str(soft.get("state", "On"))):
                return
            now = self.ctx.clock.now()
            days = float(soft.get("retentionDurationInDays", 14))
            props = record["properties"]
            props.update({
                "objectType": "DeletedBackupInstance",
                "provisioningState": "Succeeded",
                "currentProtectionState": "SoftDeleted",
                "protectionStatus": {"status": "SoftDeleted"},
                "deletionInfo": {
                    "deletionTime": _iso(now),
                    "billingEndDate": _iso(now + timedelta(days=days)),
                    "scheduledPurgeTime": _iso(now + timedelta(days=days)),
                    "deleteActivityID": str(uuid.uuid4()),
                },
            })
            deleted = {"id": f"{vault_id}/deletedBackupInstances/{record['name']}", "name": record["name"],
                       "type": DELETED_TYPE, "properties": props}
            self.store.put(deleted)

    def instance_action(self, action: str) -> Callable[[Request], Response]:
        allowed_from, target = rules.TRANSITIONS[action]

        def handle(req: Request) -> Response:
            vault, record = self.require_instance(req)
            state = str(record["properties"].get("currentProtectionState", ""))
            if state not in allowed_from:
                raise errors.INSTANCE_STATE.error(operation=action, instance=record["name"], state=state)
            if action == OP_STOP_PROTECTION:
                self.require_mua(vault, OP_STOP_PROTECTION)
            instance_id = record["id"]

            def complete() -> None:
                self._set_instance_state(instance_id, target)

            op = self.begin(req, kind="action", complete=complete,
                            async_url=f"{vault['id']}/operationStatus/{{operationId}}",
                            location_url=f"{instance_id}/operationResults/{{operationId}}")
            return self.ctx.operations.accept(op, 202)

        return handle

    # == sync ==================================================================================================
    def sync_instance(self, req: Request) -> Response:
        """POST .../backupInstances/{bi}/sync (``BackupInstances_SyncBackupInstance``): "Sync backup instance again
        in case of failure. This action will retry last failed operation and will bring backup instance to valid
        state" (the 2025-07-01 spec; the permission ``backupInstances/sync/action`` "retries last failed operation
        on backup instance to bring it to a valid state", Azure's resource-provider operations list). Body
        ``{"syncType": "Default" | "ForceResync"}`` ("to sync only in case of failure or in all cases", the spec's
        SyncBackupInstanceRequest); 202 with Azure-AsyncOperation, Location and Retry-After 60
        (SyncBackupInstance.json), the operation ends 200.

        What it does to the instance: one in ``ProtectionError`` or ``ConfiguringProtectionFailed`` has its
        configuration retried (the roles the workload needs are checked again, and
        ``FaultConfig.fail_backup_configurations`` counts it as one more configuration); it ends
        ``ProtectionConfigured``, or in its failed state again with the new error and the operation Failed
        (INFERRED: no source says how a sync that fails again ends). A healthy instance is left as it is, for
        ``Default`` and (INFERRED, no state of ours to re-sync) ``ForceResync``. Microsoft's own Azure Service
        Operator calls it with ``Default`` on ``ProtectionError`` with a ``UserError...`` code, and treats
        ``ConfiguringProtectionFailed`` as terminal ("confirmed by the dataprotection team",
        Azure/azure-service-operator ``v2/api/dataprotection/customizations/
        backup_vaults_backup_instance_extensions.go``).
        """
        vault, record = self.require_instance(req)
        body = req.json_object() if req.raw_body else {}
        sync_type = body.get("syncType", "Default")
        if sync_type not in ("Default", "ForceResync"):
            raise ArmError(400, "InvalidParameter",
                           f"syncType must be 'Default' or 'ForceResync', got {str(sync_type)[:40]!r}")  # inferred
        instance_id, vault_id = record["id"], vault["id"]
        datasource_id = str(record["properties"].get("dataSourceInfo", {}).get("resourceID", ""))
        state = str(record["properties"].get("currentProtectionState", ""))

        def complete() -> None:
            if state not in rules.FAILED_STATES:
                return
            current = self.store.get(instance_id)
            if current is None:
                return
            try:
                self._require_roles(vault_id, current["properties"])
            except ArmError as missing:
                self._set_instance_state(instance_id, state, provisioning="Succeeded",
                                         error={"code": missing.code, "message": missing.message})
                raise
            failure = self._injected_configuration_failure(datasource_id)
            if failure is not None:
                self._set_instance_state(instance_id, state, provisioning="Succeeded",
                                         error=failure[1].body()["error"])
                raise failure[1]
            self._set_instance_state(instance_id, rules.CONFIGURED, provisioning="Succeeded")

        op = self.begin(req, kind="sync", complete=complete,
                        async_url=f"{vault_id}/operationStatus/{{operationId}}",
                        location_url=f"{instance_id}/operationResults/{{operationId}}")
        return self.ctx.operations.accept(op, 202)

    # == deleted instances =====================================================================================
    def require_deleted(self, req: Request) -> tuple[dict[str, Any], dict[str, Any]]:
        vault = self.require_vault(req)
        name = req.params["backupInstanceName"]
        record = self.store.get(self.child_id(vault, "deletedBackupInstances", name))
        if record is None:
            raise errors.DELETED_INSTANCE_NOT_FOUND.error(vault=vault["name"], instance=name)
        return vault, record

    def get_deleted(self, req: Request) -> Response:
        return ok(self.require_deleted(req)[1])

    def list_deleted(self, req: Request) -> Response:
        vault = self.require_vault(req)
        return self.ctx.page(req, self.store.children(vault["id"], resource_type=DELETED_TYPE, direct=True))

    def undelete(self, req: Request) -> Response:
        vault, deleted = self.require_deleted(req)
        datasource_id = str(deleted["properties"].get("dataSourceInfo", {}).get("resourceID", ""))
        instance_id = self.child_id(vault, "backupInstances", deleted["name"])
        self._check_not_protected(datasource_id, None)
        if self.store.exists(instance_id):
            raise errors.INSTANCE_STATE.error(operation="undelete", instance=deleted["name"], state="exists")
        deleted_id = deleted["id"]

        def complete() -> None:
            with self.store.transaction():
                record = self.store.get(deleted_id)
                if record is None:
                    raise errors.DELETED_INSTANCE_NOT_FOUND.error(vault=vault["name"], instance=deleted["name"])
                self._check_not_protected(datasource_id, None)
                props = record["properties"]
                props.pop("deletionInfo", None)
                props["objectType"] = "BackupInstance"
                self.store.delete(deleted_id)
                self.store.put({"id": instance_id, "name": record["name"], "type": INSTANCE_TYPE, "tags": {},
                                "properties": props})
            self._set_instance_state(instance_id, rules.STOPPED)

        op = self.begin(req, kind="action", complete=complete,
                        async_url=f"{vault['id']}/operationStatus/{{operationId}}",
                        location_url=f"{instance_id}/operationResults/{{operationId}}")
        return self.ctx.operations.accept(op, 202)

    # == multi-user authorization ==============================================================================
    def proxies(self, vault_id: str) -> list[dict[str, Any]]:
        return self.store.children(vault_id, resource_type=PROXY_TYPE, direct=True)

    def _granted(self, vault_id: str) -> bool:
        until = self.store.private(vault_id).get("muaGrantUntil")
        return bool(until) and _parse_iso(str(until)) > self.ctx.clock.now()

    def require_mua(self, vault: dict[str, Any], operation: str) -> None:
        """Refuse a protected operation on a vault with a resource guard unless the security admin granted it."""
        for proxy in self.proxies(vault["id"]):
            props = proxy.get("properties", {})
            excluded = {str(x).lower() for x in props.get("vaultCriticalOperationExclusionList") or []}
            if operation.lower() in excluded or self._granted(vault["id"]):
                continue
            raise errors.MUA_NOT_AUTHORIZED.error(operation=operation, vault=vault["name"],
                                                  guard=props.get("resourceGuardResourceId"))

    def require_unlock(self, vault: dict[str, Any], operation: str, resource_id: str) -> None:
        """A protected delete needs an open ``unlockDelete`` for exactly this resource (see the module docstring)."""
        unlocks = self.store.private(vault["id"]).get("muaUnlocks", {})
        for proxy in self.proxies(vault["id"]):
            props = proxy.get("properties", {})
            excluded = {str(x).lower() for x in props.get("vaultCriticalOperationExclusionList") or []}
            if operation.lower() in excluded:
                continue
            until = unlocks.get(id_key(resource_id))
            if until is None or _parse_iso(str(until)) <= self.ctx.clock.now():
                raise errors.MUA_NOT_AUTHORIZED.error(operation=operation, vault=vault["name"],
                                                      guard=props.get("resourceGuardResourceId"))

    def put_proxy(self, req: Request) -> Response:
        vault = self.require_vault(req)
        props = req.json_object().get("properties")
        if not isinstance(props, dict) or not props.get("resourceGuardResourceId"):
            raise errors.PROXY_INVALID.error(reason="properties.resourceGuardResourceId is required")
        name = req.params["resourceGuardProxyName"]
        proxy_id = self.child_id(vault, "backupResourceGuardProxies", name)
        existing = self.store.get(proxy_id)
        if existing is not None and id_key(str(existing["properties"].get("resourceGuardResourceId"))) != id_key(
                str(props["resourceGuardResourceId"])):
            self.require_mua(vault, "updateResourceGuardProxy")
        guard = str(props["resourceGuardResourceId"])
        record = {"id": proxy_id, "name": name, "type": PROXY_TYPE, "properties": {
            "resourceGuardResourceId": props["resourceGuardResourceId"],
            "resourceGuardOperationDetails": [
                {"vaultCriticalOperation": op, "defaultResourceRequest": _guard_request(guard, request)}
                for op, request in GUARD_REQUESTS
            ],
            "lastUpdatedTime": self.ctx.now_iso(),
            "description": props.get("description") or "",
            "vaultCriticalOperationExclusionList": [
                op for op in props.get("vaultCriticalOperationExclusionList") or [] if op in OPTIONALLY_PROTECTED],
        }}
        return ok(self.store.put(record))

    def get_proxy(self, req: Request) -> Response:
        vault = self.require_vault(req)
        proxy_id = self.child_id(vault, "backupResourceGuardProxies", req.params["resourceGuardProxyName"])
        record = self.store.get(proxy_id)
        if record is None:
            raise not_found(proxy_id, PROXY_TYPE)
        return ok(record)

    def list_proxies(self, req: Request) -> Response:
        vault = self.require_vault(req)
        return self.ctx.page(req, self.proxies(vault["id"]))

    def unlock_delete(self, req: Request) -> Response:
        vault = self.require_vault(req)
        proxy_id = self.child_id(vault, "backupResourceGuardProxies", req.params["resourceGuardProxyName"])
        proxy = self.store.get(proxy_id)
        if proxy is None:
            raise not_found(proxy_id, PROXY_TYPE)
        target = str((req.json() or {}).get("resourceToBeDeleted") or "")
        if not target:
            raise errors.PROXY_INVALID.error(reason="'resourceToBeDeleted' is required")
        guard = str(proxy["properties"].get("resourceGuardResourceId"))
        if not self._granted(vault["id"]):
            raise errors.MUA_NOT_AUTHORIZED.error(operation="unlockDelete", vault=vault["name"], guard=guard)
        # the one request that unlocks deleting this kind of resource (module docstring; other requests: inferred)
        kind = "deleteResourceGuardProxyRequests" if "/backupresourceguardproxies/" in id_key(target) else (
            "deleteBackupInstanceRequests")
        wanted = id_key(_guard_request(guard, kind))
        named = {id_key(str(r)) for r in (req.json() or {}).get("resourceGuardOperationRequests") or []}
        if named != {wanted}:
            raise errors.MUA_OPERATION_REQUEST.error(wanted=_guard_request(guard, kind),
                                                     named=", ".join(sorted(named)) or "none")
        until = self.ctx.clock.now() + timedelta(seconds=UNLOCK_WINDOW)
        state = self.store.private(vault["id"])
        state.setdefault("muaUnlocks", {})[id_key(target)] = _iso(until)
        self.store.set_private(vault["id"], state)
        return ok({"unlockDeleteExpiryTime": _iso(until)})

    def delete_proxy(self, req: Request) -> Response:
        """Disabling MUA: always protected, needs an ``unlockDelete`` for this proxy first (D-mua)."""
        vault = self.require_vault(req)
        proxy_id = self.child_id(vault, "backupResourceGuardProxies", req.params["resourceGuardProxyName"])
        proxy = self.store.get(proxy_id)
        if proxy is None:
            return no_content()
        state = self.store.private(vault["id"])
        unlocks = state.get("muaUnlocks", {})
        until = unlocks.pop(id_key(proxy_id), None)
        if until is None or _parse_iso(until) <= self.ctx.clock.now():
            raise errors.MUA_NOT_AUTHORIZED.error(operation="deleteResourceGuardProxy (disable MUA)",
                                                  vault=vault["name"],
                                                  guard=proxy["properties"].get("resourceGuardResourceId"))
        self.store.set_private(vault["id"], state)
        self.store.delete(proxy_id)
        return ok()

    # == operations ============================================================================================
    def operation_status(self, req: Request) -> Response:
        """The operation's status body (GetOperationStatus). While it runs, Data Protection spells its status
        ``Inprogress`` and sends ``endTime: 0001-01-01T00:00:00`` (the captured answer to a validateForBackup status
        GET in MicrosoftDocs/azure-docs ``backup/backup-azure-dataprotection-use-rest-api-backup-disks.md``;
        Az.DataProtection's ``Get-AzDataProtectionOperationStatus`` example loops ``-eq "Inprogress"``), not ARM's
        ``InProgress``: docs/azure-facts.md "An operation's status ends only at ..."."""
        response = self.ctx.operations.status_response(req.params["operationId"])
        if response.body.get("status") == IN_PROGRESS:
            response.body = dict(response.body, status=DP_IN_PROGRESS, endTime=NO_END_TIME)
        properties = self.ctx.operations.get(req.params["operationId"]).extra.get(STATUS_PROPERTIES)
        if properties and response.body.get("status") == "Succeeded":
            response.body = dict(response.body, properties=properties)
        return response

    def operation_result(self, req: Request) -> Response:
        return self.ctx.operations.result_response(req.params["operationId"])

    def vault_operation_result(self, req: Request) -> Response:
        """Vault-scoped result: once done, the vault itself (the SDK reads 200 as a BackupVaultResource)."""
        return self._result_or_resource(req, self.vault_id(req), self.render_vault)

    def instance_operation_result(self, req: Request) -> Response:
        """Instance-scoped result: once done, the instance (``get_backup_instance_operation_result`` reads 200
        as a BackupInstanceResource); nothing (204) when the operation removed it."""
        instance_id = f"{self.vault_id(req)}/backupInstances/{req.params['backupInstanceName']}"
        return self._result_or_resource(req, instance_id, self.render_instance)

    def _result_or_resource(self, req: Request, resource_id: str,
                            render: Callable[[dict[str, Any]], dict[str, Any]]) -> Response:
        answer = self.ctx.operations.result_response(req.params["operationId"])
        if answer.status == 204:
            record = self.store.get(resource_id)
            if record is not None:
                return Response(200, render(record), raise_event=False)
        return answer

    # == moves =================================================================================================
    def guard_move(self, plan: MovePlan) -> None:
        """A Backup vault never changes tenant (D-bv: ``UserErrorCrossTenantMSIMoveNotSupported``)."""
        for resource in plan.resources:
            if str(resource.get("type", "")).lower() != VAULT_TYPE.lower():
                continue
            identity = resource.get("identity") or {}
            identity_tenant = str(identity.get("tenantId") or plan.source_tenant)
            if plan.cross_tenant or identity_tenant.lower() != plan.target_tenant.lower():
                raise errors.CROSS_TENANT_MOVE.error(vault=resource.get("name"), tenant=identity_tenant)

    def after_move(self, pairs: list[tuple[str, str]]) -> None:
        """Instances that moved with their vault keep pointing at the vault's (moved) policies."""
        for old_vault, new_vault in [(old, new) for old, new in pairs if self._is_vault(new)]:
            for kind in (INSTANCE_TYPE, DELETED_TYPE):
                for record in self.store.children(new_vault, resource_type=kind, direct=True):
                    policy = record["properties"].get("policyInfo", {})
                    policy_id = str(policy.get("policyId", ""))
                    if id_key(policy_id).startswith(id_key(old_vault) + "/"):
                        policy["policyId"] = new_vault + policy_id[len(old_vault.rstrip("/")):]
                        self.store.put(record)

    def _is_vault(self, resource_id: str) -> bool:
        record = self.store.get(resource_id)
        return record is not None and str(record.get("type", "")).lower() == VAULT_TYPE.lower()


def register(router: Router, ctx: ProviderContext) -> DataProtectionProvider:
    provider = DataProtectionProvider(ctx)
    routes = router.provider(NAMESPACE, API_VERSIONS)
    _register_vaults(routes, provider)
    _register_instances(routes, provider)
    _register_operations(routes, provider)
    ctx.add_move_guard(provider.guard_move)
    ctx.on_moved(provider.after_move)
    return provider


def _register_vaults(routes: ProviderRoutes, p: DataProtectionProvider) -> None:
    routes.add("PUT", VAULT, p.put_vault)
    routes.add("GET", VAULT, p.get_vault)
    routes.add("PATCH", VAULT, p.patch_vault)
    routes.add("DELETE", VAULT, p.delete_vault)
    routes.add("GET", SUB + "/providers/Microsoft.DataProtection/backupVaults", p.list_vaults_in_subscription)
    routes.add("GET", GROUP + "/providers/Microsoft.DataProtection/backupVaults", p.list_vaults_in_group)
    policy = VAULT + "/backupPolicies/{backupPolicyName}"
    routes.add("PUT", policy, p.put_policy)
    routes.add("GET", policy, p.get_policy)
    routes.add("DELETE", policy, p.delete_policy)
    routes.add("GET", VAULT + "/backupPolicies", p.list_policies)


def _register_instances(routes: ProviderRoutes, p: DataProtectionProvider) -> None:
    routes.add("POST", VAULT + "/validateForBackup", p.validate_for_backup,
               operation="Microsoft.DataProtection/backupVaults/validateForBackup/action")
    instance = VAULT + "/backupInstances/{backupInstanceName}"
    routes.add("PUT", instance, p.put_instance)
    routes.add("GET", instance, p.get_instance)
    routes.add("DELETE", instance, p.delete_instance)
    routes.add("GET", VAULT + "/backupInstances", p.list_instances)
    for action in rules.TRANSITIONS:
        routes.add("POST", f"{instance}/{action}", p.instance_action(action),
                   operation=f"Microsoft.DataProtection/backupVaults/backupInstances/{action}/action")
    routes.add("POST", f"{instance}/sync", p.sync_instance,
               operation="Microsoft.DataProtection/backupVaults/backupInstances/sync/action")
    deleted = VAULT + "/deletedBackupInstances/{backupInstanceName}"
    routes.add("GET", deleted, p.get_deleted)
    routes.add("GET", VAULT + "/deletedBackupInstances", p.list_deleted)
    routes.add("POST", deleted + "/undelete", p.undelete,
               operation="Microsoft.DataProtection/backupVaults/deletedBackupInstances/undelete/action")
    proxy = VAULT + "/backupResourceGuardProxies/{resourceGuardProxyName}"
    routes.add("PUT", proxy, p.put_proxy)
    routes.add("GET", proxy, p.get_proxy)
    routes.add("DELETE", proxy, p.delete_proxy)
    routes.add("GET", VAULT + "/backupResourceGuardProxies", p.list_proxies)
    routes.add("POST", proxy + "/unlockDelete", p.unlock_delete,
               operation="Microsoft.DataProtection/backupVaults/backupResourceGuardProxies/unlockDelete/action")


def _register_operations(routes: ProviderRoutes, p: DataProtectionProvider) -> None:
    for status in (LOCATION + "/operationStatus/{operationId}",
                   GROUP + "/providers/Microsoft.DataProtection/operationStatus/{operationId}",
                   VAULT + "/operationStatus/{operationId}"):
        routes.add("GET", status, p.operation_status, events=False)
    for result in (LOCATION + "/operationResults/{operationId}",
                   GROUP + "/providers/Microsoft.DataProtection/operationResults/{operationId}"):
        routes.add("GET", result, p.operation_result, events=False)
    routes.add("GET", VAULT + "/operationResults/{operationId}", p.vault_operation_result, events=False)
    routes.add("GET", VAULT + "/backupInstances/{backupInstanceName}/operationResults/{operationId}",
               p.instance_operation_result, events=False)
