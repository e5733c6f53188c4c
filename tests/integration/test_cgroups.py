"""Issue 6: cgroups (v1, v2 and hybrid hosts), linux.resources, and the commands around them.

Placement (default, absolute, relative and systemd-style paths; the program already in its
cgroup; a cgroup namespace rooted at it; the container's own view under /sys/fs/cgroup), every
resource read back from the cgroup files on the host and, through a cgroup namespace, from inside
the container; what the limits do (OOM kill, fork refused, `kill --all`); cleanup on delete and
on a failed create; and `pause`/`resume`, `ps`, `events`, `update` and `features`.

The host layout is read from /proc/self/mountinfo, independently of pyoci's own detection: each
hierarchy is named by its mount point's basename (`memory`, `systemd`, `unified`, ...) and keyed
as /proc/PID/cgroup keys it (`memory`, `name=systemd`, `` for cgroup2). Every test checks, after
the runner's own teardown, that no cgroup directory of its containers is left in any hierarchy.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from helpers import PURE_V2_VIEW, give_rootfs_to, one_line_error

MiB = 1 << 20
READY = "PYOCI-CGROUP-READY"
PARENT = "pyoci-cgtest"  # parent directory of the tests' absolute and relative cgroupsPath
SLICE = "cgtest"  # systemd-style slices: cgtest.slice, cgtest-sub.slice


# --- the host's hierarchies ----------------------------------------------------------------------
class Hierarchy(NamedTuple):
    name: str  # mount point basename: cpu, memory, systemd, unified, ...
    mount: str
    root: str  # the mount's root inside the hierarchy
    key: str  # the controllers field of /proc/PID/cgroup ('' for cgroup2)
    controllers: frozenset[str]


def proc_cgroup(pid: int | str = "self") -> dict[str, str]:
    """/proc/PID/cgroup as {controllers field: path}."""
    out = {}
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, key, path = line.split(":", 2)
        out[key] = path
    return out


def hierarchies() -> list[Hierarchy]:
    """Every cgroup hierarchy mounted on the host (the first mount of each)."""
    own_keys = list(proc_cgroup())
    found: dict[str, Hierarchy] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, rest = left.split(), right.split()
        if len(rest) < 3 or rest[0] not in ("cgroup", "cgroup2"):
            continue
        if not (fields[4] + "/").startswith("/sys/fs/cgroup/"):
            continue  # another test's container mounts in the host's namespace, not the host's
        if rest[0] == "cgroup2":
            key = ""
            path = os.path.join(fields[4], "cgroup.controllers")
            controllers = frozenset(Path(path).read_text().split())
        else:
            options = set(rest[2].split(","))
            keys = [k for k in own_keys if k and set(k.split(",")) <= options]
            if not keys:
                continue
            key = keys[0]
            controllers = frozenset(key.split(","))
        if key not in found:
            found[key] = Hierarchy(
                os.path.basename(fields[4]), fields[4], fields[3], key, controllers
            )
    return list(found.values())


def v1_hierarchy(controller: str) -> Hierarchy | None:
    for h in hierarchies():
        if h.key and controller in h.controllers:
            return h
    return None


def v2_hierarchy() -> Hierarchy | None:
    for h in hierarchies():
        if h.key == "":
            return h
    return None


def need_v1(controller: str) -> Hierarchy:
    h = v1_hierarchy(controller)
    if h is None:
        pytest.skip(f"no cgroup v1 {controller} hierarchy on this host")
    return h


def host_dir(h: Hierarchy, cgroup_path: str) -> str:
    """The host directory of `cgroup_path` (a path from the hierarchy's root)."""
    rel = os.path.relpath(cgroup_path, h.root) if cgroup_path.startswith(h.root) else cgroup_path
    return os.path.normpath(os.path.join(h.mount, rel.lstrip("/")))


def expected_paths(path: str, relative: bool = False) -> dict[str, str]:
    """{/proc/PID/cgroup key: cgroup path} of a container placed at `path` (relative: below
    the caller's own cgroup in each hierarchy, which pyoci inherits from the test)."""
    own = proc_cgroup()
    out = {}
    for h in hierarchies():
        out[h.key] = os.path.normpath(os.path.join(own[h.key], path)) if relative else path
    return out


def expected_dirs(path: str, relative: bool = False) -> dict[str, str]:
    """{hierarchy name: host directory} of a container placed at `path`."""
    paths = expected_paths(path, relative)
    return {h.name: host_dir(h, paths[h.key]) for h in hierarchies()}


def default_dirs(cid: str) -> dict[str, str]:
    return expected_dirs(f"/pyoci/{cid}")


def read(path: str) -> str:
    return Path(path).read_text().strip()


def cgroup_procs(directory: str) -> list[int]:
    try:
        return [int(p) for p in read(os.path.join(directory, "cgroup.procs")).split()]
    except FileNotFoundError:
        return []


def last_cpu() -> str:
    """The highest CPU the root cpuset offers (a value a container's cpuset may take)."""
    h = v1_hierarchy("cpuset")
    name = "cpuset.effective_cpus" if h else "cpuset.cpus.effective"
    base = h.mount if h else v2_hierarchy().mount
    text = read(os.path.join(base, name)) if os.path.exists(os.path.join(base, name)) else "0"
    return text.split(",")[-1].split("-")[-1] or "0"


def root_disk() -> str:
    """major:minor of the whole disk behind / (throttling takes whole disks)."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/":
            dev = fields[2]
            break
    else:
        pytest.skip("no / in /proc/self/mountinfo")
    sysdir = Path(f"/sys/dev/block/{dev}")
    if not sysdir.exists():
        pytest.skip(f"/ is on {dev}, not a block device")
    real = sysdir.resolve()
    if (real / "partition").exists():
        return read(str(real.parent / "dev"))
    return dev


def leftover_dirs(ids: list[str]) -> list[str]:
    """Directories of any hierarchy whose name carries one of `ids`."""
    found = []
    for h in hierarchies():
        for top, dirnames, _ in os.walk(h.mount):
            for d in list(dirnames):
                if any(cid in d for cid in ids):
                    found.append(os.path.join(top, d))
                    dirnames.remove(d)
    return found


def remove_cgroup_tree(directory: str) -> None:
    """Best effort: thaw, kill what is inside, rmdir bottom-up."""
    for top, _, _ in sorted(os.walk(directory), key=lambda t: -len(t[0])):
        state = os.path.join(top, "freezer.state")
        with contextlib.suppress(OSError):
            if os.path.exists(state):
                Path(state).write_text("THAWED")
        for pid in cgroup_procs(top):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for _ in range(100):
            try:
                os.rmdir(top)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.02)


# --- fixtures ------------------------------------------------------------------------------------
@pytest.fixture(scope="session", autouse=True)
def _remove_test_parents() -> Iterator[None]:
    """At the end: the (empty) parent directories these tests made for their cgroupsPath."""
    yield
    try:
        hs = hierarchies()
        own = proc_cgroup()
    except OSError:
        return
    for h in hs:
        for path in (
            f"/{PARENT}",
            os.path.join(own.get(h.key, "/"), PARENT),
            f"/{SLICE}.slice/{SLICE}-sub.slice",
            f"/{SLICE}.slice",
        ):
            with contextlib.suppress(OSError):
                os.rmdir(host_dir(h, path))


@pytest.fixture
def container_ids() -> list[str]:
    return []


@pytest.fixture
def new_id(new_id, container_ids) -> Callable[..., str]:
    """conftest's ids, remembered so the teardown can look for their cgroup directories."""

    def make(prefix: str = "cg") -> str:
        cid = new_id(prefix)
        container_ids.append(cid)
        return cid

    return make


@pytest.fixture(autouse=True)
def no_cgroup_left(container_ids: list[str]) -> Iterator[None]:
    """After the runner's teardown (this fixture is set up first, so torn down last): no
    cgroup directory of this test's containers in any hierarchy. Removes what it finds."""
    yield
    left = leftover_dirs(container_ids)
    for directory in left:
        remove_cgroup_tree(directory)
    assert not left, "cgroup directories left behind:\n  " + "\n  ".join(left)


# --- helpers -------------------------------------------------------------------------------------
def add_namespace(config: dict, ns_type: str) -> None:
    namespaces = config["linux"].setdefault("namespaces", [])
    if not any(n["type"] == ns_type for n in namespaces):
        namespaces.append({"type": ns_type})


def drop_namespace(config: dict, ns_type: str) -> None:
    config["linux"]["namespaces"] = [
        n for n in config["linux"]["namespaces"] if n["type"] != ns_type
    ]


def add_caps(config: dict, *caps: str) -> None:
    for kind in ("bounding", "effective", "permitted"):
        config["process"]["capabilities"][kind] += list(caps)


class Live(NamedTuple):
    proc: subprocess.Popen
    out: Path
    err: Path
    pid: int  # the container's init, host pid

    @property
    def stdout(self) -> str:
        return self.out.read_text(errors="replace")


def wait_for(predicate: Callable[[], object], what: str, timeout: float = 10) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@contextlib.contextmanager
def running(pyoci, b, cid: str, global_args: tuple[str, ...] = ()) -> Iterator[Live]:
    """`run` in the background until the program prints READY; SIGKILL and wait at the end
    (run then deletes the container)."""
    n = len(list(pyoci.workdir.glob("cg-*.out")))
    out, err = pyoci.workdir / f"cg-{n}.out", pyoci.workdir / f"cg-{n}.err"
    argv = pyoci.argv(("run", "--bundle", str(b.path), cid), global_args)
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=o, stderr=e)
    try:
        deadline = time.monotonic() + 10
        while READY not in out.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"{cid} never got ready (exit {proc.poll()}):\n{out.read_text()}\n"
                    f"{err.read_text()}"
                )
            time.sleep(0.02)
        yield Live(proc, out, err, pyoci.state(cid)["pid"])
    finally:
        if proc.poll() is None:
            pyoci("kill", cid, "KILL")
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    assert "Traceback" not in err.read_text(), err.read_text()


