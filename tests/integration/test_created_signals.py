"""A container waiting in `created` ends on SIGTERM (as runc's waiting init does): tools send
TERM first and would otherwise wait for their KILL timeout."""

from __future__ import annotations

import os

import pytest


@pytest.mark.parametrize("sig", ["TERM", "INT", "HUP"])
def test_term_stops_a_created_container(pyoci, bundle, new_id, sig):
    cid = new_id()
    pyoci.create_ok(bundle(["sleep", "100"]), cid)
    assert pyoci.state(cid)["status"] == "created"
    assert pyoci("kill", cid, sig).returncode == 0
    assert pyoci.wait_status(cid, "stopped")["status"] == "stopped"
    assert pyoci("delete", cid).returncode == 0
    pyoci.assert_nothing_left()


def test_term_does_not_reach_a_running_pid1_without_handler(pyoci, bundle, new_id):
    # After start the program is PID 1 with default dispositions: the kernel drops TERM, as
    # with runc; KILL always works.
    cid = new_id()
    assert pyoci.run(bundle(["sleep", "100"]), cid, "--detach").returncode == 0
    assert pyoci("kill", cid, "TERM").returncode == 0
    assert pyoci.state(cid)["status"] == "running"
    assert pyoci("kill", cid, "KILL").returncode == 0
    assert pyoci.wait_status(cid, "stopped")["status"] == "stopped"
    pyoci("delete", cid)


def test_signals_ignored_by_the_caller_are_reset(pyoci, bundle, new_id):
    """Ignored dispositions survive execve: a caller (a CI runner, a shell) that ignores
    SIGPIPE or glibc's reserved 32/33 must not pass that on to the container's program."""
    import ctypes
    import subprocess

    class Sigaction(ctypes.Structure):
        _fields_ = [("h", ctypes.c_ulong), ("f", ctypes.c_ulong), ("r", ctypes.c_ulong),
                    ("m", ctypes.c_uint64)]  # fmt: skip

    def ignore_some() -> None:
        libc = ctypes.CDLL(None)
        ignore = Sigaction(1, 0, 0, 0)  # SIG_IGN
        for sig in (13, 32, 33):
            libc.syscall(13, sig, ctypes.byref(ignore), None, 8)  # rt_sigaction (x86_64)

    if os.uname().machine != "x86_64":
        pytest.skip("the probe uses x86_64's rt_sigaction number")
    b = bundle(["grep", "^SigIgn", "/proc/self/status"])
    result = subprocess.run(
        pyoci.argv(("run", "--bundle", str(b.path), new_id())),
        preexec_fn=ignore_some,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["SigIgn:", "0000000000000000"]
