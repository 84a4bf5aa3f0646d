"""Sandbox configuration: subscriptions and tenants, time scale, paging, and the realism knobs.

Throttling, latency and faults are OFF by default and switched on here (or at run time through the admin
API / ``ArmSandbox.configure_*``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

DEFAULT_TENANT = "11111111-1111-4111-8111-111111111111"
OTHER_TENANT = "22222222-2222-4222-8222-222222222222"
DEFAULT_SUBSCRIPTION = "00000000-0000-4000-8000-000000000001"
SECOND_SUBSCRIPTION = "00000000-0000-4000-8000-000000000002"
DEFAULT_PRINCIPAL = "00000000-0000-0000-0000-00000000a11c"
KINDS = ("read", "write", "delete", "action")


@dataclass(frozen=True)
class SubscriptionSpec:
    subscription_id: str
    tenant_id: str = DEFAULT_TENANT
    display_name: str = ""
    state: str = "Enabled"


@dataclass(frozen=True)
class BucketSpec:
    capacity: int
    refill_per_second: float


@dataclass(frozen=True)
class ThrottleConfig:
    """ARM's token buckets per subscription + principal (Azure docs: request-limits-and-throttling)."""

    enabled: bool = False
    reads: BucketSpec = BucketSpec(250, 25)
    writes: BucketSpec = BucketSpec(200, 10)
    deletes: BucketSpec = BucketSpec(200, 10)
    #: the subscription's global bucket (all principals together) is this many times the per-principal one
    #: (same docs article: "a global subscription limit that's equivalent to 15 times the individual service
    #: principal limit for each operation type")
    global_factor: int = 15


@dataclass(frozen=True)
class LatencyConfig:
    """Base latency per op kind, in Azure (virtual) seconds; slept on the virtual clock."""

    enabled: bool = False
    seconds: Mapping[str, float] = field(
        default_factory=lambda: {"read": 0.08, "write": 0.4, "delete": 0.3, "action": 0.3}
    )


@dataclass(frozen=True)
class FaultConfig:
    """Seeded faults. Probabilities per op kind (read/write/delete/action); all zero = off.

    Decisions are a pure function of (seed, kind, method, path, how many times that path was called), so
    a sequential run is reproducible from its seed.
    """

    seed: int = 0
    server_error: Mapping[str, float] = field(default_factory=dict)  # 500/503 answers
    throttle_storm: Mapping[str, float] = field(default_factory=dict)  # chance a request starts a 429 storm
    storm_seconds: float = 30.0  # a storm 429s every request of that kind for this long (Azure seconds)
    connection_reset: Mapping[str, float] = field(default_factory=dict)  # socket closed, no answer
    lro_slow: float = 0.0  # chance an LRO takes lro_slow_factor x its modelled duration
    lro_slow_factor: float = 10.0
    lro_fail: float = 0.0  # chance an LRO ends Failed instead of applying its change
    lro_fail_status: int = 500  # the failed operation's error (a Location poll answers this status)
    lro_fail_code: str = "InternalServerError"
    #: Backup vault: the first N configurations of protection (backup instance PUTs that configure, a re-PUT of a
    #: failed instance included) of EACH datasource end failed, later ones succeed; 0 = off. How they fail:
    #: ``backup_configuration_failure`` "ConfiguringProtectionFailed" - the PUT's operation ends Failed and the
    #: instance stays with ``protectionStatus.status`` ConfiguringProtectionFailed (the Status enum of the S-DP
    #: spec / azure-mgmt-dataprotection ``models.Status``); "ProtectionError" - the operation succeeds but the
    #: instance reads back ``ProtectionError`` with ``errorDetails`` (not in that enum, yet read by Microsoft's
    #: Azure Service Operator, ``backup_vaults_backup_instance_extensions.go``; hashicorp/terraform-provider-azurerm
    #: #25294 shows one after a successful create). Which errors Azure reports this way is not published.
    fail_backup_configurations: int = 0
    backup_configuration_failure: str = "ConfiguringProtectionFailed"
    backup_configuration_error_code: str = "UserErrorBackupConfigurationFailed"
    #: a hostile or buggy ARM: every wait hint the sandbox sends (an LRO's 201/202 and its polls, a 429) asks for
    #: this many Azure seconds (e.g. 86400), whatever the operation; None = the modelled hints. Retry-After is the
    #: server's to choose, with no upper bound (RFC 9110 section 10.2.3; azure-resource-manager/management/
    #: async-operations.md: the seconds to wait before checking the status again).
    retry_after_seconds: float | None = None

    @property
    def active(self) -> bool:
        return any(
            any(v > 0 for v in m.values())
            for m in (self.server_error, self.throttle_storm, self.connection_reset)
        ) or self.lro_slow > 0 or self.lro_fail > 0


