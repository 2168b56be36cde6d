"""What can go wrong in the store, each as one sentence for a person.

Must never put a database password into a message.
"""


class StoreError(Exception):
    """A store operation was refused or failed."""


class NotFoundError(StoreError):
    """No such user or certificate."""


class ConflictError(StoreError):
    """The change contradicts what is stored (duplicate, already revoked, ...)."""


class DatabaseUnavailableError(StoreError):
    """The database cannot be reached or answered with an error."""
