"""The end-to-end gateway of tests/gateway (a real server on port 0), for running the
container's healthcheck command against a real admin listener."""

from tests.gateway.conftest import gateway, gateway_template

__all__ = ["gateway", "gateway_template"]
