"""Routing one resource through the rules: the opt-out tag, supported types, the first matching rule, and the
region and one-vault rules on its target."""

from __future__ import annotations

from typing import Final

from steward.domain.drill_flow import DRILL_MADE_TYPES
from steward.domain.errors import InvalidResourceId
from steward.domain.ids import ResourceId
from steward.domain.kernel import VaultKind
from steward.domain.rules.decisions import OptOut, OptOutBasis, Protect, ProtectionDecision, Unsupported
from steward.domain.rules.model import (
    BlobTier,
    DatastoreOptions,
    ExplicitVault,
    ProtectionSpec,
    RegionalDefaultVault,
    ResourceFacts,
    RuleSet,
    VaultSet,
    VaultSetSpec,
    VaultTarget,
)
from steward.domain.workloads import PermissionsScope, Workload, workload_for

#: RPO (hours) the audits use when a rule names none: daily backups; PostgreSQL vaulted backup is weekly.
_DEFAULT_RPO_HOURS: Final[dict[str, int]] = {
    "microsoft.compute/virtualmachines": 24,
    "microsoft.compute/disks": 24,
    "microsoft.storage/storageaccounts": 24,
    "microsoft.dbforpostgresql/flexibleservers": 168,
}


def route(resource: ResourceFacts, rules: RuleSet) -> ProtectionDecision:
    """Decide for one resource. Pure and total: never raises for a valid ``ResourceFacts``."""
    if any(value.strip().lower() == "true" for value in resource.tag_values(rules.opt_out_tag)):
        return OptOut(resource.id, f"tagged {rules.opt_out_tag}=true", None, OptOutBasis.TAG)
    drill_group = _drill_group(resource, rules)
    if drill_group is not None:
        # what restore drills make there (restored disks, staging accounts) lives for the drill only: protecting it
        # would leave a backup instance and its recovery points behind every drill (issue 17)
        return OptOut(resource.id, f"in restore drill group {drill_group}: drills delete what they make", None,
                      OptOutBasis.RULE)
    workload = workload_for(resource.type)
    if workload is None:
        return Unsupported(resource.id, f"Backup Steward does not protect resources of type {resource.type}")
    if resource.attached_to and workload.resource_type == "Microsoft.Compute/disks":
        # Azure VM backup snapshots every attached disk: a Backup vault instance would back the same data up
        # twice. Detached disks are routed like any other resource.
        return OptOut(
            resource.id, f"attached to VM {resource.attached_to}: covered by the VM's backup", None,
            OptOutBasis.COVERED_BY_VM,
        )
    for rule in rules.rules:
        if not rule.match.holds(resource):
            continue
        if rule.opt_out is not None or rule.protect is None:
            return OptOut(resource.id, rule.opt_out or "opted out", rule.name, OptOutBasis.RULE)
        return _protect(resource, workload, rule.name, rule.protect, rules)
    return OptOut(resource.id, f"no rule in {rules.source} covers this resource", None, OptOutBasis.NO_RULE)


def _drill_group(resource: ResourceFacts, rules: RuleSet) -> str | None:
    """The drill resource group (a drill rule's, for the resource's region and subscription) it lives in, if any,
    for a resource of a type drills make (disks, storage accounts: ``drill_flow.DRILL_MADE_TYPES``). A VM or a
    PostgreSQL server there is someone's own (drills restore them as disks and files): routed as any other."""
    group = (resource.id.resource_group or "").lower()
    if not group or resource.type.lower() not in DRILL_MADE_TYPES:
        return None
    for drill in rules.drills:
        if drill.group_for(resource.region, resource.subscription).lower() == group:
            return drill.group_for(resource.region, resource.subscription)
    return None


def _protect(
    resource: ResourceFacts, workload: Workload, rule: str, spec: ProtectionSpec, rules: RuleSet
) -> ProtectionDecision:
    kind = workload.vault_kind
    vault: VaultTarget
    if isinstance(spec.vault, ExplicitVault):
        vault = spec.vault
        refusal = _explicit_vault_refusal(resource, kind, vault)
    elif isinstance(spec.vault, VaultSetSpec):
        subscription = spec.vault_subscription or resource.subscription
        vault = VaultSet(kind, subscription, resource.region, spec.vault.name_prefix, spec.vault.tag_name,
                         spec.vault.tag_value, rules.vault_fill_percent)
        refusal = _subscription_refusal(resource, kind, subscription)
    else:
        subscription = spec.vault_subscription or resource.subscription
        vault = RegionalDefaultVault(kind, subscription, resource.region, rules.vault_default_tag)
        refusal = _subscription_refusal(resource, kind, subscription)
    if refusal is not None:
        return Unsupported(resource.id, f"rule {rule!r}: {refusal}", rule)
    datastore, refusal = _datastore(resource, workload, spec)
    if refusal is not None:
        return Unsupported(resource.id, f"rule {rule!r}: {refusal}", rule)
    return Protect(
        resource_id=resource.id,
        resource_type=workload.resource_type,
        vault_kind=kind,
        vault=vault,
        policy=spec.policy or workload.default_policy,
        datastore=datastore,
        on_delete=spec.on_delete,
        rpo_hours=spec.rpo_hours or _DEFAULT_RPO_HOURS[workload.resource_type.lower()],
        required_settings=spec.required_settings,
        rule=rule,
        role_scope=spec.role_scope if kind is VaultKind.BACKUP else PermissionsScope.RESOURCE,
    )


def vault_kind_name(kind: VaultKind) -> str:
    return kind.label


def _explicit_vault_refusal(resource: ResourceFacts, kind: VaultKind, vault: ExplicitVault) -> str | None:
    if vault.vault_kind is not kind:
        return (
            f"{resource.type} is protected by a {vault_kind_name(kind)}, "
            f"but the rule names a {vault_kind_name(vault.vault_kind)} ({vault.vault_id})"
        )
    if vault.region != resource.region:
        return (
            f"vault {vault.vault_id} is in region {vault.region}, the resource in {resource.region}; "
            "a vault only protects resources of its own region"
        )
    return _subscription_refusal(resource, kind, vault.vault_id.subscription_id)


def _subscription_refusal(resource: ResourceFacts, kind: VaultKind, subscription: str) -> str | None:
    if kind is VaultKind.RECOVERY_SERVICES and subscription.lower() != resource.subscription.lower():
        return (
            f"the Recovery Services vault is in subscription {subscription}, the VM in {resource.subscription}; "
            "cross-subscription VM backup is not supported"
        )
    return None


def _datastore(
    resource: ResourceFacts, workload: Workload, spec: ProtectionSpec
) -> tuple[DatastoreOptions, str | None]:
    type_key = workload.resource_type.lower()
    if type_key == "microsoft.compute/disks":
        group_name = spec.datastore_snapshot_group or resource.id.resource_group
        if group_name is None:
            return DatastoreOptions(), "a managed disk outside a resource group has no snapshot resource group"
        try:
            group = ResourceId.parse(f"/subscriptions/{resource.subscription}/resourceGroups/{group_name}")
        except InvalidResourceId as error:
            return DatastoreOptions(), f"invalid snapshot resource group: {error}"
        return DatastoreOptions(snapshot_resource_group=group), None
    if type_key == "microsoft.storage/storageaccounts":
        tier = spec.blob_tier or BlobTier.OPERATIONAL
        containers = spec.blob_containers if tier is not BlobTier.OPERATIONAL else ()
        return DatastoreOptions(blob_tier=tier, blob_containers=containers), None
    return DatastoreOptions(), None
