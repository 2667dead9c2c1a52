"""Accounts, tax rates and tracking categories: owned by the accounting side while connected."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

from sandboxes.released.errors import invalid, not_found
from sandboxes.released.gate import Call
from sandboxes.released.schemas import (
    AccountIn,
    TaxRateIn,
    TrackingCategoryIn,
    TrackingOptionIn,
    parse_json,
    parse_model,
)
from sandboxes.released.seed import account
from sandboxes.released.store import CompanyState, Record, Store, new_id


@dataclass(frozen=True)
class MasterKind:
    label: str
    path: str
    event: str
    model: type[BaseModel]
    build: Callable[[Any], Record]
    records: Callable[[CompanyState], dict[str, Record]]


def _account(body: AccountIn) -> Record:
    record = account(body.code, body.name, body.type, body.kind)
    record["status"] = body.status
    return record


def _tax_rate(body: TaxRateIn) -> Record:
    # Exact, as given (8.875 stays 8.875), with at least two decimals.
    rate = body.rate.normalize()
    exponent = rate.as_tuple().exponent
    shown = rate.quantize(Decimal("0.01")) if isinstance(exponent, int) and exponent > -2 else rate
    return {"name": body.name, "rate": format(shown, "f"), "status": body.status}


def _tracking(body: TrackingCategoryIn) -> Record:
    options = [
        {"id": o.id or new_id(), "name": o.name, "propertyId": o.property_id, "status": o.status}
        for o in body.options
    ]
    return {
        "name": body.name,
        "isPropertyMatching": False,
        "status": body.status,
        "options": options,
    }


ACCOUNTS = MasterKind(
    "account", "accounts", "account.changed", AccountIn, _account, lambda s: s.accounts
)
TAX_RATES = MasterKind(
    "tax rate", "tax-rates", "taxrate.changed", TaxRateIn, _tax_rate, lambda s: s.tax_rates
)
TRACKING = MasterKind(
    "tracking category",
    "tracking-categories",
    "tracking.changed",
    TrackingCategoryIn,
    _tracking,
    lambda s: s.tracking_categories,
)
KINDS = (ACCOUNTS, TAX_RATES, TRACKING)
MAX_OPTIONS = 100


def refuse_if_connected(call: Call) -> None:
    """Users may not write master data while connected; the accounting side may."""
    call.accounting_only(
        "MANAGED_IN_ACCOUNTING", "master data is managed in the accounting system while connected"
    )


def get_master(state: CompanyState, kind: MasterKind, ident: str) -> Record:
    record = kind.records(state).get(ident)
    if record is None:
        raise not_found(kind.label, ident)
    return record


def create_master(store: Store, state: CompanyState, kind: MasterKind, raw: bytes) -> Record:
    record = kind.build(parse_model(kind.model, raw))
    store.stamp_new(record)
    kind.records(state)[record["id"]] = record
    store.emit(state, kind.event, record, f"{kind.path}/{record['id']}")
    return record


def patch_master(
    store: Store, state: CompanyState, kind: MasterKind, record: Record, raw: bytes
) -> Record:
    patch = parse_json(raw)
    if not isinstance(patch, dict):
        raise invalid("INVALID_JSON", "the body must be a JSON object")
    merged = json.dumps({**record, **patch}).encode()
    fresh = kind.build(parse_model(kind.model, merged))
    record.update(fresh)
    store.touch(record)
    store.emit(state, kind.event, record, f"{kind.path}/{record['id']}")
    return record


def _option(body: TrackingOptionIn) -> Record:
    return {
        "id": body.id or new_id(),
        "name": body.name,
        "propertyId": body.property_id,
        "status": body.status,
    }


def add_option(store: Store, state: CompanyState, category: Record, raw: bytes) -> Record:
    option = _option(parse_model(TrackingOptionIn, raw))
    if any(o["id"] == option["id"] for o in category["options"]):
        raise invalid("DUPLICATE_OPTION_ID", "the category has this option id", option["id"])
    if len(category["options"]) >= MAX_OPTIONS:
        raise invalid("TOO_MANY_OPTIONS", f"a category holds at most {MAX_OPTIONS} options")
    category["options"].append(option)
    store.touch(category)
    store.emit(state, TRACKING.event, category, f"{TRACKING.path}/{category['id']}")
    return category


def patch_option(
    store: Store, state: CompanyState, category: Record, option_id: str, raw: bytes
) -> Record:
    index = next((i for i, o in enumerate(category["options"]) if o["id"] == option_id), None)
    if index is None:
        raise not_found("tracking option", option_id)
    option = category["options"][index]
    patch = parse_json(raw)
    if not isinstance(patch, dict):
        raise invalid("INVALID_JSON", "the body must be a JSON object")
    merged = {**option, **{k: v for k, v in patch.items() if k != "id"}}
    category["options"][index] = _option(parse_model(TrackingOptionIn, json.dumps(merged).encode()))
    store.touch(category)
    store.emit(state, TRACKING.event, category, f"{TRACKING.path}/{category['id']}")
    return category
