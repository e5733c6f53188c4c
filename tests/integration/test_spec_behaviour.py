"""Runtime-spec behaviour that configs written by others rely on (issue 14): each test shows
what a user sees inside the container, compared with runc where runc is the contract."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from test_config_linux import userns_bundle

RUNC = shutil.which("runc")
# The shell's own pid, process group and session, from its /proc/self/stat (`read` is a
# builtin: no child process reads the file instead).
STAT_IDS = (
    'read pid comm state ppid pgrp sid rest < /proc/self/stat; echo "pid=$pid pgrp=$pgrp sid=$sid"'
)


def run_out(pyoci, b, cid: str) -> str:
    result = pyoci.run(b, cid)
    assert result.returncode == 0, f"exit {result.returncode}: {result.stderr}"
    return result.stdout


def test_bind_source_behind_a_directory_the_mapped_root_cannot_search(
    pyoci, bundle, new_id, tmp_path
):
    """The source is looked up by the host's root before the user namespace is entered
    (a 0700 root-owned parent would give the mapped root "permission denied")."""
    private = tmp_path / "root-only"
    private.mkdir(mode=0o700)
    (private / "data").mkdir()
    (private / "data" / "token").write_text("bind-source-ok\n")
    os.chmod(private, 0o700)
    mount = {"destination": "/mnt", "type": "bind", "source": str(private / "data"),
             "options": ["rbind", "ro"]}  # fmt: skip
    b = userns_bundle(bundle, ["cat", "/mnt/token"], patch=lambda c: c["mounts"].append(mount))
    assert run_out(pyoci, b, new_id()) == "bind-source-ok\n"


def test_home_from_passwd_when_env_has_none(pyoci, bundle, new_id):
    """runc and crun set HOME from the container's /etc/passwd entry of process.user.uid."""

    def no_home(config: dict) -> None:
        config["process"]["env"] = [
            e for e in config["process"]["env"] if not e.startswith("HOME=")
        ]

    b = bundle("echo HOME=$HOME", patch=no_home)
    assert run_out(pyoci, b, new_id()) == "HOME=/root\n"
    b = bundle("echo HOME=$HOME", patch=no_home, process={"user": {"uid": 4242, "gid": 4242}})
    assert run_out(pyoci, b, new_id()) == "HOME=/\n"  # no passwd entry: "/"
    b = bundle("echo HOME=$HOME", env=["HOME=/custom"])
    assert run_out(pyoci, b, new_id()).strip().endswith("HOME=/custom")


