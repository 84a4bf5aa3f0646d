"""The vault teardown saga's pure core: inventory, plan, fingerprint, next decision, request parsing.

A teardown empties a vault in the documented order (docs/azure-facts.md, "Vault deletion": the official
"delete a Recovery Services vault" script and the portal procedure) and then deletes it. This package decides;
the orchestrator (``orchestrators/teardown.py``) walks what it decides and activities act.

Everything here is pure (no SDK import, no I/O, no clock, no env) and every record that crosses the durable
boundary has ``to_record()`` / ``from_record()`` with JSON-safe values. Record field names are a contract:
running orchestrations keep them in their history, so never rename one without a migration.

Decisions pinned here:

* **Blocked plans are not executable.** ``Locked`` immutability with backup data, or a permission the
  inventory could not use, makes the plan ``blocked``: it lists no step at all, so nothing destructive can run.
* **Waiting is not failing.** ``AlwaysON`` soft delete (or enhanced security) cannot be turned off; every item
  deleted then stays soft-deleted until its ``deferredDeleteTimeInUTC``. The plan then contains an
  ``await-purge`` step with the date, and the saga sleeps until it.
* **MUA needs a person.** With multi-user authorization on, the settings changes need a Resource Guard grant:
  the plan says so (``needs-security-approval``) and the saga parks until ``SecurityApprovalGranted``.
* **The fingerprint** is sha256 over a canonical form of the inventory: objects sorted, ARM ids lower-cased
  (ARM ids are case-insensitive), the observation time left out. Reordering does not change it; any change to
  a setting, object, state or purge date does.
* **A failed vault delete from Event Grid** (a user tried to delete a non-empty vault) starts a teardown only
  for a vault carrying the opt-in tag, and only from the subscription's system topic; it plans and stops
  (``dry_run``) unless the tag's value is ``auto`` AND the deleting user (``data.claims`` object id, as ARM
  signs it) is an allowed principal, in which case the saga approves its own fresh plan. A destructive step
  never runs on a guess.
* **Custom events are requests, never approvals.** ``BackupSteward.Teardown.Requested`` is accepted only from
  the configured requests topic and from an allowed requester; it plans and waits for an approval over HTTP.
  A fingerprint it carries is ignored. The orchestrator takes an approved fingerprint only from an HTTP
  request or from the approval event (:func:`request_approval`).
* **Four eyes** (a setting): the approver must differ from the requester (:func:`approval_refusal`).
"""

from __future__ import annotations

from steward.domain.kernel import (
    ImmutabilityState,
    SoftDeleteState,
    VaultKind,
    VaultRef,
    format_time,
    parse_time,
)
from steward.domain.teardown.codec import (
    RECORD_VERSION,
    InvalidTeardownInput,
)
from steward.domain.teardown.fingerprint import (
    fingerprints_match,
    inventory_fingerprint,
)
from steward.domain.teardown.inventory import (
    BackupInstance,
    BackupItem,
    BackupPolicy,
    ContainerKind,
    ItemKind,
    ItemState,
    PrivateEndpointConnection,
    ProtectionContainer,
    ProtectionIntent,
    RegisteredServer,
    SiteRecoveryKind,
    SiteRecoveryObject,
    Target,
    VaultInventory,
    VaultObject,
    VaultSettings,
    target_from_record,
)
from steward.domain.teardown.plan import (
    ALWAYS_ON_WAIT_REASON,
    BACKUP_VAULT_ORDER,
    HARD_BLOCKERS,
    NON_DESTRUCTIVE_STEPS,
    RECOVERY_SERVICES_ORDER,
    SETTINGS_STEPS,
    Blocker,
    BlockerKind,
    PlanStatus,
    SettingChange,
    StepKind,
    TeardownPlan,
    TeardownStep,
    documented_order,
    estimated_purge_at,
    plan_teardown,
    purge_wait_until,
    remaining_contents,
)
from steward.domain.teardown.progress import (
    DELETING_EFFECTS,
    NextAction,
    NextKind,
    StepOutcome,
    StepProgress,
    TeardownProgress,
    batches,
    decide_next,
)
from steward.domain.teardown.request import (
    APP_ID_PREFIX,
    AUTO_TAG_VALUE,
    CUSTOM_EVENT_TYPE,
    DEFAULT_OPT_IN_TAG,
    EVENT_APPROVE,
    EVENT_CANCEL,
    EVENT_SECURITY_APPROVAL,
    FAILED_DELETE_EVENT_TYPE,
    ApprovalVerdict,
    RequestSource,
    TeardownOutcome,
    TeardownRequest,
    approval_refusal,
    check_event_request,
    event_principal,
    instance_id_for,
    judge_approval,
    legacy_instance_id_for,
    opt_in_decision,
    plan_instance_id,
    request_approval,
    run_instance_id,
    same_event,
    teardown_request_from_event,
)

__all__ = [
    "ALWAYS_ON_WAIT_REASON",
    "APP_ID_PREFIX",
    "AUTO_TAG_VALUE",
    "BACKUP_VAULT_ORDER",
    "CUSTOM_EVENT_TYPE",
    "DEFAULT_OPT_IN_TAG",
    "DELETING_EFFECTS",
    "EVENT_APPROVE",
    "EVENT_CANCEL",
    "EVENT_SECURITY_APPROVAL",
    "FAILED_DELETE_EVENT_TYPE",
    "HARD_BLOCKERS",
    "NON_DESTRUCTIVE_STEPS",
    "RECORD_VERSION",
    "RECOVERY_SERVICES_ORDER",
    "SETTINGS_STEPS",
    "ApprovalVerdict",
    "BackupInstance",
    "BackupItem",
    "BackupPolicy",
    "Blocker",
    "BlockerKind",
    "ContainerKind",
    "ImmutabilityState",
    "InvalidTeardownInput",
    "ItemKind",
    "ItemState",
    "NextAction",
    "NextKind",
    "PlanStatus",
    "PrivateEndpointConnection",
    "ProtectionContainer",
    "ProtectionIntent",
    "RegisteredServer",
    "RequestSource",
    "SettingChange",
    "SiteRecoveryKind",
    "SiteRecoveryObject",
    "SoftDeleteState",
    "StepKind",
    "StepOutcome",
    "StepProgress",
    "Target",
    "TeardownOutcome",
    "TeardownPlan",
    "TeardownProgress",
    "TeardownRequest",
    "TeardownStep",
    "VaultInventory",
    "VaultKind",
    "VaultObject",
    "VaultRef",
    "VaultSettings",
    "approval_refusal",
    "batches",
    "check_event_request",
    "decide_next",
    "documented_order",
    "estimated_purge_at",
    "event_principal",
    "fingerprints_match",
    "format_time",
    "instance_id_for",
    "inventory_fingerprint",
    "judge_approval",
    "legacy_instance_id_for",
    "opt_in_decision",
    "parse_time",
    "plan_instance_id",
    "plan_teardown",
    "purge_wait_until",
    "remaining_contents",
    "request_approval",
    "run_instance_id",
    "same_event",
    "target_from_record",
    "teardown_request_from_event",
]
