"""The create process model: the parent P, stage 1 (C1), and the container's init (C2).

```
 P (pyoci create)                     C1 "pyoci:[1:C1]"              C2 "pyoci:[2:INIT]"
 ─────────────────                    ─────────────────              ─────────────────
 plan everything, open ns paths
 fork ───────────────────────────────▶ load ctypes
 make the cgroup, limits ── GO ──────▶ join the v1 cgroups
                                      (cgroup2 too if a user or a joined
                                      cgroup ns follows)
                                      join/create user ns
 ◀────────────── USERNS_READY ──────── (only for a new user ns)
 write uid_map/gid_map ── MAPPED ────▶
                                      setns paths, unshare the rest
                                      fork into the cgroup2 dir ────▶ (PID 1 of the new pid ns)
                                                                     new cgroup ns
 ◀──────────────── PID <n> ─────────── exit(0)
                                                                     rootfs, mounts, /dev,
                                                                     pivot_root, masked/ro paths,
                                                                     hostname, sysctl, rlimits,
                                                                     look up args[0]
 ◀───────────────────────────────── READY (or ERROR {"error","errno"}) ─
 pid file, state.json, exit 0                                        open exec.fifo (blocks until
                                                                     `start`), user, caps, exec
```
The messages travel over one SOCK_SEQPACKET socketpair (message boundaries for free). Every
decision and every import happens in P before the fork (`InitPlan`): after the pivot a lazy
import would read the *container's* files. Each child body is one `try` whose failure is sent
as ERROR and ends in `os._exit`, so a child never returns into the parent's code.
"""

from __future__ import annotations

import _signal as signal  # `signal` and `socket` import enum: ~3 ms per command
import _socket as socket
import os

from pyoci import jsonfast
from pyoci.errors import PyociError
from pyoci.linux import caps as capslib
from pyoci.linux import cgroupjoin, devices, mounts, namespaces, rootfs
from pyoci.linux import syscalls as sc
from pyoci.linux.paths import make_in_root

USERNS_READY = b"USERNS_READY"
HOOKS = b"HOOKS"  # C2 → P: run prestart/createRuntime now; P answers HOOKS_DONE <state json>
HOOKS_DONE = b"HOOKS_DONE"
GO = b"GO"  # P → C1: the cgroup exists, with its limits; + a cgroup2 device program, if any
MAPPED = b"MAPPED"
PID = b"PID"
READY = b"READY"
ERROR = b"ERROR"

# Python ignores SIGPIPE and SIGXFSZ and handles SIGINT; an exec'd program must get defaults.
_RESET_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_WAIT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _exit_on_signal(signum: int, _frame: object) -> None:
    os._exit(128 + signum)


