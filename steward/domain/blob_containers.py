"""New blob containers in a protected storage account (issue 19, item 2): which containers the backup
instance's ``containersList`` gains, which are left out and why. Pure functions over records.

Azure's rules (cited in ``docs/azure-facts.md``, "Blob containers"):
- Vaulted blob backup backs up the containers listed when protection is configured, at most 100 per storage
  account; "To back up any new containers that get created after backup configuration for the storage account,
  modify the protection of the storage account. These containers aren't backed up automatically." (MicrosoftDocs
  ``backup/blob-backup-support-matrix.md``, vaulted backup tab).
- The list travels as ``policyInfo.policyParameters.backupDatasourceParametersList[]`` of
  ``{"objectType": "BlobBackupDatasourceParameters", "containersList": [...]}`` (Azure/azure-rest-api-specs
  ``dataprotection`` ``BlobBackupDatasourceParameters``: ``containersList`` string[], required).
- Operational blob backup protects the whole account (``blob-backup-overview.md``: "a local backup solution" for
  the account's block blobs): a new container is covered with nothing to do.

Make-before-break: a plan never drops a container the instance already lists (even one deleted since: the
instance keeps its recovery points; removing it is a person's choice), it only appends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

#: Vaulted blob backup: at most 100 containers per storage account (blob-backup-support-matrix.md, vaulted tab).
MAX_VAULTED_CONTAINERS: Final = 100
BLOB_PARAMETERS_TYPE: Final = "BlobBackupDatasourceParameters"
#: The system containers (names starting with ``$``) a vaulted blob backup may list: only ``$root`` and ``$web``.
#: Microsoft's own clients refuse the others ("exclude containers which start with $ except $web, $root",
#: "Following containers are not allowed for configure protection with AzureBlob": Azure/azure-powershell
#: Az.DataProtection ``New-AzDataProtectionBackupConfigurationClientObject`` (-IncludeAllContainer skips them too)
#: and ``Update-AzDataProtectionBackupInstance``); e.g. ``$logs`` (Storage Analytics) and ``$blobchangefeed``
#: (change feed), which Azure creates itself. That the service refuses them too is inferred (docs/azure-facts.md).
SELECTABLE_SYSTEM_CONTAINERS: Final = frozenset({"$root", "$web"})


def selectable(name: str) -> bool:
    """Whether a vaulted blob backup may list the container (not a ``$`` system container other than $root/$web)."""
    return not name.startswith("$") or name.lower() in SELECTABLE_SYSTEM_CONTAINERS

LIMIT_REASON: Final = (
    f"vaulted blob backup covers at most {MAX_VAULTED_CONTAINERS} containers per storage account (blob backup "
    "support matrix): the backup instance already lists {listed}"
)
NOT_IN_RULE_REASON: Final = "the rule names the containers to back up ({named}); this one is not among them"
OPERATIONAL_REASON: Final = (
    "operational blob backup covers every container of the storage account: nothing to add for new containers"
)


@dataclass(frozen=True)
class LeftOut:
    container: str
    reason: str

    def to_record(self) -> dict[str, str]:
        return {"container": self.container, "reason": self.reason}


@dataclass(frozen=True)
class ContainerPlan:
    """``containers``: the list to PUT (the current one, then the added ones); nothing to PUT when unchanged."""

    containers: tuple[str, ...]
    added: tuple[str, ...]
    left_out: tuple[LeftOut, ...]

    @property
    def changed(self) -> bool:
        return bool(self.added)

    def details(self) -> dict[str, Any]:
        return {
            "containers": list(self.containers),
            "added": list(self.added),
            "leftOut": [entry.to_record() for entry in self.left_out],
        }


def _key(name: str) -> str:
    return name.lower()  # container names are lower case; compare as Azure does, case-insensitively


def plan_containers(current: Sequence[str], in_account: Sequence[str], named_by_rule: Sequence[str] = (),
                    limit: int = MAX_VAULTED_CONTAINERS) -> ContainerPlan:
    """Append to ``current`` the account's containers it lacks: those the rule names (every one when it names
    none), in name order, while the list stays within ``limit``; the others are left out with the reason. System
    containers (:func:`selectable`) are never added, and need no reason: they hold Azure's data, not the user's."""
    listed = list(dict.fromkeys(current))
    seen = {_key(c) for c in listed}
    named = {_key(c) for c in named_by_rule}
    added: list[str] = []
    left: list[LeftOut] = []
    for container in sorted(dict.fromkeys(in_account), key=_key):
        if _key(container) in seen or not selectable(container):
            continue
        seen.add(_key(container))
        if named and _key(container) not in named:
            left.append(LeftOut(container, NOT_IN_RULE_REASON.format(named=", ".join(sorted(named_by_rule)))))
        elif len(listed) + len(added) >= limit:
            left.append(LeftOut(container, LIMIT_REASON.format(listed=len(listed) + len(added))))
        else:
            added.append(container)
    return ContainerPlan(tuple(listed + added), tuple(added), tuple(left))


def containers_of(instance: Mapping[str, Any] | None) -> list[str]:
    """The ``containersList`` a backup instance (as ARM returns it) carries; empty when it has none."""
    props = (instance or {}).get("properties") or {}
    params = ((props.get("policyInfo") or {}).get("policyParameters") or {})
    found: list[str] = []
    for entry in params.get("backupDatasourceParametersList") or []:
        if isinstance(entry, Mapping) and str(entry.get("objectType") or "") == BLOB_PARAMETERS_TYPE:
            found += [str(c) for c in entry.get("containersList") or [] if isinstance(c, str)]
    return found


#: Read-only properties ARM returns and a PUT does not send (S-DP ``PutBackupInstance.json`` request body).
_READ_ONLY: Final = ("provisioningState", "protectionStatus", "currentProtectionState", "protectionErrorDetails")


#: The modification asks Azure to run validateForBackup's checks again on the new list: "In case of DeepValidation,
#: all validations from /validateForBackup API will run again" (S-DP 2025-07-01 ``BackupInstance.validationType``);
#: Microsoft's ``Update-AzDataProtectionBackupInstance`` sets it on every update ("deep validate for update-BI",
#: Azure/azure-powershell ``DataProtection.Autorest/custom/Cmdlets/Platform/BackupInstance/
#: Update-AzDataProtectionBackupInstance.ps1``). Without it (ShallowValidation), that a container the account
#: lacks would be accepted unchecked is INFERRED (docs/azure-facts.md "Blob containers").
DEEP_VALIDATION: Final = "DeepValidation"


def modified_instance(instance: Mapping[str, Any], containers: Sequence[str]) -> dict[str, Any]:
    """The PUT body that modifies ``instance`` to back up ``containers``: the instance's own properties (same
    datasource, same policy, its other parameters kept) with the blob parameters' ``containersList`` replaced,
    validated again by Azure (:data:`DEEP_VALIDATION`)."""
    props = {k: v for k, v in dict(instance.get("properties") or {}).items() if k not in _READ_ONLY}
    policy_info = dict(props.get("policyInfo") or {})
    params = dict(policy_info.get("policyParameters") or {})
    others = [e for e in params.get("backupDatasourceParametersList") or []
              if not (isinstance(e, Mapping) and str(e.get("objectType") or "") == BLOB_PARAMETERS_TYPE)]
    params["backupDatasourceParametersList"] = [
        *others, {"objectType": BLOB_PARAMETERS_TYPE, "containersList": list(containers)}]
    policy_info["policyParameters"] = params
    props["policyInfo"] = policy_info
    props["validationType"] = DEEP_VALIDATION
    return {"properties": props}


def verdict(plan: ContainerPlan, *, was_listed: int) -> tuple[str, str]:
    """(``OutcomeStatus`` value, reason) once ``plan`` is applied: ``Protected`` when containers were added,
    ``AlreadyProtected`` when every container was listed already, ``LeftAsIs`` (a person must act) when some are
    left out - the reason names them and why."""
    said = []
    if plan.added:
        said.append(f"added {', '.join(plan.added)} to the backup instance's containers ({was_listed} listed before, "
                    f"{len(plan.containers)} now)")
    if plan.left_out:
        said.append("left out " + "; ".join(f"{e.container}: {e.reason}" for e in plan.left_out))
        return "LeftAsIs", "; ".join(said)
    if plan.added:
        return "Protected", said[0]
    return "AlreadyProtected", f"every container of the storage account is listed already ({len(plan.containers)})"
