"""The OData ``$filter`` subset the backup APIs use: ``field eq 'value'`` clauses joined by ``and``.

Anything else (``or``, ``ne``, functions, parentheses, unknown fields, a field twice, unterminated
strings) is rejected with a 400 that says what is wrong: an ignored filter would silently widen a query.
String literals follow OData: single quotes, a quote inside is doubled (``'O''Brien'``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sandbox.arm.errors import ArmError

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_./]*")
_BARE = re.compile(r"[A-Za-z0-9_.:\-]+")


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] == " ":
            self.pos += 1

    def at_end(self) -> bool:
        self.skip_ws()
        return self.pos >= len(self.text)

    def ident(self) -> str | None:
        self.skip_ws()
        m = _IDENT.match(self.text, self.pos)
        if not m:
            return None
        self.pos = m.end()
        return m.group(0)

    def literal(self) -> str | None:
        self.skip_ws()
        if self.pos < len(self.text) and self.text[self.pos] == "'":
            out: list[str] = []
            i = self.pos + 1
            while i < len(self.text):
                ch = self.text[i]
                if ch == "'":
                    if i + 1 < len(self.text) and self.text[i + 1] == "'":
                        out.append("'")
                        i += 2
                        continue
                    self.pos = i + 1
                    return "".join(out)
                out.append(ch)
                i += 1
            return None  # unterminated
        m = _BARE.match(self.text, self.pos)
        if not m:
            return None
        self.pos = m.end()
        return m.group(0)


def parse_filter(
    text: str | None, allowed: Iterable[str], *, error_code: str = "InvalidFilter"
) -> dict[str, str]:
    """``"a eq 'x' and b eq 'y'"`` -> ``{"a": "x", "b": "y"}`` (field names spelled as in ``allowed``).

    ``None``/empty -> ``{}``. Raises :class:`ArmError` 400 ``error_code`` for anything outside the subset.
    """
    if text is None or not text.strip():
        return {}
    canonical = {name.lower(): name for name in allowed}

    def reject(reason: str) -> ArmError:
        supported = ", ".join(sorted(canonical.values())) or "none"
        return ArmError(
            400,
            error_code,
            f"The $filter '{text}' is not supported: {reason}. Supported: \"<field> eq '<value>'\" clauses "
            f"joined by 'and', fields: {supported}.",
        )

    scanner = _Scanner(text)
    result: dict[str, str] = {}
    while True:
        field_name = scanner.ident()
        if field_name is None:
            raise reject(f"expected a field name at position {scanner.pos}")
        name = canonical.get(field_name.lower())
        if name is None:
            raise reject(f"unknown field '{field_name}'")
        op = scanner.ident()
        if op is None or op.lower() != "eq":
            raise reject(f"only the 'eq' operator is supported (got '{op or ''}')")
        value = scanner.literal()
        if value is None:
            raise reject(f"expected a quoted value for '{field_name}'")
        if name in result:
            raise reject(f"field '{field_name}' appears more than once")
        result[name] = value
        if scanner.at_end():
            return result
        joiner = scanner.ident()
        if joiner is None or joiner.lower() != "and":
            raise reject(f"only 'and' may join clauses (got '{joiner or scanner.text[scanner.pos:]}')")
