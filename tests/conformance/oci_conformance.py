"""Harness of the OCI runtime conformance suite: any runc-compatible binary, real containers.

The suite checks the MUST and SHOULD clauses of runtime-spec 1.3.0 (runtime.md, config.md,
config-linux.md) that a Linux host can observe. Every test builds its own bundle from the
busybox rootfs (`bundles/busybox/rootfs`, `make bundles`), drives the runtime through runc's
command line with a private `--root`, and looks at the effect from inside (a busybox script,
or `probe`, a small static C program built here with gcc) and from outside (state JSON, exit
codes, /proc, the cgroup files).

Rules every test follows (the fixtures, oci_fixtures.py, enforce the last two):
- the first line of its docstring is `<doc>.md § <section> (<MUST|SHOULD...>): "<clause>"`,
  which `report.py` (the -p plugin of `make conformance`) turns into the report;
- a clause the machine cannot exercise is skipped with the reason (`Lab.skip`), never passed;
- a test never passes unless it saw the container's process run: every container prints
  `TOKEN:<random>` (expanded by its shell from process.env), and a test that neither failed nor
  skipped but never saw its token is turned into an error at teardown;
- teardown force-deletes every container the test created, kills whatever process still
  carries the test's marker in its environment, and removes the mounts and cgroups it made.

The runtime comes from `--runtime` (tests/conftest.py registers it), else $OCI_RUNTIME, else
pyoci: `runc`, `crun` and `pyoci` name Debian's binaries and the venv's launcher, anything else
is a path. crun 1.8 refuses a hybrid cgroup host ("cgroups in hybrid mode not supported"), so
a crun-named binary runs, on such a host, in a private mount namespace of a helper process in
which the cgroup2 mount is gone (the idea of tools/bench.py): every crun command is
`nsenter --mount=/proc/HELPER/ns/mnt --wd=CWD -- crun ...`, and that namespace is the runtime
mount namespace the hook tests compare with.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROOTFS = REPO / "bundles" / "busybox" / "rootfs"
PROBE_SOURCE = Path(__file__).resolve().parent / "probe.c"
KNOWN_RUNTIMES = {
    "runc": "/usr/sbin/runc",
    "crun": "/usr/bin/crun",
    "pyoci": str(REPO / ".venv" / "bin" / "pyoci"),
}
CGROUP_ROOT = Path("/sys/fs/cgroup")
CGROUP_UNIFIED = CGROUP_ROOT / "unified"
SESSION = uuid.uuid4().hex[:8]
#: Every cgroupsPath the suite writes lives under this top-level name, in every hierarchy.
CGROUP_PREFIX = f"ocitest-{SESSION}"
SPEC_VERSION = "1.3.0"
#: What a config says when the runtime refuses 1.3.0 (crun 1.8 knows no 1.2+ version).
FALLBACK_VERSION = "1.0.2"
TOKEN_ENV = "OCI_T"
MARK_ENV = "OCI_MARK"
NAMESPACES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
#: namespace type (config-linux.md) -> the name under /proc/PID/ns/.
NS_FILE = {
    "pid": "pid",
    "network": "net",
    "mount": "mnt",
    "ipc": "ipc",
    "uts": "uts",
    "user": "user",
    "cgroup": "cgroup",
    "time": "time",
}
DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# --- host facts ----------------------------------------------------------------------------------
def mount_table(pid: str | int = "self") -> list[dict]:
    """/proc/PID/mountinfo as dicts: id, parent, mountpoint, options, optional, fstype, super."""
    rows = []
    with open(f"/proc/{pid}/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            fstype, source, sopts = (right.split() + ["", "", ""])[:3]
            rows.append(
                {
                    "id": fields[0],
                    "parent": fields[1],
                    "root": unescape(fields[3]),
                    "mountpoint": unescape(fields[4]),
                    "options": fields[5].split(","),
                    "optional": fields[6:],
                    "fstype": fstype,
                    "source": source,
                    "super": sopts.split(","),
                }
            )
    return rows


def unescape(field: str) -> str:
    """mountinfo escapes space, tab, newline and backslash as \\ooo."""
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def v1_controllers() -> dict[str, Path]:
    """controller name -> its cgroup v1 mount point (co-mounted controllers share one)."""
    found = {}
    for row in mount_table():
        if row["fstype"] == "cgroup":
            for opt in row["super"]:
                if opt in ("rw", "ro") or "=" in opt and not opt.startswith("name="):
                    continue
                found[opt] = Path(row["mountpoint"])
    return found


def unified_root() -> Path | None:
    """Where cgroup2 is mounted (the whole tree, or /sys/fs/cgroup/unified on a hybrid host)."""
    for row in mount_table():
        if row["fstype"] == "cgroup2" and row["mountpoint"].startswith(str(CGROUP_ROOT)):
            return Path(row["mountpoint"])
    return None


def unified_controllers() -> set[str]:
    root = unified_root()
    if root is None:
        return set()
    return set((root / "cgroup.controllers").read_text().split())


def hybrid_with_controllers() -> bool:
    """The layout crun 1.8 refuses: v1 controllers plus a cgroup2 mount that has controllers."""
    return (
        bool(v1_controllers()) and unified_root() == CGROUP_UNIFIED and bool(unified_controllers())
    )


def proc_cgroups(pid: int) -> dict[str, str]:
    """/proc/PID/cgroup as {controller or "" for cgroup2 or "name=x": path}."""
    out = {}
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for c in controllers.split(",") if controllers else [""]:
                out[c] = path
    return out


def processes_with_env(entry: str) -> list[int]:
    """pids of live processes (zombies skipped) whose environment holds `entry` exactly."""
    needle = entry.encode()
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                st = f.read()
            if st[st.rindex(b")") + 2 :].startswith(b"Z"):
                continue
            with open(f"/proc/{name}/environ", "rb") as f:
                env = f.read().split(b"\0")
        except OSError:
            continue
        if needle in env:
            found.append(int(name))
    return found


def kv(text: str) -> dict[str, str]:
    """KEY=VALUE lines of a container's output (the last one of a key wins)."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key and key.replace("_", "").isalnum():
            out[key] = value
    return out


