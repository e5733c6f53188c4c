"""cgroup behaviour beyond test_cgroups.py, each on real containers:

- realtime budgets: `linux.resources.cpu.realtimeRuntime` (and SCHED_FIFO in the container)
  works below `/pyoci` and below parents pyoci makes, which start with no budget; the budget
  goes back at delete; a parent someone else made is never touched;
- sub-cgroups made inside the container's cgroup (by the workload through a writable cgroup
  mount, or from the host) are removed, depth first, by `delete`;
- the `cgroup` mount on a cgroup2-only host, with and without user and cgroup namespaces,
  shows the container's own cgroup and nothing above it;
- `pids.limit` 0 is a limit (runtime-spec 1.3): the init is born, nothing can fork; 1 works;
- `exec --cgroup` (runc's syntax) runs the process in a sub-cgroup of the container's;
- every `runc update` flag, as this machine's runc spells it, changes the file runc changes.

Helpers and the leftover check (`no_cgroup_left`) come from test_cgroups.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import test_cgroups
from helpers import PURE_V2_VIEW, give_rootfs_to, one_line_error, parse_mountinfo
from test_cgroups import (
    MiB,
    add_namespace,
    default_dirs,
    delete_force,
    expected_dirs,
    expected_paths,
    hierarchies,
    last_cpu,
    leftover_dirs,
    need_v1,
    read,
    remove_cgroup_tree,
    resources_patch,
    run_under,
    start_sleeper,
    v1_hierarchy,
    v2_hierarchy,
)

# test_cgroups' fixtures: ids remembered, and no cgroup directory of them left after a test.
container_ids = test_cgroups.container_ids
new_id = test_cgroups.new_id
no_cgroup_left = test_cgroups.no_cgroup_left

RUNC = shutil.which("runc") or "/usr/sbin/runc"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def need_rt_group_sched():
    h = need_v1("cpu")
    if not os.path.exists(os.path.join(h.mount, "cpu.rt_runtime_us")):
        pytest.skip("no cpu.rt_runtime_us: the kernel has no RT group scheduling")
    return h


def rt_runtime(directory: str) -> int:
    return int(read(os.path.join(directory, "cpu.rt_runtime_us")))


def share(directory: str) -> float:
    runtime, period = rt_runtime(directory), int(read(f"{directory}/cpu.rt_period_us"))
    return runtime / period


def children_share(directory: str) -> float:
    return sum(share(e.path) for e in os.scandir(directory) if e.is_dir())


def budget_returned(parent: str, before: int) -> bool:
    """What pyoci gave `parent` went back: it holds what it held before, or no more than its
    remaining children (another test's containers, running meanwhile) need."""
    return rt_runtime(parent) <= before or share(parent) <= children_share(parent) + 1e-6


@contextlib.contextmanager
def foreign_cgroup(h, name: str) -> Iterator[str]:
    """A cgroup the test makes (a parent pyoci did not make) and removes."""
    directory = os.path.join(h.mount, name)
    os.mkdir(directory)
    try:
        yield directory
    finally:
        remove_cgroup_tree(directory)


# === 1. realtime budgets =========================================================================
RT_SCRIPT = "cut -d' ' -f41 /proc/$$/stat; cat /sys/fs/cgroup/cpu/cpu.rt_runtime_us"


def rt_patch(runtime: int, period: int = 100000, path: str | None = None):
    def patch(c: dict) -> None:
        c["linux"]["resources"] = {"cpu": {"realtimePeriod": period, "realtimeRuntime": runtime}}
        c["process"]["scheduler"] = {"policy": "SCHED_FIFO", "priority": 10}
        if path:
            c["linux"]["cgroupsPath"] = path

    return patch


def test_realtime_runtime_below_the_default_parent(pyoci, bundle, new_id):
    """/pyoci starts with no realtime budget: pyoci gives it what the container asks, the
    program runs SCHED_FIFO (policy 1) with its runtime, and the budget goes back at delete."""
    h = need_rt_group_sched()
    cid = new_id("rt")
    parent = os.path.dirname(default_dirs(cid)[h.name])
    before = rt_runtime(parent) if os.path.isdir(parent) else 0
    result = pyoci.run(bundle(RT_SCRIPT, patch=rt_patch(10000)), cid)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "10000"], result.stdout
    assert budget_returned(parent, before), "the budget pyoci gave /pyoci was not returned"


