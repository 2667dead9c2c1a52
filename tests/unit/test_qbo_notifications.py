"""Parsing QBO webhook bodies in both formats."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared.domain.events import derive_event_id
from shared.domain.qbo_notifications import MalformedPayload, parse_qbo_payload, parse_time

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def cloud_event(
    n: int, realm: str = "9130", kind: str = "qbo.invoice.updated.v1", **extra: object
) -> dict[str, object]:
    event: dict[str, object] = {
        "specversion": "1.0",
        "id": f"ce-{n}",
        "source": "intuit.abc",
        "type": kind,
        "time": "2026-11-26T11:59:00.123Z",
        "intuitentityid": str(n),
        "intuitaccountid": realm,
        "datacontenttype": "application/json",
        "data": {},
    }
    event.update(extra)
    return event


def test_cloudevents_mixed_realms_become_change_events() -> None:
    body = json.dumps([cloud_event(1, "A"), cloud_event(2, "B", "qbo.customer.created.v1")])
    parsed = parse_qbo_payload(body.encode(), now=NOW)
    assert parsed.format == "cloudevents"
    assert [(e.account_id, e.entity, e.entity_id, e.operation) for e in parsed.events] == [
        ("A", "invoice", "1", "update"),
        ("B", "customer", "2", "create"),
    ]
    assert parsed.events[0].event_id == "ce-1"
    assert parsed.events[0].occurred_at == datetime(2026, 11, 26, 11, 59, 0, 123000, tzinfo=UTC)
    assert parsed.accounts == ["A", "B"]


@pytest.mark.parametrize("word", ["void", "voided"])
def test_both_void_spellings(word: str) -> None:
    body = json.dumps([cloud_event(1, kind=f"qbo.invoice.{word}.v1")]).encode()
    assert parse_qbo_payload(body, now=NOW).events[0].operation == "void"


@pytest.mark.parametrize("key", ["deletedid", "deletedId", "deletedID"])
def test_merge_carries_the_merged_away_id_in_any_casing(key: str) -> None:
    body = json.dumps([cloud_event(7, kind="qbo.customer.merged.v1", data={key: "3"})]).encode()
    event = parse_qbo_payload(body, now=NOW).events[0]
    assert (event.operation, event.related_id) == ("merge", "3")


def test_optional_data_and_content_type_may_be_absent() -> None:
    item = cloud_event(1, kind="qbo.salesreceipt.updated.v1")
    del item["data"], item["datacontenttype"]
    assert parse_qbo_payload(json.dumps([item]).encode(), now=NOW).events[0].entity == (
        "salesreceipt"
    )


def test_legacy_envelope_with_both_deleted_id_spellings() -> None:
    body = {
        "eventNotifications": [
            {
                "realmId": "1185883450",
                "dataChangeEvent": {
                    "entities": [
                        {
                            "name": "Customer",
                            "id": "1",
                            "operation": "Merge",
                            "lastUpdated": "2015-10-05T14:42:19-0700",
                            "deletedId": "9",
                        },
                        {
                            "name": "Invoice",
                            "id": "5",
                            "operation": "Voided",
                            "lastUpdated": "2025-09-08T20:52:31.657Z",
                        },
                    ]
                },
            }
        ]
    }
    parsed = parse_qbo_payload(json.dumps(body).encode(), now=NOW)
    assert parsed.format == "legacy"
    merge, void = parsed.events
    assert (merge.entity, merge.operation, merge.related_id) == ("customer", "merge", "9")
    assert merge.occurred_at == datetime(2015, 10, 5, 21, 42, 19, tzinfo=UTC)
    assert void.operation == "void"
    expected = derive_event_id(
        "qbo", "1185883450", "Invoice", "5", "void", "2025-09-08T20:52:31.657Z"
    )
    assert void.event_id == expected


def test_one_bad_entry_is_skipped_not_fatal() -> None:
    body = json.dumps([cloud_event(1), {"id": "x"}, cloud_event(2, kind="qbo.bill.exploded.v1")])
    parsed = parse_qbo_payload(body.encode(), now=NOW)
    assert [e.entity_id for e in parsed.events] == ["1"]
    assert len(parsed.skipped) == 2


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b'{"hello": 1}', b'"string"', b"\xff\xfe", b'{"eventNotifications": 3}'],
)
def test_malformed_bodies_raise(body: bytes) -> None:
    with pytest.raises(MalformedPayload):
        parse_qbo_payload(body, now=NOW)


def test_hundred_event_batch() -> None:
    body = json.dumps([cloud_event(i, realm=str(i % 3)) for i in range(100)]).encode()
    parsed = parse_qbo_payload(body, now=NOW)
    assert len(parsed.events) == 100
    assert len({e.event_id for e in parsed.events}) == 100


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2015-10-05T14:42:19-0700", datetime(2015, 10, 5, 21, 42, 19, tzinfo=UTC)),
        ("2015-10-05T14:42:19-07:00", datetime(2015, 10, 5, 21, 42, 19, tzinfo=UTC)),
        ("2026-01-01T00:00:00", datetime(2026, 1, 1, tzinfo=UTC)),
        ("garbage", NOW),
    ],
)
def test_time_styles(text: str, expected: datetime) -> None:
    assert parse_time(text, NOW) == expected
