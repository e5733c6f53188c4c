"""runtime-spec 1.3.0, runtime.md: scope, state, lifecycle, errors, warnings and operations.

Operations are driven through runc's command line (`create --bundle B ID`, `start ID`,
`state ID`, `kill ID SIG`, `delete ID`), which is what "runc-compatible" means.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

from oci_conformance import (
    MARK_ENV,
    Lab,
    kv,
    mount_table,
    proc_cgroups,
    processes_with_env,
)

# The fixtures (lab, oci_runtime, probe_binary) live in the harness.
pytest_plugins = ["oci_fixtures"]

SLEEP = "exec sleep 60"


def alive(lab: Lab) -> list[int]:
    """pids of this test's container processes still alive."""
    return processes_with_env(f"{MARK_ENV}={lab.mark}")


def existing_cgroup_dirs(lab: Lab, cgroups_path: str) -> list[Path]:
    return [d for d in lab.cgroup_dirs(cgroups_path).values() if d.is_dir()]


def cgroups_left(dirs: list[Path]) -> list[str]:
    """One line for the cgroup directories still there: their path, in how many hierarchies."""
    left = [d for d in dirs if d.is_dir()]
    if not left:
        return []
    hierarchies = sorted(d.parts[4] for d in left)
    return [f"cgroup {'/'.join(left[0].parts[5:])} (in {', '.join(hierarchies)})"]


def runtime_mounts(lab: Lab) -> set[str]:
    """Mount points under this test's directory (bundles, rootfs) in the runtime's mount
    namespace (crun's private one, if any). Other mounts of the host come and go with other
    sessions and say nothing about this container."""
    pid = lab.runtime.helper.pid if lab.runtime.helper else "self"
    top = str(lab.dir)
    return {
        m["mountpoint"]
        for m in mount_table(pid)
        if m["mountpoint"] == top or m["mountpoint"].startswith(top + "/")
    }


def ns_users(inode: str) -> list[int]:
    """pids of processes in the namespace `inode` (readlink form, e.g. 'net:[4026...]')."""
    kind = inode.split(":")[0]
    found = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", "rb") as f:
                    st = f.read()
                if st[st.rindex(b")") + 2 :].startswith(b"Z"):
                    continue  # a zombie holds nothing; reaping it is its parent's business
                if os.readlink(f"/proc/{name}/ns/{kind}") == inode:
                    found.append(int(name))
            except OSError:
                continue
    return found


# --- Scope of a Container ------------------------------------------------------------------------
def test_scope_operations_on_own_container(lab):
    """runtime.md § Scope of a Container (MUST): "The entity using a runtime to create a container
    MUST be able to use the operations defined in this specification against that same container."

    The caller that ran `create` runs state, start, kill and delete on it."""
    cid = lab.create(lab.bundle(lab.config(SLEEP)))
    assert lab.state(cid)["status"] == "created"
    lab.start(cid)
    lab.wait_token(cid)
    assert lab.state(cid)["status"] == "running"
    lab.kill(cid, "KILL")
    lab.wait_status(cid, "stopped")
    lab.delete(cid)
    assert lab.status(cid) is None, "the container still exists after delete"


# --- State ---------------------------------------------------------------------------------------
def test_state_id_unique(lab):
    """runtime.md § State (MUST): "id (string, REQUIRED) is the container's ID. This MUST be unique
    across all containers on this host."

    Two containers: each state carries its own id; a third `create` reusing one is refused."""
    a = lab.create(lab.bundle(lab.config(SLEEP)))
    b = lab.create(lab.bundle(lab.config(SLEEP)))
    assert (lab.state(a)["id"], lab.state(b)["id"]) == (a, b)
    again = lab.rt("create", "--bundle", str(lab.bundle(lab.config(SLEEP))), a)
    assert not again.ok, "a second container with an existing id was created"
    lab.start(a)
    lab.wait_token(a)


def test_state_status_values(lab):
    """runtime.md § State (MUST): "status (string, REQUIRED) ... Additional values MAY be defined
    by the runtime, however, they MUST be used to represent new runtime states not defined above."

    The defined states are reported as such: created after create, running while the program
    runs, stopped once it exited."""
    cid = lab.create(lab.bundle(lab.config("sleep 0.5")))
    seen = [lab.state(cid)["status"]]
    lab.start(cid)
    lab.wait_token(cid)
    seen.append(lab.state(cid)["status"])
    lab.wait_status(cid, "stopped")
    seen.append("stopped")
    assert seen == ["created", "running", "stopped"], f"observed statuses {seen}"


