"""A bug of ours while answering: the person gets certgate's 500 page with the request's
reference, the log the traceback under that reference, the audit trail exactly one
record; redirects and refusals raised on purpose pass unchanged.

The fault is injected by replacing one function the request story calls with one that
raises (fault injection over real TLS, not a mock of what is tested)."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest
from aiohttp import web

from gateway.http import proxy
from tests.gateway.conftest import Gateway

SECRET = "db password is hunter2"  # the exception's text: it must reach only the log


def _explode(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError(SECRET)


async def _records(gateway: Gateway, reference: str) -> list[dict[str, Any]]:
    await gateway.runtime.audit.flush()
    lines = gateway.runtime.audit.path.read_text().splitlines()
    return [r for r in map(json.loads, lines) if r.get("reference") == reference]


def _logged(caplog: pytest.LogCaptureFixture, reference: str) -> logging.LogRecord:
    found = [r for r in caplog.records if reference in r.getMessage()]
    assert len(found) == 1, [r.getMessage() for r in caplog.records]
    return found[0]


async def test_a_fault_on_a_page_of_ours_is_a_500_page_with_the_reference(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(proxy, "help_page", _explode)
    caplog.set_level(logging.ERROR, logger="certgate")
    status, body, headers = await gateway.request("GET", "/.certgate/help",
                                                  headers={"Accept": "text/html"})
    text = body.decode()
    assert status == 500 and headers["Content-Type"].startswith("text/html")
    assert "Something went wrong on the gateway." in text
    assert "tell your administrator the reference below" in text
    found = re.search(r"Reference <code>([0-9a-f]{12})</code>", text)
    assert found, text
    reference = found.group(1)
    assert SECRET not in text and "Traceback" not in text and "RuntimeError" not in text
    assert "unsafe-inline" not in headers["Content-Security-Policy"]
    logged = _logged(caplog, reference)
    assert logged.exc_info is not None and SECRET in str(logged.exc_info[1])
    (record,) = await _records(gateway, reference)
    assert (record["status"], record["decision"], record["reason"]) == (
        500, "error", "internal-error")


async def test_a_fault_forwarding_is_one_record_and_a_json_500(
        gateway: Gateway, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(proxy, "forward_http", _explode)
    caplog.set_level(logging.ERROR, logger="certgate")
    status, body, _ = await gateway.request("GET", "/docs/page")
    assert status == 500
    assert (body["error"], body["status"]) == ("internal-error", 500)
    reference = body["reference"]
    assert f"this reference: {reference}" in body["message"]
    assert SECRET not in json.dumps(body)
    _logged(caplog, reference)
    (record,) = await _records(gateway, reference)  # exactly one record of the request
    assert (record["status"], record["decision"], record["reason"], record["app"],
            record["user"]) == (500, "error", "internal-error", "wiki", "alice")


async def test_http_exceptions_pass_unchanged(gateway: Gateway,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def redirect(*args: Any, **kwargs: Any) -> Any:
        raise web.HTTPFound("/elsewhere")

    monkeypatch.setattr(proxy, "help_page", redirect)
    status, _, headers = await gateway.request("GET", "/.certgate/help")
    assert (status, headers["Location"]) == (302, "/elsewhere")

    def gone(*args: Any, **kwargs: Any) -> Any:
        raise web.HTTPGone(text="gone on purpose")

    monkeypatch.setattr(proxy, "help_page", gone)
    status, body, headers = await gateway.request("GET", "/.certgate/help")
    assert (status, body) == (410, b"gone on purpose")
    assert "Something went wrong" not in body.decode()
