"""Helpers of tests/reliability (conftest.py makes the `rel` fixture): a runner that injects
faults (PYOCI_FAULT, see pyoci/faults.py), bundles, and the full leftover check the issue asks
for after every case:
the state root, the test's processes, the host's mounts under the test's directories, and the
container's cgroup directories in every hierarchy (v1 and v2) of this host.

The checks are scoped to what the test made (its ids, its --root, its marker, its
directories) so that another test session on the same host cannot make them fail.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from pyoci.spec import HOOK_NAMES  # every kind the spec names, in lifecycle order

REPO = Path(__file__).resolve().parents[2]
BUSYBOX_CONFIG = REPO / "bundles" / "busybox" / "config.json"
BUSYBOX_ROOTFS = REPO / "bundles" / "busybox" / "rootfs"
HOST_ROOT = 100000  # the user namespace's root on the host (owner of the userns rootfs)
MAPPINGS = [{"containerID": 0, "hostID": HOST_ROOT, "size": 65536}]
INIT_COMM = "pyoci:[2:INIT]"  # a created init: set up, not yet exec'd into the program


# --- the host's state -----------------------------------------------------------------------------
def cgroup_mount_points() -> list[str]:
    """Every cgroup (v1) and cgroup2 mount point of this host."""
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[:1] in (["cgroup"], ["cgroup2"]):
                points.append(left.split()[4])
    return points


def cgroup_dirs(names: list[str], extra: list[str] = ()) -> list[str]:
    """The directories, in any hierarchy, of the default placement /pyoci/<id> for `names`,
    and of the `extra` cgroupsPath values."""
    found = []
    for mount in cgroup_mount_points():
        for rel in [f"pyoci/{n}" for n in names] + [p.strip("/") for p in extra]:
            path = os.path.join(mount, rel)
            if os.path.isdir(path):
                found.append(path)
    return found


def mount_points_under(paths: list[Path]) -> list[str]:
    tops = [str(p) for p in paths]
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if any(point == t or point.startswith(t + "/") for t in tops):
                out.append(point)
    return out


def host_links() -> set[str]:
    """The host's network links pyoci makes (veth host ends are `vp` + 8 hex digits: see
    pyoci/linux/network.py); other links come and go with other sessions' tests."""
    return {n for n in os.listdir("/sys/class/net") if n.startswith("vp")}


class RelNetns:
    """A network namespace made by `ip netns add` for one test: pyoci runs in it (`ip netns
    exec`), so its bridges and veths are made there and the netDevices come from there, never
    from the machine's own links (as tests/integration/test_network.py)."""

    def __init__(self) -> None:
        self.name = f"pyrel-{os.urandom(4).hex()}"
        subprocess.run(["ip", "netns", "add", self.name], check=True, capture_output=True)

    def ip(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["ip", "-n", self.name, *argv], check=True, capture_output=True, text=True
        )

    def links(self) -> set[str]:
        out = self.ip("-o", "link", "show").stdout
        return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}

    def add_dummy(self, name: str) -> None:
        """A plain virtual device (dummy, or ifb where the kernel has no dummy driver)."""
        try:
            self.ip("link", "add", name, "type", "dummy")
        except subprocess.CalledProcessError:
            self.ip("link", "add", name, "type", "ifb")

    def wrap(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def remove(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], check=False, capture_output=True)


