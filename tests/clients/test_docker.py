"""docker drives pyoci: a private dockerd (`--add-runtime pyoci=...`) runs every scenario twice,
with `--runtime runc` and with `--runtime pyoci`; pyoci must pass whatever runc passes.

The module starts its own dockerd with a private data root, exec root and socket under a fresh
/tmp directory; dockerd starts its own managed containerd there (socket, config and state in the
exec/data roots), and the shim runs the runtime as
`RUNTIME --root EXEC/runtime-runc/moby --log BUNDLE/log.json --log-format json CMD ...`.
No networking on the host is touched (`--bridge none`, no iptables, no forwarding, and every
container runs with `--network none`), and containers get a private cgroup parent so the
teardown can find and remove their cgroups. The image is built offline from the busybox rootfs
(tests/clients/images.py) and loaded with `docker load`.

The teardown removes the containers and the image, stops dockerd (SIGTERM, then SIGKILL), kills
whatever is left of its containerd, shims and containers, unmounts anything left under the tmp
directory, removes the cgroups and the directory, and then fails if it had to do any of that
forcibly after a clean daemon shutdown.

On this host (docker 20.10, containerd 1.6) the calls a container sees are
`create --bundle B --pid-file B/init.pid ID`, `start ID`, then after the exit `delete ID` and
`delete --force ID`; a failed create is followed by `delete --force ID` only. docker never
sends `delete` without --force for a `created` container: when `start` fails, containerd
itself refuses to delete the created task ("task must be stopped before deletion") and never
calls the runtime (the task is left behind, with runc as with pyoci).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from conftest import host_mount_points, processes_mentioning, pyoci_path
from images import ROOTFS, TAG, build_busybox_archive
from ptyrun import run_in_pty

pytestmark = pytest.mark.clients

DOCKERD = "/usr/sbin/dockerd"
# /usr/local/bin/docker (first in PATH) is a newer client: always use Debian's, matching dockerd.
DOCKER = "/usr/bin/docker"
RUNTIMES = ["runc", "pyoci"]
TIMEOUT = 60
CGROUP_ROOT = Path("/sys/fs/cgroup")
# Directories dockerd and the shims create outside their roots (hard-coded paths).
HOST_DIRS = [Path("/run/docker/plugins"), Path("/run/docker"), Path("/run/containerd/s")]


# --- the daemon ----------------------------------------------------------------------------------
class Docker:
    """A dockerd of our own, and `docker -H unix://SOCK ...` against it."""

    def __init__(self, top: Path) -> None:
        self.top = top
        self.sock = top / "docker.sock"
        self.data_root = top / "data"
        self.exec_root = top / "exec"
        self.pidfile = top / "docker.pid"
        self.log_path = top / "dockerd.log"
        self.cgroup_parent = f"pyoci-docker-{uuid.uuid4().hex[:8]}"
        self.proc: subprocess.Popen | None = None
        self.env = {
            key: value for key, value in os.environ.items() if not key.startswith("DOCKER_")
        }
        self.env["DOCKER_CONFIG"] = str(top / "client-config")

    # --- the client --------------------------------------------------------------------------
    def __call__(self, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
        argv = [DOCKER, "-H", f"unix://{self.sock}", *args]
        log_offset = self.log_size()
        result = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=self.env,
            check=False,
        )
        result.log_offset = log_offset  # where this command's dockerd log lines start
        return result

    def ok(self, *args: str, timeout: float = TIMEOUT) -> str:
        """Run a docker command that must succeed; returns its stdout."""
        result = self(*args, timeout=timeout)
        assert result.returncode == 0, self.explain(result)
        return result.stdout

    def inspect(self, name: str, template: str) -> str:
        return self.ok("inspect", "-f", template, name).strip()

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_tail(self, offset: int = 0, lines: int = 25) -> str:
        """The error/warning lines dockerd (and its containerd) logged from `offset` on."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(offset)
                text = f.read().decode(errors="replace")
        except OSError:
            return "(no dockerd log)"
        wanted = [
            line
            for line in text.splitlines()
            if "level=error" in line or "level=warn" in line or "level=fatal" in line
        ]
        return "\n".join(wanted[-lines:]) or "(no errors or warnings)"

    def explain(self, result: subprocess.CompletedProcess) -> str:
        return (
            f"{' '.join(result.args[3:])} -> exit {result.returncode}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}\n"
            f"dockerd log meanwhile (errors/warnings):\n"
            f"{self.log_tail(getattr(result, 'log_offset', 0))}"
        )

    # --- the daemon --------------------------------------------------------------------------
    def start(self, runtime_path: str) -> None:
        for path in (self.data_root, self.exec_root):
            path.mkdir()
        argv = [
            DOCKERD,
            "--data-root", str(self.data_root),
            "--exec-root", str(self.exec_root),
            "--pidfile", str(self.pidfile),
            "-H", f"unix://{self.sock}",
            "--add-runtime", f"pyoci={runtime_path}",
            "--default-runtime", "runc",
            "--storage-driver", os.environ.get("PYOCI_DOCKER_STORAGE_DRIVER", "overlay2"),
            "--cgroup-parent", f"/{self.cgroup_parent}",
            "--bridge", "none",
            "--iptables=false",
            "--ip6tables=false",
            "--ip-masq=false",
            "--ip-forward=false",
            "--userland-proxy=false",
        ]  # fmt: skip
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"dockerd exited with {self.proc.returncode}:\n"
                    f"{self.log_path.read_text(errors='replace')[-3000:]}"
                )
            try:
                if self("info", "--format", "{{.ServerVersion}}", timeout=10).returncode == 0:
                    return
            except subprocess.TimeoutExpired:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not answer in 60 s:\n{self.log_tail()}")
            time.sleep(0.2)

    def remove_everything(self) -> None:
        """Containers and images, while the daemon still answers."""
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            ids = self("ps", "-aq", "--no-trunc", timeout=30).stdout.split()
            if ids:
                self("rm", "-f", *ids, timeout=60)
            self("rmi", "-f", TAG, timeout=30)
        except subprocess.TimeoutExpired:
            pass

    def stop(self) -> bool:
        """SIGTERM, wait, then SIGKILL; True if dockerd exited by itself."""
        if self.proc is None:
            return True
        if self.proc.poll() is not None:
            return False
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
            return True
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=30)
            return False

    # --- what may be left --------------------------------------------------------------------
    def processes(self) -> dict[int, str]:
        """Live processes with our tmp dir on their command line (dockerd, its containerd, the
        shims, a runtime), and processes in our containers' cgroups."""
        found = processes_mentioning(str(self.top))
        for cgroup in self.cgroup_dirs():
            for procs in cgroup.rglob("cgroup.procs"):
                try:
                    pids = procs.read_text().split()
                except OSError:
                    continue
                for pid in pids:
                    found.setdefault(int(pid), f"process in {procs.parent}")
        return found

    def cgroup_dirs(self) -> list[Path]:
        """Our cgroup parent in every hierarchy (v1) or in the unified tree (v2)."""
        return [d for d in CGROUP_ROOT.glob(f"*/{self.cgroup_parent}") if d.is_dir()] + [
            d for d in [CGROUP_ROOT / self.cgroup_parent] if d.is_dir()
        ]

    def mounts(self) -> list[str]:
        top = str(self.top)
        return [m for m in host_mount_points() if m == top or m.startswith(top + "/")]

    def clean_host(self) -> list[str]:
        """Kill, unmount and remove what is left; returns what had to be cleaned."""
        problems = []
        deadline = time.monotonic() + 5  # shims exit shortly after their last container
        while self.processes() and time.monotonic() < deadline:
            time.sleep(0.2)
        for _ in range(3):
            procs = self.processes()
            if not procs:
                break
            problems += [f"process {pid}: {desc}" for pid, desc in procs.items()]
            for freezer in CGROUP_ROOT.glob(f"freezer/{self.cgroup_parent}/**/freezer.state"):
                try:
                    freezer.write_text("THAWED")
                except OSError:
                    pass
            for pid in procs:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.5)
        mounts = self.mounts()
        problems += [f"mount {m}" for m in mounts]
        for mount in reversed(mounts):
            if subprocess.run(["umount", mount], capture_output=True, check=False).returncode:
                subprocess.run(["umount", "-l", mount], capture_output=True, check=False)
        for cgroup in self.cgroup_dirs():
            children = sorted(
                (p for p in cgroup.rglob("*") if p.is_dir()),
                key=lambda p: len(p.parts),
                reverse=True,
            )
            for path in [*children, cgroup]:
                for _ in range(20):
                    try:
                        path.rmdir()
                        break
                    except FileNotFoundError:
                        break
                    except OSError:
                        time.sleep(0.1)
                else:
                    problems.append(f"cgroup {path} could not be removed")
        shutil.rmtree(self.top, ignore_errors=True)
        return problems