def test_realtime_budgets_add_up_and_go_back(pyoci, bundle, new_id):
    """Two containers at once below /pyoci: it holds the sum of their shares; deleting one
    gives its share back, deleting both all of it."""
    h = need_rt_group_sched()
    ids = [new_id("rt"), new_id("rt")]
    dirs = [default_dirs(cid)[h.name] for cid in ids]
    parent = os.path.dirname(dirs[0])
    before = rt_runtime(parent) if os.path.isdir(parent) else 0
    for cid, runtime in zip(ids, (10000, 20000), strict=True):
        start_sleeper(pyoci, bundle, cid, patch=rt_patch(runtime))
    assert [rt_runtime(d) for d in dirs] == [10000, 20000]
    assert share(parent) >= 0.3, rt_runtime(parent)
    held = rt_runtime(parent)
    delete_force(pyoci, ids[0])
    assert share(parent) >= 0.2 and rt_runtime(parent) < held, rt_runtime(parent)
    delete_force(pyoci, ids[1])
    assert budget_returned(parent, before)


def test_realtime_budget_of_parents_the_create_made(pyoci, bundle, new_id):
    """cgroupsPath /TOP/mid/ID: create makes TOP and TOP/mid, each gets the budget, and they go
    with the container."""
    h = need_rt_group_sched()
    top, cid = unique("pyoci-cgspec"), new_id("rt")
    directory = expected_dirs(f"/{top}/mid/{cid}")[h.name]
    try:
        start_sleeper(pyoci, bundle, cid, patch=rt_patch(30000, path=f"/{top}/mid/{cid}"))
        assert rt_runtime(directory) == 30000
        for ancestor in (os.path.dirname(directory), os.path.dirname(os.path.dirname(directory))):
            assert share(ancestor) >= 0.3, (ancestor, rt_runtime(ancestor))
        delete_force(pyoci, cid)
        assert not os.path.exists(os.path.join(h.mount, top))
    finally:
        for hierarchy in hierarchies():
            remove_cgroup_tree(os.path.join(hierarchy.mount, top))


def test_update_realtime_runtime_raises_the_budget(pyoci, bundle, new_id):
    """`update --cpu-rt-runtime` (runc's flag) on a container created without one."""
    h = need_rt_group_sched()
    cid = new_id("rt")
    start_sleeper(pyoci, bundle, cid)
    directory = default_dirs(cid)[h.name]
    result = pyoci("update", "--cpu-rt-period", "100000", "--cpu-rt-runtime", "20000", cid)
    assert result.returncode == 0, result.stderr
    assert rt_runtime(directory) == 20000
    assert share(os.path.dirname(directory)) >= 0.2
    delete_force(pyoci, cid)


def test_realtime_budget_of_a_foreign_parent_is_not_touched(pyoci, bundle, new_id):
    """A parent pyoci did not make (here the test's) keeps its budget (0): create fails with
    one line naming the field and the file, as runc fails."""
    h = need_rt_group_sched()
    cid = new_id("rt")
    with foreign_cgroup(h, unique("pyoci-cgspec-foreign")) as parent:
        b = bundle("true", patch=rt_patch(10000, path=f"/{os.path.basename(parent)}/{cid}"))
        result = pyoci("create", "--bundle", str(b.path), cid)
        assert result.returncode == 1, result.stderr
        line = one_line_error(result.stderr)
        assert "linux.resources.cpu.realtimeRuntime" in line and "cpu.rt_runtime_us" in line
        assert rt_runtime(parent) == 0
        assert pyoci.state_entries() == []
        assert not leftover_dirs([cid])


