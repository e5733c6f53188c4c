"""`pyoci exec` and the minimal init (`--init`), checked from inside the container."""

from __future__ import annotations

import json
import os
import time

import pytest


def _running(pyoci, bundle, new_id, **kwargs) -> str:
    cid = new_id()
    b = bundle(["sleep", "1000"], **kwargs)
    assert pyoci.run(b, cid, "--detach").returncode == 0
    return cid


def test_exec_joins_the_container_namespaces(pyoci, bundle, new_id):
    cid = _running(pyoci, bundle, new_id, hostname="exec-box")
    init_pid = pyoci.state(cid)["pid"]
    result = pyoci("exec", cid, "sh", "-c", "hostname; readlink /proc/self/ns/net; ls /proc")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "exec-box"
    assert lines[1] == os.readlink(f"/proc/{init_pid}/ns/net")
    assert "1" in lines[2:], "the container's init (pid 1) must be visible"
    assert pyoci("delete", "--force", cid).returncode == 0
    pyoci.assert_nothing_left()


def test_exec_exit_code_user_env_cwd(pyoci, bundle, new_id):
    cid = _running(pyoci, bundle, new_id)
    result = pyoci(
        "exec", "--user", "1000:100", "--env", "GREETING=hi", "--cwd", "/tmp", cid,
        "sh", "-c", "id -u; id -g; pwd; echo $GREETING; exit 9",
    )  # fmt: skip
    assert result.returncode == 9
    assert result.stdout.split() == ["1000", "100", "/tmp", "hi"]
    named = pyoci("exec", "-u", "user", cid, "id", "-u")
    assert named.stdout.strip() == "1000"
    pyoci("delete", "--force", cid)


