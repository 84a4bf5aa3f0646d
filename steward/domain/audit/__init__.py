"""Estate audit: the pure core.

An :class:`EstateInventory` (what exists and how it is protected, gathered by an adapter) plus the protection
rules (what *should* be) give an :class:`AuditResult`: a list of :class:`Finding` s, each a named control with
a severity, the resource, why it fired and how to fix it, plus coverage statistics and the difference against
the previous run.

The controls are declared once, in :data:`CONTROLS`. Everything here is pure: no SDK, no I/O, no clock (the
caller passes ``now``), no environment.

Rules are consulted through the small :class:`ExpectationSource` port: for one resource, what does the rule
set expect? :class:`RoutedExpectations` adapts ``steward.domain.rules`` to it; tests and callers may pass any
object with an ``expect(resource)`` method.
"""

from __future__ import annotations

from steward.domain.audit.checks import (
    DEFAULT_ROLE_ASSIGNMENT_PERCENT,
    ROLE_ASSIGNMENT_LIMIT,
    audit,
)
from steward.domain.audit.controls import (
    CONTROLS,
    Control,
    Severity,
    control,
    policy_key,
)
from steward.domain.audit.expectations import (
    NO_REQUIREMENTS,
    Expectation,
    ExpectationSource,
    RuleExpectations,
    UniformExpectations,
    VaultRequirements,
)
from steward.domain.audit.inventory import (
    BACKUP_VAULT_TYPE,
    DISK_TYPE,
    POSTGRES_TYPE,
    PROTECTABLE_TYPES,
    RECOVERY_SERVICES_VAULT_TYPE,
    STORAGE_TYPE,
    VM_TYPE,
    AuditError,
    BackupInstance,
    EstateInventory,
    InvalidInventory,
    InvalidPreviousResult,
    InventoryGap,
    ProtectableResource,
    ProtectedItem,
    ProtectionStatus,
    RoleAssignmentCount,
    Vault,
    inventory_from_json,
    inventory_to_json,
    iso,
    parse_generated,
)
from steward.domain.audit.redundant import (
    Redundant,
    RoleAssignment,
    overlapping,
    redundant_assignments,
)
from steward.domain.audit.remediation import (
    REMEDIABLE_CONTROL,
    RemediationPlan,
    remediation_plan,
)
from steward.domain.audit.results import (
    SCHEMA_VERSION,
    TREND_LENGTH,
    AuditResult,
    Coverage,
    CoverageCell,
    Finding,
    TrendPoint,
    finding_id,
)
from steward.domain.kernel import (
    ImmutabilityState,
    SoftDeleteState,
    VaultKind,
    id_key,
    subscription_of,
)

__all__ = [
    "BACKUP_VAULT_TYPE",
    "CONTROLS",
    "DEFAULT_ROLE_ASSIGNMENT_PERCENT",
    "DISK_TYPE",
    "NO_REQUIREMENTS",
    "POSTGRES_TYPE",
    "PROTECTABLE_TYPES",
    "RECOVERY_SERVICES_VAULT_TYPE",
    "REMEDIABLE_CONTROL",
    "ROLE_ASSIGNMENT_LIMIT",
    "SCHEMA_VERSION",
    "STORAGE_TYPE",
    "TREND_LENGTH",
    "VM_TYPE",
    "AuditError",
    "AuditResult",
    "BackupInstance",
    "Control",
    "Coverage",
    "CoverageCell",
    "EstateInventory",
    "Expectation",
    "ExpectationSource",
    "Finding",
    "ImmutabilityState",
    "InvalidInventory",
    "InvalidPreviousResult",
    "InventoryGap",
    "ProtectableResource",
    "ProtectedItem",
    "ProtectionStatus",
    "Redundant",
    "RemediationPlan",
    "RoleAssignment",
    "RoleAssignmentCount",
    "RuleExpectations",
    "Severity",
    "SoftDeleteState",
    "TrendPoint",
    "UniformExpectations",
    "Vault",
    "VaultKind",
    "VaultRequirements",
    "audit",
    "control",
    "finding_id",
    "id_key",
    "inventory_from_json",
    "inventory_to_json",
    "iso",
    "overlapping",
    "parse_generated",
    "policy_key",
    "redundant_assignments",
    "remediation_plan",
    "subscription_of",
]
