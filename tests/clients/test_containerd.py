"""containerd drives a runtime through its shim (containerd-shim-runc-v2, go-runc): every
scenario runs `ctr run --runc-binary BINARY ...` once with runc and once with pyoci
(`test_x[runc]`, `test_x[pyoci]`), and pyoci must pass whatever runc passes.

The module starts its own containerd in a temporary directory: its own config.toml (root, state,
gRPC/ttrpc sockets and the `opt` plugin all inside the directory, no CRI plugin), its own
namespace, and `--runc-root` so the runtimes keep their state there too. The busybox image is
built offline (images.py) and imported once. Everything is removed at the end, even after
failures: tasks, containers, snapshots, the image, the daemon, leftover shims and their
processes, mounts under the directory, the cgroups of the namespace, the directory.

What the shim runs (recorded by wrapping the runtimes): every call is
`--root R/NS --log B/log.json --log-format json CMD ...`; `create --bundle B --pid-file
B/init.pid [--console-socket S] ID`, `start ID`, `exec --process F --detach --pid-file P
[--tty --console-socket S] ID`, `kill ID 15`, `kill --all ID 9`, `pause`, `resume`,
`ps --format json ID`, `delete ID` once the task has exited, then `delete --force ID` on an id
that is already gone.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from images import ROOTFS, TAG, build_busybox_archive
from ptyrun import run_in_pty

pytestmark = pytest.mark.clients

TIMEOUT = 30  # every ctr command
RUNC = shutil.which("runc") or "/usr/sbin/runc"
PYOCI = os.environ.get("PYOCI") or str(Path(sys.executable).parent / "pyoci")  # as conftest
RUNTIMES = {"runc": RUNC, "pyoci": PYOCI}
SHIM_RUN_DIR = Path("/run/containerd")  # where the shim's sockets go, whatever the config says
CONFIG = """\
version = 2
root = "{top}/root"
state = "{top}/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
]

[grpc]
  address = "{top}/containerd.sock"

[ttrpc]
  address = "{top}/containerd.sock.ttrpc"

[debug]
  level = "debug"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{top}/opt"
