"""Whether the audit log can be written where the config says, checked at load time.

Used by ``gateway.config`` so that ``policy check``, ``serve`` and a reload refuse a
destination that could never take a record, instead of serving without an audit
trail. Must only look (stat, access): it creates nothing, because ``policy check``
must not change the machine it runs on.
"""

from __future__ import annotations

import os
from pathlib import Path


def audit_path_problem(path: Path) -> str | None:
    """Why the audit log can't be written at ``path``, or None. Only looks (stat and
    access): creating the file is the writer's job, and ``policy check`` must not."""
    if path.is_dir():
        return f"{path} is a directory; the audit log must be a file"
    if path.exists():
        return None if os.access(path, os.W_OK) else f"{path} is not writable"
    parent = path.parent
    while not parent.exists():  # the writer creates missing directories
        if parent.is_symlink() or parent == parent.parent:
            return f"{parent} does not exist and cannot be created"
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is not a directory, so {path} cannot be created"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{parent} is not writable, so {path} cannot be created"
    return None
