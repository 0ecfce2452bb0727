"""The worker's background loops (the job's keepalive, the process's heartbeat) that never die.

A loop that ended on an unexpected error would leave a running job without lease renewals (the
service would rerun it) or a worker that ``/readyz`` no longer counts; so anything an action raises
is logged with its traceback, and the loop goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger("lrsched.worker")


def repeat(
    action: Callable[[], None],
    every: float,
    what: str,
    done: threading.Event | None = None,
    *,
    at_once: bool = False,
) -> None:
    """Call ``action`` every ``every`` seconds until ``done`` is set (with ``at_once``, first now).

    Args:
        action: what to do; it handles the errors it expects, and anything else is logged here.
        every: seconds between calls.
        what: names the action in the log.
        done: set it to end the loop (None: run for the life of the process).
        at_once: call ``action`` before the first pause.
    """
    done = done or threading.Event()
    if at_once:
        _safely(action, what, every)
    while not done.wait(every):
        _safely(action, what, every)


def _safely(action: Callable[[], None], what: str, every: float) -> None:
    try:
        action()
    except Exception:
        log.exception("%s failed; trying again in %g s", what, every)
