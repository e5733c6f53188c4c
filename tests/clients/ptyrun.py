"""Run a client command on a pseudo-terminal (`podman run -t`, `ctr run -t`, `docker run -t`
refuse to allocate a tty unless their own stdin is one)."""

from __future__ import annotations

import fcntl
import os
import select
import signal
import struct
import subprocess
import termios
import time


def run_in_pty(argv: list[str], env: dict[str, str], timeout: float = 30) -> tuple[int, str]:
    """Run argv with a new 80x24 pty as its controlling terminal and stdio; return (exit code,
    all output). A command still running after `timeout` is killed and the test fails."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))

    def make_controlling_tty() -> None:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    try:
        proc = subprocess.Popen(
            argv,
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=env,
            start_new_session=True,
            preexec_fn=make_controlling_tty,
        )
    finally:
        os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                raise AssertionError(f"timeout: {argv}\n{b''.join(chunks)!r}")
            exited = proc.poll() is not None  # before select: nothing is lost after exit
            ready, _, _ = select.select([master], [], [], min(remaining, 0.5))
            if not ready:
                if exited:
                    break
                continue
            try:
                data = os.read(master, 4096)
            except OSError:  # EIO: every slave fd is closed
                break
            if not data:
                break
            chunks.append(data)
        return proc.wait(timeout=timeout), b"".join(chunks).decode(errors="replace")
    finally:
        os.close(master)
