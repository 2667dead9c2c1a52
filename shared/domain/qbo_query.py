"""Pieces of QBO's query language that the engine writes into ``where`` clauses."""

from __future__ import annotations


def query_literal(text: str) -> str:
    """``text`` safe inside a quoted literal of a QBO query."""
    return text.replace("\\", "\\\\").replace("'", "\\'")
