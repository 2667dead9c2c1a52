"""The sandbox's composition: one object holding the state and the machinery around it."""

from __future__ import annotations

import random
from dataclasses import dataclass

from sandboxes.released.clock import SandboxClock
from sandboxes.released.idempotency import IdempotencyCache
from sandboxes.released.limits import RateLimiter
from sandboxes.released.seed import new_company
from sandboxes.released.settings import SandboxSettings
from sandboxes.released.store import Store
from sandboxes.released.webhooks import WebhookDispatcher


@dataclass
class Sandbox:
    settings: SandboxSettings
    clock: SandboxClock
    store: Store
    limiter: RateLimiter
    idempotency: IdempotencyCache
    dispatcher: WebhookDispatcher
    rng: random.Random

    @classmethod
    def build(cls, settings: SandboxSettings) -> Sandbox:
        clock = SandboxClock(settings.released_sandbox_time_scale)
        store = Store(clock, settings.api_base)
        if settings.demo_released_company_id:
            name = settings.demo_released_company_name
            new_company(store, name, company_id=settings.demo_released_company_id)
        # Not for security: fault injection only, seedable so a failing run can be repeated.
        rng = random.Random(settings.released_sandbox_seed)  # noqa: S311
        return cls(
            settings=settings,
            clock=clock,
            store=store,
            limiter=RateLimiter(clock, enabled=settings.released_sandbox_rate_limits),
            idempotency=IdempotencyCache(),
            dispatcher=WebhookDispatcher(store, clock, rng),
            rng=rng,
        )

    def reset(self) -> None:
        self.store.reset()
        self.limiter.reset()
        self.idempotency.reset()
