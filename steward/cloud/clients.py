"""The one place that builds Azure SDK clients (ARM management clients, Resource Graph, Blob Storage, Event Grid
publishing, and the credentials they use).

Against Azure the clients use a managed identity (or DefaultAzureCredential) and the public ARM endpoint.
Against the local sandbox only two things change: the ARM endpoint (plus the CA bundle that trusts the
sandbox's certificate) and the credential, which fetches tokens from the sandbox's token endpoint. The
client classes, operations, pollers and serialisation are the very same.

API versions are pinned to the REST spec versions the project was built and checked against
(``docs/azure-facts.md``), not the SDK's moving default.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final

from azure.core.credentials import AccessToken, AccessTokenInfo, TokenCredential
from azure.core.pipeline.policies import RetryPolicy

from steward.cloud.throttle import PacingLimits, PacingPolicy, SubscriptionPacer, shared_pacer

if TYPE_CHECKING:
    from azure.mgmt.authorization import AuthorizationManagementClient
    from azure.mgmt.dataprotection import DataProtectionMgmtClient
    from azure.mgmt.recoveryservices import RecoveryServicesClient
    from azure.mgmt.recoveryservicesbackup import RecoveryServicesBackupClient
    from azure.mgmt.resource.resources import ResourceManagementClient
    from azure.mgmt.resourcegraph import ResourceGraphClient
    from azure.storage.blob import BlobServiceClient

PUBLIC_ARM_ENDPOINT: Final = "https://management.azure.com"

#: REST API versions we speak, per client. The sandbox serves exactly these (and rejects others).
API_VERSIONS: Final[dict[str, str]] = {
    "recoveryservices": "2025-02-01",
    "recoveryservicesbackup": "2025-02-01",
    "dataprotection": "2025-07-01",
    "resources": "2025-04-01",
    "authorization": "2022-04-01",
}

#: SDK-level retries stay small: transient failures are retried by the orchestration's retry options
#: (one retry layer at a time). The SDK still honours Retry-After on 429 within this bound.
SDK_RETRY_TOTAL: Final = 3
SDK_RETRY_MAX_BACKOFF: Final = 30


class SandboxCredential:
    """Token credential for the local sandbox: POSTs to its token endpoint.

    The sandbox mints a token naming a principal and tenant so that authorization rules, role checks and
    the ``claims`` of the events it raises behave as in Azure. Tokens are cached until shortly before they
    expire. This class is part of the product (not test code) because it is the credential the app uses
    when configured for the sandbox; it never talks to anything but the configured URL.
    """

    def __init__(
        self,
        token_url: str,
        *,
        principal_id: str = "00000000-0000-0000-0000-00000000a11c",
        tenant_id: str | None = None,
        ca_bundle: str | None = None,
    ) -> None:
        self._token_url = token_url
        self._principal_id = principal_id
        self._tenant_id = tenant_id
        self._ca_bundle = ca_bundle
        self._lock = threading.Lock()
        self._cached: AccessTokenInfo | None = None

    def _fetch(self, scopes: tuple[str, ...]) -> AccessTokenInfo:
        import ssl

        body = json.dumps(
            {"principalId": self._principal_id, "tenantId": self._tenant_id, "scopes": list(scopes)}
        ).encode()
        request = urllib.request.Request(  # noqa: S310 - URL comes from validated settings
            self._token_url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        context = ssl.create_default_context(cafile=self._ca_bundle) if self._ca_bundle else None
        with urllib.request.urlopen(request, timeout=10, context=context) as response:  # noqa: S310
            payload: dict[str, Any] = json.loads(response.read())
        return AccessTokenInfo(str(payload["access_token"]), int(payload["expires_on"]))

    def get_token_info(self, *scopes: str, options: Any = None) -> AccessTokenInfo:
        with self._lock:
            if self._cached is None or self._cached.expires_on - 60 < time.time():
                self._cached = self._fetch(scopes)
            return self._cached

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        info = self.get_token_info(*scopes)
        return AccessToken(info.token, info.expires_on)

    def close(self) -> None:
        return None

    def __enter__(self) -> SandboxCredential:
        return self

    def __exit__(self, *args: object) -> None:
        return None


def managed_identity_credential(client_id: str | None = None) -> TokenCredential:
    """The app's managed identity (user-assigned when ``client_id`` is given, else system-assigned)."""
    from azure.identity import ManagedIdentityCredential

    return ManagedIdentityCredential(client_id=client_id)


