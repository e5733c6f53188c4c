"""The minimal init (`--init`, or annotation `org.pyoci.init: "true"`).

PID 1 of a pid namespace has two duties a normal program ignores: signals without a handler
never reach it, and every orphan of the namespace becomes its child to reap. So the init forks
the user process, then forwards each catchable signal to it and reaps every zombie, and exits
with the user process's status (128+N when a signal N killed it).

Signals are blocked and taken with sigwaitinfo, not Python handlers: nothing runs between
bytecodes at the wrong moment and none is lost while reaping (design.md). Only C modules are
used here; this runs in the container after the pivot, where importing is not allowed.
"""

from __future__ import annotations

import _signal
import os

from pyoci.linux import syscalls as sc
from pyoci.reaping import shell_exit_code

_UNCATCHABLE = (_signal.SIGKILL, _signal.SIGSTOP)
# valid_signals(): glibc reserves 32 and 33 for its threads; the kernel refuses KILL and STOP.
ALL_SIGNALS = frozenset(_signal.valid_signals()) - set(_UNCATCHABLE)


def fork_and_reap(exec_child) -> None:  # exec_child: a callable that execs, never returns
    """Fork; the child (with the signal mask restored) calls `exec_child`; we reap. No return."""
    old_mask = _signal.pthread_sigmask(_signal.SIG_BLOCK, ALL_SIGNALS)
    child = os.fork()
    if child == 0:
        _signal.pthread_sigmask(_signal.SIG_SETMASK, old_mask)
        try:
            exec_child()
        except Exception as err:  # noqa: BLE001 - report and leave like a shell would
            msg = getattr(err, "msg", str(err))
            os.write(2, f"pyoci: {msg}\n".encode())
            os._exit(127 if getattr(err, "errno", 0) == 2 else 126)
        os._exit(127)
    # PID 1 lives as long as the container and needs no fd but stdio: namespace fds, the
    # seccomp listener's socket, exec.fifo, the preserved fds all belong to the child alone.
    sc.close_range(3)
    os._exit(reap_until(child))


def reap_until(child: int) -> int:
    """Forward signals to `child`, reap everything, return the child's shell-style status."""
    import gc

    gc.enable()  # PID 1 lives as long as the container (pyoci.__main__ turned it off)
    status_code = None
    while status_code is None:
        info = _signal.sigwaitinfo(ALL_SIGNALS)
        signo = info.si_signo
        if signo != _signal.SIGCHLD:
            try:
                os.kill(child, signo)
            except ProcessLookupError:
                pass
            continue
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid == child:
                status_code = shell_exit_code(status)
    return status_code
