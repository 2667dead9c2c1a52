"""The import's shared batch loop: chunks of the limit, what a chunk could not write joins those
left for the engine, one ``import_batched`` line with the documented fields; QBO batch ids."""

from __future__ import annotations

import io
import json
import uuid

import pytest

from shared.domain.connections import Connection
from shared.infra.logging import configure_logging
from shared.ingest.batch_writer import fault_reason, qbo_batch_id, write_batched

CONNECTION = Connection(uuid.uuid4(), "company-1", "realm-1", "active", {})


@pytest.fixture
def captured() -> io.StringIO:
    buffer = io.StringIO()
    configure_logging("DEBUG", "json", stream=buffer)
    return buffer


def _batched_lines(buffer: io.StringIO) -> list[dict[str, object]]:
    found = [json.loads(line) for line in buffer.getvalue().splitlines() if line.strip()]
    return [line for line in found if line.get("event") == "import_batched"]


async def test_chunks_of_the_limit_and_the_refused_join_those_left(captured: io.StringIO) -> None:
    chunks: list[list[int]] = []

    async def write(chunk: list[int]) -> list[int]:
        chunks.append(chunk)
        return [n for n in chunk if n % 10 == 0]  # these the platform refused

    left = await write_batched(
        CONNECTION,
        "Invoice",
        75,
        (list(range(1, 71)), [-1, -2, -3, -4, -5]),
        write,
        limit=30,
        requests=lambda: len(chunks),
    )
    assert [len(c) for c in chunks] == [30, 30, 10]
    assert left == [-1, -2, -3, -4, -5, 10, 20, 30, 40, 50, 60, 70]
    (line,) = _batched_lines(captured)
    assert {k: line[k] for k in ("entity", "found", "batched", "left_to_engine", "requests")} == {
        "entity": "Invoice",
        "found": 75,
        "batched": 63,
        "left_to_engine": 12,
        "requests": 3,
    }
    assert line["connection_id"] == str(CONNECTION.id)
    assert "up_to_date" not in line, "only the paths that count it log it"


async def test_records_up_to_date_are_neither_batched_nor_left(captured: io.StringIO) -> None:
    async def write(chunk: list[str]) -> list[str]:
        return []

    left = await write_batched(
        CONNECTION,
        "Contact",
        10,
        (["a", "b"], ["c"]),
        write,
        limit=30,
        requests=lambda: 1,
        up_to_date=7,
    )
    assert left == ["c"]
    (line,) = _batched_lines(captured)
    assert (line["batched"], line["up_to_date"], line["left_to_engine"]) == (2, 7, 1)


async def test_nothing_planned_sends_nothing(captured: io.StringIO) -> None:
    async def write(chunk: list[str]) -> list[str]:
        raise AssertionError("no chunk to write")

    assert await write_batched(
        CONNECTION, "Bill", 2, ([], ["x", "y"]), write, limit=30, requests=lambda: 0
    ) == ["x", "y"]
    assert _batched_lines(captured)[0]["batched"] == 0


def test_a_batch_id_is_the_same_for_the_same_batch_and_fits_qbo() -> None:
    items = [{"bId": "0", "operation": "create", "Invoice": {"Line": [{"Amount": "1.00"}]}}]
    first = qbo_batch_id("imd", ["c", "Invoice", items])
    assert first == qbo_batch_id("imd", ["c", "Invoice", [dict(items[0])]])
    assert first != qbo_batch_id("imd", ["c", "Invoice", [{**items[0], "bId": "1"}]])
    assert len(first) <= 50, "QBO refuses a requestid over 50 characters"


def test_a_batch_items_fault_gives_its_reason() -> None:
    fault = {"Fault": {"Error": [{"Message": "Object Not Found", "Detail": "Customer 26"}]}}
    assert fault_reason(fault) == "Customer 26"
    assert fault_reason({"Fault": {"Error": [{"Message": "Invalid"}]}}) == "Invalid"
    assert fault_reason({"bId": "3"}) == "refused"
