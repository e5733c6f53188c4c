"""The sealed exec helper: `pyoci-exec` (exechelper.c) copied into a memfd nobody can write.

Every container-side pyoci process is the host's Python interpreter until it execs the user's
program; if it exec'd a container file itself, `#!/proc/self/exe` (or a dynamic loader of the
container's opening /proc/self/exe) would hand the container the host interpreter (runc
CVE-2019-5736). So the last exec from Python is always of this helper, by fd, from a memfd
sealed against writes: at the user program's execve, /proc/self/exe is that sealed copy.

The copy costs one memfd_create, one sendfile of ~9 KB and one fcntl (~50 µs), made in the
parent before the fork; the fd is close-on-exec, so it never reaches the user's program.
"""

from __future__ import annotations

import os

from pyoci.errors import PyociError

HELPER_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pyoci-exec")


def sealed_copy() -> int:
    """A close-on-exec fd on a sealed memfd holding pyoci-exec, ready for `os.execve(fd, ...)`."""
    try:
        src = os.open(HELPER_PATH, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise PyociError(
            f"the exec helper {HELPER_PATH}: {err.strerror.lower()} (build it with `make helper`)",
            err.errno,
        ) from None
    try:
        size = os.fstat(src).st_size
        fd = os.memfd_create("pyoci-exec", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        try:
            offset = 0
            while offset < size:
                sent = os.sendfile(fd, src, offset, size - offset)
                if sent == 0:
                    raise PyociError(f"the exec helper {HELPER_PATH}: short read")
                offset += sent
            import fcntl

            seals = fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
            # Executable, not readable: a process exec'ing a file it cannot read is born not
            # dumpable (the kernel's would_dump), so a container process without the DAC
            # capabilities never sees the helper's fds (exec's socket: STATUS) in /proc/PID.
            os.fchmod(fd, 0o111)
        except BaseException:
            os.close(fd)
            raise
    finally:
        os.close(src)
    return fd


# What pyoci-exec sends on STATUS (exec's socket): right before its final execve, and
# instead of its error line on stderr.
EXEC = b"EXEC"
FAILED = b"FAILED "


def helper_argv(
    path: str,
    args: list[str],
    fifo: str = "-",
    seccomp: str = "-",
    init: bool = False,
    status: str = "-",
) -> list[str]:
    """pyoci-exec's command line (exechelper.c): FIFO_FD SECCOMP INIT STATUS PATH ARG0..."""
    return ["pyoci-exec", fifo, seccomp, "init" if init else "-", status, path, *args]


def exec_through(
    helper_fd: int,
    path: str,
    args: list[str],
    env: dict,
    fifo_fd: int = -1,
    seccomp: tuple[int, int] | None = None,
    init: bool = False,
    status_fd: int = -1,
) -> None:
    """execve the helper, which waits on exec.fifo (`fifo_fd`, an O_PATH fd, or -1 for no
    wait), loads the seccomp program (`seccomp`: its fd and filter flags, or None) and then
    execs `path`; with `init`, it stays PID 1 (forwarding signals, reaping) and forks the
    program; with `status_fd` (exec's socket) it says EXEC there before the execve, or its
    error (see exechelper.c). Never returns."""
    fifo_arg = seccomp_arg = status_arg = "-"
    if fifo_fd >= 0:
        os.set_inheritable(fifo_fd, True)
        fifo_arg = str(fifo_fd)
    if seccomp is not None:
        os.set_inheritable(seccomp[0], True)
        seccomp_arg = f"{seccomp[0]}:{seccomp[1]}"
    if status_fd >= 0:
        os.set_inheritable(status_fd, True)
        status_arg = str(status_fd)
    try:
        argv = helper_argv(path, args, fifo_arg, seccomp_arg, init, status_arg)
        os.execve(helper_fd, argv, env)
    except OSError as err:
        raise PyociError(f"exec: the exec helper: {err.strerror.lower()}", err.errno) from None
