"""Another owner's cgroup is never harmed (security review, cgroups).

With `linux.cgroupsPath` naming an existing cgroup that held a host process, `create` used it
and `delete --force` SIGKILLed that process and removed the directory; with `/` it would have
targeted the whole host. Now `create` refuses a cgroup that holds any process (in any
hierarchy, at any depth) or is frozen, as runc 1.2 does; pyoci removes only the directories it
made, and signals only the container's own processes.

Each attack is real: a host `sleep` in a cgroup the test makes (v1 under the pids hierarchy,
cgroup2 under the unified one), then the runtime is pointed at it. The test's cgroups are
named `pyoci-sec-<random>` and removed at the end, with anything left in them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from attack import pyoci_bin, runtime_is_pyoci, static_program  # noqa: F401

CGROUP_ROOT = "/sys/fs/cgroup"


class Hierarchy(NamedTuple):
    mount: str
    key: str  # the controllers field of /proc/PID/cgroup: '' for cgroup2


def hierarchies() -> list[Hierarchy]:
    """Every cgroup hierarchy mounted under /sys/fs/cgroup (the first mount of each)."""
    own_keys = [line.split(":", 2)[1] for line in Path("/proc/self/cgroup").read_text().split()]
    found: dict[str, Hierarchy] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        mount, rest = left.split()[4], right.split()
        if len(rest) < 3 or not (mount == CGROUP_ROOT or mount.startswith(CGROUP_ROOT + "/")):
            continue
        if rest[0] == "cgroup2":
            key = ""
        elif rest[0] == "cgroup":
            options = set(rest[2].split(","))
            keys = [k for k in own_keys if k and set(k.split(",")) <= options]
            if not keys:
                continue
            key = keys[0]
        else:
            continue
        found.setdefault(key, Hierarchy(mount, key))
    return list(found.values())


def v1_mount(controller: str) -> str:
    for h in hierarchies():
        if h.key and controller in h.key.split(","):
            return h.mount
    pytest.skip(f"no cgroup v1 {controller} hierarchy on this host")


def v2_mount() -> str:
    for h in hierarchies():
        if h.key == "":
            return h.mount
    pytest.skip("no cgroup2 hierarchy on this host")


def procs(directory: str) -> list[int]:
    try:
        return [int(p) for p in Path(directory, "cgroup.procs").read_text().split()]
    except FileNotFoundError:
        return []


def dirs_named(name: str) -> list[str]:
    """Every directory of any hierarchy whose path contains `name`."""
    found = []
    for h in hierarchies():
        for top, dirnames, _ in os.walk(h.mount):
            for d in list(dirnames):
                if name in d:
                    found.append(os.path.join(top, d))
    return sorted(found)


def remove_trees(directories: list[str]) -> None:
    """Thaw every cgroup of the trees (top-down: a frozen parent keeps its children frozen),
    kill what is inside (only the test's own processes can be there, in any hierarchy),
    then rmdir children first."""
    walks = [sorted(os.walk(d), key=lambda t: t[0].count("/")) for d in directories]
    tops = [top for walk in walks for top, _, _ in walk]
    for top in tops:
        for name, value in (("freezer.state", "THAWED"), ("cgroup.freeze", "0")):
            with contextlib.suppress(OSError):
                if os.path.exists(os.path.join(top, name)):
                    Path(top, name).write_text(value)
    for top in tops:
        for pid in procs(top):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    for top in sorted(tops, key=lambda t: -t.count("/")):
        for _ in range(250):
            try:
                os.rmdir(top)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)


class OwnCgroups:
    """The test's own cgroup name and the directories made with it."""

    def __init__(self) -> None:
        self.name = f"pyoci-sec-{uuid.uuid4().hex[:10]}"
        self.made: list[str] = []

    def make(self, mount: str, below: str = "") -> str:
        directory = os.path.join(mount, self.name, below)
        os.makedirs(directory)
        self.made.append(os.path.join(mount, self.name))
        return directory

    def leftovers(self) -> list[str]:
        """Directories with our name that the test did not make."""
        return [d for d in dirs_named(self.name) if d not in self.made]


@pytest.fixture
def test_cgroups() -> Iterator[OwnCgroups]:
    if os.geteuid() != 0:
        pytest.skip("needs root: the test makes cgroups")
    cgroups = OwnCgroups()
    yield cgroups
    remove_trees([d for d in dirs_named(cgroups.name) if os.path.basename(d) == cgroups.name])


@pytest.fixture
def host_sleeps() -> Iterator[Callable[[str | None], subprocess.Popen]]:
    """`start(cgroup_dir)`: a host `sleep` (placed in `cgroup_dir` if given); killed at the
    end (teardown before the runner's, which must then delete what is left)."""
    started: list[subprocess.Popen] = []

    def start(cgroup_dir: str | None = None) -> subprocess.Popen:
        proc = subprocess.Popen(["sleep", "1000"])
        started.append(proc)
        if cgroup_dir:
            Path(cgroup_dir, "cgroup.procs").write_text(str(proc.pid))
            assert proc.pid in procs(cgroup_dir)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.wait()


def alive(proc: subprocess.Popen) -> bool:
    return proc.poll() is None


def with_cgroups_path(path: str) -> Callable[[dict], None]:
    def patch(config: dict) -> None:
        config["linux"]["cgroupsPath"] = path

    return patch


def only_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line on stderr:\n{stderr}"
    return lines[0]


def disarm(pyoci, cid: str) -> None:
    """A runtime that wrongly accepted a dangerous cgroup: SIGKILL its init by pid and drop
    its state by hand, so that no `delete --force` (the runner's teardown included) ever
    signals the cgroup."""
    state = pyoci.root / cid / "state.json"
    with contextlib.suppress(FileNotFoundError, ValueError, KeyError, ProcessLookupError):
        os.kill(json.loads(state.read_text())["pid"], signal.SIGKILL)
    shutil.rmtree(pyoci.root / cid, ignore_errors=True)


def refused(pyoci, b, cid: str, *fragments: str, timeout: float = 20) -> None:
    """`create` exits 1 with one line naming linux.cgroupsPath and each fragment; no state."""
    try:
        result = pyoci("create", "--bundle", str(b.path), cid, timeout=timeout)
    except subprocess.TimeoutExpired:
        pytest.fail(f"create hung (more than {timeout}s): the init is stuck in the cgroup")
    if result.returncode == 0:
        disarm(pyoci, cid)
        pytest.fail("create accepted the cgroup")
    if runtime_is_pyoci():
        line = only_line(result.stderr)
        for fragment in ("linux.cgroupsPath", *fragments):
            assert fragment in line, f"{fragment!r} not in {line!r}"
    assert pyoci.state_entries() == []


# === create refuses a cgroup in use ==============================================================
NON_EMPTY = {
    # name: (hierarchy, where the host process is below the named cgroup)
    "v1": ("pids", ""),
    "v1-in-a-child": ("pids", "inner"),
    "v2": ("unified", ""),
}


@pytest.mark.parametrize("case", list(NON_EMPTY))
def test_create_refuses_a_cgroup_holding_a_host_process(
    test_cgroups, pyoci, bundle, new_id, host_sleeps, case
):
    """The host process survives create and a later `delete --force` of the id, and the
    runtime makes no directory of its own for that path in any hierarchy."""
    if not runtime_is_pyoci():
        pytest.skip("runc 1.1.5 only warns (deprecated) about a non-empty cgroup; runc 1.2 refuses")
    hierarchy, below = NON_EMPTY[case]
    mount = v1_mount(hierarchy) if hierarchy != "unified" else v2_mount()
    sleeper = host_sleeps(test_cgroups.make(mount, below))
    cid = new_id("owner")
    b = bundle(["sleep", "100"], patch=with_cgroups_path("/" + test_cgroups.name))
    refused(pyoci, b, cid, "not empty", str(sleeper.pid))
    assert pyoci("delete", "--force", cid).returncode == 0  # unknown id: nothing to do
    assert alive(sleeper)
    assert sleeper.pid in procs(os.path.join(mount, test_cgroups.name, below))
    assert test_cgroups.leftovers() == []
    pyoci.assert_nothing_left()


# `sh -c SANDBOX sandbox ARGV...` as PID 1 of a new pid namespace (with its own /proc): ARGV
# runs beside a canary `sleep` in the same cgroups, which stands for the host. At the end the
# canary is stopped by SIGTERM and its status printed: CANARY=143 if it lived until then,
# CANARY=137 if something SIGKILLed it.
SANDBOX = 'sleep 1000 & c=$!; "$@"; rc=$?; kill $c; wait $c 2>/dev/null; echo "CANARY=$?"; exit $rc'


def sandboxed(pyoci, *args: str) -> subprocess.CompletedProcess:
    """The runtime in a pid namespace of its own: a runtime that accepts `/` sees (and can
    kill) only that namespace's processes. Today's baseline shows why: a create that failed
    after joining `/` SIGKILLed every process of the root cgroup it could see."""
    argv = ["unshare", "--pid", "--fork", "--mount-proc", "sh", "-c", SANDBOX, "sandbox"]
    return subprocess.run(
        [*argv, *pyoci.argv(args)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_root_cgroup_is_refused(pyoci, bundle, new_id):
    """cgroupsPath `/` names every hierarchy's root, which holds the whole host: `create` is
    refused, and neither it nor `delete --force` / `kill --all` of the id signals anything
    (the canary beside them lives)."""
    if not runtime_is_pyoci():
        pytest.skip(
            "runc 1.1.5 accepts `/` (it predates runc 1.2's check), and when its create then "
            "fails it removes every empty cgroup of the host: never run against it"
        )
    cid = new_id("root")
    b = bundle(["sleep", "100"], patch=with_cgroups_path("/"))
    result = sandboxed(pyoci, "create", "--bundle", str(b.path), cid)
    left = pyoci.state_entries()
    for entry in left:
        # Never `delete` what a runtime left: that would signal the root cgroup (a container
        # died with the sandbox's pid namespace; only its state can be left).
        shutil.rmtree(pyoci.root / entry, ignore_errors=True)
    assert "CANARY=143" in result.stdout, f"create killed a process beside it: {result.stdout}"
    assert left == [], f"create left state: {left}"
    assert result.returncode == 1, "create accepted the root cgroup"
    line = only_line(result.stderr)
    assert "linux.cgroupsPath '/'" in line and "not empty" in line, line
    for args in (("delete", "--force", cid), ("kill", "--all", cid, "KILL")):
        result = sandboxed(pyoci, *args)
        assert "CANARY=143" in result.stdout, (args, result.stdout, result.stderr)
    pyoci.assert_nothing_left()


FROZEN = {
    # name: (hierarchy, freeze file, value, cgroupsPath below the frozen cgroup)
    "v1": ("freezer", "freezer.state", "FROZEN", ""),
    "v2": ("unified", "cgroup.freeze", "1", ""),
    "v1-new-child-of-a-frozen-parent": ("freezer", "freezer.state", "FROZEN", "child"),
}


@pytest.mark.parametrize("case", list(FROZEN))
def test_create_refuses_a_frozen_cgroup(test_cgroups, pyoci, bundle, new_id, case):
    """A frozen cgroup (or a new one under a frozen parent, which is born frozen) would hold
    the init forever: refused, and a child the runtime made for it is removed again."""
    hierarchy, freeze_file, value, below = FROZEN[case]
    if not runtime_is_pyoci() and (hierarchy == "unified" or below):
        pytest.skip("runc 1.1.5 checks only its own cgroup's v1 freezer before it creates it")
    mount = v1_mount(hierarchy) if hierarchy != "unified" else v2_mount()
    frozen = test_cgroups.make(mount)
    Path(frozen, freeze_file).write_text(value)
    cid = new_id("frozen")
    path = os.path.join("/", test_cgroups.name, below)
    b = bundle(["sleep", "100"], patch=with_cgroups_path(path))
    refused(pyoci, b, cid, "frozen", timeout=10)
    assert test_cgroups.leftovers() == []
    pyoci.assert_nothing_left()


# === delete removes only what the runtime made ===================================================
def test_an_existing_empty_cgroup_is_used_and_kept(
    test_cgroups, pyoci, bundle, new_id, host_sleeps
):
    """An empty cgroup made by someone else (here in the v1 pids and the cgroup2 hierarchy)
    may hold a container; `delete` leaves it, and removes the directories the runtime made:
    the same path in the other hierarchies, and a sub-cgroup of the existing one."""
    if not runtime_is_pyoci():
        pytest.skip("runc removes the container's cgroup at delete even where it did not make it")
    existing = [test_cgroups.make(v1_mount("pids")), test_cgroups.make(v2_mount())]
    for cgroups_path in ("/" + test_cgroups.name, f"/{test_cgroups.name}/sub"):
        cid = new_id("reuse")
        b = bundle(["sleep", "100"], patch=with_cgroups_path(cgroups_path))
        pyoci.create_ok(b, cid)
        init = pyoci.state(cid)["pid"]
        below = "sub" if cgroups_path.endswith("/sub") else ""
        for directory in existing:
            target = os.path.join(directory, below)
            assert init in procs(target), (target, procs(target))
        made = test_cgroups.leftovers()
        assert made, "the runtime made the path in the other hierarchies"
        result = pyoci("delete", "--force", cid)
        assert result.returncode == 0, result.stderr
        for directory in existing:
            assert os.path.isdir(directory), f"{directory} (not the runtime's) was removed"
        assert test_cgroups.leftovers() == [], "a directory the runtime made is left"
    pyoci.assert_nothing_left()


# === kill --all and delete --force signal only the container =====================================
def container_dirs(pid: int) -> list[str]:
    """The host directory of every cgroup `pid` is in, one per hierarchy."""
    by_key = {h.key: h.mount for h in hierarchies()}
    out = []
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, key, path = line.split(":", 2)
        if key in by_key:
            out.append(os.path.normpath(by_key[key] + "/" + path.lstrip("/")))
    return out


def move(pid: int, directories: list[str]) -> None:
    for directory in directories:
        Path(directory, "cgroup.procs").write_text(str(pid))


def start_with_intruder(pyoci, bundle, new_id, host_sleeps) -> tuple[str, int, subprocess.Popen]:
    """A running container (own pid namespace, its own new cgroup) into whose every cgroup
    a host `sleep` was then moved: in its cgroup, but not one of its processes."""
    cid = new_id("intr")
    pyoci.create_ok(bundle(["sleep", "100"]), cid)
    assert pyoci("start", cid).returncode == 0
    init = pyoci.state(cid)["pid"]
    intruder = host_sleeps(None)
    move(intruder.pid, container_dirs(init))
    return cid, init, intruder


def test_kill_all_spares_a_host_process_in_the_cgroup(pyoci, bundle, new_id, host_sleeps):
    if not runtime_is_pyoci():
        pytest.skip("runc 1.1.5's kill --all signals every process in the cgroup")
    cid, init, intruder = start_with_intruder(pyoci, bundle, new_id, host_sleeps)
    own_dirs = container_dirs(init)
    result = pyoci("kill", "--all", cid, "KILL")
    assert result.returncode == 0, result.stderr
    pyoci.wait_status(cid, "stopped")
    time.sleep(0.2)
    assert alive(intruder), "kill --all killed a host process"
    # The cgroup it made cannot go while the host process is in it: delete says so, keeps
    # the container, and works once the process has left.
    result = pyoci("delete", cid)
    assert result.returncode == 1
    assert str(intruder.pid) in only_line(result.stderr)
    assert alive(intruder)
    root_dirs = [os.path.join(h.mount, "cgroup.procs") for h in hierarchies()]
    for procs_file in root_dirs:
        Path(procs_file).write_text(str(intruder.pid))
    result = pyoci("delete", cid)
    assert result.returncode == 0, result.stderr
    assert [d for d in own_dirs if os.path.exists(d)] == []
    assert alive(intruder)
    pyoci.assert_nothing_left()


def test_delete_force_spares_a_host_process_in_the_cgroup(pyoci, bundle, new_id, host_sleeps):
    """`delete --force` ends the container but never signals a process that is not its own;
    the cgroup that still holds it stays, with a warning, as runc leaves it (a shim retrying
    a failed forced delete forever would help nobody)."""
    cid, init, intruder = start_with_intruder(pyoci, bundle, new_id, host_sleeps)
    own_dirs = container_dirs(init)
    result = pyoci("delete", "--force", cid)
    time.sleep(0.2)
    assert alive(intruder), "delete --force killed a host process"
    assert result.returncode == 0, result.stderr
    assert pyoci("state", cid).returncode != 0
    assert any(os.path.exists(d) for d in own_dirs), "a cgroup holding a process was removed"
    intruder.kill()
    intruder.wait()
    remove_trees([d for d in own_dirs if os.path.exists(d)])
    pyoci.assert_nothing_left()
