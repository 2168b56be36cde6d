"""What the admin who runs certgate sees of its health.

- ``metrics``  Prometheus metrics, labelled by app, decision and status class only
- ``health``   the admin listener: ``/healthz``, ``/readyz``, ``/metrics``, ``/jwks.json``

Labels never carry user names, serials or paths; nothing here is on the public listener.
"""
