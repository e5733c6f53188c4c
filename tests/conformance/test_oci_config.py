"""runtime-spec 1.3.0, config.md: root, mounts, process, hooks, extensibility and valid values.

Properties whose text has no MUST of its own are checked under runtime.md's "All of the
properties configured in config.json except for process MUST be applied" (create) and "This
operation MUST run the user-specified program as specified by process" (start): their
docstrings say MUST and quote the property's own definition.
The mount options table is tests/conformance/test_oci_mount_options.py.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from oci_conformance import (
    Lab,
    kv,
)

# The fixtures (lab, oci_runtime, probe_binary) live in the harness.
pytest_plugins = ["oci_fixtures"]

SLEEP = "exec sleep 60"
CAP_NUMBERS = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_RAW": 13,
    "CAP_SYS_ADMIN": 21,
}


def capmask(names: list[str]) -> int:
    mask = 0
    for n in names:
        mask |= 1 << CAP_NUMBERS[n]
    return mask


# --- Root ----------------------------------------------------------------------------------------
def test_root_readonly(lab):
    """config.md § Root (MUST): "readonly (bool, OPTIONAL) If true then the root filesystem MUST be
    read-only inside the container"

    Creating a file in / fails with EROFS."""
    cfg = lab.config("touch /ocitest-file 2>/dev/null && echo WRITE=ok || echo WRITE=refused")
    cfg["root"]["readonly"] = True
    got = lab.run_ok(cfg)
    assert got.get("WRITE") == "refused", f"writing to / inside the container: {got.get('WRITE')}"


def test_root_readonly_default(lab):
    """config.md § Root (MUST): "readonly (bool, OPTIONAL) If true then the root filesystem MUST be
    read-only inside the container, defaults to false."

    Without `readonly`, / is writable."""
    cfg = lab.config("touch /ocitest-file 2>/dev/null && echo WRITE=ok || echo WRITE=refused")
    del cfg["root"]["readonly"]
    got = lab.run_ok(cfg)
    assert got.get("WRITE") == "ok", "/ is read-only although readonly is absent"


def test_root_path_relative_to_bundle(lab):
    """config.md § Root (MUST): "path (string, REQUIRED) ... On POSIX platforms, path is either an
    absolute path or a relative path to the bundle."

    root.path "rootfs" with the runtime started from another directory."""
    bundle = lab.bundle(lab.config("[ -x /bin/busybox ] && echo ROOT=busybox"))
    elsewhere = lab.dir / "elsewhere"
    elsewhere.mkdir()
    cid = lab.new_id()
    result = lab.rt("run", "--bundle", str(bundle), cid, cwd=elsewhere)
    assert result.ok, f"run failed: {result}"
    lab.expect_token(result.stdout)
    assert kv(result.stdout).get("ROOT") == "busybox"


# --- Mounts --------------------------------------------------------------------------------------
def test_mounts_listed_order(lab):
    """config.md § Mounts (MUST): "The runtime MUST mount entries in the listed order."

    A tmpfs at /m, then a bind mount at /m/sub: listed in that order, the bind is visible on top
    of the tmpfs (the other order would hide it)."""
    src = lab.out_dir("src")
    (src / "from-bind").write_text("x")
    cfg = lab.config("[ -e /m/sub/from-bind ] && echo ORDER=ok || echo ORDER=wrong")
    cfg["mounts"] += [
        {"destination": "/m", "type": "tmpfs", "source": "tmpfs", "options": ["size=1m"]},
        {"destination": "/m/sub", "type": "bind", "source": str(src), "options": ["rbind"]},
    ]
    got = lab.run_ok(cfg)
    assert got.get("ORDER") == "ok", "the bind mount listed after the tmpfs is not on top of it"


def test_mount_destination_relative(lab):
    """config.md § Mounts (MUST): "destination ... it MAY be a relative path, in which case it MUST
    be interpreted as relative to "/"."

    destination "ocirel" with cwd /tmp: the mount is at /ocirel."""
    cfg = lab.config(
        "grep -q ' /ocirel ' /proc/self/mountinfo && echo AT=root; "
        "grep -q ' /tmp/ocirel ' /proc/self/mountinfo && echo AT=cwd; :"
    )
    cfg["process"]["cwd"] = "/tmp"
    cfg["mounts"].append({"destination": "ocirel", "type": "tmpfs", "source": "tmpfs"})
    got = lab.run_ok(cfg)
    assert got.get("AT") == "root", f"relative destination mounted at {got.get('AT')!r}"


def test_mount_bind_source_relative(lab):
    """config.md § Mounts (MUST): "source ... Path values for bind mounts are either absolute or
    relative to the bundle."

    source "data" (bundle/data) with the runtime started from another directory."""
    cfg = lab.config("cat /data/file")
    cfg["mounts"].append(
        {"destination": "/data", "type": "bind", "source": "data", "options": ["rbind"]}
    )
    bundle = lab.bundle(cfg)
    (bundle / "data").mkdir()
    (bundle / "data" / "file").write_text("FROM=bundle\n")
    elsewhere = lab.dir / "elsewhere"
    elsewhere.mkdir()
    result = lab.rt("run", "--bundle", str(bundle), lab.new_id(), cwd=elsewhere)
    assert result.ok, f"run failed: {result}"
    lab.expect_token(result.stdout)
    assert kv(result.stdout).get("FROM") == "bundle"


def test_mount_bind_type_dummy(lab):
    """config.md § Mounts (MUST): "For bind mounts (when options include either bind or rbind), the
    type is a dummy, often "none" (not listed in /proc/filesystems)."

    type "none" with rbind: a bind mount of the host directory."""
    src = lab.out_dir("src")
    (src / "file").write_text("FROM=host\n")
    cfg = lab.config("cat /data/file")
    cfg["mounts"].append(
        {"destination": "/data", "type": "none", "source": str(src), "options": ["rbind"]}
    )
    assert lab.run_ok(cfg).get("FROM") == "host"


# --- Process -------------------------------------------------------------------------------------
def test_console_size_ignored_without_terminal(lab):
    """config.md § Process / consoleSize (MUST): "Runtimes MUST ignore consoleSize if terminal is
        false or unset."

    consoleSize with terminal false: the process runs with the caller's (non-tty) stdout."""
    cfg = lab.config("[ -t 1 ] && echo TTY=yes || echo TTY=no")
    cfg["process"]["consoleSize"] = {"height": 10, "width": 20}
    got = lab.run_ok(cfg)
    assert got.get("TTY") == "no"