"""
# A task that says it is ready once its TERM trap is set, then reports each TERM it gets.
TRAP_TERM = 'trap "echo got-TERM" TERM; echo ready; while :; do sleep 0.1; done'


# --- host helpers --------------------------------------------------------------------------------
def _mount_points() -> list[str]:
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            # mountinfo escapes space, tab, newline and backslash as \ooo
            points.append(line.split()[4].encode().decode("unicode_escape"))
    return points


def _mounts_under(top: Path) -> list[str]:
    prefix = str(top)
    return [p for p in _mount_points() if p == prefix or p.startswith(prefix + "/")]


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def _children() -> dict[int, list[int]]:
    """ppid → pids, for every live process."""
    tree: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        tree.setdefault(ppid, []).append(int(name))
    return tree


def _descendants(pid: int) -> list[int]:
    tree, found, todo = _children(), [], [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _listening_sockets(pid: int) -> list[str]:
    """Paths of the unix sockets open in process pid (a killed shim leaves its socket file)."""
    inodes = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    except OSError:
        pass
    with open("/proc/net/unix") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return [row[7] for row in rows if len(row) > 7 and row[6] in inodes]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def _cgroup_dirs(cgroups_path: str) -> list[Path]:
    """The directories of a cgroupsPath in every hierarchy (v1 controllers or v2)."""
    base = Path("/sys/fs/cgroup")
    rel = cgroups_path.lstrip("/")
    found = [base / rel] if (base / rel).is_dir() else []
    found += [p for p in base.glob(f"*/{rel}") if p.is_dir()]
    return found


def _freezer_file(cgroups_path: str) -> Path | None:
    base, rel = Path("/sys/fs/cgroup"), cgroups_path.lstrip("/")
    for path in (base / "freezer" / rel / "freezer.state", base / rel / "cgroup.freeze"):
        if path.exists():
            return path
    return None


def read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def wait_for(what: str, predicate: Callable[[], object], timeout: float = 10) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


# --- the private containerd ----------------------------------------------------------------------
class Containerd:
    """A containerd with everything in `top`, and `ctr` bound to its socket and namespace."""

    def __init__(self, top: Path) -> None:
        self.top = top
        self.address = str(top / "containerd.sock")
        self.namespace = f"pyoci-test-{uuid.uuid4().hex[:8]}"
        self.runc_root = top / "runc"  # the runtimes' --root is runc_root/namespace
        self.fifo_dir = top / "fifo"
        self.state = top / "state" / "io.containerd.runtime.v2.task" / self.namespace
        self.config = top / "config.toml"
        self.config.write_text(CONFIG.format(top=top))
        self.log = top / "containerd.log"
        self.env = dict(os.environ)
        with open("/proc/filesystems") as f:
            overlay = any(line.split()[-1] == "overlay" for line in f if line.strip())
        self.env["CONTAINERD_SNAPSHOTTER"] = "overlayfs" if overlay else "native"
        self.proc: subprocess.Popen | None = None
        self.shim_run_dir_existed = SHIM_RUN_DIR.exists()

    # daemon
    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["containerd", "--config", str(self.config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"containerd exited {self.proc.returncode}:\n{self.log_tail()}")
            if os.path.exists(self.address):
                probe = subprocess.run(
                    ["ctr", "--address", self.address, "version"],
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=TIMEOUT,
                    check=False,
                )
                if probe.returncode == 0:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"containerd did not come up:\n{self.log_tail()}")
            time.sleep(0.05)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no containerd log)"

    # ctr
    def argv(self, *args: str) -> list[str]:
        return ["ctr", "--address", self.address, "--namespace", self.namespace, *args]

    def ctr(
        self, *args: str, input: str | None = None, timeout: float = TIMEOUT
    ) -> subprocess.CompletedProcess:
        try:
            return subprocess.run(
                self.argv(*args),
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
                capture_output=True,
                text=True,
                env=self.env,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as e:
            raise AssertionError(
                f"ctr {' '.join(args)}: no answer in {timeout}s\n"
                f"stdout: {e.stdout!r}\nstderr: {e.stderr!r}\ncontainerd log:\n{self.log_tail()}"
            ) from None

    def ok(self, *args: str, input: str | None = None) -> str:
        result = self.ctr(*args, input=input)
        assert result.returncode == 0, (
            f"ctr {' '.join(args)}: exit {result.returncode}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}\n"
            f"containerd log:\n{self.log_tail()}"
        )
        return result.stdout

    def tasks(self) -> dict[str, tuple[int, str]]:
        """id → (pid, status) from `ctr task ls`."""
        rows = self.ok("task", "ls").splitlines()[1:]
        return {f[0]: (int(f[1]), f[2]) for f in (r.split() for r in rows) if len(f) >= 3}

    def containers(self) -> list[str]:
        return self.ok("container", "ls", "-q").split()

    def snapshots(self) -> list[str]:
        return [r.split()[0] for r in self.ok("snapshot", "ls").splitlines()[1:] if r.strip()]

    def remove(self, cid: str) -> None:
        """Force-remove a task, its container and its snapshot; errors are ignored."""
        for args in (
            ("task", "kill", "--all", "--signal", "SIGKILL", cid),
            ("task", "delete", "--force", cid),
            ("container", "delete", cid),
            ("snapshot", "rm", cid),
        ):
            try:
                self.ctr(*args)
            except AssertionError:
                pass

    # teardown
    def stop(self) -> None:
        """Remove everything, stop the daemon, kill what survives, unmount, clean the dirs."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                for cid in set(self.tasks()) | set(self.containers()):
                    self.remove(cid)
                self.ctr("image", "rm", TAG)
                self.ctr("namespace", "rm", self.namespace)
            except AssertionError:
                pass
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # shims outlive containerd: kill any of ours (they name our socket), and their children
        for name in os.listdir("/proc"):
            if name.isdigit() and self.address in _cmdline(int(name)):
                sockets = _listening_sockets(int(name))
                for pid in [*reversed(_descendants(int(name))), int(name)]:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                for path in sockets:
                    if path.startswith(f"{SHIM_RUN_DIR}/s/"):
                        try:
                            os.unlink(path)
                        except OSError:
                            pass
        for point in reversed(_mounts_under(self.top)):
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)
        cgroups = _cgroup_dirs(f"/{self.namespace}")
        strays = {  # processes a runtime left in the namespace's cgroups, shim or no shim
            int(pid)
            for cgroup in cgroups
            for procs in cgroup.rglob("cgroup.procs")
            for pid in read(procs).split()
        }
        for pid in strays:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if strays:
            wait_for("stray processes to die", lambda: not any(map(_alive, strays)))
        for cgroup in cgroups:
            for sub in sorted(cgroup.rglob("*"), key=lambda p: -len(p.parts)):
                if sub.is_dir():
                    try:
                        sub.rmdir()
                    except OSError:
                        pass
            try:
                cgroup.rmdir()
            except OSError:
                pass
        if not self.shim_run_dir_existed:  # only if empty: another containerd may use it
            for path in (SHIM_RUN_DIR / "s", SHIM_RUN_DIR):
                try:
                    path.rmdir()
                except OSError:
                    pass
        if not _mounts_under(self.top):  # never rmtree through a mount
            shutil.rmtree(self.top, ignore_errors=True)


