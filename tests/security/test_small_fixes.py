"""Smaller findings of the security review, each performed for real.

- `--pid-file` was written through the predictable `.NAME.tmp`, opened without O_EXCL or
  O_NOFOLLOW: in a world-writable directory anyone could plant a symlink there and have root
  write through it.
- The pty master received from the container (a foreground `run` relays the terminal) was not
  close-on-exec, so it leaked into the poststart hooks.
- The parents of a missing `--root` were created 0755 (runc: 0700).
- An id of 256 or more characters failed with "internal error ... File name too long".
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from attack import pyoci_bin, runtime_is_pyoci, static_program  # noqa: F401


def only_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr:\n{stderr}"
    return lines[0]


# === 1. --pid-file through a planted symlink ====================================================
@pytest.mark.parametrize("command", ["create", "exec"])
def test_pid_file_does_not_follow_a_planted_temp_link(pyoci, bundle, new_id, tmp_path, command):
    """The victim stands for any file root can write (/etc/shadow, a binary): the link at the
    old predictable temp name must not be written through, and the pid file is still right."""
    public = tmp_path / "public"
    public.mkdir()
    public.chmod(0o1777)  # like /tmp: anyone may plant names here
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    pid_file = public / "c.pid"
    (public / ".c.pid.tmp").symlink_to(victim)
    cid = new_id("pidf")
    b = bundle(["sleep", "100"])
    if command == "create":
        result = pyoci.create(b, cid, "--pid-file", str(pid_file))
        assert result.returncode == 0, result.stderr
        expected = pyoci.state(cid)["pid"]
    else:
        pyoci.create_ok(b, cid)
        assert pyoci("start", cid).returncode == 0
        result = pyoci("exec", "--detach", "--pid-file", str(pid_file), cid, "sleep", "100")
        assert result.returncode == 0, result.stderr
        expected = int(pid_file.read_text())
        assert Path(f"/proc/{expected}/cmdline").read_bytes().startswith(b"sleep\0")
    assert victim.read_text() == "precious\n", "root wrote through the planted symlink"
    assert not pid_file.is_symlink()
    assert pid_file.read_text() == str(expected)
    assert (public / ".c.pid.tmp").is_symlink()  # left alone
    assert sorted(p.name for p in public.iterdir()) == [".c.pid.tmp", "c.pid"]
    assert pyoci("delete", "--force", cid).returncode == 0
    pyoci.assert_nothing_left()


# === 2. the pty master is close-on-exec =========================================================
def test_pty_master_does_not_leak_into_poststart_hooks(pyoci, bundle, new_id, tmp_path):
    """A foreground `run` of a terminal container receives the pty master over its console
    socket pair, then runs the poststart hooks: the hook lists its open fds."""
    if not runtime_is_pyoci():
        pytest.skip("runc's foreground terminal needs a controlling tty (it opens /dev/tty)")
    report = tmp_path / "hook-fds"
    hook = tmp_path / "list-fds.sh"
    hook.write_text(
        f'#!/bin/sh\nfor fd in /proc/$$/fd/*; do echo "$fd -> $(readlink "$fd")"; done > {report}\n'
    )
    hook.chmod(0o755)

    def patch(config: dict) -> None:
        config["process"]["terminal"] = True
        config["hooks"] = {"poststart": [{"path": str(hook)}]}

    # pyoci holds the master from before poststart until the relay ends, whatever the
    # container does meanwhile.
    b = bundle(["true"], patch=patch)
    result = pyoci.run(b, new_id("pty"))
    assert result.returncode == 0, result.stderr
    fds = report.read_text().splitlines()
    assert fds, "the hook reported nothing"
    leaked = [line for line in fds if "ptmx" in line]
    assert leaked == [], f"the hook inherited the pty master: {leaked}"
    pyoci.assert_nothing_left()


# === 3. the parents of a new --root are 0700 ====================================================
def test_missing_root_parents_are_made_0700(pyoci, bundle, new_id, tmp_path):
    top = tmp_path / "x"
    pyoci.root = top / "a" / "b"  # the runner (and its teardown) use this root from now on
    cid = new_id("root")
    pyoci.create_ok(bundle(["true"]), cid)
    modes = {str(d): stat.S_IMODE(d.stat().st_mode) for d in (top, top / "a", top / "a" / "b")}
    assert modes == dict.fromkeys(modes, 0o700), {k: oct(v) for k, v in modes.items()}
    assert pyoci("delete", "--force", cid).returncode == 0
    pyoci.assert_nothing_left()


# === 4. an id too long for a file name ==========================================================
def test_id_longer_than_a_file_name_is_a_clear_error(pyoci, bundle, new_id):
    """runc: `lstat <root>/<id>: file name too long`. pyoci names the id and the limit, and
    leaves nothing; the longest id that fits (255) works."""
    b = bundle(["true"])
    too_long = "a" * 256
    result = pyoci.create(b, too_long)
    assert result.returncode == 1
    if runtime_is_pyoci():
        line = only_line(result.stderr)
        assert line.startswith(f"pyoci: container id '{too_long}': too long"), line
        assert "255" in line and "internal error" not in line, line
        state = pyoci("state", too_long)
        assert state.returncode == 1 and "too long" in only_line(state.stderr)
    assert pyoci.state_entries() == []
    longest = "b" * 255
    pyoci.create_ok(b, longest)
    assert json.loads(pyoci("state", longest).stdout)["id"] == longest
    assert pyoci("delete", "--force", longest).returncode == 0
    pyoci.assert_nothing_left()
    assert not os.path.exists(pyoci.root / too_long)
