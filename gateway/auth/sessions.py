"""Login sessions in memory: cookie -> session, valid only with the certificate it was made with.

The cookie value is 256 random bits and is never kept: sessions are keyed by its
SHA-256, the same hash the database stores, so neither a memory dump of the index
nor a copy of the database yields a usable cookie. A session answers only for the
certificate fingerprint it was created with (a cookie replayed with another
certificate, even of the same user, is no session), and only within its idle and
absolute lifetimes.

Pure: no I/O, no clock reads (the caller passes ``now``). The database is the
source of truth; the change feed fills and empties this index.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from gateway.store.records import SessionRecord

# What the request path calls a session: the record the store keeps, as the index holds it.
Session = SessionRecord

COOKIE = "__Host-certgate-session"
# last_seen moves in steps of this: the idle timeout stays exact to a second, and a
# burst of requests does not rebuild the session record on every one of them.
_TOUCH = timedelta(seconds=1)
# Ended session ids remembered against late copies from the feed (a copy is late by
# one poll at most; this many endings cover any burst).
_ENDED_KEPT = 10_000


def new_session_secret() -> tuple[str, str]:
    """A fresh cookie value and the hash it is stored under."""
    value = secrets.token_urlsafe(32)
    return value, session_hash(value)


def cookie_value(cookie_header: str) -> str | None:
    """Our session cookie's value from a ``Cookie`` header, without parsing the rest."""
    for part in cookie_header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value or None
    return None


def session_hash(cookie_value: str) -> str:
    return hashlib.sha256(cookie_value.encode("ascii", "replace")).hexdigest()


@dataclass(frozen=True, slots=True)
class SessionLimits:
    idle: timedelta = timedelta(hours=1)
    absolute: timedelta = timedelta(hours=12)


class SessionIndex:
    """Live sessions by hash; ``lookup`` is one hash, one dict lookup, three comparisons.

    A second map, certificate fingerprint -> hashes, answers ``elsewhere`` (the
    sessions a certificate has on other app hosts) for the hand-off; it changes only
    when a session starts or ends, never on the per-request ``lookup``.
    """

    def __init__(self, limits: SessionLimits, sessions: Iterable[SessionRecord] = ()) -> None:
        self.limits = limits
        self._by_hash: dict[str, SessionRecord] = {}
        self._by_fingerprint: dict[str, set[str]] = {}
        # Sessions that ended here, newest last: an id never comes back, so a copy
        # from the feed read before the end (and applied after it) is ignored.
        self._ended: dict[str, None] = {}
        # Sessions used here since ``take_touched`` last ran: hash -> last use.
        self._touched: dict[str, datetime] = {}
        for session in sessions:
            self.put(session)

    def __len__(self) -> int:
        return len(self._by_hash)

    def put(self, session: SessionRecord) -> None:
        old = self._by_hash.get(session.id_hash)
        if old is not None and old.fingerprint != session.fingerprint:
            self._forget(old)
        self._by_hash[session.id_hash] = session
        self._by_fingerprint.setdefault(session.fingerprint, set()).add(session.id_hash)

    def drop(self, id_hash: str) -> SessionRecord | None:
        session = self._by_hash.pop(id_hash, None)
        if session is not None:
            self._forget(session)
        self._ended[id_hash] = None
        if len(self._ended) > _ENDED_KEPT:
            del self._ended[next(iter(self._ended))]
        return session

    def apply(self, id_hash: str, session: SessionRecord | None) -> SessionRecord | None:
        """A change from the feed: the session as stored now, or None when it ended
        (then the session this node held, if any, is returned).

        The stored ``last_seen`` lags behind use (``gateway.auth.activity`` writes it in
        batches): a copy from the feed that arrives after this node saw the session in
        use must not make it look idle.
        """
        if session is None:
            return self.drop(id_hash)
        if id_hash in self._ended:  # read before it ended, arriving after: stays ended
            return None
        old = self._by_hash.get(id_hash)
        if old is not None and old.last_seen > session.last_seen:
            session = replace(session, last_seen=old.last_seen)
        self.put(session)
        return None

    def _forget(self, session: SessionRecord) -> None:
        hashes = self._by_fingerprint.get(session.fingerprint)
        if hashes is not None:
            hashes.discard(session.id_hash)
            if not hashes:
                del self._by_fingerprint[session.fingerprint]

    def _live(self, session: SessionRecord, now: datetime) -> bool:
        return (now - session.last_seen <= self.limits.idle
                and now - session.created_at <= self.limits.absolute)

    def elsewhere(self, fingerprint: str, host: str, now: datetime) -> list[SessionRecord]:
        """The live sessions of this certificate set on app hosts other than ``host``,
        the most recent second factor first (not touched: nobody used them)."""
        found = [s for h in self._by_fingerprint.get(fingerprint, ())
                 if (s := self._by_hash[h]).host is not None and s.host != host
                 and self._live(s, now)]
        return sorted(found, key=lambda s: (s.mfa_at or s.created_at, s.id_hash), reverse=True)

    def lookup(self, cookie_value: str | None, fingerprint: str,
               now: datetime) -> SessionRecord | None:
        """The live session for this cookie and this certificate, touched; else None."""
        if not cookie_value:
            return None
        session = self._by_hash.get(session_hash(cookie_value))
        if session is None or session.fingerprint != fingerprint:
            return None
        if (now - session.last_seen > self.limits.idle
                or now - session.created_at > self.limits.absolute):
            self.drop(session.id_hash)
            return None
        if now - session.last_seen >= _TOUCH:
            session = replace(session, last_seen=now)
            self._by_hash[session.id_hash] = session
            self._touched[session.id_hash] = now
        return session

    def take_touched(self) -> dict[str, datetime]:
        """The sessions used on this node since the last call, and when; cleared."""
        touched, self._touched = self._touched, {}
        return touched

    def give_back(self, touched: dict[str, datetime]) -> None:
        """Touches that could not be written: kept for the next try."""
        for id_hash, at in touched.items():
            if self._touched.get(id_hash, at) <= at:
                self._touched[id_hash] = at

    def seen_elsewhere(self, seen: Iterable[tuple[str, datetime]]) -> int:
        """Use of sessions on other nodes: a later ``last_seen`` keeps them from idling
        out here. Never brings back a session that ended here; returns how many moved."""
        moved = 0
        for id_hash, at in seen:
            session = self._by_hash.get(id_hash)
            if session is not None and at > session.last_seen:
                self._by_hash[id_hash] = replace(session, last_seen=at)
                moved += 1
        return moved