@dataclass(frozen=True)
class EventDeliveryConfig:
    """Event Grid delivery: at least once, optional duplicates and reordering, retries on failure."""

    seed: int = 0
    duplicate_probability: float = 0.0
    reorder_jitter_seconds: float = 0.0  # each delivery is delayed by U(0, jitter) Azure seconds
    #: Event Grid's documented schedule (Azure seconds), then every 12 h; capped by max_attempts.
    retry_schedule: tuple[float, ...] = (10, 30, 60, 300, 600, 1800, 3600, 10800, 21600)
    max_attempts: int = 30
    webhook_timeout_seconds: float = 30.0
    #: deliveries in flight at once per event subscription (and delivery threads in all). Event Grid pushes each
    #: event "immediately" to every matching subscription and does not order them (MicrosoftDocs azure-docs
    #: articles/event-grid/delivery-and-retry.md), and to an Azure Function it adapts "the rate at which events
    #: are delivered ... based on the perceived rate at which the function can process events"
    #: (articles/event-grid/handler-functions.md): deliveries overlap. The level is INFERRED (not published);
    #: 1 gives the sandbox's former one-at-a-time delivery.
    max_concurrent_deliveries: int = 16


@dataclass(frozen=True)
class PropagationConfig:
    """Azure's eventual consistency that a client must wait out (issue #13 items 1 and 2).

    - ``rbac_seconds``: a new role assignment grants its role only this many Azure seconds after it was
      created; permission checks made before see the old permissions. Azure RBAC documents "up to 10 minutes"
      (MicrosoftDocs/azure-docs ``articles/role-based-access-control/troubleshooting.md``: "role assignment
      changes ... can take up to 10 minutes"); the default is a few minutes, 0 switches it off.
    - ``vm_write_event_on_accept``: a VM create raises its ``ResourceWriteSuccess`` when ARM accepts the PUT
      (provisioningState still ``Creating``) instead of when the create ends. INFERRED (issue #13: "a write
      event can arrive while the VM's provisioningState is not yet Succeeded"); off by default.
    - ``vm_discovery``: a VM protected-item PUT is refused until the vault discovered the VM (a
      ``refreshContainers`` after the VM exists, or ``vm_auto_discovery_seconds`` after its creation).
      INFERRED and off by default: Microsoft's quickstart template and Terraform PUT directly; only the CLI
      and the REST guide refresh first (``backup-azure-arm-userestapi-backupazurevms.md``: "Once the VM is
      'cached', Recovery services will be able to access the VM and protect it"); see
      ``recoveryservices_model.RecoveryServicesModel.discovered``.
    """

    rbac_seconds: float = 180.0
    vm_write_event_on_accept: bool = False
    vm_discovery: bool = False
    #: azure-sdk-for-python#22232: a new VM listed as protectable "after 30 min" without a refresh
    vm_auto_discovery_seconds: float = 1800.0


@dataclass(frozen=True)
class SandboxConfig:
    subscriptions: tuple[SubscriptionSpec, ...] = (
        SubscriptionSpec(DEFAULT_SUBSCRIPTION, DEFAULT_TENANT, "Sandbox Production"),
        SubscriptionSpec(SECOND_SUBSCRIPTION, DEFAULT_TENANT, "Sandbox Development"),
    )
    #: tenants that exist even without a subscription (targets of subscription moves)
    extra_tenants: tuple[str, ...] = (OTHER_TENANT,)
    default_principal_id: str = DEFAULT_PRINCIPAL
    host: str = "127.0.0.1"
    port: int = 0
    #: virtual seconds per real second (ignored when ``clock`` is given)
    scale: float = 1.0
    clock_start: datetime | None = None
    clock: Any = None  # a sandbox.clock.VirtualClock to share (e.g. with the Durable runner)
    page_size: int = 100
    #: JSON snapshot file: loaded at start when present, written on stop and after changes
    state_file: Path | None = None
    #: where certificates go (a temp dir when None)
    state_dir: Path | None = None
    token_lifetime_seconds: int = 3600
    #: the app registration of Backup Steward the sandbox's Entra issuer (sandbox/arm/entra.py) signs tokens for
    app_client_id: str = "5a9d0000-0000-4000-8000-0000000b5a1d"
    app_id_uri: str = "api://backup-steward-sandbox"
    #: the aeg-sas-key custom topics accept
    topic_key: str = "sandbox-topic-key"
    #: default modelled LRO durations (Azure seconds) providers may use
    lro_seconds: float = 30.0
    #: how wait hints are sent: "azure" (Retry-After, whole Azure seconds), "fast" (retry-after-ms in real
    #: ms), "auto" (azure at clock scale 1, else fast) -- see sandbox.arm.lro.retry_after_headers
    retry_after: str = "auto"
    #: provider module names to load (None = every module discovered in sandbox/arm/providers)
    providers: tuple[str, ...] | None = None
    throttle: ThrottleConfig = ThrottleConfig()
    latency: LatencyConfig = LatencyConfig()
    faults: FaultConfig = FaultConfig()
    events: EventDeliveryConfig = EventDeliveryConfig()
    propagation: PropagationConfig = PropagationConfig()
    #: Azure RBAC: "Azure supports up to 4000 role assignments per subscription. This limit includes role
    #: assignments at the subscription, resource group, and resource scopes, but not at the management group
    #: scope" ... "fixed and cannot be increased" (MicrosoftDocs/azure-docs
    #: articles/role-based-access-control/troubleshoot-limits.md). A NEW assignment past it is refused 400
    #: ``RoleAssignmentLimitExceeded`` (status inferred); ``ArmSandbox.configure_role_assignment_limit`` at run time.
    role_assignments_per_subscription: int = 4000
