"""podman (with conmon) drives a runtime by its runc command line: every scenario runs once with
runc and once with pyoci (`test_x[runc]`, `test_x[pyoci]`), and pyoci must pass whatever runc
passes.

The module has its own podman world in a temporary directory: `--root`, `--runroot`,
`--tmpdir`, the vfs storage driver, file locks and a containers.conf (CONTAINERS_CONF, which
podman then reads alone) with low default rlimits (root here may not raise them), no network
and `runtime_supports_json` so conmon passes `--log-format=json`. The busybox image is built
offline (images.py) and loaded once. Everything is removed at the end, even after failures:
containers, images, leftover conmon/podman processes, mounts under the directory, the directory.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import host_mount_points, processes_mentioning
from images import ROOTFS, TAG, build_busybox_archive
from ptyrun import run_in_pty

pytestmark = pytest.mark.clients

TIMEOUT = 30
RUNC = shutil.which("runc") or "/usr/sbin/runc"
PYOCI = os.environ.get("PYOCI") or str(Path(sys.executable).parent / "pyoci")  # as conftest
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]
netns = "none"

[engine]
runtime_supports_json = ["pyoci", "runc", "crun"]
cgroup_manager = "cgroupfs"
events_logger = "file"
lock_type = "file"

[engine.runtimes]
runc = ["{runc}"]
pyoci = ["{pyoci}"]
"""
# A container that says it is ready once its TERM trap is set, then reports each TERM it gets.
TRAP_TERM = 'trap "echo got-TERM" TERM; echo ready; while :; do sleep 0.1; done'
# A container that exits 0 on TERM, so `podman stop` need not wait for its timeout.
STOPPABLE = 'trap "exit 0" TERM; echo ready; while :; do sleep 0.1; done'