def test_state_pid(lab):
    """runtime.md § State (MUST): "pid (int, REQUIRED when status is created or running on Linux
    ...) is the ID of the container process."

    The pid of `created` is an int naming a process in the container's cgroup; `running` has the
    same pid, now running the program (its environment holds this test's marker)."""
    cfg = lab.config(SLEEP)
    cid = lab.create(lab.bundle(cfg))
    pid = lab.state(cid).get("pid")
    assert isinstance(pid, int) and pid > 0, f"created: pid is {pid!r}"
    groups = proc_cgroups(pid)
    assert cfg["linux"]["cgroupsPath"] in groups.values(), f"created: pid {pid} is in {groups}"
    lab.start(cid)
    lab.wait_token(cid)
    running = lab.state(cid).get("pid")
    assert running == pid, f"running: pid {running!r}, created: {pid}"
    with open(f"/proc/{pid}/environ", "rb") as f:
        env = f.read().split(b"\0")
    assert f"{MARK_ENV}={lab.mark}".encode() in env, f"running: pid {pid} is not the container"


def test_state_bundle_absolute(lab):
    """runtime.md § State (MUST): "bundle (string, REQUIRED) is the absolute path to the container's
    bundle directory."

    `create --bundle <relative path>`: the state says the absolute path."""
    bundle = lab.bundle(lab.config(SLEEP), name="relbundle")
    cid = lab.new_id()
    result = lab.rt("create", "--bundle", "relbundle", cid, cwd=lab.dir, out=lab.output_file(cid))
    assert result.ok, f"create failed: {result}"
    got = lab.state(cid).get("bundle")
    assert isinstance(got, str) and os.path.isabs(got), f"bundle is {got!r}"
    assert os.path.realpath(got) == os.path.realpath(bundle), f"bundle is {got!r}, not {bundle}"
    lab.start(cid)
    lab.wait_token(cid)


def test_state_oci_version(lab):
    """runtime.md § State (MUST): "ociVersion (string, REQUIRED) is version of the Open Container
    Initiative Runtime Specification with which the state complies."

    A SemVer string."""
    cid = lab.create(lab.bundle(lab.config(SLEEP)))
    version = lab.state(cid).get("ociVersion")
    assert isinstance(version, str) and re.match(r"^\d+\.\d+\.\d+", version), repr(version)
    lab.start(cid)
    lab.wait_token(cid)


def test_state_json_format(lab):
    """runtime.md § State (MUST): "When serialized in JSON, the format MUST adhere to ..." (the
    pattern of ociVersion, id, status, pid, bundle, annotations).

    Every property has the pattern's JSON type; the annotations, when present, are the config's."""
    cfg = lab.config(SLEEP)
    cfg["annotations"] = {"org.ocitest.key": "value"}
    cid = lab.create(lab.bundle(cfg))
    lab.start(cid)
    lab.wait_token(cid)
    st = lab.state(cid)
    types = {"ociVersion": str, "id": str, "status": str, "pid": int, "bundle": str}
    wrong = {k: st.get(k) for k, t in types.items() if not isinstance(st.get(k), t)}
    assert not wrong, f"properties missing or of the wrong type: {wrong}"
    if "annotations" in st:
        assert st["annotations"] == cfg["annotations"], f"annotations: {st['annotations']!r}"


# --- Lifecycle -----------------------------------------------------------------------------------
def test_lifecycle_environment_created(lab):
    """runtime.md § Lifecycle (MUST): "The container's runtime environment MUST be created according
    to the configuration in config.json."

    After create, before start: the process is in new pid/net/ipc/uts/mnt namespaces, in the
    configured cgroup, with the configured hostname."""
    cfg = lab.config(SLEEP)
    cid = lab.create(lab.bundle(cfg))
    pid = lab.state(cid)["pid"]
    for ns in ("pid", "net", "ipc", "uts", "mnt"):
        assert os.readlink(f"/proc/{pid}/ns/{ns}") != lab.runtime.ns(ns), f"{ns} namespace shared"
    groups = proc_cgroups(pid)
    want = cfg["linux"]["cgroupsPath"]
    assert want in groups.values(), f"not in cgroup {want}: {groups}"
    hostname = os.popen(f"nsenter --uts=/proc/{pid}/ns/uts hostname").read().strip()
    assert hostname == cfg["hostname"], f"hostname {hostname!r}"
    lab.start(cid)
    lab.wait_token(cid)


def test_lifecycle_create_error(lab):
    """runtime.md § Lifecycle (MUST): "If the runtime is unable to create the environment specified
    in the config.json, it MUST generate an error."

    A bind mount whose source does not exist."""
    cfg = lab.config()
    lab.control(cfg)
    cfg["mounts"].append(
        {
            "destination": "/missing",
            "type": "bind",
            "source": str(lab.dir / "nope"),
            "options": ["bind"],
        }
    )
    cid = lab.create(lab.bundle(cfg), check=False)
    assert not lab.last.ok, "create succeeded although a bind source is missing"
    assert lab.token_line not in lab.output(cid)


