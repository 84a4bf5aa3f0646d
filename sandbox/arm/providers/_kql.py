"""The subset of Kusto (KQL) the sandbox's Resource Graph evaluates, and a clear refusal of the rest.

Supported, with Kusto's semantics where they matter for the answer:

* a table name (case-insensitive, as Resource Graph's are), then tabular operators separated by ``|``:
  ``where``, ``project``, ``project-away``, ``extend``, ``summarize [name =] count() [by col, ...]``,
  ``count``, ``join [kind=innerunique|inner|leftouter] (subquery) on key`` (or ``on $left.a == $right.b``),
  ``take``/``limit``, ``order by``/``sort by`` (``asc``/``desc``), ``distinct``;
* predicates: ``==``, ``!=``, ``=~``, ``!~``, ``in``, ``in~``, ``!in``, ``!in~``, ``and``, ``or``,
  ``not(...)``, ``isempty()``, ``isnotempty()``, ``isnull()``, ``isnotnull()``;
* scalars: column paths (``properties.a.b``; bracket access ``tags['k']`` is not supported), string and
  number literals, ``tostring()``, ``tolower()``, ``toupper()``.

Semantics taken from the Kusto docs (learn.microsoft.com, Kusto query language: ``count`` yields one column
``Count``; ``summarize count()`` names its column ``count_``; ``join`` renames a right-side column whose name
the left already has by appending ``1``; ``kind=leftouter`` keeps unmatched left rows with empty right columns;
sort order is descending unless ``asc``, by the value's type, nulls first ascending; the default join kind
``innerunique`` keeps one left row per key before an inner join).

Anything else is refused the way Resource Graph refuses a query it cannot run: 400 ``BadRequest`` whose
``details`` carry ``InvalidQuery`` ("Query is invalid. Please refer to the documentation for the Azure
Resource Graph service and fix the error before retrying.", the text in Azure/azure-powershell#13762) and a
second detail naming the token the sandbox does not support. Never a silently wrong answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sandbox.arm.errors import ArmError

Row = dict[str, Any]
Table = list[Row]
Tables = Mapping[str, Callable[[], Table]]

INVALID_QUERY = (
    "Query is invalid. Please refer to the documentation for the Azure Resource Graph service and fix the error "
    "before retrying."
)

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<num>\d+(?:\.\d+)?)
      | (?P<op>!in~|in~|!in\b|==|!=|=~|!~|<=|>=|[|(),=<>\[\]])
      | (?P<word>\$?[A-Za-z_][\w\-]*(?:\.[A-Za-z_]\w*)*)
      | (?P<other>\S)
    )""",
    re.VERBOSE,
)


def unsupported(token: str, why: str) -> ArmError:
    return ArmError(
        400,
        "BadRequest",
        f"The sandbox's Resource Graph cannot run this query: {why}.",
        details=[
            {"code": "InvalidQuery", "message": INVALID_QUERY},
            {"code": "UnsupportedBySandbox", "message": why, "token": token},
        ],
    )


@dataclass(frozen=True)
class Tok:
    kind: str  # str | num | op | word | other (a character no supported construct uses)
    text: str

    @property
    def value(self) -> Any:
        if self.kind == "str":
            return re.sub(r"\\(.)", r"\1", self.text[1:-1])
        if self.kind == "num":
            return float(self.text) if "." in self.text else int(self.text)
        return self.text