# === 2. sub-cgroups at delete ====================================================================
def writable_cgroup_mount(c: dict) -> None:
    for mount in c["mounts"]:
        if mount["type"] == "cgroup":
            mount["options"] = [o for o in mount["options"] if o != "ro"]


def make_sub_cgroup(directory: str, *names: str) -> str:
    """mkdir -p of `names` below a container's cgroup directory; a v1 cpuset gets its
    parent's cpus and mems (a new one has none, and takes no task)."""
    for name in names:
        parent, directory = directory, os.path.join(directory, name)
        os.makedirs(directory, exist_ok=True)
        for f in ("cpuset.cpus", "cpuset.mems"):
            if os.path.exists(os.path.join(directory, f)):
                Path(directory, f).write_text(read(os.path.join(parent, f)))
    return directory


# The same from inside, for hierarchy N mounted at /sys/fs/cgroup/N.
SUB_IN = (
    "d=/sys/fs/cgroup/{n}; mkdir -p $d/sub/deeper && for f in cpuset.cpus cpuset.mems; do "
    "[ -e $d/$f ] && cat $d/$f > $d/sub/$f && cat $d/$f > $d/sub/deeper/$f; done; "
    "echo $$ > $d/sub/deeper/cgroup.procs && echo made-{n}"
)


def test_delete_removes_sub_cgroups_the_workload_made(pyoci, bundle, new_id):
    """Through a writable cgroup mount the program makes sub/deeper in every hierarchy and
    moves itself there; `run` (which deletes) leaves no directory and exits 0."""
    if not v1_hierarchy("pids"):
        pytest.skip("no v1 hierarchies")
    cid = new_id("sub")
    names = [h.name for h in hierarchies()]
    script = "; ".join(SUB_IN.format(n=n) for n in names)
    b = bundle(script, patch=writable_cgroup_mount)
    result = pyoci.run(b, cid)
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == sorted(f"made-{n}" for n in names), result.stdout


def test_delete_force_removes_host_made_sub_cgroups_with_a_process(pyoci, bundle, new_id):
    """Sub-cgroups made from the host, two deep, in every hierarchy, one holding an exec'd
    process: `delete --force` kills it and removes every directory."""
    cid = new_id("sub")
    start_sleeper(pyoci, bundle, cid)
    dirs = default_dirs(cid)
    leaves = [make_sub_cgroup(directory, "a", "b") for directory in dirs.values()]
    result = pyoci("exec", "--detach", "--pid-file", str(pyoci.workdir / "x.pid"), cid,
                   "sleep", "100")  # fmt: skip
    assert result.returncode == 0, result.stderr
    pid = int((pyoci.workdir / "x.pid").read_text())
    for leaf in leaves:
        Path(leaf, "cgroup.procs").write_text(str(pid))
    assert pyoci("delete", cid).returncode == 1  # still running
    delete_force(pyoci, cid)
    assert not [d for d in dirs.values() if os.path.exists(d)]


def test_delete_of_a_stopped_container_removes_sub_cgroups(pyoci, bundle, new_id):
    """Plain `delete` (not forced) of a stopped container whose cgroup has empty sub-cgroups."""
    cid = new_id("sub")
    pyoci.create_ok(bundle("true"), cid)
    dirs = default_dirs(cid)
    for directory in dirs.values():
        make_sub_cgroup(directory, "x", "y")
    assert pyoci("start", cid).returncode == 0
    pyoci.wait_status(cid, "stopped")
    result = pyoci("delete", cid)
    assert result.returncode == 0, result.stderr
    assert not [d for d in dirs.values() if os.path.exists(d)]


