"""The pure helpers of pyoci.procattrs (shared by the init and exec): finding args[0]
(execvp / Go's LookPath rules and the messages docker maps to exit codes 127 and 126), HOME
from the container's /etc/passwd (fed a tmp file in place of /etc/passwd, so no system file
is read); the sysctl plan (pyoci.plan) and the error message that crosses the sync socket
from a child (pyoci.channel)."""

from __future__ import annotations

import os
import signal
import socket
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyoci import channel, plan, procattrs
from pyoci.errors import PyociError
from pyoci.procattrs import home_of, is_executable, lookup_executable

SETTINGS = settings(database=None, deadline=None, max_examples=60)


def make(path: Path, mode: int, content: str = "#!/bin/sh\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content)
    path.chmod(mode)
    return path


def refusal(name: str, path_env: str | None) -> PyociError:
    with pytest.raises(PyociError) as caught:
        lookup_executable(name, path_env)
    return caught.value


# --- lookup_executable -------------------------------------------------------------------------
def test_first_executable_in_path_order(tmp_path: Path) -> None:
    make(tmp_path / "d1" / "prog", 0o644)  # not executable: skipped, as execvp
    (tmp_path / "d2" / "prog").mkdir(parents=True)  # a directory: skipped
    make(tmp_path / "d3" / "prog", 0o755)
    make(tmp_path / "d4" / "prog", 0o755)
    path_env = ":".join(str(tmp_path / d) for d in ("missing", "d1", "d2", "d3", "d4"))
    assert lookup_executable("prog", path_env) == str(tmp_path / "d3" / "prog")


def test_not_found_is_errno_2_with_dockers_words(tmp_path: Path) -> None:
    make(tmp_path / "d" / "prog", 0o600)
    err = refusal("prog", str(tmp_path / "d"))
    assert err.msg == 'exec: "prog": executable file not found in $PATH'
    assert err.errno == 2


def test_an_empty_path_element_is_the_current_directory(tmp_path, monkeypatch) -> None:
    make(tmp_path / "prog", 0o700)
    monkeypatch.chdir(tmp_path)
    assert lookup_executable("prog", f"{tmp_path}/none::/also-none") == "./prog"
    assert lookup_executable("prog", ":/also-none") == "./prog"


def test_a_symlink_to_an_executable_is_returned_as_the_link(tmp_path: Path) -> None:
    target = make(tmp_path / "real" / "prog", 0o755)
    (tmp_path / "bin").mkdir()
    os.symlink(target, tmp_path / "bin" / "prog")
    os.symlink(tmp_path / "nowhere", tmp_path / "bin" / "dangling")
    assert lookup_executable("prog", str(tmp_path / "bin")) == str(tmp_path / "bin" / "prog")
    assert refusal("dangling", str(tmp_path / "bin")).errno == 2


def test_default_path_when_the_env_has_none() -> None:
    found = lookup_executable("sh", None)
    default = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    assert os.path.dirname(found) in default
    assert refusal("pyoci-no-such-program-4f1c", None).errno == 2


def test_a_name_with_a_slash_is_not_searched(tmp_path: Path, monkeypatch) -> None:
    prog = make(tmp_path / "prog", 0o755)
    make(tmp_path / "d" / "sub" / "prog", 0o755)
    assert lookup_executable(str(prog), "/nonexistent") == str(prog)
    monkeypatch.chdir(tmp_path)
    assert lookup_executable("./prog", str(tmp_path / "d")) == "./prog"
    assert lookup_executable("d/sub/prog", "") == "d/sub/prog"
    err = refusal("sub/prog", str(tmp_path / "d"))  # relative to the cwd, never to $PATH
    assert err.msg == 'exec: "sub/prog": stat sub/prog: no such file or directory'
    err = refusal("d/sub/missing", "")
    assert err.msg == 'exec: "d/sub/missing": stat d/sub/missing: no such file or directory'
    assert err.errno == 2


@pytest.mark.parametrize("what", ["file", "dir"])
def test_a_path_that_cannot_run_is_permission_denied(tmp_path: Path, what: str) -> None:
    target = tmp_path / "x"
    if what == "dir":
        target.mkdir()
        target.chmod(0o755)
    else:
        make(target, 0o644)
    err = refusal(str(target), None)
    assert err.msg == f'exec: "{target}": permission denied' and err.errno == 13


@SETTINGS
@given(mode=st.integers(0, 0o7777))
def test_executable_means_a_regular_file_with_any_x_bit(tmp_path_factory, mode: int) -> None:
    path = tmp_path_factory.getbasetemp() / "mode-probe"
    path.touch()
    path.chmod(mode)
    try:
        assert is_executable(os.stat(path)) == bool(mode & 0o111)
    finally:
        path.chmod(0o600)


def test_only_regular_files_are_executable(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo, 0o777)
    fifo.chmod(0o777)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and not is_executable(os.stat(fifo))
    assert not is_executable(os.stat(tmp_path))


# --- home_of -----------------------------------------------------------------------------------
class _FakeEtc:
    """`os` for pyoci.procattrs, with /etc/passwd answered from `passwd`."""

    def __init__(self, passwd: Path) -> None:
        self.passwd = passwd

    def __getattr__(self, name: str):
        return getattr(os, name)

    def open(self, path, *args, **kwargs):
        return os.open(self.passwd if path == "/etc/passwd" else path, *args, **kwargs)


@pytest.fixture
def passwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "passwd"
    monkeypatch.setattr(procattrs, "os", _FakeEtc(path))
    return path


PASSWD = """root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
short:x:7:7:only six fields:/nope
u100:x:100:100::/home/u100:/bin/sh
u10:x:10:10::/home/u10:/bin/sh
nohome:x:1001:1001:::/bin/sh
"""


@pytest.mark.parametrize(
    "uid, home",
    [(0, "/root"), (1, "/usr/sbin"), (10, "/home/u10"), (100, "/home/u100"), (7, "/"),
     (1001, "/"), (4242, "/")],
)  # fmt: skip
def test_home_of_reads_the_uids_line(passwd: Path, uid: int, home: str) -> None:
    passwd.write_text(PASSWD)
    assert home_of(uid) == home


def test_home_of_without_a_passwd_file(passwd: Path) -> None:
    assert home_of(0) == "/"


def test_home_of_a_passwd_that_is_a_directory(passwd: Path) -> None:
    passwd.mkdir()
    assert home_of(0) == "/"


def test_home_of_a_passwd_fifo_does_not_block(passwd: Path) -> None:
    os.mkfifo(passwd)

    def hung(*_):
        raise AssertionError("home_of blocked on a fifo")

    previous = signal.signal(signal.SIGALRM, hung)
    signal.alarm(5)
    try:
        assert home_of(0) == "/"
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def test_home_of_tolerates_bytes_that_are_not_utf8(passwd: Path) -> None:
    passwd.write_bytes(b"\xff\xfe:x:5:5::/bad\xff:/bin/sh\nme:x:6:6::/home/me:/bin/sh\n")
    assert home_of(6) == "/home/me"
    assert home_of(5) == "/bad\ufffd"


# --- small plans and messages ------------------------------------------------------------------
def test_sysctl_plan_maps_dots_to_proc_sys_paths() -> None:
    class FakeSpec:
        sysctl = {"net.ipv4.ip_forward": "1", "kernel.shmmax": "1024"}

    assert plan.plan_sysctl(FakeSpec()) == [
        ("linux.sysctl.net.ipv4.ip_forward", "/proc/sys/net/ipv4/ip_forward", "1"),
        ("linux.sysctl.kernel.shmmax", "/proc/sys/kernel/shmmax", "1024"),
    ]


@pytest.mark.parametrize(
    "err, msg, errno",
    [
        (PyociError("mounts[0]: bad", 22), "mounts[0]: bad", 22),
        (FileNotFoundError(2, "No such file or directory", "/x"),
         "No such file or directory: /x", 2),
        (PermissionError(13, "Permission denied"), "Permission denied", 13),
        (ValueError("boom"), "internal error: ValueError: boom", 0),
    ],
)  # fmt: skip
def test_a_childs_error_crosses_the_socket_intact(err, msg: str, errno: int) -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        channel.send_error(a, err)
        message = b.recv(1 << 16)
        assert message.startswith(channel.ERROR + b" ")
        with pytest.raises(PyociError) as caught:
            channel.raise_child_error(message)
        assert (caught.value.msg, caught.value.errno) == (msg, errno)
    finally:
        a.close()
        b.close()
