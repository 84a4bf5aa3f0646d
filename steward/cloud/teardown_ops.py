"""The teardown's adapters: read a vault's inventory and perform one idempotent step on one target.

Every effect reads first and does only what is missing; a delete that finds nothing is a success. Clients
come only from :class:`steward.cloud.clients.CloudClients`; SDK exceptions become the app's errors in one
place (``steward.cloud.errors.translate``) and permanent refusals become :class:`TeardownRefusal` here
(:func:`refusal_of`), so activities can hand them to the orchestrator as data.

Where the SDK has no long-running poller for an operation that answers 202 (protected item delete, container
unregister) or no client at all (Site Recovery: ``azure-mgmt-recoveryservicessiterecovery`` is not a
dependency), the adapter sends the request through the Recovery Services client's own pipeline
(``send_request``: same credential, retry policy and endpoint) and polls ``Azure-AsyncOperation`` /
``Location`` itself, honouring ``retry-after-ms`` / ``Retry-After`` with a bound. An operation that outlives
the activity's budget raises :class:`TeardownStillRunning` (transient): the retry reads and resumes. The saga's
activities call those effects with ``wait=False``: they send and hand the operation back (:class:`OperationPending`),
and the orchestrator follows it on durable timers (``operation_status``, ``complete``).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Final

from azure.core.exceptions import AzureError, HttpResponseError
from azure.core.rest import HttpRequest

from steward.cloud import azure_time
from steward.cloud import teardown_arm as arm
from steward.cloud.clients import CloudClients
from steward.cloud.errors import AzureRefusal, CloudError, NotFound, TransientAzureError, translate
from steward.cloud.protection import SubscriptionReader
from steward.cloud.teardown_errors import RefusalKind, TeardownRefusal, TeardownStillRunning
from steward.cloud.throttle import retry_after
from steward.cloud.wire import wire
from steward.domain.errors import SERVER_SIDE_CODES, StewardError
from steward.domain.teardown import (
    BackupInstance,
    BackupItem,
    BackupPolicy,
    ContainerKind,
    ItemState,
    PrivateEndpointConnection,
    ProtectionContainer,
    ProtectionIntent,
    RegisteredServer,
    SiteRecoveryKind,
    SiteRecoveryObject,
    SoftDeleteState,
    VaultInventory,
    VaultKind,
    VaultObject,
    VaultRef,
    VaultSettings,
    format_time,
)

LOG = logging.getLogger("steward.teardown")

#: Site Recovery is spoken over raw REST (no SDK dependency); the version of its REST spec we follow.
SITE_RECOVERY_API_VERSION: Final = "2025-08-01"
RECOVERY_SERVICES_API_VERSION: Final = "2025-02-01"
DATA_PROTECTION_API_VERSION: Final = "2025-07-01"
#: how complete() reads back a target whose operation is not its deletion
STOPPED_OUTCOME: Final = "stopped"
VAULT_OUTCOME: Final = "vault-deleted"
#: Microsoft.Authorization api-version for the app's own effective permissions (Permissions_ListForResource)
AUTHORIZATION_API_VERSION: Final = "2022-04-01"
#: Unregistering a storage account from a vault needs Storage Account Contributor on the account
#: (MicrosoftDocs/azure-docs backup/backup-rbac-rs-vault.md); the action checked for it is inferred.
STORAGE_UNREGISTER_ACTION: Final = "Microsoft.Storage/storageAccounts/write"
#: Microsoft.Network api-version for deleting a private endpoint through the generic resources API
NETWORK_API_VERSION: Final = "2024-05-01"
#: Containers are listed per backup management type (the service requires the filter).
CONTAINER_MANAGEMENT_TYPES: Final = ("AzureWorkload", "AzureStorage", "MAB", "DPM", "AzureBackupServer", "AzureIaasVM")
_MUA_CODES: Final = frozenset({"BMSUserErrorCriticalOperationNotAuthorizedByResourceGuard"})
_IMMUTABLE_CODES: Final = frozenset(
    {"BMSUserErrorOperationNotAllowedOnLockedImmutableVault", "BMSUserErrorImmutabilityLockedCannotBeChanged"}
)
_ALWAYS_ON_CODES: Final = frozenset({"BMSUserErrorDisablingSoftDeleteStateNotAllowed"})
#: The Resource Guard requests a critical request names (``{guard}/{request}/default`` in the proxy's
#: ``resourceGuardOperationDetails``): azure-cli backup ``custom_help.operation_name_map`` ("disableSoftDelete",
#: "deleteProtection") and the dataprotection extension's ``operation_request_map`` ("DeleteBackupInstance").
DISABLE_SOFT_DELETE_REQUEST: Final = "disableSoftDeleteRequests"
DELETE_ITEM_REQUEST: Final = "deleteProtectedItemRequests"
DELETE_INSTANCE_REQUEST: Final = "deleteBackupInstanceRequests"
_NOT_EMPTY_CODES: Final = frozenset(
    {"ServiceResourceNotEmptyWithContainerDetails", "ServiceResourceNotEmptyWithBackendMessage"}
)


def refusal_of(error: CloudError) -> TeardownRefusal:
    """The one mapping from a permanent Azure error to the teardown's decision."""
    code = error.code or ""
    text = error.message.lower()
    if code in _MUA_CODES or "resource guard" in text:
        kind = RefusalKind.NEEDS_SECURITY_APPROVAL
    elif error.status == 403 or code in ("AuthorizationFailed", "LinkedAuthorizationFailed"):
        kind = RefusalKind.MISSING_PERMISSION
    elif code in _IMMUTABLE_CODES or "immutab" in text:
        kind = RefusalKind.IMMUTABILITY_LOCKED
    elif code in _ALWAYS_ON_CODES or "alwayson" in text.replace(" ", "").replace("-", ""):
        kind = RefusalKind.ALWAYS_ON
    elif code in _NOT_EMPTY_CODES or "cannot be deleted" in text:
        kind = RefusalKind.NOT_EMPTY
    else:
        kind = RefusalKind.REFUSED
    return TeardownRefusal(kind, error.message, code=error.code, status=error.status)


@dataclass(frozen=True)
class Effect:
    """What one step did to one target. ``effect`` is a verb in the past tense or ``unchanged``."""

    target_type: str
    id: str
    name: str
    effect: str
    detail: str = ""
    purge_at: datetime | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "type": self.target_type,
            "id": self.id,
            "name": self.name,
            "effect": self.effect,
            "detail": self.detail,
            "purgeAt": format_time(self.purge_at),
        }