class InitPlan:
    """Everything the children need, decided and checked in the parent."""

    def __init__(
        self,
        spec,
        state_dir: str,
        no_pivot: bool,
        preserve_fds: int = 0,
        use_init: bool = False,
        console_socket: str | None = None,
        console_fd: int = -1,
        cgroup=None,
    ) -> None:
        self.spec = spec
        self.state_dir = state_dir
        self.no_pivot = no_pivot
        self.preserve_fds = preserve_fds
        self.state_fd = -1  # opened by the parent right before the fork
        # The container's cgroup directories, joined as pyoci.linux.cgroupjoin explains.
        self.cgroup_v1: list[str] = cgroup.v1_dirs() if cgroup is not None else []
        self.cgroup_v2: str | None = cgroup.v2_dir if cgroup is not None else None
        # Hooks the runtime runs during create, or that the init runs (createContainer,
        # startContainer): either way the init needs the state, sent in the handshake.
        self.runs_hooks = any(
            spec.hooks.get(name)
            for name in ("prestart", "createRuntime", "createContainer", "startContainer")
        )
        self.hook_state: dict = {}
        self.seccomp = None
        self.seccomp_sock = -1
        if spec.linux.get("seccomp"):
            from pyoci.linux.seccomp import SeccompPlan

            self.seccomp = SeccompPlan(spec.linux["seccomp"])
            if self.seccomp.uses_notify:
                from pyoci.linux import console

                self.seccomp_sock = console.connect(self.seccomp.listener_path)
                self.runs_hooks = True  # the init needs the state (host pid) for the listener
        terminal = spec.process is not None and spec.process.terminal
        if console_socket and not terminal:
            raise PyociError("--console-socket: process.terminal is false in config.json")
        if terminal and not console_socket and console_fd < 0:
            raise PyociError(
                "process.terminal: a terminal needs --console-socket (or a foreground `run`)"
            )
        self.console_fd = console_fd
        self.own_console_fd = False
        if terminal:
            from pyoci.linux import console

            if console_socket:
                self.console_fd = console.connect(console_socket)
                self.own_console_fd = True
        self.use_init = use_init or spec.annotations.get("org.pyoci.init") == "true"
        if self.use_init:
            import pyoci.init  # noqa: F401  (loaded before the fork)
        if self.runs_hooks:
            import select  # noqa: F401  (hooks wait on a pidfd; loaded before the fork)

            from pyoci import hooks  # noqa: F401
        if not spec.has_new("mount") and spec.namespace("mount") is None:
            raise PyociError("linux.namespaces: a mount namespace is required")
        self.ns = namespaces.plan_namespaces(spec)
        self.mount_ops = [mounts.parse_options(m, spec.bundle) for m in spec.mounts]
        if cgroup is not None:
            from pyoci.linux.cgroupfs import plan_cgroup_binds

            for op in self.mount_ops:
                if op.type == "cgroup" and op.cgroup_binds is not None:
                    op.cgroup_binds = plan_cgroup_binds(cgroup.paths_by_key())
        for mount, op in zip(spec.mounts, self.mount_ops, strict=True):
            if op.idmap:
                from pyoci.linux.idmap import idmapped_tree

                op.tree_fd = idmapped_tree(
                    op,
                    mount.uid_mappings or spec.uid_mappings,
                    mount.gid_mappings or spec.gid_mappings,
                )
        self.dev_bind_mounted = any(
            op.destination.rstrip("/") == "/dev" and op.is_bind for op in self.mount_ops
        )
        self.device_ops = [] if self.dev_bind_mounted else devices.plan_devices(spec)
        self.has_devpts = any(op.type == "devpts" for op in self.mount_ops)
        self.in_user_ns = spec.namespace("user") is not None
        if os.geteuid() != 0:
            for i, dev in enumerate(spec.devices):
                raise PyociError(
                    f"linux.devices[{i}]: an unprivileged user cannot create device nodes "
                    f"({dev.path}); bind-mount the host's device instead"
                )
            if not self.in_user_ns:
                raise PyociError(
                    "linux.namespaces: an unprivileged user needs a user namespace "
                    "(try `pyoci spec --rootless`)"
                )
        self.last_cap = capslib.last_cap()
        self.sysctl = _plan_sysctl(spec)
        self.loopback = spec.has_new("network")
        process = spec.process
        self.env = process.env_dict() if process else {}
        raw_process = process.raw if process else {}
        self.personality = self.io_priority = self.scheduler = None
        personality = spec.linux.get("personality")
        if personality or raw_process.get("ioPriority") or raw_process.get("scheduler"):
            from pyoci.linux import sched  # only then: its ctypes struct costs ~0.6 ms

            self.personality = sched.plan_personality(personality)
            self.io_priority = sched.plan_io_priority(raw_process.get("ioPriority"))
            self.scheduler = sched.plan_scheduler(raw_process.get("scheduler"))
        if process and process.rlimits:
            import resource  # noqa: F401  (loaded now, used after the fork)

    def close(self) -> None:
        """The parent's copies of the fds handed to the children."""
        self.ns.close()
        for op in self.mount_ops:
            if op.tree_fd >= 0:
                os.close(op.tree_fd)
                op.tree_fd = -1
        if self.state_fd >= 0:
            os.close(self.state_fd)
            self.state_fd = -1
        if self.seccomp_sock >= 0:
            os.close(self.seccomp_sock)
            self.seccomp_sock = -1
        if self.own_console_fd:
            os.close(self.console_fd)
            self.own_console_fd = False