def test_v2_delete_removes_a_delegated_subtree(pyoci_v2, bundle, new_id):
    """Pure cgroup2: the workload moves itself to a leaf, enables a controller in its cgroup's
    subtree_control and nests below it (a delegated subtree); `run` removes it all."""
    h = v2_hierarchy()
    controllers = sorted(h.controllers)
    enable = ""
    if controllers:
        enable = f"echo +{controllers[0]} > /sys/fs/cgroup/cgroup.subtree_control && "
    script = (
        "mkdir /sys/fs/cgroup/leaf && echo $$ > /sys/fs/cgroup/leaf/cgroup.procs && "
        f"{enable}mkdir -p /sys/fs/cgroup/sub/deeper && echo nested"
    )

    def patch(c: dict) -> None:
        writable_cgroup_mount(c)
        add_namespace(c, "cgroup")

    result = pyoci_v2.run(bundle(script, patch=patch), new_id("sub2"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["nested"], result.stdout


@pytest.fixture
def pyoci_v2(pyoci):
    if v2_hierarchy() is None:
        pytest.skip("no cgroup2 hierarchy on this host")
    run_under(pyoci, *PURE_V2_VIEW)
    return pyoci


# === 3. the cgroup mount on a cgroup2-only host ==================================================
MOUNT_SCRIPT = (
    "grep ' /sys/fs/cgroup ' /proc/self/mountinfo; echo ==; cat /sys/fs/cgroup/cgroup.procs; "
    "echo ==; ls /sys/fs/cgroup; echo ==; touch /sys/fs/cgroup/x 2>&1; true"
)


@pytest.mark.parametrize("userns", [False, True], ids=["no-userns", "userns"])
@pytest.mark.parametrize("cgroupns", [False, True], ids=["no-cgroupns", "cgroupns"])
def test_v2_cgroup_mount_shows_only_the_container_cgroup(
    pyoci_v2, bundle, new_id, userns, cgroupns
):
    """A cgroup2 mount where the container is the root of its own cgroup namespace; without
    one, a read-only bind of its own directory (a cgroup2 mount would show the host's whole
    hierarchy, and in a user namespace is refused: runc binds too). Either way the container
    sees its own processes and nothing of the host's tree."""
    cid = new_id("v2m")

    def patch(c: dict) -> None:
        if cgroupns:
            add_namespace(c, "cgroup")
        if userns:
            add_namespace(c, "user")
            c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
            c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]

    b = bundle(MOUNT_SCRIPT, private=userns, patch=patch)
    if userns:
        give_rootfs_to(b, 100000)
    result = pyoci_v2.run(b, cid)
    assert result.returncode == 0, result.stderr
    mountinfo, procs, listing, touch = result.stdout.split("==\n")
    entry = parse_mountinfo(mountinfo)["/sys/fs/cgroup"]
    assert entry.fstype == "cgroup2", entry
    assert entry.root == ("/" if cgroupns else f"/pyoci/{cid}"), entry
    assert "ro" in entry.options, entry
    assert "1" in procs.split() and len(procs.split()) == 2, procs  # sh and cat only
    assert "pyoci" not in listing.split(), listing  # not the host's root
    assert "cgroup.procs" in listing.split(), listing
    assert "Read-only file system" in touch, touch


# === 4. pids.limit 0 =============================================================================
FORK = "/bin/true; echo true-exited-$?"


@pytest.mark.parametrize("limit", [0, 1])
def test_a_pids_limit_below_two_lets_the_init_exec(pyoci, bundle, new_id, limit):
    """runtime-spec 1.3: 0 is a real limit (pids.max 0). The init is born all the same (pyoci
    writes the limit once it exists, as runc sets limits once its init is ready) and execs."""
    pids = v1_hierarchy("pids")
    patch = resources_patch({"pids": {"limit": limit}})
    cid = new_id("pid")
    pyoci.create_ok(bundle(["/bin/echo", "ok"], patch=patch), cid)
    if pids:
        assert read(os.path.join(default_dirs(cid)[pids.name], "pids.max")) == str(limit)
    delete_force(pyoci, cid)
    echo = pyoci.run(bundle(["/bin/echo", "ok"], patch=patch), new_id("pid"))
    assert (echo.returncode, echo.stdout) == (0, "ok\n"), echo.stderr


@pytest.mark.parametrize("limit", [0, 1])
def test_a_pids_limit_below_two_refuses_a_fork(pyoci, bundle, new_id, limit):
    """The shell cannot start /bin/true: `can't fork`, and it never prints its status."""
    patch = resources_patch({"pids": {"limit": limit}})
    result = pyoci.run(bundle(FORK, patch=patch), new_id("pid"))
    assert result.returncode != 0
    assert "can't fork" in result.stderr, result.stderr
    assert "true-exited" not in result.stdout, result.stdout


@pytest.mark.parametrize(("limit", "expected"), [(-1, "max"), (5, "5")])
def test_pids_limit_negative_is_max(pyoci, bundle, new_id, limit, expected):
    h = need_v1("pids")
    cid = new_id("pid")
    pyoci.create_ok(bundle("true", patch=resources_patch({"pids": {"limit": limit}})), cid)
    assert read(os.path.join(default_dirs(cid)[h.name], "pids.max")) == expected
    delete_force(pyoci, cid)


# === 5. exec --cgroup ============================================================================
def exec_cgroup(pyoci, cid: str, *cgroup_args: str) -> dict[str, str]:
    result = pyoci("exec", *cgroup_args, cid, "cat", "/proc/self/cgroup")
    assert result.returncode == 0, result.stderr
    return dict(line.split(":", 2)[1:] for line in result.stdout.splitlines())


def make_sub(cid: str, name: str) -> None:
    for directory in default_dirs(cid).values():
        make_sub_cgroup(directory, name)


def test_exec_cgroup_path_in_every_hierarchy(pyoci, bundle, new_id):
    cid = new_id("exc")
    start_sleeper(pyoci, bundle, cid)
    make_sub(cid, "sub")
    paths = expected_paths(f"/pyoci/{cid}/sub")
    assert exec_cgroup(pyoci, cid, "--cgroup", "sub") == paths
    assert exec_cgroup(pyoci, cid, "--cgroup", "/sub") == paths  # below the container's too
    delete_force(pyoci, cid)


def test_exec_cgroup_per_controller(pyoci, bundle, new_id):
    """`pids,memory:a` and `cpu:b` (repeatable, runc's syntax): those hierarchies go to the
    sub-cgroups, every other stays at the container's cgroup."""
    for controller in ("pids", "memory", "cpu"):
        need_v1(controller)
    cid = new_id("exc")
    start_sleeper(pyoci, bundle, cid)
    make_sub(cid, "a")
    make_sub(cid, "b")
    seen = exec_cgroup(pyoci, cid, "--cgroup", "pids,memory:a", "--cgroup", "cpu:b")
    base = expected_paths(f"/pyoci/{cid}")
    for key, path in seen.items():
        controllers = set(key.split(","))
        if controllers & {"pids", "memory"}:
            assert path == f"{base[key]}/a", (key, path)
        elif "cpu" in controllers:
            assert path == f"{base[key]}/b", (key, path)
        else:
            assert path == base[key], (key, path)
    delete_force(pyoci, cid)


def test_v2_exec_cgroup(pyoci_v2, bundle, new_id):
    cid = new_id("exc2")
    start_sleeper(pyoci_v2, bundle, cid)
    h = v2_hierarchy()
    os.makedirs(os.path.join(default_dirs(cid)[h.name], "sub"))
    result = pyoci_v2("exec", "--cgroup", "sub", cid, "cat", "/proc/self/cgroup")
    assert result.returncode == 0, result.stderr
    assert f"0::/pyoci/{cid}/sub" in result.stdout.splitlines(), result.stdout
    refused = pyoci_v2("exec", "--cgroup", "pids:sub", cid, "true")
    assert refused.returncode == 1
    assert "unknown controller 'pids'" in one_line_error(refused.stderr)
    delete_force(pyoci_v2, cid)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--cgroup", "missing"), "no such cgroup"),
        (("--cgroup", "../escape"), "no '..'"),
        (("--cgroup", "nosuch:sub"), "unknown controller 'nosuch'"),
        (("--cgroup", "sub", "--cgroup", "pids:sub"), "CONTROLLER: prefix"),
        (("--cgroup", "pids:a", "--cgroup", "pids:b"), "more than once"),
        (("--cgroup", "a:b:c"), "expected [CONTROLLER"),
    ],
)
def test_exec_cgroup_errors(pyoci, bundle, new_id, args, fragment):
    cid = new_id("exc")
    start_sleeper(pyoci, bundle, cid)
    make_sub(cid, "sub")
    result = pyoci("exec", *args, cid, "true")
    assert result.returncode == 1
    assert fragment in one_line_error(result.stderr)
    assert pyoci.state(cid)["status"] == "running"
    delete_force(pyoci, cid)


