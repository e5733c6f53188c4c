"""The container's init (C2, "pyoci:[2:INIT]"): set the container up as one straight line,
report READY, wait for `start`, exec the program through the sealed helper.

Separate from stage 1 (`pyoci.stage1`, which forks it) and from the plan (`pyoci.plan`, made
by the parent) because this is the one process that enters the container: from its first line
it is PID 1 of the container's pid namespace, and after the pivot it must not import anything
(a lazy import would read the *container's* files), so every module it needs is loaded by the
plan. The process attributes it shares with `exec` are in `pyoci.procattrs`. Its body is one
`try` whose failure is sent as ERROR (`pyoci.channel`) and ends in `os._exit`, so it never
returns into the parent's code.
"""

from __future__ import annotations

import _signal as signal  # `signal` and `socket` import enum: ~3 ms per command
import _socket as socket
import os

from pyoci import faults, jsonfast, procattrs
from pyoci.channel import ERROR, HOOKS, HOOKS_DONE, READY, send_error
from pyoci.errors import PyociError
from pyoci.linux import cgroupjoin, devices, mounts, namespaces, rootfs
from pyoci.linux import syscalls as sc
from pyoci.linux.paths import make_in_root
from pyoci.plan import InitPlan
from pyoci.state import FIFO_FILE

_WAIT_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _exit_on_signal(signum: int, _frame: object) -> None:
    os._exit(128 + signum)


def init(
    plan: InitPlan, sock: socket.socket, cgroup_v2_fd: int | None = None, join_v2: bool = False
) -> None:
    """C2: set the container up as one straight line, report READY, wait for start, exec.
    `cgroup_v2_fd`: stage 1's fd of the cgroup2 directory, to move into with `join_v2` (stage
    1 could not give birth to us there), and to close in any case: an init that stays (--init)
    must not hold a host directory the container could reach through /proc/1/fd."""
    from pyoci.linux import sysbind  # ctypes: loaded in the child stages only

    code, ready = 1, False
    try:
        sysbind.set_process_name("pyoci:[2:INIT]")
        faults.point("init:start")
        # A session of its own, as runc's init: the caller's process group is outside the
        # container (getpgrp() would be 0 inside a new pid namespace).
        os.setsid()
        _enter_cgroups(plan, cgroup_v2_fd, join_v2)
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


def _enter_cgroups(plan: InitPlan, cgroup_v2_fd: int | None, join_v2: bool) -> None:
    """Into the cgroup2 directory if stage 1 could not give birth to us there (the kernel's
    slower way, pyoci.linux.cgroupjoin); then, inside the container's cgroups, a new cgroup
    namespace (rooted at the cgroups of the process that creates it)."""
    if cgroup_v2_fd is not None:
        if join_v2:
            cgroupjoin.join_self([], cgroup_v2_fd, "linux.cgroupsPath", plan.cgroup_v2 or "")
        os.close(cgroup_v2_fd)
    if plan.ns.new_cgroup:
        namespaces.unshare_cgroup()


def setup_container(plan: InitPlan, sock: socket.socket) -> str | None:
    """The container's environment, up to the user switch, in the order runc sets it up;
    returns the resolved executable (None without a process)."""
    _prepare_rootfs(plan)
    _populate_rootfs(plan)
    _create_hooks(plan, sock)
    _enter_rootfs(plan)
    _attach_terminal(plan)
    _set_names(plan.spec)
    _set_kernel_parameters(plan)
    _protect_paths(plan.spec)
    _set_process_policies(plan)
    return _settle_process(plan)


def _prepare_rootfs(plan: InitPlan) -> None:
    """The rootfs a mount point of its own, with the propagation asked for (without a mount
    namespace: in the host's, under the rootfs; pyoci.linux.hostmounts)."""
    spec = plan.spec
    if plan.host_mount_ns:
        rootfs.prepare_in_host_namespace(spec.root_path)
    else:
        rootfs.prepare(spec.root_path, spec.rootfs_propagation)


def _populate_rootfs(plan: InitPlan) -> None:
    """The mounts, the device nodes and /dev's links, and a missing cwd, all resolved under
    the rootfs (before the pivot, so root.readonly cannot forbid them)."""
    spec = plan.spec
    root_fd = os.open(spec.root_path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
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
    finally:
        os.close(root_fd)


def _create_hooks(plan: InitPlan, sock: socket.socket) -> None:
    """The HOOKS stop: createRuntime (and prestart) run in the runtime's namespaces, by the
    parent, after the environment exists and before the pivot (the parent attaches the
    network then too); then createContainer, here."""
    if not plan.runs_hooks:
        return
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
        "createContainer", plan.spec.hooks, plan.hook_state, exec_helper_fd=plan.helper_fd
    )


