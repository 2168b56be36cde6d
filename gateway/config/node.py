"""Node names: what a gateway calls itself in the audit trail and the change feed.

Pure; owns the rule for a valid name and the default (this machine's host name).
"""

from __future__ import annotations

import re
import socket

NODE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,59}")


def is_node_name(name: str) -> bool:
    return NODE_RE.fullmatch(name) is not None


def default_node() -> str:
    """This machine's host name, cut to what a node name may hold."""
    name = re.sub(r"[^A-Za-z0-9._-]", "-", socket.gethostname().split(".")[0])[:60]
    return name if NODE_RE.fullmatch(name) else "certgate"
