"""The audit's controls, declared once: id, severity, what each checks and how to fix it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from steward.domain.audit.inventory import AuditError
from steward.domain.kernel import (
    name_of,
)


class Severity(StrEnum):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"

    @property
    def rank(self) -> int:
        """Higher is worse: critical 4 ... info 0."""
        return _SEVERITY_RANK[self]

    @classmethod
    def parse(cls, text: str) -> Severity:
        try:
            return cls(text.strip().lower())
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise AuditError(f"unknown severity {text!r}: expected one of {names}") from None


_SEVERITY_RANK: Final = {
    Severity.CRITICAL: 4,
    Severity.HIGH: 3,
    Severity.MEDIUM: 2,
    Severity.LOW: 1,
    Severity.INFO: 0,
}


@dataclass(frozen=True)
class Control:
    """One named check: what it looks for, how bad it is, and what a person should do."""

    id: str
    title: str
    severity: Severity
    description: str
    fix: str


def _controls(*controls: Control) -> Mapping[str, Control]:
    by_id: dict[str, Control] = {}
    for control in controls:
        if control.id in by_id:
            raise AssertionError(f"control {control.id} declared twice")
        by_id[control.id] = control
    return by_id


#: The control set, declared in one place. Ids are stable: they appear in JSON output, finding ids and events.
CONTROLS: Final[Mapping[str, Control]] = _controls(
    Control(
        "BKP-001",
        "Resource the rules require to be protected is not protected",
        Severity.CRITICAL,
        "A protectable resource matched a rule that requires backup, but no active protected item or backup "
        "instance covers it (soft-deleted or absent).",
        "Start protection (the protect_resource orchestration, or enable backup in the vault the rules name).",
    ),
    Control(
        "BKP-002",
        "Protected with a policy other than the rule's",
        Severity.MEDIUM,
        "The resource is protected, but with a backup policy that differs from the one its rule names.",
        "Modify protection to use the rule's policy, or change the rule if the current policy is intended.",
    ),
    Control(
        "BKP-003",
        "Protected in a vault of another region or subscription",
        Severity.HIGH,
        "The vault holding the resource's backup is in another region than the resource (Azure requires the "
        "same region), or, for a VM, in another subscription (cross-subscription VM backup is unsupported).",
        "Protect the resource in a vault of its own region (and, for VMs, subscription), then stop "
        "protection in the old vault keeping its recovery points.",
    ),
    Control(
        "BKP-004",
        "Protection stopped, in error, or backups suspended",
        Severity.HIGH,
        "A protected item or backup instance exists but is not taking backups: protection stopped (data "
        "retained), protection error, paused, or backups suspended.",
        "Investigate the item's last job; resume protection (or fix the error) if the resource must be "
        "backed up, or document the stop if it is intended.",
    ),
    Control(
        "BKP-005",
        "Last backup older than the rule's RPO",
        Severity.HIGH,
        "The most recent successful backup is older than the recovery point objective of the resource's "
        "rule, or an item that should have backups has none recorded.",
        "Check the item's backup jobs and policy schedule; run an on-demand backup; fix the failing schedule.",
    ),
    Control(
        "BKP-006",
        "Backup item in soft-deleted state",
        Severity.MEDIUM,
        "A protected item or backup instance was deleted and is kept by soft delete until its purge date; "
        "after that its recovery points are gone for good.",
        "Undelete it before the purge date if the data is still needed; otherwise nothing to do: it purges by itself.",
    ),
    Control(
        "BKP-007",
        "Blob containers outside the vaulted backup of their storage account",
        Severity.MEDIUM,
        "Vaulted blob backup backs up only the containers its backup instance lists, at most 100 per storage "
        "account; containers created later are not backed up until the protection is modified (blob backup support "
        "matrix). The storage account holds containers its instance does not list.",
        "Below 100 containers: a new container's event adds it (add_blob_containers); modify the backup instance "
        "to list the ones named here if that did not happen. Above 100: choose the 100 to back up, or split the "
        "data over storage accounts; if the rule names its containers on purpose, nothing to do.",
    ),
    Control(
        "VLT-001",
        "Vault soft delete off or weaker than required",
        Severity.HIGH,
        "The vault's soft delete state is weaker than the rules require (off where it must be on, or not "
        "always-on where always-on is required).",
        "Enable soft delete on the vault (and set it to AlwaysON where required; that cannot be undone).",
    ),
    Control(
        "VLT-002",
        "Vault immutability off or unlocked where required",
        Severity.MEDIUM,
        "The rules require an immutable vault (or a locked one) and the vault's immutability is weaker.",
        "Enable immutability on the vault; lock it where required (locking is irreversible).",
    ),
    Control(
        "VLT-003",
        "Vault without cross-region restore where required",
        Severity.MEDIUM,
        "The rules require cross-region restore and the vault does not have it enabled.",
        "Enable cross-region restore on the vault (requires geo-redundant storage).",
    ),
    Control(
        "VLT-004",
        "Vault without multi-user authorization where required",
        Severity.MEDIUM,
        "The rules require multi-user authorization (a Resource Guard) and the vault has none.",
        "Associate the vault with a Resource Guard owned by a separate security administrator.",
    ),
    Control(
        "VLT-005",
        "Vault holds nothing",
        Severity.INFO,
        "The vault has no protected items or backup instances (active or soft-deleted).",
        "Delete the vault if it is no longer needed (the teardown saga), or protect what it was meant for.",
    ),
    Control(
        "CAP-001",
        "Vault above its fill threshold",
        Severity.MEDIUM,
        "A Recovery Services vault protects at least STEWARD_VAULT_FILL_PERCENT (default 90 %) of the 1,000 Azure "
        "VMs one vault may protect (backup support matrix); at 100 % Azure refuses the next VM. Counted from the VM "
        "items the vault lists, soft-deleted and stopped ones included.",
        "Name a vault set in the rules for the region (vault: {vaultSet: ...}; with STEWARD_AUTO_CREATE_VAULTS it "
        "grows by itself), or create another vault and point part of the rules at it.",
    ),
    Control(
        "CAP-002",
        "Vault's policy-change budget nearly spent",
        Severity.MEDIUM,
        "Backup policies of a Recovery Services vault were created or changed through Azure Resource Manager at "
        "least 40 times in the last 24 hours; Azure allows 50 in 24 hours (Azure Backup FAQ), after which policy "
        "changes are refused until the oldest ages out. Counted from the subscription's activity log.",
        "Hold further policy changes (templates, scripts, pipelines that re-deploy policies) until the budget "
        "recovers; deploy policies only when they change.",
    ),
    Control(
        "CAP-003",
        "Subscription near Azure's 4,000 role assignments",
        Severity.MEDIUM,
        "Azure allows 4,000 role assignments per subscription, counting those at the subscription, its resource "
        "groups and its resources (not management groups); the limit is fixed, and at it Azure refuses every new one "
        "(RoleAssignmentLimitExceeded, Azure RBAC troubleshoot-limits), so protecting a disk, storage account or "
        "PostgreSQL server, which grants the Backup vault's identity its roles, fails too. The subscription holds at "
        "least STEWARD_ROLE_ASSIGNMENT_WARN_PERCENT (default 80 %) of them; the finding says how many belong to the "
        "Backup vaults' managed identities (one per protected resource and role by default).",
        "Grant the vault identities per resource group instead of per resource (protect.roleScope: resourceGroup in "
        "the rules, which needs the rule's Backup vault named by id), and remove role assignments nobody uses (of "
        "deleted principals, or repeated at a lower scope where a higher one already grants the role - CAP-004 lists "
        "the Backup vault identities' -; group-based assignments instead of one per principal).",
    ),
    Control(
        "CAP-004",
        "Backup vault identity's redundant role assignments",
        Severity.LOW,
        "A Backup vault's managed identity holds a role at a resource or resource group through an assignment that "
        "grants nothing more than an unconditional assignment of the same role it also holds at that resource's "
        "group or at the subscription (Azure RBAC troubleshoot-limits, \"Solution 2 - Remove redundant role "
        "assignments\"). Left by a protect.roleScope widened from resource to resourceGroup or subscription: the app "
        "never deletes role assignments, and each still counts toward the subscription's fixed 4,000. The finding "
        "counts them, names the vaults and lists up to 20 assignment ids. Not assessed where the subscription's role "
        "assignments cannot be read (INV-001).",
        "Remove them: az role assignment delete --ids <the listed ids> (all of them: az role assignment list "
        "--assignee <vault principal id> --all). The wider assignment keeps granting the role; each removal frees "
        "one of the subscription's role assignments. Where roleScope was narrowed instead, remove the wider "
        "assignments the finding names (least privilege) once the narrower ones are made.",
    ),
    Control(
        "VLT-006",
        "Vault left weakened by an interrupted teardown",
        Severity.HIGH,
        "A teardown turned the vault's protections off (soft delete, enhanced security, immutability) and was "
        "lost before it could turn them back on (its Durable task hub was lost, or it ended without "
        "restoring them). The audit's reconciler found the vault by its teardown marker tag and restored the "
        "earlier settings, or says why it could not.",
        "Check the vault's settings and contents against the teardown's report; where the reconciler could "
        "not restore a setting, turn it back on (a Resource Guard grant may be needed) and remove the "
        "backup-steward:teardown-restore tag.",
    ),
    Control(
        "ORP-001",
        "Backup item whose source resource no longer exists",
        Severity.LOW,
        "A protected item or backup instance points at a resource that is not in the inventory: the source "
        "was deleted (or moved out of the audited scope) and the backup data keeps costing money.",
        "Decide on retention: keep the recovery points as long as needed, then stop protection and delete "
        "the data; if the resource moved, protect it again where it is now.",
    ),
    Control(
        "DRF-001",
        "Reality drifted from the rules",
        Severity.LOW,
        "The resource's protection differs from what the rules decide in a way no other control covers: it "
        "is protected although the rules opt it out, or it is protected in a vault other than the rule's "
        "target vault.",
        "Align the resource with its rule (move protection or remove it), or change the rule.",
    ),
    Control(
        "DRF-002",
        "Rule targets a vault that does not exist",
        Severity.HIGH,
        "A rule names a target vault that is not in the inventory, so new resources it matches cannot be "
        "protected automatically.",
        "Create the vault or correct the rule's vault id.",
    ),
    Control(
        "DRL-001",
        "No successful restore drill within the drill rule's period",
        Severity.MEDIUM,
        "A drill rule covers the resource, and no restore drill of it succeeded within the rule's period (or none "
        "ever did): nothing proves its backups restore.",
        "Run a drill (POST /api/drills or steward drill run --resource ID); if drills of it keep being skipped, "
        "check the rule's budgets and share.",
    ),
    Control(
        "DRL-002",
        "The last restore drill failed",
        Severity.HIGH,
        "The resource's most recent restore drill did not restore and validate: the restore failed on Azure's "
        "side, validation failed (or the validation hook gave no result in time), it timed out, or no recovery "
        "point qualified.",
        "Read the drill's report (drills/<id>.json: the error and the restore job), fix the cause, and run the drill "
        "again.",
    ),
    Control(
        "DRL-003",
        "Drill leftovers past their lifetime",
        Severity.MEDIUM,
        "Something a restore drill created (a restored disk, a staging storage account) outlived the drill rule's "
        "lifetime. The audit's reconciler deletes it when it still carries the drill's tag, and says so; what no "
        "longer carries the tag is left alone.",
        "Where the reconciler could not delete it, delete it by hand after checking it is the drill's (its "
        "backup-steward:drill tag names the drill); where it was deleted, nothing to do.",
    ),
    Control(
        "INV-001",
        "Part of the estate could not be read",
        Severity.HIGH,
        "The inventory of a subscription or vault failed, so this audit cannot vouch for it.",
        "Check that the audit identity has Reader (and Backup Reader) on the scope, then rerun.",
    ),
)


def control(control_id: str) -> Control:
    try:
        return CONTROLS[control_id]
    except KeyError:
        raise AuditError(f"unknown control {control_id!r}") from None


def policy_key(policy: str) -> str:
    """Policies compare by name: a rule may name a policy (``DefaultPolicy``) or give its full id."""
    return name_of(policy).lower()