# === 6. update: runc's flags =====================================================================
def runc_update_flags() -> list[str]:
    """Every flag `runc update --help` lists on this machine (long names)."""
    if not os.access(RUNC, os.X_OK):
        pytest.skip("runc is not installed")
    text = subprocess.run([RUNC, "update", "--help"], capture_output=True, text=True).stdout
    return sorted(set(re.findall(r"^\s+(--[a-z0-9-]+)", text, re.M)))


def test_update_knows_every_runc_update_flag():
    from pyoci.commands import COMMANDS_BY_NAME

    ours = {name for opt in COMMANDS_BY_NAME["update"].opts for name in opt.names}
    theirs = runc_update_flags()
    assert theirs, "could not read runc's flags"
    missing = [f for f in [*theirs, "--kernel-memory", "--kernel-memory-tcp"] if f not in ours]
    assert not missing, missing
    assert {"-r", "--cpu-shares"} <= ours  # runc's short flag; pyoci's old spelling kept


class Runc:
    """A runc container (busybox, sleeping) in a cgroup of its own below a parent this test
    made, for comparing what `runc update` writes."""

    def __init__(self, tmp_path: Path, bundle) -> None:
        self.root = tmp_path / "runc-state"
        self.id = unique("cgspec-runc")
        self.parent = unique("pyoci-cgspec-runc")
        self.path = f"/{self.parent}/{self.id}"
        b = bundle("exec sleep 100", patch=self.patch)
        result = self.call("run", "--detach", "--bundle", str(b.path), self.id)
        assert result.returncode == 0, result.stderr
        self.dirs = expected_dirs(self.path)

    def patch(self, c: dict) -> None:
        c["linux"]["cgroupsPath"] = self.path
        c["linux"]["resources"] = {"memory": {"limit": 64 * MiB}}

    def call(self, *args: str) -> subprocess.CompletedProcess:
        """runc ARGS; output through files (a detached container keeps runc's stdio open)."""
        out, err = self.root.parent / "runc.out", self.root.parent / "runc.err"
        with open(out, "wb") as o, open(err, "wb") as e:
            code = subprocess.run(
                [RUNC, "--root", str(self.root), *args],
                stdin=subprocess.DEVNULL,
                stdout=o,
                stderr=e,
                timeout=30,
                check=False,
            ).returncode
        return subprocess.CompletedProcess(args, code, out.read_text(), err.read_text())

    def close(self) -> None:
        self.call("delete", "--force", self.id)
        for h in hierarchies():
            remove_cgroup_tree(os.path.join(h.mount, self.parent))


