"""The run search grammar: ``field op value [and field op value]…``.

Fields: ``metrics.KEY``, ``params.KEY``, ``tags.KEY`` and run attributes
(``status``, ``name``, ``run_id``, ``start_time``, ``end_time``, ``duration``,
``user``, ``notebook_path``, ``project``, ``git_commit``, ``job_run_id``,
``batch_id``; ``attributes.`` may prefix them).  Keys with other characters go
in backquotes: ``metrics.`f1 score```.
Operators: ``= != < <= > >=``, ``like`` / ``ilike`` (``%`` wildcard), ``in (…)``,
``not in (…)``, ``is null``, ``is not null``.  Values: numbers, ``'strings'`` or
``"strings"``, ``true``/``false``.  Clauses are joined with ``and``.

Params keep their type: ``params.C = 1`` compares numbers (1 and 1.0 alike), ``params.flag = true``
booleans, and a quoted value the text as recorded (``params.C = '1'``, as MLflow users write it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import SearchError

ATTRIBUTES = {
    "status", "name", "run_id", "start_time", "end_time", "duration", "user", "notebook_path",
    "project", "git_commit", "job_run_id", "batch_id", "execution_count",
}  # fmt: skip
_ATTRIBUTE_ALIASES = {"id": "run_id", "run_name": "name", "attributes.run_id": "run_id"}
_KINDS = ("metrics", "params", "tags", "attributes")
_COMPARISONS = ("=", "!=", "<", "<=", ">", ">=")

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
      | (?P<number>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<punct>[(),])
      | (?P<field>(?:[A-Za-z_][\w]*\.)?(?:`[^`]+`|[A-Za-z_][\w.\-]*))
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Clause:
    """One comparison: ``kind`` is metrics/params/tags/attribute, ``key`` the name."""

    kind: str
    key: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class Order:
    kind: str
    key: str
    descending: bool


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out, pos = [], 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            where = len(text[:pos]) + (len(text[pos:]) - len(text[pos:].lstrip()))
            raise SearchError(
                f"Cannot read the filter at position {where}: {text[where:where + 20]!r}. "
                "Write clauses like metrics.accuracy > 0.9 and status = 'finished'.",
                filter=text, position=where,
            )  # fmt: skip
        kind = m.lastgroup
        out.append((kind, m.group(kind), m.start(kind)))
        pos = m.end()
    return out


def parse_field(text: str, *, context: str = "filter") -> tuple[str, str]:
    """``(kind, key)`` of ``metrics.acc``, ``params.C``, ``tags.owner`` or an attribute."""
    head, dot, rest = text.partition(".")
    if dot and head in _KINDS:
        key = rest[1:-1] if rest.startswith("`") and rest.endswith("`") else rest
        if not key:
            raise SearchError(f"{text!r} names no key: write {head}.NAME.", field=text)
        if head == "attributes":
            return "attribute", _attribute(key, text)
        return head, key
    if dot and head not in _KINDS:
        kinds = ", ".join(f"{k}." for k in _KINDS)
        raise SearchError(f"Unknown field {text!r} in the {context}: use {kinds} or a run attribute ({', '.join(sorted(ATTRIBUTES))}).", field=text)
    return "attribute", _attribute(text, text)


def _attribute(name: str, text: str) -> str:
    name = _ATTRIBUTE_ALIASES.get(name, name)
    if name not in ATTRIBUTES:
        raise SearchError(
            f"Unknown run attribute {text!r}: use one of {', '.join(sorted(ATTRIBUTES))}, or metrics.NAME, params.NAME, tags.NAME.",
            field=text,
        )
    return name


def _literal(kind: str, text: str) -> Any:
    if kind == "string":
        body = text[1:-1]
        return re.sub(r"\\(.)", r"\1", body)
    if kind == "number":
        return float(text) if any(c in text for c in ".eE") else int(text)
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise SearchError(f"{text!r} is not a value: quote strings ('{text}'), numbers as they are.", value=text)


def parse_filter(text: str | None) -> list[Clause]:
    """The clauses of a filter string (empty or None: no filter)."""
    if text is None or not text.strip():
        return []
    tokens = _tokens(text)
    clauses: list[Clause] = []
    i = 0

    def expect(what: str) -> tuple[str, str, int]:
        if i >= len(tokens):
            raise SearchError(f"The filter ends too early: {what} expected after {text.strip()!r}.", filter=text)
        return tokens[i]

    starts: list[int] = []
    while i < len(tokens):
        try:
            starts.append(tokens[i][2])
            kind, value, _pos = expect("a field")
            if kind != "field":
                raise SearchError(f"Expected a field (metrics.NAME, params.NAME, tags.NAME, status…) at {value!r}.", filter=text)
            field_kind, key = parse_field(value)
            i += 1
            op_kind, op, _ = expect(f"an operator after {value}")
            op_lower = op.lower()
            if op_kind == "op":
                op = "!=" if op == "<>" else op
                i += 1
                vkind, vtext, _ = expect(f"a value after {value} {op}")
                if vkind not in ("string", "number", "field"):
                    raise SearchError(f"Expected a value after {value} {op}, got {vtext!r}.", filter=text)
                clauses.append(Clause(field_kind, key, op, _literal(vkind, vtext)))
                i += 1
            elif op_kind == "field" and op_lower in ("like", "ilike"):
                i += 1
                vkind, vtext, _ = expect(f"a quoted pattern after {value} {op_lower}")
                if vkind != "string":
                    raise SearchError(f"{op_lower} needs a quoted pattern, e.g. {value} {op_lower} 'train%'.", filter=text)
                clauses.append(Clause(field_kind, key, op_lower, _literal(vkind, vtext)))
                i += 1
            elif op_kind == "field" and op_lower in ("in", "not"):
                negate = op_lower == "not"
                i += 1
                if negate:
                    nkind, ntext, _ = expect("in after not")
                    if ntext.lower() != "in":
                        raise SearchError(f"Expected 'not in (…)' after {value}, got 'not {ntext}'.", filter=text)
                    i += 1
                items, i = _value_list(tokens, i, text, value)
                clauses.append(Clause(field_kind, key, "not in" if negate else "in", tuple(items)))
            elif op_kind == "field" and op_lower == "is":
                i += 1
                nkind, ntext, _ = expect("null or not null after is")
                negate = ntext.lower() == "not"
                if negate:
                    i += 1
                    nkind, ntext, _ = expect("null after is not")
                if ntext.lower() != "null":
                    raise SearchError(f"Expected 'is null' or 'is not null' after {value}.", filter=text)
                clauses.append(Clause(field_kind, key, "is not null" if negate else "is null"))
                i += 1
            else:
                allowed = "=, !=, <, <=, >, >=, like, ilike, in (…), not in (…), is null, is not null"
                raise SearchError(f"Unknown operator {op!r} after {value}: use {allowed}.", filter=text, operator=op)
            if i < len(tokens):
                jkind, joiner, _ = tokens[i]
                if joiner.lower() == "or":
                    raise SearchError("'or' is not supported: run two searches, or use in (…) for one field.", filter=text)
                if jkind != "field" or joiner.lower() != "and":
                    raise SearchError(f"Expected 'and' between clauses, got {joiner!r}.", filter=text)
                i += 1
                if i >= len(tokens):
                    raise SearchError("The filter ends with 'and': add a clause after it.", filter=text)
        except SearchError as exc:
            raise _located(exc, text, tokens[i][2] if i < len(tokens) else len(text)) from None
    for clause, start in zip(clauses, starts):
        try:
            _check_types(clause)
        except SearchError as exc:
            raise _located(exc, text, start) from None
    return clauses


def _located(exc: SearchError, text: str, position: int) -> SearchError:
    """``exc`` with where it happened: the position and the text from there (one line, for the CLI)."""
    if "position" in exc.fields:
        return exc
    where = f"at position {position}: {text[position:position + 24]!r}" if text[position:].strip() else "at the end"
    return SearchError(f"{exc} ({where})", **exc.fields, position=position)


def _value_list(tokens, i: int, text: str, field: str) -> tuple[list[Any], int]:
    if i >= len(tokens) or tokens[i][1] != "(":
        raise SearchError(f"in needs a parenthesised list, e.g. {field} in ('a', 'b').", filter=text)
    i += 1
    items = []
    while True:
        if i >= len(tokens):
            raise SearchError(f"The list after {field} in is not closed: add ')'.", filter=text)
        kind, value, _ = tokens[i]
        if kind not in ("string", "number"):
            raise SearchError(f"Expected a value in the list after {field} in, got {value!r}.", filter=text)
        items.append(_literal(kind, value))
        i += 1
        if i < len(tokens) and tokens[i][1] == ",":
            i += 1
            continue
        if i < len(tokens) and tokens[i][1] == ")":
            return items, i + 1
        if i >= len(tokens):
            raise SearchError(f"The list after {field} in is not closed: add ')'.", filter=text)
        raise SearchError(f"Expected ',' or ')' in the list after {field} in.", filter=text)


_NUMERIC_ATTRIBUTES = {"start_time", "end_time", "duration", "execution_count"}


def _check_types(clause: Clause) -> None:
    values = clause.value if isinstance(clause.value, tuple) else (clause.value,)
    if clause.kind == "metrics" and clause.op not in ("is null", "is not null"):
        if clause.op in ("like", "ilike") or any(isinstance(v, (str, bool)) for v in values):
            raise SearchError(f"metrics.{clause.key} is a number: compare it with a number (e.g. > 0.9).", field=f"metrics.{clause.key}")
    if clause.kind == "tags" and any(not isinstance(v, str) for v in values if v is not None):
        raise SearchError(f"Tags are text: quote the value (tags.{clause.key} = '{values[0]}').", field=f"tags.{clause.key}")
    if clause.kind == "attribute" and clause.key in _NUMERIC_ATTRIBUTES and any(isinstance(v, str) for v in values):
        raise SearchError(f"{clause.key} is a number (seconds): compare it with a number.", field=clause.key)
    if clause.kind == "attribute" and clause.key not in _NUMERIC_ATTRIBUTES and clause.op in ("<", "<=", ">", ">="):
        if any(not isinstance(v, str) for v in values):
            raise SearchError(f"{clause.key} is text: quote the value.", field=clause.key)


def quote(value: str) -> str:
    """``value`` as a quoted string of the grammar (for filters built from options)."""
    return "'" + str(value).replace("\\", "\\\\").replace("'", "\\'") + "'"


def parse_order(items: list[str] | str | None) -> list[Order]:
    """``["metrics.accuracy desc", "start_time"]`` → orders (default ascending, like SQL)."""
    if not items:
        return []
    if isinstance(items, str):
        items = [items]
    orders = []
    for item in items:
        words = item.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].lower() not in ("asc", "desc")):
            raise SearchError(f"Cannot read order_by {item!r}: write 'metrics.accuracy desc' or 'start_time asc'.", order_by=item)
        kind, key = parse_field(words[0], context="order_by")
        if kind == "tags":
            raise SearchError("Ordering by a tag is not supported: order by a metric, a param or a run attribute.", order_by=item)
        orders.append(Order(kind, key, len(words) == 2 and words[1].lower() == "desc"))
    return orders