@pytest.fixture(scope="module")
def docker():
    if os.geteuid() != 0:
        pytest.skip("docker tests start a dockerd: run them as root")
    for binary in (DOCKERD, DOCKER):
        if not os.access(binary, os.X_OK):
            pytest.skip(f"{binary} missing: install docker.io (`make install`)")
    if not (ROOTFS / "bin" / "busybox").exists():
        pytest.skip(f"busybox rootfs missing at {ROOTFS}: run `make bundles`")
    runtime_path = pyoci_path()
    if not os.access(runtime_path, os.X_OK):
        pytest.skip(f"pyoci binary not found at {runtime_path}")
    host_dirs_before = {d for d in HOST_DIRS if d.exists()}
    top = Path(tempfile.mkdtemp(prefix="pyoci-docker-"))
    daemon = Docker(top)
    problems = []
    try:
        daemon.start(runtime_path)
        archive = build_busybox_archive(top / "busybox.tar")
        daemon.ok("load", "-i", str(archive))
        yield daemon
    finally:
        daemon.remove_everything()
        clean_exit = daemon.stop()
        problems = daemon.clean_host()
        for d in HOST_DIRS:
            if d not in host_dirs_before:
                try:
                    d.rmdir()
                except OSError:
                    pass
    assert clean_exit, f"dockerd did not stop on SIGTERM:\n{daemon.log_tail()}"
    assert not problems, "left behind after dockerd stopped:\n  " + "\n  ".join(problems)


