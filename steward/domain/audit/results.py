"""Findings, coverage and the audit result document (versioned: :data:`SCHEMA_VERSION`)."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from steward.domain.audit.controls import CONTROLS, Control, Severity, control
from steward.domain.audit.inventory import InvalidPreviousResult, iso, parse_generated
from steward.domain.kernel import (
    id_key,
)

#: consumer could notice (removed or renamed field, changed meaning); add fields freely within a major.
SCHEMA_VERSION: Final = "1.0"

#: How many earlier runs the trend carries forward.
TREND_LENGTH: Final = 30


@dataclass(frozen=True)
class Finding:
    id: str
    control_id: str
    severity: Severity
    resource_id: str
    resource_type: str
    subscription_id: str
    location: str
    why: str
    fix: str
    details: Mapping[str, str] = field(default_factory=dict, hash=False)

    @property
    def control(self) -> Control:
        return control(self.control_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "control": self.control_id,
            "title": self.control.title,
            "severity": self.severity.value,
            "resourceId": self.resource_id,
            "resourceType": self.resource_type,
            "subscriptionId": self.subscription_id,
            "location": self.location,
            "why": self.why,
            "fix": self.fix,
            "details": dict(sorted(self.details.items())),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Finding:
        return cls(
            id=str(data["id"]),
            control_id=str(data["control"]),
            severity=Severity(str(data["severity"])),
            resource_id=str(data["resourceId"]),
            resource_type=str(data.get("resourceType", "")),
            subscription_id=str(data.get("subscriptionId", "")),
            location=str(data.get("location", "")),
            why=str(data.get("why", "")),
            fix=str(data.get("fix", "")),
            details={str(k): str(v) for k, v in dict(data.get("details", {})).items()},
        )


def finding_id(control_id: str, subject_id: str, discriminator: str = "") -> str:
    """Stable across runs: the same control on the same subject (and item) gives the same id."""
    text = "|".join((control_id, id_key(subject_id), id_key(discriminator)))
    return f"{control_id}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class CoverageCell:
    """Counts for one slice of the estate (a subscription, region or type)."""

    resources: int = 0
    required: int = 0
    protected: int = 0
    required_protected: int = 0

    def add(self, *, required: bool, protected: bool) -> CoverageCell:
        return CoverageCell(
            resources=self.resources + 1,
            required=self.required + int(required),
            protected=self.protected + int(protected),
            required_protected=self.required_protected + int(required and protected),
        )

    @property
    def ratio(self) -> float:
        """Share of the resources the rules require that are actively protected (1.0 when none required)."""
        return self.required_protected / self.required if self.required else 1.0

    def to_json(self) -> dict[str, Any]:
        return {
            "resources": self.resources,
            "required": self.required,
            "protected": self.protected,
            "requiredProtected": self.required_protected,
            "ratio": round(self.ratio, 4),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CoverageCell:
        return cls(
            int(data["resources"]),
            int(data["required"]),
            int(data["protected"]),
            int(data["requiredProtected"]),
        )


@dataclass(frozen=True)
class Coverage:
    total: CoverageCell
    by_subscription: Mapping[str, CoverageCell] = field(hash=False)
    by_region: Mapping[str, CoverageCell] = field(hash=False)
    by_type: Mapping[str, CoverageCell] = field(hash=False)

    def to_json(self) -> dict[str, Any]:
        def table(cells: Mapping[str, CoverageCell]) -> dict[str, Any]:
            return {k: cells[k].to_json() for k in sorted(cells)}

        return {
            "total": self.total.to_json(),
            "bySubscription": table(self.by_subscription),
            "byRegion": table(self.by_region),
            "byType": table(self.by_type),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Coverage:
        def table(raw: Mapping[str, Any]) -> dict[str, CoverageCell]:
            return {str(k): CoverageCell.from_json(v) for k, v in raw.items()}

        return cls(
            total=CoverageCell.from_json(data["total"]),
            by_subscription=table(data["bySubscription"]),
            by_region=table(data["byRegion"]),
            by_type=table(data["byType"]),
        )


@dataclass(frozen=True)
class TrendPoint:
    """One earlier (or this) run, summarised for the trend chart."""

    generated_at: datetime
    coverage_ratio: float
    findings_by_severity: Mapping[str, int] = field(hash=False)

    def to_json(self) -> dict[str, Any]:
        return {
            "generatedAt": iso(self.generated_at),
            "coverageRatio": round(self.coverage_ratio, 4),
            "findingsBySeverity": {s.value: int(self.findings_by_severity.get(s.value, 0)) for s in Severity},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TrendPoint:
        return cls(
            generated_at=parse_generated(data["generatedAt"]),
            coverage_ratio=float(data["coverageRatio"]),
            findings_by_severity={str(k): int(v) for k, v in dict(data["findingsBySeverity"]).items()},
        )


@dataclass(frozen=True)
class AuditResult:
    generated_at: datetime
    findings: tuple[Finding, ...]
    coverage: Coverage
    #: Ids of findings that were not in the previous run (all of them when there is no previous run).
    new_finding_ids: frozenset[str]
    #: Findings of the previous run that no longer fire.
    resolved: tuple[Finding, ...]
    #: Earlier runs, oldest first, then this one (at most TREND_LENGTH + 1 points).
    trend: tuple[TrendPoint, ...]
    subscriptions: tuple[str, ...]
    counts: Mapping[str, int] = field(hash=False)  # resources, vaults, protectedItems, backupInstances

    @property
    def new_findings(self) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.id in self.new_finding_ids)

    def by_severity(self) -> dict[str, int]:
        counted = Counter(f.severity.value for f in self.findings)
        return {s.value: counted.get(s.value, 0) for s in Severity}

    def at_or_above(self, threshold: Severity) -> tuple[Finding, ...]:
        return tuple(f for f in self.findings if f.severity.rank >= threshold.rank)

    def to_json(self) -> dict[str, Any]:
        return {
            "schemaVersion": SCHEMA_VERSION,
            "generatedAt": iso(self.generated_at),
            "subscriptions": list(self.subscriptions),
            "counts": dict(sorted(self.counts.items())),
            "summary": {
                "findingsBySeverity": self.by_severity(),
                "new": len(self.new_finding_ids),
                "resolved": len(self.resolved),
            },
            "coverage": self.coverage.to_json(),
            "controls": [
                {
                    "id": c.id,
                    "title": c.title,
                    "severity": c.severity.value,
                    "description": c.description,
                    "fix": c.fix,
                }
                for c in CONTROLS.values()
            ],
            "findings": [{**f.to_json(), "new": f.id in self.new_finding_ids} for f in self.findings],
            "resolved": [f.to_json() for f in self.resolved],
            "trend": [p.to_json() for p in self.trend],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AuditResult:
        version = str(data.get("schemaVersion", ""))
        if version.split(".", maxsplit=1)[0] != SCHEMA_VERSION.split(".", maxsplit=1)[0]:
            raise InvalidPreviousResult(
                f"stored audit result has schemaVersion {version!r}; this code reads {SCHEMA_VERSION}"
            )
        try:
            findings = tuple(Finding.from_json(f) for f in data["findings"])
            return cls(
                generated_at=parse_generated(data["generatedAt"]),
                findings=findings,
                coverage=Coverage.from_json(data["coverage"]),
                new_finding_ids=frozenset(str(f["id"]) for f in data["findings"] if f.get("new")),
                resolved=tuple(Finding.from_json(f) for f in data.get("resolved", [])),
                trend=tuple(TrendPoint.from_json(p) for p in data.get("trend", [])),
                subscriptions=tuple(str(s) for s in data.get("subscriptions", [])),
                counts={str(k): int(v) for k, v in dict(data.get("counts", {})).items()},
            )
        except (KeyError, TypeError, ValueError) as error:
            raise InvalidPreviousResult(f"stored audit result is malformed: {error!r}") from error
