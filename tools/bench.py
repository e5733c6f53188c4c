#!/usr/bin/env python3
"""Benchmark pyoci against runc and crun on the same OCI bundle, in one run.

Every runtime is driven through the runc-compatible CLI with its own temporary ``--root``
directory, on bundles generated from ``bundles/busybox/config.json`` (``root.path`` points at
the absolute path of the busybox rootfs).  Timings use ``hyperfine -N --export-json`` where a
case is a single command (a unique container id per iteration is passed through hyperfine's
``--parameter-list``), and a Python ``perf_counter`` loop for multi-step cases.

Cases (``--cases``, comma separated; default all):

* ``run``       -- ``run --bundle B ID`` of ``/bin/true``.
* ``run-isolated`` -- the same ``run``, with an untimed 100 ms sleep before each run
  (hyperfine ``--prepare 'sleep 0.1'``), so every run starts on a quiet host: on cgroup v1
  the first cgroup migration after a quiet spell waits for an RCU grace period (10-20 ms),
  which back-to-back runs hide.  This is what a user starting one container sees.
* ``lifecycle`` -- ``create`` + ``start`` + ``state`` + ``delete --force`` of ``/bin/true``
  (Python loop, each step timed; ``--force`` because ``/bin/true`` may still be exiting).
* ``state``     -- ``state ID`` of one running container (``sleep 1000``).
* ``kill``      -- ``kill ID KILL`` of a running container (started in hyperfine ``--prepare``).
* ``delete``    -- ``delete --force ID`` of a running container.
* ``batch``     -- 50 ``run``s of ``/bin/true`` back to back, timed as one loop.
* ``mounts``    -- ``run`` of ``/bin/true`` with 100 extra bind mounts (``/mnt/b0`` ..) of a
  temp dir, on a private copy of the rootfs (runtimes create missing mount points).
* ``env``       -- ``run`` of ``/bin/true`` with 10,000 extra environment variables.
* ``memory``    -- VmRSS of the container process waiting in ``created`` (for runc that is
  ``runc init``), and peak RSS of the ``run`` command (``/usr/bin/time -f %M``, else wait4).

A runtime that fails a case gets ``n/a (reason)`` in its cell; the benchmark goes on.  Each
runtime command has a ``--timeout``; after ``--max-timeouts`` timeouts a runtime's remaining
cases are skipped.  Every container created is removed with ``delete --force`` at the end,
also on Ctrl-C / SIGTERM (leftover processes of this run are killed by pid), and the temporary
directories are deleted.  Must run as root.

Host quirks handled here:

* crun 1.8 rejects ``ociVersion`` 1.2.x ("unknown version specified"), so the generated
  bundles use ``--oci-version`` (default 1.0.2) for every runtime.
* crun refuses a hybrid cgroup layout whose cgroup2 hierarchy has controllers
  ("cgroups in hybrid mode not supported"), whatever the config says.  Unless
  ``--no-crun-workaround`` is given, crun is then run inside a private mount namespace of
  this process in which ``/sys/fs/cgroup/unified`` is unmounted (crun sees a legacy v1
  layout); runc and pyoci run in the host mount namespace as-is.

Example::

    sudo python3 tools/bench.py --runtimes runc,crun,pyoci --runs 20 --json bench-results.json
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import datetime
import itertools
import json
import os
import platform
import re
import select
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_BUNDLE = REPO / "bundles" / "busybox"
DEFAULT_PATHS = {
    "runc": "/usr/sbin/runc",
    "crun": "/usr/bin/crun",
    "pyoci": str(REPO / ".venv" / "bin" / "pyoci"),
}
RUNTIME_ORDER = ("runc", "crun", "pyoci")
HYPERFINE = "/usr/bin/hyperfine"
GNU_TIME = "/usr/bin/time"
CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_UNIFIED = "/sys/fs/cgroup/unified"
#: Untimed sleep (seconds) before each run of the ``run-isolated`` case.
ISOLATED_PAUSE = 0.1

ALL_CASES = (
    "run",
    "run-isolated",
    "lifecycle",
    "state",
    "kill",
    "delete",
    "batch",
    "mounts",
    "env",
    "memory",
)

#: Table rows of each case: (row key, title, unit).
ROWS: dict[str, list[tuple[str, str, str]]] = {
    "run": [("run", "run /bin/true", "ms")],
    "run-isolated": [("run-isolated", "run /bin/true, isolated ({pause} ms apart)", "ms")],
    "lifecycle": [
        ("lifecycle", "create+start+state+delete --force", "ms"),
        ("lifecycle.create", "  create", "ms"),
        ("lifecycle.start", "  start", "ms"),
        ("lifecycle.state", "  state", "ms"),
        ("lifecycle.delete", "  delete --force", "ms"),
    ],
    "state": [("state", "state (running sleep)", "ms")],
    "kill": [("kill", "kill KILL (running sleep)", "ms")],
    "delete": [("delete", "delete --force (running sleep)", "ms")],
    "batch": [("batch", "{batch}x run /bin/true, whole loop", "ms")],
    "mounts": [("mounts", "run /bin/true +{mounts} bind mounts", "ms")],
    "env": [("env", "run /bin/true +{env} env vars", "ms")],
    "memory": [
        ("memory.created", "mem: RSS waiting in created", "MiB"),
        ("memory.run", "mem: peak RSS of run", "MiB"),
        ("memory.init", "mem: RSS of the --init PID 1 (pyoci only)", "MiB"),
    ],
}

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_SLAVE = 0x80000
MNT_DETACH = 2


# --------------------------------------------------------------------------- small helpers


@dataclass
class Proc:
    """Outcome of one command: exit status (None on timeout), wall time and output."""

    rc: int | None
    elapsed: float
    out: str
    err: str


@dataclass
class Cell:
    """One runtime's result for one table row: samples (ms or MiB) or a failure reason."""

    values: list[float] = field(default_factory=list)
    reason: str | None = None
    method: str = ""

    @property
    def ok(self) -> bool:
        """True when the cell holds at least one sample and no failure."""
        return self.reason is None and bool(self.values)

    def stats(self) -> dict[str, Any]:
        """Summary statistics plus raw samples, as stored in the JSON output."""
        if not self.ok:
            return {"ok": False, "reason": self.reason or "no samples", "method": self.method}
        vals = self.values
        return {
            "ok": True,
            "method": self.method,
            "n": len(vals),
            "mean": statistics.fmean(vals),
            "stddev": statistics.stdev(vals) if len(vals) > 1 else 0.0,
            "median": statistics.median(vals),
            "min": min(vals),
            "max": max(vals),
            "values": [round(v, 4) for v in vals],
        }


def failed(reason: str, method: str = "") -> Cell:
    """A cell that records why a runtime could not do a case."""
    return Cell(reason=reason, method=method)