@pytest.fixture(scope="module")
def containerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Containerd]:
    if os.geteuid() != 0:
        pytest.skip("containerd tests start real containers: run them as root")
    for tool in ("containerd", "ctr", "containerd-shim-runc-v2"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (make install)")
    if not (ROOTFS / "bin" / "busybox").exists():
        pytest.skip(f"busybox rootfs missing at {ROOTFS}: run `make bundles`")
    top = tmp_path_factory.mktemp("containerd")
    if len(str(top)) > 80:  # sun_path holds 108 bytes: keep the sockets' paths short
        top.rmdir()
        top = Path(tempfile.mkdtemp(prefix="pyoci-containerd-"))
    daemon = Containerd(top)
    try:
        daemon.start()
        archive = build_busybox_archive(daemon.top / "busybox.tar")
        daemon.ok("image", "import", str(archive))
        assert TAG in daemon.ok("image", "ls", "-q").split()
        yield daemon
    finally:
        daemon.stop()


class Ctr:
    """`ctr` for one test and one runtime: `run(...)` is `ctr run --runc-binary RUNTIME ...`,
    ids are unique (`id()`) and force-removed after the test."""

    def __init__(self, daemon: Containerd, runtime: str, workdir: Path) -> None:
        self.daemon = daemon
        self.runtime = runtime
        self.workdir = workdir
        self.ids: list[str] = []

    def __call__(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        return self.daemon.ctr(*args, input=input)

    def ok(self, *args: str) -> str:
        return self.daemon.ok(*args)

    def id(self, what: str) -> str:
        cid = f"{what}-{uuid.uuid4().hex[:8]}"
        self.ids.append(cid)
        return cid

    def run_options(self, runtime: str | None = None) -> list[str]:
        return [
            "--runc-binary",
            runtime or self.runtime,
            "--runc-root",
            str(self.daemon.runc_root),
            "--fifo-dir",
            str(self.daemon.fifo_dir),
        ]

    def run(
        self, cid: str, *cmd: str, options: tuple[str, ...] = (), input: str | None = None
    ) -> subprocess.CompletedProcess:
        """`ctr run OPTIONS --runc-binary ... IMAGE ID CMD...`"""
        return self("run", *options, *self.run_options(), TAG, cid, *cmd, input=input)

    def exec_argv(
        self, cid: str, exec_id: str, *cmd: str, options: tuple[str, ...] = ()
    ) -> list[str]:
        """`task exec` arguments (the fifos go in our directory: a detached exec leaves them)"""
        fifo = ("--fifo-dir", str(self.daemon.fifo_dir))
        return ["task", "exec", *fifo, "--exec-id", exec_id, *options, cid, *cmd]

    def exec(
        self, cid: str, exec_id: str, *cmd: str, options: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess:
        return self(*self.exec_argv(cid, exec_id, *cmd, options=options))

    def run_d(self, what: str, script: str) -> tuple[str, Path]:
        """Start `sh -c SCRIPT` as a detached task whose output goes to a file: (id, file)."""
        cid = self.id(what)
        out = self.workdir / f"{cid}.out"
        result = self.run(cid, "sh", "-c", script, options=("-d", "--log-uri", f"file://{out}"))
        assert result.returncode == 0, f"{result.stdout}{result.stderr}\n{self.daemon.log_tail()}"
        return cid, out

    def status(self, cid: str) -> str | None:
        return self.daemon.tasks().get(cid, (0, None))[1]

    def wait_status(self, cid: str, status: str) -> None:
        wait_for(f"task {cid} {status}", lambda: self.status(cid) == status)

    def runtime_state(self, cid: str) -> Path:
        """The runtime's own state directory for cid (runc and pyoci: --root/ID)."""
        return self.daemon.runc_root / self.daemon.namespace / cid

    def cgroups_path(self, cid: str) -> str:
        return f"/{self.daemon.namespace}/{cid}"  # ctr's default: /NAMESPACE/ID

    def leftovers(self, cid: str) -> list[str]:
        """What a removed container must not leave behind."""
        found = []
        if cid in self.daemon.tasks():
            found.append(f"task {cid}")
        if cid in self.daemon.containers():
            found.append(f"container {cid}")
        if cid in self.daemon.snapshots():
            found.append(f"snapshot {cid}")
        if self.runtime_state(cid).exists():
            found.append(f"runtime state {self.runtime_state(cid)}")
        found += [f"mount {m}" for m in _mounts_under(self.daemon.state / cid)]
        found += [f"cgroup {d}" for d in _cgroup_dirs(self.cgroups_path(cid))]
        return found

    def cleanup(self) -> None:
        for cid in self.ids:
            self.daemon.remove(cid)


@pytest.fixture(params=list(RUNTIMES))
def ctr(request: pytest.FixtureRequest, containerd: Containerd, tmp_path: Path) -> Iterator[Ctr]:
    runtime = RUNTIMES[request.param]
    if not os.access(runtime, os.X_OK):
        pytest.skip(f"{request.param} not found at {runtime}")
    client = Ctr(containerd, runtime, tmp_path)
    try:
        yield client
    finally:
        client.cleanup()


# --- scenarios -----------------------------------------------------------------------------------
def test_run_output_and_exit_code(ctr: Ctr) -> None:
    cid = ctr.id("run")
    result = ctr.run(cid, "echo", "hello from busybox", options=("--rm",))
    assert (result.returncode, result.stdout) == (0, "hello from busybox\n"), result.stderr
    # stdin, stdout and stderr are the shim's pipes, passed through; the exit code is ctr's
    cid = ctr.id("run")
    script = "read line; echo got:$line; echo err >&2; exit 3"
    result = ctr.run(cid, "sh", "-c", script, options=("--rm",), input="piped\n")
    assert result.returncode == 3, f"{result.stdout}{result.stderr}"
    assert result.stdout == "got:piped\n"
    assert result.stderr == "err\n"
    assert not ctr.leftovers(cid)


def test_run_burst(ctr: Ctr) -> None:
    """Short-lived containers, several at a time, which shakes out races: the shim reaps an
    exited init at once, so `start` must not look the process up after letting it run (it may
    be gone already), and `create` must not rely on the order in which its two children
    report (stage 1's pid, the init's ready). Each container exits with its own code, which
    proves its own command ran. Output is test_run_output_and_exit_code's job: under a burst,
    ctr now and then drops the output of a process that exits right after printing
    (containerd#5741, reported with runc; seen here once in ~700 runs of this test's
    containers, with pyoci)."""

    def one(n: int) -> tuple[str, int, str]:
        cid = ctr.id(f"burst{n}")
        result = ctr.run(cid, "sh", "-c", f"exit {n + 1}", options=("--rm",))
        return cid, result.returncode, result.stderr

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(one, range(18)))
    wrong = [f"{cid}: exit {code}: {err.strip()}" for n, (cid, code, err) in enumerate(results)
             if code != n + 1]  # fmt: skip
    assert not wrong, "\n".join(wrong)
    leftovers = [item for cid, _, _ in results for item in ctr.leftovers(cid)]
    assert not leftovers, leftovers


def test_detached_exec_kill_delete(ctr: Ctr) -> None:
    cid, out = ctr.run_d("detached", TRAP_TERM)
    wait_for("ready", lambda: "ready" in read(out))
    assert ctr.status(cid) == "RUNNING"
    result = ctr.exec(cid, "e1", "sh", "-c", "echo in-exec; exit 5")
    assert (result.returncode, result.stdout) == (5, "in-exec\n"), result.stderr
    result = ctr.exec(cid, "e2", "pwd", options=("--cwd", "/etc"))
    assert (result.returncode, result.stdout) == (0, "/etc\n"), result.stderr
    ctr.ok("task", "kill", cid)  # SIGTERM
    wait_for("got-TERM", lambda: "got-TERM" in read(out))
    time.sleep(0.2)
    assert ctr.status(cid) == "RUNNING", "the trap should keep it alive"
    ctr.ok("task", "kill", "--signal", "SIGKILL", cid)
    ctr.wait_status(cid, "STOPPED")
    result = ctr("task", "delete", cid)
    assert result.returncode == 0, result.stderr
    assert "exit code 137" in result.stderr, result.stderr
    assert cid not in ctr.daemon.tasks()
    ctr.ok("container", "delete", cid)
    assert not ctr.leftovers(cid)


def test_kill_all(ctr: Ctr) -> None:
    """`ctr task kill --all` signals every process of the container, the exec'd ones too."""
    cid, out = ctr.run_d("killall", TRAP_TERM)
    wait_for("ready", lambda: "ready" in read(out))
    ctr.ok(*ctr.exec_argv(cid, "sleeper", "sleep", "1000", options=("-d",)))

    def sleeper() -> int:
        rows = ctr.ok("task", "ps", cid).splitlines()[1:]
        pids = [int(row.split()[0]) for row in rows if row.strip()]
        return next((pid for pid in pids if _cmdline(pid) == "sleep 1000"), 0)

    pid = wait_for("the exec'd sleep in ctr task ps", sleeper)
    ctr.ok("task", "kill", "--all", "--signal", "SIGKILL", cid)
    ctr.wait_status(cid, "STOPPED")
    wait_for(f"exec'd pid {pid} gone", lambda: not _alive(pid))
    result = ctr("task", "delete", cid)
    assert result.returncode == 0 and "exit code 137" in result.stderr, result.stderr
    ctr.ok("container", "delete", cid)
    assert not ctr.leftovers(cid)


def test_pause_resume(ctr: Ctr) -> None:
    cid, out = ctr.run_d("pause", "echo ready; while :; do sleep 0.1; done")
    wait_for("ready", lambda: "ready" in read(out))
    freezer = _freezer_file(ctr.cgroups_path(cid))
    ctr.ok("task", "pause", cid)
    assert ctr.status(cid) == "PAUSED"
    if freezer is not None:
        assert freezer.read_text().strip() in ("FROZEN", "1"), freezer
    ctr.ok("task", "resume", cid)
    assert ctr.status(cid) == "RUNNING"
    if freezer is not None:
        assert freezer.read_text().strip() in ("THAWED", "0"), freezer
    result = ctr.exec(cid, "alive", "echo", "alive")
    assert (result.returncode, result.stdout) == (0, "alive\n"), result.stderr


def test_task_ps(ctr: Ctr) -> None:
    cid, _ = ctr.run_d("ps", "sleep 1000 & exec sleep 1001")
    ctr.ok(*ctr.exec_argv(cid, "third", "sleep", "1002", options=("-d",)))

    def listed() -> list[int]:
        rows = ctr.ok("task", "ps", cid).splitlines()[1:]
        pids = [int(row.split()[0]) for row in rows if row.strip()]
        return pids if len(pids) == 3 else []

    pids = wait_for("3 pids in ctr task ps", listed)
    task_pid = ctr.daemon.tasks()[cid][0]
    assert task_pid in pids
    assert _cmdline(task_pid) == "sleep 1001"
    assert sorted(_cmdline(pid) for pid in pids) == ["sleep 1000", "sleep 1001", "sleep 1002"]


def test_run_tty(ctr: Ctr) -> None:
    cid = ctr.id("tty")
    script = "tty; test -t 0 && echo stdin-is-a-tty; exit 4"
    argv = ctr.daemon.argv("run", "--rm", "-t", *ctr.run_options(), TAG, cid, "sh", "-c", script)
    code, output = run_in_pty(argv, ctr.daemon.env)
    assert "/dev/pts/" in output, output
    assert "stdin-is-a-tty" in output, output
    assert code == 4, output
    assert not ctr.leftovers(cid)


def test_exec_tty(ctr: Ctr) -> None:
    cid, out = ctr.run_d("exectty", TRAP_TERM)
    wait_for("ready", lambda: "ready" in read(out))
    argv = ctr.daemon.argv(*ctr.exec_argv(cid, "t", "sh", "-c", "tty; exit 6", options=("-t",)))
    code, output = run_in_pty(argv, ctr.daemon.env)
    assert "/dev/pts/" in output, output
    assert code == 6, output


def test_rm(ctr: Ctr) -> None:
    # without --rm, ctr deletes the task but keeps the container and its snapshot
    kept = ctr.id("kept")
    result = ctr.run(kept, "true")
    assert result.returncode == 0, result.stderr
    assert kept not in ctr.daemon.tasks()
    assert kept in ctr.daemon.containers()
    assert kept in ctr.daemon.snapshots()
    assert not ctr.runtime_state(kept).exists()
    ctr.ok("container", "delete", kept)
    assert not ctr.leftovers(kept)
    # with --rm, nothing is left
    removed = ctr.id("removed")
    result = ctr.run(removed, "sh", "-c", "exit 7", options=("--rm",))
    assert result.returncode == 7, result.stderr
    assert not ctr.leftovers(removed)


def test_run_options(ctr: Ctr) -> None:
    """The spec ctr writes for --env, --cwd, --read-only, a read-only bind mount, --cap-drop."""
    share = ctr.workdir / "share"
    share.mkdir()
    (share / "file").write_text("shared\n")
    cid = ctr.id("options")
    script = (
        'echo "$FOO"; pwd; touch /x || echo rootfs-ro; cat /share/file;'
        " touch /share/y || echo bind-ro; grep CapEff /proc/self/status"
    )
    options = (
        "--rm",
        "--env",
        "FOO=bar baz",
        "--cwd",
        "/etc",
        "--read-only",
        "--mount",
        f"type=bind,src={share},dst=/share,options=rbind:ro",
        "--cap-drop",
        "CAP_CHOWN",
    )
    result = ctr.run(cid, "sh", "-c", script, options=options)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:5] == ["bar baz", "/etc", "rootfs-ro", "shared", "bind-ro"], result.stdout
    cap_eff = int(lines[5].split()[1], 16)
    assert cap_eff and not cap_eff & 1, f"CAP_CHOWN (bit 0) should be dropped: {lines[5]}"
    assert not (share / "y").exists()
    assert not ctr.leftovers(cid)


def test_memory_limit(ctr: Ctr) -> None:
    cid = ctr.id("memory")
    out = ctr.workdir / "memory.out"
    options = ("-d", "--memory-limit", str(64 << 20), "--log-uri", f"file://{out}")
    result = ctr.run(cid, "sleep", "1000", options=options)
    assert result.returncode == 0, result.stderr
    dirs = _cgroup_dirs(ctr.cgroups_path(cid))
    files = [d / "memory.limit_in_bytes" for d in dirs] + [d / "memory.max" for d in dirs]
    limits = [f.read_text().strip() for f in files if f.exists()]
    assert limits == [str(64 << 20)], f"{dirs}: {limits}"


def test_missing_command(ctr: Ctr) -> None:
    cid = ctr.id("missing")
    result = ctr.run(cid, "nosuch", options=("--rm",))
    assert result.returncode != 0
    assert "executable file not found" in result.stderr, result.stderr
    assert not ctr.leftovers(cid)


WRAPPER = """\
#!/bin/sh
# {real} with a failing `start`; records every call and, for `delete`, the state before it
log={log}
root=; prev=; id=
for a in "$@"; do
  [ "$prev" = --root ] && root=$a
  prev=$a; id=$a
done
state=
case " $* " in
  *" start "*) echo "$* |" >> "$log"; echo "injected start failure" >&2; exit 1 ;;
  *" delete "*) state=$({real} --root "$root" state "$id" 2>&1 | tr -d '\\n') ;;
esac
echo "$* | $state" >> "$log"
exec {real} "$@"
"""


def test_created_task_force_delete(ctr: Ctr) -> None:
    """A task whose `start` fails stays `created`; `ctr task delete` refuses it (containerd's
    client checks the status first) and `--force` runs `kill --all ID 9`, waits for the exit,
    then `delete ID`: never a `delete` without --force of a `created` container."""
    log = ctr.workdir / "calls.log"
    wrapper = ctr.workdir / "failing-start"
    wrapper.write_text(WRAPPER.format(real=ctr.runtime, log=log))
    wrapper.chmod(0o755)
    cid = ctr.id("created")
    result = ctr("run", "-d", *ctr.run_options(str(wrapper)), TAG, cid, "sleep", "1000")
    assert result.returncode != 0
    assert "injected start failure" in result.stderr, result.stderr
    assert ctr.status(cid) == "CREATED"
    pid = ctr.daemon.tasks()[cid][0]
    assert _alive(pid)
    result = ctr("task", "delete", cid)
    assert result.returncode != 0 and "must be stopped" in result.stderr, result.stderr
    result = ctr("task", "delete", "--force", cid)
    assert result.returncode == 0, f"{result.stderr}\n{read(log)}"
    assert cid not in ctr.daemon.tasks()
    wait_for(f"pid {pid} gone", lambda: not _alive(pid))
    ctr.ok("container", "delete", cid)
    assert not ctr.leftovers(cid)
    calls = [line.partition(" | ") for line in read(log).splitlines()]
    kills = [i for i, (argv, _, _) in enumerate(calls) if argv.endswith(f" kill --all {cid} 9")]
    deletes = [i for i, (argv, _, _) in enumerate(calls) if argv.endswith(f" delete {cid}")]
    assert kills and deletes and kills[0] < deletes[0], read(log)
    for i in deletes:
        state = calls[i][2]
        status = json.loads(state)["status"] if state.startswith("{") else state
        assert status == "stopped", f"`delete {cid}` without --force in state {status}"
