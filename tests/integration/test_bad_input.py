"""Bad input: one `pyoci: ...` line naming the field, exit 1, and nothing left behind (no state
dir entry, no process, no mount). The runner also fails any test whose output has a Python
traceback."""

from __future__ import annotations

import os

import pytest
from helpers import one_line_error


def _write_raw(text: str):
    def apply(b):
        b.config_path.write_text(text)

    return apply


def _set(path: str, value):
    """Set a dotted path (`process.args`, `mounts.0.destination`) in the config."""

    def apply(b):
        keys = path.split(".")
        node = b.config
        for key in keys[:-1]:
            node = node[int(key)] if isinstance(node, list) else node[key]
        last = keys[-1]
        if isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
        b.write()

    return apply


def _append_mount(mount: dict):
    def apply(b):
        b.config["mounts"].append(mount)
        b.write()

    return apply


def _missing_rootfs(b):
    b.config["root"]["path"] = str(b.path / "no-such-rootfs")
    b.write()


def _no_config(b):
    b.config_path.unlink()


def _duplicate_namespace(b):
    b.config["linux"]["namespaces"].append({"type": "pid"})
    b.write()


def _no_uts_with_hostname(b):
    b.config["linux"]["namespaces"] = [
        ns for ns in b.config["linux"]["namespaces"] if ns["type"] != "uts"
    ]
    b.write()


# case id → (change to a valid bundle, words the one-line message must contain)
CASES = {
    "malformed-json": (
        _write_raw('{\n  "ociVersion": "1.2.0",\n  "root": {"path": "rootfs",}\n}\n'),
        ["config.json", "line 3", "column"],
    ),
    "not-an-object": (_write_raw("[1, 2]\n"), ["must be an object"]),
    "no-config": (_no_config, ["config.json"]),
    "args-not-an-array": (_set("process.args", "sh"), ["process.args"]),
    "args-empty": (_set("process.args", []), ["process.args"]),
    "missing-rootfs": (_missing_rootfs, ["root.path"]),
    "rootfs-not-a-string": (_set("root.path", 7), ["root.path"]),
    "missing-binary": (
        _set("process.args", ["nosuch", "arg"]),
        ['exec: "nosuch": executable file not found in $PATH'],
    ),
    "missing-binary-by-path": (
        _set("process.args", ["/bin/nosuch"]),
        ['exec: "/bin/nosuch"', "no such file or directory"],
    ),
    "binary-not-executable": (
        _set("process.args", ["/etc/passwd"]),
        ['exec: "/etc/passwd"', "permission denied"],
    ),
    "unknown-mount-type": (
        _append_mount({"destination": "/tmp", "type": "nosuchfs", "source": "none"}),
        ["mounts[7].type"],
    ),
    "bind-mount-missing-source": (
        _append_mount({"destination": "/tmp", "type": "bind", "source": "/no/such/dir"}),
        ["mounts[7].source"],
    ),
    "unknown-namespace": (
        _set("linux.namespaces.0.type", "pidd"),
        ["linux.namespaces[0].type"],
    ),
    "duplicate-namespace": (_duplicate_namespace, ["linux.namespaces[5].type"]),
    "hostname-without-uts": (_no_uts_with_hostname, ["hostname"]),
    "unknown-capability": (
        _set("process.capabilities.bounding", ["CAP_NOPE"]),
        ["process.capabilities.bounding[0]"],
    ),
    "bad-tmpfs-option": (
        _append_mount(
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=lots"]}
        ),
        ["mounts[7]"],
    ),
    "hostname-too-long": (_set("hostname", "h" * 100), ["hostname"]),
    "unknown-sysctl": (_set("linux.sysctl", {"net.ipv4.nosuch": "1"}), ["linux.sysctl"]),
    "host-sysctl": (_set("linux.sysctl", {"vm.swappiness": "10"}), ["linux.sysctl"]),
    "cwd-not-a-directory": (_set("process.cwd", "/etc/passwd"), ["process.cwd"]),
    "cwd-relative": (_set("process.cwd", "etc"), ["process.cwd"]),
    "bad-rlimit": (
        _set("process.rlimits", [{"type": "RLIMIT_NOPE", "soft": 1, "hard": 1}]),
        ["process.rlimits[0].type"],
    ),
    # F15 (the fuzzer, a larger run of the fixed seed): `internal error: OverflowError: gid is
    # less than minimum` from setgroups; the schema said so, create did not check.
    "negative-additional-gid": (
        _set("process.user.additionalGids", [10, -7383]),
        ["process.user.additionalGids[1]", "out of range"],
    ),
    "additional-gid-over-gid_t": (
        _set("process.user.additionalGids", [2**32]),
        ["process.user.additionalGids[0]", "out of range"],
    ),
    # Where `pyoci validate` said the config was wrong and create went on (found by comparing
    # the two on fuzzed configs): a null entry of a resources array was an internal error, a
    # hugepage limit without `limit` was written as 0 (no hugepages at all), and an empty
    # mount destination mounted over the whole rootfs (`exec: "true": ... not found`).
    "null-hugepage-limit": (
        _set("linux.resources", {"hugepageLimits": [None]}),
        ["linux.resources.hugepageLimits[0]: must be an object, not null"],
    ),
    "null-throttle-entry": (
        _set("linux.resources", {"blockIO": {"throttleReadBpsDevice": [None]}}),
        ["linux.resources.blockIO.throttleReadBpsDevice[0]: must be an object, not null"],
    ),
    "null-weight-device": (
        _set("linux.resources", {"blockIO": {"weightDevice": [None]}}),
        ["linux.resources.blockIO.weightDevice[0]: must be an object, not null"],
    ),
    "null-net-priority": (
        _set("linux.resources", {"network": {"priorities": [None]}}),
        ["linux.resources.network.priorities[0]: must be an object, not null"],
    ),
    "hugepage-limit-without-limit": (
        _set("linux.resources", {"hugepageLimits": [{"pageSize": "2MB"}]}),
        ["linux.resources.hugepageLimits[0].limit: is required"],
    ),
    "hugepage-limit-without-page-size": (
        _set("linux.resources", {"hugepageLimits": [{"limit": 4096}]}),
        ["linux.resources.hugepageLimits[0].pageSize: is required"],
    ),
    "empty-mount-destination": (
        _set("mounts.1.destination", ""),
        ["mounts[1].destination: must not be empty"],
    ),
    "seccomp-syscall-name-a-number": (
        _set(
            "linux.seccomp",
            {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": [5], "action": "SCMP_ACT_ERRNO"}],
            },
        ),
        ["linux.seccomp.syscalls[0].names[0]: must be a string, not an integer"],
    ),  # fmt: skip
    "scheduler-policy-an-object": (
        _set("process.scheduler", {"policy": {}}),
        ["process.scheduler.policy: must be a string, not an object"],
    ),
    # What the config quotes back stays on the one line, escaped: a newline would split the
    # error podman reads, an escape sequence would drive the user's terminal.
    "newline-in-an-enum": (
        _set("linux.namespaces.0.type", "pid\nmount"),
        ["linux.namespaces[0].type", "pid\\nmount"],
    ),
    "escape-sequence-in-a-path": (
        _set("process.cwd", "rel\x1b[2J"),
        ["process.cwd", "[2J"],
    ),
    "newline-in-a-binary-name": (
        _set("process.args", ["no\nsuch"]),
        ['exec: "no\\nsuch"'],
    ),
}


