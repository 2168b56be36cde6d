"""The sign-in fixture (alice with a password, an enrolled TOTP and a pinned clock)
for the request-path tests that need a login session (open WebSockets on apps
with mfa: required)."""

from tests.gateway.auth.conftest import alice  # noqa: F401 - a fixture, used by name
