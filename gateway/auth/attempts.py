"""Counting sign-in attempts in the database, so that guesses are limited on every node
and parallel guesses can't slip past the count.

An attempt is counted *before* the password or code is checked (``reserve``), by
one atomic write per user and per certificate (``Store.add_failure``); a success
then clears the count, and a step that only proves part of it (the password of
the enrollment page) gives its attempt back (``give_back``). Twelve wrong sign-ins
sent at once therefore count as twelve: the first ``max_failures`` are checked,
and the rest find sign-in locked and are refused unchecked. The arithmetic (a
new window, the lock) is ``gateway.auth.lockout``'s, pure.

Must not check passwords or codes, nor render pages.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from gateway.audit.record import AuditRecord
from gateway.auth.lockout import Failures, LockoutRule, after_failure
from gateway.identity.index import Identity
from gateway.store.records import FailureRecord

if TYPE_CHECKING:
    from collections.abc import Mapping

    from gateway.runtime import Runtime


class Attempt(NamedTuple):
    """One counted attempt: may it be checked, and until when sign-in is locked
    should it fail."""

    checkable: bool  # False: sign-in was locked before it (a parallel attempt won)
    locked_until: datetime | None  # the lock if this attempt turns out wrong


def failure_subjects(identity: Identity) -> tuple[str, str]:
    return f"user:{identity.user}", f"cert:{identity.fingerprint}"


def lock_end(failures: Mapping[str, FailureRecord], now: datetime) -> datetime | None:
    until = [f.locked_until for f in failures.values()
             if f.locked_until is not None and f.locked_until > now]
    return max(until) if until else None


def rule_of(runtime: Runtime) -> LockoutRule:
    cfg = runtime.state.config.auth.lockout
    return LockoutRule(cfg.max_failures, cfg.window, cfg.lock_for)


def _state(record: FailureRecord) -> Failures:
    return Failures(record.count, record.window_start, record.locked_until)


async def reserve(runtime: Runtime, identity: Identity, now: datetime) -> Attempt:
    """Count this attempt as failed before anything is checked."""
    rule = rule_of(runtime)

    def one_more(record: FailureRecord) -> FailureRecord:
        after = after_failure(_state(record), rule, now)
        assert after.window_start is not None
        return FailureRecord(record.subject, after.count, after.window_start,
                             after.locked_until)

    pairs = await runtime.store.add_failure(failure_subjects(identity), now, one_more)
    before = lock_end({b.subject: b for b, _ in pairs}, now)
    after = lock_end({a.subject: a for _, a in pairs}, now)
    return Attempt(before is None, after)


async def give_back(runtime: Runtime, identity: Identity, now: datetime) -> None:
    """Undo one ``reserve`` whose check succeeded but starts no session yet."""
    rule = rule_of(runtime)

    def one_less(record: FailureRecord) -> FailureRecord:
        count = max(record.count - 1, 0)
        locked = record.locked_until if count >= rule.max_failures else None
        return replace(record, count=count, locked_until=locked)

    await runtime.store.add_failure(failure_subjects(identity), now, one_less)


def note_lock(runtime: Runtime, identity: Identity, locked_until: datetime, *,
              reference: str, source_ip: str | None, now: datetime) -> None:
    """This attempt locked sign-in: a warning in the log and a ``lockout`` audit record
    (the request's own record follows with the same reference)."""
    runtime.log.warning("sign-in locked for user %s until %s", identity.user,
                        locked_until.isoformat())
    rule = rule_of(runtime)
    runtime.audit.emit(AuditRecord(
        reference=reference, at=now, decision="deny", reason="locked", rule=None, app=None,
        user=identity.user, serial=identity.serial_hex, fingerprint=identity.fingerprint,
        method=None, host=None, path=None, source_ip=source_ip, status=None,
        duration_ms=None, type="lockout", factors="cert",
        detail={"locked_until": locked_until.isoformat(), "max_failures": rule.max_failures,
                "window_s": rule.window.total_seconds()}))
