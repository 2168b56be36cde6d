"""The verifier over plain rows: an untouched chain verifies; each kind of tampering is
found at the right record and named; checkpoints catch a cut tail and a rewrite."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.audit.chain import Chain, ChainRow, hash_of
from gateway.audit.checkpoint import Checkpoint, sign_checkpoint, signature_ok
from gateway.audit.verify import NodeResult, NodeVerifier
from tests.gateway.audit.helpers import NOW, record

KEY = Ed25519PrivateKey.generate()


def chain(count: int = 10) -> list[ChainRow]:
    links = Chain("gw1")
    return [links.link(record(n).fields()) for n in range(count)]


def check(rows: list[ChainRow], checkpoints: list[Checkpoint] = (), *,  # type: ignore[assignment]
          page: int = 3, from_start: bool = True) -> NodeResult:
    verifier = NodeVerifier("gw1", from_start=from_start,
                            checkpoint_seqs=[c["seq"] for c in checkpoints])
    for i in range(0, len(rows), page):
        verifier.feed(rows[i:i + page])
    return verifier.finish(checkpoints, lambda cp: signature_ok(KEY.public_key(), cp))


def edit(rows: list[ChainRow]) -> None:
    rows[4]["path"] = "/somewhere-else"


def delete(rows: list[ChainRow]) -> None:
    del rows[4]


def delete_and_renumber(rows: list[ChainRow]) -> None:
    del rows[4]
    for row in rows[4:]:
        row["seq"] -= 1


def insert_forged(rows: list[ChainRow]) -> None:
    # A well-made forgery: linked to record 4 and hashed right, the rest renumbered.
    forged = {**record(99).fields(), "node": "gw1", "seq": 5, "prev_hash": rows[3]["hash"]}
    forged["hash"] = hash_of(forged["prev_hash"], forged)
    for row in rows[4:]:
        row["seq"] += 1
    rows.insert(4, forged)


def swap(rows: list[ChainRow]) -> None:
    rows[4], rows[6] = rows[6], rows[4]
    rows[4]["seq"], rows[6]["seq"] = 5, 7


def rehash_from(rows: list[ChainRow], index: int) -> None:
    for i in range(index, len(rows)):
        rows[i]["prev_hash"] = rows[i - 1]["hash"]
        rows[i]["hash"] = hash_of(rows[i]["prev_hash"], rows[i])


def edit_and_rehash(rows: list[ChainRow]) -> None:
    rows[4]["path"] = "/elsewhere"
    rows[4]["hash"] = hash_of(rows[4]["prev_hash"], rows[4])  # forgot the records after it


@pytest.mark.parametrize(("tamper", "seq", "kind"), [
    (edit, 5, "edited"),
    (delete, 5, "removed"),
    (delete_and_renumber, 5, "removed"),
    (insert_forged, 5, "inserted"),
    (swap, 5, "reordered"),
    (edit_and_rehash, 6, "chain-broken"),
], ids=["edit", "delete", "delete-renumber", "insert", "swap", "edit-rehash-one"])
def test_tampering_is_found_at_the_first_broken_record(
        tamper: Callable[[list[ChainRow]], None], seq: int, kind: str) -> None:
    rows = chain()
    tamper(rows)
    result = check(rows)
    assert not result.ok
    assert (result.breaks[0].seq, result.breaks[0].kind) == (seq, kind), result.breaks
    assert str(seq) in result.breaks[0].message


def test_an_untouched_chain_verifies() -> None:
    result = check(chain(), [sign_checkpoint(KEY, "gw1", 10, chain()[-1]["hash"], NOW)])
    assert result.ok and (result.records, result.first_seq, result.last_seq) == (10, 1, 10)
    assert result.checkpoints == 1 and result.notes == []


def test_without_a_checkpoint_the_result_says_a_cut_tail_is_undetectable() -> None:
    result = check(chain())
    assert result.ok and "truncated tail cannot be detected" in result.notes[0]


def test_a_cut_tail_is_found_by_the_checkpoint() -> None:
    rows = chain()
    cp = sign_checkpoint(KEY, "gw1", 10, rows[-1]["hash"], NOW)
    result = check(rows[:7], [cp])
    assert [(b.seq, b.kind) for b in result.breaks] == [(8, "truncated")]
    assert "records 8 to 10 were removed" in result.breaks[0].message


def test_a_rewritten_chain_disagrees_with_its_checkpoint() -> None:
    rows = chain()
    cp = sign_checkpoint(KEY, "gw1", 8, rows[7]["hash"], NOW)
    rows[2]["path"] = "/rewritten"
    rehash_from(rows, 2)  # every hash recomputed: only the checkpoint knows
    rows[2]["hash"] = hash_of(rows[2]["prev_hash"], rows[2])
    rehash_from(rows, 3)
    result = check(rows, [cp])
    assert [(b.seq, b.kind) for b in result.breaks] == [(8, "rewritten")]


def test_a_forged_or_edited_checkpoint_does_not_verify() -> None:
    rows = chain()
    other = sign_checkpoint(Ed25519PrivateKey.generate(), "gw1", 10, rows[-1]["hash"], NOW)
    edited = sign_checkpoint(KEY, "gw1", 10, rows[-1]["hash"], NOW)
    edited["at"] = "2030-01-01T00:00:00.000Z"
    result = check(rows, [other, edited])
    assert [b.kind for b in result.breaks] == ["bad-signature", "bad-signature"]


def test_since_starts_in_the_middle_and_trusts_the_first_prev_hash() -> None:
    rows = chain()
    result = check(rows[5:], [sign_checkpoint(KEY, "gw1", 3, rows[2]["hash"], NOW)],
                   from_start=False)
    assert result.ok and (result.first_seq, result.records, result.checkpoints) == (6, 5, 0)
