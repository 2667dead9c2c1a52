"""The sandbox's composition root: everything one running sandbox owns, built per app."""

from __future__ import annotations

import random
import secrets
from dataclasses import dataclass, field

from starlette.requests import Request

from sandboxes.qbo.clock import ScaledClock
from sandboxes.qbo.delivery import WebhookDispatcher, Wiring
from sandboxes.qbo.profiles import apply_profile
from sandboxes.qbo.runtime import RuntimeConfig
from sandboxes.qbo.seed import seed_company
from sandboxes.qbo.settings import SandboxSettings
from sandboxes.qbo.store import Realm, RealmFaults, Store
from sandboxes.qbo.tokens import TokenStore
from sandboxes.qbo.writes import Company


@dataclass
class SandboxState:
    settings: SandboxSettings
    config: RuntimeConfig
    clock: ScaledClock
    store: Store
    tokens: TokenStore
    dispatcher: WebhookDispatcher
    rng: random.Random
    # Signs temporary download URLs; per process, like Intuit's expiring links.
    file_key: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    def create_realm(
        self,
        company_name: str,
        home_currency: str = "USD",
        multi_currency: bool = False,
        country: str = "US",
        profile: str = "default",
    ) -> Realm:
        realm = self.store.new_realm(company_name)
        seed_company(realm, home_currency, multi_currency, country)
        apply_profile(realm, profile)
        return realm

    def company(self, realm: Realm) -> Company:
        return Company(realm, self.dispatcher.notify)

    def faults(self, realm_id: str) -> RealmFaults:
        realm = self.store.get(realm_id)
        return realm.faults if realm is not None else RealmFaults()

    async def reset(self) -> None:
        await self.dispatcher.reset()
        self.store.reset()
        self.tokens.clear()


def build_state(settings: SandboxSettings) -> SandboxState:
    config = RuntimeConfig.from_settings(settings)
    clock = ScaledClock(settings.qbo_sandbox_time_scale)
    # Not for security: reproducible fault dice when a seed is given.
    rng = random.Random(settings.qbo_sandbox_seed)  # noqa: S311
    store = Store()
    tokens = TokenStore(clock)
    holder: list[SandboxState] = []
    dispatcher = WebhookDispatcher(
        Wiring(
            config=config,
            clock=clock,
            verifier_token=settings.qbo_webhook_verifier_token.get_secret_value,
            connected=tokens.connected,
            faults=lambda realm_id: holder[0].faults(realm_id),
            rng=rng,
        )
    )
    state = SandboxState(settings, config, clock, store, tokens, dispatcher, rng)
    holder.append(state)
    return state


def sandbox(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state