def test_rlimits_unmappable_type(lab):
    """config.md § Process / POSIX rlimits (MUST): "The runtime MUST generate an error for any
        values
    which cannot be mapped to a relevant kernel interface." """
    cfg = lab.config()
    lab.control(cfg)
    cfg["process"]["rlimits"].append({"type": "RLIMIT_OCITEST", "soft": 1, "hard": 1})
    result = lab.run(lab.bundle(cfg))
    assert not result.ok, "an unknown rlimit type was accepted"
    assert lab.token_line not in result.stdout


def _limits(lab: Lab, soft: int, hard: int) -> tuple[str, str]:
    cfg = lab.config(
        "grep 'Max processes' /proc/self/limits | awk '{print \"SOFT=\" $3; print \"HARD=\" $4}'"
    )
    cfg["process"]["rlimits"].append({"type": "RLIMIT_NPROC", "soft": soft, "hard": hard})
    got = lab.run_ok(cfg)
    return got.get("SOFT", ""), got.get("HARD", "")


def test_rlimits_soft(lab):
    """config.md § Process / POSIX rlimits (MUST): "soft (uint64, REQUIRED) the value of the limit
    enforced for the corresponding resource. rlim.rlim_cur MUST match the configured value." """
    soft, _ = _limits(lab, 3333, 4444)
    assert soft == "3333", f"soft limit {soft}"


def test_rlimits_hard(lab):
    """config.md § Process / POSIX rlimits (MUST): "hard (uint64, REQUIRED) the ceiling for the soft
    limit that could be set by an unprivileged process. rlim.rlim_max MUST match the configured
    value." """
    _, hard = _limits(lab, 3333, 4444)
    assert hard == "4444", f"hard limit {hard}"


def test_rlimits_duplicate(lab):
    """config.md § Process / POSIX rlimits (MUST): "If rlimits contains duplicated entries with same
    type, the runtime MUST generate an error." """
    cfg = lab.config()
    lab.control(cfg)
    cfg["process"]["rlimits"] += [
        {"type": "RLIMIT_NPROC", "soft": 100, "hard": 100},
        {"type": "RLIMIT_NPROC", "soft": 200, "hard": 200},
    ]
    result = lab.run(lab.bundle(cfg))
    assert not result.ok, "duplicated rlimit types were accepted"


def _ungrantable(lab: Lab):
    cfg = lab.config()
    # An ambient capability can only be raised if it is permitted and inheritable.
    cfg["process"]["capabilities"]["ambient"] = ["CAP_SYS_ADMIN"]
    result = lab.run(lab.bundle(cfg))
    return result


