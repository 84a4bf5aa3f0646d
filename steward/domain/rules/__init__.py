"""Protection rules: which resource is protected where, with what, or not at all.

A rules document (YAML or JSON; its JSON Schema is ``steward/domain/rules.schema.json``,
the one copy)
lists rules in order. Each rule matches resources by type, tags (equals / exists / absent), resource group
(glob), subscription and region, and either protects them (target vault, policy, datastore options, what to
do when the resource is deleted, an RPO and the vault settings audits require) or opts them out.

``route(resource, rules)`` decides for one resource:
1. the opt-out tag (default ``backup-steward:opt-out`` = ``true``) always wins;
2. a type Backup Steward does not protect is :class:`Unsupported`;
3. the first rule that matches decides; no matching rule means :class:`OptOut` ("no rule covers it");
4. the region and one-vault rules are enforced on the matched rule's target; a target that breaks them
   yields :class:`Unsupported` naming the rule, never a protection in the wrong place.

Where a vault may be, relative to the resource it protects (checked against Microsoft's docs):
- Recovery Services vault and VM: same region ("the vault must be in the same region as the VMs",
  ``backup/backup-azure-arm-vms-prepare.md``) and same subscription ("cross subscription backup ... isn't a
  supported scenario", ``backup/backup-azure-move-recovery-services-vault.md``).
- Backup vault and managed disk: same region; the subscription may differ (``backup/disk-backup-support-matrix.md``).
- Backup vault and PostgreSQL flexible server: CONFIRMED same region, subscription may differ — "Backups for the
  PostgreSQL server are supported when the Backup Vault is in the same or a different subscription as the
  database, provided they are within the same tenant and region" (MicrosoftDocs/azure-docs
  ``articles/backup/backup-azure-database-postgresql-flex-support-matrix.md``).
- Backup vault and blobs of a storage account: the support matrix (``backup/blob-backup-support-matrix.md``)
  states no region rule; Azure's built-in policies are named "Configure backup for blobs on storage accounts
  ... to an existing backup vault in the same region", and the Data Lake Storage (blob) backup article says
  "ensure you have a Backup Vault in the same region". INFERRED: same region; enforced here like the others,
  the subscription may differ.
The dataprotection REST spec (2025-07-01) carries ``dataSourceInfo.resourceLocation`` on a backup instance but
no region constraint of its own; the rules above come from the docs.

The loader (:func:`parse_rules`) takes text, a source name and the schema (no file I/O in the domain:
``steward.rules_file.load_rules`` passes the packaged schema in); errors name the line and the field.
"""

from __future__ import annotations

from steward.domain.errors import (
    InvalidRecord,
    InvalidRules,
    RuleProblem,
)
from steward.domain.kernel import (
    VaultKind,
    normalise_region,
)
from steward.domain.rules.decisions import (
    OptOut,
    OptOutBasis,
    Protect,
    ProtectionDecision,
    Unsupported,
    decision_from_record,
)
from steward.domain.rules.loading import (
    MAX_RULES_BYTES,
    MAX_RULES_DEPTH,
    MAX_RULES_NODES,
    MAX_RULES_PROBLEMS,
    RulesSchema,
    parse_rules,
)
from steward.domain.rules.model import (
    DEFAULT_FILL_PERCENT,
    DEFAULT_OPT_OUT_TAG,
    DEFAULT_VAULT_TAG,
    BlobTier,
    DatastoreOptions,
    ExplicitVault,
    MatchCondition,
    OnDelete,
    ProtectionRule,
    ProtectionSpec,
    RegionalDefaultVault,
    RequiredVaultSettings,
    ResourceFacts,
    RuleSet,
    TagCondition,
    VaultSet,
    VaultSetSpec,
    VaultTarget,
)
from steward.domain.rules.routing import (
    route,
)
from steward.domain.rules.vault_choice import (
    AmbiguousVaults,
    NoVault,
    VaultCandidate,
    VaultChoice,
    choose_vault,
    set_members,
)
from steward.domain.rules.vault_sets import VaultChosen

__all__ = [
    "DEFAULT_FILL_PERCENT",
    "DEFAULT_OPT_OUT_TAG",
    "DEFAULT_VAULT_TAG",
    "MAX_RULES_BYTES",
    "MAX_RULES_DEPTH",
    "MAX_RULES_NODES",
    "MAX_RULES_PROBLEMS",
    "AmbiguousVaults",
    "BlobTier",
    "DatastoreOptions",
    "ExplicitVault",
    "InvalidRecord",
    "InvalidRules",
    "MatchCondition",
    "NoVault",
    "OnDelete",
    "OptOut",
    "OptOutBasis",
    "Protect",
    "ProtectionDecision",
    "ProtectionRule",
    "ProtectionSpec",
    "RegionalDefaultVault",
    "RequiredVaultSettings",
    "ResourceFacts",
    "RuleProblem",
    "RuleSet",
    "RulesSchema",
    "TagCondition",
    "Unsupported",
    "VaultCandidate",
    "VaultChoice",
    "VaultChosen",
    "VaultKind",
    "VaultSet",
    "VaultSetSpec",
    "VaultTarget",
    "choose_vault",
    "decision_from_record",
    "normalise_region",
    "parse_rules",
    "route",
    "set_members",
]
