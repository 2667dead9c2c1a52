"""Named retry policies (tenacity), applied at one layer only: the API clients.

Short, in-process retries smooth over a blip (a timeout, one 503, a brief 429). Anything that
needs a longer wait goes back to the broker's retry ladder instead of holding a consumer.
"""

from __future__ import annotations

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from shared.domain.errors import StaleVersion, TransientError

# Longest wait we accept inside a request; beyond it the event goes to the retry ladder.
MAX_IN_PROCESS_WAIT_S = 5.0

_jitter = wait_random_exponential(multiplier=0.2, max=2.0)


def _worth_retrying_here(exc: BaseException) -> bool:
    if isinstance(exc, StaleVersion):
        return False  # needs a re-fetch and re-merge by the caller, not a blind resend
    if not isinstance(exc, TransientError):
        return False
    return exc.retry_after is None or exc.retry_after <= MAX_IN_PROCESS_WAIT_S


def _wait(state: RetryCallState) -> float:
    exc = state.outcome.exception() if state.outcome else None
    asked = exc.retry_after if isinstance(exc, TransientError) and exc.retry_after else 0.0
    return max(asked, _jitter(state))


def api_call_retry(attempts: int = 3) -> AsyncRetrying:
    """For one HTTP call to QBO or Re-Leased: transient failures, full-jitter backoff."""
    return AsyncRetrying(
        retry=retry_if_exception(_worth_retrying_here),
        wait=_wait,
        stop=stop_after_attempt(attempts),
        reraise=True,
    )
