"""What the admin who runs certgate sees of its health.

- ``metrics``  Prometheus metrics, labelled by app, decision, status class, reason, kind
- ``health``   the admin listener: ``/healthz``, ``/readyz``, ``/metrics``, ``/jwks.json``
- ``readiness`` why a node is degraded, with since when
- ``gauges``   sampling the runtime into the gauges; expiry dates
- ``multiproc`` metrics that add up across ``serve --workers``
- ``filemodes`` start-up refusal of readable key files, warnings for a readable config
              or database

Labels never carry user names, serials or paths; nothing here is on the public listener.
"""
