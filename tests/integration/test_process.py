"""`process`: env, cwd, user and groups; and the network namespace's loopback."""

from __future__ import annotations

import os
import subprocess

import pytest


def test_env_is_visible(pyoci, bundle, new_id):
    b = bundle('echo "$GREETING|$PATH"', env=["GREETING=hello world"])
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    assert result.stdout == (
        "hello world|/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
    )


def test_env_is_exactly_the_config_env(pyoci, bundle, new_id, monkeypatch):
    monkeypatch.setenv("HOST_ONLY_VARIABLE", "leak")
    b = bundle("env", env=["ONLY_IN_CONFIG=1"])
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    assert "ONLY_IN_CONFIG=1" in result.stdout.splitlines()
    assert "HOST_ONLY_VARIABLE" not in result.stdout


def test_cwd_is_honoured(pyoci, bundle, new_id):
    b = bundle("pwd", process={"cwd": "/etc"})
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    assert result.stdout == "/etc\n"


@pytest.mark.parametrize("readonly", [False, True], ids=["rw-root", "ro-root"])
def test_missing_cwd_is_created(pyoci, bundle, new_id, readonly):
    """runc creates a missing cwd (before the root is made read-only)."""
    b = bundle("pwd; ls -ld . | cut -c1", private=True, readonly=readonly)
    b.config["process"]["cwd"] = "/work/new/dir"
    b.write()
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    assert result.stdout == "/work/new/dir\nd\n"
    assert (b.rootfs / "work" / "new" / "dir").is_dir()


def test_uid_gid(pyoci, bundle, new_id):
    b = bundle("id -u; id -g; id -un", process={"user": {"uid": 1000, "gid": 1000}})
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    assert result.stdout == "1000\n1000\nuser\n"


def test_additional_gids(pyoci, bundle, new_id):
    b = bundle(
        "id -u; id -g; id -G",
        process={"user": {"uid": 1000, "gid": 1000, "additionalGids": [100, 5]}},
    )
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    uid, gid, groups = result.stdout.splitlines()
    assert (uid, gid) == ("1000", "1000")
    assert {"1000", "100", "5"} <= set(groups.split()), groups
    assert "0" not in groups.split(), "the root group must be dropped"


def test_no_additional_gids_drops_the_callers_groups(pyoci, bundle, new_id):
    b = bundle("id -G", process={"user": {"uid": 1000, "gid": 1000}})
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1000"]


def test_unprivileged_user_cannot_write_root_owned_files(pyoci, bundle, new_id):
    b = bundle(
        "touch /etc/passwd && echo WROTE; echo ok",
        readonly=False,
        process={"user": {"uid": 1000, "gid": 1000}},
    )
    result = pyoci.run(b, new_id())
    assert result.stdout == "ok\n"
    assert "Permission denied" in result.stderr


def test_loopback_is_up_in_the_new_network_namespace(pyoci, bundle, new_id):
    b = bundle("cat /sys/class/net/lo/flags; ls /sys/class/net")
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    flags, *interfaces = result.stdout.split()
    assert int(flags, 16) & 0x1, f"lo is not UP: flags {flags}"
    assert interfaces == ["lo"], "a new network namespace has only lo"


def test_loopback_carries_traffic(pyoci, bundle, new_id):
    b = bundle("ping -c 1 -W 2 127.0.0.1 >/dev/null && echo PONG")
    b.config["process"]["capabilities"] = {
        name: ["CAP_NET_RAW"] for name in ("bounding", "effective", "permitted")
    }
    b.write()
    result = pyoci.run(b, new_id())
    assert result.stdout == "PONG\n", result.stderr


def test_rlimits_from_config(pyoci, bundle, new_id):
    b = bundle("ulimit -n; ulimit -Hn")
    b.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 1000}]
    b.write()
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["512", "1000"]


def _status_fields(text: str) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def test_capabilities_and_no_new_privs(pyoci, bundle, new_id):
    b = bundle("cat /proc/self/status")  # the busybox config: AUDIT_WRITE, KILL, NET_BIND_SERVICE
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    status = _status_fields(result.stdout)
    expected = (1 << 29) | (1 << 5) | (1 << 10)
    assert int(status["CapBnd"], 16) == expected, status["CapBnd"]
    assert int(status["CapEff"], 16) == expected, status["CapEff"]
    assert int(status["CapPrm"], 16) == expected, status["CapPrm"]
    assert status["NoNewPrivs"] == "1"


def test_unprivileged_user_has_no_effective_capabilities(pyoci, bundle, new_id):
    b = bundle("cat /proc/self/status", process={"user": {"uid": 1000, "gid": 1000}})
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    status = _status_fields(result.stdout)
    assert status["Uid"].split() == ["1000"] * 4
    assert status["Gid"].split() == ["1000"] * 4


def test_signals_are_not_ignored_or_blocked(pyoci, bundle, new_id):
    """Python ignores SIGPIPE and SIGXFSZ: the user program must start with the defaults."""
    b = bundle(["grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status"])
    result = pyoci.run(b, new_id())
    assert result.returncode == 0, result.stderr
    fields = _status_fields(result.stdout)
    assert int(fields["SigBlk"], 16) == 0, fields
    assert int(fields["SigIgn"], 16) == 0, fields


def test_no_file_descriptors_leak_into_the_container(pyoci, bundle, new_id, tmp_path):
    """Only stdio reaches the process, even when the caller has more fds open."""
    b = bundle(["ls", "/proc/self/fd"])
    out = tmp_path / "fds.out"
    extra = os.open(tmp_path, os.O_RDONLY)
    try:
        with open(out, "wb") as stdout:
            proc = subprocess.run(
                pyoci.argv(("run", "--bundle", str(b.path), new_id())),
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=subprocess.PIPE,
                pass_fds=(extra,),
                check=False,
            )
    finally:
        os.close(extra)
    assert proc.returncode == 0, proc.stderr
    # 0-2, plus the directory fd `ls` itself opens to read /proc/self/fd
    assert out.read_text().split() == ["0", "1", "2", "3"]
