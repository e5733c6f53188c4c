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

from pyoci import faults, jsonfast
from pyoci.errors import PyociError
from pyoci.linux import caps as capslib
from pyoci.linux import cgroupjoin, devices, exechelper, mounts, namespaces, rootfs
from pyoci.linux import syscalls as sc
from pyoci.linux.paths import make_in_root
from pyoci.state import FIFO_FILE

USERNS_READY = b"USERNS_READY"
HOOKS = b"HOOKS"  # C2 → P: run prestart/createRuntime now; P answers HOOKS_DONE <state json>
HOOKS_DONE = b"HOOKS_DONE"
GO = b"GO"  # P → C1: the cgroup exists, with its limits; + a cgroup2 device program, if any
MAPPED = b"MAPPED"
PID = b"PID"
READY = b"READY"
ERROR = b"ERROR"

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
        # exec.fifo as an O_PATH fd (opened by the parent right before the fork): the waiting
        # process reopens it through /proc/self/fd, so no host directory is held. Without a
        # /proc in the container, the state dir's fd (`state_fd`) is the only way back to it.
        self.fifo_fd = -1
        self.state_fd = -1
        self.has_proc = any(m.destination.rstrip("/") == "/proc" for m in spec.mounts)
        # The sealed pyoci-exec (pyoci.linux.exechelper): the only program the init execs.
        self.helper_fd = -1
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
        # With no_new_privs and no listener, pyoci-exec loads the compiled filter itself, just
        # before execve (its fd and flags); otherwise Python loads it.
        self.seccomp_program: tuple[int, int] | None = None
        if spec.linux.get("seccomp"):
            from pyoci.linux import seccompcache

            self.seccomp = seccompcache.compiled(
                spec.linux["seccomp"], os.path.dirname(state_dir.rstrip("/"))
            )
            nnp = spec.process is not None and spec.process.no_new_privileges
            if nnp and not self.seccomp.uses_notify:  # (a listener needs the fd Python sends)
                self.seccomp_program = self.seccomp.export_for_helper()
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
        if self.runs_hooks:
            import select  # noqa: F401  (hooks wait on a pidfd; loaded before the fork)

            from pyoci import hooks  # noqa: F401
        # No mount namespace entry: the runtime's is inherited (runtime-spec), so the mounts
        # are made in the host's, under the rootfs, and the init chroots (pyoci.linux.hostmounts).
        self.host_mount_ns = spec.namespace("mount") is None
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
        # linux.memoryPolicy: checked and packed now (pure Python), set by the init with one
        # syscall (pyoci.linux.mempolicy).
        self.memory_policy = None
        if spec.linux.get("memoryPolicy") is not None:
            from pyoci.linux import mempolicy

            self.memory_policy = mempolicy.plan_memory_policy(spec.linux["memoryPolicy"])
        if process and process.rlimits:
            import resource  # noqa: F401  (loaded now, used after the fork)
        # Who waits on exec.fifo: pyoci-exec (the common case: a small sealed program, no
        # interpreter, no host fd but the fifo), or this Python process when something must
        # run after `start` and before the exec (startContainer hooks), or when there is no
        # /proc to reopen the fifo through.
        self.waits_in_python = (
            process is None or bool(spec.hooks.get("startContainer")) or not self.has_proc
        )
        # Without /proc the fifo is reached through the root-only state dir, so the user
        # switch must wait until after it (errors of that step then reach the container's
        # stderr, not `create`).
        self.drop_after_wait = not self.has_proc
        if process is not None:
            from pyoci.linux import exechelper

            self.helper_fd = exechelper.sealed_copy()

    def keep_fds(self) -> set[int]:
        """Every fd the children need; stage 1 closes all others it inherited from the caller
        (but stdio and the preserved ones) before entering any namespace of the container."""
        fds = {self.fifo_fd, self.state_fd, self.helper_fd, self.seccomp_sock, self.console_fd}
        if self.seccomp_program is not None:
            fds.add(self.seccomp_program[0])
        fds.update(fd for _, fd in self.ns.join)
        if self.ns.user_fd is not None:
            fds.add(self.ns.user_fd)
        fds.update(op.tree_fd for op in self.mount_ops)
        fds.discard(-1)
        return fds

    def close(self) -> None:
        """The parent's copies of the fds handed to the children."""
        self.ns.close()
        for op in self.mount_ops:
            if op.tree_fd >= 0:
                os.close(op.tree_fd)
                op.tree_fd = -1
        for name in ("state_fd", "fifo_fd", "helper_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)
        if self.seccomp_sock >= 0:
            os.close(self.seccomp_sock)
            self.seccomp_sock = -1
        if self.seccomp_program is not None:
            os.close(self.seccomp_program[0])
            self.seccomp_program = None
        if self.own_console_fd:
            os.close(self.console_fd)
            self.own_console_fd = False


def _plan_sysctl(spec) -> list[tuple[str, str, str]]:
    """(field, /proc/sys path, value); the rules (pyoci.rules.sysctl_problems) were checked
    when the config was parsed."""
    return [
        (f"linux.sysctl.{key}", "/proc/sys/" + key.replace(".", "/"), value)
        for key, value in spec.sysctl.items()
    ]


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
        faults.point("child:ERROR")  # fail: the message is lost, as if the socket broke
        sock.send(ERROR + b" " + jsonfast.dumps({"error": msg, "errno": errno}).encode())
    except (OSError, PyociError):
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
        # Before anything of the container exists: nothing of ours may be reached through
        # /proc/PID (exe, fd, mem) from inside (inherited by the init until its execve), and
        # no fd of the caller's but stdio and the preserved ones may come along.
        sc.prctl(sc.PR_SET_DUMPABLE, 0)
        close_inherited_fds(3 + plan.preserve_fds, plan.keep_fds() | {sock.fileno()})
        go = sock.recv(1 << 20)  # errors before GO would race the parent's send of it
        if not go.startswith(GO):
            os._exit(1)
        faults.point("stage1:GO")
        process = plan.spec.process
        if process is not None and process.oom_score_adj is not None:
            # Through the host's /proc, before any namespace (the container's /proc could be
            # anything by then); the init inherits it.
            _write_file(
                "/proc/self/oom_score_adj", str(process.oom_score_adj), "process.oomScoreAdj"
            )
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
        if (ns.user_fd is not None or ns.new_user) and os.geteuid() == 0:
            # Bind sources are the host's: look them up as the host's root, here, not from
            # inside the user namespace (whose root may not search their parents). Rootless,
            # the namespace's root is the user itself: it sees what the user sees.
            mounts.clone_bind_sources(plan.mount_ops)
        if ns.user_fd is not None:
            sc.setns(ns.user_fd, sc.CLONE_NEWUSER)
        elif ns.new_user:
            sc.unshare(sc.CLONE_NEWUSER)
            # Dumpable while in a user namespace's setup (as runc's nsexec): the parent writes
            # our uid_map, and /proc/self/timens_offsets must be ours, not the host root's.
            # This process stays outside the container's pid namespace; the init is forked
            # only after dumpable is cleared again below.
            sc.prctl(sc.PR_SET_DUMPABLE, 1)
            faults.point("stage1:USERNS_READY")
            sock.send(USERNS_READY)
            if sock.recv(64) != MAPPED:
                os._exit(1)
            faults.point("stage1:MAPPED")
        if ns.user_fd is not None or ns.new_user:
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
            sc.prctl(sc.PR_SET_DUMPABLE, 1)  # the id change cleared it (see above)
        namespaces.join_and_unshare(ns)
        faults.point("stage1:namespaces")
        ns.close()  # joined: the init must not inherit fds of the host's namespaces
        sc.prctl(sc.PR_SET_DUMPABLE, 0)
        pid, born_in_v2 = cgroupjoin.fork_into(birth_fd, field, plan.cgroup_v2 or "")
        if pid == 0:
            init(plan, sock, v2_fd, join_v2=birth_fd is not None and not born_in_v2)
        faults.point("stage1:PID")
        sock.send(PID + b" %d" % pid)
        code = 0
    except BaseException as err:  # noqa: BLE001 - everything is reported, then we exit
        send_error(sock, err)
    os._exit(code)


def close_inherited_fds(first: int, keep: set[int]) -> None:
    """Close every fd from `first` up that is not in `keep` (read from the host's /proc, so
    call it before entering the container's mount namespace)."""
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd >= first and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # the listing's own fd, already gone


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
        faults.point("init:start")
        # A session of its own, as runc's init: the caller's process group is outside the
        # container (getpgrp() would be 0 inside a new pid namespace).
        os.setsid()
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
        exec_path = setup_container(plan, sock)
        if exec_path is not None and not plan.drop_after_wait:
            # Every step that can fail happens before READY, so `create` reports it.
            prepare_exec(plan)
        faults.point("init:READY")
        sock.send(READY)
        sock.close()
        ready = True
        if plan.waits_in_python:
            wait_for_start(plan)
            if exec_path is not None and plan.drop_after_wait:
                prepare_exec(plan)
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


def setup_container(plan: InitPlan, sock: socket.socket) -> str | None:
    """The container's environment, up to the user switch; returns the resolved executable."""
    spec = plan.spec
    if plan.host_mount_ns:
        rootfs.prepare_in_host_namespace(spec.root_path)
    else:
        rootfs.prepare(spec.root_path, spec.rootfs_propagation)
    root_fd = os.open(spec.root_path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    for i, op in enumerate(plan.mount_ops):
        faults.point(f"mount:{i}")
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
        faults.point("init:HOOKS")
        sock.send(HOOKS)
        answer = sock.recv(1 << 20)
        if not answer.startswith(HOOKS_DONE):
            if answer.startswith(ERROR):
                os._exit(1)  # the parent reported its hook failure itself
            raise PyociError("create: the runtime did not answer the hooks handshake")
        plan.hook_state = jsonfast.loads(answer[len(HOOKS_DONE) + 1 :])
        faults.point("init:HOOKS_DONE")
        from pyoci import hooks  # loaded by InitPlan

        hooks.run_hooks(
            "createContainer", spec.hooks, plan.hook_state, exec_helper_fd=plan.helper_fd
        )
    faults.point("init:pivot")
    if plan.host_mount_ns:
        rootfs.chroot(spec.root_path)  # pivot_root would move the host's root
    elif plan.no_pivot:
        rootfs.move_root(spec.root_path)
    else:
        rootfs.pivot(spec.root_path)
    if not plan.host_mount_ns:
        rootfs.set_rootfs_propagation(spec.rootfs_propagation)
    if spec.process is not None and spec.process.terminal:
        from pyoci.linux import console  # loaded by InitPlan

        console.setup_terminal(plan.console_fd, spec.process.console_size)
        plan.console_fd = -1  # closed by setup_terminal once the pty master is sent
        _bind_console()
    if spec.hostname:
        _sethostname(spec.hostname)
    if spec.domainname:
        try:
            sc.setdomainname(spec.domainname)
        except OSError as err:
            raise PyociError(f"domainname: {err.strerror.lower()}", err.errno) from None
    if plan.sysctl:
        rootfs.write_sysctls(plan.sysctl)
    if plan.loopback:
        _loopback_up()
    rootfs.mask_paths(spec.masked_paths)
    rootfs.readonly_paths(spec.readonly_paths)
    if spec.root_readonly:
        rootfs.readonly_root()
    if plan.personality is not None:
        from pyoci.linux import sched  # loaded by InitPlan

        sched.set_personality(plan.personality)
    if plan.memory_policy is not None:
        # Before any seccomp filter (docker's profile denies set_mempolicy); kept across the
        # execve and inherited by every process the container's program starts.
        from pyoci.linux import mempolicy  # loaded by InitPlan

        mempolicy.apply_memory_policy(plan.memory_policy)
    exec_path = None
    process = spec.process
    if process is not None:
        _set_rlimits(process)
        if plan.io_priority is not None or plan.scheduler is not None:
            from pyoci.linux import sched  # loaded by InitPlan

            if plan.io_priority is not None:
                sched.set_io_priority(plan.io_priority)
            if plan.scheduler is not None:
                sched.set_scheduler(plan.scheduler)
        if process.user.umask is not None:
            os.umask(process.user.umask)
        chdir_in_root(process.cwd)
        exec_path = lookup_executable(process.args[0], plan.env.get("PATH"))
        if "HOME" not in plan.env:
            plan.env["HOME"] = home_of(process.user.uid)
    return exec_path


def prepare_exec(plan: InitPlan) -> None:
    """The process's credentials, after the environment is ready and before READY."""
    load_seccomp_and_drop_privileges(
        plan.seccomp,
        plan.spec.process,
        plan.last_cap,
        plan.in_user_ns,
        plan.preserve_fds,
        plan.seccomp_sock,
        plan.hook_state,
        final_filter=False,
    )


def wait_for_start(plan: InitPlan) -> None:
    """Open exec.fifo for writing: blocks until `start` opens it for reading. Then run the
    startContainer hooks and write the byte `start` waits for ("0"), or the error, so `start`
    itself reports a failed hook. Only when something must run in this process between `start`
    and the exec (`InitPlan.waits_in_python`); otherwise pyoci-exec waits."""
    if plan.has_proc:  # reopened through our own fd: no host directory is held
        fd = os.open(f"/proc/self/fd/{plan.fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    else:
        fd = os.open(FIFO_FILE, os.O_WRONLY | os.O_CLOEXEC, dir_fd=plan.state_fd)
        os.close(plan.state_fd)
        plan.state_fd = -1
    os.close(plan.fifo_fd)
    plan.fifo_fd = -1
    try:
        if plan.spec.hooks.get("startContainer"):
            from pyoci import hooks  # loaded by InitPlan

            hooks.run_hooks(
                "startContainer", plan.spec.hooks, plan.hook_state, exec_helper_fd=plan.helper_fd
            )
    except PyociError as err:
        os.write(fd, b"E" + err.msg.encode())
        os.close(fd)
        os._exit(1)  # the spec: a failed startContainer hook stops the container
    faults.point("init:start-wait")
    os.write(fd, b"0")
    os.close(fd)


def finish_and_exec(plan: InitPlan, exec_path: str | None) -> None:
    """After READY: the last seccomp filter, then exec through pyoci-exec, which waits for
    `start` itself unless this process already did."""
    process = plan.spec.process
    if process is None or exec_path is None:
        # `start` refuses a container without a process; nothing can reach here but a kill.
        os._exit(0)
    if plan.seccomp is not None and process.no_new_privileges and plan.seccomp_program is None:
        plan.seccomp.load(plan.seccomp_sock, plan.hook_state)  # a listener: from Python

    sc.reset_signals()  # Python ignores SIGPIPE and SIGXFSZ: execve would keep that
    exechelper.exec_through(
        plan.helper_fd,
        exec_path,
        process.args,
        plan.env,
        -1 if plan.waits_in_python else plan.fifo_fd,
        plan.seccomp_program,
        init=plan.use_init,  # pyoci-exec stays PID 1 and reaps
    )


def load_seccomp_and_drop_privileges(
    seccomp,
    process,
    last_cap: int,
    in_user_ns: bool,
    preserve_fds: int,
    notify_fd: int = -1,
    state=None,
    final_filter: bool = True,
) -> None:
    """Close the fds (marked close-on-exec) before any filter, which may deny close_range;
    without no_new_privs the filter goes before the capability drop (loading needs
    CAP_SYS_ADMIN), as runc orders them; with it, last (`final_filter`), or left to the
    caller to load later. Then the cwd again, as the new user (shared by the init and exec)."""
    sc.close_range(3 + preserve_fds, flags=sc.CLOSE_RANGE_CLOEXEC)
    if seccomp is not None and not process.no_new_privileges:
        seccomp.load(notify_fd, state)
    drop_privileges(process, last_cap, in_user_ns)
    if seccomp is not None and process.no_new_privileges and final_filter:
        seccomp.load(notify_fd, state)
    chdir_in_root(process.cwd)  # again: the new user may see the cwd differently


def drop_privileges(process, last_cap: int, in_user_ns: bool) -> None:
    """Bounding set, then user and groups, then the other capability sets and NNP (shared by
    the init and `exec`). An absent `capabilities` object, or an absent set in it, is empty:
    podman and docker omit empty arrays, so `--cap-drop ALL` arrives as nothing at all."""
    caps = process.capabilities or {}
    capslib.drop_bounding(caps.get("bounding", []), last_cap)
    user = process.user
    setgroups_allowed = not in_user_ns or _setgroups_allowed()
    capslib.switch_user(user.uid, user.gid, user.additional_gids, setgroups_allowed)
    capslib.set_sets(caps, last_cap)
    if process.no_new_privileges:
        capslib.set_no_new_privs()


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


def chdir_in_root(cwd: str) -> None:
    """chdir to `cwd` resolved inside the process's root (no magic link such as
    /proc/self/fd/N, no symlink out), created if missing (as runc); then check the kernel
    agrees it is under the root."""
    root_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = make_in_root(root_fd, cwd)
        try:
            os.fchdir(fd)
        finally:
            os.close(fd)
        where = os.getcwd()  # ENOENT when the kernel says "(unreachable)"
    except FileNotFoundError:
        raise PyociError(f"process.cwd: {cwd}: outside the container's root", 2) from None
    except OSError as err:
        raise PyociError(f"process.cwd: {cwd}: {err.strerror.lower()}", err.errno) from None
    finally:
        os.close(root_fd)
    if not where.startswith("/"):
        raise PyociError(f"process.cwd: {cwd}: outside the container's root", 2)


def _bind_console() -> None:
    """config-linux.md, Default Devices: "/dev/console is set up if terminal is enabled in
    the config by bind mounting the pseudoterminal pty to /dev/console" (our stdio by now)."""
    root_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        pty = os.ttyname(0)
        fd = make_in_root(root_fd, "/dev/console", is_file=True)
        try:
            sc.mount(pty, f"/proc/self/fd/{fd}", None, sc.MS_BIND, None)
        finally:
            os.close(fd)
    except OSError as err:
        raise PyociError(
            f"process.terminal: /dev/console: {err.strerror.lower()}", err.errno
        ) from None
    finally:
        os.close(root_fd)


def home_of(uid: int) -> str:
    """HOME for a process.env without one, as runc and crun set it: the directory of `uid`'s
    entry in the container's /etc/passwd, else "/". Read without blocking or following it
    anywhere odd: the file is the image's."""
    try:
        fd = os.open("/etc/passwd", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return "/"
    try:
        if (os.fstat(fd).st_mode & 0o170000) != 0o100000:
            return "/"
        data = os.read(fd, 1 << 20)
    except OSError:
        return "/"
    finally:
        os.close(fd)
    wanted = str(uid)
    for line in data.decode(errors="replace").splitlines():
        fields = line.split(":")
        if len(fields) >= 7 and fields[2] == wanted:
            return fields[5] or "/"
    return "/"


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