@pytest.fixture
def runc(tmp_path, bundle) -> Iterator[Runc]:
    if not os.access(RUNC, os.X_OK):
        pytest.skip("runc is not installed")
    container = Runc(tmp_path, bundle)
    try:
        yield container
    finally:
        container.close()


def rdt_enabled() -> bool:
    return os.path.isdir("/sys/fs/resctrl/info")


# flag row: (pyoci's argv, runc's argv or None when runc cannot serve as the reference here,
# the files to read as hierarchy/file, their expected values after pyoci's update).
UPDATE_ROWS = {
    "cpu-share": (("--cpu-share", "300"), ("--cpu-share", "300"), {"cpu/cpu.shares": "300"}),
    "cpu-shares (old spelling)": (
        ("--cpu-shares", "300"), ("--cpu-share", "300"), {"cpu/cpu.shares": "300"},
    ),
    "cpu-period": (
        ("--cpu-period", "150000"), ("--cpu-period", "150000"),
        {"cpu/cpu.cfs_period_us": "150000"},
    ),
    "cpu-quota": (
        ("--cpu-quota", "30000"), ("--cpu-quota", "30000"), {"cpu/cpu.cfs_quota_us": "30000"},
    ),
    "cpu-rt-period": (
        ("--cpu-rt-period", "500000"), ("--cpu-rt-period", "500000"),
        {"cpu/cpu.rt_period_us": "500000"},
    ),
    # runc fails here (its parent has no realtime budget): pyoci's own value only
    "cpu-rt-runtime": (("--cpu-rt-runtime", "10000"), None, {"cpu/cpu.rt_runtime_us": "10000"}),
    "cpuset-cpus": (("--cpuset-cpus", "LAST"), ("--cpuset-cpus", "LAST"),
                    {"cpuset/cpuset.cpus": "LAST"}),
    "cpuset-mems": (("--cpuset-mems", "0"), ("--cpuset-mems", "0"), {"cpuset/cpuset.mems": "0"}),
    "memory": (
        ("--memory", "96m"), ("--memory", "96m"), {"memory/memory.limit_in_bytes": str(96 * MiB)},
    ),
    "memory unlimited": (
        ("--memory", "-1"), ("--memory", "-1"),
        {"memory/memory.limit_in_bytes": "MAX", "memory/memory.memsw.limit_in_bytes": "MAX"},
    ),
    "memory-reservation": (
        ("--memory-reservation", "32m"), ("--memory-reservation", "32m"),
        {"memory/memory.soft_limit_in_bytes": str(32 * MiB)},
    ),
    "memory-swap": (
        ("--memory-swap", "256m"), ("--memory-swap", "256m"),
        {"memory/memory.memsw.limit_in_bytes": str(256 * MiB)},
    ),
    "pids-limit": (("--pids-limit", "20"), ("--pids-limit", "20"), {"pids/pids.max": "20"}),
    # runc 1.1 ignores 0; runtime-spec 1.3 (and runc 1.4) make it a limit
    "pids-limit 0": (("--pids-limit", "0"), None, {"pids/pids.max": "0"}),
    "kernel-memory (ignored)": (
        ("--kernel-memory", "64m"), ("--kernel-memory", "64m"),
        {"memory/memory.limit_in_bytes": str(64 * MiB)},
    ),
    "kernel-memory-tcp (ignored)": (
        ("--kernel-memory-tcp", "64m"), ("--kernel-memory-tcp", "64m"),
        {"memory/memory.limit_in_bytes": str(64 * MiB)},
    ),
    "resources file": (("-r", "FILE"), ("-r", "FILE"), {"cpu/cpu.shares": "400"}),
    # newer runc's flags (not in runc 1.1)
    "cpu-burst": (("--cpu-burst", "5000"), None, {"cpu/cpu.cfs_burst_us": "5000"}),
    "cpu-idle": (("--cpu-idle", "1"), None, {"cpu/cpu.idle": "1"}),
}  # fmt: skip