_PRISTINE: list[Path] = []


def copy_rootfs(dest: Path) -> None:
    """A private copy of the busybox rootfs. Copied from a session copy made once with
    `cp -ax`: other test sessions may mount things inside bundles/busybox/rootfs meanwhile
    (a container without a mount namespace), and a copy must not descend into those."""
    if not _PRISTINE:
        top = Path(tempfile.mkdtemp(prefix="ocitest-rootfs-"))
        top.chmod(0o755)
        subprocess.run(["cp", "-ax", str(ROOTFS), str(top / "rootfs")], check=True, timeout=60)
        _PRISTINE.append(top / "rootfs")
    subprocess.run(["cp", "-a", str(_PRISTINE[0]), str(dest)], check=True, timeout=60)


def drop_pristine() -> None:
    while _PRISTINE:
        shutil.rmtree(_PRISTINE.pop().parent, ignore_errors=True)


# --- the runtime under test ----------------------------------------------------------------------
class Result:
    """One runtime command: its argv, exit code, stdout and stderr."""

    def __init__(self, argv: list[str], returncode: int, stdout: str, stderr: str) -> None:
        self.argv = argv
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def __str__(self) -> str:
        words = " ".join(
            self.argv[self.argv.index("--root") + 2 :] if "--root" in self.argv else []
        )
        err = self.stderr.strip().splitlines()
        return f"`{words}` exited {self.returncode}" + (f" ({err[-1][:300]})" if err else "")


