"""Keeping network changes away from the browser tests.

Chromium aborts every request in flight with ``net::ERR_NETWORK_CHANGED`` when an
interface of its network namespace appears or goes. ``tests/multihost/test_netns.py``
adds and removes veth pairs, so a browser test running at that moment on the other
pytest-xdist worker lost the console's modules (seen in a whole-suite run: 13 of them
failed to load). Browser tests hold this file lock shared for each test; the test that
changes the network holds it exclusively while its interfaces exist.
"""

from __future__ import annotations

import contextlib
import fcntl
import tempfile
from collections.abc import Iterator
from pathlib import Path

LOCK = Path(tempfile.gettempdir()) / "chatserver-tests-network.lock"


@contextlib.contextmanager
def _locked(mode: int) -> Iterator[None]:
    with LOCK.open("a") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def network_steady() -> contextlib.AbstractContextManager[None]:
    """While held, no test adds or removes a network interface."""
    return _locked(fcntl.LOCK_SH)


def network_changes() -> contextlib.AbstractContextManager[None]:
    """Held by a test that adds or removes interfaces, once no browser test runs."""
    return _locked(fcntl.LOCK_EX)
