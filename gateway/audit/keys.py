"""The audit key pair: an Ed25519 key that signs checkpoints, and its public half.

``create_audit_key`` writes ``audit.key`` (PKCS#8 PEM, 0600) and ``audit.pub``
(SubjectPublicKeyInfo PEM, 0644); ``certgate init`` calls it for a new data
directory and on an existing install that lacks the key. The loaders refuse what
they can't use with ``AuditKeyError``: one sentence naming the file. Must not sign
or verify anything (``gateway.audit.checkpoint`` does) and never overwrites a key.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pki.keys import PkiError, check_secret_mode, write_public_file, write_secret_file


class AuditKeyError(PkiError):
    """The audit key is missing, unreadable or of the wrong kind."""


def create_audit_key(private_path: Path, public_path: Path) -> bool:
    """Create the key pair unless ``private_path`` exists; True when it was created.
    A missing ``audit.pub`` next to an existing key is written again from it."""
    if private_path.exists():
        if not public_path.exists():
            write_public_file(public_path, public_pem(load_audit_key(private_path).public_key()))
        return False
    key = Ed25519PrivateKey.generate()
    write_secret_file(private_path, key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    write_public_file(public_path, public_pem(key.public_key()))
    return True


def public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)


def load_audit_key(path: Path) -> Ed25519PrivateKey:
    """The private key; refuses a file group or others may read, like every key file."""
    check_secret_mode(path)
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except OSError as exc:
        raise AuditKeyError(f"cannot read the audit key {path}: {exc.strerror}") from None
    except (ValueError, TypeError):
        raise AuditKeyError(f"{path} is not an unencrypted PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise AuditKeyError(f"{path} is not an Ed25519 key")
    return key


def load_audit_public_key(path: Path) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except FileNotFoundError:
        raise AuditKeyError(f"no audit public key at {path}; run `certgate init` on the "
                            "gateway to create the audit key pair") from None
    except OSError as exc:
        raise AuditKeyError(f"cannot read {path}: {exc.strerror}") from None
    except ValueError:
        raise AuditKeyError(f"{path} is not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise AuditKeyError(f"{path} is not an Ed25519 public key")
    return key