def _plan_sysctl(spec) -> list[tuple[str, str, str]]:
    """(field, /proc/sys path, value); refuse what would change the host's settings."""
    out = []
    for key, value in spec.sysctl.items():
        field = f"linux.sysctl.{key}"
        if "/" in key or ".." in key.split("."):
            raise PyociError(f"{field}: invalid sysctl name")
        if key.startswith("net.") and not spec.has_new("network"):
            raise PyociError(
                f"{field}: net.* sysctls need a new network namespace (it would change the host's)"
            )
        ipc = key.startswith(("kernel.msg", "kernel.sem", "kernel.shm", "fs.mqueue."))
        if ipc and not spec.has_new("ipc"):
            raise PyociError(
                f"{field}: ipc sysctls need a new ipc namespace (it would change the host's)"
            )
        if key in ("kernel.hostname", "kernel.domainname") and not spec.has_new("uts"):
            raise PyociError(f"{field}: needs a new uts namespace (it would change the host's)")
        if not (key.startswith("net.") or ipc or key in ("kernel.hostname", "kernel.domainname")):
            raise PyociError(f"{field}: not a namespaced sysctl (it would change the host's)")
        out.append((field, "/proc/sys/" + key.replace(".", "/"), value))
    return out


# --- messages ----------------------------------------------------------------------------------
def send_error(sock: socket.socket, err: BaseException) -> None:
    if isinstance(err, PyociError):
        msg, errno = err.msg, err.errno
    elif isinstance(err, OSError):
        msg = f"{err.strerror or err}" + (f": {err.filename}" if err.filename else "")
        errno = err.errno or 0
    else:
        msg, errno = f"internal error: {type(err).__name__}: {err}", 0
    try:
        sock.send(ERROR + b" " + jsonfast.dumps({"error": msg, "errno": errno}).encode())
    except OSError:
        pass


def raise_child_error(message: bytes) -> None:
    data = jsonfast.loads(message[len(ERROR) + 1 :])
    raise PyociError(data.get("error", "unknown error"), data.get("errno", 0))


# --- stage 1 -----------------------------------------------------------------------------------
def stage1(plan: InitPlan, sock: socket.socket) -> None:
    """C1: namespaces, then fork the init and report its pid. Never returns."""
    code = 1
    try:
        sc.bind()  # ctypes, now: still in the host's mount namespace (see syscalls.py)
        sc.set_process_name("pyoci:[1:C1]")
        sc.prctl(sc.PR_SET_PDEATHSIG, signal.SIGKILL)
        go = sock.recv(1 << 20)
        if not go.startswith(GO):
            os._exit(1)
        if go[len(GO) :]:  # the cgroup2 device program, compiled by the parent
            from pyoci.linux import resources

            resources.install_bpf(plan.cgroup_v2, go[len(GO) :], "linux.resources.devices")
        ns = plan.ns
        # Into the cgroups first, while still the host's root in the host's namespaces. The
        # cgroup2 directory (an fd: later lookups would resolve in the container's namespaces)
        # is left to the init's birth (clone3, no migration lock) unless a user or a joined
        # cgroup namespace is next (pyoci.linux.cgroupjoin).
        field = "linux.cgroupsPath"
        v2_fd = cgroupjoin.open_dir(plan.cgroup_v2, field)
        early = ns.user_fd is not None or ns.new_user or ns.joins("cgroup")
        cgroupjoin.join_self(plan.cgroup_v1, v2_fd if early else None, field, plan.cgroup_v2)
        birth_fd = None if early else v2_fd
        if ns.user_fd is not None:
            sc.setns(ns.user_fd, sc.CLONE_NEWUSER)
        elif ns.new_user:
            sc.unshare(sc.CLONE_NEWUSER)
            sock.send(USERNS_READY)
            if sock.recv(64) != MAPPED:
                os._exit(1)
        if ns.user_fd is not None or ns.new_user:
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
            # The id change cleared "dumpable", which makes /proc/self/* root-owned on the host,
            # i.e. unreachable from this user namespace (timens_offsets, fds after the pivot).
            sc.prctl(sc.PR_SET_DUMPABLE, 1)
        namespaces.join_and_unshare(ns)
        pid, born_in_v2 = cgroupjoin.fork_into(birth_fd, field, plan.cgroup_v2 or "")
        if pid == 0:
            init(plan, sock, v2_fd, join_v2=birth_fd is not None and not born_in_v2)
        sock.send(PID + b" %d" % pid)
        code = 0
    except BaseException as err:  # noqa: BLE001 - everything is reported, then we exit
        send_error(sock, err)
    os._exit(code)


