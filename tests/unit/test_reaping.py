"""pyoci.reaping's kill-then-wait, the one place `create`'s undo, `delete` and `exec` kill
processes and wait for them: a child is killed and reaped (no zombie left), a process the
`send` callback spares is reported alive, and unset pids are never signalled."""

from __future__ import annotations

import os

from pyoci.reaping import kill_and_wait, wait_exit


def _sleeper() -> int:
    # Popen would reap the child itself on poll(); a bare fork keeps it ours to reap.
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp("sleep", ["sleep", "60"])
        finally:
            os._exit(127)
    return pid


def test_a_child_is_killed_and_reaped() -> None:
    pid = _sleeper()
    assert kill_and_wait([pid]) == []
    # reaped: no zombie left to collect
    try:
        os.waitpid(pid, os.WNOHANG)
        reaped = False
    except ChildProcessError:
        reaped = True
    assert reaped


def test_a_process_the_sender_spares_is_reported_alive() -> None:
    pid = _sleeper()
    spared: list[int] = []
    try:
        alive = kill_and_wait([pid], send=lambda p, sig: spared.append(p), timeout=0.2)
        assert alive == [pid] and spared == [pid]
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def test_unset_pids_are_skipped() -> None:
    """0 and -1 (no init yet, stage 1 already reaped) are never signalled: os.kill(0, 9)
    would kill our own process group, os.kill(-1, 9) every process we may signal."""
    assert kill_and_wait([0, -1]) == []


def test_waiting_for_a_process_that_is_gone() -> None:
    pid = _sleeper()
    os.kill(pid, 9)
    assert wait_exit(pid, timeout=10)  # a zombie child: exited, so readable at once
    os.waitpid(pid, 0)
