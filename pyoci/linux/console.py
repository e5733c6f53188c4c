"""Terminals: a pty made inside the container, its master sent over the console socket.

The pty must come from the container's own devpts (`/dev/ptmx` → `pts/ptmx` after the pivot),
so the slave's path and ownership are right inside. The master goes to whoever listens on
`--console-socket` (conmon, containerd's shim, or pyoci's own `run` relay) with SCM_RIGHTS in
one message; the slave becomes the process's stdio and controlling terminal.
"""

from __future__ import annotations

import _socket
import fcntl
import os
import struct
import sys

from pyoci.errors import PyociError

TIOCSCTTY = 0x540E
TIOCSWINSZ = 0x5414
TIOCGWINSZ = 0x5413


def connect(path: str) -> int:
    """Connect to the console socket in the parent (its path is on the host); an fd."""
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as err:
        sock.close()
        reason = err.strerror.lower() if err.strerror else str(err)
        raise PyociError(f"--console-socket: {path}: {reason}", err.errno or 0) from None
    return sock.detach()


def send_fd(sock_fd: int, fd: int, payload: bytes = b"console") -> None:
    """One message carrying `fd` as SCM_RIGHTS."""
    sock = _socket.socket(fileno=sock_fd)
    try:
        sock.sendmsg(
            [payload],
            [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fd.to_bytes(4, sys.byteorder))],
        )
    finally:
        sock.close()


def recv_fd(sock: _socket.socket) -> int:
    """Receive one fd sent with `send_fd`. It arrives close-on-exec (MSG_CMSG_CLOEXEC): the pty
    master must not leak into the hooks (poststart) and helpers this process runs before and
    while it relays the terminal. Room for one fd: the kernel installs no more than fit."""
    _, ancdata, _, _ = sock.recvmsg(64, _socket.CMSG_SPACE(4), _socket.MSG_CMSG_CLOEXEC)
    for level, kind, data in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            return int.from_bytes(data[:4], sys.byteorder)
    raise PyociError("console: no file descriptor received")


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def get_size(fd: int) -> tuple[int, int] | None:
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return None
    return rows, cols


def setup_terminal(console_fd: int, size: tuple[int, int] | None) -> None:
    """In the container: open a pty, send its master, make the slave stdio + controlling tty."""
    try:
        master, slave = os.openpty()
    except OSError as err:
        raise PyociError(f"process.terminal: opening a pty: {err.strerror.lower()}") from None
    try:
        if size and size[0] and size[1]:
            set_size(master, size[0], size[1])
        send_fd(console_fd, master)
    finally:
        os.close(master)
    if os.getsid(0) != os.getpid():
        os.setsid()  # the init and exec's process already lead a session of their own
    fcntl.ioctl(slave, TIOCSCTTY, 0)
    for target in (0, 1, 2):
        os.dup2(slave, target)
    if slave > 2:
        os.close(slave)