def _enter_rootfs(plan: InitPlan) -> None:
    """pivot_root (or MS_MOVE with --no-pivot, or chroot without a mount namespace: pivot_root
    would move the host's root), then the rootfs propagation."""
    spec = plan.spec
    faults.point("init:pivot")
    if plan.host_mount_ns:
        rootfs.chroot(spec.root_path)
        return
    if plan.no_pivot:
        rootfs.move_root(spec.root_path)
    else:
        rootfs.pivot(spec.root_path)
    rootfs.set_rootfs_propagation(spec.rootfs_propagation)


def _attach_terminal(plan: InitPlan) -> None:
    """A new pty as stdio, its master sent to the console socket, bound at /dev/console."""
    process = plan.spec.process
    if process is None or not process.terminal:
        return
    from pyoci.linux import console  # loaded by InitPlan

    console.setup_terminal(plan.console_fd, process.console_size)
    plan.console_fd = -1  # closed by setup_terminal once the pty master is sent
    _bind_console()


def _set_names(spec) -> None:
    from pyoci.linux import sysbind  # ctypes: loaded in the child stages only

    if spec.hostname:
        _sethostname(spec.hostname)
    if spec.domainname:
        try:
            sysbind.setdomainname(spec.domainname)
        except OSError as err:
            raise PyociError(f"domainname: {err.strerror.lower()}", err.errno) from None


def _set_kernel_parameters(plan: InitPlan) -> None:
    """linux.sysctl, and lo up in a new network namespace."""
    if plan.sysctl:
        rootfs.write_sysctls(plan.sysctl)
    if plan.loopback:
        _loopback_up()


def _protect_paths(spec) -> None:
    """maskedPaths, readonlyPaths, then root.readonly."""
    rootfs.mask_paths(spec.masked_paths)
    rootfs.readonly_paths(spec.readonly_paths)
    if spec.root_readonly:
        rootfs.readonly_root()


def _set_process_policies(plan: InitPlan) -> None:
    """linux.personality and linux.memoryPolicy: before any seccomp filter (docker's profile
    denies set_mempolicy); kept across the execve and inherited by every process the
    container's program starts."""
    if plan.personality is not None:
        from pyoci.linux import sched  # loaded by InitPlan

        sched.set_personality(plan.personality)
    if plan.memory_policy is not None:
        from pyoci.linux import mempolicy  # loaded by InitPlan

        mempolicy.apply_memory_policy(plan.memory_policy)


def _settle_process(plan: InitPlan) -> str | None:
    """As root, before the user switch: rlimits, I/O priority and scheduler, then umask, cwd,
    HOME and args[0] (pyoci.procattrs, as `exec` sets them)."""
    process = plan.spec.process
    if process is None:
        return None
    procattrs.set_rlimits(process)
    if plan.io_priority is not None or plan.scheduler is not None:
        from pyoci.linux import sched  # loaded by InitPlan

        sched.apply_process(plan.io_priority, plan.scheduler)
    return procattrs.enter_cwd_and_find(process, plan.env)


def prepare_exec(plan: InitPlan) -> None:
    """The process's credentials, after the environment is ready and before READY."""
    procattrs.load_seccomp_and_drop_privileges(
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
    procattrs.exec_program(
        plan.helper_fd,
        exec_path,
        process,
        plan.env,
        -1 if plan.waits_in_python else plan.fifo_fd,
        plan.seccomp_program,
        init=plan.use_init,  # pyoci-exec stays PID 1 and reaps
    )


# --- helpers of the straight line --------------------------------------------------------------
def _sethostname(name: str) -> None:
    try:
        socket.sethostname(name)
    except OSError as err:
        raise PyociError(f"hostname: {err.strerror.lower()}", err.errno) from None


def _bind_console() -> None:
    """config-linux.md, Default Devices: "/dev/console is set up if terminal is enabled in
    the config by bind mounting the pseudoterminal pty to /dev/console" (our stdio by now)."""
    from pyoci.linux import sysbind  # ctypes: loaded in the child stages only

    root_fd = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        pty = os.ttyname(0)
        fd = make_in_root(root_fd, "/dev/console", is_file=True)
        try:
            sysbind.mount(pty, f"/proc/self/fd/{fd}", None, sc.MS_BIND, None)
        finally:
            os.close(fd)
    except OSError as err:
        raise PyociError(
            f"process.terminal: /dev/console: {err.strerror.lower()}", err.errno
        ) from None
    finally:
        os.close(root_fd)


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