def summarize_error(text: str, rc: int | None) -> str:
    """Reduce a runtime's stderr to one line (runc's ``msg="..."`` is unwrapped)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        if rc is None:
            return "timed out"
        return f"killed by signal {-rc}" if rc < 0 else f"exit status {rc}"
    line = lines[-1]
    match = re.search(r'msg="((?:[^"\\]|\\.)*)"', line)
    if match:
        line = match.group(1).replace('\\"', '"')
    return line


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the process group led by ``proc`` (children started with process_group=0)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def exited_within(pid: int, timeout: float) -> bool:
    """Block until child ``pid`` has exited (without reaping it) or ``timeout`` passes.

    ``Popen.wait(timeout=...)`` polls with growing sleeps (0.5, 1, 2, 4 ms, ...), which
    would quantize the measured times; a pidfd wakes us exactly when the child exits.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except OSError:  # no pidfd support: poll waitid without reaping
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                return True
            time.sleep(0.0002)
        return False
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        return bool(poller.poll(max(0, int(timeout * 1000))))
    finally:
        os.close(pidfd)


def reap(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """After an interruption: let the child finish for ``grace`` s, else kill its group."""
    try:
        if not exited_within(proc.pid, grace):
            kill_group(proc)
    except KeyboardInterrupt:
        kill_group(proc)
    proc.wait()


def wait_child(proc: subprocess.Popen[bytes], timeout: float) -> int | None:
    """Wait for ``proc``; on timeout SIGKILL its whole process group and return None."""
    if not exited_within(proc.pid, timeout):
        kill_group(proc)
        proc.wait()
        return None
    return proc.wait()


def run_cmd(argv: Sequence[str], timeout: float, want_out: bool = False) -> Proc:
    """Run ``argv`` with stdin/stdout on /dev/null (or a temp file) and time it.

    Output goes to temporary files rather than pipes: a detached container inherits the
    runtime's stdio and would otherwise keep a pipe open for its whole life.  The child
    leads its own process group, so a timeout kills everything it started (e.g. the
    runtime under ``/usr/bin/time``).
    """
    with contextlib.ExitStack() as stack:
        ferr = stack.enter_context(tempfile.TemporaryFile())
        if want_out:
            fout: Any = stack.enter_context(tempfile.TemporaryFile())
        else:
            fout = stack.enter_context(open(os.devnull, "wb"))  # noqa: SIM115
        start = time.perf_counter()
        try:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=fout, stderr=ferr, process_group=0
            )
        except OSError as exc:
            return Proc(127, 0.0, "", f"cannot execute {argv[0]}: {exc.strerror}")
        try:
            rc = wait_child(proc, timeout)
        except BaseException:
            reap(proc)
            raise
        elapsed = time.perf_counter() - start
        ferr.seek(0)
        err = ferr.read().decode(errors="replace")
        out = ""
        if want_out:
            fout.seek(0)
            out = fout.read().decode(errors="replace")
        if rc is None:
            err += f"\ntimed out after {timeout:g}s"
        return Proc(rc, elapsed, out, err)


def run_group(argv: Sequence[str], timeout: float) -> Proc:
    """Run a long-lived helper (hyperfine) in its own process group.

    On timeout or interruption the whole group (hyperfine and the runtime it is running)
    gets SIGTERM, then SIGKILL, so no runtime command is left racing the final cleanup.
    """
    with tempfile.TemporaryFile() as ferr:
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=ferr, process_group=0
        )
        rc: int | None = None
        try:
            rc = proc.wait(timeout=timeout)
        except BaseException as exc:
            for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, None)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
                try:
                    proc.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue
            if not isinstance(exc, subprocess.TimeoutExpired):
                raise
        elapsed = time.perf_counter() - start
        ferr.seek(0)
        err = ferr.read().decode(errors="replace")
        if rc is None:
            err += f"\ntimed out after {timeout:g}s"
        return Proc(rc, elapsed, "", err)


def read_vmrss_kib(pid: int) -> int | None:
    """VmRSS of ``pid`` in KiB from /proc/PID/status, or None if unreadable."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def cgroup_layout() -> tuple[str, str]:
    """Return the host cgroup mode (unified/hybrid/legacy) and cgroup2's controllers."""
    fstypes: dict[str, str] = {}
    with contextlib.suppress(OSError), open("/proc/self/mounts") as fh:
        for line in fh:
            parts = line.split()
            if len(parts) >= 3:
                fstypes[parts[1]] = parts[2]
    root_type = fstypes.get(CGROUP_ROOT, "")
    if root_type == "cgroup2":
        path, mode = CGROUP_ROOT, "unified"
    elif fstypes.get(CGROUP_UNIFIED) == "cgroup2":
        path, mode = CGROUP_UNIFIED, "hybrid"
    else:
        return ("legacy" if root_type else "none"), ""
    try:
        controllers = Path(path, "cgroup.controllers").read_text().strip()
    except OSError:
        controllers = ""
    return mode, controllers


# --------------------------------------------------------------------------- crun workaround