class Runtime:
    """The binary under test: how to call it, and in which mount namespace it runs."""

    def __init__(self, spec: str) -> None:
        self.path = KNOWN_RUNTIMES.get(spec, spec)
        self.name = Path(self.path).name
        self.prefix: list[str] = []
        self.helper: subprocess.Popen | None = None
        self.notes: list[str] = []
        self.oci_version = SPEC_VERSION
        self.version = ""

    def start(self) -> None:
        if not os.access(self.path, os.X_OK):
            raise pytest.UsageError(f"--runtime: {self.path} is not an executable")
        if self.name.startswith("crun") and hybrid_with_controllers():
            self._hide_cgroup2()
        out = subprocess.run(
            [*self.prefix, self.path, "--version"], capture_output=True, text=True, check=False
        )
        self.version = (out.stdout.strip().splitlines() or ["?"])[0]

    def _hide_cgroup2(self) -> None:
        """A helper process in a private mount namespace without the cgroup2 mount; every
        command of this runtime enters it (nsenter: setns, then exec; no extra process)."""
        self.helper = subprocess.Popen(
            [
                "unshare",
                "--mount",
                "--propagation",
                "slave",
                "sh",
                "-c",
                f"umount -l {CGROUP_UNIFIED} && echo ready && exec sleep 1000000",
            ],
            stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
        )
        if self.helper.stdout.readline().strip() != "ready":
            raise pytest.UsageError("could not hide the cgroup2 mount for crun")
        self.prefix = ["nsenter", f"--mount=/proc/{self.helper.pid}/ns/mnt"]
        self.notes.append(
            "runs in a private mount namespace without the cgroup2 mount (crun refuses this "
            "hybrid cgroup host otherwise)"
        )

    def argv(self, root: Path, args: tuple[str, ...], cwd: str) -> list[str]:
        wd = [f"--wd={cwd}"] if self.prefix else []
        return [
            *self.prefix,
            *wd,
            *(["--"] if self.prefix else []),
            self.path,
            "--root",
            str(root),
            *args,
        ]

    def host_argv(self, argv: list[str], cwd: str = "/") -> list[str]:
        """A host tool run in this runtime's mount namespace (mounts it must see)."""
        if not self.prefix:
            return argv
        return [*self.prefix, f"--wd={cwd}", "--", *argv]

    def ns(self, kind: str) -> str:
        """readlink of the runtime's namespace of that /proc/PID/ns name."""
        if kind == "mnt" and self.helper is not None:
            return os.readlink(f"/proc/{self.helper.pid}/ns/mnt")
        return os.readlink(f"/proc/self/ns/{kind}")

    def stop(self) -> None:
        if self.helper is not None:
            self.helper.kill()
            self.helper.wait()
            self.helper = None


