"""Waiting for processes to exit: a child's status as the exit code a shell would report, a
process that may not be our child by its pidfd, and "kill these, then wait for them".

Shared by `run`/`exec` in the foreground, the pty relay, `create`'s undo (`pyoci.creator`)
and `delete` (`pyoci.container`): a module of its own so that neither of those two imports the
other for it. Imports only `posix` at load (`select` when a pidfd is waited on): no `os` and
no `__future__`, as every module `delete` may load (`pyoci.entry`).
"""

import posix


def shell_exit_code(status: int) -> int:
    """The exit code, or 128+N when signal N killed the process (as sh reports it)."""
    code = posix.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


def wait_for(child: int) -> int:
    """Reap children (we may be a subreaper) until `child` exits; its shell exit code."""
    while True:
        pid, status = posix.wait()
        if pid == child:
            return shell_exit_code(status)


def wait_exit(pid: int, timeout: float | None = None) -> bool:
    """Wait for a process that may not be our child to exit (pidfd + poll, no sleep loop);
    False if it still runs after `timeout` seconds."""
    import select

    try:
        pidfd = posix.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(None if timeout is None else int(timeout * 1000)))
    finally:
        posix.close(pidfd)


def _kill(pid: int, signum: int) -> None:
    try:
        posix.kill(pid, signum)
    except ProcessLookupError:
        pass


def kill_all(pids: list[int], send=_kill) -> None:
    """SIGKILL every one of `pids` with `send(pid, 9)`: posix.kill by default; a caller that must
    first check a pid is still its own passes its own."""
    for pid in pids:
        if pid > 0:
            send(pid, 9)


def wait_all(pids: list[int], timeout: float = 10.0) -> list[int]:
    """Wait up to `timeout` seconds for each of `pids` to exit, reaping those that are our
    children (or ours as a subreaper). Returns the pids still alive."""
    alive = []
    for pid in pids:
        if pid <= 0:
            continue
        if not wait_exit(pid, timeout):
            alive.append(pid)
            continue
        try:
            posix.waitpid(pid, posix.WNOHANG)
        except ChildProcessError:
            pass
    return alive


def kill_and_wait(pids: list[int], send=_kill, timeout: float = 10.0) -> list[int]:
    """`kill_all` then `wait_all`: the pids still alive after `timeout` seconds."""
    kill_all(pids, send)
    return wait_all(pids, timeout)


def wait_forwarding_signals(child: int) -> int:
    """Wait for our child `child`, passing it the signals we get (as runc does in the
    foreground); return its exit code, 128+N for signal N."""
    import _signal as signal
    import gc

    gc.enable()  # this process lives as long as the container (pyoci.entry turned it off)

    def forward(signum: int, _frame: object) -> None:
        try:
            posix.kill(child, signum)
        except ProcessLookupError:
            pass

    for sig in (
        signal.SIGINT,
        signal.SIGTERM,
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGUSR1,
        signal.SIGUSR2,
        signal.SIGWINCH,
    ):
        signal.signal(sig, forward)
    return wait_for(child)