class PodmanWorld:
    """The module's private podman directories and configuration."""

    def __init__(self, top: Path, pyoci: str) -> None:
        self.top = top
        self.root = top / "root"
        self.runroot = top / "runroot"
        self.tmpdir = top / "tmp"
        self.conf = top / "containers.conf"
        self.conf.write_text(CONTAINERS_CONF.format(runc=RUNC, pyoci=pyoci))
        self.env = {**os.environ, "CONTAINERS_CONF": str(self.conf)}
        self.env.pop("CONTAINERS_STORAGE_CONF", None)

    def argv(self, runtime: str, args: tuple[str, ...]) -> list[str]:
        return [
            "podman",
            "--root",
            str(self.root),
            "--runroot",
            str(self.runroot),
            "--tmpdir",
            str(self.tmpdir),
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--runtime",
            runtime,
            *args,
        ]

    def run(
        self, runtime: str, *args: str, timeout: float = TIMEOUT, input: str | None = None
    ) -> subprocess.CompletedProcess:
        stdin = {"stdin": subprocess.DEVNULL} if input is None else {"input": input}
        return subprocess.run(
            self.argv(runtime, args),
            env=self.env,
            **stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def cleanup(self, runtimes: list[str]) -> None:
        """Remove every container and image, stray processes, mounts, then the directory."""
        for runtime in runtimes:
            for args in (("rm", "-af", "-t", "0"), ("rmi", "-af")):
                try:
                    self.run(runtime, *args)
                except subprocess.TimeoutExpired:
                    pass
        # conmon and `podman container cleanup` (run by conmon when a container exits) name
        # our directories on their command lines: give them a moment, then kill them.
        deadline = time.monotonic() + 10
        while processes_mentioning(str(self.top)) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in processes_mentioning(str(self.top)):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        top = str(self.top)
        for point in reversed(host_mount_points()):
            if point == top or point.startswith(top + "/"):
                subprocess.run(["umount", "-l", point], check=False, capture_output=True)
        shutil.rmtree(self.top, ignore_errors=True)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PodmanWorld]:
    if os.geteuid() != 0:
        pytest.skip("podman tests start real containers: run them as root")
    for tool in ("podman", "conmon"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed (make install)")
    if not (ROOTFS / "bin" / "busybox").exists():
        pytest.skip(f"busybox rootfs missing at {ROOTFS}: run `make bundles`")
    world = PodmanWorld(tmp_path_factory.mktemp("podman"), PYOCI)
    try:
        archive = build_busybox_archive(world.top / "busybox.tar")
        loaded = world.run(RUNC, "load", "-i", str(archive))
        assert loaded.returncode == 0, f"podman load failed:\n{loaded.stderr}"
        yield world
    finally:
        world.cleanup([RUNC, PYOCI])


class Podman:
    """`podman(*args)` runs podman with this test's runtime; containers get unique names
    (`name()`), are force-removed after the test, and must leave no cgroup behind."""

    def __init__(self, world: PodmanWorld, runtime: str, workdir: Path) -> None:
        self.world = world
        self.runtime = runtime
        self.workdir = workdir
        self.names: list[str] = []
        self.cidfiles: list[Path] = []

    def __call__(
        self, *args: str, timeout: float = TIMEOUT, input: str | None = None
    ) -> subprocess.CompletedProcess:
        return self.world.run(self.runtime, *args, timeout=timeout, input=input)

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.returncode == 0, f"podman {' '.join(args)}: {result.returncode}\n{result}"
        return result.stdout

    def name(self) -> str:
        name = f"pyoci-test-{uuid.uuid4().hex[:10]}"
        self.names.append(name)
        return name

    def run(self, *args: str, input: str | None = None) -> subprocess.CompletedProcess:
        """`podman run --cidfile F ARGS` (the id lets the teardown find the cgroups)."""
        cidfile = self.workdir / f"cid{len(self.cidfiles)}"
        self.cidfiles.append(cidfile)
        return self("run", "--cidfile", str(cidfile), *args, input=input)

    def run_d(self, script: str, *options: str) -> str:
        """Start `sh -c SCRIPT` detached under a new name; return the name."""
        name = self.name()
        result = self.run("-d", "--name", name, *options, TAG, "sh", "-c", script)
        assert result.returncode == 0, result.stderr
        return name

    def inspect(self, name: str) -> dict:
        return json.loads(self.ok("inspect", name))[0]

    def wait_logs(self, name: str, text: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while True:
            logs = self("logs", name)
            if text in logs.stdout:
                return logs.stdout
            if time.monotonic() > deadline:
                raise AssertionError(f"{name} never logged {text!r}: {logs.stdout}{logs.stderr}")
            time.sleep(0.05)

    def host_cgroup_file(self, name: str, controller: str, v1: str, v2: str) -> Path:
        """The host's cgroup file of a running container (v1 `controller/…/v1` or v2 `…/v2`)."""
        pid = self.inspect(name)["State"]["Pid"]
        assert pid > 0
        with open(f"/proc/{pid}/cgroup") as f:
            lines = [line.rstrip("\n").split(":", 2) for line in f]
        for _, controllers, path in lines:
            if controller in controllers.split(","):
                return Path("/sys/fs/cgroup", controller) / path.lstrip("/") / v1
        unified = next(path for hid, _, path in lines if hid == "0")
        return Path("/sys/fs/cgroup") / unified.lstrip("/") / v2

    def leftover_cgroups(self) -> list[str]:
        ids = [f.read_text().strip() for f in self.cidfiles if f.exists()]
        found = []
        for cid in filter(None, ids):
            found += [str(p) for p in Path("/sys/fs/cgroup").glob(f"*/libpod_parent/libpod-{cid}")]
            found += [str(p) for p in Path("/sys/fs/cgroup").glob(f"libpod_parent/libpod-{cid}")]
        return found

    def cleanup(self) -> list[str]:
        if self.names:
            self("rm", "-f", "-t", "0", "--ignore", *self.names)
        return self.leftover_cgroups()


@pytest.fixture(params=["runc", "pyoci"])
def podman(request: pytest.FixtureRequest, world: PodmanWorld, tmp_path: Path) -> Iterator[Podman]:
    if request.param == "runc":
        if not os.access(RUNC, os.X_OK):
            pytest.skip(f"runc not found at {RUNC}")
        runtime = RUNC
    else:
        if not os.access(PYOCI, os.X_OK):
            pytest.skip(f"pyoci not found at {PYOCI} (set PYOCI or install the venv)")
        runtime = PYOCI
    client = Podman(world, runtime, tmp_path)
    yield client
    leftovers = client.cleanup()
    assert not leftovers, "cgroups left behind after podman rm:\n  " + "\n  ".join(leftovers)


# --- scenarios -----------------------------------------------------------------------------------
def test_run_rm_output_and_exit_code(podman: Podman) -> None:
    result = podman.run("--rm", TAG, "echo", "hello from busybox")
    assert (result.returncode, result.stdout) == (0, "hello from busybox\n"), result.stderr
    name = podman.name()
    result = podman.run("--rm", "--name", name, TAG, "sh", "-c", "echo out; echo err >&2; exit 3")
    assert result.returncode == 3, result.stderr
    assert result.stdout == "out\n"
    assert "err" in result.stderr
    assert podman("container", "exists", name).returncode == 1, "--rm left the container"


def test_detached_exec_stop_rm(podman: Podman) -> None:
    name = podman.run_d(STOPPABLE)
    podman.wait_logs(name, "ready")
    result = podman("exec", name, "sh", "-c", "echo in-exec; exit 4")
    assert (result.returncode, result.stdout) == (4, "in-exec\n"), result.stderr
    result = podman(
        "exec", "-e", "X=1", "-w", "/tmp", "--user", "1000", name, "sh", "-c", "pwd; id -u; echo $X"
    )
    assert (result.returncode, result.stdout) == (0, "/tmp\n1000\n1\n"), result.stderr
    podman.ok("stop", "-t", "10", name)
    state = podman.inspect(name)["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 0)
    podman.ok("rm", name)
    assert podman("container", "exists", name).returncode == 1


def test_kill_signals(podman: Podman) -> None:
    name = podman.run_d(TRAP_TERM)
    podman.wait_logs(name, "ready")
    podman.ok("kill", "-s", "TERM", name)
    podman.wait_logs(name, "got-TERM")
    assert podman.inspect(name)["State"]["Status"] == "running", "the trap should keep it alive"
    podman.ok("kill", "-s", "KILL", name)
    result = podman("wait", name)
    assert (result.returncode, result.stdout.strip()) == (0, "137"), result.stderr
    state = podman.inspect(name)["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 137)


def test_stop_escalates_to_kill(podman: Podman) -> None:
    """PID 1 without a handler ignores TERM: `podman stop -t 1` must fall back to KILL."""
    name = podman.run_d("exec sleep 300")
    started = time.monotonic()
    podman.ok("stop", "-t", "1", name)
    assert time.monotonic() - started < 10
    state = podman.inspect(name)["State"]
    assert (state["Status"], state["ExitCode"]) == ("exited", 137)


def test_pause_unpause(podman: Podman) -> None:
    name = podman.run_d(STOPPABLE)
    podman.wait_logs(name, "ready")
    freezer = podman.host_cgroup_file(name, "freezer", "freezer.state", "cgroup.freeze")
    podman.ok("pause", name)
    assert podman.inspect(name)["State"]["Status"] == "paused"
    assert freezer.read_text().strip() in ("FROZEN", "1")
    assert "Paused" in podman.ok("ps", "-a", "--filter", f"name={name}", "--format", "{{.Status}}")
    podman.ok("unpause", name)
    assert podman.inspect(name)["State"]["Status"] == "running"
    assert freezer.read_text().strip() in ("THAWED", "0")
    assert podman.ok("exec", name, "echo", "alive") == "alive\n"


def test_run_interactive_stdin(podman: Podman) -> None:
    result = podman.run("--rm", "-i", TAG, "sh", "-c", "cat; echo end", input="line1\nline2\n")
    assert (result.returncode, result.stdout) == (0, "line1\nline2\nend\n"), result.stderr


def test_run_tty(podman: Podman) -> None:
    argv = podman.world.argv(podman.runtime, ("run", "--rm", "-t", TAG, "sh", "-c", "tty; exit 2"))
    code, output = run_in_pty(argv, podman.world.env)
    assert "/dev/pts/" in output, output
    assert code == 2, output
    # and `exec -t` into a detached container (conmon passes --tty --console-socket to exec)
    name = podman.run_d(STOPPABLE)
    argv = podman.world.argv(podman.runtime, ("exec", "-t", name, "sh", "-c", "tty; exit 3"))
    code, output = run_in_pty(argv, podman.world.env)
    assert "/dev/pts/" in output, output
    assert code == 3, output


def test_user(podman: Podman) -> None:
    result = podman.run("--rm", "--user", "1000:1000", TAG, "sh", "-c", "id -u; id -g")
    assert (result.returncode, result.stdout) == (0, "1000\n1000\n"), result.stderr


def test_workdir(podman: Podman) -> None:
    result = podman.run("--rm", "--workdir", "/etc", TAG, "pwd")
    assert (result.returncode, result.stdout) == (0, "/etc\n"), result.stderr


def test_env(podman: Podman) -> None:
    script = 'echo "$FOO|$SPACED|$PATH"'
    result = podman.run("--rm", "-e", "FOO=bar", "--env", "SPACED=a b", TAG, "sh", "-c", script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("bar|a b|/"), result.stdout


def test_hostname(podman: Podman) -> None:
    result = podman.run("--rm", "--hostname", "pyoci-host", TAG, "hostname")
    assert (result.returncode, result.stdout) == (0, "pyoci-host\n"), result.stderr


def test_read_only(podman: Podman) -> None:
    result = podman.run("--rm", "--read-only", TAG, "touch", "/forbidden")
    assert result.returncode != 0
    assert "Read-only file system" in result.stderr
    # podman mounts a tmpfs on /tmp of a read-only container
    result = podman.run("--rm", "--read-only", TAG, "touch", "/tmp/allowed")
    assert result.returncode == 0, result.stderr


def test_cap_drop_add(podman: Podman) -> None:
    result = podman.run(
        "--rm", "--cap-drop", "ALL", "--cap-add", "CAP_NET_RAW", TAG,
        "grep", "^Cap", "/proc/self/status",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    caps = dict(line.split(":\t") for line in result.stdout.splitlines())
    net_raw = f"{1 << 13:016x}"
    assert caps["CapEff"] == net_raw, result.stdout
    assert caps["CapBnd"] == net_raw, result.stdout
    assert caps["CapPrm"] == net_raw, result.stdout


def test_memory_limit(podman: Podman) -> None:
    name = podman.run_d(STOPPABLE, "--memory", "64m")
    assert podman.inspect(name)["HostConfig"]["Memory"] == 64 << 20
    limit = podman.host_cgroup_file(name, "memory", "memory.limit_in_bytes", "memory.max")
    assert int(limit.read_text()) == 64 << 20, limit


def test_pids_limit(podman: Podman) -> None:
    name = podman.run_d(STOPPABLE, "--pids-limit", "20")
    assert podman.inspect(name)["HostConfig"]["PidsLimit"] == 20
    limit = podman.host_cgroup_file(name, "pids", "pids.max", "pids.max")
    assert limit.read_text().strip() == "20", limit
    # the limit holds: 30 background sleeps cannot all be forked
    result = podman("exec", name, "sh", "-c", "for i in $(seq 30); do sleep 5 & done; echo all")
    assert "can't fork" in result.stderr, result
    assert "all" not in result.stdout, result


def test_network_none(podman: Podman) -> None:
    result = podman.run("--rm", "--network", "none", TAG, "cat", "/proc/net/dev")
    assert result.returncode == 0, result.stderr
    interfaces = [line.split(":")[0].strip() for line in result.stdout.splitlines()[2:]]
    assert interfaces == ["lo"], result.stdout


def test_init(podman: Podman) -> None:
    result = podman.run("--rm", "--init", TAG, "sh", "-c", "cat /proc/1/comm; echo $$")
    assert result.returncode == 0, result.stderr
    comm, shell_pid = result.stdout.split()
    assert comm in ("catatonit", "podman-init"), result.stdout
    assert shell_pid != "1"


def test_missing_command(podman: Podman) -> None:
    result = podman.run("--rm", TAG, "nosuchcmd")
    assert "executable file not found" in result.stderr, result.stderr
    assert result.returncode == 127, result.stderr


def test_ps_inspect_state(podman: Podman) -> None:
    running = podman.run_d(STOPPABLE)
    state = podman.inspect(running)["State"]
    assert (state["Status"], state["Running"]) == ("running", True)
    assert Path(f"/proc/{state['Pid']}").exists()
    status = podman.ok("ps", "--filter", f"name={running}", "--format", "{{.Status}}")
    assert status.startswith("Up"), status

    exited = podman.run_d("exit 5")
    result = podman("wait", exited)
    assert (result.returncode, result.stdout.strip()) == (0, "5"), result.stderr
    state = podman.inspect(exited)["State"]
    assert (state["Status"], state["Running"], state["ExitCode"]) == ("exited", False, 5)
    assert podman.ok("ps", "-q", "--filter", f"name={exited}") == ""
    status = podman.ok("ps", "-a", "--filter", f"name={exited}", "--format", "{{.Status}}")
    assert status.startswith("Exited (5)"), status


def test_init_then_rm(podman: Podman) -> None:
    """`podman init` leaves the container `created` in the runtime; `podman rm` deletes it."""
    name = podman.name()
    podman.ok("create", "--name", name, TAG, "sleep", "100")
    podman.ok("init", name)
    assert podman.inspect(name)["State"]["Status"] == "initialized"
    podman.ok("rm", name)
    assert podman("container", "exists", name).returncode == 1


def test_top(podman: Podman) -> None:
    name = podman.run_d("exec sleep 300")
    deadline = time.monotonic() + 10
    while "sleep 300" not in (output := podman.ok("top", name)):
        assert time.monotonic() < deadline, output
        time.sleep(0.05)
    output = podman.ok("top", name, "pid", "args")
    assert output.splitlines()[1].split() == ["1", "sleep", "300"], output
