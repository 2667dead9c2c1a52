"""Builds the per-connection API clients from one set of shared resources."""

from __future__ import annotations

from uuid import UUID

import aiohttp
import asyncpg

from shared.adapters.crypto import TokenCipher
from shared.adapters.postgres.budgets import (
    QBO_LIMITS,
    RELEASED_LIMITS,
    ApiBudget,
    Limits,
    Reserve,
)
from shared.adapters.qbo.client import QboClient
from shared.adapters.qbo.coalesce import CoalesceOptions, ReadCoalescer
from shared.adapters.qbo.tokens import QboOAuth, QboTokenStore
from shared.adapters.released.client import ReleasedClient
from shared.domain.connections import Connection
from shared.domain.errors import ConnectionRevoked
from shared.infra.settings import EngineSettings


class ClientFactory:
    def __init__(
        self,
        settings: EngineSettings,
        pool: asyncpg.Pool,
        session: aiohttp.ClientSession,
        *,
        bulk: bool = False,
    ) -> None:
        """``bulk``: clients for the bulk lane, which leave ``bulk_reserved_share`` of every
        budget (tokens and slots) to live traffic."""
        self._settings = settings
        self._session = session
        self.cipher = TokenCipher(settings.token_encryption_key.get_secret_value())
        self.oauth = QboOAuth(
            session,
            settings.qbo_oauth_base,
            settings.qbo_client_id,
            settings.qbo_client_secret.get_secret_value(),
        )
        self.tokens = QboTokenStore(pool, self.cipher, self.oauth)
        share = settings.bulk_reserved_share if bulk else 0.0
        qbo_limits = Limits(
            settings.qbo_requests_per_minute,
            settings.qbo_concurrency,
            burst=min(QBO_LIMITS.burst, settings.qbo_requests_per_minute // 2 or 1),
            margin_s=settings.budget_window_margin_s,
        )
        self.qbo_budget = ApiBudget(pool, qbo_limits, reserve=Reserve.share(qbo_limits, share))
        released_limits = Limits(
            settings.released_requests_per_minute,
            settings.released_concurrency,
            burst=min(RELEASED_LIMITS.burst, settings.released_requests_per_minute // 2 or 1),
            margin_s=settings.budget_window_margin_s,
        )
        self.released_budget = ApiBudget(
            pool, released_limits, reserve=Reserve.share(released_limits, share)
        )
        self.qbo_batch_budget: ApiBudget | None = None
        if settings.qbo_batches_per_minute > 0:
            self.qbo_batch_budget = ApiBudget(
                pool,
                Limits(
                    settings.qbo_batches_per_minute,
                    1,
                    burst=min(10, settings.qbo_batches_per_minute // 2 or 1),
                    margin_s=settings.budget_window_margin_s,
                ),
            )
        # QBO clients are built per event; the coalescer behind them is shared per connection.
        self.qbo_coalesce: CoalesceOptions | None = None
        if settings.qbo_coalesce_reads:
            self.qbo_coalesce = CoalesceOptions(
                window_s=settings.qbo_coalesce_window_ms / 1000,
                max_ids=settings.qbo_coalesce_max_ids,
                max_in_flight=settings.qbo_coalesce_in_flight,
                batch_budget=self.qbo_batch_budget,
            )
        self._coalescers: dict[UUID, ReadCoalescer] = {}
        self._released: dict[str, ReleasedClient] = {}

    def qbo(self, connection: Connection) -> QboClient:
        if connection.qbo_realm_id is None:
            raise ConnectionRevoked(
                "connection is not bound to a QBO realm yet", remedy="finish the QuickBooks connect"
            )
        return QboClient(
            self._session,
            self._settings.qbo_api_base,
            connection.qbo_realm_id,
            connection.id,
            self.tokens,
            self.qbo_budget,
            coalescer=self._coalescer(connection.id),
        )

    def _coalescer(self, connection_id: UUID) -> ReadCoalescer | None:
        if self.qbo_coalesce is None:
            return None
        found = self._coalescers.get(connection_id)
        if found is None:
            found = self._coalescers[connection_id] = ReadCoalescer(self.qbo_coalesce)
        return found

    def released(self, connection: Connection) -> ReleasedClient:
        # Cached per company so its bearer token is reused across events.
        client = self._released.get(connection.released_company_id)
        if client is None:
            client = ReleasedClient(
                self._session,
                self._settings.released_api_base,
                connection.released_company_id,
                self._settings.released_client_id,
                self._settings.released_client_secret.get_secret_value(),
                self.released_budget,
            )
            self._released[connection.released_company_id] = client
        return client
