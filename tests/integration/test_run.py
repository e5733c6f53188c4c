"""`pyoci run`: what the container sees of itself, and the exit code the caller gets back."""

from __future__ import annotations

import os
import socket

import pytest


def test_run_prints_hostname_from_config(pyoci, bundle, new_id):
    host_name = socket.gethostname()
    b = bundle("hostname; cat /proc/sys/kernel/hostname", hostname="box-under-test")
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    assert result.stdout == "box-under-test\nbox-under-test\n"
    assert result.stderr == ""
    assert socket.gethostname() == host_name, "the host's hostname changed"
    pyoci.assert_nothing_left()


def test_run_default_bundle_prints_hostname_and_id(pyoci, bundle, new_id):
    b = bundle()  # the committed busybox config, unchanged but for root.path
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    assert "hostname: pyoci" in result.stdout
    assert "uid=0(root) gid=0(root)" in result.stdout


@pytest.mark.parametrize("code", [0, 1, 7, 255])
def test_run_exit_code_is_the_process_exit_code(pyoci, bundle, new_id, code):
    b = bundle(f"exit {code}")
    result = pyoci.run(b, new_id())
    assert result.returncode == code, result.stderr
    pyoci.assert_nothing_left()


def test_run_killed_by_signal_exits_128_plus_n(pyoci, bundle, new_id):
    cid = new_id()
    b = bundle(["sleep", "100"])
    proc, _out, err = pyoci.popen("run", "--bundle", str(b.path), cid)
    try:
        pyoci.wait_status(cid, "running")
        killed = pyoci("kill", cid, "KILL")
        assert killed.returncode == 0, killed.stderr
        assert proc.wait(timeout=10) == 128 + 9, err.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    pyoci.assert_nothing_left()  # run deletes what it created


@pytest.mark.parametrize("extra", [(), ("--no-pivot",)], ids=["pivot_root", "no-pivot"])
def test_process_is_pid_1_of_its_own_pid_namespace(pyoci, bundle, new_id, extra):
    b = bundle("echo $$; tr '\\0' ' ' < /proc/1/cmdline; echo; ls /proc | grep -c '^[0-9]'")
    result = pyoci.run(b, new_id(), *extra)
    assert result.returncode == 0, result.stderr
    pid, cmdline, nprocs = result.stdout.splitlines()
    assert pid == "1"
    assert cmdline.startswith("sh -c echo $$")
    # sh, tr/ls/grep: a handful of processes, not the host's hundreds
    assert int(nprocs) <= 4


@pytest.mark.parametrize("extra", [(), ("--no-pivot",)], ids=["pivot_root", "no-pivot"])
def test_ls_root_shows_the_rootfs_not_the_host(pyoci, bundle, new_id, extra):
    b = bundle("ls -a /", private=True)
    (b.rootfs / "pyoci-test-marker").write_text("here\n")
    result = pyoci.run(b, new_id(), *extra)
    assert result.returncode == 0, result.stderr
    names = set(result.stdout.split())
    assert "pyoci-test-marker" in names
    assert {"bin", "dev", "etc", "proc", "sys", "tmp"} <= names
    host_only = set(os.listdir("/")) - {n for n in os.listdir(b.rootfs)}
    assert host_only, "the host's / should differ from the rootfs"
    assert not names & host_only, f"host entries visible in the container: {names & host_only}"
    pyoci.assert_nothing_left()


@pytest.mark.parametrize("extra", [(), ("--no-pivot",)], ids=["pivot_root", "no-pivot"])
def test_old_root_is_not_reachable(pyoci, bundle, new_id, extra):
    """After pivot_root (or MS_MOVE+chroot) no mount of the host's tree remains visible."""
    b = bundle("cat /proc/self/mountinfo")
    result = pyoci.run(b, new_id(), *extra)
    assert result.returncode == 0, result.stderr
    for line in result.stdout.splitlines():
        if " - " in line:
            mount_point = line.split()[4]
            assert mount_point == "/" or mount_point.startswith(("/proc", "/dev", "/sys")), line
