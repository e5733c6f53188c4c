"""Rootless: an unprivileged user runs containers in a user namespace of its own.

The tests create a user (with the /etc/subuid and /etc/subgid ranges useradd allocates) and
run pyoci as that user, with its own XDG_RUNTIME_DIR and a bundle it owns.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from conftest import BUSYBOX_ROOTFS, pyoci_path, require_root_and_rootfs

USER = "pyoci-rootless"
ALL_CAPS = [
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN",
    "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON",
    "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
]  # fmt: skip


@pytest.fixture(scope="module")
def user() -> pwd.struct_passwd:
    require_root_and_rootfs()
    if shutil.which("useradd") is None:
        pytest.skip("useradd missing")
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", USER], check=True)
        entry = pwd.getpwnam(USER)
    return entry


def _subid(path: str, name: str) -> tuple[int, int] | None:
    try:
        for line in Path(path).read_text().splitlines():
            parts = line.split(":")
            if parts[0] == name:
                return int(parts[1]), int(parts[2])
    except FileNotFoundError:
        pass
    return None


class Rootless:
    """A workspace the user owns (world-searchable parent), and a runner as that user."""

    def __init__(self, entry: pwd.struct_passwd) -> None:
        self.user = entry
        self.base = Path(f"/tmp/pyoci-rootless-{uuid.uuid4().hex[:8]}")
        self.base.mkdir(mode=0o711)
        self.xdg = self.base / "xdg"
        self.xdg.mkdir(mode=0o700)
        self.bundle = self.base / "bundle"
        self.bundle.mkdir()
        subprocess.run(["cp", "-a", str(BUSYBOX_ROOTFS), str(self.bundle / "rootfs")], check=True)
        for path in (self.xdg, self.bundle):
            subprocess.run(["chown", "-R", f"{entry.pw_uid}:{entry.pw_gid}", str(path)], check=True)

    def __call__(self, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        uid, gid = self.user.pw_uid, self.user.pw_gid

        def demote() -> None:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)

        base_env = {"PATH": "/usr/bin:/bin", "HOME": self.user.pw_dir,
                    "XDG_RUNTIME_DIR": str(self.xdg)}  # fmt: skip
        # Files, not pipes: a created container keeps the stdio of `create` open.
        out_path, err_path = self.base / "out", self.base / "err"
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.run(
                [pyoci_path(), *args], preexec_fn=demote, cwd=self.bundle, env=env or base_env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=30, check=False,
            )  # fmt: skip
        result = subprocess.CompletedProcess(
            proc.args, proc.returncode, out_path.read_text(), err_path.read_text()
        )
        assert "Traceback" not in result.stderr
        return result

    def config(self) -> dict:
        return json.loads((self.bundle / "config.json").read_text())

    def write(self, config: dict) -> None:
        (self.bundle / "config.json").write_text(json.dumps(config))

    def spec(self, args: list[str]) -> dict:
        assert self("spec", "--rootless").returncode == 0
        config = self.config()
        config["process"]["terminal"] = False
        config["process"]["args"] = args
        return config

    def cleanup(self) -> list[str]:
        left = []
        root = self.xdg / "pyoci"
        if root.exists():
            for cid in os.listdir(root):
                left.append(cid)
                self("delete", "--force", cid)
        shutil.rmtree(self.base, ignore_errors=True)
        return left


@pytest.fixture(scope="module")
def reachable_checkout():
    """The unprivileged user must reach the checkout's pyoci (a CI clone may sit in a 0700
    temp dir): add o+x to the ancestors that lack it, and put the modes back afterwards."""
    changed = []
    path = Path(pyoci_path()).resolve().parent
    for directory in [path, *path.parents]:
        mode = directory.stat().st_mode
        if not mode & 0o001:
            directory.chmod((mode & 0o7777) | 0o001)
            changed.append((directory, mode & 0o7777))
    yield
    for directory, mode in changed:
        directory.chmod(mode)


@pytest.fixture
def rootless(user, reachable_checkout):
    workspace = Rootless(user)
    yield workspace
    assert workspace.cleanup() == [], "containers left behind"


def test_unprivileged_user_becomes_root_with_all_caps_in_its_namespace(rootless, tmp_path):
    # The classic demo: root with every capability inside, nothing more than the user outside.
    secret = Path(rootless.base) / "host-root-only"
    secret.mkdir(mode=0o700)  # owned by the host's root, which is not mapped
    config = rootless.spec(["sh", "-c", "id -u; cat /proc/self/uid_map; "
                            "grep CapEff /proc/self/status; ls /secret; echo ls=$?"])  # fmt: skip
    config["process"]["capabilities"] = {
        s: ALL_CAPS for s in ("bounding", "effective", "permitted")
    }
    config["mounts"].append({"destination": "/secret", "type": "bind", "source": str(secret),
                             "options": ["rbind"]})  # fmt: skip
    rootless.write(config)
    result = rootless("run", "demo")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "0"
    assert lines[1].split() == ["0", str(rootless.user.pw_uid), "1"]
    assert int(lines[2].split()[1], 16) == (1 << 41) - 1
    assert lines[-1] == "ls=1", "CAP_DAC_OVERRIDE in the namespace must not open host-root files"
    assert "Permission denied" in result.stderr


def test_network_namespace_with_loopback_up(rootless):
    config = rootless.spec(["sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/flags"])
    assert {"type": "network"} in config["linux"]["namespaces"]
    rootless.write(config)
    result = rootless("run", "net")
    assert result.returncode == 0, result.stderr
    interfaces, flags = result.stdout.split()
    assert interfaces == "lo"
    assert int(flags, 16) & 0x1, "lo must be up"


def test_state_root_is_under_xdg_runtime_dir(rootless):
    rootless.write(rootless.spec(["sleep", "100"]))
    assert rootless("create", "c1").returncode == 0
    assert (rootless.xdg / "pyoci" / "c1" / "state.json").exists()
    assert json.loads(rootless("state", "c1").stdout)["status"] == "created"
    assert rootless("delete", "--force", "c1").returncode == 0


def test_multi_range_mapping_through_newuidmap(rootless):
    if shutil.which("newuidmap") is None:
        pytest.skip("newuidmap missing (Debian package uidmap)")
    subuid = _subid("/etc/subuid", USER)
    subgid = _subid("/etc/subgid", USER)
    if not subuid or not subgid:
        pytest.skip(f"no /etc/subuid or /etc/subgid range for {USER}")
    config = rootless.spec(["cat", "/proc/self/uid_map", "/proc/self/gid_map"])
    uid = rootless.user.pw_uid
    config["linux"]["uidMappings"] = [
        {"containerID": 0, "hostID": uid, "size": 1},
        {"containerID": 1, "hostID": subuid[0], "size": subuid[1]},
    ]
    config["linux"]["gidMappings"] = [
        {"containerID": 0, "hostID": rootless.user.pw_gid, "size": 1},
        {"containerID": 1, "hostID": subgid[0], "size": subgid[1]},
    ]
    rootless.write(config)
    result = rootless("run", "multi")
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[:2] == [["0", str(uid), "1"], ["1", str(subuid[0]), str(subuid[1])]]


def test_mapping_the_user_does_not_own_is_refused(rootless):
    config = rootless.spec(["true"])
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 0, "size": 1}]
    rootless.write(config)
    result = rootless("run", "bad")
    assert result.returncode == 1
    assert result.stderr.startswith("pyoci: linux.uidMappings: ")
    assert len(result.stderr.splitlines()) == 1
    assert not (rootless.xdg / "pyoci" / "bad").exists()


def test_device_node_is_refused(rootless):
    config = rootless.spec(["true"])
    config["linux"]["devices"] = [{"path": "/dev/mydev", "type": "c", "major": 1, "minor": 3}]
    rootless.write(config)
    result = rootless("run", "dev")
    assert result.returncode == 1
    assert result.stderr.startswith("pyoci: linux.devices[0]: an unprivileged user cannot")
    assert not (rootless.xdg / "pyoci" / "dev").exists()


def test_no_state_root_without_xdg_runtime_dir(rootless):
    env = {"PATH": "/usr/bin:/bin", "HOME": "/"}
    result = rootless("list", env=env)
    assert result.returncode == 1
    assert "XDG_RUNTIME_DIR is unset" in result.stderr


def test_rootless_flag_values(rootless):
    assert rootless("--rootless", "true", "list").returncode == 0
    bad = rootless("--rootless", "maybe", "list")
    assert bad.returncode == 1 and "--rootless: must be true, false or auto" in bad.stderr
