"""`pyoci exec`: start another process inside a running container.

The same two-stage shape as `create` (see `pyoci.channel`): the parent opens every namespace
of the container's init (`/proc/PID/ns/*`, those that differ from ours) before forking; stage 1
joins them, user namespace first and mount namespace last (setns into a mount namespace also
moves the root and cwd to the container's root, so no chroot is needed); the pid and time
namespaces only apply to children, hence the second fork. The new process gets the container's
process settings (rlimits, user, capabilities, no_new_privs) unless the exec overrides them,
and reports a failure over the socket; pyoci-exec, its last step, says EXEC there right before
the program's execve, which closes the socket (CLOEXEC): EOF after EXEC is how the parent knows
the program started (EOF without it, the process died before: not started).
"""

from __future__ import annotations

import _socket as socket
import os

from pyoci import faults, jsonfast, procattrs
from pyoci.channel import ERROR, PID, raise_child_error, send_error
from pyoci.errors import PyociError
from pyoci.linux import cgroupjoin
from pyoci.options import ExecOptions
from pyoci.spec import Process

# setns order: user first (it grants the rights for the rest), mount last.
NS_ORDER = ("user", "ipc", "uts", "net", "pid", "cgroup", "time", "mnt")


def build_process(base: dict, args: list[str], opts: ExecOptions) -> Process:
    """The exec'd process: `--process FILE` as given, else the container's process with args
    and the overrides (cwd, env, user, caps, no-new-privs, labels)."""
    process_file = opts.process_file
    if process_file:
        try:
            with open(process_file, "rb") as f:
                raw = jsonfast.loads(f.read())
        except OSError as err:
            raise PyociError(f"--process: {process_file}: {err.strerror.lower()}") from None
        except ValueError as err:
            raise PyociError(f"--process: {process_file}: invalid JSON: {err}") from None
        if not isinstance(raw, dict):
            raise PyociError(f"--process: {process_file}: must hold a JSON object")
        return Process(raw, "process")
    if not args:
        raise PyociError("exec: no command given (pass CMD [ARG...] or --process FILE)")
    raw = dict(base)
    raw["args"] = list(args)
    raw["terminal"] = opts.tty
    if opts.cwd:
        raw["cwd"] = opts.cwd
    if opts.env:
        raw["env"] = [*raw.get("env", []), *opts.env]
    if opts.user:
        uid, _, gid = opts.user.partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raw["user"] = dict(raw.get("user") or {}, username=opts.user)
        else:
            raw["user"] = {"uid": int(uid), "gid": int(gid) if gid else 0}
    if opts.caps:
        caps = {k: list(v) for k, v in (raw.get("capabilities") or {}).items()}
        for cap in opts.caps:
            for set_name in ("bounding", "effective", "permitted"):
                caps.setdefault(set_name, [])
                if cap not in caps[set_name]:
                    caps[set_name].append(cap)
        raw["capabilities"] = caps
    if opts.no_new_privs:
        raw["noNewPrivileges"] = True
    # As runc: the flags set the process's labels, which Process (pyoci.rules) then refuses
    # where this host cannot apply them, as it refuses them in config.json.
    if opts.apparmor:
        raw["apparmorProfile"] = opts.apparmor
    if opts.process_label:
        raw["selinuxLabel"] = opts.process_label
    try:
        return Process(raw, "process")
    except PyociError as err:
        if opts.caps and "capabilities" in err.msg:
            raise PyociError(f"--cap: {err.msg.split(': ', 1)[-1]}") from None
        raise


