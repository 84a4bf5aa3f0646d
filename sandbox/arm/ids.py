"""Small, dependency-free ARM resource id parsing for the sandbox.

The sandbox keeps its own parser (it must not depend on the app it tests). Ids keep the casing they were
created with; comparisons go through :func:`id_key` (lower-cased, no trailing slash).
"""

from __future__ import annotations

from dataclasses import dataclass


def id_key(resource_id: str) -> str:
    """The case-insensitive key of an id."""
    return "/" + resource_id.strip("/").lower()


@dataclass(frozen=True)
class ParsedId:
    text: str
    subscription_id: str | None
    resource_group: str | None
    namespace: str | None  # "Microsoft.Compute"; "Microsoft.Resources" for groups and subscriptions
    types: tuple[str, ...]  # ("virtualMachines",) or ("vaults", "backupFabrics", ...)
    names: tuple[str, ...]

    @property
    def full_type(self) -> str:
        return "/".join((self.namespace or "", *self.types))

    @property
    def name(self) -> str:
        return self.names[-1] if self.names else ""

    @property
    def parent(self) -> str | None:
        """The id one level up (a child's parent resource, a top resource's group or subscription)."""
        parts = self.text.strip("/").split("/")
        if len(parts) <= 2:
            return None
        cut = 4 if len(parts) >= 4 and parts[-4].lower() == "providers" else 2
        return "/" + "/".join(parts[:-cut])

    @property
    def resource_group_id(self) -> str | None:
        if self.subscription_id is None or self.resource_group is None:
            return None
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"


def parse_id(resource_id: str) -> ParsedId:
    """Parse ``/subscriptions/{s}[/resourceGroups/{g}][/providers/{ns}/{type}/{name}[/{type}/{name}]...]``."""
    text = "/" + resource_id.strip("/")
    parts = text.strip("/").split("/")
    sub = group = namespace = None
    types: list[str] = []
    names: list[str] = []
    i = 0
    if len(parts) >= 2 and parts[0].lower() == "subscriptions":
        sub = parts[1]
        i = 2
        namespace = "Microsoft.Resources"
        types, names = ["subscriptions"], [sub]
    if len(parts) >= i + 2 and parts[i].lower() == "resourcegroups":
        group = parts[i + 1]
        i += 2
        types, names = ["subscriptions", "resourceGroups"], [sub or "", group]
    if len(parts) >= i + 2 and parts[i].lower() == "providers":
        namespace = parts[i + 1]
        i += 2
        types, names = [], []
        rest = parts[i:]
        for j in range(0, len(rest), 2):
            types.append(rest[j])
            if j + 1 < len(rest):
                names.append(rest[j + 1])
    return ParsedId(text, sub, group, namespace, tuple(types), tuple(names))


def operation_name(resource_id: str, verb: str) -> str:
    """``Microsoft.Compute/virtualMachines/write`` for an id and ``write``/``delete``/``<name>/action``."""
    return f"{parse_id(resource_id).full_type}/{verb}"
