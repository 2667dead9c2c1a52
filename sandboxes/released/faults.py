"""Fault switches, per company: what goes wrong on API calls and on webhook deliveries."""

from __future__ import annotations

import asyncio
import random
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from sandboxes.released.errors import ApiError

Rate = Annotated[float, Field(ge=0.0, le=1.0)]


class _Switches(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", validate_assignment=True
    )


class DeliveryFaults(_Switches):
    duplicate_rate: Rate = 0.0
    drop_rate: Rate = 0.0
    bad_signature_rate: Rate = 0.0
    # Deliver the events of each batch in reverse order (the contract promises no ordering).
    reorder: bool = False
    delay_seconds: Annotated[float, Field(ge=0.0, le=86_400.0)] = 0.0
    # Seconds the receiver is given before an attempt counts as failed (the contract says 5).
    timeout_seconds: Annotated[float, Field(gt=0.0, le=60.0)] = 5.0


class Faults(_Switches):
    latency_ms: Annotated[int, Field(ge=0, le=60_000)] = 0
    error_rate: Rate = 0.0
    error_status: Annotated[int, Field(ge=500, le=503)] = 503
    rate_limit_rate: Rate = 0.0
    deliveries: DeliveryFaults = Field(default_factory=DeliveryFaults)


def merge_faults(current: Faults, patch: dict[str, Any]) -> Faults:
    """Apply a partial update (nested ``deliveries`` merged too); raises pydantic's error."""
    data = current.model_dump(by_alias=True)
    deliveries = patch.get("deliveries")
    if isinstance(deliveries, dict):
        patch = {**patch, "deliveries": {**data["deliveries"], **deliveries}}
    return Faults.model_validate({**data, **patch})


async def inject_request_faults(faults: Faults, rng: random.Random) -> None:
    if faults.latency_ms:
        await asyncio.sleep(faults.latency_ms / 1000)
    if faults.error_rate and rng.random() < faults.error_rate:
        status = faults.error_status
        raise ApiError(status, "INJECTED_FAULT", f"injected {status} (sandbox fault switch)")
    if faults.rate_limit_rate and rng.random() < faults.rate_limit_rate:
        raise ApiError(
            429, "RATE_LIMITED", "injected 429 (sandbox fault switch)", headers={"Retry-After": "1"}
        )
