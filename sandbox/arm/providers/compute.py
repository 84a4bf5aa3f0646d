"""``Microsoft.Compute``: virtual machines and managed disks (create, get, list, PATCH tags, delete).

Shapes follow azure-mgmt-compute 39: VM create 200/201 + ``Azure-AsyncOperation`` (VM PATCH answers 200),
VM delete 202 + ``Location``/``Azure-AsyncOperation``; disk create/update/delete 202 + both headers.
A VM created from an image gets its managed OS disk as a separate ``Microsoft.Compute/disks`` resource.

VM provisioning (issue #13 item 1) -- ``vms = vm_provisioning(sandbox)``:

- a VM create answers 201 with ``provisioningState: Creating`` and turns ``Succeeded`` when it ends
  (``vms.create_seconds``, default 90 Azure seconds); a create that fails leaves the VM resource in place with
  ``provisioningState: Failed`` (MicrosoftDocs/azure-docs ``articles/virtual-machines/states-billing.md``,
  "Provisioning states": Creating, Updating, Failed, Succeeded, Deleting). ``vms.fail_create(name, code)`` makes
  the create of that VM name fail (default code ``AllocationFailed``, ``articles/virtual-machines/
  troubleshooting/allocation-failure.md``); the create's operation ends ``Failed`` with that error.
- with ``PropagationConfig.vm_write_event_on_accept`` the VM's ``ResourceWriteSuccess`` is raised when the PUT is
  accepted (the VM still ``Creating``) instead of when the create ends. INFERRED (issue #13: "a write event can
  arrive while the VM's provisioningState is not yet Succeeded").
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

from sandbox.arm.context import ProviderContext
from sandbox.arm.errors import ArmError
from sandbox.arm.http import Request
from sandbox.arm.providers._tracked import CreatePlan, TrackedType, register_operation_routes, register_tracked
from sandbox.arm.routing import Router

PROVIDER = "Microsoft.Compute"
VM_API_VERSIONS = ("2023-03-01", "2023-07-01", "2023-09-01", "2024-03-01", "2024-07-01", "2024-11-01",
                   "2025-04-01", "2026-04-01")
DISK_API_VERSIONS = ("2023-04-02", "2023-10-02", "2024-03-02", "2025-01-02", "2026-03-02")
OPERATIONS = "/providers/Microsoft.Compute/locations/{location}/operations/{operationId}"
DISK_OPERATIONS = "/providers/Microsoft.Compute/locations/{location}/DiskOperations/{operationId}"


_CTX_ATTRIBUTE = "_vm_provisioning"


class VmProvisioning:
    """Sandbox controls for VM creates: their duration and which ones fail (tests, chaos, demos)."""

    def __init__(self, ctx: ProviderContext) -> None:
        self.ctx = ctx
        self.create_seconds = 90.0
        self._failures: dict[str, tuple[str, str]] = {}

    def fail_create(
        self, vm_name: str, code: str = "AllocationFailed",
        message: str = "Allocation failed. We do not have sufficient capacity for the requested VM size in this "
        "region.",
    ) -> None:
        """The next creates of VMs named ``vm_name`` end Failed with ``code`` (the VM stays, Failed)."""
        self._failures[vm_name.lower()] = (code, message)

    def plan(self, req: Request, ctx: ProviderContext) -> CreatePlan:
        failure = self._failures.get(req.param("vmName").lower())
        return CreatePlan(
            seconds=self.create_seconds,
            fail_with=None if failure is None else ArmError(409, failure[0], failure[1]),
            event_on_accept=ctx.propagation.vm_write_event_on_accept,
        )


def vm_provisioning(sandbox: Any) -> VmProvisioning:
    """The VM provisioning controls of an :class:`~sandbox.arm.server.ArmSandbox` (or of its context)."""
    ctx = getattr(sandbox, "ctx", sandbox)
    controls = getattr(ctx, _CTX_ATTRIBUTE, None)
    if not isinstance(controls, VmProvisioning):
        raise LookupError("this sandbox was started without the compute provider")
    return controls


def _vm_properties(
    req: Request, props: dict[str, Any], existing: dict[str, Any] | None, ctx: ProviderContext
) -> dict[str, Any]:
    previous = (existing or {}).get("properties", {})
    merged = {**previous, **props}
    os_profile = dict(merged.get("osProfile") or {})
    os_profile.pop("adminPassword", None)  # never echoed, as in Azure
    if os_profile:
        merged["osProfile"] = os_profile
    merged.setdefault("hardwareProfile", {"vmSize": "Standard_D2s_v5"})
    # Incarnation: a new vmId and timeCreated per create, kept by updates; a VM deleted and re-created under
    # the same name gets new ones (Compute spec ComputeRP/stable/2024-07-01/virtualMachine.json,
    # VirtualMachineProperties.vmId "the VM unique ID", .timeCreated "the time at which the Virtual Machine
    # resource was created", read-only, from api-version 2021-11-01).
    merged["vmId"] = previous.get("vmId") or str(uuid.uuid4())
    merged["timeCreated"] = previous.get("timeCreated") or ctx.now_iso()
    return merged


def _vm_created(req: Request, vm: dict[str, Any], ctx: ProviderContext) -> None:
    """Create the managed OS disk of a VM built from an image, and point the VM at it."""
    os_disk = (vm["properties"].get("storageProfile") or {}).get("osDisk")
    if not isinstance(os_disk, dict) or str(os_disk.get("createOption", "")).lower() != "fromimage":
        return
    name = os_disk.get("name") or f"{vm['name']}_OsDisk_1_{uuid.uuid4().hex}"
    group = vm["id"].rsplit("/providers/", 1)[0]
    disk_id = f"{group}/providers/Microsoft.Compute/disks/{name}"
    sku = ((os_disk.get("managedDisk") or {}).get("storageAccountType")) or "Premium_LRS"
    disk = ctx.store.put(
        {
            "id": disk_id,
            "name": name,
            "type": "Microsoft.Compute/disks",
            "location": vm["location"],
            "tags": {},
            "managedBy": vm["id"],
            "sku": {"name": sku, "tier": sku.split("_")[0]},
            "properties": {
                "osType": os_disk.get("osType", "Linux"),
                "creationData": {"createOption": "FromImage"},
                "diskSizeGB": int(os_disk.get("diskSizeGB") or 30),
                "diskState": "Attached",
                "uniqueId": str(uuid.uuid4()),
                "timeCreated": ctx.now_iso(),
                "provisioningState": "Succeeded",
            },
        }
    )
    if req.event_facts is not None:  # the compute RP's implicit disk write is an ARM write event too
        facts = replace(req.event_facts, resource_id=disk["id"], operation_name="Microsoft.Compute/disks/write",
                        is_update=False)
        ctx.events.raise_resource_event(facts, "Succeeded")
    with ctx.store.transaction():
        current = ctx.store.get(vm["id"])
        if current is not None:
            current["properties"]["storageProfile"]["osDisk"] = {
                **os_disk,
                "name": name,
                "managedDisk": {**(os_disk.get("managedDisk") or {}), "id": disk_id, "storageAccountType": sku},
            }
            ctx.store.put(current)


def _vm_deleted(req: Request, vm: dict[str, Any], ctx: ProviderContext) -> None:
    """Disks a deleted VM used stay (deleteOption Detach, the default), unattached."""
    for disk in ctx.store.list(resource_type="Microsoft.Compute/disks", subscription_id=req.param("subscriptionId")):
        if str(disk.get("managedBy", "")).lower() == vm["id"].lower():
            disk.pop("managedBy", None)
            disk["properties"]["diskState"] = "Unattached"
            ctx.store.put(disk)


def _disk_properties(
    req: Request, props: dict[str, Any], existing: dict[str, Any] | None, ctx: ProviderContext
) -> dict[str, Any]:
    previous = (existing or {}).get("properties", {})
    merged = {**previous, **props}
    creation = merged.get("creationData")
    if not isinstance(creation, dict) or not creation.get("createOption"):
        raise ArmError(
            400, "InvalidParameter", "Required parameter 'creationData.createOption' is missing (null).",
            target="creationData.createOption",
        )
    if str(creation["createOption"]).lower() == "empty" and not merged.get("diskSizeGB"):
        raise ArmError(
            400, "InvalidParameter", "Required parameter 'diskSizeGB' is missing (null).", target="diskSizeGB"
        )
    merged.setdefault("diskState", "Unattached")
    # Incarnation: DiskProperties.uniqueId "Unique Guid identifying the resource" and .timeCreated "The time
    # when the disk was created", both read-only (Compute spec DiskRP/stable/2024-03-02/disk.json).
    merged["uniqueId"] = previous.get("uniqueId") or str(uuid.uuid4())
    merged["timeCreated"] = previous.get("timeCreated") or ctx.now_iso()
    return merged


VIRTUAL_MACHINES = TrackedType(
    namespace=PROVIDER,
    type_name="virtualMachines",
    name_param="vmName",
    create_status=201,
    async_path=OPERATIONS,
    location_path=None,
    update_async=False,
    delete_async=True,
    build=_vm_properties,
    after_create=_vm_created,
    after_delete=_vm_deleted,
    create_seconds=90.0,
    delete_seconds=60.0,
)

DISKS = TrackedType(
    namespace=PROVIDER,
    type_name="disks",
    name_param="diskName",
    create_status=202,
    async_path=DISK_OPERATIONS,
    location_path=DISK_OPERATIONS + "?monitor=true",
    update_async=True,
    delete_async=True,
    build=_disk_properties,
    create_seconds=20.0,
    delete_seconds=15.0,
    body_on_accept=False,
)


def register(router: Router, ctx: ProviderContext) -> None:
    controls = VmProvisioning(ctx)
    setattr(ctx, _CTX_ATTRIBUTE, controls)
    vms = router.provider(PROVIDER, VM_API_VERSIONS)
    register_tracked(vms, ctx, replace(VIRTUAL_MACHINES, create_plan=controls.plan))
    register_operation_routes(vms, ctx, OPERATIONS, None)
    disks = router.provider(PROVIDER, DISK_API_VERSIONS)
    register_tracked(disks, ctx, DISKS)
    register_operation_routes(disks, ctx, DISK_OPERATIONS, DISK_OPERATIONS + "?monitor=true")
