"""``audit export`` and ``audit verify --bundle``: evidence that leaves the database.

``export_audit`` writes a bundle (``gateway.audit.bundle``): for each node, the
stretch of its chain whose records fall in ``--since``/``--until``, widened back to
the signed checkpoint at or before its start (else to seq 1) and on to the one at
or after its end where there is one, so every record in it is tied to a signature
or to the chain's start; then every
checkpoint inside the stretch (from the table and the checkpoint file), and, when
the range is open at the end, the later ones too: a checkpoint beyond the table's
last record is evidence of a cut tail and must travel with the export. Files are
written under a temporary name beside the target, fsync'ed and renamed, so a bundle
is there whole or not at all; an existing file is refused unless ``force``.

``verify_bundle`` reads a bundle (and its CSV) with nothing but the public key: no
config, no database. Never prints; refuses with ``ManageError``.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from gateway.audit import bundle
from gateway.audit.bundle_check import BundleChecker, BundleResult
from gateway.audit.chain import format_at
from gateway.audit.checkpoint import Checkpoint, signature_ok
from gateway.audit.events import os_user
from gateway.manage.audit import node_checkpoints, read_checkpoint_file
from gateway.manage.errors import ManageError
from gateway.store.store import Store

Format = Literal["jsonl", "csv"]


@dataclass(frozen=True)
class Export:
    files: list[Path]  # the bundle, and for csv the CSV first
    records: int
    checkpoints: int
    nodes: list[dict[str, Any]]


def sidecar_of(path: Path) -> Path:
    """The ``.bundle.jsonl`` that goes with a CSV export."""
    return path.with_name(path.name + bundle.SIDECAR_SUFFIX)


class _AtomicFile:
    """A file written under a temporary name in the target's directory (0600)."""

    def __init__(self, target: Path) -> None:
        self.target = target
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        self.tmp = Path(name)
        self.file: IO[bytes] = os.fdopen(fd, "wb")
        self.digest = bundle.new_digest()

    def write(self, data: bytes) -> None:
        self.file.write(data)
        self.digest.update(data)

    def close(self) -> None:
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()

    def discard(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()
        with contextlib.suppress(OSError):
            self.tmp.unlink()


def _widen(first: int, last: int, seqs: list[int], head: int) -> tuple[int, int]:
    """The stretch first..last widened to the checkpoints around it: back to the one at
    or before ``first`` (else to seq 1), so its start is anchored on a signature or on
    the chain's start; on to the one at or after ``last`` when there is one."""
    before = [s for s in seqs if s <= first]
    after = [s for s in seqs if last <= s <= head]
    return (max(before) if before else 1), (min(after) if after else last)


async def export_audit(store: Store, *, out: Path, fmt: Format, since: datetime | None,
                       until: datetime | None, checkpoint_file: Path | None, now: datetime,
                       force: bool = False) -> Export:
    targets = [out, sidecar_of(out)] if fmt == "csv" else [out]
    for target in targets:
        if target.exists() and not force:
            raise ManageError(f"{target} already exists; pass --force to replace it")
        if target.is_dir():
            raise ManageError(f"{target} is a directory")
    if not out.parent.is_dir():
        raise ManageError(f"the directory {out.parent} does not exist")
    from_file = read_checkpoint_file(checkpoint_file) if checkpoint_file else []
    plan: list[tuple[str, int, int, list[Checkpoint]]] = []
    for node in sorted(set(await store.audit_nodes()) | {str(cp["node"]) for cp in from_file}):
        span = await store.audit_span(node, since, until)
        if span is None:
            continue
        checkpoints = sorted(await node_checkpoints(store, node, from_file),
                             key=lambda cp: int(cp["seq"]))
        head = (await store.audit_head(node) or (0, ""))[0]
        start, end = _widen(*span, [int(cp["seq"]) for cp in checkpoints], head)
        plan.append((node, start, end, [cp for cp in checkpoints if start <= int(cp["seq"])
                                        and (until is None or int(cp["seq"]) <= end)]))
    nodes = [{"node": n, "first_seq": s, "last_seq": e} for n, s, e, _ in plan]
    header: dict[str, Any] = {"kind": "header", "format": bundle.FORMAT, "version": bundle.VERSION,
              "exported_at": format_at(now), "exported_by": os_user(),
              "exported_on": socket.gethostname(),
              "scope": {"since": since and format_at(since), "until": until and format_at(until)},
              "records_format": fmt, "records_file": out.name if fmt == "csv" else None,
              "nodes": nodes}
    files: list[_AtomicFile] = []
    try:
        for target in targets:
            files.append(_AtomicFile(target))
        records = await _write(store, files, fmt, header, plan)
        for f in files:
            f.close()
        for f in reversed(files):  # the CSV last: there only once its bundle is
            os.replace(f.tmp, f.target)
    except OSError as exc:
        for f in files:
            f.discard()
        raise ManageError(f"cannot write {out}: {exc.strerror or exc}") from None
    except BaseException:
        for f in files:
            f.discard()
        raise
    return Export(targets, records, sum(len(cps) for *_, cps in plan), nodes)


async def _write(store: Store, files: list[_AtomicFile], fmt: Format, header: dict[str, Any],
                 plan: list[tuple[str, int, int, list[Checkpoint]]]) -> int:
    main = files[-1]  # the .jsonl
    rows_to = files[0]
    main.write(bundle.line(header))
    for *_, checkpoints in plan:
        for cp in checkpoints:
            main.write(bundle.checkpoint_line(cp))
    if fmt == "csv":
        rows_to.write(bundle.csv_header())
    encode = bundle.csv_row if fmt == "csv" else bundle.record_line
    records = 0
    for node, start, end, _ in plan:
        async for page in store.audit_rows(node, from_seq=start, to_seq=end):
            rows_to.write(b"".join(encode(row) for row in page))
            records += len(page)
    end_line: dict[str, Any] = {"kind": "end", "records": records,
                                "checkpoints": sum(len(cps) for *_, cps in plan),
                                "sha256": main.digest.hexdigest()}
    if fmt == "csv":
        end_line["records_sha256"] = rows_to.digest.hexdigest()
    main.file.write(bundle.line(end_line))  # not part of its own digest
    return records


def _lines(path: Path) -> Iterator[bytes]:
    try:
        with path.open("rb") as file:
            yield from file
    except FileNotFoundError:
        raise ManageError(f"no bundle file at {path}") from None
    except OSError as exc:
        raise ManageError(f"cannot read {path}: {exc.strerror}") from None


def verify_bundle(path: Path, public_key: Ed25519PublicKey) -> tuple[BundleResult, list[Path]]:
    """Check an export offline; the result and the files read."""
    if not path.exists():
        raise ManageError(f"no bundle file at {path}")
    main, csv_file = path, None
    if sidecar_of(path).exists() or path.suffix.lower() == ".csv":
        main, csv_file = sidecar_of(path), path
    checker = BundleChecker(lambda cp: signature_ok(public_key, cp))
    for raw in _lines(main):
        checker.line(raw)
    header = checker.header or {}
    if header.get("records_format") != "csv":
        return checker.finish(), [main]
    if csv_file is None:
        name = header.get("records_file")
        if not isinstance(name, str) or not name or Path(name).name != name:
            raise ManageError(f"{main} names no CSV file beside it")
        csv_file = main.with_name(name)
    digest = bundle.new_digest()
    for number, row in bundle.rows_from_csv(_lines(csv_file), digest):
        if isinstance(row, str):
            checker.problem(f"{csv_file.name} line {number}: {row}")
        else:
            checker.record(row, f"{csv_file.name} line {number}")
    return checker.finish(records_sha256=digest.hexdigest()), [csv_file, main]
