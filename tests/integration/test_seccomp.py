"""linux.seccomp: the filter is in force in the container (and in exec'd processes)."""

from __future__ import annotations

import array
import json
import os
import socket
import threading
from pathlib import Path

import pytest

PODMAN_PROFILE = Path("/usr/share/containers/seccomp.json")
ARCH_ALIASES = {"x86_64": "amd64", "aarch64": "arm64"}


def _writable(config: dict) -> None:
    config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"})


def _seccomp(profile: dict, nnp: bool = True):
    def patch(config: dict) -> None:
        _writable(config)
        config["linux"]["seccomp"] = profile
        config["process"]["noNewPrivileges"] = nnp

    return patch


DENY_MKDIR = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_AARCH64"],
    "syscalls": [
        {"names": ["mkdir", "mkdirat", "no_such_syscall"], "action": "SCMP_ACT_ERRNO"},
    ],
}


@pytest.mark.parametrize("nnp", [True, False])
def test_denied_syscall_returns_eperm(pyoci, bundle, new_id, nnp):
    script = "mkdir /tmp/x; echo rc=$?; grep -E '^(Seccomp|NoNewPrivs):' /proc/self/status"
    result = pyoci.run(bundle(script, patch=_seccomp(DENY_MKDIR, nnp)), new_id())
    assert result.returncode == 0, result.stderr
    assert "rc=1" in result.stdout
    assert "Operation not permitted" in result.stderr
    assert "Seccomp:\t2" in result.stdout
    assert f"NoNewPrivs:\t{int(nnp)}" in result.stdout


def test_errno_ret_and_default_errno(pyoci, bundle, new_id):
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 28}],
    }
    result = pyoci.run(bundle("mkdir /tmp/x", patch=_seccomp(profile)), new_id())
    assert result.returncode == 1
    assert "No space left on device" in result.stderr


def test_kill_action_kills_with_sigsys(pyoci, bundle, new_id):
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_KILL_PROCESS"}],
    }
    result = pyoci.run(bundle(["mkdir", "/tmp/x"], patch=_seccomp(profile)), new_id())
    assert result.returncode == 128 + 31  # SIGSYS


def test_argument_conditions(pyoci, bundle, new_id):
    # kill(pid, SIGUSR1) is refused with EPERM; kill(pid, 0) (and other signals) still work.
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {
                "names": ["kill"],
                "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 1, "value": 10, "op": "SCMP_CMP_EQ"}],
            },
        ],
    }
    script = "kill -0 $$; echo zero=$?; kill -USR1 $$; echo usr1=$?"
    result = pyoci.run(bundle(script, patch=_seccomp(profile)), new_id())
    assert "zero=0" in result.stdout and "usr1=1" in result.stdout, result.stdout


def test_exec_gets_the_filter_too(pyoci, bundle, new_id):
    cid = new_id()
    b = bundle(["sleep", "100"], patch=_seccomp(DENY_MKDIR))
    assert pyoci.run(b, cid, "--detach").returncode == 0
    result = pyoci("exec", cid, "mkdir", "/tmp/x")
    assert result.returncode == 1 and "Operation not permitted" in result.stderr
    pyoci("delete", "--force", cid)


def _podman_to_oci(profile: dict, caps: set[str]) -> dict:
    """What podman does with its seccomp.json: keep the rules whose includes/excludes match
    this architecture and the container's capabilities."""
    arch = ARCH_ALIASES.get(os.uname().machine, os.uname().machine)
    native = {"amd64": "SCMP_ARCH_X86_64", "arm64": "SCMP_ARCH_AARCH64"}[arch]
    arches = [native]
    for entry in profile.get("archMap") or []:
        if entry["architecture"] == native:
            arches += entry.get("subArchitectures") or []
    rules = []
    for rule in profile["syscalls"]:
        inc, exc = rule.get("includes") or {}, rule.get("excludes") or {}
        if inc.get("arches") and arch not in inc["arches"]:
            continue
        if inc.get("caps") and not set(inc["caps"]) <= caps:
            continue
        if exc.get("arches") and arch in exc["arches"]:
            continue
        if exc.get("caps") and set(exc["caps"]) & caps:
            continue
        out = {"names": rule["names"], "action": rule["action"]}
        if rule.get("args"):
            out["args"] = rule["args"]
        if rule.get("errnoRet") is not None:
            out["errnoRet"] = rule["errnoRet"]
        rules.append(out)
    return {
        "defaultAction": profile["defaultAction"],
        "defaultErrnoRet": profile.get("defaultErrnoRet", 1),
        "architectures": arches,
        "syscalls": rules,
    }


