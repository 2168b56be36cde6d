"""Signed checkpoints: "node N's chain had head hash H at seq S, at time T", signed.

A checkpoint is a dict ``{node, seq, hash, at, signature}``. The signature is
Ed25519 over ``payload(checkpoint)``: the canonical JSON (sorted keys, no
whitespace, UTF-8) of ``{"at", "hash", "node", "seq"}``, with ``at`` in the chain's
ISO form, encoded as standard base64. Anyone holding ``audit.pub`` can check it;
only the node holding ``audit.key`` can make one, so a table truncated behind the
admin's back still disagrees with the checkpoints kept outside the database.

Pure: no I/O (``gateway.audit.keys`` reads and writes the key files).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.audit.chain import format_at

Checkpoint = dict[str, Any]
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode


def payload(checkpoint: Checkpoint) -> bytes:
    """The bytes a checkpoint's signature covers."""
    return _ENCODE({name: checkpoint[name] for name in ("at", "hash", "node", "seq")}
                   ).encode("utf-8")


def sign_checkpoint(key: Ed25519PrivateKey, node: str, seq: int, head: str,
                    at: datetime) -> Checkpoint:
    checkpoint: Checkpoint = {"node": node, "seq": seq, "hash": head, "at": format_at(at)}
    checkpoint["signature"] = base64.b64encode(key.sign(payload(checkpoint))).decode("ascii")
    return checkpoint


def signature_ok(public_key: Ed25519PublicKey, checkpoint: Checkpoint) -> bool:
    """True when ``checkpoint`` was signed by the key ``public_key`` belongs to and
    not changed since."""
    try:
        signature = base64.b64decode(str(checkpoint.get("signature", "")), validate=True)
        public_key.verify(signature, payload(checkpoint))
    except (InvalidSignature, binascii.Error, KeyError, TypeError, ValueError):
        return False
    return True


def checkpoint_from_json(line: bytes | str) -> Checkpoint | None:
    """A checkpoint from one line of the checkpoint file, or None if it is not one."""
    try:
        data = json.loads(line)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("seq"), int) \
            or not all(isinstance(data.get(k), str) for k in ("node", "hash", "at", "signature")):
        return None
    return data


def checkpoint_line(checkpoint: Checkpoint) -> bytes:
    return (_ENCODE(checkpoint) + "\n").encode("utf-8")
