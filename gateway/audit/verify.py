"""Checking one node's chain and its checkpoints, record by record.

``NodeVerifier`` is fed the node's records in seq order (any number of pages) and
its checkpoints, and finds the *first* place where the log stops being what the
node wrote:

- ``removed``     a seq is missing (a gap), or a record was removed and the ones
                  after it renumbered (the record's hash says it was seq + 1);
- ``inserted``    a seq appears twice, or a record's hash says it was seq - 1
                  (someone slid a record in before it and renumbered);
- ``reordered``   the record's predecessor, by its ``prev_hash``, comes later in the log;
- ``edited``      the record's content no longer matches its own hash;
- ``chain-broken`` the record is self-consistent but does not follow the previous
                  one (everything before it was replaced or re-hashed);

and, against the signed checkpoints (``gateway.audit.checkpoint``):

- ``bad-signature`` a checkpoint whose signature does not verify (forged or edited);
- ``truncated``   a checkpoint names a seq beyond the last record: the tail was cut;
- ``rewritten``   the record at a checkpoint's seq has another hash than the one signed.

A log whose oldest records were deleted by retention (``gateway.audit.retention``)
starts after seq 1: it verifies when its first record's ``prev_hash`` is the hash a
signed checkpoint gives for the seq just before (an *anchor*); without such an
anchor the missing prefix is ``removed``, like any other deletion.

After the first break it keeps reading a bounded window of records only to tell
a swap from an edit. Pure: rows in, a ``NodeResult`` out; no I/O, no clock.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from gateway.audit.chain import GENESIS, ChainRow, hash_of
from gateway.audit.checkpoint import Checkpoint

LOOKAHEAD = 10_000  # records read past a break to classify it


@dataclass(frozen=True)
class Break:
    seq: int
    kind: str
    message: str


@dataclass
class NodeResult:
    node: str
    records: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    head: str | None = None
    checkpoints: int = 0  # checkpoints whose signature and hash agree with the log
    breaks: list[Break] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.breaks

    def to_json(self) -> dict[str, Any]:
        return {"node": self.node, "ok": self.ok, "records": self.records,
                "first_seq": self.first_seq, "last_seq": self.last_seq, "head": self.head,
                "checkpoints_verified": self.checkpoints, "notes": self.notes,
                "problems": [{"seq": b.seq, "kind": b.kind, "message": b.message}
                             for b in self.breaks]}


class NodeVerifier:
    """Feed the node's records in seq order, then ``finish`` with its checkpoints.

    ``from_start``: the records begin at seq 1 (genesis); False when a ``--since``
    starts the check in the middle of the chain, trusting the first record's
    ``prev_hash``.
    """

    def __init__(self, node: str, *, from_start: bool = True,
                 checkpoint_seqs: Iterable[int] = (),
                 anchors: dict[int, str] | None = None) -> None:
        """``anchors``: seq -> hash of the checkpoints whose signature verified; a log
        starting at seq F > 1 is accepted when ``anchors[F - 1]`` is its prev_hash."""
        self.result = NodeResult(node)
        self._anchors = anchors or {}
        self.anchored: int | None = None  # the anchor's seq when the log starts after 1
        self._retained: set[int] = set()  # through_seq of each audit.retention record
        self._from_start = from_start
        self._expected: int | None = 1 if from_start else None
        self._prev_hash = GENESIS
        self._watch = set(checkpoint_seqs)
        self._hash_at: dict[int, str] = {}
        self._suspect: ChainRow | None = None  # first record that did not link
        self._later: set[str] = set()  # hashes seen after the suspect (bounded)

    def feed(self, rows: Iterable[ChainRow]) -> None:
        result = self.result
        for row in rows:
            seq = int(row["seq"])
            result.records += 1
            if result.first_seq is None:
                result.first_seq = seq
            result.last_seq = seq
            result.head = str(row["hash"])
            if seq in self._watch:
                self._hash_at[seq] = str(row["hash"])
            if row.get("type") == "audit.retention":
                self._note_retention(row)
            if result.breaks or self._suspect is not None:
                if self._suspect is not None and len(self._later) < LOOKAHEAD:
                    self._later.add(str(row["hash"]))
                continue
            self._check(row, seq)

    def _note_retention(self, row: ChainRow) -> None:
        # A retention record without its detail: the anchor's note says so.
        with contextlib.suppress(ValueError, KeyError, TypeError):
            self._retained.add(int(json.loads(str(row["detail"]))["through_seq"]))

    def _check(self, row: ChainRow, seq: int) -> None:
        if self._expected == 1 and seq > 1 and self.result.records == 1 \
                and self._anchors.get(seq - 1) == row["prev_hash"]:
            self.anchored = seq - 1  # the prefix went behind a signed checkpoint
            self._expected, self._prev_hash = seq, str(row["prev_hash"])
        expected = seq if self._expected is None else self._expected
        if self._expected is None:
            self._prev_hash = str(row["prev_hash"])  # --since: trust where we start
        if seq > expected:
            missing = f"record {expected} is" if seq == expected + 1 else \
                f"records {expected} to {seq - 1} are"
            self._break(expected, "removed", f"{missing} missing (removed)")
            return
        if seq < expected:
            self._break(seq, "inserted", f"a second record numbered {seq} (inserted)")
            return
        own = hash_of(str(row["prev_hash"]), row) == row["hash"]
        linked = row["prev_hash"] == self._prev_hash
        if own and linked:
            self._prev_hash = str(row["hash"])
            self._expected = seq + 1
        elif not own and hash_of(str(row["prev_hash"]), {**row, "seq": seq - 1}) == row["hash"]:
            self._break(seq - 1, "inserted",
                        f"record {seq - 1} was inserted: the record now numbered {seq} was "
                        f"written as {seq - 1}")
        elif not own and linked:
            self._break(seq, "edited",
                        f"record {seq} was edited: its content no longer matches its hash")
        elif not own:
            self._suspect = row  # a swap, a removal with renumbering, or an edit: look ahead
        else:
            self._break(seq, "chain-broken",
                        f"record {seq} does not follow record {seq - 1} (its prev_hash "
                        "differs): the records before it were replaced or re-hashed")

    def _break(self, seq: int, kind: str, message: str) -> None:
        self.result.breaks.append(Break(seq, kind, message))

    def _classify_suspect(self) -> None:
        row = self._suspect
        if row is None:
            return
        seq = int(row["seq"])
        if row["prev_hash"] in self._later:
            self._break(seq, "reordered", f"record {seq} is out of order: the record it "
                        "follows comes later in the log (records were swapped or moved)")
        elif hash_of(str(row["prev_hash"]), {**row, "seq": seq + 1}) == row["hash"]:
            self._break(seq, "removed", f"record {seq} was removed and the records after "
                        "it renumbered")
        else:
            self._break(seq, "edited",
                        f"record {seq} was edited: its content no longer matches its hash")
        self._suspect = None

    def finish(self, checkpoints: Iterable[Checkpoint],
               signature_ok: Callable[[Checkpoint], bool] | None) -> NodeResult:
        """Classify a pending break, then hold the log against the checkpoints.
        ``signature_ok`` None: no public key, so checkpoints are not used."""
        self._classify_suspect()
        result = self.result
        if self._from_start and result.records == 0 and not result.breaks:
            result.notes.append("no records")
        checkpoints = list(checkpoints)
        if signature_ok is None:
            if checkpoints:
                result.notes.append("checkpoints not checked: no public key")
            return result
        first = result.first_seq if not self._from_start or self.anchored else 1
        last = result.last_seq or 0
        if self.anchored is not None:
            result.notes.append(
                f"records 1 to {self.anchored} were deleted by retention, behind the signed "
                f"checkpoint at seq {self.anchored}" if self.anchored in self._retained else
                f"records 1 to {self.anchored} are gone behind the signed checkpoint at seq "
                f"{self.anchored}, but no audit.retention record in the log says they were "
                "deleted by retention")
        for cp in sorted(checkpoints, key=lambda c: int(c["seq"])):
            seq = int(cp["seq"])
            if not signature_ok(cp):
                self._break(seq, "bad-signature", f"the checkpoint at seq {seq} ({cp.get('at')}) "
                            "has a signature that does not verify (forged or edited)")
            elif seq > last:
                self._break(last + 1, "truncated",
                            f"the log ends at seq {last} but a signed checkpoint of "
                            f"{cp['at']} covers seq {seq}: records {last + 1} to {seq} were "
                            "removed (a truncated tail)")
            elif first is not None and seq < first:
                continue  # before the part checked (--since)
            elif self._hash_at.get(seq) != cp["hash"]:
                self._break(seq, "rewritten",
                            f"record {seq} differs from the signed checkpoint of {cp['at']}: "
                            "the chain up to it was rewritten")
            else:
                result.checkpoints += 1
        if not checkpoints and result.records:
            result.notes.append("no signed checkpoint yet: a truncated tail cannot be detected")
        return result
