"""The corpus: config.json files written by the real tools at test time, never by hand.

- `runc spec` and `runc spec --rootless` (and crun's, when crun is installed);
- what podman 4.3, docker 20.10 and containerd 1.6 (`ctr`) hand their runtime for a few common
  command lines: each client runs `true` in the offline busybox image with capture_runtime.py
  as its runtime, which copies the bundle's config.json and execs runc unchanged.

The clients are driven exactly as tests/clients drives them (their classes are reused: private
roots, the vfs/overlay storage, no host networking, the image built by images.py). A client is
started the first time one of its cases is needed and stopped at the end of the session; a tool
that is missing skips its cases with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "clients"))  # images.py and the client classes

from conftest import host_mount_points  # noqa: E402
from images import ROOTFS, TAG, build_busybox_archive  # noqa: E402

RUNC = shutil.which("runc") or "/usr/sbin/runc"
CRUN = shutil.which("crun") or "/usr/bin/crun"
WRAPPER = HERE / "capture_runtime.py"
TIMEOUT = 60


@dataclass(frozen=True)
class Case:
    """One config of the corpus: `client` made it from the command line `options`."""

    client: str  # runc | crun | podman | docker | ctr
    name: str
    options: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return f"{self.client}-{self.name}"

    def __str__(self) -> str:
        return self.id


# The common command lines: the same options for podman and docker, then ctr's own.
_RUN_OPTIONS = {
    "plain": (),
    "user": ("--user", "1000:1000"),
    "cap-drop-all": ("--cap-drop", "ALL"),
    "cap-add-net-admin": ("--cap-add", "NET_ADMIN"),
    "read-only": ("--read-only",),
    "workdir": ("--workdir", "/tmp"),
    "env": ("-e", "FOO=bar"),
    "hostname": ("--hostname", "h"),
    "no-new-privileges": ("--security-opt", "no-new-privileges"),
    "privileged": ("--privileged",),
}
_CTR_OPTIONS = {
    "plain": (),
    "read-only": ("--read-only",),
    "env-cwd": ("--env", "FOO=bar", "--cwd", "/tmp"),
    "seccomp": ("--seccomp",),
    "cap-drop-chown": ("--cap-drop", "CAP_CHOWN"),
    "privileged": ("--privileged",),
}
CASES: list[Case] = [
    Case("runc", "spec", ("spec",)),
    Case("runc", "spec-rootless", ("spec", "--rootless")),
    Case("crun", "spec", ("spec",)),
    Case("crun", "spec-rootless", ("spec", "--rootless")),
    *(Case("podman", name, opts) for name, opts in _RUN_OPTIONS.items()),
    *(Case("docker", name, opts) for name, opts in _RUN_OPTIONS.items()),
    *(Case("ctr", name, opts) for name, opts in _CTR_OPTIONS.items()),
]
SLOW_CLIENTS = {"podman", "docker", "ctr"}


@dataclass
class Captured:
    """A config as the client wrote it, what its absolute paths were then, and how it came."""

    config: dict
    sources: dict[str, str]  # absolute path named by the config -> dir|file|missing|other
    command: list[str]  # the client command line that produced it
    client_exit: int  # the client's exit code (with runc behind the wrapper)
    private: list[str] = field(default_factory=list)  # the client's own directory


class CaptureDir:
    """A private copy of capture_runtime.py and the `captured/` directory it writes."""

    def __init__(self, top: Path) -> None:
        self.dir = top / "capture"
        self.dir.mkdir(parents=True)
        self.wrapper = self.dir / WRAPPER.name
        shutil.copy2(WRAPPER, self.wrapper)
        self.captured = self.dir / "captured"
        self.captured.mkdir()

    def configs(self) -> set[str]:
        return {
            p.name for p in self.captured.glob("*.json") if not p.name.endswith(".sources.json")
        }

    def log(self, name: str) -> str:
        path = self.captured / name
        return path.read_text() if path.exists() else ""

    def take(
        self, before: set[str], result: subprocess.CompletedProcess, argv: list[str], top: Path
    ) -> Captured:
        """The one config captured since `before` (the client ran `argv` with `result`)."""
        new = sorted(self.configs() - before)
        assert len(new) == 1, (
            f"{' '.join(argv)} -> exit {result.returncode}: expected one captured config, got"
            f" {new}\nstderr: {result.stderr}\nwrapper calls:\n{self.log('calls.log')}"
            f"{self.log('errors.log')}"
        )
        config = json.loads((self.captured / new[0]).read_text())
        sources_file = self.captured / new[0].replace(".json", ".sources.json")
        sources = json.loads(sources_file.read_text())
        return Captured(config, sources, argv, result.returncode, [str(top)])


def busybox_archive(top: Path) -> Path:
    """images.py's offline image of bundles/busybox/rootfs, after checking that no mount sits
    inside that shared directory (a runtime that mounted in the host's namespace leaves /proc
    there, and the image would then be built from the host's /proc). A read-only bind of the
    directory itself is fine."""
    shared = str(ROOTFS)
    leaked = [m for m in host_mount_points() if m.startswith(shared + "/")]
    assert not leaked, (
        f"{len(leaked)} mounts in the host's namespace on the shared rootfs, left by some "
        f"runtime run (not by these tests): {leaked[:8]}"
    )
    return build_busybox_archive(top / "busybox.tar")


# --- the clients ---------------------------------------------------------------------------------
class Client:
    """Base: `capture(case)`, `close()`; `skip` holds the reason when the tool is unavailable."""

    skip: str | None = None

    def capture(self, case: Case) -> Captured:
        raise NotImplementedError

    def close(self) -> list[str]:
        """Stop and clean up; returns what had to be removed forcibly."""
        return []


class SpecTool(Client):
    """`runc spec [--rootless]` / `crun spec [--rootless]` in an empty directory."""

    def __init__(self, binary: str, top: Path) -> None:
        self.binary = binary
        self.top = top
        if not os.access(binary, os.X_OK):
            self.skip = f"{binary} is not installed"

    def capture(self, case: Case) -> Captured:
        where = Path(tempfile.mkdtemp(prefix=f"{case.id}-", dir=self.top))
        argv = [self.binary, *case.options]
        result = subprocess.run(argv, cwd=where, stdin=subprocess.DEVNULL, capture_output=True,
                                text=True, timeout=TIMEOUT, check=False)  # fmt: skip
        assert result.returncode == 0, f"{' '.join(argv)}: {result.stderr}"
        config = json.loads((where / "config.json").read_text())
        return Captured(config, {}, argv, result.returncode)


class PodmanClient(Client):
    def __init__(self) -> None:
        for tool in ("podman", "conmon"):
            if shutil.which(tool) is None:
                self.skip = f"{tool} is not installed (make install)"
                return
        from test_podman import PodmanWorld

        top = Path(tempfile.mkdtemp(prefix="pyoci-compat-podman-"))  # podman: runroot <= 50
        self.world = PodmanWorld(top, RUNC)
        self.capture_dir = CaptureDir(top)
        try:
            loaded = self.world.run(RUNC, "load", "-i", str(busybox_archive(top)))
            assert loaded.returncode == 0, f"podman load failed:\n{loaded.stderr}"
        except BaseException:
            self.world.cleanup([RUNC])
            raise

    def capture(self, case: Case) -> Captured:
        args = ("run", "--rm", *case.options, TAG, "true")
        before = self.capture_dir.configs()
        result = self.world.run(str(self.capture_dir.wrapper), *args, timeout=TIMEOUT)
        return self.capture_dir.take(before, result, ["podman", *args], self.world.top)

    def close(self) -> list[str]:
        if self.skip is None:
            self.world.cleanup([RUNC, str(self.capture_dir.wrapper)])
        return []


class DockerClient(Client):
    """A private dockerd (test_docker.Docker) whose runtime `pyoci` is the capture wrapper."""

    def __init__(self) -> None:
        from test_docker import DOCKER, DOCKERD, HOST_DIRS, Docker

        for binary in (DOCKERD, DOCKER):
            if not os.access(binary, os.X_OK):
                self.skip = f"{binary} missing: install docker.io (`make install`)"
                return
        self.host_dirs = HOST_DIRS
        self.host_dirs_before = {d for d in HOST_DIRS if d.exists()}
        top = Path(tempfile.mkdtemp(prefix="pyoci-docker-"))
        self.daemon = Docker(top)
        self.capture_dir = CaptureDir(top)
        try:
            self.daemon.start(str(self.capture_dir.wrapper))
            self.daemon.ok("load", "-i", str(busybox_archive(top)))
        except BaseException:
            self.close()
            raise

    def capture(self, case: Case) -> Captured:
        name = f"pyoci-compat-{uuid.uuid4().hex[:8]}"
        args = ["run", "--rm", "--runtime", "pyoci", "--network", "none", "--name", name,
                *case.options, TAG, "true"]  # fmt: skip
        before = self.capture_dir.configs()
        result = self.daemon(*args)
        return self.capture_dir.take(before, result, ["docker", *args], self.daemon.top)

    def close(self) -> list[str]:
        if self.skip is not None:
            return []
        self.daemon.remove_everything()
        problems = [] if self.daemon.stop() else ["dockerd did not stop on SIGTERM"]
        problems += self.daemon.clean_host()
        for d in self.host_dirs:
            if d not in self.host_dirs_before:
                try:
                    d.rmdir()
                except OSError:
                    pass
        return [f"docker: {p}" for p in problems]


class CtrClient(Client):
    """A private containerd (test_containerd.Containerd); `ctr run --runc-binary WRAPPER`."""

    def __init__(self) -> None:
        for tool in ("containerd", "ctr", "containerd-shim-runc-v2"):
            if shutil.which(tool) is None:
                self.skip = f"{tool} is not installed (make install)"
                return
        from test_containerd import Containerd

        top = Path(tempfile.mkdtemp(prefix="pyoci-compat-ctr-"))  # short: socket paths
        self.daemon = Containerd(top)
        self.capture_dir = CaptureDir(top)
        try:
            self.daemon.start()
            self.daemon.ok("image", "import", str(busybox_archive(top)))
        except BaseException:
            self.daemon.stop()
            raise

    def capture(self, case: Case) -> Captured:
        cid = f"compat-{uuid.uuid4().hex[:8]}"
        args = ["run", "--rm", "--runc-binary", str(self.capture_dir.wrapper),
                "--runc-root", str(self.daemon.runc_root), "--fifo-dir", str(self.daemon.fifo_dir),
                *case.options, TAG, cid, "true"]  # fmt: skip
        before = self.capture_dir.configs()
        result = self.daemon.ctr(*args, timeout=TIMEOUT)
        return self.capture_dir.take(before, result, ["ctr", *args], self.daemon.top)

    def close(self) -> list[str]:
        if self.skip is None:
            self.daemon.stop()
        return []


class Corpus:
    """`get(case)`: the captured config, captured once per session (clients start lazily)."""

    def __init__(self, top: Path) -> None:
        self.top = top
        self.clients: dict[str, Client] = {}
        self.failed: dict[str, str] = {}
        self.captured: dict[Case, Captured] = {}

    def client(self, name: str) -> Client:
        if name in self.failed:
            pytest.fail(
                f"{name} could not be started earlier in this session:\n{self.failed[name]}"
            )
        if name not in self.clients:
            top = self.top / name
            top.mkdir()
            try:
                self.clients[name] = {
                    "runc": lambda: SpecTool(RUNC, top),
                    "crun": lambda: SpecTool(CRUN, top),
                    "podman": PodmanClient,
                    "docker": DockerClient,
                    "ctr": CtrClient,
                }[name]()
            except Exception as e:
                self.failed[name] = repr(e)
                raise
        return self.clients[name]

    def get(self, case: Case) -> Captured:
        client = self.client(case.client)
        if client.skip is not None:
            pytest.skip(client.skip)
        if case not in self.captured:
            self.captured[case] = client.capture(case)
        return self.captured[case]

    def close(self) -> list[str]:
        """Stop every client started; returns what had to be cleaned up forcibly."""
        problems = []
        for name, client in self.clients.items():
            try:
                problems += client.close()
            except Exception as e:  # one client's teardown must not stop the others'
                problems.append(f"{name}: teardown failed: {e!r}")
        return problems