def default_credential() -> TokenCredential:
    """The ``DefaultAzureCredential`` chain (environment, workload identity, managed identity, Azure CLI, ...): how
    an operator's ``steward protect|teardown|drill`` gets a token for the app's registration, as ``az`` users do."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def blob_service(
    *, account_url: str | None = None, connection_string: str | None = None, credential: Any = None
) -> BlobServiceClient:
    """A Blob Storage client: from a connection string (e.g. Azurite), or an account URL with a token credential."""
    from azure.storage.blob import BlobServiceClient

    if connection_string:
        return BlobServiceClient.from_connection_string(connection_string)
    if account_url:
        return BlobServiceClient(account_url, credential=credential)
    raise ValueError("a blob service needs an account URL or a connection string")


def event_grid_publisher(endpoint: str, *, key: str | None = None, credential: Any = None) -> Any:
    """An ``azure.eventgrid.EventGridPublisherClient`` for a custom topic, with its access key or a token
    credential (``Any``: the package ships no type information)."""
    from azure.core.credentials import AzureKeyCredential
    from azure.eventgrid import EventGridPublisherClient

    if key is None and credential is None:
        raise ValueError("an Event Grid topic needs a key or a token credential")
    return EventGridPublisherClient(endpoint, AzureKeyCredential(key) if key is not None else credential)


@dataclass(frozen=True)
class CloudTarget:
    """Where ARM is and how to authenticate to it."""

    arm_endpoint: str = PUBLIC_ARM_ENDPOINT
    credential_kind: str = "default"  # "default" | "managed-identity" | "sandbox"
    managed_identity_client_id: str | None = None
    sandbox_token_url: str | None = None
    sandbox_principal_id: str | None = None
    ca_bundle: str | None = None
    #: seconds between LRO polls when ARM sends no Retry-After (the sandbox's time runs faster)
    polling_interval: float = 30.0
    #: HTTP connections kept per client: at least the parallel writes a fan-out makes (urllib3's default, 10,
    #: would discard connections under a wider fan-out)
    connection_pool_size: int = 32
    #: ARM's throttling buckets the clients pace themselves under (per subscription, shared by every client of
    #: the process acting as the same principal); None sends without pacing
    pacing: PacingLimits | None = field(default_factory=PacingLimits)
    #: which pacer of the process the clients share: one per (endpoint, principal, instance). The app leaves it
    #: empty (one pacer per process); tests and benchmarks set it to model N app instances (separate processes)
    #: in one process
    pacing_instance: str = ""
    #: called with (method, url, status) after every ARM response; used for request accounting.
    response_hook: Callable[[str, str, int], None] | None = field(default=None, compare=False)


class CloudClients:
    """Builds and caches SDK clients for one target. Thread-safe enough for activities: SDK clients are."""

    def __init__(self, target: CloudTarget) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], Any] = {}

    @cached_property
    def credential(self) -> TokenCredential:
        kind = self.target.credential_kind
        if kind == "sandbox":
            if not self.target.sandbox_token_url:
                raise ValueError("the sandbox credential needs a token URL")
            kwargs: dict[str, Any] = {"ca_bundle": self.target.ca_bundle}
            if self.target.sandbox_principal_id:
                kwargs["principal_id"] = self.target.sandbox_principal_id
            return SandboxCredential(self.target.sandbox_token_url, **kwargs)
        if kind == "managed-identity":
            return managed_identity_credential(self.target.managed_identity_client_id)
        from azure.identity import DefaultAzureCredential

        return DefaultAzureCredential(managed_identity_client_id=self.target.managed_identity_client_id)

    @cached_property
    def pacer(self) -> SubscriptionPacer | None:
        """The process-wide pacer for this target's ARM endpoint and principal (None when pacing is off)."""
        if self.target.pacing is None:
            return None
        principal = self.target.sandbox_principal_id or self.target.managed_identity_client_id or ""
        key = (self.target.arm_endpoint.rstrip("/").lower(), self.target.credential_kind, principal.lower(),
               self.target.pacing_instance)
        return shared_pacer(key, self.target.pacing)

    def _transport(self) -> Any:
        import requests

        from steward.cloud.polling import BoundedWaitTransport

        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=self.target.connection_pool_size, pool_maxsize=self.target.connection_pool_size
        )
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        options: dict[str, Any] = {"connection_verify": self.target.ca_bundle} if self.target.ca_bundle else {}
        # sleeps and requests go through the azure_time seam (the wall clock unless a sandbox installs its own);
        # every wait is bounded (steward/cloud/polling.py, MAX_SDK_WAIT_SECONDS)
        return BoundedWaitTransport(session=session, session_owner=True, **options)

    def _common_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "transport": self._transport(),
            "retry_policy": RetryPolicy(
                retry_total=SDK_RETRY_TOTAL, retry_backoff_max=SDK_RETRY_MAX_BACKOFF, retry_on_status_codes=[]
            ),
        }
        if self.target.ca_bundle:
            kwargs["connection_verify"] = self.target.ca_bundle
        if self.pacer is not None:
            # per retry: every attempt (LRO polls included) is paced, and every answer updates the picture
            kwargs["per_retry_policies"] = [PacingPolicy(self.pacer)]
        hook = self.target.response_hook
        if hook is not None:

            def _on_response(response: Any) -> None:
                http_request = response.http_request
                hook(http_request.method, http_request.url, response.http_response.status_code)

            kwargs["raw_response_hook"] = _on_response
        if self.target.arm_endpoint.rstrip("/") != PUBLIC_ARM_ENDPOINT:
            # A custom endpoint (sandbox or sovereign cloud) issues tokens for its own audience.
            kwargs["credential_scopes"] = [self.target.arm_endpoint.rstrip("/") + "/.default"]
        return kwargs

    def _get(self, name: str, key: str, build: Callable[[], Any]) -> Any:
        with self._lock:
            client = self._cache.get((name, key))
            if client is None:
                client = build()
                self._cache[(name, key)] = client
            return client

    def recovery_services(self, subscription_id: str) -> RecoveryServicesClient:
        from azure.mgmt.recoveryservices import RecoveryServicesClient

        return self._get(  # type: ignore[no-any-return]
            "recoveryservices",
            subscription_id,
            lambda: RecoveryServicesClient(
                self.credential,
                subscription_id,
                base_url=self.target.arm_endpoint,
                api_version=API_VERSIONS["recoveryservices"],
                **self._common_kwargs(),
            ),
        )

    def recovery_services_backup(self, subscription_id: str) -> RecoveryServicesBackupClient:
        from azure.mgmt.recoveryservicesbackup import RecoveryServicesBackupClient

        return self._get(  # type: ignore[no-any-return]
            "recoveryservicesbackup",
            subscription_id,
            lambda: RecoveryServicesBackupClient(
                self.credential,
                subscription_id,
                base_url=self.target.arm_endpoint,
                api_version=API_VERSIONS["recoveryservicesbackup"],
                **self._common_kwargs(),
            ),
        )

    def data_protection(self, subscription_id: str) -> DataProtectionMgmtClient:
        from azure.mgmt.dataprotection import DataProtectionMgmtClient

        return self._get(  # type: ignore[no-any-return]
            "dataprotection",
            subscription_id,
            lambda: DataProtectionMgmtClient(
                self.credential,
                subscription_id,
                base_url=self.target.arm_endpoint,
                api_version=API_VERSIONS["dataprotection"],
                **self._common_kwargs(),
            ),
        )

    def resources(self, subscription_id: str) -> ResourceManagementClient:
        from azure.mgmt.resource.resources import ResourceManagementClient

        return self._get(  # type: ignore[no-any-return]
            "resources",
            subscription_id,
            lambda: ResourceManagementClient(
                self.credential,
                subscription_id,
                base_url=self.target.arm_endpoint,
                api_version=API_VERSIONS["resources"],
                **self._common_kwargs(),
            ),
        )

    def authorization(self, subscription_id: str) -> AuthorizationManagementClient:
        from azure.mgmt.authorization import AuthorizationManagementClient

        return self._get(  # type: ignore[no-any-return]
            "authorization",
            subscription_id,
            lambda: AuthorizationManagementClient(
                self.credential,
                subscription_id,
                base_url=self.target.arm_endpoint,
                api_version=API_VERSIONS["authorization"],
                **self._common_kwargs(),
            ),
        )

    def resource_graph(self) -> ResourceGraphClient:
        """The Resource Graph client (one per target: queries name their subscriptions), with the target's
        credential, endpoint and CA; no pacing (Resource Graph throttles apart from ARM's subscription buckets)."""
        from azure.mgmt.resourcegraph import ResourceGraphClient

        def build() -> ResourceGraphClient:
            kwargs: dict[str, Any] = {}
            if self.target.ca_bundle:
                kwargs["connection_verify"] = self.target.ca_bundle
            if self.target.arm_endpoint.rstrip("/") != PUBLIC_ARM_ENDPOINT:
                kwargs["credential_scopes"] = [self.target.arm_endpoint.rstrip("/") + "/.default"]
            return ResourceGraphClient(self.credential, base_url=self.target.arm_endpoint, **kwargs)

        return self._get("resourcegraph", "", build)  # type: ignore[no-any-return]
