"""One way every ``steward`` command prints results: ``--output table|json|csv``.

``write_rows`` prints a list of flat records as an aligned table, a JSON array, or CSV with a header line
(``csv`` quotes as Excel does). A command with a richer JSON document prints that itself for ``json``. Table and
CSV cells carry no control character (a newline, an escape sequence: ``_cell``); JSON escapes them.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final, TextIO

OUTPUTS: Final = ("table", "json", "csv")


def _cell(value: Any) -> str:
    """One cell's text, on one line and without control characters: cells quote texts others wrote (Azure's error
    messages, an answer of the app), which must neither drive the terminal (escape sequences) nor forge rows."""
    if value is None:
        return ""
    if isinstance(value, list | tuple | set | frozenset):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, Mapping):
        return json.dumps(value, default=str, sort_keys=True)
    return "".join(c if c.isprintable() else " " for c in str(value))


def write_rows(out: TextIO, rows: Sequence[Mapping[str, Any]], columns: Sequence[str], output: str) -> None:
    """Print ``rows`` (only ``columns``, in that order) as ``output``: table, json or csv."""
    if output == "json":
        json.dump([{c: row.get(c) for c in columns} for row in rows], out, indent=2, default=str)
        out.write("\n")
        return
    if output == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_cell(row.get(c)) for c in columns])
        return
    if output != "table":
        raise ValueError(f"unknown output {output!r}; one of {', '.join(OUTPUTS)}")
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    out.write("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
    for row_cells in cells:
        out.write("  ".join(v.ljust(w) for v, w in zip(row_cells, widths, strict=True)).rstrip() + "\n")