class OperationPending(StewardError):
    """Send and await are split (``wait=False``): the request went out and Azure answered 201/202 with an
    operation to follow, or (``resend``) Azure asked to send it again later. The activity hands ``operation`` to
    the orchestrator, which waits on a durable timer (``retryAfter``) and asks :meth:`TeardownOps.operation_status`,
    so no activity ever waits for minutes (``functionTimeout`` in host.json is 10 minutes)."""

    def __init__(self, operation: Mapping[str, Any]) -> None:
        super().__init__(str(operation.get("what") or "operation pending"))
        self.operation = dict(operation)


#: another protection operation runs on the item (Azure's answer to a second delete while the first one runs)
CONFLICTING_OPERATION: Final = "BMSUserErrorConflictingProtectionOperation"
#: An LRO that ended ``Failed`` with one of these codes is worth another try: it failed on Azure's side, or
#: ("Another protection operation is in progress for item ...") it goes away when that other one ends.
_SERVER_SIDE_CODES: Final = SERVER_SIDE_CODES | {CONFLICTING_OPERATION}


def _translate(error: AzureError) -> CloudError:
    """``steward.cloud.errors.translate`` plus: a long-running operation that failed server-side is transient."""
    translated = translate(error)
    if isinstance(translated, AzureRefusal) and translated.code in _SERVER_SIDE_CODES:
        return TransientAzureError(translated.message, status=translated.status, code=translated.code)
    return translated


def _call(fn: Callable[[], Any]) -> Any:
    """Run one SDK call; SDK exceptions become the app's errors (the one translation point)."""
    try:
        return fn()
    except AzureError as error:
        raise _translate(error) from error


def _quiet_not_found(fn: Callable[[], Any]) -> Any:
    try:
        return _call(fn)
    except NotFound:
        return None