def lookup_user(name: str) -> tuple[int, int, list[int]]:
    """uid, gid and supplementary groups of `name` in the container's /etc/passwd and
    /etc/group (read after joining its mount namespace)."""
    user, _, group = name.partition(":")
    try:
        with open("/etc/passwd") as f:
            entries = [line.rstrip("\n").split(":") for line in f if line.count(":") >= 6]
    except OSError:
        entries = []
    match = [e for e in entries if e[0] == user or (user.isdigit() and e[2] == user)]
    if not match:
        if user.isdigit():
            return int(user), int(group) if group.isdigit() else 0, []
        raise PyociError(f"--user: unable to find user {user}: no matching entries in passwd file")
    uid, gid = int(match[0][2]), int(match[0][3])
    groups: list[int] = []
    try:
        with open("/etc/group") as f:
            for line in f:
                parts = line.rstrip("\n").split(":")
                if len(parts) >= 4:
                    if group and parts[0] == group:
                        gid = int(parts[2])
                    if match[0][0] in parts[3].split(","):
                        groups.append(int(parts[2]))
    except OSError:
        pass
    if group and group.isdigit():
        gid = int(group)
    return uid, gid, groups


class ExecPlan:
    """Decided in the parent: namespace fds to join, the process, its environment."""

    def __init__(
        self,
        init_pid: int,
        proc: Process,
        preserve_fds: int,
        console_fd: int = -1,
        seccomp: dict | None = None,
        state_root: str | None = None,
        memory_policy: dict | None = None,
        personality: dict | None = None,
    ) -> None:
        from pyoci.linux import affinity, exechelper, mempolicy
        from pyoci.linux import caps as capslib

        # The container's linux.memoryPolicy (set again: this process is no child of the init)
        # and the process's execCPUAffinity (config.md: for exec'd processes, not the init).
        self.memory_policy = mempolicy.plan_memory_policy(memory_policy)
        self.cpu_affinity = affinity.plan_exec_cpu_affinity(proc.raw.get("execCPUAffinity"))
        # The process's ioPriority and scheduler, as for the init, and the container's
        # linux.personality, which runc 1.2 gives exec'd processes too (`uname -m` says i686
        # from every process of a LINUX32 container).
        self.io_priority: int | None = None
        self.scheduler: bytes | None = None
        self.personality: int | None = None
        if personality or proc.raw.get("ioPriority") or proc.raw.get("scheduler"):
            from pyoci.linux import sched  # only then: its ctypes struct costs ~0.6 ms

            self.io_priority, self.scheduler = sched.plan_process(proc.raw)
            self.personality = sched.plan_personality(personality)

        self.console_fd = console_fd
        self.seccomp_program: tuple[int, int] | None = None
        self.seccomp = None
        if seccomp:
            from pyoci.linux import seccompcache

            if seccompcache.uses_notify(seccomp):
                from pyoci.linux.seccomp import SeccompPlan

                self.seccomp = SeccompPlan(seccomp)
                self.seccomp.uses_notify = False  # the container's listener got its fd at create
            else:
                self.seccomp = seccompcache.compiled(seccomp, state_root or "/run/pyoci")
            if proc.no_new_privileges:  # loaded by pyoci-exec, just before execve
                self.seccomp_program = self.seccomp.export_for_helper()
        if proc.terminal:
            import pyoci.linux.console  # noqa: F401  (loaded before the fork)
        self.process = proc
        self.env = proc.env_dict()
        self.preserve_fds = preserve_fds
        self.last_cap = capslib.last_cap()
        self.ns_fds: list[tuple[str, int]] = []
        self.in_user_ns = False
        self.helper_fd = -1
        self.root_fd = -1
        try:
            self.helper_fd = exechelper.sealed_copy()  # see pyoci.linux.exechelper
            for name in NS_ORDER:
                theirs = f"/proc/{init_pid}/ns/{name}"
                try:
                    if os.readlink(theirs) == os.readlink(f"/proc/self/ns/{name}"):
                        continue
                    fd = os.open(theirs, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue  # a namespace type this kernel lacks
                self.ns_fds.append((name, fd))
                if name == "user":
                    self.in_user_ns = True
            if not any(name == "mnt" for name, _ in self.ns_fds):
                # A container without a mount namespace of its own is a chroot in ours: enter
                # its root as its init sees it.
                self.root_fd = os.open(
                    f"/proc/{init_pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
                )
        except BaseException:
            self.close()
            raise
        if proc.rlimits:
            import resource  # noqa: F401  (loaded before the fork)
        from pyoci.linux.cgroupfs import process_cgroup_dirs

        self.cgroup_dirs = process_cgroup_dirs(init_pid)
        # (v1 dirs, cgroup2 dir fd, whether to move into it, its path): set in the child.
        self.cgroup_join: tuple[list[str], int | None, bool, str] | None = None

    def close_namespaces(self) -> None:
        """Stage 1, once joined: stage 2 must not hold the host's namespace fds."""
        for _, fd in self.ns_fds:
            os.close(fd)
        self.ns_fds = []
        if self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1

    def close(self) -> None:
        """The parent's copies, once stage 1 has its own."""
        self.close_namespaces()
        if self.seccomp_program is not None:
            os.close(self.seccomp_program[0])
            self.seccomp_program = None
        if self.helper_fd >= 0:
            os.close(self.helper_fd)
            self.helper_fd = -1


def _stage1(plan: ExecPlan, sock) -> None:
    from pyoci.linux import sysbind
    from pyoci.linux import syscalls as sc

    code = 1
    try:
        sysbind.set_process_name("pyoci:[1:EXEC]")
        faults.point("exec:stage1")
        sysbind.prctl(sc.PR_SET_PDEATHSIG, 9)
        # Before entering anything of the container's: no /proc/PID access to us from inside
        # (kept by stage 2 until its execve), and none of the caller's fds but stdio and the
        # preserved ones (they would be reachable, e.g. as `--cwd /proc/self/fd/N`).
        sysbind.prctl(sc.PR_SET_DUMPABLE, 0)
        keep = {sock.fileno(), plan.helper_fd, plan.console_fd, plan.root_fd}
        keep.update(fd for _, fd in plan.ns_fds)
        if plan.seccomp_program is not None:
            keep.add(plan.seccomp_program[0])
        if plan.cgroup_join is not None and plan.cgroup_join[1] is not None:
            keep.add(plan.cgroup_join[1])
        procattrs.close_inherited_fds(3 + plan.preserve_fds, keep)
        if plan.cgroup_join is not None:  # first: still the host's root, in the host's ns
            v1_dirs, v2_fd, join_v2, v2_dir = plan.cgroup_join
            cgroupjoin.join_self(v1_dirs, v2_fd if join_v2 else None, "exec", v2_dir)
            if v2_fd is not None:
                os.close(v2_fd)  # a host directory: not into the container's namespaces
        for name, fd in plan.ns_fds:
            try:
                sysbind.setns(fd, 0)
            except OSError as err:
                raise PyociError(
                    f"exec: joining the {name} namespace: {err.strerror.lower()}"
                ) from None
        if plan.root_fd >= 0:
            os.fchdir(plan.root_fd)
            os.chroot(".")
        plan.close_namespaces()
        faults.point("exec:namespaces")
        pid = os.fork()
        if pid == 0:
            _stage2(plan, sock)
        faults.point("exec:PID")
        sock.send(PID + b" %d" % pid)
        code = 0
    except BaseException as err:  # noqa: BLE001
        send_error(sock, err)
    os._exit(code)


def _stage2(plan: ExecPlan, sock) -> None:
    try:
        proc = plan.process
        if proc.user.username:
            uid, gid, groups = lookup_user(proc.user.username)
            proc.user.uid, proc.user.gid = uid, gid
            proc.user.additional_gids = proc.user.additional_gids or groups
        os.setsid()  # as the init: the caller's process group is outside the container
        # In the container's cgroups now, before any seccomp filter (either may be denied).
        from pyoci.linux import affinity, mempolicy  # loaded by ExecPlan

        if plan.personality is not None:  # as the init: before any seccomp filter
            from pyoci.linux import sched  # loaded by ExecPlan

            sched.set_personality(plan.personality)
        mempolicy.apply_memory_policy(plan.memory_policy)
        affinity.apply_final_affinity(plan.cpu_affinity)
        faults.point("exec:stage2")
        if proc.terminal:
            from pyoci.linux import console

            console.setup_terminal(plan.console_fd, proc.console_size)  # and closes it
        procattrs.set_rlimits(proc)
        if plan.io_priority is not None or plan.scheduler is not None:
            from pyoci.linux import sched  # loaded by ExecPlan

            sched.apply_process(plan.io_priority, plan.scheduler)
        exec_path = procattrs.enter_cwd_and_find(proc, plan.env)  # as root: cwd created
        procattrs.load_seccomp_and_drop_privileges(
            plan.seccomp,
            proc,
            plan.last_cap,
            plan.in_user_ns,
            plan.preserve_fds,
            final_filter=plan.seccomp_program is None,
        )
        faults.point("exec:execve")
        procattrs.exec_program(
            plan.helper_fd,
            exec_path,
            proc,
            plan.env,
            seccomp_program=plan.seccomp_program,
            status_fd=sock.fileno(),  # EXEC right before the program's execve (spawn)
        )
    except BaseException as err:  # noqa: BLE001
        send_error(sock, err)
    os._exit(1)


def spawn(plan: ExecPlan) -> int:
    """Start the process; return its host pid once execve succeeded."""
    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = 0
    # Into the init's cgroups without the kernel's migration lock (pyoci.linux.cgroupjoin):
    # born in its cgroup2 directory, then the child joins the v1 hierarchies itself.
    v1_dirs, v2_dir = plan.cgroup_dirs
    v2_fd = None
    from pyoci.linux import affinity  # loaded by ExecPlan

    # execCPUAffinity.initial: where this process runs while it forks the child into the
    # container's cgroups (the child inherits it); this process gets its own mask back after.
    own_cpus = None
    try:
        own_cpus = affinity.apply_initial_affinity(plan.cpu_affinity)
        v2_fd = cgroupjoin.open_dir(v2_dir, "exec")
        stage1, in_v2 = cgroupjoin.fork_into(v2_fd, "exec", v2_dir or "")
    except BaseException:
        affinity.restore_affinity(own_cpus)
        for fd in (parent_sock, child_sock):
            fd.close()
        if v2_fd is not None:
            os.close(v2_fd)
        plan.close()
        raise
    if stage1 == 0:
        parent_sock.close()
        plan.cgroup_join = (v1_dirs, v2_fd, not in_v2, v2_dir or "")
        _stage1(plan, child_sock)
    affinity.restore_affinity(own_cpus)
    if v2_fd is not None:
        os.close(v2_fd)
    child_sock.close()
    plan.close()
    from pyoci.linux import exechelper

    execed = False
    try:
        faults.point("exec:fork")
        while True:
            message = parent_sock.recv(65536)
            if not message:
                break  # every copy of the child end is closed: an execve, or a death
            if message == exechelper.EXEC:
                execed = True  # pyoci-exec's last step: its EOF is now the program's execve
            elif message.startswith(exechelper.FAILED):
                text = message[len(exechelper.FAILED) :].decode(errors="replace").strip()
                raise PyociError(text.removeprefix("pyoci: "))
            elif message.startswith(PID + b" "):
                pid = int(message.split()[1])
                faults.point("exec:PID-received")
                os.waitpid(stage1, 0)
                stage1 = 0
            elif message.startswith(ERROR):
                faults.point("exec:ERROR")
                raise_child_error(message)
    except BaseException:
        from pyoci.reaping import kill_and_wait

        kill_and_wait([pid, stage1])
        raise
    finally:
        parent_sock.close()
    if not pid:
        raise PyociError("exec: the process did not start")
    if not execed:
        # The socket closed without EXEC: the process died before its program's execve
        # (killed, or an error that could not be sent). Not a started process.
        raise PyociError(f"exec: process {pid} exited before it started the program")
    return pid
