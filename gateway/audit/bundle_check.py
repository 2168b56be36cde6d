"""Checking an export bundle (``gateway.audit.bundle``) with nothing but ``audit.pub``.

``BundleChecker`` is fed the bundle's lines (and, for a CSV export, the CSV's rows)
and reuses ``NodeVerifier`` for every node's chain: each record's hash recomputes,
each record follows the one before, each checkpoint's signature verifies and its
hash is the record's at that seq. On top of that it holds the bundle to what it
says of itself: the header's stretch of each chain (a record cut from either end
of it is named by node and seq), a checkpoint naming a seq the bundle lacks, and
the end line's SHA-256 over every byte before it (a changed byte in the header or
between records). A stretch must start at seq 1 or at a signed checkpoint
(``audit export`` widens it so): its first record's ``prev_hash`` is then never
taken on trust, and the notes say which anchor held.

Pure: lines in, a ``BundleResult`` out; no I/O, no clock.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from gateway.audit.bundle import FORMAT, VERSION, new_digest
from gateway.audit.chain import FIELDS
from gateway.audit.checkpoint import Checkpoint, checkpoint_from_json
from gateway.audit.verify import Break, NodeResult, NodeVerifier

_FIELD_SET = frozenset(FIELDS)
_HASH = re.compile(r"[0-9a-f]{64}")
_END_KEYS = frozenset({"kind", "records", "checkpoints", "sha256"})


@dataclass
class Span:
    first_seq: int
    last_seq: int


@dataclass
class BundleResult:
    header: dict[str, Any] | None
    nodes: list[NodeResult]
    problems: list[str] = field(default_factory=list)  # not tied to one node and seq

    @property
    def ok(self) -> bool:
        return self.header is not None and not self.problems and all(n.ok for n in self.nodes)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "header": self.header, "problems": self.problems,
                "nodes": [node.to_json() for node in self.nodes]}


def _spans(header: dict[str, Any]) -> dict[str, Span] | None:
    spans: dict[str, Span] = {}
    for item in header.get("nodes") or []:
        if not isinstance(item, dict) or not isinstance(item.get("node"), str) or not all(
                type(item.get(k)) is int for k in ("first_seq", "last_seq")):
            return None
        spans[item["node"]] = Span(item["first_seq"], item["last_seq"])
    return spans if isinstance(header.get("nodes"), list) else None


class BundleChecker:
    """Feed ``line`` every line of the ``.jsonl`` (bundle or CSV companion) in order,
    ``record`` every CSV row, then ``finish``."""

    def __init__(self, signature_ok: Callable[[Checkpoint], bool]) -> None:
        self._signature_ok = signature_ok
        self.header: dict[str, Any] | None = None
        self.end: dict[str, Any] | None = None
        self.problems: list[str] = []
        self._spans: dict[str, Span] = {}
        self._checkpoints: dict[str, list[Checkpoint]] = {}
        self._verifiers: dict[str, NodeVerifier] = {}
        self._first_hash: dict[str, str] = {}
        self._digest = new_digest()
        self._lines = 0
        self._records = 0
        self._seen_record = False

    def problem(self, message: str) -> None:
        """A problem of the bundle as a whole (at most 100 are kept)."""
        if len(self.problems) < 100:
            self.problems.append(message)

    def line(self, raw: bytes) -> None:
        self._lines += 1
        number = self._lines
        if self.end is not None:
            self.problem(f"line {number} comes after the end line (added to the bundle)")
            return
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested absurdly deep
            data = None
        kind = data.get("kind") if isinstance(data, dict) else None
        if kind == "end" and isinstance(data, dict):
            self.end = data
            if data.get("sha256") != self._digest.hexdigest():
                self.problem("the bundle's bytes do not match the SHA-256 in its end line: "
                              "something in it was changed")
            return
        self._digest.update(raw)
        if number == 1:
            self._start(data, kind)
        elif kind == "checkpoint" and isinstance(data, dict):
            self._checkpoint(number, data)
        elif kind == "record" and isinstance(data, dict):
            self.record(data, f"line {number}")
        elif data is None:
            self.problem(f"line {number} is not valid JSON (changed or cut)")
        else:
            self.problem(f"line {number} is neither a record nor a checkpoint")

    def _start(self, data: Any, kind: Any) -> None:
        if kind != "header" or data.get("format") != FORMAT:
            self.problem("the first line is not the header of a certgate audit bundle")
            return
        if data.get("version") != VERSION:
            self.problem(f"bundle format version {data.get('version')} is not {VERSION}: "
                          "verify it with the certgate version that exported it")
            return
        spans = _spans(data)
        if spans is None:
            self.problem("the header's list of nodes is malformed")
            return
        self.header, self._spans = data, spans

    def _checkpoint(self, number: int, data: dict[str, Any]) -> None:
        checkpoint = checkpoint_from_json(json.dumps({k: v for k, v in data.items()
                                                      if k != "kind"}))
        if checkpoint is None:
            self.problem(f"line {number} is not a well-formed checkpoint")
        elif self._seen_record:
            self.problem(f"line {number}: a checkpoint after the records (moved)")
        else:
            self._checkpoints.setdefault(checkpoint["node"], []).append(checkpoint)

    def record(self, row: dict[str, Any], where: str) -> None:
        """One record (from a ``record`` line or a CSV row); ``where`` names its place."""
        self._seen_record = True
        self._records += 1
        node, seq = row.get("node"), row.get("seq")
        if not isinstance(node, str) or type(seq) is not int:
            self.problem(f"{where} is a record without a node and a seq number")
            return
        verifier = self._verifiers.get(node)
        if verifier is None:
            verifier = self._new_verifier(node, seq, where)
        if set(row) - {"kind"} != _FIELD_SET or not all(
                isinstance(row[name], str) and _HASH.fullmatch(row[name])
                for name in ("prev_hash", "hash")):
            if not verifier.result.breaks:
                verifier.result.breaks.append(Break(seq, "edited", f"record {seq} ({where}) "
                                                    "is malformed: fields missing or added"))
            return
        if node not in self._first_hash:
            self._first_hash[node] = row["hash"]
        verifier.feed([row])

    def _new_verifier(self, node: str, seq: int, where: str) -> NodeVerifier:
        span = self._spans.get(node)
        if span is None and self.header is not None:
            self.problem(f"{where}: records of node {node}, which the header does not list")
        start = span.first_seq if span else seq
        verifier = NodeVerifier(node, from_start=start <= 1, checkpoint_seqs=[
            int(cp["seq"]) for cp in self._checkpoints.get(node, [])])
        self._verifiers[node] = verifier
        return verifier

    def finish(self, records_sha256: str | None = None) -> BundleResult:
        """``records_sha256``: the SHA-256 of the CSV file (None for a jsonl bundle)."""
        if self.header is None and not self.problems:
            self.problem("the bundle is empty")
        checkpoints = sum(len(cps) for cps in self._checkpoints.values())
        if self.end is None:
            self.problem("the bundle has no end line: it was cut short")
        elif set(self.end) != _END_KEYS | ({"records_sha256"} if records_sha256 else set()):
            self.problem("the end line is malformed")
        elif (self.end["records"], self.end["checkpoints"]) != (self._records, checkpoints):
            self.problem(f"the end line counts {self.end['records']} record(s) and "
                         f"{self.end['checkpoints']} checkpoint(s), the bundle holds "
                         f"{self._records} and {checkpoints}")
        if self.end is not None and records_sha256 is not None \
                and self.end.get("records_sha256") != records_sha256:
            self.problem("the CSV file's bytes do not match the SHA-256 in the bundle: "
                          "something in it was changed")
        nodes = sorted(set(self._spans) | set(self._verifiers) | set(self._checkpoints))
        return BundleResult(self.header, [self._finish_node(node) for node in nodes],
                            self.problems)

    def _finish_node(self, node: str) -> NodeResult:
        span = self._spans.get(node)
        verifier = self._verifiers.get(node) or NodeVerifier(
            node, from_start=span is None or span.first_seq <= 1)
        checkpoints = self._checkpoints.get(node, [])
        result = verifier.finish(checkpoints, self._signature_ok)
        first, last = result.first_seq, result.last_seq
        if span is not None:
            if last is None or last < span.last_seq:
                start = span.first_seq if last is None else last + 1
                result.breaks.append(Break(start, "truncated", (
                    f"the header lists records up to seq {span.last_seq} but the bundle's "
                    f"end at {last}" if last is not None else "the header lists records "
                    "but the bundle holds none of this node") + ": cut from the bundle"))
            if first is not None and first > span.first_seq:
                result.breaks.append(Break(span.first_seq, "removed", (
                    f"the header lists records from seq {span.first_seq} but the bundle's "
                    f"start at {first}: removed from the bundle")))
        elif self.header is not None:
            result.breaks.append(Break(first or 0, "inserted",
                                       f"node {node} is not listed in the header"))
        for cp in checkpoints:
            if first is not None and int(cp["seq"]) < first:
                result.breaks.append(Break(int(cp["seq"]), "removed", (
                    f"a signed checkpoint names record {cp['seq']}, which is not in the "
                    f"bundle (it starts at seq {first}): records were removed")))
        self._anchor(result, checkpoints)
        return result

    def _anchor(self, result: NodeResult, checkpoints: list[Checkpoint]) -> None:
        """The stretch must start at seq 1 or at a signed checkpoint (the export makes
        it so): otherwise records before it could have been cut unnoticed."""
        first, last = result.first_seq, result.last_seq
        if first is None or last is None or not result.ok:
            return
        good = [int(cp["seq"]) for cp in checkpoints if self._signature_ok(cp)]
        if first == 1:
            result.notes.insert(0, "chain verified from seq 1 (the start of the node's chain)")
        elif any(int(cp["seq"]) == first and cp["hash"] == self._first_hash.get(result.node)
                 for cp in checkpoints) and first in good:
            result.notes.insert(0, f"chain verified from seq {first}, anchored by the "
                                   f"signed checkpoint at seq {first}")
        else:
            result.breaks.append(Break(first, "removed", (
                f"the bundle's records start at seq {first}, which is neither the chain's "
                "first record nor at a signed checkpoint: records before it may have been "
                "cut from the bundle")))
            return
        if good and max(good) < last:
            result.notes.append(f"records {max(good) + 1} to {last} come after the last "
                                "signed checkpoint in the bundle: had they been cut, it "
                                "could not be noticed")
