"""The sandbox's composition: one object holding the state and the machinery around it."""

from __future__ import annotations

import random
from dataclasses import dataclass

from services.released_sandbox.clock import SandboxClock
from services.released_sandbox.idempotency import IdempotencyCache
from services.released_sandbox.limits import RateLimiter
from services.released_sandbox.settings import SandboxSettings
from services.released_sandbox.store import Store
from services.released_sandbox.webhooks import WebhookDispatcher


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
