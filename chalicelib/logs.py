"""Structured logs: one JSON object per line, never a body, header, token or password."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

# Only these record attributes are written; anything else passed in ``extra`` is dropped, so a
# careless ``extra={"body": ...}`` can never put a secret into the logs.
FIELDS = ("request_id", "route", "method", "status", "duration_ms", "actor", "address", "sweep")


class JsonFormatter(logging.Formatter):
    """The standard library's logging with a JSON line: no dependency, nothing at cold start."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "message": record.getMessage(),
        }
        for name in FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info and record.exc_info[2] is not None:
            # The type and where it was raised, never the message: it may hold request data.
            tb = record.exc_info[2]
            while tb.tb_next is not None:
                tb = tb.tb_next
            code = tb.tb_frame.f_code
            line["error"] = f"{record.exc_info[0].__name__} at {code.co_filename}:{tb.tb_lineno}"
        return json.dumps(line, default=str)


# At DEBUG these libraries log whole requests and responses: items with password hashes and
# subscription keys, emails with links. They stay at WARNING whatever the root level is.
QUIET_LIBRARIES = ("botocore", "boto3", "pynamodb", "urllib3", "s3transfer")


def logger() -> logging.Logger:
    """The service's logger, writing JSON lines to stdout (CloudWatch in Lambda)."""
    log = logging.getLogger("apim_users")
    if not log.handlers:
        for name in QUIET_LIBRARIES:
            logging.getLogger(name).setLevel(logging.WARNING)
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    return log
