"""The gateway's own web pages for people managing access in the browser.

"My access" (every person, on every app host):

- ``me``     "My access" at ``/.certgate/me`` on every app host: a person's own
             certificates (suspend one), sessions (end them), recent access, and the
             "renew before" notice
- ``views``  what those pages show, as plain values built from ``manage`` records (pure)

The admin console, on its own host. It is admitted like any app
(``Config.console_app``: the console group, ``mfa: required`` with the console's
``mfa_max_age``), so the certificate, the group and a fresh second factor are checked
by ``gateway.http.admit`` before any of this runs; a stale second factor goes to the
sign-in page exactly as for an app. The request story hands admitted console
requests to ``handler.answer`` instead of forwarding them.

- ``render``: the pages (jinja2, autoescaped), the stylesheet pinned by its CSP hash,
  the security headers;
- ``handler``: the routes, the CSRF check on every POST, refusals;
- ``overview``, ``certs``, ``people`` (users and sessions), ``audit``: the pages,
  each calling ``gateway.manage`` (the same use-cases as the CLI) and recording each
  change with ``AdminTrail`` (actor ``console:<user>``); ``apps``: the policies,
  read-only, with who can reach each app and "why can't X reach Y";
- ``download``: the one-time download link of a new person's ``.p12``
  (``/.certgate/download``, answered without a client certificate).

Pages here are answered by the request story like the sign-in pages
(``gateway.auth.pages``): they may use the database, never on a proxied request of
another app. Every change goes through ``gateway.manage`` (the code the CLI calls)
and is recorded in the audit trail with the person as actor. Forms are POST with a
CSRF token; no JavaScript. Must not import ``gateway.cli`` nor decide who may reach
an app (admit does).
"""
