"""OCI hooks: each runs at its moment, in its namespace, with the state on stdin (config.md
"POSIX-platform Hooks", runtime.md "Lifecycle")."""

from __future__ import annotations

import json
import os
from pathlib import Path

RECORDER = """#!/bin/sh
# $1: hook name, $2: log file. Records the hook name, the state it got, and its namespaces.
state=$(cat)
printf '%s\\t%s\\t%s\\t%s\\n' "$1" "$state" "$(readlink /proc/self/ns/net)" \\
    "$(readlink /proc/self/ns/mnt)" >> "$2"
"""

HOST_NAMES = ("prestart", "createRuntime", "poststart", "poststop")


def _recorder(tmp_path: Path) -> tuple[Path, Path]:
    script = tmp_path / "record.sh"
    script.write_text(RECORDER)
    script.chmod(0o755)
    return script, tmp_path / "hooks.log"


def _hooks(script: Path, log: Path, names: tuple[str, ...]) -> dict:
    return {n: [{"path": str(script), "args": ["record.sh", n, str(log)]}] for n in names}


def _records(log: Path) -> list[tuple[str, dict, str, str]]:
    out = []
    for line in log.read_text().splitlines():
        name, state, net, mnt = line.split("\t")
        out.append((name, json.loads(state), net, mnt))
    return out


def test_hooks_order_status_and_namespaces(pyoci, bundle, new_id, tmp_path):
    script, log = _recorder(tmp_path)
    names = ("prestart", "createRuntime", "createContainer", "poststart", "poststop")
    b = bundle(["true"], hooks=_hooks(script, log, names))
    cid = new_id()
    result = pyoci.run(b, cid)
    assert result.returncode == 0, result.stderr
    records = _records(log)
    assert [r[0] for r in records] == list(names)
    host_net = os.readlink("/proc/self/ns/net")
    host_mnt = os.readlink("/proc/self/ns/mnt")
    expected_status = {
        "prestart": "creating",
        "createRuntime": "creating",
        "createContainer": "creating",
        "poststart": "running",
        "poststop": "stopped",
    }
    for name, state, net, mnt in records:
        assert state["id"] == cid
        assert state["status"] == expected_status[name], name
        assert state["bundle"] == str(b.path)
        assert "ociVersion" in state
        if name in HOST_NAMES:
            assert (net, mnt) == (host_net, host_mnt), f"{name} must run in the runtime namespace"
        else:
            assert net != host_net and mnt != host_mnt, f"{name} must run in the container"
    pids = {name: state["pid"] for name, state, _, _ in records}
    assert pids["createRuntime"] == pids["createContainer"] == pids["poststart"] > 0


def test_start_container_hook_runs_inside_after_start(pyoci, bundle, new_id, tmp_path):
    # startContainer's path resolves in the container: /bin/sh of the busybox rootfs, writing
    # to a host directory bind-mounted at /hooklog.
    logdir = tmp_path / "logdir"
    logdir.mkdir()
    mount = {"destination": "/hooklog", "type": "bind", "source": str(logdir), "options": ["rbind"]}
    hook = {
        "path": "/bin/sh",
        "args": ["sh", "-c", "cat > /hooklog/state; readlink /proc/self/ns/pid > /hooklog/ns"],
    }

    def patch(config: dict) -> None:
        config["mounts"].append(mount)
        config["hooks"] = {"startContainer": [hook]}

    cid = new_id()
    b = bundle(["sleep", "100"], patch=patch, private=True)  # /hooklog: its own mount point
    assert pyoci.create(b, cid).returncode == 0
    assert not (logdir / "state").exists(), "startContainer ran before start"
    start = pyoci("start", cid)
    assert start.returncode == 0, start.stderr
    state = json.loads((logdir / "state").read_text())
    assert state["status"] == "created"
    pid = pyoci.state(cid)["pid"]
    assert (logdir / "ns").read_text().strip() == os.readlink(f"/proc/{pid}/ns/pid")
    assert pyoci("delete", "--force", cid).returncode == 0
    pyoci.assert_nothing_left()