@pytest.fixture(params=RUNTIMES)
def runtime(request) -> str:
    return request.param


class Containers:
    """`docker run --runtime R --network none --name UNIQUE ...`, removed after the test."""

    def __init__(self, docker: Docker, runtime: str) -> None:
        self.docker = docker
        self.runtime = runtime
        self.names: list[str] = []

    def new_name(self) -> str:
        name = f"pyoci-test-{self.runtime}-{uuid.uuid4().hex[:8]}"
        self.names.append(name)
        return name

    def run_argv(self, *args: str, name: str | None = None) -> list[str]:
        return [
            "run",
            "--runtime",
            self.runtime,
            "--network",
            "none",
            "--name",
            name or self.new_name(),
            *args,
        ]

    def run(self, *args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
        """`docker run ... args` (args: docker options, then the image and the command)."""
        return self.docker(*self.run_argv(*args), timeout=timeout)

    def start_detached(self, *args: str, cmd: tuple[str, ...] = ("sleep", "300")) -> str:
        """`docker run -d` a container; returns its name once it runs."""
        name = self.new_name()
        self.docker.ok(*self.run_argv("-d", *args, TAG, *cmd, name=name))
        shown = self.docker.inspect(name, "{{.State.Status}} {{.HostConfig.Runtime}}")
        assert shown == f"running {self.runtime}"
        return name

    def remove_all(self) -> None:
        if self.names:
            try:
                self.docker("rm", "-f", *self.names, timeout=60)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture
def containers(docker: Docker, runtime: str):
    """The test's containers; the teardown removes them, then fails if the runtime kept state
    for any of them (docker runs every runtime with `--root EXEC/runtime-runc/moby`)."""
    state_root = docker.exec_root / "runtime-runc" / "moby"

    def entries() -> set[str]:
        """Container state dirs (a dot-entry is a runtime's cache, e.g. .seccomp-cache)."""
        try:
            return {e for e in os.listdir(state_root) if not e.startswith(".")}
        except FileNotFoundError:
            return set()

    before = entries()
    made = Containers(docker, runtime)
    yield made
    made.remove_all()
    deadline = time.monotonic() + 10
    while (left := entries() - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"{runtime} state left in {state_root} after docker rm: {sorted(left)}"


# --- helpers -------------------------------------------------------------------------------------
def host_cgroup_file(pid: int, controller: str, v1_name: str, v2_name: str) -> Path:
    """The file of the cgroup `pid` is in, on the host (v1 hierarchy or v2 unified tree)."""
    lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    if (CGROUP_ROOT / "cgroup.controllers").exists():
        path = next(line.split(":", 2)[2] for line in lines if line.startswith("0::"))
        return CGROUP_ROOT / path.lstrip("/") / v2_name
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return CGROUP_ROOT / controller / path.lstrip("/") / v1_name
    raise AssertionError(f"pid {pid} has no {controller} cgroup:\n" + "\n".join(lines))


# --- scenarios -----------------------------------------------------------------------------------
def test_run_rm_output_and_exit_code(docker: Docker, containers: Containers, runtime: str):
    name = containers.new_name()
    result = docker(
        *containers.run_argv(
            "--rm", TAG, "sh", "-c", f"echo hello from {runtime}; echo to-stderr >&2; exit 3",
            name=name,
        )
    )  # fmt: skip
    assert result.returncode == 3, docker.explain(result)
    assert result.stdout == f"hello from {runtime}\n", docker.explain(result)
    assert "to-stderr" in result.stderr, docker.explain(result)
    assert docker.ok("ps", "-aq", "--filter", f"name=^{name}$").strip() == "", "--rm kept it"


def test_detached_exec_stop_rm(docker: Docker, containers: Containers):
    name = containers.start_detached(
        cmd=("sh", "-c", 'trap "echo got-term; exit 0" TERM; echo ready; sleep 300 & wait')
    )
    deadline = time.monotonic() + 10
    while "ready" not in docker.ok("logs", name) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "ready" in docker.ok("logs", name)

    result = docker("exec", name, "sh", "-c", "echo in-exec; echo exec-err >&2; exit 5")
    assert result.returncode == 5, docker.explain(result)
    assert result.stdout == "in-exec\n", docker.explain(result)
    assert "exec-err" in result.stderr, docker.explain(result)

    out = docker.ok("exec", "-u", "1000:1000", "-e", "X=from-exec", "-w", "/tmp", name,
                    "sh", "-c", 'echo "$(id -u):$(id -g) $X $(pwd)"')  # fmt: skip
    assert out == "1000:1000 from-exec /tmp\n"
    # The exec'd process sees the container's pid 1: the same pid namespace.
    assert docker.ok("exec", name, "cat", "/proc/1/cmdline").startswith("sh\0-c\0")

    started = time.monotonic()
    docker.ok("stop", "-t", "20", name)
    assert time.monotonic() - started < 15, "stop waited for the timeout: SIGTERM was lost"
    assert docker.inspect(name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 0"
    assert "got-term" in docker.ok("logs", name)

    docker.ok("rm", name)
    assert docker.ok("ps", "-aq", "--filter", f"name=^{name}$").strip() == ""


def test_tty(docker: Docker, containers: Containers):
    script = "tty; [ -t 1 ] && echo stdout-is-tty; exit 4"
    argv = [
        DOCKER,
        "-H",
        f"unix://{docker.sock}",
        *containers.run_argv("--rm", "-t", TAG, "sh", "-c", script),
    ]
    code, output = run_in_pty(argv, docker.env, TIMEOUT)
    output = output.replace("\r", "")  # two terminals (ours, the container's) each add a CR
    assert code == 4, output
    assert re.search(r"^/dev/pts/\d+$", output, re.M), output
    assert "stdout-is-tty" in output, output


def test_user(docker: Docker, containers: Containers):
    result = containers.run("--rm", "--user", "1000:1000", TAG, "sh", "-c", "id -u; id -g; id -G")
    assert result.returncode == 0, docker.explain(result)
    assert result.stdout.split() == ["1000", "1000", "1000"], docker.explain(result)


def test_env(docker: Docker, containers: Containers):
    result = containers.run(
        "--rm", "-e", "FOO=bar baz", "-e", "EMPTY=", TAG,
        "sh", "-c", 'echo "FOO=$FOO"; echo "EMPTY=${EMPTY-unset}"; echo "PATH=$PATH"',
    )  # fmt: skip
    assert result.returncode == 0, docker.explain(result)
    lines = result.stdout.splitlines()
    assert lines[:2] == ["FOO=bar baz", "EMPTY="], docker.explain(result)
    assert lines[2].startswith("PATH=/usr/local/sbin:"), docker.explain(result)


def test_workdir(docker: Docker, containers: Containers):
    result = containers.run("--rm", "-w", "/tmp", TAG, "pwd")
    assert result.returncode == 0, docker.explain(result)
    assert result.stdout == "/tmp\n", docker.explain(result)
    # A workdir missing from the image: docker creates it in the container's rootfs.
    result = containers.run("--rm", "-w", "/made/by/docker", TAG, "sh", "-c", "pwd; ls -ld .")
    assert result.returncode == 0, docker.explain(result)
    assert result.stdout.splitlines()[0] == "/made/by/docker", docker.explain(result)


def test_memory_and_update(docker: Docker, containers: Containers):
    mib = 1024 * 1024
    name = containers.start_detached("--memory", "64m")
    pid = int(docker.inspect(name, "{{.State.Pid}}"))
    limit = host_cgroup_file(pid, "memory", "memory.limit_in_bytes", "memory.max")
    assert docker.inspect(name, "{{.HostConfig.Memory}}") == str(64 * mib)
    assert int(limit.read_text()) == 64 * mib

    docker.ok("update", "--memory", "128m", "--memory-swap", "256m", name)
    assert docker.inspect(name, "{{.HostConfig.Memory}} {{.HostConfig.MemorySwap}}") == (
        f"{128 * mib} {256 * mib}"
    )
    assert int(limit.read_text()) == 128 * mib
    if limit.name == "memory.max":
        swap = limit.with_name("memory.swap.max")
        expected_swap = (256 - 128) * mib  # v2 counts swap alone
    else:
        swap = limit.with_name("memory.memsw.limit_in_bytes")
        expected_swap = 256 * mib  # v1 counts memory + swap
    if swap.exists():
        assert int(swap.read_text()) == expected_swap
    # The container still runs under the new limits.
    assert docker.ok("exec", name, "echo", "alive") == "alive\n"
    # The runtime's stdio during `create` is the container's: its warnings belong in --log.
    logs = docker("logs", name)
    assert (logs.stdout, logs.stderr) == ("", ""), "the container's output: " + docker.explain(logs)


def test_pause_unpause(docker: Docker, containers: Containers):
    name = containers.start_detached()
    pid = int(docker.inspect(name, "{{.State.Pid}}"))
    docker.ok("pause", name)
    assert docker.inspect(name, "{{.State.Status}} {{.State.Paused}}") == "paused true"
    freezer = host_cgroup_file(pid, "freezer", "freezer.state", "cgroup.freeze")
    assert freezer.read_text().strip() in ("FROZEN", "1")
    result = docker("exec", name, "true")
    assert result.returncode != 0 and "paused" in result.stderr, docker.explain(result)

    docker.ok("unpause", name)
    assert docker.inspect(name, "{{.State.Status}} {{.State.Paused}}") == "running false"
    assert freezer.read_text().strip() in ("THAWED", "0")
    assert docker.ok("exec", name, "echo", "thawed") == "thawed\n"


def test_top(docker: Docker, containers: Containers):
    name = containers.start_detached(cmd=("sleep", "301"))
    pid = docker.inspect(name, "{{.State.Pid}}")
    docker.ok("exec", "-d", name, "sleep", "302")
    deadline = time.monotonic() + 10
    while True:
        out = docker.ok("top", name)
        lines = out.splitlines()
        if any("sleep 302" in line for line in lines) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert lines[0].split()[:3] == ["UID", "PID", "PPID"], out
    rows = {line.split()[1]: line for line in lines[1:]}
    assert pid in rows and "sleep 301" in rows[pid], out
    assert any("sleep 302" in line for line in lines[1:]), out


def test_missing_command_exits_127(docker: Docker, containers: Containers):
    result = containers.run("--rm", TAG, "nosuchcommand")
    assert result.returncode == 127, docker.explain(result)
    assert "executable file not found" in result.stderr, docker.explain(result)


def test_not_executable_exits_126(docker: Docker, containers: Containers):
    result = containers.run("--rm", TAG, "/etc/passwd")
    assert result.returncode == 126, docker.explain(result)
    assert "permission denied" in result.stderr, docker.explain(result)


def test_stats_no_stream(docker: Docker, containers: Containers):
    name = containers.start_detached("--memory", "64m")
    out = docker.ok(
        "stats", "--no-stream", "--format", "{{.Name}}|{{.MemUsage}}|{{.PIDs}}", name
    ).strip()
    shown, usage, pids = out.split("|")
    assert shown == name, out
    match = re.fullmatch(r"([\d.]+)([KMGT]?i?B) / 64MiB", usage.strip())
    assert match, out
    assert float(match.group(1)) > 0, f"no memory usage: {out}"
    assert pids.strip() == "1", out


def test_runtime_warnings_stay_out_of_container_output(docker: Docker, containers: Containers):
    """The runtime's stdio during `create` is the container's stdio (the shim passes the
    container's pipes): a runtime warning must go to `--log`, not into the container's output.
    `--kernel-memory` makes both runtimes warn (runc: "Kernel memory settings are ignored")."""
    result = containers.run("--rm", "--kernel-memory", "64m", TAG, "echo", "out")
    assert result.returncode == 0, docker.explain(result)
    assert result.stdout == "out\n", docker.explain(result)
    # docker's own client-side warning about the flag is the only thing allowed on stderr.
    foreign = [line for line in result.stderr.splitlines() if not line.startswith("WARNING:")]
    assert not foreign, "the runtime wrote into the container's stderr: " + docker.explain(result)
