"""Terminals: the console socket (as conmon and containerd's shim use it), and the pty relay
of a foreground `run`/`exec`."""

from __future__ import annotations

import array
import os
import socket
import threading
from pathlib import Path


class ConsoleReceiver:
    """A console socket listener: accepts one connection, takes the pty master fd (SCM_RIGHTS)
    and reads everything the container writes to its terminal."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(1)
        self.output = b""
        self.got_fd = threading.Event()
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.server.accept()
        _, ancdata, _, _ = conn.recvmsg(64, socket.CMSG_SPACE(4))
        conn.close()
        fds = array.array("i")
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: fds.itemsize])
        self.got_fd.set()
        master = fds[0]
        try:
            while True:
                try:
                    data = os.read(master, 4096)
                except OSError:
                    break
                if not data:
                    break
                self.output += data
        finally:
            os.close(master)
            self.server.close()
            self.done.set()

    def text(self) -> str:
        return self.output.decode(errors="replace").replace("\r", "")


def _terminal(config: dict) -> None:
    config["process"]["terminal"] = True
    config["process"]["consoleSize"] = {"height": 33, "width": 111}


def test_console_socket_receives_the_pty_master(pyoci, bundle, new_id, tmp_path):
    receiver = ConsoleReceiver(tmp_path / "console.sock")
    cid = new_id()
    b = bundle("tty; stty size; [ -t 0 ] && echo stdin-is-tty", patch=_terminal)
    result = pyoci("run", "--detach", "--console-socket", str(receiver.path), "--bundle",
                   str(b.path), cid)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert receiver.got_fd.wait(10)
    assert receiver.done.wait(10)
    lines = receiver.text().split("\n")
    assert lines[0].startswith("/dev/pts/")
    assert lines[1] == "33 111"
    assert lines[2] == "stdin-is-tty"
    pyoci.wait_status(cid, "stopped")
    assert pyoci("delete", cid).returncode == 0
    pyoci.assert_nothing_left()


def test_exec_tty_with_console_socket(pyoci, bundle, new_id, tmp_path):
    cid = new_id()
    assert pyoci.run(bundle(["sleep", "100"]), cid, "--detach").returncode == 0
    receiver = ConsoleReceiver(tmp_path / "exec.sock")
    result = pyoci("exec", "--tty", "--detach", "--console-socket", str(receiver.path), cid,
                   "sh", "-c", "tty; echo from-exec")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert receiver.done.wait(10)
    assert receiver.text().split("\n")[:2][1] == "from-exec"
    pyoci("delete", "--force", cid)
    pyoci.assert_nothing_left()


def test_foreground_run_relays_the_terminal(pyoci, bundle, new_id):
    b = bundle("tty; stty size; exit 6", patch=_terminal)
    result = pyoci.run(b, new_id())
    assert result.returncode == 6, result.stderr
    lines = result.stdout.replace("\r", "").split("\n")
    assert lines[0].startswith("/dev/pts/")
    assert lines[1] == "33 111"
    pyoci.assert_nothing_left()


def test_terminal_errors(pyoci, bundle, new_id, tmp_path):
    tty_bundle = bundle(["true"], patch=_terminal)
    missing = pyoci.create(tty_bundle, new_id())
    assert missing.returncode == 1
    assert missing.stderr.startswith("pyoci: process.terminal: a terminal needs --console-socket")
    plain = bundle(["true"])
    wrong = pyoci.create(plain, new_id(), "--console-socket", str(tmp_path / "x.sock"))
    assert wrong.returncode == 1
    assert "process.terminal is false" in wrong.stderr
    not_listening = pyoci.create(tty_bundle, new_id(), "--console-socket",
                                 str(tmp_path / "nobody.sock"))  # fmt: skip
    assert not_listening.returncode == 1
    assert not_listening.stderr.startswith("pyoci: --console-socket: ")
    assert "no such file or directory" in not_listening.stderr
    pyoci.assert_nothing_left()