def test_lifecycle_program_not_run_at_create(lab):
    """runtime.md § Lifecycle (MUST): "While the resources requested in the config.json MUST be
    created, the user-specified program (from process) MUST NOT be run at this time."

    Nothing printed 0.3 s after create; the program runs after start."""
    cid = lab.create(lab.bundle(lab.config()))
    time.sleep(0.3)
    assert lab.token_line not in lab.output(cid), "the program ran before start"
    lab.start(cid)
    lab.wait_token(cid)


def test_lifecycle_config_updates_ignored(lab):
    """runtime.md § Lifecycle (MUST): "Any updates to config.json after this step MUST NOT affect
    the container."

    After create, config.json is rewritten with other args; start runs the original ones."""
    cfg = lab.config()
    bundle = lab.bundle(cfg)
    cid = lab.create(bundle)
    cfg["process"]["args"] = ["sh", "-c", "echo CHANGED=1"]
    cfg["hostname"] = "changed"
    lab.write(bundle, cfg)
    lab.start(cid)
    out = lab.wait_token(cid)
    assert "CHANGED=1" not in out, "start ran the args written after create"


def _hook_writer(lab: Lab, name: str, out: Path) -> dict:
    """A hook (host script) that saves its stdin as out/<name>.json."""
    script = lab.script(f"{name}.sh", f'cat > "{out}/{name}.json"')
    return lab.hook(script)


def _failing_hook(lab: Lab) -> dict:
    return lab.hook(lab.script("fail.sh", "exit 3"))


def _hook_config(lab: Lab, stage: str, hooks: list[dict], script: str = ":") -> dict:
    cfg = lab.config(script)
    cfg["hooks"] = {stage: hooks}
    return cfg


CREATE_STAGES = ("prestart", "createRuntime", "createContainer")


def _invoked(lab: Lab, stage: str) -> None:
    out = lab.out_dir("hookout")
    cfg = lab.config()
    if stage == "startContainer":
        lab.bind_out(cfg, "hookout", "/hookout")
        cfg["hooks"] = {
            stage: [{"path": "/bin/sh", "args": ["sh", "-c", "cat > /hookout/hook.json"]}]
        }
    else:
        hook = lab.hook(lab.script("w.sh", f'cat > "{out}/hook.json"'))
        cfg["hooks"] = {stage: [hook]}
    cid = lab.create(lab.bundle(cfg))
    lab.start(cid)
    lab.wait_token(cid)
    if stage == "poststop":
        lab.wait_status(cid, "stopped")
        lab.delete(cid)
    record = out / "hook.json"
    assert record.exists(), f"the {stage} hook was not invoked"
    assert json.loads(record.read_text()).get("id") == cid, "the hook got another state"