def test_failing_create_runtime_hook_fails_create_and_runs_poststop(
    pyoci, bundle, new_id, tmp_path
):
    script, log = _recorder(tmp_path)
    hooks = _hooks(script, log, ("poststop",))
    hooks["createRuntime"] = [{"path": "/bin/false"}]
    b = bundle(["true"], hooks=hooks)
    cid = new_id()
    result = pyoci.create(b, cid)
    assert result.returncode == 1
    assert result.stderr.startswith("pyoci: hooks.createRuntime[0]: /bin/false failed")
    assert len(result.stderr.splitlines()) == 1
    assert [r[0] for r in _records(log)] == ["poststop"]
    pyoci.assert_nothing_left()


def test_failing_start_container_hook_fails_start(pyoci, bundle, new_id):
    hooks = {"startContainer": [{"path": "/bin/false"}]}
    b = bundle(["sleep", "100"], hooks=hooks)
    cid = new_id()
    assert pyoci.create(b, cid).returncode == 0
    result = pyoci("start", cid)
    assert result.returncode == 1
    assert "hooks.startContainer[0]: /bin/false failed: exit status 1" in result.stderr
    # runtime-spec 1.3.0: stopped, and the lifecycle continues at step 12 (destroyed)
    assert pyoci("state", cid).returncode != 0
    pyoci.assert_nothing_left()


def test_hook_timeout_kills_the_hook_and_fails_create(pyoci, bundle, new_id, tmp_path):
    hooks = {"createRuntime": [{"path": "/bin/sleep", "args": ["sleep", "30"], "timeout": 1}]}
    b = bundle(["true"], hooks=hooks)
    result = pyoci.create(b, new_id())
    assert result.returncode == 1
    assert "hooks.createRuntime[0]: /bin/sleep timed out after 1s" in result.stderr
    pyoci.assert_nothing_left()


def test_failing_poststop_hook_only_warns(pyoci, bundle, new_id):
    hooks = {"poststop": [{"path": "/bin/false"}]}
    b = bundle(["true"], hooks=hooks)
    result = pyoci.run(b, new_id())
    assert result.returncode == 0
    assert "warning: hooks.poststop[0]" in result.stderr
    pyoci.assert_nothing_left()


def test_failing_poststart_hook_is_an_error_and_stops_the_container(
    pyoci, bundle, new_id, tmp_path
):
    """runtime-spec 1.3.0 (changed from 1.2's warning): "If any poststart hook fails, the
    runtime MUST generate an error, stop the container, and continue the lifecycle at step
    12": the container is destroyed (step 12) and the poststop hooks run (step 13)."""
    mark = tmp_path / "poststop-ran"
    hooks = {
        "poststart": [{"path": "/bin/false"}],
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", f"touch {mark}"]}],
    }
    b = bundle(["sleep", "100"], hooks=hooks)
    cid = new_id()
    pyoci.create_ok(b, cid)
    result = pyoci("start", cid)
    assert result.returncode == 1
    assert "hooks.poststart[0]" in result.stderr and "stopped" in result.stderr
    assert pyoci("state", cid).returncode != 0  # destroyed, not left for a delete
    assert mark.exists(), "poststop ran"
    pyoci.assert_nothing_left()


def test_hook_env_and_args_are_passed(pyoci, bundle, new_id, tmp_path):
    out = tmp_path / "env.out"
    hook = {
        "path": "/bin/sh",
        "args": ["sh", "-c", f'echo "$0 $1 $HOOKVAR" > {out}', "arg0", "arg1"],
        "env": ["HOOKVAR=hello"],
    }
    b = bundle(["true"], hooks={"createRuntime": [hook]})
    assert pyoci.run(b, new_id()).returncode == 0
    assert out.read_text() == "arg0 arg1 hello\n"