def test_capabilities_ungrantable_warning(lab):
    """config.md § Process / Linux (MUST): "Any value which cannot be mapped to a relevant kernel
    interface, or cannot be granted otherwise MUST be logged as a warning by the runtime."

    An ambient CAP_SYS_ADMIN that is neither permitted nor inheritable: the runtime says so."""
    result = _ungrantable(lab)
    lab.saw_token(result.stdout)
    err = result.stderr.lower()
    assert "cap_sys_admin" in err or "capabilit" in err or "ambient" in err, (
        f"no warning about the ungrantable capability (stderr: {result.stderr[-300:]!r}, {result})"
    )


def test_capabilities_ungrantable_no_failure(lab):
    """config.md § Process / Linux (SHOULD NOT): "Runtimes SHOULD NOT fail if the container
    configuration requests capabilities that cannot be granted" """
    result = _ungrantable(lab)
    assert result.ok, f"the runtime failed: {result}"
    lab.expect_token(result.stdout)


def test_capabilities_sets(lab):
    """config.md § Process / Linux (MUST): "capabilities (object, OPTIONAL) is an object containing
    arrays that specifies the sets of capabilities for the process."

    As uid 1000 (no root exec rules): CapBnd = bounding, CapInh = inheritable, CapAmb = ambient,
    and after execve CapPrm = CapEff = ambient (raised from permitted and inheritable)."""
    caps = {
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW"],
        "effective": ["CAP_KILL", "CAP_NET_RAW"],
        "permitted": ["CAP_KILL", "CAP_NET_RAW", "CAP_CHOWN"],
        "inheritable": ["CAP_KILL", "CAP_NET_RAW"],
        "ambient": ["CAP_KILL"],
    }
    cfg = lab.config("grep ^Cap /proc/self/status | sed 's/:\\t/=/'")
    cfg["process"]["user"] = {"uid": 1000, "gid": 1000}
    cfg["process"]["capabilities"] = caps
    got = lab.run_ok(cfg)
    want = {
        "CapBnd": capmask(caps["bounding"]),
        "CapInh": capmask(caps["inheritable"]),
        "CapAmb": capmask(caps["ambient"]),
        "CapPrm": capmask(caps["ambient"]),
        "CapEff": capmask(caps["ambient"]),
    }
    seen = {k: int(got.get(k, "-1"), 16) for k in want}
    assert seen == want, "observed " + ", ".join(f"{k}={v:x}" for k, v in seen.items())


def test_no_new_privileges(lab):
    """config.md § Process / Linux (MUST): "noNewPrivileges (bool, OPTIONAL) setting
        noNewPrivileges to
    true prevents the process from gaining additional privileges."

    /proc/self/status NoNewPrivs is 1 with true and 0 with false."""
    seen = {}
    for value in (True, False):
        cfg = lab.config("grep NoNewPrivs /proc/self/status | sed 's/:\\t/=/'")
        cfg["process"]["noNewPrivileges"] = value
        seen[value] = lab.run_ok(cfg).get("NoNewPrivs")
    assert seen == {True: "1", False: "0"}, f"NoNewPrivs observed {seen}"


def test_oom_score_adj_set(lab):
    """config.md § Process / Linux (MUST): "If oomScoreAdj is set, the runtime MUST set
        oom_score_adj
    to the given value." """
    cfg = lab.config("echo OOM=$(cat /proc/self/oom_score_adj)")
    cfg["process"]["oomScoreAdj"] = 271
    assert lab.run_ok(cfg).get("OOM") == "271"


def test_oom_score_adj_unset(lab):
    """config.md § Process / Linux (MUST NOT): "If oomScoreAdj is not set, the runtime MUST NOT
        change
    the value of oom_score_adj."

    The runtime is started with oom_score_adj 123; the container has 123."""
    cfg = lab.config("echo OOM=$(cat /proc/self/oom_score_adj)")

    def adj() -> None:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("123")

    result = lab.rt("run", "--bundle", str(lab.bundle(cfg)), lab.new_id(), preexec_fn=adj)
    assert result.ok, f"run failed: {result}"
    lab.expect_token(result.stdout)
    assert kv(result.stdout).get("OOM") == "123", f"oom_score_adj {kv(result.stdout).get('OOM')}"


def test_user_ids(lab):
    """config.md § Process / POSIX user (MUST): "uid (int, REQUIRED) specifies the user ID in the
    container namespace. gid ... additionalGids (array of ints, OPTIONAL) specifies additional group
    IDs in the container namespace to be added to the process."

    uid 1000, gid 100, additional groups 5 and 1000."""
    cfg = lab.config(
        "echo UID=$(id -u) GID=$(id -g); echo GROUPS=$(grep ^Groups /proc/self/status | cut -f2)"
    )
    cfg["process"]["user"] = {"uid": 1000, "gid": 100, "additionalGids": [5, 1000]}
    got = lab.run_ok(cfg)
    line = [ln for ln in got["_out"].splitlines() if ln.startswith("UID=")][0]
    assert line == "UID=1000 GID=100", line
    assert set(got.get("GROUPS", "").split()) == {"5", "1000"}, f"groups {got.get('GROUPS')!r}"


