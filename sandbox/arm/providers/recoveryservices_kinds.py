"""The kinds of Recovery Services backup containers and items, and how their names are spelled.

Azure names containers and items with ``;``-separated strings whose prefixes vary in case between
examples (``IaasVMContainer;iaasvmcontainerv2;rg;vm`` and ``iaasvmcontainer;iaasvmcontainerv2;rg;vm``
both appear). The sandbox keys everything case-insensitively and stores the canonical spelling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class ContainerKind:
    key: str
    container_type: str  # the ``containerType`` discriminator
    backup_management_type: str
    #: Azure creates it on the first protected item and drops it with the last (IaaS VM) instead of an
    #: explicit register / unregister.
    implicit: bool = False


@dataclass(frozen=True)
class ItemKind:
    key: str
    protected_item_type: str  # the ``protectedItemType`` discriminator
    backup_management_type: str
    workload_type: str
    container_kind: str


CONTAINER_KINDS: Final[dict[str, ContainerKind]] = {
    "IaasVM": ContainerKind("IaasVM", "Microsoft.Compute/virtualMachines", "AzureIaasVM", implicit=True),
    "VMApp": ContainerKind("VMApp", "VMAppContainer", "AzureWorkload"),
    "Storage": ContainerKind("Storage", "StorageContainer", "AzureStorage"),
    "MAB": ContainerKind("MAB", "Windows", "MAB"),
    "DPM": ContainerKind("DPM", "DPMContainer", "DPM"),
    "MABS": ContainerKind("MABS", "AzureBackupServerContainer", "AzureBackupServer"),
}

ITEM_KINDS: Final[dict[str, ItemKind]] = {
    "VM": ItemKind("VM", "Microsoft.Compute/virtualMachines", "AzureIaasVM", "VM", "IaasVM"),
    "SQL": ItemKind("SQL", "AzureVmWorkloadSQLDatabase", "AzureWorkload", "SQLDataBase", "VMApp"),
    "HANA": ItemKind("HANA", "AzureVmWorkloadSAPHanaDatabase", "AzureWorkload", "SAPHanaDatabase", "VMApp"),
    "AFS": ItemKind("AFS", "AzureFileShareProtectedItem", "AzureStorage", "AzureFileShare", "Storage"),
    "MARS": ItemKind("MARS", "MabFileFolderProtectedItem", "MAB", "FileFolder", "MAB"),
    "DPM": ItemKind("DPM", "DPMProtectedItem", "DPM", "SQLDB", "DPM"),
    "MABS": ItemKind("MABS", "DPMProtectedItem", "AzureBackupServer", "SQLDB", "MABS"),
}

#: protectedItemType in a PUT body -> item kind (the VM type is also accepted in classic spelling).
ITEM_KIND_BY_TYPE: Final[dict[str, str]] = {
    "microsoft.compute/virtualmachines": "VM",
    "azureiaasvmprotecteditem": "VM",
    "azurevmworkloadsqldatabase": "SQL",
    "azurevmworkloadsaphanadatabase": "HANA",
    "azurefileshareprotecteditem": "AFS",
}

#: containerType in a register body -> container kind.
CONTAINER_KIND_BY_TYPE: Final[dict[str, str]] = {
    "vmappcontainer": "VMApp",
    "storagecontainer": "Storage",
    "microsoft.compute/virtualmachines": "IaasVM",
    "iaasvmcontainer": "IaasVM",
}

IAAS_CONTAINER_PREFIX: Final = "IaasVMContainer;"
IAAS_ITEM_PREFIX: Final = "VM;"


def canonical_container_name(name: str) -> str:
    """``iaasvmcontainerv2;rg;vm`` -> ``IaasVMContainer;iaasvmcontainerv2;rg;vm``; others unchanged."""
    if name.lower().startswith("iaasvmcontainerv2;"):
        return IAAS_CONTAINER_PREFIX + name
    return name


def canonical_item_name(name: str) -> str:
    if name.lower().startswith("iaasvmcontainerv2;"):
        return IAAS_ITEM_PREFIX + name
    return name


def short_container_name(name: str) -> str:
    """The ``containerName`` property of an item: the container name without its type prefix."""
    lowered = name.lower()
    for prefix in ("iaasvmcontainer;", "vmappcontainer;", "storagecontainer;"):
        if lowered.startswith(prefix) and name.count(";") >= 2:
            return name[len(prefix) :]
    return name


def vm_container_names(resource_group: str, vm_name: str) -> tuple[str, str]:
    """The container and item names Azure gives an Azure VM."""
    core = f"iaasvmcontainerv2;{resource_group};{vm_name}"
    return IAAS_CONTAINER_PREFIX + core, IAAS_ITEM_PREFIX + core


def workload_container_name(resource_group: str, vm_name: str) -> str:
    return f"VMAppContainer;compute;{resource_group};{vm_name}"


def storage_container_name(resource_group: str, account: str) -> str:
    return f"StorageContainer;Storage;{resource_group};{account}"


def norm_location(location: str) -> str:
    """ARM's normalised region name: ``West US`` -> ``westus``."""
    return location.replace(" ", "").lower()
