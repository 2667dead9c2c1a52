"""The QBO query language, the subset clients use.

``select * | count(*) | a, b from X [where c (and c)*] [orderby f [asc|desc], ...]
[startposition N] [maxresults M]`` with conditions ``f op v``, ``f in (v, ...)``, ``f like '%v%'``
and dotted fields (``MetaData.LastUpdatedTime``). Keywords and field names are case-insensitive,
as in QBO; string comparisons are case-insensitive too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sandboxes.qbo import errors, filterable
from sandboxes.qbo.entities import canonical

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
    for condition in query.where:
        filterable.check(entity, condition.path)
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
