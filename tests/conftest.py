"""Shared fixtures: the pyoci binary, a private state root per test, a bundle factory, and a
runner that proves every test leaves nothing behind.

Integration tests start real containers, so they need root and the busybox rootfs built by
`make bundles` (tools/mkrootfs.sh); the `bundle` fixture skips the test otherwise. Unit tests
(tests/unit) use none of this.

Every container a test starts carries `PYOCI_TEST_MARKER=<uuid>` in its environment, and every
pyoci process the runner starts has the test's private `--root` on its command line, so the
teardown can find this test's leftovers among all the processes of the host (another test
session, or the lead's own containers, are never touched).
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BUSYBOX_BUNDLE = REPO / "bundles" / "busybox"
BUSYBOX_ROOTFS = BUSYBOX_BUNDLE / "rootfs"
MARKER_ENV = "PYOCI_TEST_MARKER"


def pyoci_path() -> str:
    """$PYOCI, or the `pyoci` script next to the interpreter running the tests (the venv's)."""
    return os.environ.get("PYOCI") or str(Path(sys.executable).parent / "pyoci")


def require_root_and_rootfs() -> None:
    if os.geteuid() != 0:
        pytest.skip("integration tests start real containers: run them as root")
    if not (BUSYBOX_ROOTFS / "bin" / "busybox").exists():
        pytest.skip(f"busybox rootfs missing at {BUSYBOX_ROOTFS}: run `make bundles`")


def live_processes() -> Iterator[tuple[int, bytes]]:
    """(pid, raw NUL-separated command line) of every live process but this one; zombies
    are skipped (they hold nothing and cannot be killed)."""
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
            if stat[stat.rindex(b")") + 2 :].startswith(b"Z"):
                continue
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        yield int(name), cmdline


def shown_cmdline(cmdline: bytes) -> str:
    return cmdline.replace(b"\0", b" ").decode(errors="replace")[:200]


def processes_mentioning(text: str) -> dict[int, str]:
    """pid → command line of every live process whose command line contains `text`."""
    needle = text.encode()
    return {pid: shown_cmdline(cmd) for pid, cmd in live_processes() if needle in cmd}


def host_mount_points() -> list[str]:
    from pyoci.linux import mountinfo

    return [m.point for m in mountinfo.read()]


def pytest_addoption(parser: pytest.Parser) -> None:
    """`--runtime`: the binary tests/conformance checks (runc, crun, pyoci or a path)."""
    parser.addoption(
        "--runtime",
        default=None,
        help="runtime for tests/conformance: runc, crun, pyoci (default) or a path",
    )


# --- bundles -------------------------------------------------------------------------------------
class Bundle:
    """A bundle directory in tmp_path: `config` is the dict written to `path/config.json`."""

    def __init__(self, path: Path, config: dict, rootfs: Path) -> None:
        self.path = path
        self.config = config
        self.rootfs = rootfs

    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    def write(self) -> Bundle:
        self.config_path.write_text(json.dumps(self.config, indent=2))
        return self


@pytest.fixture
def test_marker() -> str:
    """A value unique to this test, put in every container's environment."""
    return uuid.uuid4().hex


@pytest.fixture
def bundle(tmp_path: Path, test_marker: str) -> Callable[..., Bundle]:
    """Factory: `bundle(args=None, private=False, readonly=None, process=None, env=None,
    patch=None, **top_level_fields)`.

    The config is bundles/busybox/config.json. By default root.path points at the shared
    busybox rootfs (absolute path) and stays read-only: a test must not write to it, nor create
    mount points in it. `private=True` (implied by `readonly=False`) gives the bundle its own
    `cp -a` copy of the rootfs at `<bundle>/rootfs` (root.path is then the relative "rootfs",
    as containerd writes it). `args`: a string runs under `sh -c`, a list is process.args.
    `process` updates the process object, `env` appends to process.env, other keyword arguments
    replace top-level fields, and `patch(config)` may change anything last.
    """
    require_root_and_rootfs()
    counter = itertools.count()

    def make(
        args: str | list[str] | None = None,
        *,
        private: bool = False,
        readonly: bool | None = None,
        process: dict | None = None,
        env: list[str] | None = None,
        patch: Callable[[dict], object] | None = None,
        **fields: object,
    ) -> Bundle:
        path = tmp_path / f"bundle{next(counter)}"
        path.mkdir()
        config = json.loads((BUSYBOX_BUNDLE / "config.json").read_text())
        if private or readonly is False:
            rootfs = path / "rootfs"
            subprocess.run(["cp", "-a", str(BUSYBOX_ROOTFS), str(rootfs)], check=True)
            config["root"]["path"] = "rootfs"
        else:
            rootfs = BUSYBOX_ROOTFS
            config["root"]["path"] = str(BUSYBOX_ROOTFS)
        if readonly is not None:
            config["root"]["readonly"] = readonly
        if args is not None:
            config["process"]["args"] = ["sh", "-c", args] if isinstance(args, str) else args
        if process:
            config["process"].update(process)
        config["process"]["env"] = [
            *config["process"].get("env", []),
            f"{MARKER_ENV}={test_marker}",
            *(env or []),
        ]
        config.update(fields)
        if patch is not None:
            patch(config)
        return Bundle(path, config, rootfs).write()

    return make


@pytest.fixture
def new_id() -> Callable[..., str]:
    """Unique container ids: `new_id()` or `new_id("prefix")`."""

    def make(prefix: str = "t") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:12]}"

    return make


