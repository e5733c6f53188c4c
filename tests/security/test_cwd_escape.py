"""The process's working directory escapes the container through a /proc fd link.

The runtime chdirs into the process's cwd from a process that still holds host fds and sees the
container's /proc: a cwd of `/proc/self/fd/N` (or a symlink to it, or to `/proc/1/fd/N`) lands
in whatever host directory fd N is, and the container's program starts there, outside its root
(the class of runc CVE-2024-21626). Each test puts a marker file on the host where such a cwd
would lead and runs `ls` there; the runtime must refuse the exec with a one-line error, or start
the process inside the container, where the marker is not.

(a) `exec --cwd /proc/self/fd/N` from a caller holding fd N on a host directory.
(b) The container replaces its cwd (/work, in a private writable rootfs) by a symlink, then an
    ordinary `exec` (no --cwd) follows it: to /proc/1/fd/N, a host directory the init of a
    `created` container holds while it waits on exec.fifo (the attacker picks the N that is a
    directory; the container has CAP_SYS_PTRACE, as a debugging one does), or to
    /proc/self/fd/N, the exec caller's host directory.
"""

# ruff: noqa: F811 (the fixtures imported from attack are test parameters)
from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

from attack import call_with_fds, pyoci_bin, static_program  # noqa: F401

# What the container's process does: prove it ran, then show where it is.
LOOK = "echo {token}; pwd; ls -a . .. ../.. ../../..; exit 0"


def host_dir_with_marker(tmp_path: Path) -> tuple[Path, str]:
    marker = f"host-only-{uuid.uuid4().hex}"
    hostdir = tmp_path / "caller-dir"
    hostdir.mkdir()
    (hostdir / marker).write_text("host")
    return hostdir, marker


def assert_not_escaped(result: subprocess.CompletedProcess, marker: str, token: str, what: str):
    shown = "\n".join(result.stdout.splitlines()[:12])
    assert marker not in result.stdout, (
        f"{what}: the container's process started in a host directory (its `ls` shows the "
        f"host-only {marker}):\n{shown}\n..."
    )
    if result.returncode == 0:
        assert token in result.stdout, (
            f"{what}: exit 0 but the process never printed its token:\n"
            f"{result.stdout}{result.stderr}"
        )
    else:
        assert token not in result.stdout, f"{what}: failed after the process ran: {result}"
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, f"{what}: refused, but not with one error line: {result.stderr!r}"


def start_sleeper(pyoci, bundle, new_id, start: bool = True, **kw) -> tuple[str, object]:
    b = bundle(["sleep", "30"], **kw)
    cid = new_id("cwd")
    pyoci.create_ok(b, cid)
    if start:
        assert pyoci("start", cid).returncode == 0
    return cid, b


def control(pyoci, cid: str) -> None:
    """An exec that must work: proves the container runs what the tests exec."""
    token = uuid.uuid4().hex
    result = pyoci("exec", "--cwd", "/", cid, "sh", "-c", f"echo {token}")
    assert result.returncode == 0 and token in result.stdout, result


def test_exec_cwd_proc_self_fd_of_caller(pyoci, bundle, new_id, tmp_path):
    """(a) `exec --cwd /proc/self/fd/N` with fd N a host directory of the caller's."""
    hostdir, marker = host_dir_with_marker(tmp_path)
    cid, _ = start_sleeper(pyoci, bundle, new_id)
    control(pyoci, cid)
    token = uuid.uuid4().hex
    fd = os.open(hostdir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        look = LOOK.format(token=token)
        args = ("exec", "--cwd", f"/proc/self/fd/{fd}", cid, "sh", "-c", look)
        result = call_with_fds(pyoci, *args, pass_fds=(fd,))
    finally:
        os.close(fd)
    pyoci("delete", "--force", cid)
    assert_not_escaped(result, marker, token, f"exec --cwd /proc/self/fd/{fd}")


# The attacker inside the container: /work (the process cwd) becomes a symlink to a directory
# fd of PID 1 if it can see one, else to /proc/1/fd/3.
PLANT_INIT_FD = (
    "t=/proc/1/fd/3; for f in /proc/1/fd/*; do [ -d $f ] && t=$f; done; "
    "rmdir /work && ln -s $t /work && echo planted $t"
)


def with_ptrace(config: dict) -> None:
    """CAP_SYS_PTRACE for the container's processes (a debugging or privileged container):
    without it, ptrace access to a PID 1 holding every capability is refused."""
    for caps in config["process"]["capabilities"].values():
        caps.append("CAP_SYS_PTRACE")


def test_exec_cwd_symlink_to_created_init_fd(pyoci, bundle, new_id, tmp_path):
    """(b) A created container's init holds the state dir; the cwd becomes /proc/1/fd/N."""
    marker = f"host-only-{uuid.uuid4().hex}"
    (tmp_path / marker).write_text("host")  # ../.. of the state dir <root>/<id>
    cid, b = start_sleeper(
        pyoci,
        bundle,
        new_id,
        start=False,
        private=True,
        readonly=False,
        process={"cwd": "/work"},
        patch=with_ptrace,
    )
    (b.rootfs / "work").mkdir(exist_ok=True)
    assert pyoci.state(cid)["status"] == "created"
    plant = pyoci("exec", "--cwd", "/", cid, "sh", "-c", PLANT_INIT_FD)
    assert plant.returncode == 0 and "planted" in plant.stdout, plant
    token = uuid.uuid4().hex
    result = pyoci("exec", cid, "sh", "-c", LOOK.format(token=token))
    pyoci("delete", "--force", cid)
    assert_not_escaped(result, marker, token, f"exec with cwd /work -> {plant.stdout.split()[-1]}")


def test_exec_cwd_symlink_to_caller_fd(pyoci, bundle, new_id, tmp_path):
    """(b) The cwd becomes /proc/self/fd/N, N a host directory the exec caller holds."""
    hostdir, marker = host_dir_with_marker(tmp_path)
    cid, b = start_sleeper(
        pyoci, bundle, new_id, private=True, readonly=False, process={"cwd": "/work"}
    )
    fd = os.open(hostdir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        plant = f"rmdir /work && ln -s /proc/self/fd/{fd} /work && echo planted"
        result = pyoci("exec", "--cwd", "/", cid, "sh", "-c", plant)
        assert result.returncode == 0 and "planted" in result.stdout, result
        token = uuid.uuid4().hex
        look = LOOK.format(token=token)
        result = call_with_fds(pyoci, "exec", cid, "sh", "-c", look, pass_fds=(fd,))
    finally:
        os.close(fd)
    pyoci("delete", "--force", cid)
    assert_not_escaped(result, marker, token, f"exec with cwd /work -> /proc/self/fd/{fd}")