def ready_script(body: str) -> str:
    return f"{body}; echo {READY}; exec sleep 100"


def sections(text: str) -> dict[str, str]:
    """`== NAME` headed blocks (the output of `show`) → {NAME: content}."""
    out: dict[str, list[str]] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("== "):
            current = line[3:]
            out[current] = []
        elif line == READY:
            current = None
        elif current is not None:
            out[current].append(line)
    return {k: "\n".join(v).strip() for k, v in out.items()}


def show(files: list[str]) -> str:
    """Shell that prints each /sys/fs/cgroup/FILE under an `== FILE` header."""
    return "; ".join(f'echo "== {f}"; cat /sys/fs/cgroup/{f}' for f in files)


def read_back(pyoci, bundle, new_id, resources: dict, files: list[str], patch=None) -> dict:
    """Start a container with `resources` and a cgroup namespace; return {FILE: value} for
    each `hierarchy/file` in `files`, asserting that the host and the container see the same."""
    cid = new_id("res")

    def config(c: dict) -> None:
        c["linux"]["resources"] = resources
        add_namespace(c, "cgroup")
        if patch:
            patch(c)

    b = bundle(ready_script(show(files)), patch=config)
    dirs = default_dirs(cid)
    with running(pyoci, b, cid) as live:
        inside = sections(live.stdout)
        host = {}
        for f in files:
            name, _, rest = f.partition("/")
            host[f] = read(os.path.join(dirs[name], rest))
        stderr = live.err.read_text()
    assert inside == host, f"inside the container vs the host:\n{inside}\n{host}\n{stderr}"
    assert not leftover_dirs([cid])
    return host


def create_fails(pyoci, b, cid: str, *fragments: str, global_args=()) -> str:
    """`create` exits 1 with one `pyoci:` line containing every fragment; nothing is left, not
    even a cgroup directory."""
    result = pyoci("create", "--bundle", str(b.path), cid, global_args=global_args)
    assert result.returncode == 1, f"exit {result.returncode}: {result.stderr}"
    line = one_line_error(result.stderr)
    for fragment in fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    assert pyoci("state", cid).returncode != 0
    assert pyoci.state_entries() == []
    pyoci.assert_nothing_left()
    assert not leftover_dirs([cid]), leftover_dirs([cid])
    return line


def start_sleeper(pyoci, bundle, cid: str, patch=None, args="exec sleep 100") -> int:
    """create + start a container whose init sleeps; returns its host pid."""
    pyoci.create_ok(bundle(args, patch=patch), cid)
    assert pyoci("start", cid).returncode == 0
    pyoci.wait_status(cid, "running")
    return pyoci.state(cid)["pid"]


def delete_force(pyoci, cid: str) -> None:
    result = pyoci("delete", "--force", cid)
    assert result.returncode == 0, result.stderr
    assert not leftover_dirs([cid]), leftover_dirs([cid])


def resources_patch(resources: dict, cgroupns: bool = False):
    def patch(c: dict) -> None:
        c["linux"]["resources"] = resources
        if cgroupns:
            add_namespace(c, "cgroup")

    return patch


# === placement ===================================================================================
PLACEMENTS = {
    # name: (cgroupsPath template, --systemd-cgroup, expected path template, relative)
    "default": (None, False, "/pyoci/{cid}", False),
    "absolute": ("/" + PARENT + "/{cid}", False, "/" + PARENT + "/{cid}", False),
    "relative": (PARENT + "/{cid}", False, PARENT + "/{cid}", True),
    "systemd": (
        SLICE + ".slice:pyoci:{cid}",
        True,
        "/" + SLICE + ".slice/pyoci-{cid}.scope",
        False,
    ),
    "systemd-nested": (
        SLICE + "-sub.slice:p:{cid}",
        True,
        f"/{SLICE}.slice/{SLICE}-sub.slice/p-{{cid}}.scope",
        False,
    ),
}


@pytest.mark.parametrize("case", list(PLACEMENTS))
def test_placement(pyoci, bundle, new_id, case):
    """The program's own /proc/self/cgroup (its first action) already shows the container's
    cgroup in every hierarchy; the host directories exist and hold the init; run removes them."""
    template, systemd, expected, relative = PLACEMENTS[case]
    cid = new_id("pl")

    def patch(c: dict) -> None:
        if template:
            c["linux"]["cgroupsPath"] = template.format(cid=cid)

    b = bundle(ready_script("cat /proc/self/cgroup"), patch=patch)
    paths = expected_paths(expected.format(cid=cid), relative)
    dirs = expected_dirs(expected.format(cid=cid), relative)
    global_args = ("--systemd-cgroup",) if systemd else ()
    with running(pyoci, b, cid, global_args) as live:
        seen = dict(line.split(":", 2)[1:] for line in live.stdout.splitlines() if ":" in line)
        assert seen == paths, live.stdout
        assert proc_cgroup(live.pid) == paths
        for name, directory in dirs.items():
            assert live.pid in cgroup_procs(directory), (name, directory)
    for directory in dirs.values():
        assert not os.path.exists(directory), directory


def run_under(pyoci, *prefix: str):
    """Every later call of the runner (its teardown's too) runs under `prefix` (a pure-v2
    view, a seccomp wrapper); returns the plain argv builder, to restore it."""
    plain = pyoci.argv
    pyoci.argv = lambda args, global_args=(): [*prefix, *plain(args, global_args)]
    return plain


# Runs the rest of argv with clone3 failing ENOSYS, as on an old kernel or in a sandbox whose
# seccomp profile predates it (pyoci's own filter library: a real filter, not a mock).
NO_CLONE3 = (
    "import errno, os, sys, pyseccomp as s; f = s.SyscallFilter(s.ALLOW); "
    "f.add_rule(s.ERRNO(errno.ENOSYS), 'clone3'); f.load(); os.execv(sys.argv[1], sys.argv[1:])"
)


def test_placement_and_exec_where_clone3_is_refused(pyoci, bundle, new_id):
    """The init (and exec's stage 1) is born in the cgroup2 directory with
    clone3(CLONE_INTO_CGROUP); where clone3 is refused outright it is forked plainly and moves
    itself through cgroup.procs: the same cgroups for the init and for an exec'd process."""
    import sys

    cid = new_id("nc3")
    run_under(pyoci, sys.executable, "-c", NO_CLONE3)
    b = bundle(ready_script("cat /proc/self/cgroup"))
    paths = expected_paths(f"/pyoci/{cid}")
    with running(pyoci, b, cid) as live:
        seen = dict(line.split(":", 2)[1:] for line in live.stdout.splitlines() if ":" in line)
        assert seen == paths, live.stdout
        result = pyoci("exec", cid, "cat", "/proc/self/cgroup")
        assert result.returncode == 0, result.stderr
        seen = dict(line.split(":", 2)[1:] for line in result.stdout.splitlines())
        assert seen == paths, result.stdout


def test_a_cgroup2_directory_that_refuses_the_init_is_a_clean_error(pyoci, bundle, new_id):
    """A cgroup2 leaf with controllers enabled below it takes no process (EBUSY): the birth in
    it fails after the kernel reserved a pid, so it is reported as such (a plain fork in the
    new pid namespace would fail on ENOMEM), and nothing of the container is left."""
    h = v2_hierarchy()
    if h is None or not h.controllers:
        pytest.skip("no cgroup2 hierarchy with a controller on this host")
    cid = new_id("busy")
    leaf = host_dir(h, f"/{PARENT}/{cid}")
    os.makedirs(os.path.join(leaf, "child"))
    try:
        controller = sorted(h.controllers)[0]
        for directory in (os.path.dirname(leaf), leaf):
            Path(directory, "cgroup.subtree_control").write_text(f"+{controller}")
        b = bundle("true", patch=lambda c: c["linux"].update(cgroupsPath=f"/{PARENT}/{cid}"))
        result = pyoci("create", "--bundle", str(b.path), cid)
        assert result.returncode == 1, result.stderr
        line = one_line_error(result.stderr)
        assert "linux.cgroupsPath" in line and leaf in line, line
        assert "busy" in line, line
        assert pyoci.state_entries() == []
        pyoci.assert_nothing_left()
        left = [d for d in leftover_dirs([cid]) if not d.startswith(leaf)]
        assert not left, left
    finally:
        Path(leaf, "cgroup.subtree_control").write_text(f"-{sorted(h.controllers)[0]}")
        os.rmdir(os.path.join(leaf, "child"))
        os.rmdir(leaf)