def test_podman_default_profile(pyoci, bundle, new_id):
    if not PODMAN_PROFILE.exists():
        pytest.skip(f"{PODMAN_PROFILE} missing (Debian golang-github-containers-common)")
    caps = {"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}
    profile = _podman_to_oci(json.loads(PODMAN_PROFILE.read_text()), caps)
    script = (
        "echo ok > /tmp/f; cat /tmp/f; ls / > /dev/null && echo ls-ok; "
        "unshare -m true; echo unshare=$?"
    )
    result = pyoci.run(bundle(script, patch=_seccomp(profile)), new_id())
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split()
    assert lines[:2] == ["ok", "ls-ok"]
    assert lines[2] == "unshare=1"  # unshare needs CAP_SYS_ADMIN: the profile refuses it


def test_notify_sends_the_fd_to_the_listener(pyoci, bundle, new_id, tmp_path):
    listener_path = tmp_path / "listener.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(listener_path))
    server.listen(1)
    got: dict = {}

    def serve() -> None:
        conn, _ = server.accept()
        msg, ancdata, _, _ = conn.recvmsg(65536, socket.CMSG_SPACE(4))
        fds = array.array("i")
        for level, kind, data in ancdata:
            if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                fds.frombytes(data[: fds.itemsize])
        got["payload"] = json.loads(msg)
        got["fd"] = fds[0] if fds else -1
        os.close(fds[0])  # no supervisor: the notified syscall then fails with ENOSYS
        conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": str(listener_path),
        "listenerMetadata": "meta-data",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
    }
    cid = new_id()
    result = pyoci.run(bundle("sleep 0.3; mkdir /tmp/x; echo rc=$?", patch=_seccomp(profile)), cid)
    thread.join(10)
    server.close()
    assert got["fd"] >= 0
    assert got["payload"]["metadata"] == "meta-data"
    assert got["payload"]["fds"] == ["seccompFd"]
    assert got["payload"]["state"]["id"] == cid
    assert "rc=1" in result.stdout


@pytest.mark.parametrize(
    ("profile", "field"),
    [
        ({"defaultAction": "SCMP_ACT_NOPE"}, "linux.seccomp.defaultAction"),
        (
            {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["x"], "action": "BAD"}]},
            "linux.seccomp.syscalls[0].action",
        ),
        ({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_Z80"]},
         "linux.seccomp.architectures[0]"),
        ({"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_NOPE"]},
         "linux.seccomp.flags[0]"),
        ({"defaultAction": "SCMP_ACT_ALLOW",
          "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ERRNO",
                        "args": [{"index": 9, "value": 1, "op": "SCMP_CMP_EQ"}]}]},
         "linux.seccomp.syscalls[0].args[0].index"),
        ({"defaultAction": "SCMP_ACT_ALLOW",
          "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]},
         "linux.seccomp.listenerPath"),
    ],
)  # fmt: skip
def test_bad_seccomp_config(pyoci, bundle, new_id, profile, field):
    result = pyoci.create(bundle(["true"], patch=_seccomp(profile)), new_id())
    assert result.returncode == 1
    assert result.stderr.startswith(f"pyoci: {field}: ")
    assert len(result.stderr.splitlines()) == 1
    pyoci.assert_nothing_left()