def test_user_umask(lab):
    """config.md § Process / POSIX user (MUST): "umask (int, OPTIONAL) specifies the umask of the
    user." """
    cfg = lab.config("echo UMASK=$(umask)")
    cfg["process"]["user"]["umask"] = 0o027
    assert lab.run_ok(cfg).get("UMASK") == "0027"


def test_hostname(lab):
    """config.md § Hostname (MUST): "hostname (string, OPTIONAL) specifies the container's hostname
        as
    seen by processes running inside the container." """
    cfg = lab.config("echo HOST=$(hostname)")
    cfg["hostname"] = "oci-hostname-test"
    assert lab.run_ok(cfg).get("HOST") == "oci-hostname-test"


def test_domainname(lab):
    """config.md § Domainname (MUST): "domainname (string, OPTIONAL) specifies the container's
    domainname as seen by processes running inside the container." """
    cfg = lab.config("echo DOMAIN=$(cat /proc/sys/kernel/domainname)")
    cfg["domainname"] = "oci.example"
    assert lab.run_ok(cfg).get("DOMAIN") == "oci.example"


def test_apparmor_profile(lab):
    """config.md § Process / Linux (MUST): "apparmorProfile (string, OPTIONAL) specifies the name
        of the
    AppArmor profile for the process." """
    if not os.path.exists("/sys/module/apparmor/parameters/enabled"):
        lab.skip("AppArmor is not enabled on this host")
    cfg = lab.config("cat /proc/self/attr/apparmor/current")
    cfg["process"]["apparmorProfile"] = "unconfined"
    lab.run_ok(cfg)


def test_selinux_label(lab):
    """config.md § Process / Linux (MUST): "selinuxLabel (string, OPTIONAL) specifies the SELinux
        label
    for the process." """
    if not os.path.isdir("/sys/fs/selinux"):
        lab.skip("SELinux is not enabled on this host")
    lab.run_ok(lab.config())


def test_scheduler(lab):
    """config.md § Process / Linux (MUST): "scheduler (object, OPTIONAL) is an object describing the
    scheduler properties for the process."

    SCHED_BATCH with nice 7 (probe: sched_getscheduler, getpriority)."""
    cfg = lab.with_probe(lab.config("/ocitest/probe sched"))
    cfg["process"]["scheduler"] = {"policy": "SCHED_BATCH", "nice": 7}
    got = lab.run_ok(cfg)
    assert (got.get("SCHED_POLICY"), got.get("NICE")) == ("3", "7"), f"observed {got}"