@pytest.mark.parametrize("cgroupns", [False, True], ids=["no-cgroupns", "cgroupns"])
def test_placement_with_a_user_namespace(pyoci, bundle, new_id, cgroupns):
    """Stage 1 joins every hierarchy before it enters the user namespace (from inside, the
    host's cgroup files are not its to write): the same cgroups, and with a cgroup namespace
    `/` in each."""
    cid = new_id("uns")

    def patch(c: dict) -> None:
        add_namespace(c, "user")
        c["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        c["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
        if cgroupns:
            add_namespace(c, "cgroup")

    b = bundle(ready_script("cat /proc/self/cgroup"), private=True, patch=patch)
    give_rootfs_to(b, 100000)
    paths = expected_paths(f"/pyoci/{cid}")
    with running(pyoci, b, cid) as live:
        seen = dict(line.split(":", 2)[1:] for line in live.stdout.splitlines() if ":" in line)
        assert seen == ({k: "/" for k in paths} if cgroupns else paths), live.stdout
        assert proc_cgroup(live.pid) == paths


def test_exec_joins_every_cgroup_of_the_init(pyoci, bundle, new_id):
    cid = new_id("ex")
    paths = expected_paths(f"/pyoci/{cid}")
    with running(pyoci, bundle(ready_script("true")), cid):
        result = pyoci("exec", cid, "cat", "/proc/self/cgroup")
        assert result.returncode == 0, result.stderr
        seen = dict(line.split(":", 2)[1:] for line in result.stdout.splitlines())
        assert seen == paths, result.stdout


def test_systemd_path_must_have_three_parts(pyoci, bundle, new_id):
    cid = new_id("pl")
    b = bundle("true", patch=lambda c: c["linux"].update(cgroupsPath="/plain/path"))
    create_fails(pyoci, b, cid, "linux.cgroupsPath", global_args=("--systemd-cgroup",))


def test_cgroup_namespace_roots_proc_self_cgroup(pyoci, bundle, new_id):
    """With a cgroup namespace the program sees `/` in every hierarchy; the host sees the full
    path of the same process."""
    cid = new_id("ns")
    b = bundle(ready_script("cat /proc/self/cgroup"), patch=lambda c: add_namespace(c, "cgroup"))
    with running(pyoci, b, cid) as live:
        lines = [line for line in live.stdout.splitlines() if ":" in line]
        assert lines
        keys = {line.split(":", 2)[1] for line in lines}
        assert keys == set(proc_cgroup()), lines
        for line in lines:
            assert line.split(":", 2)[2] == "/", lines
        assert proc_cgroup(live.pid) == expected_paths(f"/pyoci/{cid}")


@pytest.mark.parametrize("cgroupns", [True, False], ids=["cgroupns", "no-cgroupns"])
def test_cgroup_mount_shows_the_container_cgroup(pyoci, bundle, new_id, cgroupns):
    """/sys/fs/cgroup inside shows the container's own cgroup directories: its memory limit,
    its pids limit, and only its own processes."""
    memory, pids = need_v1("memory"), v1_hierarchy("pids")
    cid = new_id("mnt")
    files = [f"{memory.name}/memory.limit_in_bytes"]
    if pids:
        files += [f"{pids.name}/pids.max", f"{pids.name}/cgroup.procs"]
    resources = {"memory": {"limit": 48 * MiB}, "pids": {"limit": 42}}
    b = bundle(
        ready_script("ls /sys/fs/cgroup; " + show(files)),
        patch=resources_patch(resources, cgroupns),
    )
    with running(pyoci, b, cid) as live:
        out = sections(live.stdout)
        listing = live.stdout.split("== ")[0].split()
    assert out[f"{memory.name}/memory.limit_in_bytes"] == str(48 * MiB)
    if pids:
        assert out[f"{pids.name}/pids.max"] == "42"
        procs = out[f"{pids.name}/cgroup.procs"].split()
        assert "1" in procs and len(procs) == 2, procs  # sh and cat, in their pid namespace
    assert set(listing) >= {h.name for h in hierarchies()}, listing


# === resources ===================================================================================
def test_memory(pyoci, bundle, new_id):
    m = need_v1("memory").name
    resources = {
        "memory": {
            "limit": 32 * MiB,
            "reservation": 16 * MiB,
            "swap": 64 * MiB,
            "swappiness": 30,
            "disableOOMKiller": True,
            "useHierarchy": True,
        }
    }
    files = [
        f"{m}/memory.limit_in_bytes",
        f"{m}/memory.soft_limit_in_bytes",
        f"{m}/memory.swappiness",
        f"{m}/memory.oom_control",
        f"{m}/memory.use_hierarchy",
    ]
    if os.path.exists(f"{need_v1('memory').mount}/memory.memsw.limit_in_bytes"):
        files.append(f"{m}/memory.memsw.limit_in_bytes")
    got = read_back(pyoci, bundle, new_id, resources, files)
    assert got[f"{m}/memory.limit_in_bytes"] == str(32 * MiB)
    assert got[f"{m}/memory.soft_limit_in_bytes"] == str(16 * MiB)
    assert got[f"{m}/memory.swappiness"] == "30"
    assert "oom_kill_disable 1" in got[f"{m}/memory.oom_control"].splitlines()
    assert got[f"{m}/memory.use_hierarchy"] == "1"
    if f"{m}/memory.memsw.limit_in_bytes" in got:
        assert got[f"{m}/memory.memsw.limit_in_bytes"] == str(64 * MiB)


def test_memory_unlimited(pyoci, bundle, new_id):
    """-1 means no limit (the kernel's max, as in the root cgroup)."""
    h = need_v1("memory")
    files = [f"{h.name}/memory.limit_in_bytes"]
    got = read_back(pyoci, bundle, new_id, {"memory": {"limit": -1}}, files)
    assert got[files[0]] == read(f"{h.mount}/memory.limit_in_bytes")


def test_cpu(pyoci, bundle, new_id):
    c = need_v1("cpu").name
    cs = need_v1("cpuset").name
    cpu = last_cpu()
    resources = {
        "cpu": {
            "shares": 512,
            "quota": 50000,
            "period": 200000,
            "burst": 10000,
            "cpus": cpu,
            "mems": "0",
        }
    }
    files = [
        f"{c}/cpu.shares",
        f"{c}/cpu.cfs_quota_us",
        f"{c}/cpu.cfs_period_us",
        f"{cs}/cpuset.cpus",
        f"{cs}/cpuset.mems",
    ]
    if os.path.exists(f"{need_v1('cpu').mount}/cpu.cfs_burst_us"):
        files.append(f"{c}/cpu.cfs_burst_us")
    got = read_back(pyoci, bundle, new_id, resources, files)
    assert got[f"{c}/cpu.shares"] == "512"
    assert got[f"{c}/cpu.cfs_quota_us"] == "50000"
    assert got[f"{c}/cpu.cfs_period_us"] == "200000"
    assert got[f"{cs}/cpuset.cpus"] == cpu
    assert got[f"{cs}/cpuset.mems"] == "0"
    if f"{c}/cpu.cfs_burst_us" in got:
        assert got[f"{c}/cpu.cfs_burst_us"] == "10000"


def test_cpu_idle(pyoci, bundle, new_id):
    h = need_v1("cpu")
    if not os.path.exists(f"{h.mount}/cpu.idle"):
        pytest.skip("no cpu.idle on this kernel")
    files = [f"{h.name}/cpu.idle"]
    got = read_back(pyoci, bundle, new_id, {"cpu": {"idle": 1}}, files)
    assert got[files[0]] == "1"


def test_cpu_realtime_period(pyoci, bundle, new_id):
    h = need_v1("cpu")
    if not os.path.exists(f"{h.mount}/cpu.rt_period_us"):
        pytest.skip("no RT group scheduling (CONFIG_RT_GROUP_SCHED) on this kernel")
    files = [f"{h.name}/cpu.rt_period_us"]
    got = read_back(pyoci, bundle, new_id, {"cpu": {"realtimePeriod": 500000}}, files)
    assert got[files[0]] == "500000"


def test_cpu_realtime_runtime(pyoci, bundle, new_id):
    """The runtime is read back: pyoci gives the parents it made, and its default parent
    /pyoci, the realtime budget the container needs (test_cgroups_spec.py has the rest)."""
    h = need_v1("cpu")
    if not os.path.exists(f"{h.mount}/cpu.rt_runtime_us"):
        pytest.skip("no RT group scheduling (CONFIG_RT_GROUP_SCHED) on this kernel")
    cid = new_id("rt")
    resources = {"cpu": {"realtimePeriod": 100000, "realtimeRuntime": 10000}}
    b = bundle("cat /sys/fs/cgroup/cpu/cpu.rt_runtime_us", patch=resources_patch(resources))
    result = pyoci.run(b, cid)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "10000"


def test_pids(pyoci, bundle, new_id):
    h = need_v1("pids")
    files = [f"{h.name}/pids.max"]
    assert read_back(pyoci, bundle, new_id, {"pids": {"limit": 10}}, files)[files[0]] == "10"


def test_blkio_throttle(pyoci, bundle, new_id):
    h = need_v1("blkio")
    disk = root_disk()
    major, minor = (int(x) for x in disk.split(":"))
    resources = {
        "blockIO": {
            "throttleReadBpsDevice": [{"major": major, "minor": minor, "rate": 1048576}],
            "throttleWriteBpsDevice": [{"major": major, "minor": minor, "rate": 2097152}],
            "throttleReadIOPSDevice": [{"major": major, "minor": minor, "rate": 1000}],
            "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 500}],
        }
    }
    names = {
        "read_bps_device": 1048576,
        "write_bps_device": 2097152,
        "read_iops_device": 1000,
        "write_iops_device": 500,
    }
    files = [f"{h.name}/blkio.throttle.{n}" for n in names]
    got = read_back(pyoci, bundle, new_id, resources, files)
    for n, rate in names.items():
        assert got[f"{h.name}/blkio.throttle.{n}"] == f"{disk} {rate}"


def test_blkio_weight(pyoci, bundle, new_id):
    """blkio.weight (CFQ) or blkio.bfq.weight (BFQ); neither exists unless such a scheduler is
    available, and then the weight is ignored with a warning."""
    h = need_v1("blkio")
    cid = new_id("bw")
    b = bundle(ready_script("true"), patch=resources_patch({"blockIO": {"weight": 500}}))
    directory = default_dirs(cid)[h.name]
    with running(pyoci, b, cid) as live:
        present = [
            n
            for n in ("blkio.weight", "blkio.bfq.weight")
            if os.path.exists(os.path.join(directory, n))
        ]
        values = {n: read(os.path.join(directory, n)) for n in present}
        stderr = live.err.read_text()
    if not present:
        assert "linux.resources.blockIO.weight" in stderr, stderr
        pytest.skip("no blkio.weight nor blkio.bfq.weight here (no CFQ/BFQ): weight ignored")
    name = present[0]
    assert values[name].splitlines()[0].split()[-1] == "500", values


def test_hugepage_limits(pyoci, bundle, new_id):
    v1 = v1_hierarchy("hugetlb")
    v2 = v2_hierarchy()
    if v1:
        f = f"{v1.name}/hugetlb.2MB.limit_in_bytes"
    elif v2 and "hugetlb" in v2.controllers:
        f = f"{v2.name}/hugetlb.2MB.max"
    else:
        pytest.skip("no hugetlb controller on this host")
    if not os.path.isdir("/sys/kernel/mm/hugepages/hugepages-2048kB"):
        pytest.skip("no 2MB huge pages on this host")
    resources = {"hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MiB}]}
    assert read_back(pyoci, bundle, new_id, resources, [f])[f] == str(4 * MiB)


def test_unified(pyoci, bundle, new_id):
    """linux.resources.unified: key/value written into the cgroup2 directory (on this hybrid
    host: the hugetlb files there)."""
    v2 = v2_hierarchy()
    if v2 is None or "hugetlb" not in v2.controllers:
        pytest.skip("no hugetlb controller on a cgroup2 hierarchy")
    unified = {"hugetlb.2MB.max": str(6 * MiB)}
    if os.path.isdir("/sys/kernel/mm/hugepages/hugepages-1048576kB"):
        unified["hugetlb.1GB.max"] = str(1 << 30)
    files = [f"{v2.name}/{k}" for k in unified]
    got = read_back(pyoci, bundle, new_id, {"unified": unified}, files)
    assert got == {f"{v2.name}/{k}": v for k, v in unified.items()}


def test_unified_key_of_a_v1_controller_is_an_error(pyoci, bundle, new_id):
    """On a hybrid host memory is a v1 controller: `memory.max` has no file in the cgroup2
    directory. One line naming the field and the file; nothing left."""
    v2 = v2_hierarchy()
    if v2 is None or "memory" in v2.controllers:
        pytest.skip("memory is not a v1-only controller here")
    cid = new_id("un")
    b = bundle("true", patch=resources_patch({"unified": {"memory.max": "1000000"}}))
    create_fails(pyoci, b, cid, "linux.resources.unified.memory.max")


def device_patch(c: dict) -> None:
    c["linux"]["resources"] = {
        "devices": [
            {"allow": False, "access": "rwm"},
            {"allow": True, "type": "c", "major": 240, "minor": 0, "access": "rwm"},
            {"allow": True, "type": "c", "major": 240, "minor": 1, "access": "m"},
        ]
    }
    add_caps(c, "CAP_MKNOD")
    add_namespace(c, "cgroup")


def test_devices_list(pyoci, bundle, new_id):
    """Deny all, then the rules: devices.list holds exactly the allowed entries (the spec's
    default devices stay usable)."""
    h = need_v1("devices")
    f = f"{h.name}/devices.list"
    got = read_back(pyoci, bundle, new_id, {}, [f], patch=device_patch)[f].splitlines()
    assert "a *:* rwm" not in got, got
    assert "c 240:0 rwm" in got, got
    assert "c 240:1 m" in got, got
    assert "c 1:3 rwm" in got, got  # /dev/null
    assert not any(line.startswith("c 240:2") for line in got), got


def test_devices_enforced(pyoci, bundle, new_id):
    """240:x is an unregistered major: opening an allowed node gives ENXIO from the (absent)
    driver, a denied one EPERM from the devices cgroup before any driver is asked."""
    need_v1("devices")
    script = (
        "mknod /dev/a c 240 0; mknod /dev/b c 240 1; "
        "echo x 2>&1 > /dev/a; echo x 2>&1 > /dev/b; "
        "echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | wc -c"
    )
    result = pyoci.run(bundle(script, patch=device_patch), new_id("dev"))
    out = result.stdout + result.stderr
    assert "/dev/a: No such device or address" in out, out
    assert "/dev/b: Operation not permitted" in out, out
    assert "null-ok" in result.stdout, out
    assert result.stdout.strip().endswith("4"), out


# === cgroup v2: the BPF device filter ============================================================
# On a pure cgroup2 host linux.resources.devices becomes a BPF program. This host is hybrid, so
# these tests make pure v2 where they need it: each pyoci call runs in a private mount namespace
# in which /sys/fs/cgroup is the cgroup2 hierarchy alone (the v1 mounts unmounted), exactly what
# pyoci finds on a v2 host. The kernel's own v1 devices controller is the reference.


@pytest.fixture
def pyoci_v2(pyoci):
    """The test's runner, every call (teardown's too) seeing a pure cgroup-v2 host."""
    if v2_hierarchy() is None:
        pytest.skip("no cgroup2 hierarchy on this host")
    run_under(pyoci, *PURE_V2_VIEW)
    return pyoci


def v2_dir(cid: str) -> str:
    return default_dirs(cid)[v2_hierarchy().name]


def attached_device_programs(directory: str) -> int:
    from pyoci.linux import sysbind
    from pyoci.linux import syscalls as sc

    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return len(sysbind.bpf_prog_query(fd, sc.BPF_CGROUP_DEVICE))
    finally:
        os.close(fd)


DEVICE_SCRIPT = (
    "mknod /dev/a c 240 0; mknod /dev/b c 240 1; "
    "echo x 2>&1 > /dev/a; echo x 2>&1 > /dev/b; "
    "echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | wc -c"
)


def assert_device_rules_hold(out: str) -> None:
    """What DEVICE_SCRIPT prints under device_patch's rules."""
    assert "/dev/a: No such device or address" in out, out  # allowed: the absent driver answers
    assert "/dev/b: Operation not permitted" in out, out  # denied by the filter
    assert "null-ok" in out, out
    assert "\n4\n" in out + "\n", out


def test_v2_devices_enforced_by_a_bpf_program(pyoci_v2, bundle, new_id):
    cid = new_id("dev2")
    b = bundle(ready_script(DEVICE_SCRIPT), patch=device_patch)
    with running(pyoci_v2, b, cid) as live:
        assert_device_rules_hold(live.stdout)
        assert attached_device_programs(v2_dir(cid)) == 1
        assert "warn" not in live.err.read_text().lower(), live.err.read_text()


DEFAULT_FILTER_SCRIPT = (
    "mknod /dev/a c 240 0; echo x 2>&1 > /dev/a; "
    "echo x > /dev/null && echo null-ok; head -c 4 /dev/zero | wc -c"
)


def mknod_patch(c: dict) -> None:
    add_caps(c, "CAP_MKNOD")
    add_namespace(c, "cgroup")


@pytest.mark.parametrize("view", ["host", "pure-v2"])
def test_no_device_rules_still_a_default_filter(pyoci, bundle, new_id, view):
    """No linux.resources.devices at all: deny all but the default devices anyway, as runc
    (else a process with CAP_MKNOD could open any disk of the host)."""
    if view == "host":
        need_v1("devices")
    elif v2_hierarchy() is None:
        pytest.skip("no cgroup2 hierarchy on this host")
    else:
        run_under(pyoci, *PURE_V2_VIEW)
    cid = new_id("dev0")
    with running(
        pyoci, bundle(ready_script(DEFAULT_FILTER_SCRIPT), patch=mknod_patch), cid
    ) as live:
        out = live.stdout
        assert "/dev/a: Operation not permitted" in out, out
        assert "null-ok" in out and "\n4\n" in out, out
        if view == "pure-v2":
            assert attached_device_programs(v2_dir(cid)) == 1
        else:
            listed = read(os.path.join(default_dirs(cid)["devices"], "devices.list"))
            assert "a *:* rwm" not in listed, listed


def test_v2_update_replaces_the_device_program(pyoci_v2, bundle, new_id):
    """`update` with new device rules: the old program is detached, the new one enforced, and
    the nodes of linux.devices stay usable (as at create)."""
    cid = new_id("dev2")

    def patch(c: dict) -> None:
        device_patch(c)
        c["linux"]["devices"] = [{"path": "/dev/given", "type": "c", "major": 241, "minor": 0}]

    start_sleeper(pyoci_v2, bundle, cid, patch=patch)
    probe = ("exec", cid, "sh", "-c", "mknod /dev/b c 240 1; echo x > /dev/b")
    given = ("exec", cid, "sh", "-c", "echo x > /dev/given")
    before = pyoci_v2(*probe)
    assert "Operation not permitted" in before.stderr, before.stderr
    assert "No such device or address" in pyoci_v2(*given).stderr
    rules = {"devices": [{"allow": True, "type": "c", "major": 240, "minor": 1, "access": "rw"}]}
    result = run_with_stdin(pyoci_v2, ("update", "--resources", "-", cid), json.dumps(rules))
    assert result.returncode == 0, result.stderr
    assert attached_device_programs(v2_dir(cid)) == 1
    after = pyoci_v2(*probe)
    assert "No such device or address" in after.stderr, after.stderr
    still = pyoci_v2(*given)
    assert "No such device or address" in still.stderr, still.stderr
    delete_force(pyoci_v2, cid)


def test_v2_update_leaves_programs_of_others(pyoci_v2, bundle, new_id):
    """A device program pyoci did not attach (an allow-all one here) survives an update."""
    from pyoci.linux import devicefilter, sysbind
    from pyoci.linux import syscalls as sc

    cid = new_id("dev2")
    start_sleeper(pyoci_v2, bundle, cid, patch=device_patch)
    directory = v2_dir(cid)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        other = sysbind.bpf_prog_load(
            sc.BPF_PROG_TYPE_CGROUP_DEVICE, devicefilter.program(devicefilter.emulate([])), "other"
        )
        sysbind.bpf_prog_attach(fd, other, sc.BPF_CGROUP_DEVICE, sc.BPF_F_ALLOW_MULTI)
        os.close(other)
        assert attached_device_programs(directory) == 2
        rules = {"devices": [{"allow": True, "type": "c", "major": 240, "access": "rw"}]}
        result = run_with_stdin(pyoci_v2, ("update", "--resources", "-", cid), json.dumps(rules))
        assert result.returncode == 0, result.stderr
        names = []
        for prog_id in sysbind.bpf_prog_query(fd, sc.BPF_CGROUP_DEVICE):
            prog = sysbind.bpf_prog_get_fd_by_id(prog_id)
            names.append(sysbind.bpf_prog_name(prog))
            os.close(prog)
        assert sorted(names) == ["other", devicefilter.PROGRAM_NAME], names
    finally:
        os.close(fd)
    delete_force(pyoci_v2, cid)


def test_v2_bad_device_rule_fails_create_cleanly(pyoci_v2, bundle, new_id):
    def patch(c: dict) -> None:
        c["linux"]["resources"] = {"devices": [{"allow": True, "type": "u", "access": "rw"}]}

    create_fails(pyoci_v2, bundle("true", patch=patch), new_id("dev2"),
                 "linux.resources.devices[0].type")  # fmt: skip


def test_v2_operations_on_a_pure_v2_host(pyoci_v2, bundle, new_id):
    """pause/resume through cgroup.freeze, ps and kill --all through cgroup.procs, and delete
    removing the directory, with nothing but cgroup2 mounted."""
    cid = new_id("ops2")
    pid = start_sleeper(pyoci_v2, bundle, cid, args="sleep 100 & exec sleep 100")
    directory = v2_dir(cid)
    assert pid in cgroup_procs(directory)
    assert pyoci_v2("pause", cid).returncode == 0
    assert read(os.path.join(directory, "cgroup.freeze")) == "1"
    assert pyoci_v2.state(cid)["status"] == "paused"
    assert pyoci_v2("resume", cid).returncode == 0
    assert read(os.path.join(directory, "cgroup.freeze")) == "0"
    assert pyoci_v2.state(cid)["status"] == "running"
    listed = pyoci_v2("ps", "--format", "json", cid)
    assert listed.returncode == 0, listed.stderr
    assert sorted(json.loads(listed.stdout)) == sorted(cgroup_procs(directory))
    assert len(json.loads(listed.stdout)) == 2
    assert pyoci_v2("kill", "--all", cid, "KILL").returncode == 0
    wait_for(lambda: not cgroup_procs(directory), "the cgroup to empty")
    pyoci_v2.wait_status(cid, "stopped")
    assert pyoci_v2("delete", cid).returncode == 0
    assert not os.path.exists(directory)


PROBE_SCRIPT = """
for t in c b; do for n in "1 3" "240 0" "240 7"; do
  set -- $n; node=/dev/p-$t-$1-$2; mknod $node $t $1 $2
  for op in '<' '>' '<>'; do
    if eval "true $op $node" 2>/dev/null; then r=ok; else
      r=$(eval "true $op $node" 2>&1 | grep -q 'not permitted' && echo EPERM || echo other); fi
    echo "$t $1:$2 $op $r"
  done
done; done
"""


@pytest.mark.parametrize(
    "rules",
    [
        [{"allow": True, "type": "c", "major": 240, "access": "r"}],
        [
            {"allow": True, "type": "c", "major": 240, "minor": 0, "access": "r"},
            {"allow": True, "type": "c", "major": 240, "access": "w"},
        ],
        [
            {"allow": True, "type": "a", "access": "rwm"},
            {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "w"},
            {"allow": False, "type": "b", "access": "r"},
        ],
    ],
)
def test_v2_container_sees_what_v1_gives(pyoci, bundle, new_id, rules):
    """The same config in a v1 devices cgroup (the kernel's rules) and under pyoci's BPF
    program on pure v2: every open of every probe node gives the same answer."""
    need_v1("devices")
    if v2_hierarchy() is None:
        pytest.skip("no cgroup2 hierarchy on this host")

    def patch(c: dict) -> None:
        c["linux"]["resources"] = {"devices": rules}
        add_caps(c, "CAP_MKNOD")

    b = bundle(PROBE_SCRIPT, patch=patch)
    v1 = pyoci.run(b, new_id("dev1"))
    plain = run_under(pyoci, *PURE_V2_VIEW)
    v2 = pyoci.run(b, new_id("dev2"))
    pyoci.argv = plain
    assert v1.returncode == 0 and v2.returncode == 0, (v1.stderr, v2.stderr)
    assert len(v1.stdout.splitlines()) == 18, v1.stdout
    assert "EPERM" in v1.stdout and " ok" in v1.stdout, v1.stdout  # the rules do something
    assert v2.stdout == v1.stdout


def probe_devices(cgroup_dir: str, nodes: dict, scratch: str) -> dict:
    """In a child placed in `cgroup_dir`: for each (type, major, minor) node, whether mknod,
    access(F_OK), O_RDONLY, O_WRONLY and O_RDWR are allowed (anything but EPERM is the
    driver's answer)."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_fd)
            Path(cgroup_dir, "cgroup.procs").write_text(str(os.getpid()))
            out = {}
            for key, path in nodes.items():
                kind, major, minor = key
                mode = 0o600 | (0o060000 if kind == "b" else 0o020000)
                try:
                    os.mknod(os.path.join(scratch, "n"), mode, os.makedev(major, minor))
                    os.unlink(os.path.join(scratch, "n"))
                    out[(*key, "m")] = True
                except PermissionError:
                    out[(*key, "m")] = False
                # access(2) with F_OK asks the device cgroup with no access bit at all.
                out[(*key, "f")] = os.access(path, os.F_OK)
                for name, flags in (("r", os.O_RDONLY), ("w", os.O_WRONLY), ("rw", os.O_RDWR)):
                    try:
                        os.close(os.open(path, flags | os.O_NONBLOCK))
                        out[(*key, name)] = True
                    except PermissionError:
                        out[(*key, name)] = False
                    except OSError:
                        out[(*key, name)] = True
            os.write(write_fd, json.dumps([[*k, v] for k, v in out.items()]).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as f:
        data = f.read()
    os.waitpid(pid, 0)
    return {tuple(item[:-1]): item[-1] for item in json.loads(data)}


def test_device_program_agrees_with_the_kernels_v1_controller(tmp_path, container_ids):
    """Random rule lists, written as is to a v1 devices cgroup and compiled by pyoci to a BPF
    program on a cgroup2 directory: every probe (mknod, read, write, read-write of char and
    block nodes, allowed and not) gets the same answer from both, and from the emulator."""
    import random

    from pyoci.linux import devicefilter

    if os.geteuid() != 0:
        pytest.skip("needs root")
    h1, h2 = need_v1("devices"), v2_hierarchy()
    if h2 is None:
        pytest.skip("no cgroup2 hierarchy on this host")
    nodes = {}
    for kind in "bc":
        for major, minor in ((1, 3), (240, 0), (240, 7)):
            path = str(tmp_path / f"{kind}{major}-{minor}")
            os.mknod(
                path, 0o600 | (0o060000 if kind == "b" else 0o020000), os.makedev(major, minor)
            )
            nodes[(kind, major, minor)] = path
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    rng = random.Random(6)
    for case in range(25):
        rules = [{"allow": False, "type": "a"}] if case % 2 else []
        for _ in range(rng.randint(1, 6)):
            rules.append({
                "allow": rng.random() < 0.6,
                "type": rng.choice("abcc"),
                "major": rng.choice([None, 1, 240]),
                "minor": rng.choice([None, 0, 3]),
                "access": "".join(x for x in "rwm" if rng.random() < 0.6) or "r",
            })  # fmt: skip
        name = f"pyoci-devtest-{os.getpid()}-{case}"
        container_ids.append(name)
        d1, d2 = os.path.join(h1.mount, name), os.path.join(h2.mount, name)
        os.mkdir(d1)
        os.mkdir(d2)
        try:
            for r in rules:
                major = "*" if r.get("major") is None else r["major"]
                minor = "*" if r.get("minor") is None else r["minor"]
                line = "a" if r["type"] == "a" else f"{r['type']} {major}:{minor} {r['access']}"
                Path(d1, "devices.allow" if r["allow"] else "devices.deny").write_text(line)
            state = devicefilter.emulate(rules)
            devicefilter.install(d2, devicefilter.program(state))
            kernel_v1 = probe_devices(d1, nodes, str(scratch))
            bpf = probe_devices(d2, nodes, str(scratch))
            assert bpf == kernel_v1, (rules, Path(d1, "devices.list").read_text())
            bits = {"f": 0, "m": 1, "r": 2, "w": 4, "rw": 6}
            for (kind, major, minor, acc), allowed in kernel_v1.items():
                t = devicefilter.DEVCG_DEV_BLOCK if kind == "b" else devicefilter.DEVCG_DEV_CHAR
                assert state.allows(t, major, minor, bits[acc]) == allowed, (rules, kind, acc)
        finally:
            os.rmdir(d1)
            os.rmdir(d2)


def test_network_class_id_without_net_cls_is_a_warning(pyoci, bundle, new_id):
    if v1_hierarchy("net_cls"):
        h = v1_hierarchy("net_cls")
        f = f"{h.name}/net_cls.classid"
        got = read_back(pyoci, bundle, new_id, {"network": {"classID": 1048577}}, [f])
        assert got[f] == "1048577"
        return
    b = bundle("echo ran", patch=resources_patch({"network": {"classID": 1048577}}))
    result = pyoci.run(b, new_id("net"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ran"
    assert "linux.resources.network.classID" in result.stderr, result.stderr
    assert "warn" in result.stderr.lower(), result.stderr


# === what the limits do ==========================================================================
def test_memory_limit_kills_an_allocating_process(pyoci, bundle, new_id):
    need_v1("memory")
    resources = {"memory": {"limit": 32 * MiB, "swap": 32 * MiB}}
    b = bundle(
        ["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
        patch=resources_patch(resources),
    )
    result = pyoci.run(b, new_id("oom"))
    assert result.returncode == 137, (result.returncode, result.stderr)


def test_memory_limit_spares_a_small_process(pyoci, bundle, new_id):
    need_v1("memory")
    resources = {"memory": {"limit": 32 * MiB, "swap": 32 * MiB}}
    b = bundle(
        ["dd", "if=/dev/zero", "of=/dev/null", "bs=4M", "count=1"],
        patch=resources_patch(resources),
    )
    result = pyoci.run(b, new_id("oom"))
    assert result.returncode == 0, (result.returncode, result.stderr)


def test_pids_limit_stops_a_fork_loop(pyoci, bundle, new_id):
    need_v1("pids")
    b = bundle(
        "for i in $(seq 50); do sleep 5 & done; echo all-forked",
        patch=resources_patch({"pids": {"limit": 10}}),
    )
    result = pyoci.run(b, new_id("fork"))
    assert "can't fork" in result.stderr, result.stderr
    assert "all-forked" not in result.stdout


def test_kill_all_kills_every_process_of_the_cgroup(pyoci, bundle, new_id):
    """Without a pid namespace the init's death does not take its children along: `kill --all`
    signals everything in the cgroup."""
    h = need_v1("pids") if v1_hierarchy("pids") else need_v1("freezer")
    cid = new_id("ka")
    start_sleeper(
        pyoci,
        bundle,
        cid,
        patch=lambda c: drop_namespace(c, "pid"),
        args="sleep 100 & sleep 100 & wait",
    )
    directory = default_dirs(cid)[h.name]
    pids = wait_for(lambda: len(cgroup_procs(directory)) == 3 and cgroup_procs(directory), "3")
    result = pyoci("kill", "--all", cid, "KILL")
    assert result.returncode == 0, result.stderr
    wait_for(lambda: not cgroup_procs(directory), "an empty cgroup")
    for pid in pids:
        wait_for(lambda pid=pid: not alive(pid), f"{pid} to die")
    pyoci.wait_status(cid, "stopped")
    assert pyoci("delete", cid).returncode == 0
    assert not leftover_dirs([cid])
    pyoci.assert_nothing_left()


def test_kill_all_after_the_init_exited(pyoci, bundle, new_id):
    """runc signals the cgroup's processes on `kill --all` even once the container is stopped
    (what a shim does when the init of a container without a pid namespace exits); then a
    plain delete works."""
    h = need_v1("pids") if v1_hierarchy("pids") else need_v1("freezer")
    cid = new_id("ka")
    b = bundle("sleep 100 & exit 0", patch=lambda c: drop_namespace(c, "pid"))
    pyoci.create_ok(b, cid)
    assert pyoci("start", cid).returncode == 0
    pyoci.wait_status(cid, "stopped")
    directory = default_dirs(cid)[h.name]
    left = cgroup_procs(directory)
    assert len(left) == 1, left  # the orphaned sleep
    result = pyoci("kill", "--all", cid, "KILL")
    assert result.returncode == 0, result.stderr
    wait_for(lambda: not alive(left[0]), "the orphan to die")
    result = pyoci("delete", cid)
    assert result.returncode == 0, result.stderr
    assert not leftover_dirs([cid])
    pyoci.assert_nothing_left()


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


# === cleanup =====================================================================================
def test_delete_removes_the_cgroup_in_every_hierarchy(pyoci, bundle, new_id):
    cid = new_id("del")
    pyoci.create_ok(bundle("true"), cid)
    dirs = default_dirs(cid)
    pid = pyoci.state(cid)["pid"]
    for name, directory in dirs.items():
        assert pid in cgroup_procs(directory), (name, directory)
    assert pyoci("start", cid).returncode == 0
    pyoci.wait_status(cid, "stopped")
    for directory in dirs.values():
        assert os.path.isdir(directory), directory  # until delete
    result = pyoci("delete", cid)
    assert result.returncode == 0, result.stderr
    assert [d for d in dirs.values() if os.path.exists(d)] == []
    pyoci.assert_nothing_left()


def test_delete_of_a_stopped_container_with_a_process_left_in_its_cgroup(pyoci, bundle, new_id):
    """No pid namespace: a background process outlives the init, in the container's cgroup.
    `delete` refuses, naming it, and every cgroup directory is still there (the rmdir-only
    path, pyoci/linux/cgroupdirs.py, must fail before removing any); `delete --force` kills it
    and removes them all."""
    cid = new_id("del")
    b = bundle("sleep 100 >/dev/null 2>&1 & exit 0",
               patch=lambda c: drop_namespace(c, "pid"))  # fmt: skip
    pyoci.create_ok(b, cid)
    assert pyoci("start", cid).returncode == 0
    pyoci.wait_status(cid, "stopped")
    dirs = default_dirs(cid)
    left = cgroup_procs(dirs["pids"])
    assert len(left) == 1 and alive(left[0]), left
    result = pyoci("delete", cid)
    assert result.returncode == 1
    assert f"processes {left} are still in its cgroup (use --force)" in one_line_error(
        result.stderr
    )
    assert [d for d in dirs.values() if not os.path.isdir(d)] == []
    assert pyoci.state(cid)["status"] == "stopped"
    delete_force(pyoci, cid)
    assert not alive(left[0])
    pyoci.assert_nothing_left()


def test_delete_force_removes_a_running_container_and_its_exec(pyoci, bundle, new_id):
    cid = new_id("del")
    start_sleeper(pyoci, bundle, cid)
    assert pyoci("exec", "--detach", cid, "sleep", "100").returncode == 0
    delete_force(pyoci, cid)
    pyoci.assert_nothing_left()


FAILED_CREATES = {
    # name: (patch(config, cid), fragments of the error line)
    "missing-binary": (lambda c, cid: c["process"].update(args=["/no/such/binary"]), ()),
    "cpuset-out-of-range": (
        lambda c, cid: c["linux"].update(resources={"cpu": {"cpus": "99"}}),
        ("linux.resources.cpu.cpus", "/cpuset.cpus"),
    ),
    "negative-shares": (
        lambda c, cid: c["linux"].update(resources={"cpu": {"shares": -1}}),
        ("linux.resources.cpu.shares",),
    ),
    "swap-below-memory": (
        lambda c, cid: c["linux"].update(resources={"memory": {"limit": 64 * MiB, "swap": MiB}}),
        ("linux.resources.memory.swap", "memsw.limit_in_bytes"),
    ),
    # mkdir succeeds for <cid> in the first hierarchy, then fails on the `tasks` file in it
    "path-through-a-cgroup-file": (
        lambda c, cid: c["linux"].update(cgroupsPath=f"/{PARENT}/{cid}/tasks"),
        ("linux.cgroupsPath", "/tasks"),
    ),
}


@pytest.mark.parametrize("case", list(FAILED_CREATES))
def test_failed_create_removes_the_cgroup(pyoci, bundle, new_id, case):
    patch, fragments = FAILED_CREATES[case]
    if case == "cpuset-out-of-range":
        need_v1("cpuset")
    if case == "swap-below-memory" and not os.path.exists(
        f"{need_v1('memory').mount}/memory.memsw.limit_in_bytes"
    ):
        pytest.skip("no swap accounting (memory.memsw.*)")
    if case == "path-through-a-cgroup-file" and not any(h.key for h in hierarchies()):
        pytest.skip("no cgroup v1 hierarchy (no `tasks` files)")
    cid = new_id("fail")
    create_fails(pyoci, bundle("true", patch=lambda c: patch(c, cid)), cid, *fragments)


# === pause / resume ==============================================================================
# The counter is the size of a file that grows by one line per iteration: a frozen task cannot
# leave it half-written, as it could a rewritten number.
COUNTER = "while :; do echo x >> /dev/shm/count; done"


def counter(pid: int) -> int:
    """The container's counter, read from the host through its root."""
    path = f"/proc/{pid}/root/dev/shm/count"
    wait_for(lambda: os.path.exists(path), "the counter file")
    return os.path.getsize(path)


def freezer_state(cid: str) -> str:
    h = v1_hierarchy("freezer")
    if h:
        return read(os.path.join(default_dirs(cid)[h.name], "freezer.state"))
    return read(os.path.join(default_dirs(cid)[v2_hierarchy().name], "cgroup.freeze"))


def test_pause_freezes_and_resume_thaws(pyoci, bundle, new_id):
    cid = new_id("pz")
    pid = start_sleeper(pyoci, bundle, cid, args=COUNTER)
    first = counter(pid)
    wait_for(lambda: counter(pid) > first, "the counter to count")

    result = pyoci("pause", cid)
    assert result.returncode == 0, result.stderr
    assert pyoci.state(cid)["status"] == "paused"
    assert freezer_state(cid) in ("FROZEN", "1")
    frozen = counter(pid)
    time.sleep(0.3)
    assert counter(pid) == frozen, "the counter moved while paused"
    assert pyoci("pause", cid).returncode != 0  # already paused

    result = pyoci("resume", cid)
    assert result.returncode == 0, result.stderr
    assert pyoci.state(cid)["status"] == "running"
    assert freezer_state(cid) in ("THAWED", "0")
    wait_for(lambda: counter(pid) > frozen, "the counter to move again", timeout=5)
    assert pyoci("resume", cid).returncode != 0  # not paused
    delete_force(pyoci, cid)
    pyoci.assert_nothing_left()


def test_delete_force_of_a_paused_container(pyoci, bundle, new_id):
    cid = new_id("pz")
    start_sleeper(pyoci, bundle, cid, args=COUNTER)
    assert pyoci("pause", cid).returncode == 0
    delete_force(pyoci, cid)
    pyoci.assert_nothing_left()


def test_pause_of_a_stopped_container_is_an_error(pyoci, bundle, new_id):
    cid = new_id("pz")
    pyoci.create_ok(bundle("true"), cid)
    assert pyoci("start", cid).returncode == 0
    pyoci.wait_status(cid, "stopped")
    result = pyoci("pause", cid)
    assert result.returncode == 1
    one_line_error(result.stderr)
    assert pyoci("delete", cid).returncode == 0


# === ps ==========================================================================================
def test_ps_lists_exactly_the_container_processes(pyoci, bundle, new_id, tmp_path):
    cid = new_id("ps")
    init = start_sleeper(pyoci, bundle, cid)
    pid_file = tmp_path / "exec.pid"
    result = pyoci("exec", "--detach", "--pid-file", str(pid_file), cid, "sleep", "100")
    assert result.returncode == 0, result.stderr
    exec_pid = int(pid_file.read_text())

    result = pyoci("ps", "--format", "json", cid)
    assert result.returncode == 0, result.stderr
    listed = json.loads(result.stdout)
    assert sorted(listed) == sorted([init, exec_pid])
    h = v1_hierarchy("pids") or v1_hierarchy("freezer") or v2_hierarchy()
    assert sorted(listed) == sorted(cgroup_procs(default_dirs(cid)[h.name]))

    table = pyoci("ps", cid)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    header = lines[0].split()
    assert "PID" in header, lines
    column = header.index("PID")
    assert sorted(int(line.split()[column]) for line in lines[1:]) == sorted([init, exec_pid])
    delete_force(pyoci, cid)


# === events ======================================================================================
def test_events_stats_once(pyoci, bundle, new_id):
    need_v1("memory")
    cid = new_id("ev")
    resources = {"memory": {"limit": 32 * MiB}, "pids": {"limit": 20}}
    busy = "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; touch /dev/shm/done; exec sleep 100"
    pid = start_sleeper(pyoci, bundle, cid, patch=resources_patch(resources), args=busy)
    wait_for(lambda: os.path.exists(f"/proc/{pid}/root/dev/shm/done"), "the busy loop")
    result = pyoci("events", "--stats", cid)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    event = json.loads(lines[0])
    assert event["type"] == "stats" and event["id"] == cid, event
    data = event["data"]
    assert data["memory"]["usage"]["limit"] == 32 * MiB, data["memory"]
    assert data["memory"]["usage"]["usage"] > 0, data["memory"]
    assert data["pids"]["current"] >= 1, data["pids"]
    assert data["pids"]["limit"] == 20, data["pids"]
    usage = data["cpu"]["usage"]
    assert isinstance(usage.get("total", 0), int) and usage.get("total", 0) > 0, usage
    assert isinstance(usage["kernel"], int) and isinstance(usage["user"], int), usage
    assert usage["user"] + usage["kernel"] > 0, usage  # ~0.1 s of shell arithmetic
    delete_force(pyoci, cid)


def test_events_of_a_stopped_container_is_an_error(pyoci, bundle, new_id):
    """runc: `container with id ... is not running`."""
    cid = new_id("ev")
    pyoci.create_ok(bundle("true"), cid)
    assert pyoci("start", cid).returncode == 0
    pyoci.wait_status(cid, "stopped")
    result = pyoci("events", "--stats", cid)
    assert result.returncode == 1, result.stdout
    one_line_error(result.stderr)
    assert pyoci("delete", cid).returncode == 0


@contextlib.contextmanager
def events_stream(pyoci, cid: str, interval: str) -> Iterator[Callable[[], list[dict]]]:
    proc, out, err = pyoci.popen("events", "--interval", interval, cid)

    def lines() -> list[dict]:
        return [json.loads(x) for x in out.read_text().splitlines() if x.strip()]

    try:
        yield lines
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        assert "Traceback" not in err.read_text(), err.read_text()


def test_events_interval_prints_stats_lines(pyoci, bundle, new_id):
    cid = new_id("ev")
    start_sleeper(pyoci, bundle, cid)
    start = time.monotonic()
    with events_stream(pyoci, cid, "200ms") as lines:
        got = wait_for(lambda: len(lines()) >= 3 and lines(), "3 stats lines", timeout=5)
    assert time.monotonic() - start >= 0.35  # spaced by the interval, not a burst
    for event in got:
        assert event["type"] == "stats" and event["id"] == cid, event
        assert "pids" in event["data"] and "memory" in event["data"], event
    delete_force(pyoci, cid)


def test_events_reports_oom(pyoci, bundle, new_id):
    need_v1("memory")
    cid = new_id("ev")
    resources = {"memory": {"limit": 32 * MiB, "swap": 32 * MiB}}
    start_sleeper(pyoci, bundle, cid, patch=resources_patch(resources))
    with events_stream(pyoci, cid, "200ms") as lines:
        wait_for(lines, "the first stats line", timeout=5)  # events is watching now
        result = pyoci("exec", cid, "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
        assert result.returncode == 137, (result.returncode, result.stderr)
        ooms = wait_for(
            lambda: [e for e in lines() if e.get("type") == "oom"], "an oom event", timeout=5
        )
    assert ooms[0]["id"] == cid, ooms
    delete_force(pyoci, cid)


# === update ======================================================================================
def test_update_memory_and_pids_of_a_running_container(pyoci, bundle, new_id):
    m, p = need_v1("memory"), need_v1("pids")
    cid = new_id("up")
    resources = {"memory": {"limit": 32 * MiB}, "pids": {"limit": 10}}
    start_sleeper(pyoci, bundle, cid, patch=resources_patch(resources, cgroupns=True))
    dirs = default_dirs(cid)
    result = pyoci("update", "--memory", "64m", "--pids-limit", "20", cid)
    assert result.returncode == 0, result.stderr
    assert read(f"{dirs[m.name]}/memory.limit_in_bytes") == str(64 * MiB)
    assert read(f"{dirs[p.name]}/pids.max") == "20"
    inside = pyoci("exec", cid, "cat", f"/sys/fs/cgroup/{m.name}/memory.limit_in_bytes")
    assert inside.stdout.strip() == str(64 * MiB), inside.stderr
    assert pyoci.state(cid)["status"] == "running"
    delete_force(pyoci, cid)


def run_with_stdin(pyoci, args: tuple[str, ...], stdin: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        pyoci.argv(args), input=stdin, capture_output=True, text=True, timeout=30, check=False
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def test_update_resources_from_stdin_and_file(pyoci, bundle, new_id, tmp_path):
    m, p, c = need_v1("memory"), need_v1("pids"), need_v1("cpu")
    cid = new_id("up")
    start_sleeper(pyoci, bundle, cid, patch=resources_patch({"memory": {"limit": 32 * MiB}}))
    dirs = default_dirs(cid)
    doc = {"memory": {"limit": 96 * MiB}, "pids": {"limit": 30}, "cpu": {"shares": 256}}
    result = run_with_stdin(pyoci, ("update", "--resources", "-", cid), json.dumps(doc))
    assert result.returncode == 0, result.stderr
    assert read(f"{dirs[m.name]}/memory.limit_in_bytes") == str(96 * MiB)
    assert read(f"{dirs[p.name]}/pids.max") == "30"
    assert read(f"{dirs[c.name]}/cpu.shares") == "256"

    path = tmp_path / "resources.json"
    path.write_text(json.dumps({"pids": {"limit": 40}}))
    result = pyoci("update", "--resources", str(path), cid)
    assert result.returncode == 0, result.stderr
    assert read(f"{dirs[p.name]}/pids.max") == "40"
    assert read(f"{dirs[m.name]}/memory.limit_in_bytes") == str(96 * MiB)  # untouched

    bad = run_with_stdin(pyoci, ("update", "--resources", "-", cid), "{not json")
    assert bad.returncode == 1
    one_line_error(bad.stderr)
    delete_force(pyoci, cid)


def test_update_flags(pyoci, bundle, new_id):
    m, c, cs = need_v1("memory"), need_v1("cpu"), need_v1("cpuset")
    cid = new_id("up")
    start_sleeper(pyoci, bundle, cid, patch=resources_patch({"memory": {"limit": 32 * MiB}}))
    dirs = default_dirs(cid)
    cpu = last_cpu()
    args = [
        "--memory", "128m", "--memory-reservation", "16m",
        "--cpu-shares", "300", "--cpu-quota", "30000", "--cpu-period", "150000",
        "--cpuset-cpus", cpu, "--cpuset-mems", "0",
    ]  # fmt: skip
    memsw = os.path.exists(f"{dirs[m.name]}/memory.memsw.limit_in_bytes")
    if memsw:
        args += ["--memory-swap", "256m"]
    result = pyoci("update", *args, cid)
    assert result.returncode == 0, result.stderr
    assert read(f"{dirs[m.name]}/memory.limit_in_bytes") == str(128 * MiB)
    assert read(f"{dirs[m.name]}/memory.soft_limit_in_bytes") == str(16 * MiB)
    if memsw:
        assert read(f"{dirs[m.name]}/memory.memsw.limit_in_bytes") == str(256 * MiB)
    assert read(f"{dirs[c.name]}/cpu.shares") == "300"
    assert read(f"{dirs[c.name]}/cpu.cfs_quota_us") == "30000"
    assert read(f"{dirs[c.name]}/cpu.cfs_period_us") == "150000"
    assert read(f"{dirs[cs.name]}/cpuset.cpus") == cpu
    assert read(f"{dirs[cs.name]}/cpuset.mems") == "0"

    blkio = v1_hierarchy("blkio")
    weight = blkio and os.path.join(dirs[blkio.name], "blkio.bfq.weight")
    if weight and os.path.exists(weight):
        assert pyoci("update", "--blkio-weight", "300", cid).returncode == 0
        assert read(weight).split()[-1] == "300"
    delete_force(pyoci, cid)


def test_update_lowers_memory_below_swap_limit(pyoci, bundle, new_id):
    """v1 wants memory <= memory+swap at every step: lowering both at once must write the
    memory limit first (and raising both, memsw first), as runc does."""
    m = need_v1("memory")
    cid = new_id("up")
    resources = {"memory": {"limit": 64 * MiB, "swap": 128 * MiB}}
    start_sleeper(pyoci, bundle, cid, patch=resources_patch(resources))
    directory = default_dirs(cid)[m.name]
    if not os.path.exists(f"{directory}/memory.memsw.limit_in_bytes"):
        pytest.skip("no swap accounting (memory.memsw.*)")
    down = pyoci("update", "--memory", "32m", "--memory-swap", "48m", cid)
    assert down.returncode == 0, down.stderr
    assert read(f"{directory}/memory.limit_in_bytes") == str(32 * MiB)
    assert read(f"{directory}/memory.memsw.limit_in_bytes") == str(48 * MiB)
    up = pyoci("update", "--memory", "256m", "--memory-swap", "512m", cid)
    assert up.returncode == 0, up.stderr
    assert read(f"{directory}/memory.limit_in_bytes") == str(256 * MiB)
    assert read(f"{directory}/memory.memsw.limit_in_bytes") == str(512 * MiB)
    delete_force(pyoci, cid)


def test_update_bad_value_is_an_error_and_keeps_the_old_one(pyoci, bundle, new_id):
    cs = need_v1("cpuset")
    cid = new_id("up")
    start_sleeper(pyoci, bundle, cid)
    path = os.path.join(default_dirs(cid)[cs.name], "cpuset.cpus")
    before = read(path)
    result = pyoci("update", "--cpuset-cpus", "99", cid)
    assert result.returncode == 1
    line = one_line_error(result.stderr)
    assert "cpuset.cpus" in line, line
    assert read(path) == before
    assert pyoci.state(cid)["status"] == "running"
    delete_force(pyoci, cid)


def test_update_of_a_missing_container_is_an_error(pyoci):
    result = pyoci("update", "--pids-limit", "5", "no-such-container")
    assert result.returncode == 1
    one_line_error(result.stderr)


# === features ====================================================================================
def test_features(pyoci):
    result = pyoci("features")
    assert result.returncode == 0, result.stderr
    f = json.loads(result.stdout)
    assert f["ociVersionMin"].startswith("1.0"), f
    assert f["ociVersionMax"].startswith("1."), f
    assert set(f["hooks"]) >= {
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    }, f["hooks"]
    assert {"ro", "rw", "nosuid", "nodev", "noexec", "bind", "rbind"} <= set(f["mountOptions"])
    linux = f["linux"]
    assert set(linux["namespaces"]) >= {
        "cgroup",
        "ipc",
        "mount",
        "network",
        "pid",
        "user",
        "uts",
    }, linux["namespaces"]
    assert {"CAP_SYS_ADMIN", "CAP_NET_RAW", "CAP_KILL"} <= set(linux["capabilities"])
    cgroup = linux["cgroup"]
    for key in ("v1", "v2", "systemd", "systemdUser"):
        assert isinstance(cgroup.get(key), bool), cgroup
    assert cgroup["v1"] is True, cgroup  # this suite runs on v1 or hybrid hosts too
    seccomp = linux["seccomp"]
    assert seccomp["enabled"] is True, seccomp
    assert {"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL"} <= set(seccomp["actions"])
    assert "SCMP_CMP_EQ" in seccomp["operators"], seccomp
    assert "SCMP_ARCH_X86_64" in seccomp["archs"] or "SCMP_ARCH_AARCH64" in seccomp["archs"]
    for key in ("apparmor", "selinux"):
        assert isinstance(linux.get(key, {}).get("enabled"), bool), linux.get(key)
