"""The QBO query language, the subset clients use.

``select * | count(*) | a, b from X [where c (and c)*] [orderby f [asc|desc], ...]
[startposition N] [maxresults M]`` with conditions ``f op v``, ``f in (v, ...)``, ``f like '%v%'``
and dotted fields (``MetaData.LastUpdatedTime``). Keywords and field names are case-insensitive,
as in QBO; string comparisons are case-insensitive too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sandboxes.qbo import errors
from sandboxes.qbo.clock import parse_time
from sandboxes.qbo.entities import ENTITIES, Kind, canonical
from sandboxes.qbo.store import Obj

MAX_RESULTS = 1000
DEFAULT_RESULTS = 100
_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<num>-?\d+(?:\.\d+)?)(?![\w.])"
    r"|(?P<op><=|>=|!=|<>|=|<|>)|(?P<punct>[(),*])|(?P<word>[A-Za-z_][\w.]*))"
)
_TRUE_FALSE = {"true": True, "false": False}


@dataclass
class Condition:
    path: str
    op: str  # = != < > <= >= in like
    values: list[Any]


@dataclass
class Query:
    entity: str
    count: bool = False
    fields: list[str] | None = None  # None means *
    where: list[Condition] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)  # (path, descending)
    start: int = 1
    max_results: int = DEFAULT_RESULTS


def tokenize(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos, text = 0, text.strip().rstrip(";")
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise errors.query_parse(f"Encountered unexpected text at position {pos}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.pos = 0

    def peek(self) -> str:
        return self.tokens[self.pos][1].lower() if self.pos < len(self.tokens) else ""

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise errors.query_parse(f"Unexpected end of query, expected {expected or 'more'}")
        token = self.tokens[self.pos]
        if expected is not None and token[1].lower() != expected:
            raise errors.query_parse(f'Encountered "{token[1]}", expected "{expected}"')
        self.pos += 1
        return token

    def literal(self) -> Any:
        kind, text = self.take()
        if kind == "str":
            return re.sub(r"\\(.)", r"\1", text[1:-1])
        if kind == "num":
            return Decimal(text)
        if text.lower() in _TRUE_FALSE:
            return _TRUE_FALSE[text.lower()]
        raise errors.query_parse(f'Encountered "{text}", expected a value')


def parse(text: str) -> Query:
    parser = _Parser(text)
    parser.take("select")
    count, fields = _select_list(parser)
    parser.take("from")
    name = parser.take()[1]
    entity = canonical(name)
    if entity is None:
        raise errors.QboFault(
            400,
            "4001",
            "Invalid query",
            f"QueryValidationError: Invalid context declaration : {name}",
        )
    query = Query(entity, count=count, fields=fields)
    if parser.peek() == "where":
        parser.take()
        query.where.append(_condition(parser))
        while parser.peek() == "and":
            parser.take()
            query.where.append(_condition(parser))
    _tail(parser, query)
    if parser.pos != len(parser.tokens):
        raise errors.query_parse(f'Encountered "{parser.tokens[parser.pos][1]}"')
    return query


def _select_list(parser: _Parser) -> tuple[bool, list[str] | None]:
    if parser.peek() == "*":
        parser.take()
        # "select *, Sku from Item" (python-quickbooks) asks for extra fields on top of all.
        while parser.peek() == ",":
            parser.take()
            parser.take()
        return False, None
    if parser.peek() == "count":
        parser.take()
        parser.take("(")
        parser.take("*")
        parser.take(")")
        return True, None
    fields = [parser.take()[1]]
    while parser.peek() == ",":
        parser.take()
        fields.append(parser.take()[1])
    return False, fields


def _condition(parser: _Parser) -> Condition:
    kind, path = parser.take()
    if kind != "word":
        raise errors.query_parse(f'Encountered "{path}", expected a field name')
    op = parser.take()[1].lower()
    if op == "in":
        parser.take("(")
        values = [parser.literal()]
        while parser.peek() == ",":
            parser.take()
            values.append(parser.literal())
        parser.take(")")
        return Condition(path, "in", values)
    if op not in ("=", "!=", "<>", "<", ">", "<=", ">=", "like"):
        raise errors.query_parse(f'Encountered "{op}", expected an operator')
    return Condition(path, "!=" if op == "<>" else op, [parser.literal()])


def _tail(parser: _Parser, query: Query) -> None:
    while parser.peek():
        word = parser.peek()
        if word in ("orderby", "order"):
            parser.take()
            if word == "order":
                parser.take("by")
            query.order.append(_order_item(parser))
            while parser.peek() == ",":
                parser.take()
                query.order.append(_order_item(parser))
        elif word in ("startposition", "maxresults"):
            parser.take()
            raw = parser.literal()
            if isinstance(raw, bool) or not str(raw).isdigit():
                raise errors.query_parse(f"{word} needs a whole number, got {raw!r}")
            value = int(raw)
            if word == "startposition":
                query.start = max(1, value)
            else:
                # QBO returns at most 1000 rows a page, whatever is asked.
                query.max_results = max(0, min(MAX_RESULTS, value))
        else:
            return


def _order_item(parser: _Parser) -> tuple[str, bool]:
    path = parser.take()[1]
    descending = False
    if parser.peek() in ("asc", "desc"):
        descending = parser.take()[1].lower() == "desc"
    return path, descending


def values_at(obj: Obj, path: str) -> list[Any]:
    """Every value at a dotted path; arrays (e.g. AttachableRef) fan out, as in QBO."""
    current: list[Any] = [obj]
    for part in path.split("."):
        lowered = part.lower()
        found: list[Any] = []
        for value in current:
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict):
                    found.extend(v for k, v in item.items() if k.lower() == lowered)
        current = found
    flat: list[Any] = []
    for value in current:
        flat.extend(value if isinstance(value, list) else [value])
    return [v for v in flat if v is not None]


def lookup(obj: Obj, path: str) -> Any:
    found = values_at(obj, path)
    return found[0] if found else None


def _comparable(value: Any, like: Any) -> Any:
    """Bring a stored value and a literal to one comparable type."""
    if isinstance(like, bool) or isinstance(value, bool):
        return value if isinstance(value, bool) else str(value).lower() == "true"
    if isinstance(like, Decimal):
        try:
            return Decimal(str(value))
        except InvalidOperation:
            return None
    if isinstance(like, datetime):
        return parse_time(str(value)) if "T" in str(value) else None
    if isinstance(value, dict) and "value" in value:  # refs compare by id
        return str(value["value"]).lower()
    return str(value).lower()


def _coerce(actual: Any, literal: Any) -> Any:
    """Quoted literals compare as the stored type: Balance > '0' is numeric, Active = 'true'."""
    if not isinstance(literal, str):
        return literal
    if isinstance(actual, bool):
        return literal.lower() == "true"
    if isinstance(actual, Decimal | int):
        try:
            return Decimal(literal)
        except InvalidOperation:
            return literal
    return literal


def _literal_form(literal: Any) -> Any:
    if isinstance(literal, str) and "T" in literal and parse_time(literal) is not None:
        return parse_time(literal)
    return literal.lower() if isinstance(literal, str) else literal


def matches(obj: Obj, cond: Condition) -> bool:
    return any(_matches_value(actual, cond) for actual in values_at(obj, cond.path))


def _matches_value(actual: Any, cond: Condition) -> bool:
    if cond.op == "like":
        pattern = "".join(".*" if ch == "%" else re.escape(ch) for ch in str(cond.values[0]))
        return re.fullmatch(pattern, str(actual), re.IGNORECASE | re.DOTALL) is not None
    for raw in cond.values:
        literal = _literal_form(_coerce(actual, raw))
        value = _comparable(actual, literal)
        if value is None:
            continue
        if _compare(value, cond.op, literal):
            return True
    return False


def _compare(value: Any, op: str, literal: Any) -> bool:
    if op in ("=", "in"):
        return bool(value == literal)
    if op == "!=":
        return bool(value != literal)
    try:
        return bool(
            {"<": value < literal, ">": value > literal, "<=": value <= literal}.get(
                op, value >= literal
            )
        )
    except TypeError:
        return False


def _sort_key(obj: Obj, path: str) -> tuple[int, Any]:
    value = lookup(obj, path)
    if value is None:
        return (3, "")
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return (0, Decimal(value))
    when = parse_time(str(value)) if "T" in str(value) else None
    if when is not None:
        return (1, when)
    text = str(value)
    return (0, Decimal(text)) if text.isdigit() else (2, text.lower())


def _by_id(query: Query, table: dict[str, Obj]) -> list[Obj]:
    """Candidate rows: straight from the table for ``Id = v`` / ``Id in (...)`` (QBO indexes
    Id; scanning a 10,000-row table per lookup would make the sandbox, not the client, the
    bottleneck). Every condition is still checked on the candidates, so answers are unchanged."""
    for cond in query.where:
        if cond.path.lower() != "id" or cond.op not in ("=", "in"):
            continue
        keys = []
        for value in cond.values:
            if isinstance(value, bool):
                break
            key = str(value)
            if not key.isdigit() and not isinstance(value, str):
                break  # e.g. 5.0, which compares numerically: leave it to the scan
            keys.append(key)
        else:
            return [table[k] for k in dict.fromkeys(keys) if k in table]
    return list(table.values())


def run(query: Query, table: dict[str, Obj]) -> tuple[list[Obj], int]:
    """Rows of the requested page and the total number that matched."""
    rows = _by_id(query, table)
    mentions_active = any(c.path.lower() == "active" for c in query.where)
    if ENTITIES[query.entity].kind is Kind.NAME_LIST and not mentions_active:
        # QBO returns only active name-list records unless the query asks about Active.
        rows = [r for r in rows if r.get("Active", True)]
    rows = [r for r in rows if all(matches(r, c) for c in query.where)]
    rows.sort(key=lambda r: _sort_key(r, "Id"))
    for path, descending in reversed(query.order):
        rows.sort(key=lambda r, p=path: _sort_key(r, p), reverse=descending)  # type: ignore[misc]
    total = len(rows)
    page = rows[query.start - 1 : query.start - 1 + query.max_results]
    if query.fields is not None:
        page = [_project(r, query.fields) for r in page]
    return page, total


def _project(obj: Obj, fields: list[str]) -> Obj:
    out: Obj = {"Id": obj["Id"]}
    for path in fields:
        head = path.split(".")[0]
        key = next((k for k in obj if k.lower() == head.lower()), None)
        if key is not None:
            out[key] = obj[key]
    out["domain"] = "QBO"
    out["sparse"] = True
    return out
