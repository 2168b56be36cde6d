"""Sessions: bound to their certificate, idle and absolute expiry, kill by user or cert."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.auth.sessions import (
    SessionIndex,
    SessionLimits,
    new_session_secret,
    session_hash,
)
from gateway.store.records import SessionRecord

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
LIMITS = SessionLimits(idle=timedelta(minutes=30), absolute=timedelta(hours=8))


def _session(user: str = "alice", fp: str = "fp-a") -> tuple[str, SessionRecord]:
    value, id_hash = new_session_secret()
    return value, SessionRecord(id_hash, user, fp, NOW, NOW, NOW, ("mtls", "pwd", "otp"))


def test_cookie_is_random_and_kept_only_as_a_hash() -> None:
    value, id_hash = new_session_secret()
    assert len(value) >= 43 and id_hash == session_hash(value) and value not in id_hash
    assert new_session_secret()[0] != value


def test_valid_only_with_its_certificate() -> None:
    index = SessionIndex(LIMITS)
    value, session = _session()
    index.put(session)
    assert index.lookup(value, "fp-a", NOW) == session
    assert index.lookup(value, "fp-other-cert-of-alice", NOW) is None
    assert index.lookup("forged", "fp-a", NOW) is None
    assert index.lookup(None, "fp-a", NOW) is None
    assert index.lookup(value, "fp-a", NOW) is not None  # a foreign try does not end it


def test_idle_timeout_is_renewed_by_use_and_absolute_is_not() -> None:
    index = SessionIndex(LIMITS)
    value, session = _session()
    index.put(session)
    t = NOW
    for _ in range(15):  # used every 29 minutes: never idle, 7 h 15 min in all
        t += timedelta(minutes=29)
        assert index.lookup(value, "fp-a", t) is not None
    assert index.lookup(value, "fp-a", NOW + timedelta(hours=8, minutes=1)) is None
    assert len(index) == 0
    value, session = _session()
    index.put(session)
    assert index.lookup(value, "fp-a", NOW + timedelta(minutes=31)) is None


def test_the_feed_puts_and_ends_sessions() -> None:
    index = SessionIndex(LIMITS)
    value, session = _session("alice", "fp-a")
    index.apply(session.id_hash, session)  # created on another node
    assert index.lookup(value, "fp-a", NOW) == session
    index.apply(session.id_hash, None)  # ended there (kill, logout, revocation)
    assert index.lookup(value, "fp-a", NOW) is None and len(index) == 0
    index.put(session)
    assert index.drop(session.id_hash) == session and index.drop(session.id_hash) is None


def test_elsewhere_finds_the_certificates_live_sessions_on_other_hosts() -> None:
    def on(host: str | None, c: str, fp: str = "fp-a", mfa_minutes: int = 0,
           created: datetime = NOW) -> SessionRecord:
        return SessionRecord(c * 64, "alice", fp, created, created,
                             NOW + timedelta(minutes=mfa_minutes), ("mtls", "pwd", "otp"),
                             host=host)

    wiki, ops, pbx = on("wiki.test", "a"), on("ops.test", "b", mfa_minutes=5), on("pbx.test", "c")
    other_cert, legacy = on("wiki.test", "d", fp="fp-b"), on(None, "e")
    stale = on("iis.test", "f", created=NOW - timedelta(hours=9))
    index = SessionIndex(LIMITS, [wiki, ops, pbx, other_cert, legacy, stale])
    assert index.elsewhere("fp-a", "pbx.test", NOW) == [ops, wiki]  # freshest code first
    assert index.elsewhere("fp-b", "pbx.test", NOW) == [other_cert]
    assert index.elsewhere("fp-none", "pbx.test", NOW) == []
    assert index.elsewhere("fp-a", "pbx.test", NOW + timedelta(minutes=31)) == []  # idle
    index.drop(ops.id_hash)
    index.apply(wiki.id_hash, None)
    assert index.elsewhere("fp-a", "pbx.test", NOW) == []
    index.apply(wiki.id_hash, wiki)  # a late copy of an ended session stays ended
    assert index.elsewhere("fp-a", "pbx.test", NOW) == []
    wiki2 = on("wiki.test", "g")  # a new sign-in there, from the feed
    index.apply(wiki2.id_hash, wiki2)
    assert index.elsewhere("fp-a", "pbx.test", NOW) == [wiki2]
    # An expired session a lookup ends leaves the certificate's map too.
    value, session = _session()
    index.put(session)
    assert index.lookup(value, "fp-a", NOW + timedelta(hours=9)) is None
    assert session.id_hash not in {s.id_hash for s in index.elsewhere("fp-a", "x", NOW)}
    for c in "abcdefg":
        index.drop(c * 64)
    index.drop(pbx.id_hash)
    assert index._by_fingerprint == {}  # nothing left behind


def test_a_late_copy_from_the_feed_does_not_make_a_used_session_idle() -> None:
    index = SessionIndex(LIMITS)
    value, session = _session()
    index.put(session)
    later = NOW + timedelta(minutes=25)
    assert index.lookup(value, "fp-a", later) is not None  # used: last_seen moves
    index.apply(session.id_hash, session)  # the feed's copy, as stored at sign-in
    assert index.lookup(value, "fp-a", NOW + timedelta(minutes=50)) is not None


def test_a_copy_from_the_feed_read_before_the_end_does_not_bring_it_back() -> None:
    """The follower read the session (its start event) just before a sign-out ended
    it, and applies that copy just after: the session stays ended."""
    index = SessionIndex(LIMITS)
    cookie, session = _session()
    index.put(session)
    index.drop(session.id_hash)  # signed out on this node
    index.apply(session.id_hash, session)  # the late copy
    assert index.lookup(cookie, "fp-a", NOW) is None
    assert index.elsewhere("fp-a", "other.test", NOW) == []
    assert len(index) == 0


def test_use_is_collected_for_sharing_and_use_elsewhere_is_taken_in() -> None:
    index = SessionIndex(LIMITS)
    value, session = _session()
    index.put(session)
    assert index.take_touched() == {}
    later = NOW + timedelta(minutes=5)
    index.lookup(value, "fp-a", later)
    index.lookup(value, "fp-a", later + timedelta(milliseconds=10))  # same second: no touch
    assert index.take_touched() == {session.id_hash: later}
    assert index.take_touched() == {}
    index.give_back({session.id_hash: later})  # a failed write: kept for the next
    assert index.take_touched() == {session.id_hash: later}

    # Used on another node until minute 40: alive here at minute 60, though idle 30 min
    # counted from this node's own last use (minute 5).
    elsewhere = NOW + timedelta(minutes=40)
    assert index.seen_elsewhere([(session.id_hash, elsewhere), ("unknown", elsewhere)]) == 1
    assert index.seen_elsewhere([(session.id_hash, later)]) == 0  # never back
    assert index.lookup(value, "fp-a", NOW + timedelta(minutes=60)) is not None
    index.drop(session.id_hash)
    assert index.seen_elsewhere([(session.id_hash, NOW + timedelta(hours=1))]) == 0
    assert index.lookup(value, "fp-a", NOW + timedelta(minutes=61)) is None
