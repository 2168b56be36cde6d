"""Operational logs: one JSON object per line for a log collector, or readable text
for a person at a terminal. Separate from the audit trail (``gateway.audit``).

``log_format: auto`` (the default) writes JSON when standard error is not a
terminal (systemd's journal, a container runtime, a file) and text when it is.
Each JSON line has ``time`` (UTC, ISO 8601 with milliseconds), ``level``,
``logger``, ``message``, ``pid`` (workers share one stream) and, when the caller
passed ``extra={"reference": …}``, the request ``reference`` a refusal page shows;
an exception adds ``exception`` with its traceback as one string.

Owns the root logger's handler and format. Must not decide what is logged.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Literal, TextIO

LogFormat = Literal["auto", "json", "text"]
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        reference = getattr(record, "reference", None)
        if reference is not None:
            data["reference"] = str(reference)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def wants_json(log_format: LogFormat, stream: TextIO) -> bool:
    if log_format != "auto":
        return log_format == "json"
    isatty = getattr(stream, "isatty", None)
    return not (isatty is not None and isatty())


def configure_logging(level: str, log_format: LogFormat = "auto",
                      stream: TextIO | None = None) -> logging.Handler:
    """Replace the root logger's handlers with one that writes to ``stream``."""
    stream = sys.stderr if stream is None else stream
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if wants_json(log_format, stream)
                         else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