# --- the runner ----------------------------------------------------------------------------------
class Pyoci:
    """Runs `pyoci --root ROOT ...` with stdio in files (a container inherits the stdio of
    `create`, so pipes would keep `subprocess.run` waiting until the container exits)."""

    def __init__(self, binary: str, root: Path, workdir: Path, marker: str) -> None:
        self.binary = binary
        self.root = root
        self.workdir = workdir
        self.marker = marker
        self._calls = itertools.count()

    def argv(self, args: tuple[str, ...], global_args: tuple[str, ...] = ()) -> list[str]:
        return [self.binary, "--root", str(self.root), *global_args, *args]

    def _io(self) -> tuple[Path, Path]:
        n = next(self._calls)
        io_dir = self.workdir / "io"
        io_dir.mkdir(exist_ok=True)
        return io_dir / f"{n}.out", io_dir / f"{n}.err"

    def __call__(
        self,
        *args: str,
        global_args: tuple[str, ...] = (),
        timeout: float = 30,
        cwd: str | Path | None = None,
        pass_fds: tuple[int, ...] = (),
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess:
        """`pass_fds`: fds the caller holds open (as a shell or a leaky shim would);
        `env`: the runtime's environment (the tests' own when None)."""
        argv = self.argv(args, global_args)
        return self.run_argv(argv, timeout=timeout, cwd=cwd, pass_fds=pass_fds, env=env)

    def run_argv(
        self,
        argv: list[str],
        timeout: float = 30,
        cwd: str | Path | None = None,
        pass_fds: tuple[int, ...] = (),
        env: dict[str, str] | None = None,
        io: tuple[Path, Path] | None = None,
    ) -> subprocess.CompletedProcess:
        """Run `argv` with its output in files (`io`, or the runner's next pair): a container
        that inherits stdout/stderr cannot make the test wait for a pipe's EOF. Never a
        Python traceback in what pyoci says."""
        out_path, err_path = io or self._io()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.run(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                timeout=timeout,
                cwd=cwd,
                pass_fds=pass_fds,
                env=env,
                check=False,
            )
        result = subprocess.CompletedProcess(
            argv,
            proc.returncode,
            out_path.read_text(errors="replace"),
            err_path.read_text(errors="replace"),
        )
        for text in (result.stdout, result.stderr):
            assert "Traceback" not in text, f"Python traceback from {argv}:\n{text}"
        return result

    def popen(self, *args: str) -> tuple[subprocess.Popen, Path, Path]:
        """Start pyoci in the background; returns (process, stdout file, stderr file)."""
        return self.popen_argv(self.argv(args))

    def popen_argv(
        self,
        argv: list[str],
        env: dict[str, str] | None = None,
        io: tuple[Path, Path] | None = None,
    ) -> tuple[subprocess.Popen, Path, Path]:
        """`argv` in the background, its output in files (`io`, or the runner's next pair)."""
        out_path, err_path = io or self._io()
        with open(out_path, "wb") as out, open(err_path, "wb") as err:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
        return proc, out_path, err_path

    # --- conveniences ------------------------------------------------------------------------
    def run(self, bundle: Bundle, cid: str, *extra: str) -> subprocess.CompletedProcess:
        return self("run", "--bundle", str(bundle.path), *extra, cid)

    def create(self, bundle: Bundle, cid: str, *extra: str) -> subprocess.CompletedProcess:
        return self("create", "--bundle", str(bundle.path), *extra, cid)

    def create_ok(self, bundle: Bundle, cid: str, *extra: str) -> subprocess.CompletedProcess:
        result = self.create(bundle, cid, *extra)
        assert result.returncode == 0, result.stderr
        return result

    def state(self, cid: str) -> dict:
        result = self("state", cid)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    def wait_status(self, cid: str, status: str, timeout: float = 10) -> dict:
        """Poll `state` until the status is reached (the container may not exist yet, when a
        background `run` is still creating it)."""
        deadline = time.monotonic() + timeout
        while True:
            result = self("state", cid)
            st = json.loads(result.stdout) if result.returncode == 0 else {}
            if st.get("status") == status:
                return st
            if time.monotonic() > deadline:
                raise AssertionError(f"{cid} never became {status}: {st or result.stderr}")
            time.sleep(0.02)

    # --- leftovers -----------------------------------------------------------------------------
    def state_entries(self) -> list[str]:
        try:
            return sorted(e for e in os.listdir(self.root) if not e.startswith("."))  # caches
        except FileNotFoundError:
            return []

    def processes(self) -> dict[int, str]:
        """pid → description of every live process of this test: a pyoci process, or a
        container's `pyoci:[1:C1]`/`pyoci:[2:INIT]` (forks of `pyoci --root ROOT create`), with
        our `--root` on its command line; or a container process with our marker in its env."""
        root = str(self.root).encode()
        marker = f"{MARKER_ENV}={self.marker}".encode()
        found = {}
        for pid, cmdline in live_processes():
            try:
                with open(f"/proc/{pid}/environ", "rb") as f:
                    environ = f.read().split(b"\0")
                with open(f"/proc/{pid}/comm") as f:
                    comm = f.read().strip()
            except OSError:
                continue
            args = cmdline.split(b"\0")
            ours_by_root = any(a == root or a == b"--root=" + root for a in args)
            if ours_by_root or marker in environ:
                found[pid] = f"{comm}: {shown_cmdline(cmdline)}"
        return found

    def our_mounts(self) -> list[str]:
        top = str(self.workdir)
        return [m for m in host_mount_points() if m == top or m.startswith(top + "/")]

    def leftovers(self) -> list[str]:
        problems = [f"state dir entry {self.root}/{e}" for e in self.state_entries()]
        problems += [f"process {pid} ({desc})" for pid, desc in self.processes().items()]
        problems += [f"host mount {m}" for m in self.our_mounts()]
        return problems

    def assert_nothing_left(self) -> None:
        problems = self.leftovers()
        assert not problems, "left behind:\n  " + "\n  ".join(problems)

    def cleanup(self) -> list[str]:
        """Force-delete every container of this root; then report (and remove) what is left."""
        for entry in self.state_entries():
            try:
                self("delete", "--force", entry, timeout=20)
            except (subprocess.TimeoutExpired, AssertionError):
                pass
        problems = self.leftovers()
        for pid in self.processes():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for entry in self.state_entries():
            shutil.rmtree(self.root / entry, ignore_errors=True)
        for mount in reversed(self.our_mounts()):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        return problems


@pytest.fixture(scope="session")
def pyoci_bin() -> str:
    path = pyoci_path()
    if not os.access(path, os.X_OK):
        pytest.skip(f"pyoci binary not found at {path} (set PYOCI or install the venv)")
    return path


@pytest.fixture
def state_root(tmp_path: Path) -> Path:
    """A private `--root` for this test (pyoci creates it)."""
    return tmp_path / "state"


@pytest.fixture
def pyoci(pyoci_bin: str, state_root: Path, tmp_path: Path, test_marker: str):
    """Runner `pyoci(*args) -> CompletedProcess` for `pyoci --root <state_root> ...`.

    Teardown force-deletes whatever the test left in its root and fails the test if any state
    dir entry, process or host mount of the test remained."""
    runner = Pyoci(pyoci_bin, state_root, tmp_path, test_marker)
    yield runner
    problems = runner.cleanup()
    assert not problems, "left behind after delete --force:\n  " + "\n  ".join(problems)


# --- tests/reliability: the fault-injecting runner --------------------------------------------
# (here, not in a tests/reliability/conftest.py: a second module named `conftest` would shadow
# this one for the test modules that import from it by name)
@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == "call":
        item.rel_call_passed = report.passed
    return report


@pytest.fixture
def rel(request, pyoci, tmp_path, test_marker):
    """The fault-injecting runner (tests/reliability/relsupport.py). After a test that passed,
    the `pyoci` fixture's teardown still checks that nothing is left; after one that failed
    (or an expected failure: a known leak), what it left is removed first, so that it is
    reported once, by the test."""
    from relsupport import Rel  # tests/reliability is on sys.path for its own modules

    r = Rel(pyoci, tmp_path, test_marker)
    yield r
    if not getattr(request.node, "rel_call_passed", False):
        r.cleanup()
