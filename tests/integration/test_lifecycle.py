"""create → start → kill → delete, state, list, pid file and log file, as the tools use them."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

import pytest
from helpers import one_line_error

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return False
    return not data[data.rindex(b")") + 2 :].startswith((b"Z", b"X"))


def _comm(pid: int) -> str:
    with open(f"/proc/{pid}/comm") as f:
        return f.read().strip()


def _caught_signals(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("SigCgt:"):
                return int(line.split()[1], 16)
    return 0


def test_full_lifecycle(pyoci, bundle, new_id, tmp_path, state_root):
    cid = new_id()
    b = bundle(["sleep", "100"])
    pid_file = tmp_path / "init.pid"
    created = pyoci.create(b, cid, "--pid-file", str(pid_file))
    assert created.returncode == 0, created.stderr
    assert created.stdout == "" and created.stderr == ""

    st = pyoci.state(cid)
    assert st["status"] == "created"
    assert st["id"] == cid
    assert st["pid"] > 0
    assert st["ociVersion"].startswith("1.")
    assert st["bundle"] == str(b.path)
    assert os.path.isabs(st["rootfs"])
    assert RFC3339.match(st["created"]), st["created"]
    assert st["owner"] == ""  # as runc's state: the owner is `list`'s column
    assert st["annotations"] == {"org.pyoci.bundle": "busybox"}
    assert pid_file.read_bytes() == str(st["pid"]).encode(), "pid file: the pid, no newline"
    assert _alive(st["pid"])
    assert (state_root / cid).is_dir()

    started = pyoci("start", cid)
    assert started.returncode == 0, started.stderr
    assert started.stdout == "" and started.stderr == ""
    st2 = pyoci.state(cid)
    assert st2["status"] == "running"
    assert st2["pid"] == st["pid"]
    assert _comm(st["pid"]) == "sleep"

    killed = pyoci("kill", cid, "KILL")
    assert killed.returncode == 0, killed.stderr
    st3 = pyoci.wait_status(cid, "stopped")
    assert st3["id"] == cid

    deleted = pyoci("delete", cid)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout == "" and deleted.stderr == ""
    assert not (state_root / cid).exists()
    gone = pyoci("state", cid)
    assert gone.returncode == 1
    assert one_line_error(gone.stderr) == f'pyoci: container "{cid}" does not exist'
    pyoci.assert_nothing_left()


@pytest.mark.parametrize("signal", ["KILL", "SIGKILL", "9"])
def test_kill_signal_forms(pyoci, bundle, new_id, signal):
    cid = new_id()
    pyoci.create_ok(bundle(["sleep", "100"]), cid)
    assert pyoci("start", cid).returncode == 0
    pid = pyoci.state(cid)["pid"]
    killed = pyoci("kill", cid, signal)
    assert killed.returncode == 0, killed.stderr
    pyoci.wait_status(cid, "stopped")
    assert not _alive(pid)
    assert pyoci("delete", cid).returncode == 0
    pyoci.assert_nothing_left()


def test_kill_default_signal_is_term(pyoci, bundle, new_id):
    """sh as PID 1 ignores SIGTERM unless it traps it: the trap proves TERM was sent."""
    cid = new_id()
    b = bundle("trap 'exit 0' TERM; while :; do sleep 0.05; done")
    pyoci.create_ok(b, cid)
    assert pyoci("start", cid).returncode == 0
    pid = pyoci.wait_status(cid, "running")["pid"]
    deadline = time.monotonic() + 10
    while not _caught_signals(pid) & (1 << (15 - 1)):  # wait until sh has installed its trap
        assert time.monotonic() < deadline, "sh never trapped SIGTERM"
        time.sleep(0.01)
    killed = pyoci("kill", cid)
    assert killed.returncode == 0, killed.stderr
    pyoci.wait_status(cid, "stopped")


def test_kill_of_stopped_container_says_not_running(pyoci, bundle, new_id):
    cid = new_id()
    pyoci.create_ok(bundle("true"), cid)
    assert pyoci("start", cid).returncode == 0
    pyoci.wait_status(cid, "stopped")
    for signal in ("KILL", "9", "TERM"):
        result = pyoci("kill", cid, signal)
        assert result.returncode != 0
        assert "container not running" in one_line_error(result.stderr)
    assert pyoci("delete", cid).returncode == 0


def test_kill_of_created_container(pyoci, bundle, new_id):
    cid = new_id()
    pyoci.create_ok(bundle(["sleep", "100"]), cid)
    result = pyoci("kill", cid, "KILL")
    assert result.returncode == 0, result.stderr
    pyoci.wait_status(cid, "stopped")
    start = pyoci("start", cid)
    assert start.returncode == 1
    assert "stopped" in one_line_error(start.stderr)
    assert pyoci("delete", cid).returncode == 0
    pyoci.assert_nothing_left()


@pytest.mark.parametrize("start", [False, True], ids=["created", "running"])
def test_delete_of_live_container_fails_and_force_works(pyoci, bundle, new_id, state_root, start):
    cid = new_id()
    pyoci.create_ok(bundle(["sleep", "100"]), cid)
    if start:
        assert pyoci("start", cid).returncode == 0
    status = "running" if start else "created"
    pid = pyoci.state(cid)["pid"]

    refused = pyoci("delete", cid)
    assert refused.returncode == 1
    message = one_line_error(refused.stderr)
    assert cid in message and status in message, message
    st = pyoci.state(cid)
    assert (st["status"], st["pid"]) == (status, pid), "a refused delete must change nothing"
    assert _alive(pid)

    forced = pyoci("delete", "--force", cid)
    assert forced.returncode == 0, forced.stderr
    assert forced.stderr == ""
    assert not _alive(pid)
    assert not (state_root / cid).exists()
    pyoci.assert_nothing_left()


def test_delete_force_of_unknown_id_is_silent(pyoci, new_id):
    for flag in ("--force", "-f"):
        result = pyoci("delete", flag, new_id("gone"))
        assert result.returncode == 0
        assert result.stdout == "" and result.stderr == ""


@pytest.mark.parametrize("command", ["state", "start", "kill", "delete"])
def test_unknown_id_does_not_exist(pyoci, command):
    result = pyoci(command, "no-such-container")
    assert result.returncode == 1
    assert one_line_error(result.stderr) == 'pyoci: container "no-such-container" does not exist'
    assert result.stdout == ""


def test_start_twice_fails(pyoci, bundle, new_id):
    cid = new_id()
    pyoci.create_ok(bundle(["sleep", "100"]), cid)
    assert pyoci("start", cid).returncode == 0
    again = pyoci("start", cid)
    assert again.returncode == 1
    assert "running" in one_line_error(again.stderr)
    assert pyoci.state(cid)["status"] == "running"


def test_create_without_process_then_start_fails_clearly(pyoci, bundle, new_id):
    cid = new_id()
    b = bundle(patch=lambda c: c.pop("process"))
    created = pyoci.create(b, cid)
    assert created.returncode == 0, created.stderr
    assert pyoci.state(cid)["status"] == "created"
    started = pyoci("start", cid)
    assert started.returncode == 1
    message = one_line_error(started.stderr)
    assert cid in message and "process" in message, message
    assert pyoci.state(cid)["status"] == "created"
    assert pyoci("delete", "--force", cid).returncode == 0
    pyoci.assert_nothing_left()


def test_process_stays_blocked_until_start(pyoci, bundle, new_id):
    cid = new_id()
    b = bundle("echo started > /started", readonly=False)
    marker = b.rootfs / "started"
    pyoci.create_ok(b, cid)
    time.sleep(0.3)
    assert not marker.exists(), "the user process ran before start"
    assert pyoci.state(cid)["status"] == "created"
    assert pyoci("start", cid).returncode == 0
    pyoci.wait_status(cid, "stopped")
    assert marker.read_text() == "started\n"
    assert pyoci("delete", cid).returncode == 0


def test_container_output_goes_to_the_stdio_of_create(pyoci, bundle, new_id):
    cid = new_id()
    b = bundle("echo to-stdout; echo to-stderr >&2")
    out = pyoci.workdir / "create.out"
    err = pyoci.workdir / "create.err"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.run(
            pyoci.argv(("create", "--bundle", str(b.path), cid)), stdout=o, stderr=e, check=False
        )
    assert proc.returncode == 0, err.read_text()
    assert pyoci("start", cid).returncode == 0
    pyoci.wait_status(cid, "stopped")
    assert out.read_text() == "to-stdout\n"
    assert err.read_text() == "to-stderr\n"
    assert pyoci("delete", cid).returncode == 0


def test_run_detach_then_delete(pyoci, bundle, new_id, tmp_path):
    cid = new_id()
    pid_file = tmp_path / "run.pid"
    result = pyoci.run(bundle(["sleep", "100"]), cid, "--detach", "--pid-file", str(pid_file))
    assert result.returncode == 0, result.stderr
    st = pyoci.state(cid)
    assert st["status"] == "running"
    assert pid_file.read_text() == str(st["pid"])
    assert pyoci("delete", "--force", cid).returncode == 0
    pyoci.assert_nothing_left()


def test_list_table_and_json(pyoci, bundle, new_id):
    empty = pyoci("list")
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]

    first, second = new_id("a"), new_id("b")
    b = bundle(["sleep", "100"])
    pyoci.create_ok(b, first)
    pyoci.create_ok(b, second)
    assert pyoci("start", second).returncode == 0
    pids = {cid: pyoci.state(cid)["pid"] for cid in (first, second)}

    table = pyoci("list")
    assert table.returncode == 0, table.stderr
    header, *rows = table.stdout.splitlines()
    assert header.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    parsed = {row.split()[0]: row.split() for row in rows}
    assert set(parsed) == {first, second}
    assert parsed[first][1:4] == [str(pids[first]), "created", str(b.path)]
    assert parsed[second][1:4] == [str(pids[second]), "running", str(b.path)]
    assert parsed[first][-1] == parsed[second][-1] == "root"

    as_json = pyoci("list", "--format", "json")
    assert as_json.returncode == 0, as_json.stderr
    entries = {e["id"]: e for e in json.loads(as_json.stdout)}
    assert set(entries) == {first, second}
    assert (entries[first]["status"], entries[first]["pid"]) == ("created", pids[first])
    assert (entries[second]["status"], entries[second]["pid"]) == ("running", pids[second])
    assert entries[first]["bundle"] == str(b.path)
    assert entries[first]["owner"] == "root"

    quiet = pyoci("list", "-q")
    assert quiet.stdout.split() == sorted([first, second])
    for cid in (first, second):
        assert pyoci("delete", "--force", cid).returncode == 0
    assert pyoci("list", "--format", "json").stdout.strip() == "[]"


@pytest.mark.parametrize("form", ["separate", "equals"])
def test_log_file_json_on_error(pyoci, tmp_path, form):
    log = tmp_path / "log.json"
    flags = (
        ("--log", str(log), "--log-format", "json")
        if form == "separate"
        else (f"--log={log}", "--log-format=json")
    )
    result = pyoci("state", "no-such-container", global_args=flags)
    assert result.returncode == 1
    lines = log.read_text().splitlines()
    assert lines, "the log file must say what failed"
    for line in lines:
        entry = json.loads(line)  # exactly one JSON object per line
        assert isinstance(entry, dict)
        assert {"level", "msg", "time"} <= set(entry), entry
        assert RFC3339.match(entry["time"]), entry["time"]
    errors = [json.loads(line) for line in lines if json.loads(line)["level"] == "error"]
    assert errors[-1]["msg"] == 'container "no-such-container" does not exist'


def test_log_file_json_on_create_error_in_the_container(pyoci, bundle, new_id, tmp_path):
    """An error found by the container's init (after the fork) reaches the log file too."""
    log = tmp_path / "oci-log"
    b = bundle(["nosuch"])
    result = pyoci(
        "create",
        "--bundle",
        str(b.path),
        new_id(),
        global_args=("--log", str(log), "--log-format", "json"),
    )
    assert result.returncode == 1
    lines = log.read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    assert all({"level", "msg", "time"} <= set(e) for e in entries), entries
    assert entries[-1]["level"] == "error"
    assert 'exec: "nosuch": executable file not found in $PATH' in entries[-1]["msg"]
    pyoci.assert_nothing_left()