def tokenize(text: str) -> list[Tok]:
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            bad = text[pos:].strip()[:20]
            raise unsupported(bad, f"the text {bad!r} (position {pos})")
        kind = match.lastgroup or "op"
        tokens.append(Tok(kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Cursor:
    def __init__(self, tokens: list[Tok]) -> None:
        self.tokens, self.i = tokens, 0

    def peek(self, offset: int = 0) -> Tok | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def peek_text(self, offset: int = 0) -> str | None:
        tok = self.peek(offset)
        return None if tok is None else tok.text

    def next(self) -> Tok:
        tok = self.peek()
        if tok is None:
            raise unsupported("<end>", "the query ends too early")
        self.i += 1
        return tok

    def accept(self, text: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind in ("op", "word") and tok.text.lower() == text.lower():
            self.i += 1
            return True
        return False

    def expect(self, text: str) -> None:
        if not self.accept(text):
            raise unsupported(self.peek_text() or "<end>", f"expected {text!r}")

    def at_pipe_or_end(self) -> bool:
        return self.peek_text() in (None, "|", ")")


# ---- scalar expressions ---------------------------------------------------------------------------------

Expr = Callable[[Row], Any]
_FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "tostring": lambda v: "" if v is None else (v if isinstance(v, str) else str(v)),
    "tolower": lambda v: "" if v is None else str(v).lower(),
    "toupper": lambda v: "" if v is None else str(v).upper(),
    "isempty": lambda v: v is None or v == "",
    "isnotempty": lambda v: not (v is None or v == ""),
    "isnull": lambda v: v is None,
    "isnotnull": lambda v: v is not None,
    "not": lambda v: not v,
}


def _path(name: str) -> Expr:
    parts = name.split(".")

    def get(row: Row) -> Any:
        current: Any = row
        for index, key in enumerate(parts):
            if not isinstance(current, dict):
                return None
            if index == 0 and key not in current:
                # a column that does not exist is a query error in Kusto, not a null
                raise unsupported(key, f"the column {key!r} does not exist here")
            current = current.get(key)
        return current

    return get


def _text(value: Any) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)


def _primary(cur: _Cursor) -> Expr:
    tok = cur.next()
    if tok.kind in ("str", "num"):
        literal = tok.value
        return lambda row: literal
    if tok.kind == "op" and tok.text == "(":
        inner = _or(cur)
        cur.expect(")")
        return inner
    if tok.kind == "word":
        if cur.peek_text() == "(":
            name = tok.text.lower()
            if name not in _FUNCTIONS:
                raise unsupported(tok.text, f"the function {tok.text}()")
            cur.next()
            argument = _or(cur)
            cur.expect(")")
            fn = _FUNCTIONS[name]
            return lambda row: fn(argument(row))
        if tok.text.lower() in ("true", "false"):
            flag = tok.text.lower() == "true"
            return lambda row: flag
        return _path(tok.text)
    raise unsupported(tok.text, f"the token {tok.text!r} in an expression")


def _literal_list(cur: _Cursor) -> list[Any]:
    cur.expect("(")
    values = []
    while True:
        tok = cur.next()
        if tok.kind not in ("str", "num"):
            raise unsupported(tok.text, "a non-literal inside in (...)")
        values.append(tok.value)
        if cur.accept(")"):
            return values
        cur.expect(",")


_MEMBERSHIP = ("in", "in~", "!in", "!in~")
_COMPARISONS = ("==", "!=", "=~", "!~")


def _comparison(cur: _Cursor) -> Expr:
    left = _primary(cur)
    op = (cur.peek_text() or "").lower()
    if op in _MEMBERSHIP:
        cur.next()
        values = _literal_list(cur)
        fold = op.endswith("~")
        wanted = {_text(v).lower() if fold else _text(v) for v in values}
        negate = op.startswith("!")

        def member(row: Row) -> bool:
            value = _text(left(row))
            return ((value.lower() if fold else value) in wanted) != negate

        return member
    if op in _COMPARISONS:
        cur.next()
        right = _primary(cur)
        if op == "==":
            return lambda row: _text(left(row)) == _text(right(row))
        if op == "!=":
            return lambda row: _text(left(row)) != _text(right(row))
        if op == "=~":
            return lambda row: _text(left(row)).lower() == _text(right(row)).lower()
        return lambda row: _text(left(row)).lower() != _text(right(row)).lower()
    if op in ("<", ">", "<=", ">="):
        raise unsupported(op, f"the comparison {op!r}")
    return left


def _and(cur: _Cursor) -> Expr:
    terms = [_comparison(cur)]
    while cur.accept("and"):
        terms.append(_comparison(cur))
    return terms[0] if len(terms) == 1 else (lambda row: all(bool(t(row)) for t in terms))


def _or(cur: _Cursor) -> Expr:
    terms = [_and(cur)]
    while cur.accept("or"):
        terms.append(_and(cur))
    return terms[0] if len(terms) == 1 else (lambda row: any(bool(t(row)) for t in terms))


def _assignments(cur: _Cursor) -> list[tuple[str, Expr]]:
    """``a, b = expr, c.d`` -> [(name, expr)]; an unnamed column path keeps its last segment as its name."""
    items = []
    while True:
        first = cur.peek()
        if first is None:
            raise unsupported("<end>", "an empty column list")
        if first.kind == "word" and cur.peek_text(1) == "=":
            cur.next()
            cur.next()
            items.append((first.text, _or(cur)))
        elif first.kind == "word" and cur.peek_text(1) in (None, ",", "|", ")"):
            cur.next()
            items.append((first.text.split(".")[-1], _path(first.text)))
        else:
            raise unsupported(first.text, "an unnamed computed column (name it: col = expr)")
        if not cur.accept(","):
            return items


# ---- tabular operators ------------------------------------------------------------------------------------


def _names(cur: _Cursor) -> list[str]:
    names = []
    while True:
        tok = cur.next()
        if tok.kind != "word":
            raise unsupported(tok.text, "a column name was expected")
        names.append(tok.text)
        if not cur.accept(","):
            return names


def _join_keys(cur: _Cursor) -> tuple[str, str]:
    first = cur.next()
    if first.text.lower().startswith("$left."):
        left_key = first.text.split(".", 1)[1]
        cur.expect("==")
        second = cur.next()
        if not second.text.lower().startswith("$right."):
            raise unsupported(second.text, "on $left.a == $right.b")
        return left_key, second.text.split(".", 1)[1]
    if first.kind != "word":
        raise unsupported(first.text, "a join key")
    return first.text, first.text


def _join(cur: _Cursor, left: Table, tables: Tables) -> Table:
    kind = "innerunique"
    if cur.accept("kind"):
        cur.expect("=")
        kind = cur.next().text.lower()
    if kind not in ("leftouter", "inner", "innerunique"):
        raise unsupported(kind, f"join kind={kind} (supported: innerunique, inner, leftouter)")
    cur.expect("(")
    right = _pipeline(cur, tables)
    cur.expect(")")
    cur.expect("on")
    left_key, right_key = _join_keys(cur)
    if (cur.peek_text() or "").lower() in ("and", ","):
        raise unsupported(cur.peek_text() or "", "a join on more than one key")
    by_key: dict[str, list[Row]] = {}
    for row in right:
        if right_key not in row:
            raise unsupported(right_key, f"the join key {right_key!r} is not a column of the right side")
        by_key.setdefault(_text(row[right_key]), []).append(row)
    right_columns = list(right[0]) if right else []
    if kind == "innerunique":
        # Kusto's default: duplicate keys on the LEFT side are removed first (one row per key is kept), then
        # an inner join (Kusto docs, join operator, "innerunique")
        seen: set[str] = set()
        unique = []
        for row in left:
            if left_key not in row:
                raise unsupported(left_key, f"the join key {left_key!r} is not a column of the left side")
            if _text(row[left_key]) not in seen:
                seen.add(_text(row[left_key]))
                unique.append(row)
        left = unique
    out: Table = []
    for row in left:
        if left_key not in row:
            raise unsupported(left_key, f"the join key {left_key!r} is not a column of the left side")
        matches = by_key.get(_text(row[left_key]), [])
        if not matches and kind == "leftouter":
            matches = [dict.fromkeys(right_columns)]
        for other in matches:
            merged = dict(row)
            for name, value in other.items():
                merged[name + "1" if name in row else name] = value
            out.append(merged)
    return out


def _summarize(cur: _Cursor, rows: Table) -> Table:
    name = "count_"
    if cur.peek_text(1) == "=":
        name = cur.next().text
        cur.next()
    fn = cur.next()
    if fn.text.lower() != "count":
        raise unsupported(fn.text, f"the aggregation {fn.text}() (supported: count())")
    cur.expect("(")
    cur.expect(")")
    keys = _assignments(cur) if cur.accept("by") else []
    groups: dict[tuple[str, ...], Row] = {}
    for row in rows:
        values = {key: expr(row) for key, expr in keys}
        group = groups.setdefault(tuple(_text(v) for v in values.values()), {**values, name: 0})
        group[name] += 1
    if not keys and not groups:
        return [{name: 0}]
    return list(groups.values())


def _order(cur: _Cursor, rows: Table) -> Table:
    cur.expect("by")
    orders = []
    while True:
        column = cur.next().text
        descending = not cur.accept("asc")
        if descending:
            cur.accept("desc")
        orders.append((column, descending))
        if not cur.accept(","):
            break
    for column, descending in reversed(orders):
        # Kusto sorts by the value's type (numbers as numbers), nulls first ascending and last descending
        rows = sorted(rows, key=lambda r, c=column: _sort_key(r.get(c)), reverse=descending)  # type: ignore[misc]
    return rows


def _sort_key(value: Any) -> tuple[int, Any]:
    if value is None or value == "":
        return (0, 0)
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (1, value)
    return (2, _text(value))


def _operator(cur: _Cursor, rows: Table, tables: Tables) -> Table:
    tok = cur.next()
    word = tok.text.lower()
    if word == "where":
        keep = _or(cur)
        return [r for r in rows if bool(keep(r))]
    if word == "project":
        columns = _assignments(cur)
        return [{name: expr(r) for name, expr in columns} for r in rows]
    if word == "extend":
        columns = _assignments(cur)
        return [{**r, **{name: expr(r) for name, expr in columns}} for r in rows]
    if word == "project-away":
        drop = set(_names(cur))
        return [{k: v for k, v in r.items() if k not in drop} for r in rows]
    if word == "count":
        return [{"Count": len(rows)}]
    if word == "summarize":
        return _summarize(cur, rows)
    if word in ("take", "limit"):
        n = cur.next()
        if n.kind != "num":
            raise unsupported(n.text, f"{word} needs a number")
        return rows[: int(n.value)]
    if word in ("order", "sort"):
        return _order(cur, rows)
    if word == "distinct":
        columns = _names(cur)
        seen: dict[tuple[str, ...], Row] = {}
        for r in rows:
            seen.setdefault(tuple(_text(r.get(c)) for c in columns), {c: r.get(c) for c in columns})
        return list(seen.values())
    if word == "join":
        return _join(cur, rows, tables)
    raise unsupported(tok.text, f"the operator {tok.text!r}")


def _pipeline(cur: _Cursor, tables: Tables) -> Table:
    head = cur.next()
    known = {name.lower(): name for name in tables}
    if head.kind != "word" or head.text.lower() not in known:
        raise unsupported(head.text, f"the table {head.text!r} (known: {', '.join(sorted(tables))})")
    rows = [dict(r) for r in tables[known[head.text.lower()]]()]
    while cur.accept("|"):
        rows = _operator(cur, rows, tables)
        if not cur.at_pipe_or_end():
            token = cur.peek_text() or "<end>"
            raise unsupported(token, f"unexpected {token!r} after the operator (not supported here)")
    return rows


def run(text: str, tables: Tables) -> Table:
    """The rows ``text`` yields over ``tables``, or ArmError 400 BadRequest naming what is not supported."""
    cur = _Cursor(tokenize(text))
    rows = _pipeline(cur, tables)
    if cur.peek() is not None:
        token = cur.peek_text() or ""
        raise unsupported(token, f"unexpected {token!r} after the query")
    return rows
