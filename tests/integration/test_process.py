"""`process`: env, cwd, user and groups; and the network namespace's loopback."""

from __future__ import annotations

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
