"""The sandbox's KQL subset: Kusto's semantics where they decide the answer, a refusal for the rest."""

from __future__ import annotations

from typing import Any

import pytest

from sandbox.arm.errors import ArmError
from sandbox.arm.providers import _kql as kql

LEFT = [
    {"id": "/A", "type": "vm", "properties": {"state": "on"}},
    {"id": "/B", "type": "vm", "properties": {"state": "off"}},
    {"id": "/C", "type": "disk", "properties": {}},
]
RIGHT = [{"id": "item-1", "source": "/a"}, {"id": "item-2", "source": "/c"}, {"id": "item-3", "source": "/c"}]
TABLES: dict[str, Any] = {"Resources": lambda: LEFT, "Items": lambda: RIGHT}


def run(query: str) -> list[dict[str, Any]]:
    return kql.run(query, TABLES)


def test_leftouter_keeps_unmatched_rows_with_empty_right_columns_and_renames_clashes() -> None:
    rows = run("Resources | extend source = tolower(id) | join kind=leftouter (Items) on source | project id, id1")
    assert rows == [
        {"id": "/A", "id1": "item-1"},
        {"id": "/B", "id1": None},
        {"id": "/C", "id1": "item-2"},
        {"id": "/C", "id1": "item-3"},
    ]
    inner = run("Resources | extend k = tolower(id) | join kind=inner (Items) on $left.k == $right.source | count")
    assert inner == [{"Count": 3}]


def test_the_default_join_keeps_one_left_row_per_key_and_sorting_is_numeric() -> None:
    doubled = [*LEFT, {"id": "/A", "type": "vm", "properties": {}}]
    rows = kql.run("L | extend source = tolower(id) | join (Items) on source | project id, id1",
                   {"L": lambda: doubled, "Items": lambda: RIGHT})
    assert rows == [{"id": "/A", "id1": "item-1"}, {"id": "/C", "id1": "item-2"}, {"id": "/C", "id1": "item-3"}]
    counts = [{"n": 9}, {"n": 10}, {"n": None}, {"n": 2}]
    assert [r["n"] for r in kql.run("T | order by n desc", {"T": lambda: counts})] == [10, 9, 2, None]
    assert [r["n"] for r in kql.run("T | order by n asc", {"T": lambda: counts})] == [None, 2, 9, 10]


def test_summarize_names_count_columns_as_kusto_does() -> None:
    assert run("Resources | summarize count() by type") == [{"type": "vm", "count_": 2}, {"type": "disk", "count_": 1}]
    assert run("Resources | where type == 'none' | summarize total = count()") == [{"total": 0}]


def test_predicates_and_ordering() -> None:
    assert [r["id"] for r in run("Resources | where properties.state =~ 'ON' or isempty(properties.state)")] == [
        "/A",
        "/C",
    ]
    assert [r["id"] for r in run("Resources | where type !in ('disk') and not(properties.state == 'on')")] == ["/B"]
    assert [r["id"] for r in run("Resources | order by id")] == ["/C", "/B", "/A"]  # descending by default
    assert run("Resources | distinct type | order by type asc") == [{"type": "disk"}, {"type": "vm"}]


@pytest.mark.parametrize(
    ("query", "token"),
    [
        ("Resources | mv-expand properties", "mv-expand"),
        ("Resources | join kind=rightouter (Items) on id", "rightouter"),
        ("Resources | where nosuchcolumn == 'x'", "nosuchcolumn"),
        ("Resources | where strlen(id) > 1", "strlen"),
        ("Nowhere", "Nowhere"),
        ("Resources | take many", "many"),
    ],
)
def test_anything_else_is_a_bad_request_naming_the_token(query: str, token: str) -> None:
    with pytest.raises(ArmError) as refused:
        run(query)
    error = refused.value
    assert (error.status, error.code) == (400, "BadRequest")
    assert error.details[0]["code"] == "InvalidQuery"
    assert error.details[1]["token"] == token
