"""What the admin who runs certgate sees of its health.

- ``metrics``  Prometheus metrics, labelled by app, decision and status class only
- ``health``   the admin listener: ``/healthz``, ``/readyz``, ``/metrics``, ``/jwks.json``
- ``filemodes`` start-up refusal of readable key files, warnings for a readable config
              or database

Labels never carry user names, serials or paths; nothing here is on the public listener.
"""
