"""Bringing containers and processes into being: `create` and `exec`.

Apart from `pyoci.container` (the operations on a container that exists: state, start, kill,
delete, and the status rules) because every short command loads that module and none of them
needs this code, while each has 1 ms to spend above the interpreter's start (issue 19): it
was a third of `container.py`, and a module's load time grows with it. `Container.create` and
`Container.exec` are the public entry points; they call in here (and `pyoci.runner`'s `run`).
This module does not import `pyoci.container`: it works on the state, and on the container it
is handed.
"""

import posix
import time

from pyoci import faults
from pyoci import state as statelib
from pyoci.errors import PyociError

TYPE_CHECKING = False  # (the typing module costs ~1 ms: not imported at run time)
if TYPE_CHECKING:
    from pyoci.options import CreateOptions, ExecOptions


def _rfc3339_now() -> str:
    ns = time.time_ns()
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


def write_pid_file(path: str, pid: int) -> None:
    """The pid with no trailing newline, written atomically (tools read it right away).

    `state.write_atomic`: the temp file has a random name and is created with
    O_EXCL|O_NOFOLLOW, then renamed over the pid file: the pid file's directory may be
    writable by others (/tmp), and root must not write through a symlink planted at a name it
    could guess. rename() replaces a link planted at the pid file's own name rather than
    following it."""
    import os

    path = os.path.abspath(path)
    try:
        statelib.write_atomic(path, str(pid).encode(), 0o644)
    except OSError as err:
        reason = err.strerror.lower() if err.strerror else str(err)
        raise PyociError(f"--pid-file: {path}: {reason}", err.errno or 0) from None


def _socket_activation(spec) -> int:
    """systemd socket activation, as runc does it: with LISTEN_FDS=N in our environment, fds
    3..3+N-1 go to the container (before the --preserve-fds ones) and the process is told
    LISTEN_FDS=N, LISTEN_PID=1. Returns N."""
    value = posix.environ.get(b"LISTEN_FDS", b"").decode(errors="replace")
    if not value.isdigit() or int(value) == 0 or spec.process is None:
        return 0
    spec.process.env = [*spec.process.env, f"LISTEN_FDS={value}", "LISTEN_PID=1"]
    return int(value)


def options_of(kind, options, fields: dict):
    """`options` as given, or built from keyword fields (a TypeError names an unknown one)."""
    if options is None:
        return kind(**fields)
    if fields:
        raise TypeError(f"pass {kind.__name__} or its fields as keywords, not both")
    return options


def create(
    root: str, container_id: str, options: "CreateOptions", log=None, spec=None
) -> statelib.ContainerState:
    """`Container.create`, with the bundle's Spec when the caller (`run`) has parsed it
    already: the new container's state."""
    from pyoci.creator import Creator

    statelib.check_id(container_id)
    if spec is None:
        from pyoci import spec as speclib

        spec = speclib.load(options.bundle)
    listen_fds = _socket_activation(spec)
    if listen_fds:
        options = options.replace(preserve_fds=options.preserve_fds + listen_fds)
    statelib.make_root(root)
    state_dir = f"{root}/{container_id}"
    try:
        posix.mkdir(state_dir, 0o711)
    except FileExistsError:
        raise PyociError(f'container "{container_id}" already exists') from None
    # Locked from the mkdir on, until create is done: `delete`, `kill` wait for it, and
    # a lock nobody holds on a "creating" state says its creator died (`abandoned`).
    # The children never hold it: stage 1 closes every fd it does not need.
    try:
        lock = statelib.Lock(state_dir)
    except FileNotFoundError:  # a `delete --force` took the new dir for an abandoned one
        raise PyociError(
            f'container "{container_id}": deleted while it was being created'
        ) from None
    except BaseException:
        statelib.remove_state_dir(state_dir)
        raise
    data = {
        "ociVersion": spec.oci_version,
        "id": container_id,
        "status": statelib.CREATING,
        "pid": 0,
        "bundle": spec.bundle,
        "rootfs": spec.root_path,
        "created": _rfc3339_now(),
        "annotations": spec.annotations,
    }
    st = statelib.ContainerState(root, data)
    creator = Creator(spec, container_id, state_dir, options, log)
    try:
        # No state.json yet: the dir alone reads as a create's (statelib.incomplete).
        faults.point("create:state-dir")

        def checkpoint(recovery: dict) -> None:
            """The early state.json ("creating"): what an abandoned create's `delete`
            must undo, written once it exists (Creator._record)."""
            data.update(recovery)
            st.save()

        creator.checkpoint = checkpoint
        creator.lock_fd = lock.fd
        pid, start_time = creator.spawn()
        if creator.cgroup is not None:
            from pyoci.linux import resources

            # The init exists and waits for `start`: now the limits it could not be
            # born under (a pids limit of 0 or 1).
            resources.apply_deferred(creator.cgroup)
        # Its own pid namespace, if it has one: what tells its processes from a host
        # process someone put in its cgroup (`_is_own`).
        pidns = statelib.pid_namespace(pid) if spec.has_new("pid") else None
        for early in ("status", "hostMountsBefore", "cgroupPlanned", "netDevicesMoved"):
            data.pop(early, None)
        data |= {
            "pid": pid,
            "pidStartTime": start_time,
            "hasProcess": spec.process is not None,
            "process": spec.process.raw if spec.process else None,
            "seccomp": spec.linux.get("seccomp"),
            "memoryPolicy": spec.linux.get("memoryPolicy"),  # exec sets it again
            "personality": spec.linux.get("personality"),  # and this one
            "hooks": {k: v for k, v in spec.hooks.items() if k in ("poststart", "poststop")},
            "cgroup": creator.cgroup.to_state() if creator.cgroup else None,
            "pidns": pidns,
            "deviceRules": creator.device_rules,
            "freezerPath": creator.cgroup.freezer_file() if creator.cgroup else None,
            "resources": spec.linux.get("resources") or {},
            "hostMounts": creator.host_mounts,  # no mount namespace: delete detaches them
            "network": creator.network_state(),  # a bridge's veth and lease, for delete
        }
        faults.point("create:state-write")
        st.save()
        faults.point("create:state-written")
        if options.pid_file:
            write_pid_file(options.pid_file, pid)
            faults.point("create:pid-file")
    except BaseException as err:
        creator.abort()
        statelib.remove_state_dir(state_dir)
        lock.release()
        if isinstance(err, PyociError) and err.msg.startswith("hooks."):
            # runtime.md: a failed create hook stops the container, then poststop runs.
            from pyoci import hooks

            hooks.run_hooks("poststop", spec.hooks, creator.hook_state("stopped"), True)
        raise
    lock.release()
    return st