def test_exec_process_file_as_conmon_sends_it(pyoci, bundle, new_id, tmp_path):
    cid = _running(pyoci, bundle, new_id)
    process = {
        "args": ["sh", "-c", "echo $FROMFILE; grep NoNewPrivs /proc/self/status"],
        "env": ["PATH=/bin", "FROMFILE=yes"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
        "noNewPrivileges": True,
    }
    pfile = tmp_path / "process.json"
    pfile.write_text(json.dumps(process))
    result = pyoci("exec", "--process", str(pfile), cid)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["yes", "NoNewPrivs:", "1"]
    pyoci("delete", "--force", cid)


def test_exec_detach_writes_pid_file(pyoci, bundle, new_id, tmp_path):
    cid = _running(pyoci, bundle, new_id)
    pid_file = tmp_path / "exec.pid"
    result = pyoci("exec", "--detach", "--pid-file", str(pid_file), cid, "sleep", "100")
    assert result.returncode == 0, result.stderr
    pid = int(pid_file.read_text())
    assert not pid_file.read_text().endswith("\n")
    init_pid = pyoci.state(cid)["pid"]
    assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{init_pid}/ns/pid")
    pyoci("delete", "--force", cid)
    pyoci.assert_nothing_left()


def test_exec_whose_final_execve_fails_is_no_success(pyoci, bundle, new_id, tmp_path):
    """An executable file the kernel cannot run (no format it knows) passes the lookup and
    fails only at pyoci-exec's execve, after the socket used to close. F16: `exec --detach`
    then said success and wrote the pid file; now pyoci-exec sends its error line on the
    socket: one line, exit 1, no pid file."""
    b = bundle(["sleep", "1000"], private=True)
    garbage = b.rootfs / "garbage"
    garbage.write_bytes(b"\x00\x01 not a program\n")
    garbage.chmod(0o755)
    cid = new_id()
    assert pyoci.run(b, cid, "--detach").returncode == 0
    pid_file = tmp_path / "exec.pid"
    for detach in (["--detach", "--pid-file", str(pid_file)], []):
        result = pyoci("exec", *detach, cid, "/garbage")
        assert result.returncode == 1, (detach, result)
        assert result.stderr == 'pyoci: exec: "/garbage": exec format error\n', result.stderr
    assert not pid_file.exists()
    assert pyoci("exec", "--detach", "--pid-file", str(pid_file), cid, "true").returncode == 0
    assert pid_file.exists()
    pyoci("delete", "--force", cid)
    pyoci.assert_nothing_left()


def test_exec_cap_adds_a_capability(pyoci, bundle, new_id):
    cid = _running(pyoci, bundle, new_id)
    plain = pyoci("exec", cid, "grep", "CapEff", "/proc/self/status").stdout.split()[1]
    added = pyoci("exec", "--cap", "CAP_NET_RAW", cid, "grep", "CapEff", "/proc/self/status")
    assert int(added.stdout.split()[1], 16) == int(plain, 16) | (1 << 13)
    bad = pyoci("exec", "--cap", "CAP_NOPE", cid, "true")
    assert bad.returncode == 1 and "CAP_NOPE" in bad.stderr
    pyoci("delete", "--force", cid)


def test_exec_errors(pyoci, bundle, new_id):
    cid = _running(pyoci, bundle, new_id)
    missing = pyoci("exec", cid, "nosuchbin")
    assert missing.returncode == 1
    assert missing.stderr == 'pyoci: exec: "nosuchbin": executable file not found in $PATH\n'
    nouser = pyoci("exec", "-u", "ghost", cid, "true")
    assert nouser.returncode == 1 and "unable to find user ghost" in nouser.stderr
    assert pyoci("kill", cid, "KILL").returncode == 0
    pyoci.wait_status(cid, "stopped")
    stopped = pyoci("exec", cid, "true")
    assert stopped.returncode == 1 and "container not running" in stopped.stderr
    unknown = pyoci("exec", "nosuch-id", "true")
    assert 'container "nosuch-id" does not exist' in unknown.stderr
    pyoci("delete", cid)
    pyoci.assert_nothing_left()


def test_init_forwards_signals_and_propagates_exit_code(pyoci, bundle, new_id):
    cid = new_id()
    script = "trap 'echo got-term; exit 3' TERM; echo ready; while true; do sleep 0.1; done"
    b = bundle(script)
    proc, out, err = pyoci.popen("run", "--init", "--bundle", str(b.path), cid)
    deadline = time.monotonic() + 10
    while "ready" not in out.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pyoci("kill", cid, "TERM").returncode == 0
    assert proc.wait(timeout=10) == 3
    assert "got-term" in out.read_text()
    pyoci.assert_nothing_left()


def test_init_is_pid1_and_reaps_zombies(pyoci, bundle, new_id):
    # sh forks a child that exits while sh is busy: its orphan (the inner sleep) is
    # re-parented to PID 1, which must reap it; no Z state may remain.
    script = "(sleep 0.2 &); sleep 0.8; cat /proc/1/comm; ps -o stat | grep -c Z; exit 4"
    result = pyoci.run(bundle(script), new_id(), "--init")
    assert result.returncode == 4
    comm, zombies = result.stdout.split()
    assert comm.startswith("pyoci")
    assert zombies == "0"


def test_init_by_annotation_and_signal_exit_code(pyoci, bundle, new_id):
    b = bundle("kill -KILL $$", annotations={"org.pyoci.init": "true"})
    result = pyoci.run(b, new_id())
    assert result.returncode == 137


def test_exec_joins_the_init_cgroups(pyoci, bundle, new_id):
    """The exec'd process lands in the cgroups of the container's init (here: a pids v1
    cgroup and a cgroup2 one the test moves the init into)."""
    import uuid
    from pathlib import Path

    made = []
    for root in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/unified", "/sys/fs/cgroup"):
        if os.path.exists(os.path.join(root, "cgroup.procs")):
            made.append(Path(root) / f"pyoci-test-{uuid.uuid4().hex[:8]}")
            break
    if not made:
        import pytest

        pytest.skip("no writable cgroup hierarchy found")
    cid = _running(pyoci, bundle, new_id)
    try:
        pid = pyoci.state(cid)["pid"]
        made[0].mkdir()
        (made[0] / "cgroup.procs").write_text(str(pid))
        init_cgroups = Path(f"/proc/{pid}/cgroup").read_text()
        result = pyoci("exec", cid, "cat", "/proc/self/cgroup")
        assert result.returncode == 0, result.stderr
        assert result.stdout == init_cgroups
        assert made[0].name in result.stdout
    finally:
        pyoci("delete", "--force", cid)
        for directory in made:
            if directory.exists():
                directory.rmdir()


def test_exec_bad_process_json(pyoci, bundle, new_id, tmp_path):
    cid = _running(pyoci, bundle, new_id)
    cases = {
        "malformed": ("{not json", "--process: "),
        "no-args": ('{"cwd": "/", "args": []}', "process.args: must not be empty"),
        "relative-cwd": ('{"cwd": "tmp", "args": ["true"]}', "process.cwd"),
        "bad-cap": (
            '{"cwd": "/", "args": ["true"], "capabilities": {"bounding": ["CAP_NOPE"]}}',
            "process.capabilities.bounding[0]: unknown capability",
        ),
    }
    for name, (text, expected) in cases.items():
        pfile = tmp_path / f"{name}.json"
        pfile.write_text(text)
        result = pyoci("exec", "--process", str(pfile), cid)
        assert result.returncode == 1, name
        assert result.stderr.startswith("pyoci: ") and expected in result.stderr, result.stderr
        assert len(result.stderr.splitlines()) == 1
    missing = pyoci("exec", "--process", str(tmp_path / "absent.json"), cid)
    assert "no such file or directory" in missing.stderr
    pyoci("delete", "--force", cid)
    pyoci.assert_nothing_left()


def test_exec_process_file_io_priority_and_scheduler(pyoci, bundle, new_id, tmp_path):
    """process.ioPriority and process.scheduler apply to an exec'd process as to the init
    (they were ignored by exec: the process ran with the container's defaults)."""
    cid = _running(pyoci, bundle, new_id)
    process = {
        "args": ["sh", "-c", "ionice -p $$; cut -d' ' -f19 /proc/self/stat"],
        "env": ["PATH=/bin"],
        "cwd": "/",
        "user": {"uid": 0, "gid": 0},
        "ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 5},
        "scheduler": {"policy": "SCHED_BATCH", "nice": 7},
    }
    pfile = tmp_path / "process.json"
    pfile.write_text(json.dumps(process))
    result = pyoci("exec", "--process", str(pfile), cid)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["best-effort: prio 5", "7"]
    process["ioPriority"]["priority"] = 99
    pfile.write_text(json.dumps(process))
    refused = pyoci("exec", "--process", str(pfile), cid)
    assert refused.returncode == 1
    assert refused.stderr.startswith("pyoci: process.ioPriority.priority: "), refused.stderr
    pyoci("delete", "--force", cid)
    pyoci.assert_nothing_left()


def test_exec_runs_with_the_container_s_personality(pyoci, bundle, new_id):
    """linux.personality is the container's: an exec'd process runs with it as the init does
    (runc 1.2's "runc run personality with exec for i686")."""
    if os.uname().machine != "x86_64":
        pytest.skip("LINUX32 → i686 is checked on x86_64 only")
    cid = new_id()
    b = bundle(
        ["sleep", "1000"],
        patch=lambda c: c["linux"].__setitem__("personality", {"domain": "LINUX32"}),
    )
    assert pyoci.run(b, cid, "--detach").returncode == 0
    result = pyoci("exec", cid, "uname", "-m")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "i686\n"
    pyoci("delete", "--force", cid)
    pyoci.assert_nothing_left()
