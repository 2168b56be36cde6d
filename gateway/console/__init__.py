"""The admin console: the admin's daily work in the browser, on its own host.

The console is admitted like any app (``Config.console_app``: the console group,
``mfa: required`` with the console's ``mfa_max_age``), so the certificate, the
group and a fresh second factor are checked by ``gateway.http.admit`` before any
of this runs; a stale second factor goes to the sign-in page exactly as for an app.
The request story hands admitted console requests to ``handler.answer`` instead of
forwarding them.

- ``render``: the pages (jinja2, autoescaped), the stylesheet pinned by its CSP hash,
  the security headers;
- ``handler``: the routes, the CSRF check on every POST, refusals;
- ``overview``, ``certs``, ``people`` (users and sessions), ``audit``: the pages,
  each calling ``gateway.manage`` (the same use-cases as the CLI) and recording each
  change with ``AdminTrail`` (actor ``console:<user>``); ``apps``: the policies,
  read-only, with who can reach each app and "why can't X reach Y";
- ``download``: the one-time download link of a new person's ``.p12``
  (``/.certgate/download``, answered without a client certificate).

Like the sign-in pages, the console uses the database; it must never be on the
path of another app's requests, and must not decide who may use it (admit does).
"""
