"""The console's session cookie and CSRF secret: signed, expiring, bound to the admin token."""

from __future__ import annotations

import time

import pytest

from shared.admin.console.charts import bar_chart, line_chart
from shared.admin.console.session import Sessions


def sessions(token: str = "t0ken") -> Sessions:  # noqa: S107 - a test token
    return Sessions(token, ttl_s=60, secure=False)


def test_an_issued_cookie_reads_back_with_its_csrf_secret() -> None:
    cookie, issued = sessions().issue()
    found = sessions().read(cookie)
    assert found is not None
    assert found.csrf == issued.csrf
    assert Sessions.csrf_ok(found, issued.csrf)
    assert not Sessions.csrf_ok(found, issued.csrf + "x")
    assert not Sessions.csrf_ok(found, None)


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c.replace("s:", "S:", 1),  # payload changed
        lambda c: c[:-2] + ("AA" if not c.endswith("AA") else "BB"),  # signature changed
        lambda c: c.rpartition(".")[0],  # no signature
        lambda c: "",
    ],
)
def test_a_tampered_cookie_is_no_session(tamper: object) -> None:
    cookie, _ = sessions().issue()
    assert sessions().read(tamper(cookie)) is None  # type: ignore[operator]


def test_another_token_signs_everyone_out() -> None:
    cookie, _ = sessions("old").issue()
    assert sessions("new").read(cookie) is None


def test_expired_and_other_kinds_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    cookie, _ = sessions().issue()
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)
    assert sessions().read(cookie) is None
    monkeypatch.undo()
    login, _ = sessions().issue("login")
    assert sessions().read(login) is None, "a sign-in form cookie is not a session"
    assert sessions().read(login, "login") is not None


def test_the_token_check_ignores_surrounding_space_only() -> None:
    assert sessions().token_matches(" t0ken\n")
    assert not sessions().token_matches("t0ke")


def test_charts_escape_names_and_draw_numbers() -> None:
    svg = str(line_chart("<b>", [("a<script>", [1.0, 2.0, 3.0])]))
    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg
    assert svg.count("<polyline") == 1
    bars = str(bar_chart("q", [("sync.dead", 4.0), ("missing", None)]))
    assert "unknown" in bars
    assert bars.count("<rect") == 2
