"""Access policies: what an admin writes, and the pure engine that applies it.

- ``yamlsource``  YAML with line numbers; ``SourceIssue``/``SourceError`` (file, line, key)
- ``schema``      strict pydantic specs: ``RuleSpec``, ``HoursSpec``, ``AppPolicySpec``
- ``loader``      ``build_policy_set(specs)``: compile specs into the model
- ``model``       ``Reason``, ``Decision``, ``AccessRequest``, ``Rule``, ``AppPolicy``,
                  ``PolicySet``
- ``engine``      ``evaluate(policy_set, request) -> Decision``: no I/O, no clock, no await
- ``explain``     renderings for ``certgate policy explain``

This package imports neither ``gateway`` nor ``pki``.
"""