@pytest.mark.parametrize("command", ["create", "run"])
@pytest.mark.parametrize("case", list(CASES))
def test_bad_config(pyoci, bundle, new_id, state_root, command, case):
    change, words = CASES[case]
    b = bundle(["true"])
    change(b)
    pid_file = b.path / "init.pid"
    result = pyoci(command, "--bundle", str(b.path), "--pid-file", str(pid_file), new_id())
    assert result.returncode == 1, result.stderr
    message = one_line_error(result.stderr)
    assert message.isprintable(), f"a control character reached the terminal: {message!r}"
    for word in words:
        assert word in message, message
    assert result.stdout == ""
    assert not pid_file.exists()
    pyoci.assert_nothing_left()


def test_existing_id(pyoci, bundle, new_id, state_root):
    cid = new_id()
    b = bundle(["sleep", "100"])
    pyoci.create_ok(b, cid)
    before = pyoci.state(cid)
    files_before = sorted(os.listdir(state_root / cid))
    processes_before = pyoci.processes()

    for command in ("create", "run"):
        again = pyoci(command, "--bundle", str(b.path), cid)
        assert again.returncode == 1
        message = one_line_error(again.stderr)
        assert cid in message and "already exists" in message, message

    assert pyoci.state(cid) == before, "the first container must be untouched"
    assert sorted(os.listdir(state_root / cid)) == files_before
    assert pyoci.processes() == processes_before, "the failed create left a process"
    assert pyoci("start", cid).returncode == 0
    assert pyoci.state(cid)["status"] == "running"
    assert pyoci("delete", "--force", cid).returncode == 0
    pyoci.assert_nothing_left()


@pytest.mark.parametrize("cid", ["a/b", "..", ".", "../escape", "/abs", "", ".hidden"])
@pytest.mark.parametrize("command", ["create", "run"])
def test_invalid_id(pyoci, bundle, tmp_path, state_root, command, cid):
    b = bundle(["true"])
    result = pyoci(command, "--bundle", str(b.path), cid)
    assert result.returncode == 1
    message = one_line_error(result.stderr)
    assert "container id" in message and "invalid" in message, message
    assert repr(cid) in message or f'"{cid}"' in message, message
    assert not (tmp_path / "escape").exists()
    assert not os.path.exists("/abs")
    pyoci.assert_nothing_left()


@pytest.mark.parametrize("command", ["state", "start", "kill", "delete"])
def test_invalid_id_in_other_commands(pyoci, command):
    result = pyoci(command, "../x")
    assert result.returncode == 1
    assert "invalid" in one_line_error(result.stderr)


def test_bad_signal(pyoci, bundle, new_id):
    cid = new_id()
    pyoci.create_ok(bundle(["sleep", "100"]), cid)
    result = pyoci("kill", cid, "NOPE")
    assert result.returncode == 1
    assert "NOPE" in one_line_error(result.stderr)
    assert pyoci.state(cid)["status"] == "created"
