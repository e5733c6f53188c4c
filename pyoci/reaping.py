"""Waiting for a child and turning its status into the exit code a shell would report.

Shared by `run`/`exec` in the foreground, the pty relay and the minimal init; imports only
`os`, so the init can use it after the pivot.
"""

from __future__ import annotations

import os


def shell_exit_code(status: int) -> int:
    """The exit code, or 128+N when signal N killed the process (as sh reports it)."""
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def wait_for(child: int) -> int:
    """Reap children (we may be a subreaper) until `child` exits; its shell exit code."""
    while True:
        pid, status = os.wait()
        if pid == child:
            return shell_exit_code(status)
