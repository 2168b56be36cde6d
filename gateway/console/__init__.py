"""The gateway's own web pages for people managing access in the browser.

- ``me``     "My access" at ``/.certgate/me`` on every app host: a person's own
             certificates (suspend one), sessions (end them), recent access, and the
             "renew before" notice
- ``views``  what those pages show, as plain values built from ``manage`` records (pure)

Pages here are answered by the request story like the sign-in pages
(``gateway.auth.pages``): they may use the database, never on a proxied request.
Every change goes through ``gateway.manage`` (the code the CLI calls) and is
recorded in the audit trail with the person as actor. Server-rendered with the
autoescaped templates of ``gateway/templates``; forms are POST with a CSRF token;
no JavaScript. Must not import ``gateway.cli`` nor decide who may reach an app.
"""
