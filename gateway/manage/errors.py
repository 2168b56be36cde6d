"""The one exception a use-case raises when it refuses: ``ManageError``.

Its message is one sentence for a person; the CLI prints it after ``certgate:``
and exits 1, the console shows it on the page. Use-cases also let the store's and
the PKI's own refusals through (``StoreError``, ``PkiError``), which are one
sentence too: ``REFUSALS`` names all three for callers that catch them.
"""

from __future__ import annotations

from gateway.store.errors import StoreError
from pki.keys import PkiError


class ManageError(Exception):
    """A use-case refused; nothing was changed."""


REFUSALS: tuple[type[Exception], ...] = (ManageError, StoreError, PkiError)
