"""Every page certgate renders itself answers with one Content-Security-Policy without
``'unsafe-inline'``: each template is rendered as its page function renders it, and
every ``<style>`` block's SHA-256 must be one the header allows; no template has a
``style="…"`` attribute (that would need ``'unsafe-hashes'``) or a script."""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from pathlib import Path

import jinja2
import pytest
import segno

from gateway.audit.report import REPORT_CSS, render_report
from gateway.console import render
from gateway.console.audit import REPORT_CSP
from gateway.http import pages
from gateway.http.security import CONSOLE_CSS, CSP, HEADERS, PAGES_CSS, stylesheet
from tests.gateway.audit.test_report import data

TEMPLATES = Path(str(files("gateway").joinpath("templates")))
HTML = sorted(p.name for p in TEMPLATES.glob("*.html"))
STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.S)
ATTRIBUTE = re.compile(r"<[^>]*\sstyle\s*=", re.I | re.S)


class _Absent(jinja2.ChainableUndefined):
    """A page's variable or helper left out: empty, even when called."""

    def __call__(self, *args: object, **kwargs: object) -> _Absent:
        return self


# Rendered leniently: a page's variables are absent, so each falls back to empty.
_ENV = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
                          trim_blocks=True, lstrip_blocks=True,
                          undefined=_Absent)


def allowed(csp: str) -> set[str]:
    """The ``'sha256-…'`` sources of ``style-src``."""
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";") if " " in d.strip())
    return {s for s in directives["style-src"].split() if s.startswith("'sha256-")}


def sha256_source(text: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


def check(html: str, csp: str, name: str) -> None:
    assert "unsafe-inline" not in csp and "unsafe-hashes" not in csp, name
    blocks = STYLE.findall(html)
    assert blocks, f"{name}: no stylesheet at all"
    for block in blocks:
        assert sha256_source(block) in allowed(csp), (
            f"{name}: a <style> the CSP refuses; put its rules into templates/pages.css or "
            "console.css, not into a style block of the page")
    assert not ATTRIBUTE.search(html), f"{name}: a style= attribute; use a class"
    assert "<script" not in html.lower(), name


def render_as_served(name: str) -> tuple[str, str]:
    """``name`` rendered with the stylesheet its page function inlines; and its CSP."""
    if name == "audit_report.html":
        return render_report(data()), REPORT_CSP
    source = (TEMPLATES / name).read_text(encoding="utf-8")
    console = name == "console_base.html" or '"console_base.html"' in source
    css = CONSOLE_CSS.text if console else PAGES_CSS.text
    return _ENV.get_template(name).render(css=css, nav=render.NAV), CSP


@pytest.mark.parametrize("name", HTML)
def test_every_template_is_allowed_by_the_csp_it_is_served_with(name: str) -> None:
    html, csp = render_as_served(name)
    check(html, csp, name)
    # Branches not rendered above: no style attribute or script in the source either.
    source = (TEMPLATES / name).read_text(encoding="utf-8")
    assert not ATTRIBUTE.search(source) and "<script" not in source.lower(), name


def test_the_page_functions_send_the_one_policy() -> None:
    for response in (pages.html_page("refusal.html", 403, title="t", message="m",
                                     reference="0123456789ab"),
                     pages.help_page(None),  # type: ignore[arg-type]
                     render.message(500, "t", "m", user="alice", reference="0123456789ab")):
        assert response.headers["Content-Security-Policy"] == CSP
        assert response.text is not None
        check(response.text, CSP, "page")
    for name, value in HEADERS.items():
        assert response.headers[name] == value
    directives = [d.strip() for d in CSP.split(";")]
    assert directives[0] == "default-src 'none'"
    assert {"form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'"} <= set(
        directives)
    assert not any(d.startswith(("script-src", "img-src")) for d in directives)
    assert "sandbox" in REPORT_CSP and REPORT_CSS.source in REPORT_CSP


def test_the_enrollment_qr_code_needs_nothing_the_policy_refuses() -> None:
    svg = segno.make("otpauth://totp/certgate:alice?secret=JBSWY3DP", error="m").svg_inline(
        scale=5, border=4, dark="#000", light="#fff", svgclass="qr")
    assert svg.startswith("<svg") and "<style" not in svg and "<script" not in svg
    assert not ATTRIBUTE.search(svg) and "href" not in svg  # nothing fetched, no img-src


def test_a_page_with_a_style_block_of_its_own_is_caught() -> None:
    env = jinja2.Environment(loader=jinja2.DictLoader({
        "base.html": (TEMPLATES / "base.html").read_text(encoding="utf-8"),
        "new.html": '{% extends "base.html" %}{% block style %}p{color:red}{% endblock %}'}),
        autoescape=True, trim_blocks=True, lstrip_blocks=True)
    with pytest.raises(AssertionError, match="CSP refuses"):
        check(env.get_template("new.html").render(css=PAGES_CSS.text), CSP, "new.html")


def test_a_stylesheet_that_could_end_its_style_element_is_refused() -> None:
    with pytest.raises(RuntimeError, match="must not contain"):
        stylesheet("base.html")  # it has "</" like any HTML