class TeardownOps:
    """Facts and effects of a vault teardown, against ARM through the app's SDK clients."""

    def __init__(
        self,
        clients: CloudClients,
        *,
        wait_budget_seconds: float = 420.0,
        max_poll_seconds: float = 20.0,
        sleep: Callable[[float], None] = azure_time.sleep,
        monotonic: Callable[[], float] = azure_time.monotonic,
    ) -> None:
        self._clients = clients
        self._budget = wait_budget_seconds
        self._max_poll = max_poll_seconds
        self._sleep = sleep
        self._monotonic = monotonic
        self._interval = clients.target.polling_interval

    @property
    def clients(self) -> CloudClients:
        return self._clients

    # ------------------------------------------------------------------------------------------- raw REST

    def _rest(
        self,
        vault: VaultRef,
        method: str,
        url: str,
        *,
        body: Mapping[str, Any] | None = None,
        api_version: str = RECOVERY_SERVICES_API_VERSION,
    ) -> Any:
        """One request through the Recovery Services client's pipeline; returns the HTTP response."""
        client = self._clients.recovery_services(vault.subscription_id)
        if "api-version=" not in url:
            url += ("&" if "?" in url else "?") + f"api-version={api_version}"
        request = HttpRequest(method, url, json=dict(body) if body is not None else None)
        try:
            response = client.send_request(request)
            response.raise_for_status()
        except AzureError as error:
            raise _translate(error) from error
        return response

    def _rest_list(self, vault: VaultRef, url: str, *, api_version: str) -> Iterator[dict[str, Any]]:
        next_url: str | None = url
        while next_url:
            response = self._rest(vault, "GET", next_url, api_version=api_version)
            page = response.json() if response.text() else {}
            yield from page.get("value") or []
            next_url = page.get("nextLink")

    def _await(self, vault: VaultRef, response: Any, what: str, *, wait: bool = True, outcome: str = "") -> None:
        """Follow a 201/202's ``Azure-AsyncOperation`` (or ``Location``) until the operation ends; with
        ``wait=False`` hand it to the orchestrator instead (:class:`OperationPending`)."""
        if response is None or response.status_code not in (201, 202):
            return
        headers = {k.lower(): v for k, v in response.headers.items()}
        status_url = headers.get("azure-asyncoperation")
        location = headers.get("location")
        if not status_url and not location:
            return
        if not wait:
            raise OperationPending(
                {
                    "statusUrl": status_url,
                    "location": location,
                    "retryAfter": retry_after(headers),
                    "what": what,
                    "outcome": outcome,  # how complete() reads the target back when it is not plain deletion
                }
            )
        deadline = self._monotonic() + self._budget
        while True:
            self._sleep(self._poll_delay(headers))
            done, headers = self._poll_once(vault, status_url, location, what)
            if done:
                return
            if self._monotonic() > deadline:
                raise TeardownStillRunning(f"{what} is still running after {self._budget:.0f} s; will check again")

    def _poll_once(
        self, vault: VaultRef, status_url: str | None, location: str | None, what: str
    ) -> tuple[bool, dict[str, str]]:
        """One look at an operation: ``(ended, headers)``; an operation that ended badly raises (a refusal, or
        transient when it failed on Azure's side)."""
        if status_url:
            polled = self._rest(vault, "GET", status_url)
            headers = {k.lower(): v for k, v in polled.headers.items()}
            body = polled.json() if polled.text() else {}
            status = str(body.get("status") or "").lower()
            if status not in ("succeeded", "failed", "canceled", "cancelled"):
                return False, headers
            if status != "succeeded":
                error = body.get("error") or {}
                if error.get("code") in _SERVER_SIDE_CODES or not error.get("code"):
                    raise TransientAzureError(f"{what} ended {status}: {error.get('message') or 'no detail'}")
                message = str(error.get("message") or f"{what} ended {status}")
                raise refusal_of(AzureRefusal(message, status=400, code=error.get("code")))
            return True, headers
        if location:
            polled = self._rest(vault, "GET", location)
            headers = {k.lower(): v for k, v in polled.headers.items()}
            return polled.status_code in (200, 204), headers
        return True, {}

    def operation_status(self, vault: VaultRef, operation: Mapping[str, Any]) -> dict[str, Any]:
        """One poll of an operation an activity started (:class:`OperationPending`): ``{"state": "running" |
        "succeeded", "retryAfter": seconds}``. A failed operation raises like :meth:`_await` does."""
        what = str(operation.get("what") or "operation")
        try:
            done, headers = self._poll_once(vault, operation.get("statusUrl"), operation.get("location"), what)
        except TransientAzureError as error:
            # The operation ended Failed on Azure's side (InternalServerError, ...): polling it again can only
            # say so again; the orchestrator sends the effect anew (a new operation), as the SDK-poller path
            # did by retrying the whole activity. Found by the chaos run (seeds 3 and 5).
            return {"state": "failed", "message": str(error), "retryAfter": 60.0}
        return {"state": "succeeded" if done else "running", "retryAfter": retry_after(headers)}

    def complete(self, vault: VaultRef, target: Any, operation: Mapping[str, Any] | None = None) -> Effect:
        """What an operation that :meth:`operation_status` saw succeed did to its target (read back)."""
        outcome = str((operation or {}).get("outcome") or "")
        if outcome == VAULT_OUTCOME or (isinstance(target, VaultObject)):
            return self._vault_outcome(VaultRef.parse(target.id))
        if isinstance(target, BackupInstance) and outcome == STOPPED_OUTCOME:
            current = self._instance(vault, target)
            if current is None:
                return Effect(target.type_name, target.id, target.name, "already-gone")
            if current.state is ItemState.PROTECTED:
                raise TeardownStillRunning(f"backup instance {target.name} is still protected")
            return Effect(target.type_name, target.id, target.name, "stopped")
        if isinstance(target, BackupInstance):
            return self._instance_outcome(vault, target)
        if isinstance(target, BackupItem):
            return self._item_outcome(vault, target)
        if isinstance(target, ProtectionContainer):
            return self._container_outcome(vault, target)
        if isinstance(target, SiteRecoveryObject):
            try:
                self._rest(vault, "GET", target.id, api_version=SITE_RECOVERY_API_VERSION)
            except NotFound:
                return Effect(target.type_name, target.id, target.name, "removed", target.kind.value)
            raise TeardownStillRunning(f"{target.kind.value} {target.name} is still there after its removal")
        raise TypeError(f"no split operation for a {type(target).__name__}")

    def _poll_delay(self, headers: Mapping[str, str]) -> float:
        if "retry-after-ms" in headers:
            try:
                return min(self._max_poll, max(0.0, float(headers["retry-after-ms"]) / 1000))
            except ValueError:
                pass
        try:
            return min(self._max_poll, max(0.0, float(headers.get("retry-after", "1"))))
        except ValueError:
            return 1.0

    @staticmethod
    def _capture(pipeline_response: Any, deserialized: Any, headers: Any) -> Any:
        del deserialized, headers
        return pipeline_response.http_response

    # ------------------------------------------------------------------------------------------- facts

    def inventory(self, vault: VaultRef, observed_at: datetime) -> VaultInventory:
        if vault.kind is VaultKind.RECOVERY_SERVICES:
            return self._recovery_services_inventory(vault, observed_at)
        return self._backup_vault_inventory(vault, observed_at)

    def _denied(self, denied: list[str], operation: str, fn: Callable[[], Any], default: Any) -> Any:
        try:
            return _call(fn)
        except NotFound:
            return default
        except AzureRefusal as error:
            if error.status == 403:
                denied.append(operation)
                return default
            raise

    def _recovery_services_inventory(self, vault: VaultRef, observed_at: datetime) -> VaultInventory:
        rs = self._clients.recovery_services(vault.subscription_id)
        bk = self._clients.recovery_services_backup(vault.subscription_id)
        rg, name = vault.resource_group, vault.name
        body = _quiet_not_found(lambda: wire(rs.vaults.get(rg, name)))
        if body is None:
            return VaultInventory(vault.id, vault.kind, exists=False, observed_at=observed_at)
        denied: list[str] = []
        config = self._denied(
            denied, "backupconfig/read", lambda: wire(bk.backup_resource_vault_configs.get(name, rg)), None
        )
        proxies = self._denied(
            denied,
            "backupResourceGuardProxies/read",
            lambda: [wire(p) for p in bk.resource_guard_proxies.get(name, rg)],
            [],
        )
        items = self._denied(
            denied,
            "backupProtectedItems/read",
            lambda: [arm.backup_item(wire(i)) for i in bk.backup_protected_items.list(name, rg)],
            [],
        )
        containers: dict[str, ProtectionContainer] = {}
        storage_accounts: set[str] = set()

        def containers_of(management: str) -> list[ProtectionContainer]:
            listed = [wire(c) for c in bk.backup_protection_containers.list(
                name, rg, filter=f"backupManagementType eq '{management}'"
            )]
            found = [arm.protection_container(c) for c in listed]
            storage_accounts.update(
                str((c.get("properties") or {}).get("sourceResourceId") or "")
                for c, parsed in zip(listed, found, strict=True)
                if parsed.kind is ContainerKind.STORAGE and not parsed.soft_deleted
            )
            return found

        for management in CONTAINER_MANAGEMENT_TYPES:
            found = self._denied(
                denied, "backupProtectionContainers/read", lambda m=management: containers_of(m), []  # type: ignore[misc]
            )
            for container in found:
                containers.setdefault(container.id.lower(), container)
        for account in sorted(a for a in storage_accounts if a):
            if not self._may(account, STORAGE_UNREGISTER_ACTION):
                denied.append(
                    f"{STORAGE_UNREGISTER_ACTION} on {account} (Storage Account Contributor on the storage account is "
                    "needed to unregister it from the vault)"
                )
        intents = self._denied(
            denied,
            "backupProtectionIntents/read",
            lambda: [arm.protection_intent(wire(i)) for i in bk.backup_protection_intent.list(name, rg)],
            [],
        )
        engines = self._denied(
            denied,
            "backupEngines/read",
            lambda: [arm.backup_engine(wire(e)) for e in bk.backup_engines.list(name, rg)],
            [],
        )
        servers = self._servers(list(containers.values()), engines)
        props = body.get("properties") or {}
        endpoints = [arm.private_endpoint_connection(p) for p in props.get("privateEndpointConnections") or []]
        if not endpoints:
            endpoints = self._denied(
                denied,
                "privateEndpointConnections/read",
                lambda: [
                    arm.private_endpoint_connection(p)
                    for p in self._rest_list(
                        vault, f"{vault.id}/privateEndpointConnections", api_version=RECOVERY_SERVICES_API_VERSION
                    )
                ],
                [],
            )
        settings = self._guarded_by(arm.recovery_services_settings(body, config, mua_proxies=len(proxies)), proxies)
        return VaultInventory(
            vault_id=vault.id,
            kind=vault.kind,
            location=str(body.get("location") or ""),
            tags=tuple(sorted((str(k), str(v)) for k, v in (body.get("tags") or {}).items())),
            settings=settings,
            items=tuple(items),
            containers=tuple(containers.values()),
            intents=tuple(intents),
            servers=tuple(servers),
            site_recovery=tuple(self._site_recovery(vault, denied)),
            private_endpoints=tuple(endpoints),
            access_denied=tuple(denied),
            observed_at=observed_at,
        )

    @staticmethod
    def _servers(containers: list[ProtectionContainer], engines: list[RegisteredServer]) -> list[RegisteredServer]:
        servers = {s.name.lower(): s for s in engines}
        for container in containers:
            if container.kind in (ContainerKind.MARS, ContainerKind.DPM, ContainerKind.MABS):
                servers.setdefault(container.name.lower(), arm.registered_server_from_container(container))
        return list(servers.values())

    def _site_recovery(self, vault: VaultRef, denied: list[str]) -> list[SiteRecoveryObject]:
        def listing(url: str, kind: SiteRecoveryKind) -> list[SiteRecoveryObject]:
            try:
                return [
                    arm.site_recovery_object(o, kind)
                    for o in self._rest_list(vault, url, api_version=SITE_RECOVERY_API_VERSION)
                ]
            except NotFound:
                return []
            except AzureRefusal as error:
                if error.status == 403:
                    denied.append("replicationFabrics/read")
                    return []
                raise

        found: list[SiteRecoveryObject] = []
        fabrics = listing(f"{vault.id}/replicationFabrics", SiteRecoveryKind.FABRIC)
        found += fabrics
        for fabric in fabrics:
            containers = listing(f"{fabric.id}/replicationProtectionContainers", SiteRecoveryKind.PROTECTION_CONTAINER)
            found += containers
            for container in containers:
                found += listing(f"{container.id}/replicationProtectedItems", SiteRecoveryKind.REPLICATED_ITEM)
                found += listing(
                    f"{container.id}/replicationProtectionContainerMappings", SiteRecoveryKind.CONTAINER_MAPPING
                )
        if fabrics:
            found += listing(f"{vault.id}/replicationNetworkMappings", SiteRecoveryKind.NETWORK_MAPPING)
        return found

    def _backup_vault_inventory(self, vault: VaultRef, observed_at: datetime) -> VaultInventory:
        dp = self._clients.data_protection(vault.subscription_id)
        rg, name = vault.resource_group, vault.name
        body = _quiet_not_found(lambda: wire(dp.backup_vaults.get(rg, name)))
        if body is None:
            return VaultInventory(vault.id, vault.kind, exists=False, observed_at=observed_at)
        denied: list[str] = []
        instances = self._denied(
            denied,
            "backupInstances/read",
            lambda: [arm.backup_instance(wire(i)) for i in dp.backup_instances.list(rg, name)],
            [],
        )
        deleted = self._denied(
            denied,
            "deletedBackupInstances/read",
            lambda: [arm.backup_instance(wire(i), deleted=True) for i in dp.deleted_backup_instances.list(rg, name)],
            [],
        )
        known = {i.id.lower() for i in instances}
        instances += [d for d in deleted if d.id.lower() not in known]
        policies = self._denied(
            denied,
            "backupPolicies/read",
            lambda: [arm.backup_policy(wire(p)) for p in dp.backup_policies.list(rg, name)],
            [],
        )
        try:
            proxies = [wire(p) for p in _call(lambda: list(dp.dpp_resource_guard_proxy.list(rg, name)))]
        except (NotFound, AzureRefusal):
            proxies = []
        return VaultInventory(
            vault_id=vault.id,
            kind=vault.kind,
            location=str(body.get("location") or ""),
            tags=tuple(sorted((str(k), str(v)) for k, v in (body.get("tags") or {}).items())),
            settings=self._guarded_by(arm.backup_vault_settings(body, mua_proxies=len(proxies)), proxies),
            instances=tuple(instances),
            policies=tuple(policies),
            access_denied=tuple(denied),
            observed_at=observed_at,
        )

    # ------------------------------------------------------------------------------------------- settings

    def set_setting(self, vault: VaultRef, setting: str, value: str) -> Effect:
        """Set ``softDelete`` / ``enhancedSecurity`` / ``immutability`` to ``value`` (idempotent)."""
        try:
            if vault.kind is VaultKind.RECOVERY_SERVICES:
                changed = self._set_rs_setting(vault, setting, value)
            else:
                changed = self._set_bv_setting(vault, setting, value)
        except AzureRefusal as error:
            raise refusal_of(error) from error
        return Effect("vault", vault.id, vault.name, "changed" if changed else "unchanged", f"{setting}={value}")

    def _set_rs_setting(self, vault: VaultRef, setting: str, value: str) -> bool:
        bk = self._clients.recovery_services_backup(vault.subscription_id)
        rs = self._clients.recovery_services(vault.subscription_id)
        rg, name = vault.resource_group, vault.name
        if setting in ("softDelete", "enhancedSecurity"):
            config = arm._props(wire(_call(lambda: bk.backup_resource_vault_configs.get(name, rg))))
            field = "softDeleteFeatureState" if setting == "softDelete" else "enhancedSecurityState"
            if str(config.get(field) or "").lower() == value.lower():
                return False
            config_body: Any = {"properties": vault_config_for_put(config, field, value)}
            if value.lower() == "disabled":
                # MUA: the weakening PUT names the guarded operation (azure-cli set_backup_properties)
                requests = self._guard_requests(vault, DISABLE_SOFT_DELETE_REQUEST)
                if requests:
                    config_body["properties"]["resourceGuardOperationRequests"] = requests
            _call(lambda: bk.backup_resource_vault_configs.put(name, rg, config_body))
            return True
        if setting == "immutability":
            body = wire(_call(lambda: rs.vaults.get(rg, name)))
            state = (((body.get("properties") or {}).get("securitySettings") or {}).get("immutabilitySettings") or {})
            if str(state.get("state") or "Disabled").lower() == value.lower():
                return False
            patch: Any = {"properties": {"securitySettings": {"immutabilitySettings": {"state": value}}}}
            _call(lambda: rs.vaults.begin_update(rg, name, patch, polling_interval=self._interval).result())
            return True
        raise ValueError(f"unknown vault setting {setting!r}")

    def _set_bv_setting(self, vault: VaultRef, setting: str, value: str) -> bool:
        dp = self._clients.data_protection(vault.subscription_id)
        rg, name = vault.resource_group, vault.name
        body = wire(_call(lambda: dp.backup_vaults.get(rg, name)))
        security = (body.get("properties") or {}).get("securitySettings") or {}
        patch: Any
        if setting == "softDelete":
            current = security.get("softDeleteSettings") or {}
            wanted = {"enabled": "On", "disabled": "Off", "alwayson": "AlwaysOn"}.get(value.lower(), value)
            if arm.soft_delete_state(current.get("state")) is arm.soft_delete_state(wanted):
                return False
            patch = {
                "properties": {
                    "securitySettings": {
                        "softDeleteSettings": {
                            "state": wanted,
                            "retentionDurationInDays": current.get("retentionDurationInDays") or 14,
                        }
                    }
                }
            }
        elif setting == "immutability":
            current = security.get("immutabilitySettings") or {}
            if str(current.get("state") or "Disabled").lower() == value.lower():
                return False
            patch = {"properties": {"securitySettings": {"immutabilitySettings": {"state": value}}}}
        else:
            raise ValueError(f"a Backup vault has no setting {setting!r}")
        _call(lambda: dp.backup_vaults.begin_update(rg, name, patch, polling_interval=self._interval).result())
        return True

    # ------------------------------------------------------------------------------------------- items

    def _get_item(self, vault: VaultRef, item: BackupItem) -> BackupItem | None:
        bk = self._clients.recovery_services_backup(vault.subscription_id)
        body = _quiet_not_found(
            lambda: wire(
                bk.protected_items.get(vault.name, vault.resource_group, item.fabric, item.container, item.name)
            )
        )
        return None if body is None else arm.backup_item(body)

    def undelete_item(self, vault: VaultRef, item: BackupItem) -> Effect:
        current = self._get_item(vault, item)
        if current is None:
            return Effect(item.type_name, item.id, item.name, "already-gone")
        if current.state is not ItemState.SOFT_DELETED:
            return Effect(item.type_name, item.id, item.name, "unchanged", "not soft-deleted")
        bk = self._clients.recovery_services_backup(vault.subscription_id)
        body: Any = {
            "properties": {
                "protectedItemType": current.item_type or item.item_type,
                "protectionState": "ProtectionStopped",
                "sourceResourceId": current.source_resource_id or item.source_resource_id,
                "isRehydrate": True,
            }
        }
        try:
            _call(
                lambda: bk.protected_items.begin_create_or_update(
                    vault.name,
                    vault.resource_group,
                    item.fabric,
                    item.container,
                    item.name,
                    body,
                    polling_interval=self._interval,
                ).result()
            )
        except AzureRefusal as error:
            raise refusal_of(error) from error
        return Effect(item.type_name, item.id, item.name, "undeleted", "back to stop-with-retained-data")

    def delete_item(self, vault: VaultRef, item: BackupItem, *, wait: bool = True) -> Effect:
        """Stop protection and delete the data. ``wait=False``: send only (:class:`OperationPending`)."""
        current = self._get_item(vault, item)
        if current is None:
            return Effect(item.type_name, item.id, item.name, "already-gone")
        if current.state is ItemState.SOFT_DELETED:
            return Effect(
                item.type_name, item.id, item.name, "soft-deleted", "already soft-deleted", current.deferred_delete_at
            )
        bk = self._clients.recovery_services_backup(vault.subscription_id)

        def delete() -> Any:
            return bk.protected_items.delete(
                vault.name, vault.resource_group, item.fabric, item.container, item.name, cls=self._capture
            )

        try:
            try:
                response = self._send_delete(vault, item, delete, wait=wait)
            except AzureRefusal as error:
                if refusal_of(error).kind is not RefusalKind.NEEDS_SECURITY_APPROVAL:
                    raise
                self._unlock_delete(vault, item.id, DELETE_ITEM_REQUEST)
                response = _call(delete)
            self._await(vault, response, f"deleting backup data of {item.name}", wait=wait)
        except NotFound:
            return Effect(item.type_name, item.id, item.name, "already-gone")
        except AzureRefusal as error:
            raise refusal_of(error) from error
        return self._item_outcome(vault, item)

    def _item_outcome(self, vault: VaultRef, item: BackupItem) -> Effect:
        after = self._get_item(vault, item)
        if after is None:
            return Effect(item.type_name, item.id, item.name, "deleted", "protection stopped, backup data deleted")
        if after.state is ItemState.SOFT_DELETED:
            return Effect(
                item.type_name,
                item.id,
                item.name,
                "soft-deleted",
                "protection stopped; data soft-deleted until its purge date",
                after.deferred_delete_at,
            )
        raise TeardownStillRunning(f"{item.name} is still {after.state.value} after the delete")

    def _send_delete(self, vault: VaultRef, item: BackupItem, delete: Callable[[], Any], *, wait: bool = True) -> Any:
        """Send the item's delete. While Azure answers that another protection operation runs on the item (after
        a crash that re-ran this activity, most likely our own delete, still deleting), wait for it within the
        budget instead of spending the step's retries (``wait=False``: ask the orchestrator to send it again
        later): None once the item is gone or soft-deleted."""
        deadline = self._monotonic() + self._budget
        while True:
            try:
                return _call(delete)
            except TransientAzureError as error:
                if getattr(error, "code", None) != CONFLICTING_OPERATION or self._monotonic() > deadline:
                    raise
                if not wait:
                    current = self._get_item(vault, item)
                    if current is None or current.state is ItemState.SOFT_DELETED:
                        return None
                    raise OperationPending(
                        {"resend": True, "retryAfter": 60.0, "what": f"deleting backup data of {item.name}"}
                    ) from error
            self._sleep(min(self._max_poll, max(self._interval, 1.0)))
            current = self._get_item(vault, item)
            if current is None or current.state is ItemState.SOFT_DELETED:
                return None

    def _may(self, scope: str, action: str) -> bool:
        """Whether the app's identity may perform ``action`` at ``scope``: its effective permissions there
        (``GET {scope}/providers/Microsoft.Authorization/permissions``, Permissions_ListForResource). A scope
        that is gone needs nothing; permissions the app cannot read count as missing."""
        match = re.match(r"/subscriptions/([^/]+)/", scope, flags=re.IGNORECASE)
        if match is None:
            return False
        client = self._clients.resources(match.group(1))
        url: str | None = (
            f"{scope}/providers/Microsoft.Authorization/permissions?api-version={AUTHORIZATION_API_VERSION}"
        )
        entries: list[Mapping[str, Any]] = []
        try:
            while url:
                request = HttpRequest("GET", url)

                def send(request: HttpRequest = request) -> Any:
                    response = client.send_request(request)
                    response.raise_for_status()
                    return response

                page = _call(send).json()
                entries += [e for e in page.get("value") or [] if isinstance(e, Mapping)]
                url = page.get("nextLink")
        except NotFound:
            return True
        except AzureRefusal:
            return False
        return permits(entries, action)

    def _guarded_by(self, settings: VaultSettings, proxies: list[dict[str, Any]]) -> VaultSettings:
        """The settings with the Resource Guard the vault's proxy names (MUA), so a plan can say whose grant it
        needs, and whether that guard is in another tenant: ARM answers a token from the app's tenant with
        ``InvalidAuthenticationTokenTenant`` for a subscription of another tenant (the same check the protection
        flow makes). Then Azure needs an auxiliary token the app cannot get (the plan says so)."""
        guard = next((str((p.get("properties") or {}).get("resourceGuardResourceId") or "") for p in proxies), "")
        other_tenant = False
        match = re.match(r"/subscriptions/([^/]+)/", guard, flags=re.IGNORECASE)
        if match:
            try:
                other_tenant = SubscriptionReader(self._clients).tenants([match.group(1)]).get(
                    match.group(1).lower(), ""
                ) is None
            except (CloudError, AzureError) as error:  # not readable for another reason: say nothing more
                LOG.info("could not read the Resource Guard's subscription: %s", error)
        return replace(settings, resource_guard_id=guard or None, resource_guard_other_tenant=other_tenant)

    def _proxies(self, vault: VaultRef) -> list[dict[str, Any]]:
        """The vault's resource guard proxies (MUA), either vault kind."""
        rg, name = vault.resource_group, vault.name
        if vault.kind is VaultKind.RECOVERY_SERVICES:
            bk = self._clients.recovery_services_backup(vault.subscription_id)
            return [wire(p) for p in _call(lambda: list(bk.resource_guard_proxies.get(name, rg)))]
        dp = self._clients.data_protection(vault.subscription_id)
        return [wire(p) for p in _call(lambda: list(dp.dpp_resource_guard_proxy.list(rg, name)))]

    def _guard_requests(self, vault: VaultRef, request: str, proxy: Mapping[str, Any] | None = None) -> list[str]:
        """The proxy's ``defaultResourceRequest`` for one guarded operation (``…/{request}/default``), matched by
        the request's name as the dataprotection CLI extension's ``operation_request_map`` and PowerShell's
        ``Unlock-AzDataProtectionResourceGuardOperation`` example do; no other operation's request."""
        proxies = [proxy] if proxy is not None else self._proxies(vault)
        found: list[str] = []
        for each in proxies:
            for op in (each.get("properties") or {}).get("resourceGuardOperationDetails") or []:
                default = str(op.get("defaultResourceRequest") or "") if isinstance(op, Mapping) else ""
                if f"/{request.lower()}/" in default.lower() + "/" and default not in found:
                    found.append(default)
        return found

    def _unlock_delete(self, vault: VaultRef, resource_id: str, request: str) -> None:
        """MUA: ask the resource guard proxy to unlock this one delete, naming only the delete's guarded operation
        (needs the security admin's grant; S-RSB/S-DP UnlockDeleteResourceGuardProxy.json)."""
        rg, name = vault.resource_group, vault.name
        if vault.kind is VaultKind.RECOVERY_SERVICES:
            unlocking = self._clients.recovery_services_backup(vault.subscription_id).resource_guard_proxy

            def send(proxy_name: str, body: Any) -> Any:
                return unlocking.unlock_delete(name, rg, proxy_name, body)

        else:
            dp_unlocking = self._clients.data_protection(vault.subscription_id).dpp_resource_guard_proxy

            def send(proxy_name: str, body: Any) -> Any:
                return dp_unlocking.unlock_delete(rg, name, proxy_name, body)

        for proxy in self._proxies(vault):
            body: Any = {
                "resourceGuardOperationRequests": self._guard_requests(vault, request, proxy),
                "resourceToBeDeleted": resource_id,
            }
            _call(functools.partial(send, str(proxy.get("name") or ""), body))

    # ------------------------------------------------------------------------------------------- containers

    def disable_intent(self, vault: VaultRef, intent: ProtectionIntent) -> Effect:
        bk = self._clients.recovery_services_backup(vault.subscription_id)
        exists = _quiet_not_found(
            lambda: bk.protection_intent.get(vault.name, vault.resource_group, intent.fabric, intent.name)
        )
        if exists is None:
            return Effect(intent.type_name, intent.id, intent.name, "already-gone")
        try:
            _call(lambda: bk.protection_intent.delete(vault.name, vault.resource_group, intent.fabric, intent.name))
        except NotFound:
            return Effect(intent.type_name, intent.id, intent.name, "already-gone")
        except AzureRefusal as error:
            raise refusal_of(error) from error
        return Effect(intent.type_name, intent.id, intent.name, "removed", "auto-protection intent disabled")

    def _get_container(self, vault: VaultRef, container: ProtectionContainer) -> ProtectionContainer | None:
        bk = self._clients.recovery_services_backup(vault.subscription_id)
        body = _quiet_not_found(
            lambda: wire(
                bk.protection_containers.get(vault.name, vault.resource_group, container.fabric, container.name)
            )
        )
        return None if body is None else arm.protection_container(body)

    def unregister_container(self, vault: VaultRef, container: ProtectionContainer, *, wait: bool = True) -> Effect:
        current = self._get_container(vault, container)
        if current is None:
            return Effect(container.type_name, container.id, container.name, "already-gone")
        if current.soft_deleted:
            return Effect(container.type_name, container.id, container.name, "soft-deleted", "with its items")
        bk = self._clients.recovery_services_backup(vault.subscription_id)
        try:
            response = _call(
                lambda: bk.protection_containers.unregister(
                    vault.name, vault.resource_group, container.fabric, container.name, cls=self._capture
                )
            )
            self._await(vault, response, f"unregistering {container.name}", wait=wait)
        except NotFound:
            return Effect(container.type_name, container.id, container.name, "already-gone")
        except AzureRefusal as error:
            raise refusal_of(error) from error
        return self._container_outcome(vault, container)

    def _container_outcome(self, vault: VaultRef, container: ProtectionContainer) -> Effect:
        after = self._get_container(vault, container)
        if after is not None and after.soft_deleted:
            return Effect(container.type_name, container.id, container.name, "soft-deleted", "with its items")
        if after is not None:
            raise TeardownStillRunning(f"{container.name} is still registered")
        return Effect(container.type_name, container.id, container.name, "unregistered")

    def unregister_server(self, vault: VaultRef, server: RegisteredServer | ProtectionContainer) -> Effect:
        rs = self._clients.recovery_services(vault.subscription_id)
        name = server.container if isinstance(server, RegisteredServer) and server.container else server.name
        try:
            _call(lambda: rs.registered_identities.delete(vault.resource_group, vault.name, name))
        except NotFound:
            return Effect(server.type_name, server.id, server.name, "already-gone")
        except AzureRefusal as error:
            raise refusal_of(error) from error
        return Effect(server.type_name, server.id, server.name, "unregistered", "server and its items removed")

    # ------------------------------------------------------------------------------------------- Site Recovery

    def remove_site_recovery(self, vault: VaultRef, obj: SiteRecoveryObject, *, wait: bool = True) -> Effect:
        """Purge (``DELETE``) items, mappings and fabrics; ``POST remove`` replication containers (only plans made
        before the teardown followed D-script, which never removes a container, still list them)."""
        try:
            self._rest(vault, "GET", obj.id, api_version=SITE_RECOVERY_API_VERSION)
        except NotFound:
            return Effect(obj.type_name, obj.id, obj.name, "already-gone")
        try:
            if obj.kind is SiteRecoveryKind.PROTECTION_CONTAINER:
                response = self._rest(vault, "POST", f"{obj.id}/remove", body={}, api_version=SITE_RECOVERY_API_VERSION)
            else:
                response = self._rest(vault, "DELETE", obj.id, api_version=SITE_RECOVERY_API_VERSION)
            self._await(vault, response, f"removing {obj.kind.value} {obj.name}", wait=wait)
        except NotFound:
            return Effect(obj.type_name, obj.id, obj.name, "already-gone")
        except AzureRefusal as error:
            raise refusal_of(error) from error
        return Effect(obj.type_name, obj.id, obj.name, "removed", obj.kind.value)

    # ------------------------------------------------------------------------------------------- endpoints

    def remove_private_endpoint(
        self, vault: VaultRef, connection: PrivateEndpointConnection, managed_subscriptions: Iterable[str] = ()
    ) -> Effect:
        """Remove the connection, then the private endpoint itself, as the official script does
        (``Remove-AzPrivateEndpointConnection`` then ``Remove-AzPrivateEndpoint``, D-script). Both idempotent: a
        re-run after a crash between the two still removes the endpoint. Deleting the endpoint needs
        ``Microsoft.Network/privateEndpoints/delete`` on its resource group; when the app's identity lacks it the
        endpoint is left and the effect says so (the vault's delete does not depend on it).

        The endpoint is deleted only in the vault's subscription or one of ``managed_subscriptions``
        (STEWARD_SUBSCRIPTIONS): a connection may name an endpoint of any subscription or tenant (a manual
        connection the vault's owner approved; MicrosoftDocs/azure-docs
        articles/private-link/private-endpoint-overview.md, "Access to a private link resource using approval
        workflow"). There the vault's side, the connection, is removed and the endpoint is its owner's to delete."""
        bk = self._clients.recovery_services_backup(vault.subscription_id)
        found = _quiet_not_found(
            lambda: bk.private_endpoint_connection.get(vault.name, vault.resource_group, connection.name)
        )
        try:
            if found is not None:
                _call(
                    lambda: bk.private_endpoint_connection.begin_delete(
                        vault.name, vault.resource_group, connection.name, polling_interval=self._interval
                    ).result()
                )
        except NotFound:
            found = None
        except AzureRefusal as error:
            raise refusal_of(error) from error
        allowed = {vault.subscription_id.lower(), *(s.strip().lower() for s in managed_subscriptions)}
        endpoint, left = self._delete_private_endpoint(connection.private_endpoint_id, allowed)
        if found is None and not endpoint:
            return Effect(connection.type_name, connection.id, connection.name, "already-gone")
        detail = (
            f"private endpoint {connection.private_endpoint_id} left in place: {left}"
            if left
            else f"connection and private endpoint {connection.private_endpoint_id or '?'} removed"
        )
        return Effect(connection.type_name, connection.id, connection.name, "removed", detail)

    def _delete_private_endpoint(self, endpoint_id: str | None, allowed: Collection[str]) -> tuple[bool, str]:
        """``(deleted, why_not)``: DELETE the ``Microsoft.Network/privateEndpoints`` resource if it exists and its
        subscription is one of ``allowed`` (lower-cased)."""
        match = re.match(r"/subscriptions/([^/]+)/resourceGroups/[^/]+/providers/Microsoft\.Network/privateEndpoints/",
                         endpoint_id or "", flags=re.IGNORECASE)
        if endpoint_id is None or match is None:
            return False, ""
        if match.group(1).lower() not in allowed:
            return False, (
                f"it is in subscription {match.group(1)}, outside STEWARD_SUBSCRIPTIONS: the app does not act there; "
                "the vault's connection is removed and the endpoint is its owner's to delete"
            )
        resources = self._clients.resources(match.group(1)).resources
        try:
            if not _call(lambda: resources.check_existence_by_id(endpoint_id, api_version=NETWORK_API_VERSION)):
                return False, ""
            _call(
                lambda: resources.begin_delete_by_id(
                    endpoint_id, api_version=NETWORK_API_VERSION, polling_interval=self._interval
                ).result()
            )
        except NotFound:
            return False, ""
        except AzureRefusal as error:
            if refusal_of(error).kind is RefusalKind.MISSING_PERMISSION:
                return False, (
                    "the app's identity may not delete it (needs Microsoft.Network/privateEndpoints/delete on its "
                    f"resource group): {error.message}"
                )
            raise refusal_of(error) from error
        return True, ""

    # ------------------------------------------------------------------------------------------- Backup vault

    def _instance(self, vault: VaultRef, instance: BackupInstance) -> BackupInstance | None:
        dp = self._clients.data_protection(vault.subscription_id)
        live = _quiet_not_found(lambda: wire(dp.backup_instances.get(vault.resource_group, vault.name, instance.name)))
        if live is not None:
            return arm.backup_instance(live)
        gone = _quiet_not_found(
            lambda: wire(dp.deleted_backup_instances.get(vault.resource_group, vault.name, instance.name))
        )
        return None if gone is None else arm.backup_instance(gone, deleted=True)

    def undelete_instance(self, vault: VaultRef, instance: BackupInstance) -> Effect:
        current = self._instance(vault, instance)
        if current is None:
            return Effect(instance.type_name, instance.id, instance.name, "already-gone")
        if current.state is not ItemState.SOFT_DELETED:
            return Effect(instance.type_name, instance.id, instance.name, "unchanged", "not soft-deleted")
        dp = self._clients.data_protection(vault.subscription_id)
        try:
            _call(
                lambda: dp.deleted_backup_instances.begin_undelete(
                    vault.resource_group, vault.name, instance.name, polling_interval=self._interval
                ).result()
            )
        except AzureRefusal as error:
            raise refusal_of(error) from error
        return Effect(instance.type_name, instance.id, instance.name, "undeleted")

    def stop_instance(self, vault: VaultRef, instance: BackupInstance, *, wait: bool = True) -> Effect:
        """Stop protection, retain data (``POST …/stopProtection``, an LRO). ``wait=False``: send only."""
        current = self._instance(vault, instance)
        if current is None:
            return Effect(instance.type_name, instance.id, instance.name, "already-gone")
        if current.state is not ItemState.PROTECTED:
            return Effect(instance.type_name, instance.id, instance.name, "unchanged", current.state.value)
        try:
            response = self._rest(vault, "POST", f"{vault.id}/backupInstances/{instance.name}/stopProtection",
                                  body={}, api_version=DATA_PROTECTION_API_VERSION)
            self._await(vault, response, f"stopping protection of {instance.name}", wait=wait,
                        outcome=STOPPED_OUTCOME)
        except NotFound:
            return Effect(instance.type_name, instance.id, instance.name, "already-gone")
        except AzureRefusal as error:
            raise refusal_of(error) from error
        return Effect(instance.type_name, instance.id, instance.name, "stopped")

    def delete_instance(self, vault: VaultRef, instance: BackupInstance, *, wait: bool = True) -> Effect:
        """Delete the instance (``DELETE``, an LRO; soft-deleted when the vault keeps deleted data).
        ``wait=False``: send only."""
        current = self._instance(vault, instance)
        if current is None:
            return Effect(instance.type_name, instance.id, instance.name, "already-gone")
        if current.state is ItemState.SOFT_DELETED:
            return Effect(instance.type_name, instance.id, instance.name, "soft-deleted", "", current.purge_at)

        def delete() -> Any:
            # by name: an instance undeleted by the saga is listed in the plan under deletedBackupInstances/
            return self._rest(
                vault, "DELETE", f"{vault.id}/backupInstances/{instance.name}", api_version=DATA_PROTECTION_API_VERSION
            )

        try:
            try:
                response = delete()
            except AzureRefusal as error:
                if refusal_of(error).kind is not RefusalKind.NEEDS_SECURITY_APPROVAL:
                    raise
                # MUA: unlockDelete for this instance naming only deleteBackupInstanceRequests (dataprotection CLI
                # extension operation_request_map "DeleteBackupInstance"), then the same delete again
                self._unlock_delete(vault, f"{vault.id}/backupInstances/{instance.name}", DELETE_INSTANCE_REQUEST)
                response = delete()
            self._await(vault, response, f"deleting backup instance {instance.name}", wait=wait)
        except NotFound:
            return Effect(instance.type_name, instance.id, instance.name, "already-gone")
        except AzureRefusal as error:
            raise refusal_of(error) from error
        return self._instance_outcome(vault, instance)

    def _instance_outcome(self, vault: VaultRef, instance: BackupInstance) -> Effect:
        after = self._instance(vault, instance)
        if after is not None and after.state is ItemState.SOFT_DELETED:
            return Effect(instance.type_name, instance.id, instance.name, "soft-deleted", "", after.purge_at)
        if after is not None:
            raise TeardownStillRunning(f"backup instance {instance.name} is still {after.state.value}")
        return Effect(instance.type_name, instance.id, instance.name, "deleted")

    def delete_policy(self, vault: VaultRef, policy: BackupPolicy) -> Effect:
        dp = self._clients.data_protection(vault.subscription_id)
        try:
            exists = _quiet_not_found(lambda: dp.backup_policies.get(vault.resource_group, vault.name, policy.name))
            if exists is None:
                return Effect(policy.type_name, policy.id, policy.name, "already-gone")
            _call(lambda: dp.backup_policies.delete(vault.resource_group, vault.name, policy.name))
        except AzureRefusal as error:
            raise refusal_of(error) from error
        return Effect(policy.type_name, policy.id, policy.name, "deleted")

    # ------------------------------------------------------------------------------------------- the vault

    def delete_vault(self, vault: VaultRef, *, wait: bool = True) -> Effect:
        """Delete the emptied vault (``DELETE``, 202 + ``Azure-AsyncOperation``/``Location`` or 204; S-RS
        ``DeleteVault.json``, S-DP ``DeleteBackupVault.json``). ``wait=False``: send only."""
        version = _vault_api_version(vault)
        try:
            try:
                self._rest(vault, "GET", vault.id, api_version=version)
            except NotFound:
                return Effect("vault", vault.id, vault.name, "already-gone")
            response = self._rest(vault, "DELETE", vault.id, api_version=version)
            self._await(vault, response, f"deleting vault {vault.name}", wait=wait, outcome=VAULT_OUTCOME)
        except NotFound:
            return Effect("vault", vault.id, vault.name, "already-gone")
        except AzureRefusal as error:
            raise refusal_of(error) from error
        return self._vault_outcome(vault)

    def _vault_outcome(self, vault: VaultRef) -> Effect:
        version = _vault_api_version(vault)
        try:
            self._rest(vault, "GET", vault.id, api_version=version)
        except NotFound:
            return Effect("vault", vault.id, vault.name, "deleted")
        raise TeardownStillRunning(f"vault {vault.name} still exists after its delete")