@pytest.mark.parametrize("row", list(UPDATE_ROWS))
def test_update_flag_writes_what_runc_writes(pyoci, bundle, new_id, runc, tmp_path, row):
    ours_args, runc_args, files = UPDATE_ROWS[row]
    by_name = {h.name: h for h in hierarchies()}
    for name in {f.split("/")[0] for f in files}:
        need_v1(name)
    if row == "cpu-rt-runtime":
        need_rt_group_sched()
    resources_file = tmp_path / "resources.json"
    resources_file.write_text(json.dumps({"cpu": {"shares": 400}}))
    cpu = last_cpu()

    def argv(args):
        subst = {"LAST": cpu, "FILE": str(resources_file)}
        return [subst.get(a, a) for a in args]

    def expected(value: str, f: str) -> str:
        if value == "MAX":  # the kernel's "unlimited", as in the hierarchy's root
            return read(os.path.join(by_name[f.split("/")[0]].mount, f.split("/")[1]))
        return cpu if value == "LAST" else value

    cid = new_id("upd")
    start_sleeper(pyoci, bundle, cid, patch=resources_patch({"memory": {"limit": 64 * MiB}}))
    dirs = default_dirs(cid)
    absent = [f for f in files if not os.path.exists(os.path.join(dirs[f.split("/")[0]],
                                                                   f.split("/")[1]))]  # fmt: skip
    if absent:
        delete_force(pyoci, cid)
        pytest.skip(f"no {absent[0]} on this host")
    result = pyoci("update", *argv(ours_args), cid)
    assert result.returncode == 0, result.stderr
    ours = {f: read(os.path.join(dirs[f.split("/")[0]], f.split("/")[1])) for f in files}
    assert ours == {f: expected(v, f) for f, v in files.items()}
    if runc_args is not None:
        theirs_result = runc.call("update", *argv(runc_args), runc.id)
        assert theirs_result.returncode == 0, theirs_result.stderr
        theirs = {f: read(os.path.join(runc.dirs[f.split("/")[0]], f.split("/")[1])) for f in files}
        assert ours == theirs
    delete_force(pyoci, cid)