def test_log_file_text_quotes_the_message_as_logrus_does(pyoci, bundle, new_id, tmp_path):
    """Text format (runc's default): one `time=".." level=.. msg=".."` line per message, the
    message quoted so that a `"` or a newline from the config cannot end the value or the line
    (a log reader would take the rest for other fields or another entry)."""
    log = tmp_path / "log.txt"
    b = bundle(['no"such\ncommand'])
    result = pyoci("create", "--bundle", str(b.path), new_id(), global_args=("--log", str(log)))
    assert result.returncode == 1
    said = one_line_error(result.stderr).removeprefix("pyoci: ")
    assert 'no\\"such\\ncommand' not in said and '"no"such\\ncommand"' in said, said
    lines = log.read_text().splitlines()
    assert lines, "the log file must say what failed"
    entry = re.fullmatch(r'time="([^"]+)" level=(\w+) msg="((?:[^"\\]|\\.)*)"', lines[-1])
    assert entry, lines[-1]
    assert RFC3339.match(entry[1]) and entry[2] == "error"
    assert json.loads(f'"{entry[3]}"') == said  # logfmt's escapes are JSON's for these
    pyoci.assert_nothing_left()


def test_version(pyoci):
    result = pyoci("--version")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("pyoci version ")
    assert any(line.startswith("spec: 1.") for line in lines)


