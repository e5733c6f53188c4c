"""`pyoci run` of a `terminal: true` container with no console socket: relay the pty.

runc does this for a person at a shell: our stdin goes raw to the container's pty, its output
comes back to our stdout, and our window size follows the terminal (SIGWINCH). The relay ends
when the pty closes (every slave fd gone); the container's exit status is then reaped.
"""

from __future__ import annotations

import os
import select

from pyoci.linux import console
from pyoci.reaping import wait_for


def relay_and_wait(master: int, child: int) -> int:
    """Copy stdin → pty and pty → stdout until the pty closes; return the exit code."""
    import _signal as signal
    import gc

    gc.enable()  # this process lives as long as the container (pyoci.__main__ turned it off)

    saved = None
    if os.isatty(0):
        import termios
        import tty

        saved = termios.tcgetattr(0)
        tty.setraw(0)

        def resize(_signum: int = 0, _frame: object = None) -> None:
            size = console.get_size(0)
            if size:
                console.set_size(master, *size)

        resize()
        signal.signal(signal.SIGWINCH, resize)

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, forward)
    try:
        _pump(master)
    finally:
        if saved is not None:
            import termios

            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        os.close(master)
    return wait_for(child)


def _pump(master: int) -> None:
    inputs = [master, 0]
    while True:
        try:
            ready, _, _ = select.select(inputs, [], [])
        except InterruptedError:
            continue
        if master in ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the slave side is closed, the container is done
                return
            if not data:
                return
            _write_all(1, data)
        if 0 in ready:
            data = os.read(0, 65536)
            if not data:
                inputs.remove(0)  # stdin closed: keep showing output until the pty closes
                _write_all(master, b"\x04")
                continue
            _write_all(master, data)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data) :]
