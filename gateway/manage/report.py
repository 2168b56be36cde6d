"""The access-review report as a use-case: gather the figures, verify the trail, write the file.

``gather_report`` asks the store for the period's aggregates (``store.audit_report``:
counted by the database, never the period's records one by one), runs the same
verification as ``certgate audit verify`` over every node's whole chain, and
reads who can reach which app from today's policy with the pure ``policies.reach``
for every user in the store. ``write_report`` puts the HTML in place without ever
leaving half a file or overwriting one unless asked: a temporary file beside it,
then a link (no overwrite) or a rename (``force``). Never prints; refuses with
``ManageError``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.audit.report import AppLine, ReportData, Verdict
from gateway.config import Config
from gateway.manage.audit import verify_audit
from gateway.manage.errors import ManageError
from gateway.store.records import CertStatus
from gateway.store.store import Store
from policies.reach import Reach, reach

ADMIN_ROWS = 500  # admin actions listed in full; the rest are counted
EXPIRING_DAYS = 30
REFUSED_ADDRESSES = 15  # the most refused host and path pairs listed


async def gather_report(store: Store, config: Config, *, since: datetime, until: datetime,
                        now: datetime, generated_by: str,
                        public_key: Ed25519PublicKey | None, public_key_path: Path | None,
                        checkpoint_file: Path) -> ReportData:
    """Everything the report shows, for the period ``[since, until)``."""
    if since >= until:
        raise ManageError(f"the period is empty: --since {since.isoformat()} is not before "
                          f"--until {until.isoformat()}")
    verification = await verify_audit(store, public_key=public_key,
                                      checkpoint_file=checkpoint_file)
    users = await store.list_users()
    certs = await store.list_certificates(status=CertStatus.ACTIVE, expired=False, now=now)
    holders = {c.user for c in certs if c.not_before <= now}
    enabled = [u for u in users if u.enabled]
    apps = []
    for app in sorted(config.policy_set.apps.values(), key=lambda a: a.name):
        full: list[tuple[str, Reach]] = []
        limited: list[tuple[str, Reach]] = []
        for user in enabled:
            standing = reach(app, user.name, frozenset(user.groups))
            if standing.level != "none":
                (full if standing.level == "full" else limited).append((user.name, standing))
        apps.append(AppLine(app.name, app.host, full, limited))
    admin_total, admin = await store.report_admin(since, until, limit=ADMIN_ROWS)
    expiring_before = now + timedelta(days=EXPIRING_DAYS)
    changes = await store.report_certificates(since, until, now=now,
                                              expiring_before=expiring_before)

    def revoked_in_period(status: str, at: datetime | None) -> bool:
        return status == "revoked" and at is not None and since <= at < until

    return ReportData(
        since=since, until=until, generated_at=now, generated_by=generated_by,
        this_node=config.node, database=store.url,
        verdict=Verdict(verification.nodes, public_key is not None,
                        str(public_key_path) if public_key is not None else None,
                        str(checkpoint_file)),
        nodes=await store.report_nodes(since, until), apps=apps, users=len(users),
        disabled=[u.name for u in users if not u.enabled],
        without_certificate=[u.name for u in enabled if u.name not in holders],
        usage=await store.report_usage(since, until),
        days=await store.report_days(since, until),
        denials=await store.report_denials(since, until),
        refused_addresses=await store.report_refused_addresses(since, until,
                                                               limit=REFUSED_ADDRESSES),
        sign_ins=await store.report_sign_ins(since, until),
        admin_total=admin_total, admin=admin,
        issued=[c for c in changes if since <= c.issued_at < until],
        revoked=[c for c in changes if revoked_in_period(c.status, c.revoked_at)],
        suspended=[c for c in changes if c.status == "suspended"],
        expiring=[c for c in changes
                  if c.status == "active" and now < c.not_after <= expiring_before],
        expiring_days=EXPIRING_DAYS)


def write_report(path: Path, html: str, *, force: bool) -> None:
    """Write ``html`` to ``path`` (0600: the report names people): whole or not at all,
    and over an existing file only with ``force``."""
    if path.is_dir():
        raise ManageError(f"{path} is a directory; name the report file (--out report.html)")
    if not force and path.exists():
        raise ManageError(f"{path} already exists; pass --force to replace it")
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise ManageError(f"cannot write in {folder}: {exc.strerror}") from None
    tmp = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(html)
            out.flush()
            os.fsync(out.fileno())
        if force:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # fails if the file appeared meanwhile: never clobbers
            except FileExistsError:
                raise ManageError(f"{path} already exists; pass --force to replace it") \
                    from None
            except OSError as exc:
                if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP):
                    raise
                os.replace(tmp, path)  # a file system without hard links (FAT, some FUSE)
    except OSError as exc:
        raise ManageError(f"cannot write {path}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