def exec_in(container, args: list[str], options: "ExecOptions") -> int:
    """`Container.exec`: run another process in `container` (a pyoci.container.Container,
    not named here: that module imports this one) — `args`, or options.process_file; in the
    foreground wait, and return its exit code."""
    from pyoci import execute

    status = container.status()
    if status not in ("running", "created"):
        raise PyociError(
            f'cannot exec in container "{container.id}": container not running ({status})'
        )
    base = container.record.get("process") or {"cwd": "/", "args": ["sh"]}
    proc = execute.build_process(base, args, options)
    cgroup_dirs = None
    if options.cgroup:  # runc's exec --cgroup: a sub-cgroup of its own
        from pyoci.linux.cgroups import parse_sub_cgroups

        wanted = parse_sub_cgroups(list(options.cgroup))
        cgroup_dirs = container.require_cgroup("exec --cgroup in").sub_cgroup_dirs(wanted)
    console_socket, detach = options.console_socket, options.detach
    if console_socket and not proc.terminal:
        raise PyociError("--console-socket: needs --tty (or process.terminal: true)")
    relay, console_fd = None, -1
    if proc.terminal:
        from pyoci.linux import console

        if console_socket:
            console_fd = console.connect(console_socket)
        elif detach:
            raise PyociError("--tty: a detached exec needs --console-socket")
        else:
            import _socket

            relay, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
            console_fd = theirs.detach()
    if not detach:
        from pyoci.linux import sysbind
        from pyoci.linux import syscalls as sc

        sysbind.prctl(sc.PR_SET_CHILD_SUBREAPER, 1)  # the process is re-parented to us
    try:
        seccomp = container.record.get("seccomp")
        plan = execute.ExecPlan(
            container.pid,
            proc,
            options.preserve_fds,
            console_fd,
            seccomp,
            state_root=container.root,
            memory_policy=container.record.get("memoryPolicy"),
            personality=container.record.get("personality"),
        )
        if cgroup_dirs is not None:
            plan.cgroup_dirs = cgroup_dirs
        pid = execute.spawn(plan)
    finally:
        if console_fd >= 0:
            posix.close(console_fd)
    if options.pid_file:
        write_pid_file(options.pid_file, pid)
    if detach:
        return 0
    if relay is not None:
        from pyoci.linux.console import recv_fd
        from pyoci.terminal import relay_and_wait

        master = recv_fd(relay)
        relay.close()
        return relay_and_wait(master, pid)
    from pyoci.reaping import wait_forwarding_signals

    return wait_forwarding_signals(pid)