#: The writable properties of ``backupconfig/vaultconfig`` a PUT must carry (it replaces the whole config).
VAULT_CONFIG_WRITABLE: Final = ("softDeleteFeatureState", "enhancedSecurityState", "softDeleteRetentionPeriodInDays")


def vault_config_for_put(current: Mapping[str, Any], field: str, value: str) -> dict[str, Any]:
    """Read-modify-write: the config's writable properties as read, with ``field`` set to ``value``.

    ``BackupResourceVaultConfigs_Put`` replaces the config (ARM's resource provider contract; the spec does not
    make it a merge), so a PUT naming one field would reset the others to their defaults. The Azure CLI's
    ``set_backup_properties`` (azure-cli ``backup/custom.py``) reads the config and sends soft delete state,
    enhanced security state and retention back together; so do we. Read-only ones (``isSoftDeleteFeatureState
    Editable``, ``storageType``...) are left out.
    """
    body = {key: current[key] for key in VAULT_CONFIG_WRITABLE if current.get(key) is not None}
    body[field] = value
    return body


def _vault_api_version(vault: VaultRef) -> str:
    return RECOVERY_SERVICES_API_VERSION if vault.kind is VaultKind.RECOVERY_SERVICES else DATA_PROTECTION_API_VERSION


def permits(entries: Iterable[Mapping[str, Any]], action: str) -> bool:
    """ARM's evaluation of a permissions list: an entry whose ``actions`` match ``action`` (``*`` wildcards, any
    case) and whose ``notActions`` do not."""

    def matches(pattern: object) -> bool:
        regex = ".*".join(re.escape(part) for part in str(pattern).split("*"))
        return re.fullmatch(regex, action, flags=re.IGNORECASE) is not None

    return any(
        any(matches(p) for p in entry.get("actions") or [])
        and not any(matches(p) for p in entry.get("notActions") or [])
        for entry in entries
    )


def is_transient(error: BaseException) -> bool:
    """Errors the orchestration's retry options should retry."""
    return isinstance(error, TransientAzureError | TeardownStillRunning | HttpResponseError)


def describe(effects: Iterable[Effect]) -> str:
    return json.dumps([e.to_record() for e in effects])


__all__ = [
    "SITE_RECOVERY_API_VERSION",
    "Effect",
    "OperationPending",
    "SoftDeleteState",
    "TeardownOps",
    "describe",
    "is_transient",
    "refusal_of",
]