def lease_store(root: Path) -> dict:
    """The networks of the address store of a state root (pyoci/netstore.py), {} if none."""
    path = root / ".net" / "leases.json"
    return json.loads(path.read_text()).get("networks", {}) if path.exists() else {}


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return False
    return data[data.rindex(b")") + 2 :][:1] not in (b"Z", b"X")


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def wait_until_locked(state_dir: Path, timeout: float = 10) -> None:
    """Until some pyoci command holds the container's lock (flock of <dir>/lock): a race
    test starts its second command only then, however loaded the machine is."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            fd = os.open(state_dir / "lock", os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            time.sleep(0.005)
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return
        finally:
            os.close(fd)  # (and with it our lock, if we got it)
        time.sleep(0.005)
    raise AssertionError(f"nobody took the lock of {state_dir} in {timeout} s")


def fd_count(pid: int | str = "self") -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


# --- bundles --------------------------------------------------------------------------------------
def base_config(args: list[str], marker: str) -> dict:
    config = json.loads(BUSYBOX_CONFIG.read_text())
    config["process"]["args"] = args
    config["process"]["env"] = [*config["process"]["env"], f"PYOCI_TEST_MARKER={marker}"]
    config["root"]["path"] = str(BUSYBOX_ROOTFS)
    return config


def write_bundle(path: Path, config: dict) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "config.json").write_text(json.dumps(config, indent=1))
    return path


@contextlib.contextmanager
def scratch_dir(name: str) -> Iterator[Path]:
    """A directory outside pytest's tmp tree, searchable by all (0711): a user namespace's
    root must reach a rootfs in it, and pytest resets its own tree to 0700 whenever a session
    starts (another one on this host included). Removed afterwards, once nothing is mounted
    under it."""
    base = Path(tempfile.mkdtemp(prefix=f"pyoci-rel-{name}-"))
    base.chmod(0o711)
    try:
        yield base
    finally:
        for point in reversed(mount_points_under([base])):
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def private_rootfs(path: Path, owner: int | None = None) -> Path:
    """A copy of the busybox rootfs, owned by `owner` (for a user namespace: its parents must
    be searchable by it, as in `scratch_dir`)."""
    # -x: never into a mount (a leaked /proc mount on the shared rootfs would hang cp on kmsg)
    subprocess.run(["cp", "-ax", str(BUSYBOX_ROOTFS), str(path)], check=True)
    if owner is not None:
        subprocess.run(["chown", "-R", f"{owner}:{owner}", str(path)], check=True)
    return path


def all_hooks(host_true: str = "/bin/true") -> dict:
    """One hook of each kind: the runtime's run the host's `true`, the container's (resolved
    in its root) the busybox `true`."""
    inside = ("createContainer", "startContainer")
    return {
        name: [{"path": "/bin/true" if name in inside else host_true, "args": ["true"]}]
        for name in HOOK_NAMES
    }


# --- the runner with faults -----------------------------------------------------------------------
class Rel:
    """Wraps the `pyoci` runner (tests/conftest.py): faults through the environment, ids
    remembered for the cgroup check, every command's stderr kept (a child's fault message
    goes to the stderr of `create`, inherited by the container)."""

    def __init__(self, runner, tmp_path: Path, marker: str) -> None:
        self.runner = runner
        self.tmp_path = tmp_path
        self.marker = marker
        self.ids: list[str] = []
        self.extra_cgroups: list[str] = []
        # also checked for mounts: the shared rootfs (a container without a mount namespace
        # mounts on its rootfs in the host's) and what tests add (their private rootfs)
        self.extra_dirs: list[Path] = [BUSYBOX_ROOTFS]
        self.links_before = host_links()
        self.netns: RelNetns | None = None  # `use_netns`
        self.netns_links: set[str] = set()  # what must be in it after each case, no more
        self.err_files: list[Path] = []
        self._n = itertools.count()  # next() is atomic: the churn test calls from threads

    def use_netns(self, netns: RelNetns) -> None:
        """Run pyoci in `netns` from now on; what is in it now (lo, the test's devices to move
        in) must be there, and alone, after each case: a device moved into a container that
        did not come back, a veth end or a bridge left, are leftovers."""
        self.netns = netns
        self.netns_links = netns.links()
        host_argv = self.runner.argv
        self.runner.argv = lambda args, global_args=(): netns.wrap(host_argv(args, global_args))

    def drop_netns(self) -> None:
        """Back to the runner's own namespace (before the test namespace is removed)."""
        if self.netns is not None:
            del self.runner.argv  # the instance's wrapper; the class's again
            self.netns = None

    def new_id(self, prefix: str = "r") -> str:
        cid = f"{prefix}-{os.urandom(6).hex()}"
        self.ids.append(cid)
        return cid

    def _env(self, fault: str | None) -> dict:
        env = dict(os.environ)
        env.pop("PYOCI_FAULT", None)
        if fault:
            env["PYOCI_FAULT"] = fault
        return env

    def _io(self) -> tuple[Path, Path]:
        n = next(self._n)
        io = self.tmp_path / "relio"
        io.mkdir(exist_ok=True)
        out, err = io / f"{n}.out", io / f"{n}.err"
        self.err_files.append(err)
        return out, err

    def __call__(
        self, *args: str, fault: str | None = None, timeout: float = 30
    ) -> subprocess.CompletedProcess:
        return self.runner.run_argv(
            self.runner.argv(args), timeout=timeout, env=self._env(fault), io=self._io()
        )

    def popen(self, *args: str, fault: str | None = None) -> tuple[subprocess.Popen, Path]:
        proc, _, err_path = self.runner.popen_argv(
            self.runner.argv(args), env=self._env(fault), io=self._io()
        )
        return proc, err_path

    def all_stderr(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.err_files if p.exists())

    # --- state ---------------------------------------------------------------------------------
    def truthful_state(self, cid: str) -> str:
        """`state` of `cid` must be true: a status that matches the init process, or `does
        not exist` only when nothing of the container is on disk. Returns the status (or
        "absent")."""
        result = self("state", cid)
        if result.returncode != 0:
            assert result.stderr == f'pyoci: container "{cid}" does not exist\n', result.stderr
            leftover = (self.runner.root / cid).exists()
            assert not leftover, f"state says {cid} does not exist, but its state dir is there"
            return "absent"
        st = json.loads(result.stdout)
        status, pid = st["status"], st["pid"]
        assert status in ("creating", "created", "running", "paused", "stopped"), st
        if status == "stopped":
            assert pid == 0, st
        elif status == "creating":
            pass  # the init may or may not be there yet
        else:
            assert pid > 0 and pid_alive(pid), f"{status} but pid {pid} is not alive"
            if status == "created":
                assert comm(pid) == INIT_COMM, f"created, but the init already exec'd {comm(pid)}"
            else:
                assert comm(pid) != INIT_COMM, f"{status}, but the init is still waiting"
        return status

    def list_ok(self) -> list[dict]:
        result = self("list", "--format", "json")
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def problems_after(self, cid: str) -> list[str]:
        """After an interrupted command: what is wrong with `state`, `list`, `delete --force`
        and what `delete --force` left (all of it, not only the first)."""
        problems = []
        try:
            self.truthful_state(cid)
        except AssertionError as err:
            problems.append(f"state: {str(err).splitlines()[0]}")
        listed = self("list", "--format", "json")
        if listed.returncode != 0:
            problems.append(f"list: exit {listed.returncode}: {listed.stderr.strip()}")
        deleted = self("delete", "--force", cid)
        if deleted.returncode != 0:
            problems.append(f"delete --force: exit {deleted.returncode}: {deleted.stderr.strip()}")
        try:
            status = self.truthful_state(cid)
            if status != "absent":
                problems.append(f"state after delete --force: {status}")
        except AssertionError as err:
            problems.append(f"state after delete --force: {str(err).splitlines()[0]}")
        problems += [f"left after delete --force: {p}" for p in self.leftovers()]
        return problems

    # --- leftovers -----------------------------------------------------------------------------
    def leftovers(self) -> list[str]:
        deadline = time.monotonic() + 1  # a SIGKILLed process takes a moment to be gone
        while self.runner.processes() and time.monotonic() < deadline:
            time.sleep(0.02)
        problems = self.runner.leftovers()
        problems += [f"cgroup {d}" for d in cgroup_dirs(self.ids, self.extra_cgroups)]
        problems += [f"host mount {m}" for m in mount_points_under(self.extra_dirs)]
        problems += [f"host link {n}" for n in sorted(host_links() - self.links_before)]
        if self.netns is not None:
            now = self.netns.links()
            problems += [f"link {n} (test netns)" for n in sorted(now - self.netns_links)]
            problems += [f"device {n} gone (test netns)" for n in sorted(self.netns_links - now)]
        problems += [f"address store: {k}: {v}" for k, v in lease_store(self.runner.root).items()]
        return problems

    def assert_clean(self, what: str = "") -> None:
        problems = self.leftovers()
        assert not problems, f"{what} left behind:\n  " + "\n  ".join(problems)

    def cleanup(self) -> None:
        """Remove what a failed test left (before the runner's own teardown check)."""
        for d in reversed(cgroup_dirs(self.ids, self.extra_cgroups)):
            for pid in Path(d, "cgroup.procs").read_text().split():
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
        for _ in range(50):
            remaining = cgroup_dirs(self.ids, self.extra_cgroups)
            for d in sorted(remaining, key=len, reverse=True):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
            if not cgroup_dirs(self.ids, self.extra_cgroups):
                break
            time.sleep(0.02)
        for m in reversed(mount_points_under(self.extra_dirs)):
            subprocess.run(["umount", "-l", m], check=False, capture_output=True)
        for pid in self.runner.processes():
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        for entry in self.runner.state_entries():
            shutil.rmtree(self.runner.root / entry, ignore_errors=True)
        for m in reversed(self.runner.our_mounts()):
            subprocess.run(["umount", "-l", m], check=False, capture_output=True)