@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--l3-cache-schema", "Intel RDT/CAT: l3 cache schema is not enabled"),
        ("--mem-bw-schema", "Intel RDT/MBA: memory bandwidth schema is not enabled"),
    ],
)
def test_update_intel_rdt_flags_fail_as_runc(pyoci, bundle, new_id, runc, flag, message):
    """Accepted as runc spells them; on a host without Intel RDT both fail with runc's words."""
    if rdt_enabled():
        pytest.skip("this host has resctrl: runc would apply the schema, pyoci refuses it")
    cid = new_id("upd")
    start_sleeper(pyoci, bundle, cid)
    result = pyoci("update", flag, "L3:0=f", cid)
    assert result.returncode == 1
    assert message in one_line_error(result.stderr)
    theirs = runc.call("update", flag, "L3:0=f", runc.id)
    assert theirs.returncode == 1 and message in theirs.stderr, theirs.stderr
    delete_force(pyoci, cid)


def test_update_blkio_weight(pyoci, bundle, new_id):
    """blkio.weight (or blkio.bfq.weight) where the host's I/O scheduler has one; else a
    warning, the container unchanged (runc fails on the missing file)."""
    h = need_v1("blkio")
    cid = new_id("upd")
    start_sleeper(pyoci, bundle, cid)
    directory = default_dirs(cid)[h.name]
    files = [f for f in ("blkio.weight", "blkio.bfq.weight") if os.path.exists(f"{directory}/{f}")]
    log = pyoci.workdir / "update.log"
    result = pyoci("update", "--blkio-weight", "300", cid, global_args=("--log", str(log)))
    assert result.returncode == 0, result.stderr
    if files:
        assert read(os.path.join(directory, files[0])).split()[-1] == "300"
    else:
        assert "resources.blockIO.weight" in log.read_text(), log.read_text()
    delete_force(pyoci, cid)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1024", 1024), ("64k", 64 << 10), ("64m", 64 << 20), ("64MB", 64 << 20),
     ("64MiB", 64 << 20), ("1.5g", 3 << 29), ("2T", 2 << 40), ("-1", -1)],
)  # fmt: skip
def test_update_sizes_as_runc_reads_them(text, expected):
    """go-units RAMInBytes, which runc's --memory* flags use (no container needed)."""
    from pyoci.actions import _bytes

    assert _bytes("--memory", text) == expected


@pytest.mark.parametrize("text", ["", "abc", "-5m", "12q"])
def test_update_size_errors(text):
    from pyoci.actions import _bytes
    from pyoci.errors import PyociError

    with pytest.raises(PyociError, match="is not a size"):
        _bytes("--memory", text)