def test_io_priority(lab):
    """config.md § Process / Linux (MUST): "ioPriority (object, OPTIONAL) configures the I/O
        priority
    settings for the container's processes within the process group."

    IOPRIO_CLASS_BE level 6 (probe: ioprio_get)."""
    cfg = lab.with_probe(lab.config("/ocitest/probe ioprio"))
    cfg["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 6}
    got = lab.run_ok(cfg)
    assert (got.get("IOPRIO_CLASS"), got.get("IOPRIO_LEVEL")) == ("2", "6"), f"observed {got}"


# --- Hooks ---------------------------------------------------------------------------------------
STATE_PID = 'pid=$(sed -n \'s/.*"pid": *\\([0-9][0-9]*\\).*/\\1/p\' "$STATE")'


def _recorder(lab: Lab, name: str, out: Path, body: str = "") -> dict:
    """A host hook script: saves its stdin to out/<name>.json, then runs `body` ($STATE names
    that file; $OUT the directory)."""
    script = lab.script(
        f"{name}.sh",
        f'OUT="{out}"; STATE="$OUT/{name}.json"; cat > "$STATE"\n'
        f'echo {name} >> "$OUT/order"\n{body}',
    )
    return lab.hook(script)


def _ns_lines(prefix: str) -> str:
    """Shell lines printing NS_<kind>=<readlink> of the running process to $OUT/<prefix>.ns."""
    return "\n".join(
        f'echo "NS_{k}=$(readlink /proc/self/ns/{k})" >> "$OUT/{prefix}.ns"'
        for k in ("mnt", "net", "uts", "ipc", "pid")
    )


def _ns_file(path: Path) -> dict[str, str]:
    return kv(path.read_text()) if path.exists() else {}


def _container_ns_script() -> str:
    return " ".join(
        f'echo "NS_{k}=$(readlink /proc/self/ns/{k})";' for k in ("mnt", "net", "uts", "ipc", "pid")
    )


def test_hooks_listed_order(lab):
    """config.md § POSIX-platform Hooks (MUST): "Hooks MUST be called in the listed order."

    Three createRuntime hooks append 1, 2, 3."""
    out = lab.out_dir("hooks-out")
    cfg = lab.config()
    cfg["hooks"] = {
        "createRuntime": [
            lab.hook(lab.script(f"h{i}.sh", f'echo {i} >> "{out}/seq"')) for i in (1, 2, 3)
        ]
    }
    lab.run_ok(cfg)
    assert (out / "seq").read_text().split() == ["1", "2", "3"]


def test_hooks_state_on_stdin(lab):
    """config.md § POSIX-platform Hooks (MUST): "The state of the container MUST be passed to hooks
    over stdin so that they may do work appropriate to the current state of the container."

    Every hook type gets the state JSON with this container's id and bundle."""
    out = lab.out_dir("hooks-out")
    cfg = lab.config()
    lab.bind_out(cfg, "hooks-out", "/hooks-out")
    hooks = {
        n: [_recorder(lab, n, out)]
        for n in ("prestart", "createRuntime", "createContainer", "poststart", "poststop")
    }
    hooks["startContainer"] = [
        {"path": "/bin/sh", "args": ["sh", "-c", "cat > /hooks-out/startContainer.json"]}
    ]
    cfg["hooks"] = hooks
    bundle = lab.bundle(cfg)
    cid = lab.create(bundle)
    lab.start(cid)
    lab.wait_token(cid)
    lab.wait_status(cid, "stopped")
    lab.delete(cid)
    problems = []
    for name in hooks:
        path = out / f"{name}.json"
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            problems.append(f"{name}: {err.__class__.__name__}")
            continue
        if state.get("id") != cid or os.path.realpath(state.get("bundle", "")) != os.path.realpath(
            bundle
        ):
            problems.append(f"{name}: id={state.get('id')!r} bundle={state.get('bundle')!r}")
    assert not problems, "hook stdin: " + "; ".join(problems)


def _before_pivot_hook(lab: Lab, stage: str, runtime_ns: bool) -> tuple[Path, dict]:
    """A `stage` hook recording whether the container's root is still the host's (a host-only
    marker file is visible from it: pivot_root has not happened) and whether the user program
    already ran."""
    out = lab.out_dir("hooks-out")
    marker = lab.dir / "host-only-marker"
    marker.write_text("x")
    # The container's root seen by a hook in the runtime's namespaces, or the hook's own.
    root = "/proc/$pid/root" if runtime_ns else ""
    seen = f'{STATE_PID}; [ -e "{root}{marker}" ]'
    root_check = f'{seen} && echo PIVOTED=no >> "$OUT/{stage}.obs"'
    outputs = f'"{lab.dir}/io/"*.container.out'
    ran = f"cat {outputs} 2>/dev/null | grep -q {lab.token} && echo RAN=yes || echo RAN=no"
    body = f'{root_check}\n({ran}) >> "$OUT/{stage}.obs"'
    cfg = lab.config()
    cfg["hooks"] = {stage: [_recorder(lab, stage, out, body)]}
    return out, cfg


def _create_stage_timing(lab: Lab, stage: str, runtime_ns: bool) -> None:
    out, cfg = _before_pivot_hook(lab, stage, runtime_ns)
    cid = lab.create(lab.bundle(cfg))
    called = (out / f"{stage}.json").exists()
    obs = _ns_file(out / f"{stage}.obs")
    lab.start(cid)
    lab.wait_token(cid)
    assert called, f"the {stage} hook was not called by create"
    assert obs.get("PIVOTED") == "no", (
        f"the {stage} hook ran after pivot_root (the container's root was no longer the host's)"
    )
    assert obs.get("RAN") == "no", f"the {stage} hook ran after the user program"


def test_prestart_timing(lab):
    """config.md § POSIX-platform Hooks / prestart (MUST): "The prestart hooks MUST be called as
        part
    of the create operation after the runtime environment has been created (according to the
    configuration in config.json) but before the pivot_root or any equivalent operation has been
    executed." """
    _create_stage_timing(lab, "prestart", runtime_ns=True)


def test_prestart_before_create_runtime(lab):
    """config.md § POSIX-platform Hooks / prestart (MUST): "The prestart hooks MUST be called before
    the createRuntime hooks." """
    out = lab.out_dir("hooks-out")
    cfg = lab.config()
    cfg["hooks"] = {s: [_recorder(lab, s, out)] for s in ("createRuntime", "prestart")}
    lab.run_ok(cfg)
    assert (out / "order").read_text().split() == ["prestart", "createRuntime"]


def _runtime_ns_hook(lab: Lab, stage: str) -> None:
    """The `stage` hook (a host-only path) runs, in the runtime's namespaces."""
    out = lab.out_dir("hooks-out")
    cfg = lab.config()
    cfg["hooks"] = {stage: [_recorder(lab, stage, out, _ns_lines(stage))]}
    cid = lab.create(lab.bundle(cfg))
    lab.start(cid)
    lab.wait_token(cid)
    lab.wait_status(cid, "stopped")
    lab.delete(cid)
    seen = _ns_file(out / f"{stage}.ns")
    assert seen, f"the {stage} hook (a path that exists only on the host) did not run"
    want = {f"NS_{k}": lab.runtime.ns(k) for k in ("mnt", "net", "uts", "ipc", "pid")}
    diff = {k: seen.get(k) for k in want if seen.get(k) != want[k]}
    assert not diff, f"the {stage} hook is not in the runtime's namespaces: {diff}"


def _runtime_path_hook(lab: Lab, stage: str) -> None:
    out = lab.out_dir("hooks-out")
    cfg = lab.config()
    cfg["hooks"] = {stage: [_recorder(lab, stage, out)]}
    cid = lab.create(lab.bundle(cfg))
    lab.start(cid)
    lab.wait_token(cid)
    lab.wait_status(cid, "stopped")
    lab.delete(cid)
    assert (out / f"{stage}.json").exists(), f"the {stage} hook at a host path did not run"


def test_prestart_path_runtime_ns(lab):
    """config.md § POSIX-platform Hooks / prestart (MUST): "The prestart hooks' path MUST resolve in
    the runtime namespace." """
    _runtime_path_hook(lab, "prestart")


def test_prestart_runtime_ns(lab):
    """config.md § POSIX-platform Hooks / prestart (MUST): "The prestart hooks MUST be executed in
        the
    runtime namespace." """
    _runtime_ns_hook(lab, "prestart")


def test_create_runtime_timing(lab):
    """config.md § POSIX-platform Hooks / createRuntime (MUST): "The createRuntime hooks MUST be
    called as part of the create operation after the runtime environment has been created (according
    to the configuration in config.json) but before the pivot_root or any equivalent operation has
    been executed." """
    _create_stage_timing(lab, "createRuntime", runtime_ns=True)


def test_create_runtime_path_runtime_ns(lab):
    """config.md § POSIX-platform Hooks / createRuntime (MUST): "The createRuntime hooks' path MUST
    resolve in the runtime namespace." """
    _runtime_path_hook(lab, "createRuntime")


def test_create_runtime_runtime_ns(lab):
    """config.md § POSIX-platform Hooks / createRuntime (MUST): "The createRuntime hooks MUST be
    executed in the runtime namespace." """
    _runtime_ns_hook(lab, "createRuntime")


def test_create_container_timing(lab):
    """config.md § POSIX-platform Hooks / createContainer (MUST): "The createContainer hooks MUST be
    called as part of the create operation after the runtime environment has been created (according
    to the configuration in config.json) but before the pivot_root or any equivalent operation has
    been executed." """
    _create_stage_timing(lab, "createContainer", runtime_ns=False)


def test_create_container_after_create_runtime(lab):
    """config.md § POSIX-platform Hooks / createContainer (MUST): "The createContainer hooks MUST be
    called after the createRuntime hooks." """
    out = lab.out_dir("hooks-out")
    cfg = lab.config()
    cfg["hooks"] = {s: [_recorder(lab, s, out)] for s in ("createContainer", "createRuntime")}
    lab.run_ok(cfg)
    assert (out / "order").read_text().split() == ["createRuntime", "createContainer"]


def test_create_container_path_runtime_ns(lab):
    """config.md § POSIX-platform Hooks / createContainer (MUST): "The createContainer hooks' path
    MUST resolve in the runtime namespace." """
    _runtime_path_hook(lab, "createContainer")


def test_create_container_container_ns(lab):
    """config.md § POSIX-platform Hooks / createContainer (MUST): "The createContainer hooks MUST be
    executed in the container namespace."

    The hook's namespaces are the container process's."""
    out = lab.out_dir("hooks-out")
    cfg = lab.config(_container_ns_script())
    cfg["hooks"] = {"createContainer": [_recorder(lab, "createContainer", out, _ns_lines("cc"))]}
    got = lab.run_ok(cfg)
    seen = _ns_file(out / "cc.ns")
    want = {k: v for k, v in got.items() if k.startswith("NS_")}
    diff = {k: (seen.get(k), want[k]) for k in want if seen.get(k) != want[k]}
    assert not diff, f"createContainer hook vs container namespaces (hook, container): {diff}"


def _start_container_config(lab: Lab, script: str) -> tuple[dict, Path]:
    cfg = lab.config(script)
    out = lab.bind_out(cfg, "hooks-out", "/hooks-out")
    return cfg, out


def test_start_container_timing(lab):
    """config.md § POSIX-platform Hooks / startContainer (MUST): "The startContainer hooks MUST be
    called before the user-specified process is executed as part of the start operation."

    Not called by create; called by start, before the program (both append to one file)."""
    cfg, out = _start_container_config(lab, "echo prog >> /hooks-out/order")
    cfg["hooks"] = {
        "startContainer": [
            {"path": "/bin/sh", "args": ["sh", "-c", "echo hook >> /hooks-out/order"]}
        ]
    }
    cid = lab.create(lab.bundle(cfg))
    time.sleep(0.1)
    at_create = (out / "order").read_text().split() if (out / "order").exists() else []
    lab.start(cid)
    lab.wait_token(cid)
    lab.wait_status(cid, "stopped")
    assert at_create == [], f"startContainer hook called by create ({at_create})"
    assert (out / "order").read_text().split() == ["hook", "prog"]


def test_start_container_path_container_ns(lab):
    """config.md § POSIX-platform Hooks / startContainer (MUST): "The startContainer hooks' path
        MUST
    resolve in the container namespace."

    The hook is a script that exists only inside the rootfs."""
    cfg, out = _start_container_config(lab, ":")
    name = f"/ocitest-hook-{lab.mark[:8]}.sh"
    cfg["hooks"] = {"startContainer": [{"path": name, "args": [name]}]}
    bundle = lab.bundle(cfg)
    lab.script(name.lstrip("/"), "echo ran > /hooks-out/start-hook", where=bundle / "rootfs")
    assert not os.path.exists(name)
    result = lab.run(bundle)
    assert result.ok, f"run failed: {result}"
    lab.expect_token(result.stdout)
    assert (out / "start-hook").exists(), "the startContainer hook inside the rootfs did not run"


def test_start_container_container_ns(lab):
    """config.md § POSIX-platform Hooks / startContainer (MUST): "The startContainer hooks MUST be
    executed in the container namespace." """
    script = _container_ns_script()
    cfg, out = _start_container_config(lab, script)
    lines = script.replace(";", " >> /hooks-out/sc.ns;")
    cfg["hooks"] = {"startContainer": [{"path": "/bin/sh", "args": ["sh", "-c", lines]}]}
    got = lab.run_ok(cfg)
    seen = _ns_file(out / "sc.ns")
    want = {k: v for k, v in got.items() if k.startswith("NS_")}
    diff = {k: (seen.get(k), want[k]) for k in want if seen.get(k) != want[k]}
    assert not diff, f"startContainer hook vs container namespaces (hook, container): {diff}"


def test_poststart_timing(lab):
    """config.md § POSIX-platform Hooks / poststart (MUST): "The poststart hooks MUST be called
        after
    the user-specified process is executed but before the start operation returns."

    Not called by create; when start returns, it has run, and it saw the container process running
    the configured program (argv[0] "sh" or "sleep", not the runtime's)."""
    out = lab.out_dir("hooks-out")
    body = f'{STATE_PID}; tr "\\0" " " < /proc/$pid/cmdline > "$OUT/cmdline"'
    cfg = lab.config("exec sleep 42")
    cfg["hooks"] = {"poststart": [_recorder(lab, "poststart", out, body)]}
    cid = lab.create(lab.bundle(cfg))
    at_create = (out / "poststart.json").exists()
    lab.start(cid)
    at_start = (out / "cmdline").read_text() if (out / "cmdline").exists() else None
    lab.wait_token(cid)
    assert not at_create, "the poststart hook ran during create, before the program was executed"
    assert at_start is not None, "the poststart hook had not run when start returned"
    assert at_start.split()[:1] in (["sh"], ["sleep"]), (
        f"the hook saw the process running {at_start!r}"
    )


def test_poststart_path_runtime_ns(lab):
    """config.md § POSIX-platform Hooks / poststart (MUST): "The poststart hooks' path MUST resolve
        in
    the runtime namespace." """
    _runtime_path_hook(lab, "poststart")


def test_poststart_runtime_ns(lab):
    """config.md § POSIX-platform Hooks / poststart (MUST): "The poststart hooks MUST be executed in
    the runtime namespace." """
    _runtime_ns_hook(lab, "poststart")


def test_poststop_timing(lab):
    """config.md § POSIX-platform Hooks / poststop (MUST): "The poststop hooks MUST be called after
        the
    container is deleted but before the delete operation returns."

    When the hook runs the container process is gone; when delete returns, the hook has run."""
    out = lab.out_dir("hooks-out")
    cfg = lab.config()
    # A zombie is gone as far as the container goes (reaping it is its parent's business).
    alive = 'p=$(cat "$OUT/pid"); st=$(sed "s/.*) //" /proc/$p/stat 2>/dev/null | cut -d" " -f1)'
    report = '[ -n "$st" ] && [ "$st" != Z ] && echo ALIVE=$st >> "$OUT/obs"'
    body = f'{alive}; {report}; echo DONE=1 >> "$OUT/obs"'
    cfg["hooks"] = {"poststop": [_recorder(lab, "poststop", out, body)]}
    cid = lab.create(lab.bundle(cfg))
    (out / "pid").write_text(f"{lab.state(cid)['pid']}\n")
    lab.start(cid)
    lab.wait_token(cid)
    lab.wait_status(cid, "stopped")
    lab.delete(cid)
    obs = _ns_file(out / "obs")
    assert obs.get("DONE") == "1", "the poststop hook had not run when delete returned"
    assert "ALIVE" not in obs, "the container process still existed when the poststop hook ran"


def test_poststop_path_runtime_ns(lab):
    """config.md § POSIX-platform Hooks / poststop (MUST): "The poststop hooks' path MUST resolve in
    the runtime namespace." """
    _runtime_path_hook(lab, "poststop")


def test_poststop_runtime_ns(lab):
    """config.md § POSIX-platform Hooks / poststop (MUST): "The poststop hooks MUST be executed in
        the
    runtime namespace." """
    _runtime_ns_hook(lab, "poststop")


# --- Extensibility and valid values --------------------------------------------------------------
def test_unknown_properties_no_error(lab):
    """config.md § Extensibility (MUST NOT): "Runtimes that are reading or processing this
    configuration file MUST NOT generate an error if they encounter an unknown property."

    Unknown properties at the top level, in process, root, a mount, linux and linux.resources,
    and in the nested objects: process.capabilities (beside the five sets), process.user, an
    rlimit, a namespace, a resources device rule, and an unknown kind of hook."""
    cfg = lab.config()
    cfg["org.ocitest.unknown"] = {"a": 1}
    cfg["process"]["ocitestUnknown"] = True
    cfg["root"]["ocitestUnknown"] = "x"
    cfg["mounts"][0]["ocitestUnknown"] = [1]
    cfg["linux"]["ocitestUnknown"] = {}
    cfg["linux"]["resources"] = {
        "ocitestUnknown": 1,
        "devices": [{"allow": False, "access": "rwm", "ocitestUnknown": 1}],
    }
    process = cfg["process"]
    process.setdefault("capabilities", {})["ocitestUnknown"] = ["CAP_KILL"]
    process.setdefault("user", {"uid": 0, "gid": 0})["ocitestUnknown"] = 1
    process["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 1024, "ocitestX": 1}]
    cfg["linux"]["namespaces"][0]["ocitestUnknown"] = 1
    cfg.setdefault("hooks", {})["ocitestUnknownKind"] = [{"path": "/ocitest/no/such/hook"}]
    lab.run_ok(cfg)


def test_unknown_properties_ignored(lab):
    """config.md § Extensibility (MUST): "Instead they MUST ignore unknown properties."

    An unknown property that looks like process.env has no effect."""
    cfg = lab.config('echo "SEEN=${OCITEST_IGNORED:-none}"')
    cfg["process"]["ocitestEnv"] = ["OCITEST_IGNORED=yes"]
    cfg["ocitestProcess"] = {"env": ["OCITEST_IGNORED=yes"]}
    assert lab.run_ok(cfg).get("SEEN") == "none"


def test_invalid_values_error(lab):
    """config.md § Valid values (MUST): "Runtimes that are reading or processing this configuration
    file MUST generate an error when invalid or unsupported values are encountered."

    A namespace type that does not exist, and a rootfsPropagation that does not exist."""
    cfg = lab.config()
    lab.control(cfg)
    accepted = []
    for name, patch in (
        (
            "linux.namespaces[].type 'ocitest'",
            lambda c: c["linux"]["namespaces"].append({"type": "ocitest"}),
        ),
        (
            "linux.rootfsPropagation 'sideways'",
            lambda c: c["linux"].__setitem__("rootfsPropagation", "sideways"),
        ),
    ):
        bad = json.loads(json.dumps(cfg))
        patch(bad)
        result = lab.run(lab.bundle(bad))
        if result.ok:
            accepted.append(name)
    assert not accepted, "accepted: " + ", ".join(accepted)
