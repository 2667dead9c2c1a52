"""The one way our processes open an outgoing HTTP session: never without a deadline.

aiohttp's default is a 300-second total timeout, which would hold a consumer's message, a
reconciler pass or an admin request for five minutes on a peer that accepted the connection and
went quiet. Clients set their own, shorter, per-request timeouts on top; this is the floor for
any call that forgets to (a timeout is then a ``TransientError`` like any other).
"""

from __future__ import annotations

import aiohttp

DEFAULT_TIMEOUT = aiohttp.ClientTimeout(total=60, connect=10, sock_connect=10, sock_read=30)


def outgoing_session(timeout: aiohttp.ClientTimeout = DEFAULT_TIMEOUT) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=timeout)