# --- stage 2: the container's init -------------------------------------------------------------
def init(
    plan: InitPlan, sock: socket.socket, cgroup_v2_fd: int | None = None, join_v2: bool = False
) -> None:
    """C2: set the container up as one straight line, report READY, wait for start, exec.
    `cgroup_v2_fd`: stage 1's fd of the cgroup2 directory, to move into with `join_v2` (stage
    1 could not give birth to us there), and to close in any case: an init that stays (--init)
    must not hold a host directory the container could reach through /proc/1/fd."""
    code, ready = 1, False
    try:
        sc.set_process_name("pyoci:[2:INIT]")
        if cgroup_v2_fd is not None:
            if join_v2:  # the kernel's slower way (pyoci.linux.cgroupjoin)
                cgroupjoin.join_self([], cgroup_v2_fd, "linux.cgroupsPath", plan.cgroup_v2 or "")
            os.close(cgroup_v2_fd)
        if plan.ns.new_cgroup:
            # Only now, inside the container's cgroups: a cgroup namespace is rooted at the
            # cgroups of the process that creates it.
            namespaces.unshare_cgroup()
        # Until start, TERM/INT/HUP end the waiting init (as runc's does): as PID 1 without a
        # handler it would never see them. Defaults are restored before the exec.
        for sig in _WAIT_SIGNALS:
            signal.signal(sig, _exit_on_signal)
        fifo_fd, exec_path = setup_container(plan, sock)
        sock.send(READY)
        sock.close()
        ready = True
        wait_for_start(plan, fifo_fd)
        for sig in _RESET_SIGNALS:
            signal.signal(sig, signal.SIG_DFL)
        finish_and_exec(plan, exec_path)
    except BaseException as err:  # noqa: BLE001
        if not ready:
            send_error(sock, err)
        elif isinstance(err, PyociError | OSError):
            # After READY nobody listens on the socket: say it where the container's output
            # goes, with the exit codes a shell uses for "not found" and "not executable".
            msg = err.msg if isinstance(err, PyociError) else f"{err.strerror or err}"
            os.write(2, f"pyoci: {msg}\n".encode())
            code = 126 if err.errno == 13 else 127 if err.errno == 2 else 1
    os._exit(code)