class CgroupV2Hider:
    """A private mount namespace (of this process) with the hybrid cgroup2 mount removed.

    The namespace is created once; :meth:`active` switches this process into it with
    ``setns`` and back again, so child processes started inside (crun, hyperfine running
    crun) see only the cgroup v1 hierarchies, and nothing changes on the host.
    """

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.mount.argtypes = [
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_char_p,
            ctypes.c_ulong,
            ctypes.c_void_p,
        ]
        libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
        libc.unshare.argtypes = [ctypes.c_int]
        libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
        self._libc = libc
        self._host_fd = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        self._ns_fd = -1
        cwd = os.getcwd()
        try:
            self._check(libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
            # rslave first: the umount below must not propagate back to the host.
            self._check(libc.mount(b"none", b"/", None, MS_REC | MS_SLAVE, None), "make-rslave /")
            self._check(libc.umount2(CGROUP_UNIFIED.encode(), MNT_DETACH), "umount cgroup2")
            self._ns_fd = os.open("/proc/self/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
        except BaseException:
            self._switch(self._host_fd)
            os.chdir(cwd)
            os.close(self._host_fd)
            raise
        self._switch(self._host_fd)
        os.chdir(cwd)

    def _check(self, ret: int, what: str) -> None:
        if ret != 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")

    def _switch(self, fd: int) -> None:
        self._check(self._libc.setns(fd, CLONE_NEWNS), "setns")

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """Run the body inside the private namespace (setns resets cwd: restore it)."""
        cwd = os.getcwd()
        self._switch(self._ns_fd)
        try:
            yield
        finally:
            self._switch(self._host_fd)
            os.chdir(cwd)

    def close(self) -> None:
        """Drop the namespace (it dies with the last fd / process in it)."""
        for fd in (self._ns_fd, self._host_fd):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._ns_fd = self._host_fd = -1


# --------------------------------------------------------------------------- runtimes


@dataclass
class Runtime:
    """One OCI runtime under test, with its private state root."""

    name: str
    path: str
    root: Path
    hider: CgroupV2Hider | None = None
    cgroup2_hidden: bool = False
    version: str = "n/a"
    problem: str | None = None
    ids: set[str] = field(default_factory=set)
    counter: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    timeouts: int = 0
    skipped: str | None = None

    def argv(self, *args: str) -> list[str]:
        """Command line for a runtime sub-command, with the global ``--root``."""
        return [self.path, "--root", str(self.root), *args]

    @contextlib.contextmanager
    def env(self) -> Iterator[None]:
        """Context in which this runtime's commands must be started."""
        if self.hider is None:
            yield
        else:
            with self.hider.active():
                yield

    def new_id(self, prefix: str) -> str:
        """A container id not used before in this run (and remember it for cleanup)."""
        cid = f"pb-{prefix}-{next(self.counter)}"
        self.ids.add(cid)
        return cid


@dataclass
class TimedSpec:
    """A single timed command, with untimed per-iteration prepare and cleanup commands.

    ``{id}`` in any argument is replaced by the iteration's container id: a fresh one per
    iteration when ``prefix`` is set, else ``fixed_id``.  ``timeout`` overrides the
    per-command timeout of the timed command (e.g. for a loop of many runs).  ``pause``
    seconds are slept (untimed) just before each timed command, after the prepare commands.
    """

    command: list[str]
    prepare: list[list[str]] = field(default_factory=list)
    cleanup: list[list[str]] = field(default_factory=list)
    prefix: str | None = None
    fixed_id: str = ""
    timeout: float | None = None
    pause: float = 0.0


def subst(argv: Sequence[str], cid: str) -> list[str]:
    """Replace ``{id}`` with ``cid`` in every argument."""
    return [arg.replace("{id}", cid) for arg in argv]


def pause_note(pause: float) -> str:
    """Method suffix describing a spec's untimed pause before each run ('' for none)."""
    return f", {pause * 1000:g} ms untimed sleep before each run" if pause else ""


def hf_command(cmds: list[list[str]], tolerant: bool) -> str:
    """One hyperfine ``-N`` command line for a list of commands (via ``sh -c`` if needed)."""
    if len(cmds) == 1 and not tolerant:
        return shlex.join(cmds[0])
    sep = "; " if tolerant else " && "
    redirect = " >/dev/null 2>&1" if tolerant else ""
    script = sep.join(shlex.join(c) + redirect for c in cmds)
    if tolerant:
        script += "; exit 0"
    return shlex.join(["sh", "-c", script])


# --------------------------------------------------------------------------- the benchmark


class Bench:
    """Holds settings, temp dirs, bundles and results of one benchmark run."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.runs: int = args.runs
        self.warmup: int = args.warmup
        self.timeout: float = args.timeout
        self.cases: list[str] = args.cases
        self.work = Path(tempfile.mkdtemp(prefix="pyoci-bench-", dir=args.tmpdir))
        self.runtimes: list[Runtime] = []
        self.bundles: dict[str, Path] = {}
        self.results: dict[str, dict[str, Cell]] = {}
        self.notes: list[str] = []
        self.hf_counter = itertools.count(1)
        self.interrupted = False
        self.hyperfine: str | None = None
        if not args.no_hyperfine and os.access(args.hyperfine, os.X_OK):
            self.hyperfine = args.hyperfine
        self.layout = cgroup_layout()
        self.spawn_overhead_ms: float | None = None
        self.started = datetime.datetime.now(datetime.UTC)
        self.started_mono = time.monotonic()

    # ----------------------------------------------------------------- setup

    def log(self, msg: str) -> None:
        """Progress output (stderr, so stdout carries only the table)."""
        print(msg, file=sys.stderr, flush=True)

    def setup(self) -> None:
        """Create the runtimes' roots, the crun workaround namespace, and probe versions."""
        wanted = [n for n in RUNTIME_ORDER if n in self.args.runtimes]
        mode, controllers = self.layout
        if self.hyperfine is None:
            self.notes.append("hyperfine not used: all cases timed with a Python loop")
        for name in wanted:
            path = self.args.paths[name]
            rt = Runtime(name=name, path=path, root=self.work / f"root-{name}")
            rt.root.mkdir(mode=0o700)
            if not (os.path.isfile(path) and os.access(path, os.X_OK)):
                rt.problem = f"not found: {path}"
            if name == "crun" and rt.problem is None and mode == "hybrid" and controllers:
                if self.args.no_crun_workaround:
                    self.notes.append(
                        f"crun: host cgroups are hybrid with cgroup2 controllers ({controllers});"
                        " crun refuses this, --no-crun-workaround given"
                    )
                else:
                    try:
                        rt.hider = CgroupV2Hider()
                        rt.cgroup2_hidden = True
                        self.notes.append(
                            "crun: host cgroups are hybrid and cgroup2 has controllers "
                            f"({controllers}), which crun refuses ('cgroups in hybrid mode not "
                            "supported') even with no cgroup config; crun was run in a private "
                            f"mount namespace with {CGROUP_UNIFIED} unmounted (v1-only view)"
                        )
                    except OSError as exc:
                        self.notes.append(f"crun: cgroup2 workaround failed: {exc}")
            if rt.problem is None:
                with rt.env():
                    proc = run_cmd([path, "--version"], timeout=20, want_out=True)
                text = (proc.out or proc.err).strip()
                if proc.rc == 0 and text:
                    rt.version = " ".join(text.splitlines()[:1]).strip()
                else:
                    rt.version = f"n/a ({summarize_error(proc.err, proc.rc)})"
            self.runtimes.append(rt)
            self.log(f"runtime {name}: {path} -- {rt.problem or rt.version}")
        self.spawn_overhead_ms = self.measure_spawn_overhead()

    def measure_spawn_overhead(self) -> float | None:
        """Median time of the Python loop's ``run_cmd`` on /bin/true (its own overhead)."""
        samples = []
        for _ in range(10):
            proc = run_cmd(["/bin/true"], timeout=10)
            if proc.rc == 0:
                samples.append(proc.elapsed * 1000)
        return statistics.median(samples) if samples else None

    def base_config(self) -> dict[str, Any]:
        """The source bundle's config with an absolute root.path and the chosen ociVersion."""
        bundle = Path(self.args.bundle).resolve()
        config = json.loads((bundle / "config.json").read_text())
        rootfs = Path(config.get("root", {}).get("path", "rootfs"))
        if not rootfs.is_absolute():
            rootfs = bundle / rootfs
        config.setdefault("root", {})["path"] = str(rootfs.resolve())
        if self.args.oci_version:
            config["ociVersion"] = self.args.oci_version
        return config

    def bundle(self, kind: str) -> Path:
        """Create (once) and return the bundle dir for ``kind``: true/sleep/mounts/env."""
        if kind in self.bundles:
            return self.bundles[kind]
        config = self.base_config()
        process = config.setdefault("process", {})
        process["args"] = ["sleep", "1000"] if kind == "sleep" else ["/bin/true"]
        if kind == "mounts":
            # runtimes mkdir missing mount points inside the rootfs: give them a private copy
            # so the repository's rootfs is not modified.
            rootfs = self.work / "rootfs-mounts"
            shutil.copytree(config["root"]["path"], rootfs, symlinks=True)
            (rootfs / "mnt").mkdir(exist_ok=True)
            config["root"]["path"] = str(rootfs)
            source = self.work / "bind-source"
            source.mkdir(exist_ok=True)
            (source / "hello").write_text("hello\n")
            config.setdefault("mounts", []).extend(
                {
                    "destination": f"/mnt/b{i}",
                    "type": "bind",
                    "source": str(source),
                    "options": ["rbind", "ro"],
                }
                for i in range(self.args.mounts)
            )
        elif kind == "env":
            env = process.setdefault("env", [])
            env.extend(f"KEY_{i}=value_{i}" for i in range(self.args.env))
        path = self.work / f"bundle-{kind}"
        path.mkdir()
        (path / "config.json").write_text(json.dumps(config, indent=1))
        self.bundles[kind] = path
        return path

    # ----------------------------------------------------------------- timing engines

    def call(
        self, rt: Runtime, argv: Sequence[str], timeout: float | None = None, want_out: bool = False
    ) -> Proc:
        """Run one runtime command in the current context, counting the runtime's timeouts."""
        proc = run_cmd(argv, self.timeout if timeout is None else timeout, want_out)
        if proc.rc is None:
            rt.timeouts += 1
        return proc

    def python_loop(
        self, rt: Runtime, spec: TimedSpec, runs: int, warmup: int, method: str = ""
    ) -> Cell:
        """Time ``spec`` with perf_counter around each command (includes spawn overhead)."""
        cell = Cell(
            method=method or f"python loop, {runs} runs + {warmup} warmup{pause_note(spec.pause)}"
        )
        for i in range(warmup + runs):
            cid = rt.new_id(spec.prefix) if spec.prefix else spec.fixed_id
            for cmd in spec.prepare:
                proc = self.call(rt, subst(cmd, cid))
                if proc.rc != 0:
                    self.cleanup_ids(rt, spec, cid)
                    cell.reason = f"{cmd_name(cmd)}: {summarize_error(proc.err, proc.rc)}"
                    return cell
            if spec.pause:
                time.sleep(spec.pause)
            proc = self.call(rt, subst(spec.command, cid), spec.timeout)
            self.cleanup_ids(rt, spec, cid)
            if proc.rc != 0:
                cell.reason = summarize_error(proc.err, proc.rc)
                return cell
            if i >= warmup:
                cell.values.append(proc.elapsed * 1000)
        return cell

    def cleanup_ids(self, rt: Runtime, spec: TimedSpec, cid: str) -> None:
        """Run a spec's per-iteration cleanup commands, ignoring failures."""
        for cmd in spec.cleanup:
            self.call(rt, subst(cmd, cid))

    def hyperfine_run(self, rt: Runtime, spec: TimedSpec, runs: int, warmup: int) -> Cell:
        """Time ``spec`` with ``hyperfine -N``; unique ids go through ``--parameter-list``."""
        assert self.hyperfine is not None
        tag = next(self.hf_counter)
        json_out = self.work / f"hyperfine-{tag}.json"
        out_file = self.work / f"hyperfine-{tag}.out"
        argv = [self.hyperfine, "-N", "--style", "none", "--export-json", str(json_out)]
        argv += ["--output", str(out_file)]
        if spec.prefix:
            ids = [rt.new_id(spec.prefix) for _ in range(warmup + runs)]
            argv += ["--runs", "1", "--parameter-list", "id", ",".join(ids)]
            method = f"hyperfine -N, {runs} runs + {warmup} warmup, unique id per run"
            command = spec.command
        else:
            argv += ["--runs", str(runs), "--warmup", str(warmup)]
            method = f"hyperfine -N, {runs} runs + {warmup} warmup"
            command = subst(spec.command, spec.fixed_id)
        method += pause_note(spec.pause)
        prepare = ([["sleep", f"{spec.pause:g}"]] if spec.pause else []) + spec.prepare
        if prepare:
            argv += ["--prepare", hf_command(prepare, tolerant=False)]
        if spec.cleanup:
            argv += ["--cleanup", hf_command(spec.cleanup, tolerant=True)]
        argv.append(shlex.join(command))
        per_run = (spec.timeout or self.timeout) + self.timeout * (len(prepare) + len(spec.cleanup))
        proc = run_group(argv, timeout=(runs + warmup) * per_run + 30)
        cell = Cell(method=method)
        if proc.rc is None:
            rt.timeouts += 1
        if proc.rc != 0:
            reason = summarize_error(proc.err, proc.rc)
            with contextlib.suppress(OSError):
                tail = out_file.read_text(errors="replace").strip()
                if tail:
                    reason = f"{summarize_error(tail, proc.rc)} [{reason}]"
            cell.reason = reason
            return cell
        try:
            data = json.loads(json_out.read_text())
            times = [t for result in data["results"] for t in result["times"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            cell.reason = f"cannot read hyperfine JSON: {exc}"
            return cell
        if spec.prefix:
            times = times[warmup:]
        cell.values = [t * 1000 for t in times]
        return cell

    def timed(
        self, rt: Runtime, spec: TimedSpec, runs: int | None = None, warmup: int | None = None
    ) -> Cell:
        """Probe ``spec`` once (for a clear failure reason), then time it."""
        runs = self.runs if runs is None else runs
        warmup = self.warmup if warmup is None else warmup
        probe = self.python_loop(rt, spec, runs=1, warmup=0, method="probe run")
        if not probe.ok:
            return probe
        if self.hyperfine:
            return self.hyperfine_run(rt, spec, runs, warmup)
        return self.python_loop(rt, spec, runs, warmup)

    # ----------------------------------------------------------------- cases

    def case_run(
        self, rt: Runtime, kind: str = "true", key: str = "run", pause: float = 0.0
    ) -> dict[str, Cell]:
        """``run --bundle B ID`` of /bin/true (also used by run-isolated, mounts and env)."""
        bundle = str(self.bundle(kind))
        argv = rt.argv("run", "--bundle", bundle, "{id}")
        spec = TimedSpec(command=argv, prefix=key, pause=pause)
        return {key: self.timed(rt, spec)}

    def case_run_isolated(self, rt: Runtime) -> dict[str, Cell]:
        """``run`` of /bin/true with an untimed pause before each run (quiet host each time)."""
        return self.case_run(rt, key="run-isolated", pause=ISOLATED_PAUSE)

    def case_mounts(self, rt: Runtime) -> dict[str, Cell]:
        """``run`` of /bin/true with many bind mounts."""
        return self.case_run(rt, kind="mounts", key="mounts")

    def case_env(self, rt: Runtime) -> dict[str, Cell]:
        """``run`` of /bin/true with many environment variables."""
        return self.case_run(rt, kind="env", key="env")

    def case_lifecycle(self, rt: Runtime) -> dict[str, Cell]:
        """create + start + state + delete --force, each step timed by a Python loop."""
        bundle = str(self.bundle("true"))
        steps: list[tuple[str, Callable[[str], list[str]]]] = [
            ("create", lambda cid: rt.argv("create", "--bundle", bundle, cid)),
            ("start", lambda cid: rt.argv("start", cid)),
            ("state", lambda cid: rt.argv("state", cid)),
            ("delete", lambda cid: rt.argv("delete", "--force", cid)),
        ]
        warmup = max(1, self.warmup)  # the first iteration is also the probe
        method = f"python loop, {self.runs} runs + {warmup} warmup"
        cells = {f"lifecycle.{name}": Cell(method=method) for name, _ in steps}
        total = Cell(method=method)
        for i in range(warmup + self.runs):
            cid = rt.new_id("lifecycle")
            elapsed: dict[str, float] = {}
            for name, make in steps:
                proc = self.call(rt, make(cid), want_out=(name == "state"))
                problem = None if proc.rc == 0 else summarize_error(proc.err, proc.rc)
                if problem is None and name == "state":
                    problem = check_state(proc.out, cid)
                if problem is not None:
                    self.call(rt, rt.argv("delete", "--force", cid))
                    reason = f"{name}: {problem}"
                    return {key: failed(reason, method) for key in ["lifecycle", *cells]}
                elapsed[name] = proc.elapsed * 1000
            if i >= warmup:
                for name, value in elapsed.items():
                    cells[f"lifecycle.{name}"].values.append(value)
                total.values.append(sum(elapsed.values()))
        return {"lifecycle": total, **cells}

    def start_sleeper(self, rt: Runtime, prefix: str) -> tuple[str | None, str | None]:
        """Start a detached ``sleep 1000`` container; return (id, None) or (None, reason)."""
        cid = rt.new_id(prefix)
        proc = self.call(rt, rt.argv("run", "--detach", "--bundle", str(self.bundle("sleep")), cid))
        if proc.rc != 0:
            self.call(rt, rt.argv("delete", "--force", cid))
            return None, f"run --detach: {summarize_error(proc.err, proc.rc)}"
        state = self.call(rt, rt.argv("state", cid), want_out=True)
        problem = state_problem(state, cid)
        if problem is None:
            status = json.loads(state.out).get("status")
            if status != "running":
                problem = f"status {status!r}, expected 'running'"
        if problem is not None:
            self.call(rt, rt.argv("delete", "--force", cid))
            return None, f"state: {problem}"
        return cid, None

    def case_state(self, rt: Runtime) -> dict[str, Cell]:
        """``state ID`` of one running container, repeated."""
        cid, reason = self.start_sleeper(rt, "state")
        if cid is None:
            return {"state": failed(reason or "?")}
        try:
            spec = TimedSpec(command=rt.argv("state", "{id}"), fixed_id=cid)
            return {"state": self.timed(rt, spec)}
        finally:
            self.call(rt, rt.argv("delete", "--force", cid))

    def case_kill(self, rt: Runtime) -> dict[str, Cell]:
        """``kill ID KILL`` of a container started (untimed) just before each run."""
        bundle = str(self.bundle("sleep"))
        spec = TimedSpec(
            command=rt.argv("kill", "{id}", "KILL"),
            prepare=[rt.argv("run", "--detach", "--bundle", bundle, "{id}")],
            cleanup=[rt.argv("delete", "--force", "{id}")],
            prefix="kill",
        )
        return {"kill": self.timed(rt, spec)}

    def case_delete(self, rt: Runtime) -> dict[str, Cell]:
        """``delete --force ID`` of a running container started just before each run."""
        bundle = str(self.bundle("sleep"))
        spec = TimedSpec(
            command=rt.argv("delete", "--force", "{id}"),
            prepare=[rt.argv("run", "--detach", "--bundle", bundle, "{id}")],
            prefix="delete",
        )
        return {"delete": self.timed(rt, spec)}

    def case_batch(self, rt: Runtime) -> dict[str, Cell]:
        """N ``run``s back to back in one ``sh`` loop, timed as a whole."""
        count = self.args.batch
        bundle = str(self.bundle("true"))
        single = TimedSpec(command=rt.argv("run", "--bundle", bundle, "{id}"), prefix="batch")
        probe = self.python_loop(rt, single, runs=1, warmup=0, method="probe run")
        if not probe.ok:
            return {"batch": probe}
        # generous but bounded: a runtime 10x slower than its first run is cut off
        loop_timeout = self.timeout + count * max(1.0, 10 * probe.values[0] / 1000)
        run = shlex.join(rt.argv("run", "--bundle", bundle))
        script = f'for i in $(seq {count}); do {run} "{{id}}-$i" || exit 1; done'
        spec = TimedSpec(command=["sh", "-c", script], prefix="batch", timeout=loop_timeout)
        # timed() runs the whole loop once more as its probe, which doubles as warmup
        return {"batch": self.timed(rt, spec, runs=self.args.batch_reps, warmup=0)}

    def case_memory(self, rt: Runtime) -> dict[str, Cell]:
        """RSS of the container process in ``created`` and peak RSS of ``run``."""
        samples = self.args.mem_samples
        bundle = str(self.bundle("true"))
        created = Cell(method=f"VmRSS of state.pid after create, {samples} samples")
        for _ in range(samples):
            cid = rt.new_id("memcreate")
            try:
                proc = self.call(rt, rt.argv("create", "--bundle", bundle, cid))
                if proc.rc != 0:
                    created = failed(f"create: {summarize_error(proc.err, proc.rc)}")
                    break
                state = self.call(rt, rt.argv("state", cid), want_out=True)
                problem = state_problem(state, cid)
                if problem is not None:
                    created = failed(f"state: {problem}")
                    break
                pid = int(json.loads(state.out).get("pid") or 0)
                rss = read_vmrss_kib(pid) if pid > 0 else None
                if rss is None:
                    created = failed(f"no VmRSS for state pid {pid}")
                    break
                created.values.append(rss / 1024)
            finally:
                self.call(rt, rt.argv("delete", "--force", cid))
        use_time = os.access(GNU_TIME, os.X_OK)
        # ru_maxrss also counts the pre-exec image of the forked child (GNU time, or this
        # Python process): report that floor, measured on /bin/true, with the numbers.
        floor, _ = self.peak_rss(rt, ["/bin/true"], use_time)
        floor_text = f"{floor / 1024:.1f} MiB" if floor is not None else "unknown"
        tool = f"{GNU_TIME} -f %M" if use_time else "wait4 ru_maxrss"
        method = f"{tool} (floor, /bin/true measured the same way: {floor_text})"
        peak = Cell(method=f"{method}, {samples} samples")
        for _ in range(samples):
            cid = rt.new_id("memrun")
            kib, reason = self.peak_rss(rt, rt.argv("run", "--bundle", bundle, cid), use_time)
            if kib is None:
                peak = failed(reason or "?", method)
                break
            peak.values.append(kib / 1024)
        return {"memory.created": created, "memory.run": peak, "memory.init": self.init_rss(rt)}

    def init_rss(self, rt: Runtime) -> Cell:
        """VmRSS of pyoci's minimal init (``run --detach --init``) while its child sleeps;
        runc and crun have no built-in init (podman and docker bring catatonit or tini)."""
        if rt.name != "pyoci":
            return failed("no built-in init")
        cell = Cell(method=f"VmRSS of state.pid, {self.args.mem_samples} samples")
        for _ in range(self.args.mem_samples):
            cid = rt.new_id("meminit")
            try:
                argv = rt.argv(
                    "run", "--detach", "--init", "--bundle", str(self.bundle("sleep")), cid
                )
                proc = self.call(rt, argv)
                if proc.rc != 0:
                    return failed(f"run --init: {summarize_error(proc.err, proc.rc)}")
                state = self.call(rt, rt.argv("state", cid), want_out=True)
                pid = int(json.loads(state.out).get("pid") or 0) if state.rc == 0 else 0
                rss = read_vmrss_kib(pid) if pid > 0 else None
                if rss is None:
                    return failed(f"no VmRSS for init pid {pid}")
                cell.values.append(rss / 1024)
            finally:
                self.call(rt, rt.argv("delete", "--force", cid))
        return cell

    def peak_rss(
        self, rt: Runtime, argv: list[str], use_time: bool
    ) -> tuple[int | None, str | None]:
        """Peak RSS (KiB) of ``argv`` and the descendants it reaped."""
        if use_time:
            with tempfile.NamedTemporaryFile(dir=self.work, suffix=".time") as tf:
                proc = self.call(rt, [GNU_TIME, "-f", "%M", "-o", tf.name, *argv])
                if proc.rc != 0:
                    return None, summarize_error(proc.err, proc.rc)
                text = Path(tf.name).read_text().strip().splitlines()
                try:
                    return int(text[-1]), None
                except (IndexError, ValueError):
                    return None, f"cannot parse {GNU_TIME} output {text!r}"
        with tempfile.TemporaryFile() as ferr:
            child = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=ferr,
                process_group=0,
            )
            try:
                timed_out = not exited_within(child.pid, self.timeout)
                if timed_out:
                    kill_group(child)
                _, status, usage = os.wait4(child.pid, 0)
            except BaseException:
                reap(child)
                raise
            child.returncode = os.waitstatus_to_exitcode(status)
            ferr.seek(0)
            err = ferr.read().decode(errors="replace")
        if timed_out:
            rt.timeouts += 1
            return None, f"timed out after {self.timeout:g}s"
        if child.returncode != 0:
            return None, summarize_error(err, child.returncode)
        return usage.ru_maxrss, None

    # ----------------------------------------------------------------- driver

    def run_cases(self) -> None:
        """Run every selected case for every runtime (runtimes interleaved per case)."""
        for case in self.cases:
            func: Callable[[Runtime], dict[str, Cell]] = getattr(
                self, f"case_{case.replace('-', '_')}"
            )
            for key, _, _ in ROWS[case]:
                self.results.setdefault(key, {})
            for rt in self.runtimes:
                if rt.timeouts >= self.args.max_timeouts:
                    rt.skipped = f"skipped: {rt.name} timed out {rt.timeouts} times"
                if rt.problem is not None or rt.skipped is not None:
                    reason = rt.problem or rt.skipped or "?"
                    cells = {key: failed(reason) for key, _, _ in ROWS[case]}
                else:
                    started = time.monotonic()
                    with rt.env():
                        try:
                            cells = func(rt)
                        except Exception as exc:  # a bench bug must not lose other results
                            cells = {key: failed(f"bench error: {exc}") for key, _, _ in ROWS[case]}
                    self.log(
                        f"[{case}] {rt.name}: "
                        + "; ".join(
                            f"{key}={fmt_cell(cell, unit_of(key))}" for key, cell in cells.items()
                        )
                        + f" ({time.monotonic() - started:.1f}s)"
                    )
                for key, cell in cells.items():
                    if cell.reason:
                        cell.reason = cell.reason.replace(str(self.work), "$TMP")
                    self.results[key][rt.name] = cell

    def cleanup(self) -> None:
        """Force-delete every container this run created, then remove the temp dirs."""
        saved = {}
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            saved[sig] = signal.signal(sig, signal.SIG_IGN)
        try:
            for rt in self.runtimes:
                if rt.problem is not None or not rt.root.exists():
                    continue
                with rt.env():
                    self.cleanup_runtime(rt)
            self.kill_strays()
            for rt in self.runtimes:
                if rt.hider is not None:
                    rt.hider.close()
                    rt.hider = None
            shutil.rmtree(self.work, ignore_errors=True)
            if self.work.exists():
                self.log(f"warning: could not remove all of {self.work}")
        finally:
            for sig, handler in saved.items():
                signal.signal(sig, handler)

    def leftover_ids(self, rt: Runtime) -> list[str]:
        """Ids that still have state under the runtime's root."""
        names: set[str] = set()
        for _, dirs, files in os.walk(rt.root):
            names.update(dirs)
            names.update(files)
        top = set(os.listdir(rt.root)) if rt.root.exists() else set()
        return sorted(top | (rt.ids & names))

    def cleanup_runtime(self, rt: Runtime) -> None:
        """``delete --force`` leftovers; SIGKILL their processes if the runtime cannot.

        A runtime that times out twice here is not called again: its stray processes are
        killed by :meth:`kill_strays` and its state dir is removed with the temp dir.
        """
        timeout = min(self.timeout, 15.0)
        hung = 0

        def delete(cid: str) -> None:
            nonlocal hung
            if hung < 2 and run_cmd(rt.argv("delete", "--force", cid), timeout).rc is None:
                hung += 1

        leftovers = self.leftover_ids(rt)
        for cid in leftovers:
            delete(cid)
        stubborn = [cid for cid in self.leftover_ids(rt) if cid in leftovers]
        if stubborn:
            self.kill_strays()
        for cid in stubborn:
            if hung < 2:
                state = run_cmd(rt.argv("state", cid), timeout, want_out=True)
                if state.rc is None:
                    hung += 1
                self.kill_container_pid(state.out)
            delete(cid)
        still = [cid for cid in self.leftover_ids(rt) if cid in leftovers and cid in rt.ids]
        if leftovers:
            self.log(f"cleanup {rt.name}: deleted {len(leftovers) - len(still)} leftover(s)")
        if still:
            self.log(f"warning: {rt.name} could not delete: {', '.join(still)}")

    def ours(self, pid: int) -> bool:
        """Whether ``pid`` is a process this run started: it started after the benchmark
        did, and its command line names our temp dir or its root is one of our rootfs."""
        try:
            with open(f"/proc/{pid}/stat") as fh:
                start_ticks = int(fh.read().rsplit(")", 1)[1].split()[19])
            with open("/proc/uptime") as fh:
                uptime = float(fh.read().split()[0])
            started_ago = uptime - start_ticks / os.sysconf("SC_CLK_TCK")
            if started_ago > time.monotonic() - self.started_mono + 1:
                return False
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if str(self.work).encode() in fh.read():
                    return True
            root = os.readlink(f"/proc/{pid}/root")
        except (OSError, ValueError, IndexError):
            return False
        rootfs = {str(Path(self.args.bundle, "rootfs").resolve()), str(self.work / "rootfs-mounts")}
        return root in rootfs

    def kill_container_pid(self, state_json: str) -> None:
        """SIGKILL the pid of a ``state`` output if it is a live process of this run."""
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            state = json.loads(state_json)
            pid = int(state.get("pid") or 0)
            if pid > 1 and state.get("status") != "stopped" and self.ours(pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                time.sleep(0.2)

    def kill_strays(self) -> None:
        """SIGKILL leftover processes whose command line names this run's temp dir."""
        needle = str(self.work).encode()
        killed = 0
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as fh:
                    if needle not in fh.read():
                        continue
                if self.ours(int(entry)):
                    os.kill(int(entry), signal.SIGKILL)
                    killed += 1
            except OSError:
                continue
        if killed:
            self.log(f"cleanup: killed {killed} stray process(es) of this run")
            time.sleep(0.2)

    # ----------------------------------------------------------------- reporting

    def row_titles(self) -> list[tuple[str, str, str]]:
        """(key, title, unit) of every row of the selected cases, in order."""
        subs = {
            "batch": self.args.batch,
            "mounts": self.args.mounts,
            "env": self.args.env,
            "pause": f"{ISOLATED_PAUSE * 1000:g}",
        }
        rows = []
        for case in self.cases:
            for key, title, unit in ROWS[case]:
                rows.append((key, title.format(**subs), unit))
        return rows

    def table(self) -> str:
        """The results table as text."""
        names = [rt.name for rt in self.runtimes]
        ratios = [b for b in ("runc", "crun") if "pyoci" in names and b in names]
        header = ["case", *names, *(f"pyoci/{b}" for b in ratios)]
        lines: list[list[str]] = []
        reasons: dict[str, int] = {}
        for key, title, unit in self.row_titles():
            cells = self.results.get(key, {})
            row = [title]
            for name in names:
                cell = cells.get(name)
                if cell is None:
                    row.append("-")
                elif cell.ok:
                    row.append(fmt_cell(cell, unit))
                else:
                    reason = cell.reason or "no samples"
                    num = reasons.setdefault(reason, len(reasons) + 1)
                    row.append(f"n/a ({shorten(reason, 34)}) [{num}]")
            for base in ratios:
                row.append(fmt_ratio(cells.get("pyoci"), cells.get(base)))
            lines.append(row)
        widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
        out = []
        fmt_row = "  ".join(f"{{:<{w}}}" if i == 0 else f"{{:>{w}}}" for i, w in enumerate(widths))
        out.append(fmt_row.format(*header))
        out.append("  ".join("-" * w for w in widths))
        out.extend(fmt_row.format(*row) for row in lines)
        out.append("")
        out.append("times: mean ± stddev in ms; memory: mean ± stddev in MiB")
        methods: dict[str, str] = {}
        for key, _, _ in self.row_titles():
            for cell in self.results.get(key, {}).values():
                if cell.ok and cell.method and key not in methods:
                    methods[key] = cell.method
        shown: dict[str, str] = {}
        for key, method in methods.items():
            case = key.split(".")[0]
            if shown.get(case) != method:
                out.append(f"  {key}: {method}")
                shown[case] = method
        if self.spawn_overhead_ms is not None and any(
            m.startswith("python loop") for m in methods.values()
        ):
            out.append(
                f"  python loop spawn overhead (run_cmd of /bin/true): "
                f"{self.spawn_overhead_ms:.2f} ms per command, included in python-loop numbers"
            )
        for note in self.notes:
            out.append(f"note: {note}")
        for reason, num in reasons.items():
            out.append(f"[{num}] {reason}")
        return "\n".join(out)

    def to_json(self) -> dict[str, Any]:
        """Everything measured, plus machine and settings, as a JSON-ready dict."""
        rows = []
        for key, title, unit in self.row_titles():
            cells = self.results.get(key, {})
            entry: dict[str, Any] = {
                "key": key,
                "title": title.strip(),
                "unit": unit,
                "runtimes": {name: cell.stats() for name, cell in cells.items()},
            }
            pyoci = cells.get("pyoci")
            entry["ratios"] = {
                f"pyoci/{base}": ratio(pyoci, cells.get(base)) for base in ("runc", "crun")
            }
            rows.append(entry)
        return {
            "schema": "pyoci-bench/1",
            "started": self.started.isoformat(),
            "finished": datetime.datetime.now(datetime.UTC).isoformat(),
            "interrupted": self.interrupted,
            "machine": machine_info(self),
            "settings": {
                "runs": self.runs,
                "warmup": self.warmup,
                "quick": self.args.quick,
                "cases": self.cases,
                "batch": self.args.batch,
                "batch_reps": self.args.batch_reps,
                "mounts": self.args.mounts,
                "env": self.args.env,
                "isolated_pause_s": ISOLATED_PAUSE,
                "mem_samples": self.args.mem_samples,
                "timeout_s": self.timeout,
                "bundle": str(Path(self.args.bundle).resolve()),
                "oci_version": self.args.oci_version or "(unchanged)",
                "hyperfine": self.hyperfine,
                "python_spawn_overhead_ms": self.spawn_overhead_ms,
                "lifecycle_delete": "delete --force",
            },
            "runtimes": {
                rt.name: {
                    "path": rt.path,
                    "version": rt.version,
                    "available": rt.problem is None,
                    "problem": rt.problem,
                    "skipped": rt.skipped,
                    "timeouts": rt.timeouts,
                    "cgroup2_hidden": rt.cgroup2_hidden,
                }
                for rt in self.runtimes
            },
            "notes": self.notes,
            "results": rows,
        }


# --------------------------------------------------------------------------- formatting


def cmd_name(argv: Sequence[str]) -> str:
    """The sub-command of a runtime command line, for error messages."""
    words = [a for a in argv[1:] if not a.startswith("-")]
    return words[1] if len(words) > 1 else os.path.basename(argv[0])


def check_state(text: str, cid: str) -> str | None:
    """Return a problem description if ``text`` is not a valid ``state`` JSON for ``cid``."""
    try:
        state = json.loads(text)
    except ValueError:
        return f"state output is not JSON: {shorten(text.strip(), 60)!r}"
    if not isinstance(state, dict) or state.get("id") != cid or "status" not in state:
        return f"unexpected state output: {shorten(text.strip(), 60)!r}"
    return None


def state_problem(proc: Proc, cid: str) -> str | None:
    """Problem with a ``state`` command's outcome, or None if it printed a valid state."""
    if proc.rc != 0:
        return summarize_error(proc.err, proc.rc)
    return check_state(proc.out, cid)


def unit_of(key: str) -> str:
    """Unit of a row key."""
    return "MiB" if key.startswith("memory") else "ms"


def fmt_num(value: float) -> str:
    """Number with precision suited to its size."""
    if abs(value) < 10:
        return f"{value:.2f}"
    if abs(value) < 1000:
        return f"{value:.1f}"
    return f"{value:.0f}"


def fmt_cell(cell: Cell, unit: str) -> str:
    """``mean ± stddev unit`` or ``n/a (reason)``."""
    if not cell.ok:
        return f"n/a ({shorten(cell.reason or 'no samples', 60)})"
    stats = cell.stats()
    if stats["n"] == 1:
        return f"{fmt_num(stats['mean'])} {unit} (n=1)"
    return f"{fmt_num(stats['mean'])} ± {fmt_num(stats['stddev'])} {unit}"


def ratio(num: Cell | None, den: Cell | None) -> float | None:
    """Ratio of two cells' means, or None when either is missing."""
    if num is None or den is None or not num.ok or not den.ok:
        return None
    base = statistics.fmean(den.values)
    return statistics.fmean(num.values) / base if base else None


def fmt_ratio(num: Cell | None, den: Cell | None) -> str:
    """Ratio as ``1.23x`` or ``n/a``."""
    value = ratio(num, den)
    return "n/a" if value is None else f"{value:.2f}x"


def shorten(text: str, width: int) -> str:
    """Cut ``text`` to ``width`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def machine_info(bench: Bench) -> dict[str, Any]:
    """Kernel, CPUs, memory, Python, cgroup layout and tool versions."""
    info: dict[str, Any] = {
        "hostname": platform.node(),
        "kernel": platform.release(),
        "kernel_version": platform.version(),
        "arch": platform.machine(),
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
    }
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                info["mem_total_mib"] = int(line.split()[1]) // 1024
                break
    with contextlib.suppress(OSError), open("/etc/os-release") as fh:
        for line in fh:
            if line.startswith("PRETTY_NAME="):
                info["os"] = line.split("=", 1)[1].strip().strip('"')
    mode, controllers = bench.layout
    info["cgroup_mode"] = mode
    info["cgroup2_controllers"] = controllers
    info["runtime_versions"] = {rt.name: rt.version for rt in bench.runtimes}
    if bench.hyperfine:
        proc = run_cmd([bench.hyperfine, "--version"], timeout=10, want_out=True)
        info["hyperfine_version"] = proc.out.strip()
    return info


# --------------------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(
        description="Time pyoci against runc and crun on the same bundle (run as root).",
        epilog=f"cases: {', '.join(ALL_CASES)}",
    )
    p.add_argument(
        "--runtimes", default="pyoci,runc,crun", help="comma-separated (default: %(default)s)"
    )
    p.add_argument("--cases", default=",".join(ALL_CASES), help="comma-separated (default: all)")
    p.add_argument("--runs", type=int, help="timed runs per case (default: 20; --quick: 3)")
    p.add_argument("--warmup", type=int, help="warmup runs per case (default: 2; --quick: 0)")
    p.add_argument("--quick", action="store_true", help="fast smoke pass: few runs, no warmup")
    p.add_argument(
        "--json", default="bench-results.json", metavar="FILE", help="default: %(default)s"
    )
    p.add_argument("--pyoci", default=DEFAULT_PATHS["pyoci"], help="default: %(default)s")
    p.add_argument("--runc", default=DEFAULT_PATHS["runc"], help="default: %(default)s")
    p.add_argument("--crun", default=DEFAULT_PATHS["crun"], help="default: %(default)s")
    p.add_argument("--hyperfine", default=HYPERFINE, help="default: %(default)s")
    p.add_argument("--no-hyperfine", action="store_true", help="time everything in Python")
    p.add_argument(
        "--bundle", default=str(DEFAULT_BUNDLE), help="source bundle (default: %(default)s)"
    )
    p.add_argument(
        "--oci-version",
        default="1.0.2",
        help="ociVersion of the generated bundles; '' keeps the source's "
        "(default: %(default)s, as crun 1.8 rejects 1.2.x)",
    )
    p.add_argument("--batch", type=int, default=50, help="runs in the batch loop (default: 50)")
    p.add_argument("--batch-reps", type=int, help="timings of the batch loop (3; --quick: 1)")
    p.add_argument("--mounts", type=int, default=100, help="bind mounts (default: 100)")
    p.add_argument("--env", type=int, default=10000, help="extra env vars (default: 10000)")
    p.add_argument("--mem-samples", type=int, help="samples per memory row (5; --quick: 2)")
    p.add_argument(
        "--timeout", type=float, default=30.0, help="seconds per runtime command (default: 30)"
    )
    p.add_argument(
        "--max-timeouts",
        type=int,
        default=2,
        help="skip a runtime's remaining cases after this many timeouts (default: 2)",
    )
    p.add_argument("--tmpdir", help="parent of the temporary directory (default: $TMPDIR, /tmp)")
    p.add_argument(
        "--no-crun-workaround",
        action="store_true",
        help="run crun in the host mount namespace even on hybrid cgroups (it will fail)",
    )
    args = p.parse_args(argv)
    args.runtimes = [r.strip() for r in args.runtimes.split(",") if r.strip()]
    unknown = [r for r in args.runtimes if r not in RUNTIME_ORDER]
    if unknown or not args.runtimes:
        p.error(f"unknown runtime(s) {unknown}; choose from {', '.join(RUNTIME_ORDER)}")
    args.cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    bad = [c for c in args.cases if c not in ALL_CASES]
    if bad or not args.cases:
        p.error(f"unknown case(s) {bad}; choose from {', '.join(ALL_CASES)}")
    args.cases = [c for c in ALL_CASES if c in args.cases]
    args.paths = {"runc": args.runc, "crun": args.crun, "pyoci": args.pyoci}
    if args.runs is None:
        args.runs = 3 if args.quick else 20
    if args.warmup is None:
        args.warmup = 0 if args.quick else 2
    if args.batch_reps is None:
        args.batch_reps = 1 if args.quick else 3
    if args.mem_samples is None:
        args.mem_samples = 2 if args.quick else 5
    for name in ("runs", "batch", "batch_reps", "mem_samples", "max_timeouts"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.warmup < 0 or args.mounts < 0 or args.env < 0:
        p.error("--warmup, --mounts and --env must not be negative")
    return args


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM/SIGHUP into KeyboardInterrupt so cleanup runs."""
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the benchmark, print the table, write the JSON."""
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("bench: must run as root (runtimes need it)", file=sys.stderr)
        return 2
    if not Path(args.bundle, "config.json").is_file():
        print(f"bench: no config.json in bundle {args.bundle}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    bench = Bench(args)
    try:
        bench.setup()
        bench.run_cases()
    except KeyboardInterrupt:
        bench.interrupted = True
        bench.log("interrupted: cleaning up")
    finally:
        bench.cleanup()
    data = bench.to_json()
    Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
    bench.log(f"results written to {args.json}")
    try:
        print(bench.table(), flush=True)
    except BrokenPipeError:  # e.g. piped into head: silence the flush at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 130 if bench.interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
