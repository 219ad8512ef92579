"""Work after a commit: optional, so its failure never turns a committed change into an error."""

from __future__ import annotations

from collections.abc import Callable

from chalicelib.logs import logger

log = logger()


def after_commit(step: Callable[[], object], what: str) -> None:
    """Run ``step``; if anything fails, log it and go on (the sweep or the relay finishes it).

    The change is committed and the caller must hear so: a lost connection to DynamoDB or SES
    right after the commit leaves an email queued or a clean-up to the sweep, never a 500.
    """
    try:
        step()
    except Exception as exc:
        # The type only: messages of AWS errors can carry request details.
        log.warning("after the commit, %s was left for later: %s", what, type(exc).__name__)