def setup_container(plan: InitPlan, sock: socket.socket) -> tuple[int, str | None]:
    """Everything up to "ready"; returns the exec.fifo fd and the resolved executable."""
    spec = plan.spec
    # The fifo's directory is on the host: the parent opened it for us (a user namespace's
    # root may not be able to reach it), and the fd stays valid across the pivot.
    state_fd = plan.state_fd
    rootfs.prepare(spec.root_path, spec.rootfs_propagation)
    root_fd = os.open(spec.root_path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    for op in plan.mount_ops:
        mounts.do_mount(root_fd, op)
    for op in plan.device_ops:
        devices.create_device(root_fd, op, bind_from_host=plan.in_user_ns)
    if not plan.dev_bind_mounted:
        devices.create_symlinks(root_fd, with_ptmx=plan.has_devpts)
    if spec.process is not None:
        # A missing cwd is created (as runc does), before root.readonly can forbid it.
        try:
            os.close(make_in_root(root_fd, spec.process.cwd))
        except OSError as err:
            raise PyociError(
                f"process.cwd: {spec.process.cwd}: {err.strerror.lower()}", err.errno
            ) from None
    os.close(root_fd)
    if plan.runs_hooks:
        # createRuntime (and prestart) run in the runtime's namespaces, by the parent, after
        # the environment exists and before the pivot; then createContainer, here.
        sock.send(HOOKS)
        answer = sock.recv(1 << 20)
        if not answer.startswith(HOOKS_DONE):
            if answer.startswith(ERROR):
                os._exit(1)  # the parent reported its hook failure itself
            raise PyociError("create: the runtime did not answer the hooks handshake")
        plan.hook_state = jsonfast.loads(answer[len(HOOKS_DONE) + 1 :])
        from pyoci import hooks  # loaded by InitPlan

        hooks.run_hooks("createContainer", spec.hooks, plan.hook_state)
    if plan.no_pivot:
        rootfs.move_root(spec.root_path)
    else:
        rootfs.pivot(spec.root_path)
    rootfs.set_rootfs_propagation(spec.rootfs_propagation)
    if spec.process is not None and spec.process.terminal:
        from pyoci.linux import console  # loaded by InitPlan

        console.setup_terminal(plan.console_fd, spec.process.console_size)
    if spec.hostname:
        _sethostname(spec.hostname)
    if spec.domainname:
        try:
            sc.setdomainname(spec.domainname)
        except OSError as err:
            raise PyociError(f"domainname: {err.strerror.lower()}", err.errno) from None
    for field, path, value in plan.sysctl:
        _write_file(path, value, field)
    if plan.loopback:
        _loopback_up()
    rootfs.mask_paths(spec.masked_paths)
    rootfs.readonly_paths(spec.readonly_paths)
    if spec.root_readonly:
        rootfs.readonly_root()
    if plan.personality is not None:
        from pyoci.linux import sched  # loaded by InitPlan

        sched.set_personality(plan.personality)
    exec_path = None
    process = spec.process
    if process is not None:
        if process.oom_score_adj is not None:
            _write_file(
                "/proc/self/oom_score_adj", str(process.oom_score_adj), "process.oomScoreAdj"
            )
        _set_rlimits(process)
        if plan.io_priority is not None or plan.scheduler is not None:
            from pyoci.linux import sched  # loaded by InitPlan

            if plan.io_priority is not None:
                sched.set_io_priority(plan.io_priority)
            if plan.scheduler is not None:
                sched.set_scheduler(plan.scheduler)
        if process.user.umask is not None:
            os.umask(process.user.umask)
        _chdir(process.cwd)
        exec_path = lookup_executable(process.args[0], plan.env.get("PATH"))
    return state_fd, exec_path


def wait_for_start(plan: InitPlan, state_fd: int) -> None:
    """Open exec.fifo for writing: blocks until `start` opens it for reading. Then run the
    startContainer hooks and write the byte `start` waits for ("0"), or the error, so `start`
    itself reports a failed hook. Reopening by name through the state dir fd works after the
    pivot."""
    fd = os.open("exec.fifo", os.O_WRONLY | os.O_CLOEXEC, dir_fd=state_fd)
    os.close(state_fd)
    try:
        if plan.spec.hooks.get("startContainer"):
            from pyoci import hooks  # loaded by InitPlan

            hooks.run_hooks("startContainer", plan.spec.hooks, plan.hook_state)
    except PyociError as err:
        os.write(fd, b"E" + err.msg.encode())
        os.close(fd)
        os._exit(1)  # the spec: a failed startContainer hook stops the container
    os.write(fd, b"0")
    os.close(fd)


def finish_and_exec(plan: InitPlan, exec_path: str | None) -> None:
    """After start: user, capabilities, no_new_privs, then execve."""
    process = plan.spec.process
    if process is None or exec_path is None:
        # `start` refuses a container without a process; nothing can reach here but a kill.
        os._exit(0)
    load_seccomp_and_drop_privileges(
        plan.seccomp, process, plan.last_cap, plan.in_user_ns, plan.seccomp_sock, plan.hook_state
    )
    if plan.use_init:
        from pyoci.init import fork_and_reap  # loaded by InitPlan

        fork_and_reap(lambda: exec_process(process, exec_path, plan.env, plan.preserve_fds))
    exec_process(process, exec_path, plan.env, plan.preserve_fds)


def load_seccomp_and_drop_privileges(
    seccomp, process, last_cap: int, in_user_ns: bool, notify_fd: int = -1, state=None
) -> None:
    """With no_new_privs the filter goes last (it may forbid the steps before); without it,
    loading needs CAP_SYS_ADMIN, so it goes first, as runc orders them."""
    if seccomp is not None and not process.no_new_privileges:
        seccomp.load(notify_fd, state)
    drop_privileges(process, last_cap, in_user_ns)
    if seccomp is not None and process.no_new_privileges:
        seccomp.load(notify_fd, state)


def drop_privileges(process, last_cap: int, in_user_ns: bool) -> None:
    """Bounding set, then user and groups, then the other capability sets and NNP (shared by
    the init and `exec`)."""
    caps = process.capabilities
    if caps is not None:
        capslib.drop_bounding(caps.get("bounding", []), last_cap)
    user = process.user
    setgroups_allowed = not in_user_ns or _setgroups_allowed()
    capslib.switch_user(user.uid, user.gid, user.additional_gids, setgroups_allowed)
    if caps is not None:
        capslib.set_sets(caps, last_cap)
    if process.no_new_privileges:
        capslib.set_no_new_privs()


def exec_process(process, exec_path: str, env: dict, preserve_fds: int) -> None:
    """cwd, close every fd above stdio and the preserved ones (CVE-2024-21626), execve."""
    _chdir(process.cwd)  # again: the new user may see the cwd differently
    sc.close_range(3 + preserve_fds, flags=sc.CLOSE_RANGE_CLOEXEC)
    sc.reset_signals()
    try:
        os.execve(exec_path, process.args, env)
    except OSError as err:
        raise PyociError(f'exec: "{process.args[0]}": {err.strerror.lower()}', err.errno) from None


# --- helpers of the straight line --------------------------------------------------------------
def _sethostname(name: str) -> None:
    try:
        socket.sethostname(name)
    except OSError as err:
        raise PyociError(f"hostname: {err.strerror.lower()}", err.errno) from None


def _write_file(path: str, value: str, field: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, value.encode())
        finally:
            os.close(fd)
    except OSError as err:
        raise PyociError(f"{field}: writing {path}: {err.strerror.lower()}", err.errno) from None


def _set_rlimits(process) -> None:
    if not process.rlimits:
        return
    import resource  # already loaded by InitPlan

    for i, rl in enumerate(process.rlimits):
        try:
            resource.setrlimit(rl.resource, (rl.soft, rl.hard))
        except (OSError, ValueError) as err:
            reason = err.strerror.lower() if isinstance(err, OSError) and err.strerror else str(err)
            raise PyociError(
                f"process.rlimits[{i}]: {rl.type} soft {rl.soft} hard {rl.hard}: {reason}"
            ) from None


def _chdir(cwd: str) -> None:
    try:
        os.chdir(cwd)
    except FileNotFoundError:
        try:
            os.makedirs(cwd, 0o755, exist_ok=True)  # runc creates a missing cwd
            os.chdir(cwd)
        except OSError as err:
            raise PyociError(f"process.cwd: {cwd}: {err.strerror.lower()}", err.errno) from None
    except OSError as err:
        raise PyociError(f"process.cwd: {cwd}: {err.strerror.lower()}", err.errno) from None


def _setgroups_allowed() -> bool:
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() == "allow"
    except OSError:
        return True


def _loopback_up() -> None:
    """`ip link set lo up` as one SIOCSIFFLAGS ioctl: no netlink library for this."""
    import fcntl
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, 0)
    try:
        req = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(s.fileno(), siocgifflags, req))[1]
        fcntl.ioctl(s.fileno(), siocsifflags, struct.pack("16sh", b"lo", flags | iff_up))
    except OSError as err:
        raise PyociError(
            f"linux.namespaces: bringing up lo in the new network namespace: {err.strerror.lower()}"
        ) from None
    finally:
        s.close()


def lookup_executable(name: str, path_env: str | None) -> str:
    """Find args[0] the way execvp/Go's LookPath do, with the messages docker maps to 127/126."""
    if "/" in name:
        try:
            st = os.stat(name)
        except OSError as err:
            raise PyociError(
                f'exec: "{name}": stat {name}: {err.strerror.lower()}', err.errno
            ) from None
        if not _is_executable(st):
            raise PyociError(f'exec: "{name}": permission denied', 13)
        return name
    for directory in (
        path_env or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    ).split(":"):
        candidate = os.path.join(directory or ".", name)
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        if _is_executable(st):
            return candidate
    raise PyociError(f'exec: "{name}": executable file not found in $PATH', 2)


def _is_executable(st: os.stat_result) -> bool:
    return (st.st_mode & 0o170000) == 0o100000 and bool(st.st_mode & 0o111)
