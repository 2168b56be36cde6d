"""The sign-in fixtures (alice with a password and TOTP, the pinned clock) for the
console's pages, which sit behind the same sign-in."""

from tests.gateway.auth.conftest import alice  # noqa: F401 - a fixture, used by name