def test_exec_gets_home_and_a_session_of_its_own(pyoci, bundle, new_id):
    """An exec'd process (no tty) leads its own session and process group, inside the
    container's pid namespace (runc calls setsid for every container process)."""
    cid = new_id()

    def no_home(config: dict) -> None:
        config["process"]["env"] = [
            e for e in config["process"]["env"] if not e.startswith("HOME=")
        ]

    b = bundle(["sleep", "100"], patch=no_home)
    pyoci.create_ok(b, cid)
    assert pyoci("start", cid).returncode == 0
    script = 'echo "HOME=$HOME"; ' + STAT_IDS
    result = pyoci("exec", cid, "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    home, ids = result.stdout.splitlines()
    assert home == "HOME=/root"
    fields = dict(kv.split("=") for kv in ids.split())
    assert fields["pgrp"] == fields["sid"] != "0"


def test_init_leads_its_own_session(pyoci, bundle, new_id):
    b = bundle(STAT_IDS)
    fields = dict(kv.split("=") for kv in run_out(pyoci, b, new_id()).split())
    assert fields == {"pid": "1", "pgrp": "1", "sid": "1"}


def test_hook_without_env_gets_the_runtimes_environment(pyoci, bundle, new_id, tmp_path):
    out = tmp_path / "hook-env"
    hook = {"path": "/bin/sh", "args": ["sh", "-c", f"echo PATH=$PATH > {out}"]}
    b = bundle(["true"], hooks={"createRuntime": [hook]})
    run_out(pyoci, b, new_id())
    assert out.read_text().strip() == f"PATH={os.environ['PATH']}"


def test_hostname_in_a_joined_uts_namespace(pyoci, bundle, new_id):
    """Valid per config.md (hostname needs a uts namespace entry); set in the joined one."""
    holder = subprocess.Popen(["unshare", "--uts", "sleep", "60"])
    try:
        for _ in range(100):
            if os.readlink(f"/proc/{holder.pid}/ns/uts") != os.readlink("/proc/self/ns/uts"):
                break
            subprocess.run(["sleep", "0.02"], check=True)

        def join_uts(config: dict) -> None:
            for ns in config["linux"]["namespaces"]:
                if ns["type"] == "uts":
                    ns["path"] = f"/proc/{holder.pid}/ns/uts"
            config["hostname"] = "joined-host"

        b = bundle("hostname", patch=join_uts)
        assert run_out(pyoci, b, new_id()) == "joined-host\n"
        seen = subprocess.run(["nsenter", "-t", str(holder.pid), "--uts", "hostname"],
                              capture_output=True, text=True, check=True)  # fmt: skip
        assert seen.stdout == "joined-host\n"
    finally:
        holder.kill()
        holder.wait()


def test_hostname_beside_its_sysctl_is_refused(pyoci, bundle, new_id):
    b = bundle("true", patch=lambda c: c["linux"].__setitem__("sysctl", {"kernel.hostname": "x"}))
    result = pyoci.create(b, new_id())
    assert result.returncode == 1
    assert "linux.sysctl.kernel.hostname: conflicts with hostname" in result.stderr
    pyoci.assert_nothing_left()


def test_device_path_with_a_trailing_slash(pyoci, bundle, new_id):
    dev = {"path": "/dev/mynull/", "type": "c", "major": 1, "minor": 3, "fileMode": 438}
    b = bundle(
        "stat -c '%t:%T %F' /dev/mynull",
        patch=lambda c: c["linux"].setdefault("devices", []).append(dev),
    )
    assert run_out(pyoci, b, new_id()) == "1:3 character special file\n"


@pytest.mark.skipif(RUNC is None, reason="runc is not installed: nothing to compare with")
def test_tmpfs_takes_the_mode_of_the_directory_it_covers(pyoci, bundle, new_id, tmp_path):
    """runc: a tmpfs without mode= gets the covered directory's mode (not the kernel's 1777)."""

    def tmpfs(config: dict) -> None:
        for dest in ("/etc", "/tmp"):
            config["mounts"].append({"destination": dest, "type": "tmpfs", "source": "tmpfs"})

    b = bundle("stat -c '%a %n' /etc /tmp", patch=tmpfs)
    ours = run_out(pyoci, b, new_id())
    theirs = subprocess.run([RUNC, "--root", str(tmp_path / "runc"), "run", "--bundle",
                             str(b.path), new_id()], capture_output=True, text=True)  # fmt: skip
    assert theirs.returncode == 0, theirs.stderr
    assert ours == theirs.stdout == "755 /etc\n1777 /tmp\n"


def test_log_file_that_cannot_be_opened_is_an_error(pyoci, tmp_path):
    """runc fails at once; a log silently lost would hide every later error from the tools."""
    for command in (("list",), ("state", "nosuch")):
        result = pyoci(*command, global_args=("--log", str(tmp_path / "missing" / "log.json")))
        assert result.returncode == 1
        assert result.stderr.startswith("pyoci: --log: ") and "no such file" in result.stderr


def _no_mount_namespace(config: dict) -> None:
    config["linux"]["namespaces"] = [
        ns for ns in config["linux"]["namespaces"] if ns["type"] != "mount"
    ]


def test_without_a_mount_namespace_mounts_are_removed_at_delete(pyoci, bundle, new_id):
    """config-linux.md: a namespace type not listed MUST be inherited from the runtime. The
    container's mounts are then the host's, under its rootfs; runc leaves them behind after
    delete, pyoci removes exactly what it mounted."""
    b = bundle(["sleep", "100"], private=True, patch=_no_mount_namespace)
    (b.rootfs / "in-the-container").write_text("")
    cid = new_id()
    pyoci.create_ok(b, cid)
    assert pyoci("start", cid).returncode == 0
    assert pyoci.our_mounts(), "the container's mounts are in the host's namespace"
    result = pyoci("exec", cid, "ls", "/")  # exec enters the container's root too
    assert result.returncode == 0, result.stderr
    assert "in-the-container" in result.stdout.split()
    assert pyoci("delete", "--force", cid).returncode == 0
    assert pyoci.our_mounts() == []
    pyoci.assert_nothing_left()


def test_without_a_mount_namespace_a_failed_create_unmounts(pyoci, bundle, new_id):
    def patch(config: dict) -> None:
        _no_mount_namespace(config)
        config["mounts"].append({"destination": "/x", "type": "nosuchfs", "source": "none"})

    b = bundle(["true"], private=True, patch=patch)
    result = pyoci.create(b, new_id())
    assert result.returncode == 1 and "nosuchfs" in result.stderr
    assert pyoci.our_mounts() == []
    pyoci.assert_nothing_left()
