"""What the container's PID 1 holds open, seen from the host.

With `--init`, PID 1 is pyoci's own Python for the container's whole life. Whatever fds it kept
from setup are reachable from inside the container (/proc/1/fd, by any process that may ptrace
it or share its uid): a joined namespace's fd (setns back into a namespace the container was not
meant to be in), the seccomp listener's socket (talk to the supervisor as the runtime), the
state directory or any other host directory (an escape through `openat(fd, "..")`, the class of
CVE-2024-21626). Only stdio may remain. runc has no `--init`: there PID 1 is the user process,
so the same property is checked on it (runc resists).

A `create`d container's waiting init is PID 1 too (`runc exec` and anything sharing the pid
namespace can reach it): it may hold the exec.fifo, never a host directory.
"""

from __future__ import annotations

import array
import json
import os
import socket
import stat
import subprocess
import threading
import time
from pathlib import Path

import pytest
from attack import pyoci_bin, runtime_is_pyoci  # noqa: F401

READY = "init-fds-ready"


def describe_fds(pid: int) -> dict[int, str]:
    """fd → what it is, read from the host: the link text, plus "(directory)" for a directory."""
    out = {}
    for name in os.listdir(f"/proc/{pid}/fd"):
        fd = int(name)
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            mode = os.stat(f"/proc/{pid}/fd/{fd}").st_mode
        except OSError as err:
            out[fd] = f"? ({err.strerror})"
            continue
        out[fd] = link + (" (directory)" if stat.S_ISDIR(mode) else "")
    return out


def wait_for_token(path: Path, token: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while token not in path.read_text(errors="replace"):
        if time.monotonic() > deadline:
            raise AssertionError(f"the container never printed {token!r}: {path.read_text()}")
        time.sleep(0.02)


@pytest.fixture
def foreign_namespaces():
    """A process of the host in its own network and uts namespaces: their /proc/PID/ns paths
    are what the container joins (no bind mounts to clean up)."""
    proc = subprocess.Popen(
        ["unshare", "--net", "--uts", "sleep", "1000"], stdin=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 5
    while os.readlink(f"/proc/{proc.pid}/ns/net") == os.readlink("/proc/self/ns/net"):
        assert time.monotonic() < deadline, "unshare never entered its network namespace"
        time.sleep(0.01)
    yield proc.pid
    proc.kill()
    proc.wait()


@pytest.fixture
def seccomp_listener(tmp_path):
    """A listener socket that accepts the runtime's connection and keeps the notify fd it
    receives (closed at the end). Returns (path, dict filled by the server)."""
    path = tmp_path / "listener.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen(1)
    got: dict = {}

    def serve() -> None:
        try:
            conn, _ = server.accept()
        except OSError:
            return
        msg, ancdata, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4))
        fds = array.array("i")
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: fds.itemsize])
        got["payload"] = json.loads(msg) if msg else None
        got["fd"] = fds[0] if fds else -1
        got["conn"] = conn

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield path, got
    try:
        server.shutdown(socket.SHUT_RDWR)  # wakes a thread still in accept()
    except OSError:
        pass
    server.close()
    thread.join(5)
    if got.get("fd", -1) >= 0:
        os.close(got["fd"])
    if got.get("conn"):
        got["conn"].close()


def test_init_pid1_keeps_only_stdio(pyoci, bundle, new_id, foreign_namespaces, seccomp_listener):
    listener_path, got = seccomp_listener
    ns_pid = foreign_namespaces

    def patch(config: dict) -> None:
        namespaces = [
            n for n in config["linux"]["namespaces"] if n["type"] not in ("network", "uts")
        ]
        namespaces += [
            {"type": "network", "path": f"/proc/{ns_pid}/ns/net"},
            {"type": "uts", "path": f"/proc/{ns_pid}/ns/uts"},
        ]
        config["linux"]["namespaces"] = namespaces
        config.pop("hostname", None)
        config["linux"]["seccomp"] = {
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": str(listener_path),
            "syscalls": [{"names": ["mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
        }

    cid = new_id()
    b = bundle(f"echo {READY}; exec sleep 1000", patch=patch)
    init_flag = ["--init"] if runtime_is_pyoci() else []  # runc: PID 1 is the user process
    proc, out, err = pyoci.popen("run", "--detach", *init_flag, "--bundle", str(b.path), cid)
    assert proc.wait(30) == 0, err.read_text()
    wait_for_token(out, READY)
    pid = pyoci.state(cid)["pid"]
    deadline = time.monotonic() + 5
    while "fd" not in got and time.monotonic() < deadline:
        time.sleep(0.02)
    assert got.get("fd", -1) >= 0, f"the seccomp listener got no notify fd: {got}"
    assert os.readlink(f"/proc/{pid}/ns/net") == os.readlink(f"/proc/{ns_pid}/ns/net")
    fds = describe_fds(pid)
    extra = {fd: what for fd, what in fds.items() if fd > 2}
    assert not extra, f"PID 1 ({pid}) of the container holds more than stdio: {extra}"
    for fd in (0, 1, 2):
        what = fds.get(fd, "")
        assert ":[" not in what or what.startswith("pipe:["), f"fd {fd}: {what}"
        assert "(directory)" not in what, f"fd {fd}: {what}"
    # The user process (PID 1's child under --init) holds only stdio as well.
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        children = [int(c) for c in f.read().split()]
    for child in children:
        extra = {fd: what for fd, what in describe_fds(child).items() if fd > 2}
        assert not extra, f"the container's process {child} holds more than stdio: {extra}"
    assert pyoci("delete", "--force", cid).returncode == 0


def test_created_init_holds_no_host_directory(pyoci, bundle, new_id):
    cid = new_id()
    b = bundle(f"echo {READY}")
    proc, out, err = pyoci.popen("create", "--bundle", str(b.path), cid)
    assert proc.wait(30) == 0, err.read_text()
    state = pyoci.state(cid)
    assert state["status"] == "created"
    pid = state["pid"]
    fds = describe_fds(pid)
    directories = {fd: what for fd, what in fds.items() if what.endswith("(directory)")}
    assert not directories, (
        f"the waiting init ({pid}) holds host directories: {directories} (all fds: {fds})"
    )
    # Whatever else it holds, the container still starts and runs (its stdout is create's).
    assert pyoci("start", cid).returncode == 0
    wait_for_token(out, READY)
    pyoci.wait_status(cid, "stopped")
    assert pyoci("delete", cid).returncode == 0