def _fails(lab: Lab, stage: str) -> None:
    """A failing hook of `stage` between two good ones: the operation fails, the container
    process is stopped, the user program never ran (hooks before it), the next hook did not
    run."""
    out = lab.out_dir("hookout")
    cfg = lab.config()
    if stage == "startContainer":
        lab.bind_out(cfg, "hookout", "/hookout")
        first = {"path": "/bin/sh", "args": ["sh", "-c", "echo 1 >> /hookout/ran"]}
        bad = {"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}
        last = {"path": "/bin/sh", "args": ["sh", "-c", "echo 3 >> /hookout/ran"]}
    else:
        first = lab.hook(lab.script("first.sh", f'echo 1 >> "{out}/ran"'))
        bad = _failing_hook(lab)
        last = lab.hook(lab.script("last.sh", f'echo 3 >> "{out}/ran"'))
    lab.control(cfg)
    cfg["hooks"] = {stage: [first, bad, last]}
    cid = lab.new_id()
    bundle = lab.bundle(cfg)
    if stage in CREATE_STAGES:
        lab.create(bundle, cid, check=False)
        failed = lab.last
    else:
        lab.create(bundle, cid)
        failed = lab.start(cid, check=False)
    assert not failed.ok, f"a failing {stage} hook generated no error ({failed})"
    time.sleep(0.2)
    assert not alive(lab), f"the container's process still runs after the failed {stage} hook"
    status = lab.status(cid)
    assert status in (None, "stopped"), f"after the failed {stage} hook the status is {status!r}"
    ran = (out / "ran").read_text().split() if (out / "ran").exists() else []
    assert ran == ["1"], f"hooks that ran: {ran} (the one after the failing hook must not)"
    if stage != "poststart":
        assert lab.token_line not in lab.output(cid), "the user program ran after the hook failed"


def _continues_at_step_12(lab: Lab, stage: str) -> None:
    """After a failing `stage` hook the container is destroyed (step 12: no state, no cgroup, no
    process) and the poststop hooks run (step 13), without any delete."""
    out = lab.out_dir("hookout")
    cfg = lab.config()
    lab.control(cfg)
    bad = (
        {"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}
        if stage == "startContainer"
        else _failing_hook(lab)
    )
    cfg["hooks"] = {
        stage: [bad],
        "poststop": [lab.hook(lab.script("ps.sh", f'cat > "{out}/poststop.json"'))],
    }
    cid = lab.new_id()
    bundle = lab.bundle(cfg)
    if stage in CREATE_STAGES:
        lab.create(bundle, cid, check=False)
        failed = lab.last
    else:
        lab.create(bundle, cid)
        failed = lab.start(cid, check=False)
    assert not failed.ok, f"a failing {stage} hook generated no error ({failed})"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and (lab.status(cid) is not None or alive(lab)):
        time.sleep(0.05)
    left = []
    if lab.status(cid) is not None:
        left.append(f"the container still exists (status {lab.status(cid)!r})")
    if alive(lab):
        left.append("its process still runs")
    left += cgroups_left(existing_cgroup_dirs(lab, cfg["linux"]["cgroupsPath"]))
    if not (out / "poststop.json").exists():
        left.append("the poststop hook did not run")
    assert not left, f"after the failed {stage} hook, not destroyed: " + "; ".join(left)


def test_lifecycle_prestart_invoked(lab):
    """runtime.md § Lifecycle (MUST): "The prestart hooks MUST be invoked by the runtime." """
    _invoked(lab, "prestart")


def test_lifecycle_prestart_fails(lab):
    """runtime.md § Lifecycle (MUST): "If any prestart hook fails, the runtime MUST generate an
    error, stop the container" """
    _fails(lab, "prestart")


def test_lifecycle_prestart_fails_step_12(lab):
    """runtime.md § Lifecycle (MUST): "If any prestart hook fails, the runtime MUST ... continue the
    lifecycle at step 12." """
    _continues_at_step_12(lab, "prestart")


def test_lifecycle_create_runtime_invoked(lab):
    """runtime.md § Lifecycle (MUST): "The createRuntime hooks MUST be invoked by the runtime." """
    _invoked(lab, "createRuntime")


def test_lifecycle_create_runtime_fails(lab):
    """runtime.md § Lifecycle (MUST): "If any createRuntime hook fails, the runtime MUST generate an
    error, stop the container" """
    _fails(lab, "createRuntime")


def test_lifecycle_create_runtime_fails_step_12(lab):
    """runtime.md § Lifecycle (MUST): "If any createRuntime hook fails, the runtime MUST ...
    continue the lifecycle at step 12." """
    _continues_at_step_12(lab, "createRuntime")


def test_lifecycle_create_container_invoked(lab):
    """runtime.md § Lifecycle (MUST): "The createContainer hooks MUST be invoked by the
    runtime." """
    _invoked(lab, "createContainer")


def test_lifecycle_create_container_fails(lab):
    """runtime.md § Lifecycle (MUST): "If any createContainer hook fails, the runtime MUST generate
    an error, stop the container" """
    _fails(lab, "createContainer")


def test_lifecycle_create_container_fails_step_12(lab):
    """runtime.md § Lifecycle (MUST): "If any createContainer hook fails, the runtime MUST ...
    continue the lifecycle at step 12." """
    _continues_at_step_12(lab, "createContainer")


def test_lifecycle_start_container_invoked(lab):
    """runtime.md § Lifecycle (MUST): "The startContainer hooks MUST be invoked by the runtime." """
    _invoked(lab, "startContainer")


def test_lifecycle_start_container_fails(lab):
    """runtime.md § Lifecycle (MUST): "If any startContainer hook fails, the runtime MUST generate
    an error, stop the container" """
    _fails(lab, "startContainer")


def test_lifecycle_start_container_fails_step_12(lab):
    """runtime.md § Lifecycle (MUST): "If any startContainer hook fails, the runtime MUST ...
    continue the lifecycle at step 12." """
    _continues_at_step_12(lab, "startContainer")


def test_lifecycle_program_run(lab):
    """runtime.md § Lifecycle (MUST): "The runtime MUST run the user-specified program, as specified
    by process."

    After start, the container process is the configured program (its /proc/PID/cmdline)."""
    cfg = lab.config(args=["sh", "-c", "echo TOKEN:$OCI_T; exec sleep 37", "ocitest-arg0"])
    cid = lab.create(lab.bundle(cfg))
    pid = lab.state(cid)["pid"]
    lab.start(cid)
    lab.wait_token(cid)
    deadline = time.monotonic() + 5
    while True:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().split(b"\0")[:-1]
        if cmdline == [b"sleep", b"37"] or time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert cmdline == [b"sleep", b"37"], f"the container process runs {cmdline}"


def test_lifecycle_poststart_invoked(lab):
    """runtime.md § Lifecycle (MUST): "The poststart hooks MUST be invoked by the runtime." """
    _invoked(lab, "poststart")


def test_lifecycle_poststart_fails(lab):
    """runtime.md § Lifecycle (MUST): "If any poststart hook fails, the runtime MUST generate an
    error, stop the container" (1.3.0; a warning before)"""
    _fails(lab, "poststart")


def test_lifecycle_poststart_fails_step_12(lab):
    """runtime.md § Lifecycle (MUST): "If any poststart hook fails, the runtime MUST ... continue
        the
    lifecycle at step 12." """
    _continues_at_step_12(lab, "poststart")


def test_lifecycle_destroyed(lab):
    """runtime.md § Lifecycle (MUST): "The container MUST be destroyed by undoing the steps
        performed
    during create phase (step 2)."

    After delete, no process is left in the namespaces create made, and its cgroups are gone."""
    cfg = lab.config(SLEEP)
    cid = lab.create(lab.bundle(cfg))
    pid = lab.state(cid)["pid"]
    namespaces = [os.readlink(f"/proc/{pid}/ns/{ns}") for ns in ("net", "ipc", "uts", "mnt", "pid")]
    cgroups = existing_cgroup_dirs(lab, cfg["linux"]["cgroupsPath"])
    assert cgroups, "create made no cgroup at cgroupsPath"
    lab.start(cid)
    lab.wait_token(cid)
    lab.kill(cid, "KILL")
    lab.wait_status(cid, "stopped")
    lab.delete(cid)
    deadline = time.monotonic() + 3  # a killed process may still be on its way out
    while any(ns_users(ns) for ns in namespaces) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [f"{ns} still used by {ns_users(ns)}" for ns in namespaces if ns_users(ns)]
    left += cgroups_left(cgroups)
    assert not left, "not undone: " + "; ".join(left)


def test_lifecycle_poststop_invoked(lab):
    """runtime.md § Lifecycle (MUST): "The poststop hooks MUST be invoked by the runtime." """
    _invoked(lab, "poststop")


def _poststop_failure(lab: Lab):
    out = lab.out_dir("hookout")
    cfg = lab.config()
    cfg["hooks"] = {
        "poststop": [
            _failing_hook(lab),
            lab.hook(lab.script("after.sh", f'echo ran > "{out}/after"')),
        ]
    }
    cid = lab.create(lab.bundle(cfg))
    lab.start(cid)
    lab.wait_token(cid)
    lab.wait_status(cid, "stopped")
    return cid, lab.delete(cid, check=False), out


def test_lifecycle_poststop_fails_warning(lab):
    """runtime.md § Lifecycle (MUST): "If any poststop hook fails, the runtime MUST log a warning"

    Something is said on the runtime's stderr about the failure."""
    _, result, _ = _poststop_failure(lab)
    assert result.stderr.strip(), f"delete said nothing about the failed poststop hook ({result})"


def test_lifecycle_poststop_fails_continue(lab):
    """runtime.md § Lifecycle (MUST): "If any poststop hook fails, ... the remaining hooks and
    lifecycle continue as if the hook had succeeded."

    The next poststop hook runs, delete succeeds, the container is gone."""
    cid, result, out = _poststop_failure(lab)
    assert (out / "after").exists(), "the poststop hook after the failing one did not run"
    assert result.ok, f"delete failed because of a poststop hook: {result}"
    assert lab.status(cid) is None, "the container still exists"


# --- Errors and Warnings -------------------------------------------------------------------------
def test_errors_leave_no_trace(lab):
    """runtime.md § Errors (MUST): "Unless otherwise stated, generating an error MUST leave the
    state of the environment as if the operation were never attempted"

    A create failing at its last mount (a missing bind source): no container, no cgroup, no
    process, no mount left; the same id then creates a container."""
    cfg = lab.config()
    lab.control(cfg)
    bad = json.loads(json.dumps(cfg))
    bad["mounts"].append(
        {
            "destination": "/missing",
            "type": "bind",
            "source": str(lab.dir / "nope"),
            "options": ["bind"],
        }
    )
    mounts_before = runtime_mounts(lab)
    cid = lab.create(lab.bundle(bad), check=False)
    assert not lab.last.ok, "create succeeded with a missing bind source"
    left = []
    if lab.status(cid) is not None:
        left.append("the container exists")
    if (lab.root / cid).exists():
        left.append(f"state directory {lab.root / cid}")
    left += cgroups_left(existing_cgroup_dirs(lab, bad["linux"]["cgroupsPath"]))
    left += [f"process {p}" for p in alive(lab)]
    left += [f"mount {m}" for m in runtime_mounts(lab) - mounts_before]
    assert not left, "the failed create left: " + "; ".join(left)
    lab.create(lab.bundle(cfg), cid)
    lab.start(cid)
    lab.wait_token(cid)


def test_warnings_do_not_change_flow(lab):
    """runtime.md § Warnings (MUST): "Unless otherwise stated, logging a warning does not change the
    flow of the operation; it MUST continue as if the warning had not been logged."

    An ambient capability that cannot be raised (it is in no other set): config.md makes that a
    warning; the container still runs."""
    cfg = lab.config()
    cfg["process"]["capabilities"]["ambient"] = ["CAP_SYS_ADMIN"]
    lab.run_ok(cfg)


# --- Operations ----------------------------------------------------------------------------------
def test_operations_supported(lab):
    """runtime.md § Operations (MUST): "Unless otherwise stated, runtimes MUST support the following
    operations."

    state, create, start, kill and delete each succeed on a container in the right state."""
    cid = lab.create(lab.bundle(lab.config(SLEEP)))
    for name, result in (
        ("state", lab.rt("state", cid)),
        ("start", lab.start(cid, check=False)),
    ):
        assert result.ok, f"{name}: {result}"
    lab.wait_token(cid)
    assert lab.kill(cid, "KILL", check=False).ok
    lab.wait_status(cid, "stopped")
    assert lab.delete(cid, check=False).ok


def _no_id(lab: Lab, op: str) -> None:
    lab.control(lab.config())
    result = lab.rt(op)
    assert not result.ok, f"`{op}` without a container id succeeded"


def test_state_requires_id(lab):
    """runtime.md § Operations / Query State (MUST): "This operation MUST generate an error if it
        is not provided
    the ID of a container." """
    _no_id(lab, "state")


def test_state_unknown_container(lab):
    """runtime.md § Operations / Query State (MUST): "Attempting to query a container that does not
        exist MUST
    generate an error." """
    lab.control(lab.config())
    result = lab.rt("state", "ocitest-no-such-container")
    assert not result.ok, f"state of an unknown container succeeded: {result.stdout[:200]!r}"


def test_state_returns_state(lab):
    """runtime.md § Operations / Query State (MUST): "This operation MUST return the state of a
        container as
    specified in the State section."

    id, status, pid and bundle of a running container."""
    bundle = lab.bundle(lab.config(SLEEP))
    cid = lab.create(bundle)
    lab.start(cid)
    lab.wait_token(cid)
    st = lab.state(cid)
    assert st.get("id") == cid and st.get("status") == "running", st
    assert os.path.realpath(st.get("bundle", "")) == os.path.realpath(bundle), st
    with open(f"/proc/{st['pid']}/environ", "rb") as f:
        assert f"{MARK_ENV}={lab.mark}".encode() in f.read().split(b"\0"), (
            "pid is not the container"
        )


def test_create_requires_bundle_and_id(lab):
    """runtime.md § Operations / Create (MUST): "This operation MUST generate an error if it is not
        provided a path
    to the bundle and the container ID to associate with the container."

    No id; and no bundle (runc's CLI then takes the current directory, here an empty one)."""
    bundle = lab.bundle(lab.config())
    lab.control(lab.config())
    no_id = lab.rt("create", "--bundle", str(bundle))
    empty = lab.dir / "empty"
    empty.mkdir()
    no_bundle = lab.rt("create", lab.new_id(), cwd=empty)
    assert not no_id.ok, "create without an id succeeded"
    assert not no_bundle.ok, "create without a bundle (empty cwd) succeeded"


def test_create_duplicate_id(lab):
    """runtime.md § Operations / Create (MUST): "If the ID provided is not unique across all
        containers within the
    scope of the runtime ..., the implementation MUST generate an error and a new container MUST NOT
    be created."

    The first container keeps its pid, status and bundle; the second config never runs."""
    first = lab.bundle(lab.config(SLEEP))
    cid = lab.create(first)
    before = lab.state(cid)
    second = lab.config("echo SECOND=1")
    result = lab.rt("create", "--bundle", str(lab.bundle(second)), cid)
    assert not result.ok, "a second container with the same id was created"
    after = lab.state(cid)
    for key in ("pid", "status", "bundle"):
        assert after.get(key) == before.get(key), (
            f"{key}: {before.get(key)!r} -> {after.get(key)!r}"
        )
    lab.start(cid)
    out = lab.wait_token(cid)
    assert "SECOND=1" not in out + result.stdout


def test_create_invalid_id(lab):
    """runtime.md § Operations / Create (MUST): "If the ID provided is ... not valid in any other
        way, the
    implementation MUST generate an error and a new container MUST NOT be created."

    An id that is a path out of the state directory: refused, and nothing made there."""
    lab.control(lab.config())
    bad = f"../ocitest-escape-{lab.mark[:8]}"
    result = lab.rt("create", "--bundle", str(lab.bundle(lab.config(SLEEP))), bad)
    escaped = (lab.root / bad).resolve()
    made = escaped.exists()
    assert not result.ok, f"create accepted the id {bad!r}"
    assert not made, f"create made {escaped}"


def test_create_makes_container(lab):
    """runtime.md § Operations / Create (MUST): "This operation MUST create a new container."

    After create, the container exists and is created."""
    cid = lab.create(lab.bundle(lab.config(SLEEP)))
    assert lab.state(cid).get("status") == "created"
    lab.start(cid)
    lab.wait_token(cid)


def test_create_applies_properties(lab):
    """runtime.md § Operations / Create (MUST): "All of the properties configured in config.json
        except for
    process MUST be applied."

    Before start: hostname, namespaces, cgroupsPath and the mounts are in place."""
    cfg = lab.config(SLEEP)
    cfg["mounts"].append(
        {"destination": "/ocitest-tmp", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]}
    )
    cid = lab.create(lab.bundle(cfg))
    pid = lab.state(cid)["pid"]
    hostname = os.popen(f"nsenter --uts=/proc/{pid}/ns/uts hostname").read().strip()
    problems = [] if hostname == "ocitest" else [f"hostname {hostname!r}"]
    if os.readlink(f"/proc/{pid}/ns/net") == lab.runtime.ns("net"):
        problems.append("no network namespace")
    if cfg["linux"]["cgroupsPath"] not in proc_cgroups(pid).values():
        problems.append(f"cgroups {proc_cgroups(pid)}")
    points = {m["mountpoint"] for m in mount_table(pid)}
    if not any(p.endswith("/ocitest-tmp") for p in points):
        problems.append("the /ocitest-tmp mount is missing")
    assert not problems, "not applied at create: " + "; ".join(problems)
    lab.start(cid)
    lab.wait_token(cid)


def test_create_args_not_applied(lab):
    """runtime.md § Operations / Create (MUST): "process.args MUST NOT be applied until triggered
        by the start
    operation."

    The created container's process has not executed the program (its /proc/PID/exe is not the
    rootfs's busybox) and printed nothing."""
    cfg = lab.config(args=["sh", "-c", "echo TOKEN:$OCI_T; exec sleep 41"])
    bundle = lab.bundle(cfg)
    cid = lab.create(bundle)
    pid = lab.state(cid)["pid"]
    time.sleep(0.2)
    exe, busybox = os.stat(f"/proc/{pid}/exe"), os.stat(bundle / "rootfs/bin/busybox")
    assert (exe.st_dev, exe.st_ino) != (busybox.st_dev, busybox.st_ino), (
        "the container process already executes the configured program"
    )
    assert lab.token_line not in lab.output(cid), "the args ran before start"
    lab.start(cid)
    lab.wait_token(cid)


def test_create_unappliable_property(lab):
    """runtime.md § Operations / Create (MUST): "If the runtime cannot apply a property as
        specified in the
    configuration, it MUST generate an error and a new container MUST NOT be created."

    A sysctl the kernel does not have."""
    cfg = lab.config()
    lab.control(cfg)
    cfg["linux"]["sysctl"] = {"net.ipv4.ocitest_no_such_key": "1"}
    cid = lab.create(lab.bundle(cfg), check=False)
    assert not lab.last.ok, "create succeeded with a sysctl that does not exist"
    assert lab.status(cid) is None, "a container was created anyway"


def test_start_requires_id(lab):
    """runtime.md § Operations / Start (MUST): "This operation MUST generate an error if it is not
        provided the
    container ID." """
    _no_id(lab, "start")


def test_start_not_created(lab):
    """runtime.md § Operations / Start (MUST): "Attempting to start a container that is not created
        MUST have no
    effect on the container and MUST generate an error."

    start of a running container (the program does not run again, the pid stays) and of a
    stopped one."""
    cid = lab.create(lab.bundle(lab.config(SLEEP)))
    lab.start(cid)
    lab.wait_token(cid)
    pid = lab.state(cid)["pid"]
    again = lab.start(cid, check=False)
    time.sleep(0.2)
    assert not again.ok, "start of a running container succeeded"
    st = lab.state(cid)
    assert (st["status"], st["pid"]) == ("running", pid), f"the container changed: {st}"
    assert lab.output(cid).count(lab.token_line) == 1, "the program ran twice"
    lab.kill(cid, "KILL")
    lab.wait_status(cid, "stopped")
    stopped = lab.start(cid, check=False)
    assert not stopped.ok, "start of a stopped container succeeded"
    assert lab.status(cid) == "stopped"


def test_start_runs_process(lab):
    """runtime.md § Operations / Start (MUST): "This operation MUST run the user-specified program
        as specified
    by process."

    args, env and cwd as configured."""
    cfg = lab.config()
    cfg["process"]["args"] = [
        "sh",
        "-c",
        'echo TOKEN:$OCI_T; echo "CWD=$(pwd)"; echo "VAR=$OCITEST_VAR"; echo "ARG=$1"',
        "arg0",
        "first arg",
    ]
    cfg["process"]["env"].append("OCITEST_VAR=hello world")
    cfg["process"]["cwd"] = "/tmp"
    cid = lab.create(lab.bundle(cfg))
    lab.start(cid)
    lab.wait_status(cid, "stopped")
    got = kv(lab.expect_token(lab.output(cid)))
    want = {"CWD": "/tmp", "VAR": "hello world", "ARG": "first arg"}
    assert {k: got.get(k) for k in want} == want, f"observed {got}"


def test_start_without_process(lab):
    """runtime.md § Operations / Start (MUST): "This operation MUST generate an error if process
        was not set."

    A config without process: create may refuse it; if it does not, start must."""
    cfg = lab.config()
    lab.control(cfg)
    del cfg["process"]
    cid = lab.create(lab.bundle(cfg), check=False)
    if lab.last.ok:
        result = lab.start(cid, check=False)
        assert not result.ok, "start of a container without process succeeded"


def test_kill_requires_id(lab):
    """runtime.md § Operations / Kill (MUST): "This operation MUST generate an error if it is not
        provided the
    container ID." """
    _no_id(lab, "kill")


def test_kill_not_running(lab):
    """runtime.md § Operations / Kill (MUST): "Attempting to send a signal to a container that is
        neither created
    nor running MUST have no effect on the container and MUST generate an error."

    kill of a stopped container."""
    cid = lab.create(lab.bundle(lab.config()))
    lab.start(cid)
    lab.wait_token(cid)
    lab.wait_status(cid, "stopped")
    result = lab.kill(cid, "KILL", check=False)
    assert not result.ok, "kill of a stopped container succeeded"
    assert lab.status(cid) == "stopped"


def test_kill_sends_signal(lab):
    """runtime.md § Operations / Kill (MUST): "This operation MUST send the specified signal to the
        container
    process."

    The process traps SIGUSR1 and says so."""
    cfg = lab.config("trap 'echo GOT=USR1; exit 0' USR1; while :; do sleep 0.05; done")
    cid = lab.create(lab.bundle(cfg))
    lab.start(cid)
    lab.wait_token(cid)
    lab.kill(cid, "USR1")
    lab.wait_for(cid, "GOT=USR1")


def test_delete_requires_id(lab):
    """runtime.md § Operations / Delete (MUST): "This operation MUST generate an error if it is not
        provided the
    container ID." """
    _no_id(lab, "delete")


def test_delete_not_stopped(lab):
    """runtime.md § Operations / Delete (MUST): "Attempting to delete a container that is not
        stopped MUST have no
    effect on the container and MUST generate an error."

    delete of a created container and of a running one."""
    cid = lab.create(lab.bundle(lab.config(SLEEP)))
    pid = lab.state(cid)["pid"]
    created = lab.delete(cid, check=False)
    status = lab.status(cid)
    assert not created.ok, "delete of a created container succeeded"
    assert status == "created" and os.path.exists(f"/proc/{pid}"), f"the container is now {status}"
    lab.start(cid)
    lab.wait_token(cid)
    running = lab.delete(cid, check=False)
    assert not running.ok, "delete of a running container succeeded"
    assert lab.status(cid) == "running"


def test_delete_removes_resources(lab):
    """runtime.md § Operations / Delete (MUST): "Deleting a container MUST delete the resources
        that were created
    during the create step."

    Its state, its cgroup directories and the mounts create added in the runtime's namespace."""
    cfg = lab.config()
    mounts_before = runtime_mounts(lab)
    cid = lab.create(lab.bundle(cfg))
    cgroups = existing_cgroup_dirs(lab, cfg["linux"]["cgroupsPath"])
    lab.start(cid)
    lab.wait_token(cid)
    lab.wait_status(cid, "stopped")
    lab.delete(cid)
    left = [] if lab.status(cid) is None else ["the container"]
    left += cgroups_left(cgroups)
    left += [f"mount {m}" for m in runtime_mounts(lab) - mounts_before]
    assert not left, "delete left: " + "; ".join(left)


def test_delete_keeps_foreign_resources(lab):
    """runtime.md § Operations / Delete (MUST): "Note that resources associated with the container,
        but not
    created by this container, MUST NOT be deleted."

    A cgroup that existed before create (cgroupsPath), a bind-mount source and the bundle."""
    cfg = lab.config()
    source = lab.out_dir("bindsrc")
    (source / "keep").write_text("keep")
    lab.bind_out(cfg, "bindsrc", "/data")
    pre = list(lab.cgroup_dirs(cfg["linux"]["cgroupsPath"]).values())
    for d in pre:
        d.mkdir(parents=True)
    bundle = lab.bundle(cfg)
    cid = lab.create(bundle)
    lab.start(cid)
    lab.wait_token(cid)
    lab.wait_status(cid, "stopped")
    lab.delete(cid)
    removed = [d for d in pre if not d.is_dir()]
    gone = []
    if removed:
        where = ", ".join(sorted(d.parts[4] for d in removed))
        gone.append(f"the cgroup made before create, {'/'.join(removed[0].parts[5:])} (in {where})")
    gone += [
        p for p in (str(source / "keep"), str(bundle / "config.json")) if not os.path.exists(p)
    ]
    assert not gone, "delete removed what the container did not create: " + "; ".join(gone)