def test_kill_all(pyoci, bundle, new_id):
    cid = new_id()
    pyoci.create_ok(bundle("sleep 100 & sleep 100 & wait"), cid)
    assert pyoci("start", cid).returncode == 0
    pyoci.wait_status(cid, "running")
    result = pyoci("kill", "--all", cid, "KILL")
    assert result.returncode == 0, result.stderr
    pyoci.wait_status(cid, "stopped")
    assert pyoci("delete", cid).returncode == 0
    pyoci.assert_nothing_left()


def test_bundle_defaults_to_cwd_and_relative_paths(pyoci, bundle, new_id):
    """As containerd calls it: cwd is the bundle, root.path is relative, --pid-file relative."""
    cid = new_id()
    b = bundle(["sleep", "100"], private=True)
    assert b.config["root"]["path"] == "rootfs"
    result = pyoci("create", "--pid-file", "init.pid", cid, cwd=b.path)
    assert result.returncode == 0, result.stderr
    st = pyoci.state(cid)
    assert st["bundle"] == str(b.path)
    assert st["rootfs"] == str(b.rootfs)
    assert (b.path / "init.pid").read_text() == str(st["pid"])
    assert pyoci("delete", "--force", cid).returncode == 0


@pytest.mark.parametrize("flag", ["--bundle", "-b", "--bundle="])
def test_relative_bundle_flag(pyoci, bundle, new_id, tmp_path, flag):
    cid = new_id()
    b = bundle(["sleep", "100"])
    relative = os.path.relpath(b.path, tmp_path)
    args = (flag + relative,) if flag.endswith("=") else (flag, relative)
    result = pyoci("create", *args, cid, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert pyoci.state(cid)["bundle"] == str(b.path)
    assert pyoci("delete", "--force", cid).returncode == 0


def test_run_keep_leaves_a_stopped_container(pyoci, bundle, new_id, state_root):
    cid = new_id()
    result = pyoci.run(bundle("exit 3"), cid, "--keep")
    assert result.returncode == 3, result.stderr
    assert pyoci.state(cid)["status"] == "stopped"
    assert pyoci("delete", cid).returncode == 0
    assert not (state_root / cid).exists()


def test_run_detach_of_a_failing_process(pyoci, bundle, new_id):
    cid = new_id()
    result = pyoci.run(bundle("exit 3"), cid, "--detach")
    assert result.returncode == 0, result.stderr
    pyoci.wait_status(cid, "stopped")
    assert pyoci("delete", cid).returncode == 0
