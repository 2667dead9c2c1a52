"""structlog, configured once per process.

JSON lines outside a TTY (what the ops dashboards read), a readable console on a TTY. Context is
bound per unit of work through contextvars. Records from the stdlib ``logging`` module (uvicorn,
aio-pika, asyncpg) go through the same processors, including redaction.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

from shared.infra.settings import LogFormat

REDACTED = "[REDACTED]"

# Key fragments whose values are secrets wherever they appear (headers, token responses, settings).
_SENSITIVE_KEY_PARTS = (
    "token",
    "secret",
    "signature",
    "password",
    "passwd",
    "authorization",
    "cookie",
    "api_key",
    "apikey",
    "webhook_key",
    "encryption_key",
    "verifier",
    "credential",
)
# Keys that contain a fragment above but hold nothing secret.
_SAFE_KEYS = frozenset({"token_type", "expires_in", "x_refresh_token_expires_in"})

_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@/\s]+)@")
_QUERY_SECRET = re.compile(
    r"(?i)\b(access_token|refresh_token|client_secret|code|token)=([^&\s\"']+)"
)


def _is_sensitive_key(key: str) -> bool:
    lowered = key.lower().replace("-", "_")
    if lowered in _SAFE_KEYS:
        return False
    return any(part in lowered for part in _SENSITIVE_KEY_PARTS)


def scrub_text(text: str) -> str:
    """Remove secrets that hide inside free text: bearer headers, URL passwords, query tokens."""
    text = _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = _URL_PASSWORD.sub(lambda m: f"{m.group('scheme')}{m.group('user')}:{REDACTED}@", text)
    return _QUERY_SECRET.sub(lambda m: f"{m.group(1)}={REDACTED}", text)


def _scrub(value: Any, depth: int = 0) -> Any:
    if depth > 6:
        return value
    if isinstance(value, str):
        return scrub_text(value)
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and _is_sensitive_key(k) else _scrub(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v, depth + 1) for v in value]
    # SecretStr and friends render masked already; anything else is left as is.
    return value


def redact_secrets(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask secret-named keys and secret-looking text, recursively."""
    for key in list(event_dict):
        if _is_sensitive_key(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _scrub(event_dict[key])
    return event_dict


def _drop_color_message(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    # uvicorn duplicates its message with ANSI colours in this extra key.
    event_dict.pop("color_message", None)
    return event_dict


def configure_logging(
    level: str = "INFO",
    fmt: LogFormat = "auto",
    *,
    stream: Any = None,
) -> None:
    """Configure structlog and the stdlib root logger. Safe to call again (tests do)."""
    out = stream if stream is not None else sys.stdout
    use_json = fmt == "json" or (fmt == "auto" and not getattr(out, "isatty", lambda: False)())

    shared_processors: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _drop_color_message,
        redact_secrets,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=getattr(out, "isatty", lambda: False)())
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared_processors,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared_processors,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if use_json else _identity,
            renderer,
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv = logging.getLogger(name)
        uv.handlers[:] = []
        uv.propagate = True
    # Access lines duplicate our own canonical request lines.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    for noisy in ("aio_pika", "aiormq", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def _identity(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    return event_dict


def get_logger(name: str | None = None, **initial: Any) -> structlog.stdlib.BoundLogger:
    logger: structlog.stdlib.BoundLogger = structlog.stdlib.get_logger(name)
    return logger.bind(**initial) if initial else logger


def bind_unit_of_work(**context: Any) -> None:
    """Start a fresh logging context for one request or message."""
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**context)


def redact_mapping(values: MutableMapping[str, Any]) -> dict[str, Any]:
    """A copy of ``values`` safe to log (used for headers and settings dumps)."""
    scrubbed = _scrub(dict(values))
    assert isinstance(scrubbed, dict)
    return scrubbed