# --- one test's laboratory -----------------------------------------------------------------------
class Lab:
    """Bundles, containers and observations of one test (see the module docstring)."""

    def __init__(
        self, runtime: Runtime, probe: Path | None, request: pytest.FixtureRequest
    ) -> None:
        self.runtime = runtime
        self.probe_binary = probe
        self.request = request
        # Not pytest's tmp_path: that is 0700, and a container with a user namespace must be able
        # to reach its rootfs and bind sources as a mapped (unprivileged) host uid.
        self.dir = Path(tempfile.mkdtemp(prefix="ocitest-"))
        self.dir.chmod(0o755)
        self.root = self.dir / "state"
        self.token = uuid.uuid4().hex
        self.mark = uuid.uuid4().hex
        self.ids: list[str] = []
        self.cgroup_paths: list[str] = []
        self.helpers: list[subprocess.Popen] = []
        self.host_mounts: list[Path] = []
        self.token_seen = False
        self.skipped = False
        self.last: Result | None = None
        self._n = 0

    # --- clauses and skips ---------------------------------------------------------------------
    def clause(self, level: str | None = None, quote: str | None = None) -> None:
        """Override the docstring's level/quote for this instance (parametrized clauses)."""
        if level:
            self.request.node.user_properties.append(("clause_level", level))
        if quote:
            self.request.node.user_properties.append(("clause_quote", quote))

    def skip(self, reason: str) -> None:
        self.skipped = True
        pytest.skip(reason)

    def need_v1(self, controller: str) -> Path:
        mounts = v1_controllers()
        if controller not in mounts:
            self.skip(f"the {controller} cgroup v1 controller is not mounted on this host")
        return mounts[controller]

    # --- bundles -------------------------------------------------------------------------------
    @property
    def token_line(self) -> str:
        return f"TOKEN:{self.token}"

    def config(self, script: str = ":", *, args: list[str] | None = None) -> dict:
        """A fresh config: busybox `sh -c 'echo TOKEN:$OCI_T; <script>'` as root, with the
        usual mounts and the pid, network, ipc, uts and mount namespaces (as `runc spec`)."""
        self._n += 1
        cgpath = f"/{CGROUP_PREFIX}/{self.mark[:8]}-{self._n}"
        return {
            "ociVersion": self.runtime.oci_version,
            "process": {
                "terminal": False,
                "user": {"uid": 0, "gid": 0},
                "args": args or ["sh", "-c", f"echo TOKEN:${TOKEN_ENV}; {script}"],
                "env": [PATH_ENV, f"{TOKEN_ENV}={self.token}", f"{MARK_ENV}={self.mark}"],
                "cwd": "/",
                "capabilities": {
                    k: list(DEFAULT_CAPS) for k in ("bounding", "effective", "permitted")
                },
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": True,
            },
            "root": {"path": "rootfs", "readonly": False},
            "hostname": "ocitest",
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc"},
                {
                    "destination": "/dev",
                    "type": "tmpfs",
                    "source": "tmpfs",
                    "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
                },
                {
                    "destination": "/dev/pts",
                    "type": "devpts",
                    "source": "devpts",
                    "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
                },
                {
                    "destination": "/dev/shm",
                    "type": "tmpfs",
                    "source": "shm",
                    "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
                },
                {
                    "destination": "/dev/mqueue",
                    "type": "mqueue",
                    "source": "mqueue",
                    "options": ["nosuid", "noexec", "nodev"],
                },
                {
                    "destination": "/sys",
                    "type": "sysfs",
                    "source": "sysfs",
                    "options": ["nosuid", "noexec", "nodev", "ro"],
                },
            ],
            "linux": {
                "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
                "cgroupsPath": cgpath,
                "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
                "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys"],
            },
        }

    def bundle(self, config: dict, *, name: str | None = None, rootfs: bool = True) -> Path:
        """Write config.json in a new bundle directory; `rootfs`: give it its own copy of the
        busybox rootfs at `rootfs/` (mount points of the config made in advance, so that a
        container with a user namespace needs not create them in root-owned directories)."""
        self._n += 1
        path = self.dir / (name or f"bundle{self._n}")
        path.mkdir()
        if rootfs:
            copy_rootfs(path / "rootfs")
            for m in config.get("mounts", []):
                dest = m.get("destination", "")
                if not dest.startswith("/") or dest.split("/")[1] in ("dev", "proc", "sys"):
                    continue
                target = path / "rootfs" / dest.lstrip("/")
                source = Path(m.get("source", ""))
                if not target.exists() and not target.is_symlink():
                    if source.is_absolute() and source.is_file():
                        target.parent.mkdir(parents=True, exist_ok=True)
                        target.touch()
                    else:
                        target.mkdir(parents=True, exist_ok=True)
        cg = config.get("linux", {}).get("cgroupsPath")
        if cg:
            self.cgroup_paths.append(cg)
        self.write(path, config)
        return path

    @staticmethod
    def write(bundle: Path, config: dict) -> None:
        (bundle / "config.json").write_text(json.dumps(config, indent=2))

    def with_probe(self, config: dict) -> dict:
        """Bind-mount the static probe (read-only) at /ocitest/probe."""
        if self.probe_binary is None:
            pytest.fail("gcc could not build tests/conformance/probe.c (static)")
        config["mounts"].append(
            {
                "destination": "/ocitest",
                "type": "bind",
                "source": str(self.probe_binary.parent),
                "options": ["rbind", "ro"],
            }
        )
        return config

    def out_dir(self, name: str = "out") -> Path:
        """A host directory, world-writable (containers with a user namespace write there)."""
        path = self.dir / name
        path.mkdir(exist_ok=True)
        path.chmod(0o777)
        return path

    def bind_out(self, config: dict, name: str = "out", dest: str = "/out") -> Path:
        path = self.out_dir(name)
        config["mounts"].append(
            {"destination": dest, "type": "bind", "source": str(path), "options": ["rbind", "rw"]}
        )
        return path

    @staticmethod
    def userns(config: dict, host: int = 100000, size: int = 65536) -> dict:
        """A user namespace mapping container 0..size-1 to host `host`..."""
        config["linux"]["namespaces"].append({"type": "user"})
        config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": host, "size": size}]
        config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": host, "size": size}]
        return config

    def script(self, name: str, body: str, where: Path | None = None) -> Path:
        """An executable `#!/bin/sh` script `name` in `where` (default: the lab's hooks dir on
        the host); to put one inside a rootfs, pass `where=bundle / "rootfs"`."""
        folder = where or self.dir / "hooks"
        folder.mkdir(exist_ok=True)
        folder.chmod(0o755)
        path = folder / name
        path.write_text("#!/bin/sh\n" + body + "\n")
        path.chmod(0o755)
        return path

    @staticmethod
    def hook(path: str | Path, *args: str, **extra: object) -> dict:
        """A hook entry: {"path": path, "args": [basename, *args]}."""
        return {"path": str(path), "args": [Path(path).name, *args], **extra}

    # --- running the runtime -------------------------------------------------------------------
    def new_id(self, prefix: str = "c") -> str:
        cid = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.ids.append(cid)
        return cid

    def rt(
        self,
        *args: str,
        cwd: str | Path | None = None,
        timeout: float = 30,
        out: Path | None = None,
        preexec_fn: Callable[[], None] | None = None,
        netns: str | None = None,
    ) -> Result:
        """`RUNTIME --root ROOT ARGS...`, stdio in files: a container inherits the stdio of
        `create`/`run`, so pipes would keep us waiting until it exits. `out`: append stdout to
        that file (the container's output file)."""
        self._n += 1
        io = self.dir / "io"
        io.mkdir(exist_ok=True)
        out_path = out or io / f"{self._n}.out"
        err_path = io / f"{self._n}.err"
        workdir = str(cwd or self.dir)
        argv = self.runtime.argv(self.root, args, workdir)
        if netns:
            argv = ["nsenter", f"--net={netns}", "--", *argv]
        with open(out_path, "ab") as fout, open(err_path, "wb") as ferr:
            start = fout.tell()
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=fout,
                stderr=ferr,
                cwd=workdir,
                preexec_fn=preexec_fn,
            )
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                rc = -9
                ferr.write(f"\n(timed out after {timeout}s)".encode())
        stdout = out_path.read_bytes()[start:].decode(errors="replace")
        return Result(argv, rc, stdout, err_path.read_text(errors="replace"))

    def output_file(self, cid: str) -> Path:
        return self.dir / "io" / f"{cid}.container.out"

    def output(self, cid: str) -> str:
        path = self.output_file(cid)
        return path.read_text(errors="replace") if path.exists() else ""

    def create(self, bundle: Path, cid: str | None = None, *extra: str, check: bool = True) -> str:
        cid = cid or self.new_id()
        (self.dir / "io").mkdir(exist_ok=True)
        result = self.rt("create", "--bundle", str(bundle), *extra, cid, out=self.output_file(cid))
        self.last = result
        if check:
            assert result.ok, f"create failed: {result}"
        return cid

    def start(self, cid: str, check: bool = True) -> Result:
        result = self.rt("start", cid)
        if check:
            assert result.ok, f"start failed: {result}"
        return result

    def state(self, cid: str) -> dict:
        result = self.rt("state", cid)
        assert result.ok, f"state failed: {result}"
        try:
            return json.loads(result.stdout)
        except ValueError:
            pytest.fail(f"`state {cid}` printed no JSON: {result.stdout[:300]!r}")

    def status(self, cid: str) -> str | None:
        """The state's status, or None when `state` fails (no such container)."""
        result = self.rt("state", cid)
        if not result.ok:
            return None
        try:
            return json.loads(result.stdout).get("status")
        except ValueError:
            return None

    def kill(self, cid: str, sig: str = "KILL", check: bool = True) -> Result:
        result = self.rt("kill", cid, sig)
        if check:
            assert result.ok, f"kill failed: {result}"
        return result

    def delete(self, cid: str, force: bool = False, check: bool = True) -> Result:
        result = self.rt("delete", *(["--force"] if force else []), cid)
        if check:
            assert result.ok, f"delete failed: {result}"
        return result

    def run(self, bundle: Path, cid: str | None = None, *extra: str, timeout: float = 30) -> Result:
        """Foreground `run`: create + start + wait + delete; stdout holds the container's."""
        cid = cid or self.new_id()
        return self.rt("run", "--bundle", str(bundle), *extra, cid, timeout=timeout)

    # --- observations --------------------------------------------------------------------------
    def saw_token(self, text: str) -> bool:
        if self.token_line in text:
            self.token_seen = True
            return True
        return False

    def expect_token(self, text: str, what: str = "the container") -> str:
        assert self.saw_token(text), (
            f"{what} never printed its token (its process did not run); output: {text[-400:]!r}"
        )
        return text

    def run_ok(self, config: dict, *extra: str, **bundle_kw) -> dict[str, str]:
        """Run a config to completion; it must exit 0 and print its token. Returns its
        KEY=VALUE lines (plus `_out`, the whole output)."""
        result = self.run(self.bundle(config, **bundle_kw), None, *extra)
        assert result.ok, f"the container did not run: {result}; output: {result.stdout[-400:]!r}"
        self.expect_token(result.stdout)
        values = kv(result.stdout)
        values["_out"] = result.stdout
        return values

    def control(self, config: dict) -> None:
        """The positive control of a test that expects an error: the same config without the
        faulty part runs and prints its token (so the error is not the setup's)."""
        result = self.run(self.bundle(config))
        assert result.ok and self.saw_token(result.stdout), (
            f"the control container (same config, without the faulty part) did not run: "
            f"{result}; output: {result.stdout[-300:]!r}"
        )

    def wait_for(self, cid: str, needle: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while True:
            text = self.output(cid)
            if needle in text:
                self.saw_token(text)
                return text
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{needle!r} never appeared in the output of {cid}: {text[-400:]!r}"
                )
            time.sleep(0.02)

    def wait_token(self, cid: str, timeout: float = 10) -> str:
        return self.wait_for(cid, self.token_line, timeout)

    def wait_status(self, cid: str, status: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while True:
            seen = self.status(cid)
            if seen == status:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{cid} never became {status!r} (last status: {seen!r})")
            time.sleep(0.02)

    def cgroup_dirs(self, cgroups_path: str) -> dict[str, Path]:
        """{controller or "unified": directory} where an absolute cgroupsPath lands."""
        rel = cgroups_path.lstrip("/")
        dirs = {c: mp / rel for c, mp in v1_controllers().items()}
        root = unified_root()
        if root is not None:
            dirs["unified"] = root / rel
        return dirs

    def cgroup_file(self, pid: int, controller: str, v1_name: str, v2_name: str) -> Path:
        """The cgroup file of a controller for process `pid`: the v1 file where the controller is
        mounted as v1, else the cgroup2 file of the process's cgroup2 group."""
        groups = proc_cgroups(pid)
        v1 = v1_controllers()
        if controller in v1:
            return v1[controller] / groups[controller].lstrip("/") / v1_name
        root = unified_root()
        if root is None or controller not in unified_controllers():
            self.skip(f"the {controller} cgroup controller is not available on this host")
        return root / groups.get("", "/").lstrip("/") / v2_name

    # --- host-side helpers ---------------------------------------------------------------------
    def helper(self, argv: list[str]) -> subprocess.Popen:
        """A background host process (a namespace holder...): killed at teardown."""
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
        self.helpers.append(proc)
        return proc

    def host_mount(self, *args: str, target: Path) -> None:
        """`mount ARGS TARGET`, in the runtime's mount namespace; undone at teardown."""
        subprocess.run(self.runtime.host_argv(["mount", *args, str(target)]), check=True)
        self.host_mounts.append(target)

    def host_run(self, *argv: str) -> None:
        """A host command in the runtime's mount namespace (e.g. `mount --make-shared DIR`)."""
        subprocess.run(self.runtime.host_argv(list(argv)), check=True)

    def console_socket(self) -> tuple[Path, dict]:
        """A console socket (runc's --console-socket): a thread accepts one connection, takes
        the pty master sent with SCM_RIGHTS and reads it to EOF into result["output"]."""
        import array
        import socket
        import threading

        path = self.dir / f"console-{self._n}.sock"
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(path))
        server.listen(1)
        server.settimeout(30)
        result: dict = {"output": b"", "error": None}

        def serve() -> None:
            try:
                conn, _ = server.accept()
                with conn:
                    fds = array.array("i")
                    _, anc, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
                    for level, kind, data in anc:
                        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
                if not fds:
                    result["error"] = "no fd received"
                    return
                master = fds[0]
                try:
                    while True:
                        chunk = os.read(master, 4096)
                        if not chunk:
                            break
                        result["output"] += chunk
                except OSError:
                    pass  # EIO: the last slave fd is closed
                finally:
                    os.close(master)
            except Exception as err:  # noqa: BLE001  (reported to the test)
                result["error"] = repr(err)
            finally:
                server.close()

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        result["thread"] = thread
        return path, result

    # --- teardown ------------------------------------------------------------------------------
    def cleanup(self) -> None:
        for cid in self.ids:
            with contextlib.suppress(Exception):
                self.rt("delete", "--force", cid, timeout=20)
        for pid in processes_with_env(f"{MARK_ENV}={self.mark}"):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        for proc in self.helpers:
            proc.kill()
            proc.wait()
        for target in reversed(self.host_mounts):
            subprocess.run(
                self.runtime.host_argv(["umount", "-l", str(target)]),
                check=False,
                capture_output=True,
            )
        time.sleep(0.01 if not processes_with_env(f"{MARK_ENV}={self.mark}") else 0.2)
        for cg in self.cgroup_paths:
            for d in self.cgroup_dirs(cg).values():
                remove_cgroup_tree(d)
        shutil.rmtree(self.dir, ignore_errors=True)


def remove_cgroup_tree(top: Path) -> None:
    """rmdir a cgroup directory and its children (only ever under CGROUP_PREFIX)."""
    assert CGROUP_PREFIX in str(top), top
    if not top.is_dir():
        return
    for dirpath, _, _ in sorted(os.walk(top), key=lambda w: -len(w[0])):
        with contextlib.suppress(OSError):
            os.rmdir(dirpath)
