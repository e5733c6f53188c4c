"""The OCI lifecycle: create → start → state → kill → delete, and run = all of them.

This is the public Python API (`pyoci.Container`); the CLI is a thin layer over it. The state
rules live here, as the runtime spec states them (runtime.md "Operations"): `start` only from
`created`; `kill` only of a created or running container; `delete` only of a stopped one
unless forced. Where runc and crun are lenient (deleting a `created` container), pyoci follows
the spec.

`posix`, not `os`, and no `__future__` import: the short commands (`state`, `start`, `kill`,
`delete`) load this module, and those two imports would cost them about as much as everything
else they do (`pyoci.entry`). Only `create` and `exec`, which load `os` anyway, import it.
"""

import posix
import time

from pyoci import faults
from pyoci import state as statelib
from pyoci.errors import PyociError, does_not_exist

TYPE_CHECKING = False  # (the typing module costs ~1 ms: not imported at run time)
if TYPE_CHECKING:
    from pyoci.options import CreateOptions, ExecOptions

SIGNALS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8,
    "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
    "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
    "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
    "POLL": 29, "PWR": 30, "SYS": 31,
}  # fmt: skip


def parse_signal(value: str | int) -> int:
    """`KILL`, `SIGKILL`, `9`, and `RTMIN+3` style names, as runc accepts them."""
    if isinstance(value, int):
        return value
    text = value.strip().upper()
    if text.isascii() and text.isdigit():
        number = int(text)
        if 0 < number <= 64:
            return number
    name = text[3:] if text.startswith("SIG") else text
    if name in SIGNALS:
        return SIGNALS[name]
    if name.startswith("RTMIN") or name.startswith("RTMAX"):
        import _signal as signal

        base = signal.SIGRTMIN if name.startswith("RTMIN") else signal.SIGRTMAX
        offset = name[5:]
        try:
            number = base + int(offset) if offset else base
        except ValueError:
            number = 0
        if signal.SIGRTMIN <= number <= signal.SIGRTMAX:
            return number
    raise PyociError(f"kill: invalid signal {value!r}")


def _rfc3339_now() -> str:
    ns = time.time_ns()
    seconds, frac = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{frac:09d}Z"


def _owner_name(uid: int) -> str:
    import pwd

    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


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


def _remove_state_dir(path: str) -> None:
    """The state dir holds only flat files we created; no shutil needed."""
    try:
        names = posix.listdir(path)
    except FileNotFoundError:
        return
    # state.json last: until the directory is gone, a delete killed half-way leaves a state
    # that `state`, `list` and another `delete` still understand.
    names.sort(key=lambda name: name == statelib.STATE_FILE)
    for name in names:
        faults.point(f"statedir:unlink:{name}")
        try:
            posix.unlink(f"{path}/{name}")
        except FileNotFoundError:
            pass
    faults.point("statedir:rmdir")
    try:
        posix.rmdir(path)
    except FileNotFoundError:
        pass
    except OSError as err:
        if err.errno != 39:  # ENOTEMPTY: a create made the id again once it was empty
            raise


def _socket_activation(spec) -> int:
    """systemd socket activation, as runc does it: with LISTEN_FDS=N in our environment, fds
    3..3+N-1 go to the container (before the --preserve-fds ones) and the process is told
    LISTEN_FDS=N, LISTEN_PID=1. Returns N."""
    value = posix.environ.get(b"LISTEN_FDS", b"").decode(errors="replace")
    if not value.isdigit() or int(value) == 0 or spec.process is None:
        return 0
    spec.process.env = [*spec.process.env, f"LISTEN_FDS={value}", "LISTEN_PID=1"]
    return int(value)


def _options(kind, options, fields: dict):
    """`options` as given, or built from keyword fields (a TypeError names an unknown one)."""
    if options is None:
        return kind(**fields)
    if fields:
        raise TypeError(f"pass {kind.__name__} or its fields as keywords, not both")
    return options


def _pid_namespace(pid: int) -> str | None:
    """`pid:[INODE]` of a process's pid namespace, or None once it is gone."""
    try:
        return posix.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return None


def _signal_if(pid: int, signum: int, still_ours) -> None:
    """Pin `pid` with a pidfd, then signal it if `still_ours(pid)`: a pid listed a moment ago
    may have exited and gone to another process."""
    from _signal import pidfd_send_signal  # os/_signal: no ctypes on this hot path

    try:
        pidfd = posix.pidfd_open(pid)
    except ProcessLookupError:
        return
    try:
        if still_ours(pid):
            pidfd_send_signal(pidfd, signum)
    except ProcessLookupError:
        pass
    finally:
        posix.close(pidfd)


class _Locked:
    """`with _Locked(container, allowed, refusal) as status:` the state lock held (the state
    read again under it: Container._lock), the status one of `allowed` (None: any) and none
    of `refused`, or else PyociError(refusal formatted with the id and the status); the lock
    released on the way out. Every mutating operation on an existing container goes through
    it, so no other command changes the status meanwhile.
    A plain class: contextlib imports collections (tests/unit/test_import_budget.py)."""

    __slots__ = ("container", "allowed", "refused", "refusal", "lock")

    def __init__(
        self,
        container: "Container",
        allowed: tuple[str, ...] | None,
        refusal: str,
        refused: tuple[str, ...] = (),
    ) -> None:
        self.container = container
        self.allowed = allowed
        self.refused = refused
        self.refusal = refusal

    def __enter__(self) -> str:
        c = self.container
        self.lock = c._lock()
        try:
            status = c.status()
            if status in self.refused or (self.allowed is not None and status not in self.allowed):
                raise PyociError(self.refusal.format(id=c.id, status=status))
        except BaseException:
            self.lock.release()
            raise
        return status

    def __exit__(self, *_exc: object) -> None:
        self.lock.release()


class Container:
    """A container known to the state root `root`."""

    def __init__(self, st: "statelib.ContainerState") -> None:
        self._state = st

    # --- lookup --------------------------------------------------------------------------------
    @classmethod
    def load(cls, root: str, container_id: str) -> "Container":
        return cls(statelib.load(root, container_id))

    @property
    def id(self) -> str:
        return self._state.id

    @property
    def pid(self) -> int:
        return self._state.pid

    def status(self) -> str:
        return self._state.status()

    def _lock(self) -> statelib.Lock:
        """Take the container's lock and read its state again: the holder we waited for
        (a create finishing, a delete) may have changed it."""
        lock = statelib.lock_existing(self._state.root, self.id)
        try:
            self._state = statelib.load(self._state.root, self.id)
        except BaseException:
            lock.release()
            raise
        self._state.locked = True
        return lock

    def state(self) -> dict:
        """The OCI state (runtime.md "State") plus runc's rootfs, created, owner."""
        return self._state.oci_state()

    # --- create --------------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        root: str,
        container_id: str,
        options: "CreateOptions | None" = None,
        log=None,
        **fields,
    ) -> "Container":
        """Set the container up and leave its init blocked until `start`. `options`, or its
        fields as keywords (`Container.create(root, "c1", bundle="b")`).

        On any failure everything is undone: the init and stage 1 are killed and reaped (their
        mounts die with their mount namespace) and the state dir is removed.
        """
        from pyoci.options import CreateOptions

        return cls._create(root, container_id, _options(CreateOptions, options, fields), log)

    @classmethod
    def _create(
        cls, root: str, container_id: str, options: "CreateOptions", log, spec=None
    ) -> "Container":
        """`create`, with the bundle's Spec when the caller (`run`) has parsed it already."""
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
            _remove_state_dir(state_dir)
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
            pidns = _pid_namespace(pid) if spec.has_new("pid") else None
            for early in ("status", "hostMountsBefore", "cgroupPlanned", "netDevicesMoved"):
                data.pop(early, None)
            data |= {
                "pid": pid,
                "pidStartTime": start_time,
                "hasProcess": spec.process is not None,
                "process": spec.process.raw if spec.process else None,
                "seccomp": spec.linux.get("seccomp"),
                "memoryPolicy": spec.linux.get("memoryPolicy"),  # exec sets it again
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
            _remove_state_dir(state_dir)
            lock.release()
            if isinstance(err, PyociError) and err.msg.startswith("hooks."):
                # runtime.md: a failed create hook stops the container, then poststop runs.
                from pyoci import hooks

                hooks.run_hooks("poststop", spec.hooks, creator.hook_state("stopped"), True)
            raise
        lock.release()
        return cls(st)

    # --- start ---------------------------------------------------------------------------------
    def start(self) -> None:
        """Let the init exec the user program (it is blocked on exec.fifo)."""
        refusal = 'cannot start container "{id}": it is {status}, not created'
        with _Locked(self, ("created",), refusal):
            if not self._state.data.get("hasProcess", True):
                raise PyociError(f'cannot start container "{self.id}": config.json has no process')
            faults.point("start:fifo")
            try:
                self._open_fifo()
                faults.point("start:poststart")
                self._run_hooks("poststart", warn_only=False)
            except PyociError as err:
                if not err.msg.startswith("hooks."):
                    raise
                # runtime-spec 1.3.0, Lifecycle: if a startContainer or poststart hook fails,
                # "the runtime MUST generate an error, stop the container, and continue the
                # lifecycle at step 12": the container is destroyed, then poststop runs.
                self._destroy(self.status(), force=True)
                raise PyociError(
                    f'container "{self.id}": {err.msg} (the container was stopped and deleted)'
                ) from None

    def _run_hooks(self, name: str, log=None, warn_only: bool = True) -> None:
        """poststart (an error, as runtime-spec 1.3.0 says) and poststop (warnings only,
        printed on stderr)."""
        hooks_config = self._state.data.get("hooks") or {}
        if hooks_config.get(name):
            from pyoci import hooks
            from pyoci.log import Logger

            extras = ("rootfs", "created", "owner")  # runc's additions, not the spec's state
            state = {k: v for k, v in self.state().items() if k not in extras}
            # The init's pid even if it already exited (a short-lived process can be gone
            # before poststart runs); the status is set by the hook's name.
            state["pid"] = self.pid
            hooks.run_hooks(name, hooks_config, state, warn_only, log or Logger(None))

    def _open_fifo(self) -> None:
        import select

        fifo = self._state.fifo_path
        # The pidfd first: once the fifo is open the init may run, exec, exit and be reaped
        # before we look at it, and a short-lived container is not a failed start.
        try:
            pidfd = posix.pidfd_open(self.pid)
        except ProcessLookupError:
            raise PyociError(
                f'cannot start container "{self.id}": its process has exited'
            ) from None
        try:
            mark = f"{self._state.dir}/{statelib.START_MARK}"  # see state.status()
            posix.close(posix.open(mark, posix.O_WRONLY | posix.O_CREAT | posix.O_CLOEXEC, 0o600))
            fd = posix.open(fifo, posix.O_RDONLY | posix.O_NONBLOCK | posix.O_CLOEXEC)
        except OSError:
            posix.close(pidfd)
            raise
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            poller.register(pidfd, select.POLLIN)
            while True:
                events = dict(poller.poll())
                if fd in events:
                    data = posix.read(fd, 4096)
                    if data == b"0":
                        break
                    if data.startswith(b"E"):  # a startContainer hook failed in the init
                        raise PyociError(data[1:].decode(errors="replace"))
                if pidfd in events:
                    raise PyociError(f'cannot start container "{self.id}": its process has exited')
        finally:
            posix.close(fd)
            posix.close(pidfd)
        # A start killed before this leaves the fifo of an init that went on: `state` then
        # goes by the init's name (ContainerState.status), and says running.
        faults.point("start:fifo-unlink")
        posix.unlink(fifo)

    # --- cgroup operations ---------------------------------------------------------------------
    def _require_cgroup(self, what: str):
        cgroup = self.cgroup()
        if cgroup is None:
            raise PyociError(f'cannot {what} container "{self.id}": it has no cgroup (rootless)')
        return cgroup

    def pause(self) -> None:
        """Freeze every process of the container (freezer v1 / cgroup.freeze v2)."""
        with _Locked(
            self, ("running",), 'cannot pause container "{id}": it is {status}, not running'
        ):
            self._require_cgroup("pause").freeze(True)

    def resume(self) -> None:
        with _Locked(
            self, ("paused",), 'cannot resume container "{id}": it is {status}, not paused'
        ):
            self._require_cgroup("resume").freeze(False)

    def update(self, resources: dict, log=None) -> None:
        """Apply new linux.resources to a live container and remember them."""
        from pyoci.linux import resources as reslib

        refusal = 'cannot update container "{id}": it is {status}'
        with _Locked(self, None, refusal, refused=("stopped",)):
            cgroup = self._require_cgroup("update")
            warn = log.warning if log is not None else (lambda msg: None)
            applied = resources
            if resources.get("devices") is not None:  # linux.devices stay usable, as at create
                devices = [*resources["devices"], *self._state.data.get("deviceRules", [])]
                applied = {**resources, "devices": devices}
            reslib.apply(cgroup, applied, warn, prefix="resources")
            self._state.data["cgroup"] = cgroup.to_state()  # realtime budgets it raised
            merged = dict(self._state.data.get("resources") or {})
            for key, value in resources.items():
                if isinstance(value, dict) and isinstance(merged.get(key), dict):
                    merged[key] = {**merged[key], **value}
                else:
                    merged[key] = value
            self._state.data["resources"] = merged
            self._state.save()

    def stats(self) -> dict:
        from pyoci import stats

        return {"type": "stats", "id": self.id, "data": stats.collect(self._require_cgroup("stat"))}

    def events(self, interval: float, once: bool, emit) -> None:
        """runc's `events`: stats every `interval` and an OOM event whenever one happens,
        until the container stops; `once`: one stats event."""
        import select

        from pyoci import stats

        cgroup = self._require_cgroup("watch")
        if self.status() == "stopped":
            raise PyociError(f'container "{self.id}" is not running')
        if once:
            emit(self.stats())
            return
        import gc

        gc.enable()  # a watch lasts as long as the container (pyoci.__main__ turned it off)
        ooms = stats.oom_count(cgroup)
        while self.status() != "stopped":
            count = stats.oom_count(cgroup)
            if count > ooms:
                emit({"type": "oom", "id": self.id})
                ooms = count
            emit(self.stats())
            select.select([], [], [], interval)

    def _remove_cgroup(self, force: bool, log=None) -> None:
        """rmdir the container's cgroup, once whatever of the container is left in it (exec'd
        processes that outlived the init) is gone; with force they are killed. A process
        that is not the container's is never signalled: its cgroup then stays, an error
        without force, a warning with it (as runc: `delete --force` must end the container,
        and a shim retrying it forever would not help)."""
        cgroup = self.cgroup()
        if cgroup is None:
            return
        left = self._own_pids(cgroup.pids())
        if left and not force:
            raise PyociError(
                f'cannot delete container "{self.id}": processes {left} are still in its cgroup '
                "(use --force)"
            )
        if left:
            from pyoci.reaping import kill_and_wait

            kill_and_wait(left, send=self._signal_own)
        try:
            cgroup.destroy()
        except PyociError as err:
            if not force:
                raise err.wrap(f'cannot delete container "{self.id}"') from None
            if log is not None:
                log.warning(f'container "{self.id}": its cgroup is left in place: {err.msg}')

    # --- exec ----------------------------------------------------------------------------------
    def exec(self, args: list[str], options: "ExecOptions | None" = None, **fields) -> int:
        """Run another process in the container (`args`, or options.process_file); foreground:
        wait and return its exit code. `options`, or its fields as keywords."""
        from pyoci import execute
        from pyoci.options import ExecOptions

        options = _options(ExecOptions, options, fields)
        status = self.status()
        if status not in ("running", "created"):
            raise PyociError(
                f'cannot exec in container "{self.id}": container not running ({status})'
            )
        base = self._state.data.get("process") or {"cwd": "/", "args": ["sh"]}
        proc = execute.build_process(base, args, options)
        cgroup_dirs = None
        if options.cgroup:  # runc's exec --cgroup: a sub-cgroup of its own
            from pyoci.linux.cgroups import parse_sub_cgroups

            wanted = parse_sub_cgroups(list(options.cgroup))
            cgroup_dirs = self._require_cgroup("exec --cgroup in").sub_cgroup_dirs(wanted)
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
            seccomp = self._state.data.get("seccomp")
            plan = execute.ExecPlan(
                self.pid,
                proc,
                options.preserve_fds,
                console_fd,
                seccomp,
                state_root=self._state.root,
                memory_policy=self._state.data.get("memoryPolicy"),
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
        return wait_forwarding_signals(pid)

    # --- kill ----------------------------------------------------------------------------------
    def kill(self, sig: str | int = "TERM", all_processes: bool = False) -> None:
        """Send a signal to the init (or, with all_processes, to every process of the container)."""
        signum = parse_signal(sig)
        status = self.status()
        if status == statelib.CREATING:
            # Serialized with the create: once it is done there is an init (or nothing).
            self._lock().release()
            status = self.status()
        if status == "stopped" and not (all_processes and self.pids()):
            # --all still reaches what outlived the init in the cgroup (how shims clean up).
            raise PyociError(f'container "{self.id}": container not running')
        if all_processes:
            self._signal_all(signum)
        else:
            self._signal_init(signum)

    def _signal_init(self, signum: int) -> None:
        from _signal import pidfd_send_signal  # os/_signal: no ctypes on this hot path

        try:
            pidfd = posix.pidfd_open(self.pid)
        except ProcessLookupError:
            raise PyociError(f'container "{self.id}": container not running') from None
        try:
            # The pidfd pins this exact process; the start time proves it is still ours.
            if not self._state.init_alive():
                raise PyociError(f'container "{self.id}": container not running')
            pidfd_send_signal(pidfd, signum)
        except ProcessLookupError:
            raise PyociError(
                f'container "{self.id}": container not running, no such process'
            ) from None
        finally:
            posix.close(pidfd)

    def cgroup(self):
        from pyoci.linux.cgroups import Manager

        return Manager.from_state(self._state.data)

    def _is_own(self, pid: int) -> bool:
        """`pid` is the container's: in its cgroup (when it has one) and in its own pid
        namespace (when it made one). A host process placed in the container's cgroup is
        not, nor is a process that reused a pid we listed."""
        cgroup = self.cgroup()
        if cgroup is not None and not cgroup.holds(pid):
            return False
        pidns = self._state.data.get("pidns")
        return pidns is None or _pid_namespace(pid) == pidns

    def _own_pids(self, listed: list[int]) -> list[int]:
        """Those of `listed` in the container's own pid namespace (all of them when it shares
        or joined one: then its cgroup is what says which processes are its)."""
        pidns = self._state.data.get("pidns")
        if pidns is None:
            return listed
        return [pid for pid in listed if _pid_namespace(pid) == pidns]

    def pids(self) -> list[int]:
        """Host pids of every process of the container (init first): those of its cgroup in
        its pid namespace; without a cgroup (rootless), every member of the pid namespace it
        made, or only the init."""
        cgroup = self.cgroup()
        if cgroup is not None:
            listed = self._own_pids(cgroup.pids())
            if listed or not self._state.init_alive():
                return sorted(listed, key=lambda p: p != self.pid)
        if not self._state.init_alive():
            return []
        pidns = self._state.data.get("pidns")
        if pidns is None:
            return [self.pid]  # no pid namespace of its own: only the init is known to be ours
        out = [self.pid]
        for name in posix.listdir("/proc"):
            if name.isdigit() and int(name) != self.pid and _pid_namespace(int(name)) == pidns:
                out.append(int(name))
        return out

    def _signal_all(self, signum: int) -> None:
        for pid in self.pids():
            self._signal_one(pid, signum)

    def _signal_one(self, pid: int, signum: int) -> None:
        """The init by its pidfd and start time; any other process once proven the
        container's (`_signal_own`)."""
        if pid == self.pid and self._state.init_alive():
            self._signal_init(signum)
        else:
            self._signal_own(pid, signum)

    def _quiet_signal_one(self, pid: int, signum: int) -> None:
        try:
            self._signal_one(pid, signum)
        except PyociError:
            pass  # exited meanwhile

    def _signal_own(self, pid: int, signum: int) -> None:
        """Signal `pid` only if it is still the container's once pinned by a pidfd: between
        listing and signalling it may have exited and its pid gone to a host process."""
        _signal_if(pid, signum, self._is_own)

    # --- delete --------------------------------------------------------------------------------
    def delete(self, force: bool = False, log=None) -> None:
        """Remove a stopped container; with force, kill it first (SIGKILL) and wait."""
        allowed = None if force else ("stopped",)
        refusal = 'cannot delete container "{id}" that is not stopped: {status} (use --force)'
        with _Locked(self, allowed, refusal) as status:
            self._destroy(status, force, log)

    def _destroy(self, status: str, force: bool, log=None) -> None:
        """Lifecycle steps 12-13, under the state lock: kill what is left, undo what create
        did (cgroup, host mounts, network, state), then the poststop hooks."""
        abandoned = self._state.creating  # a create killed half-way: what it recorded goes
        if abandoned and self._state.data.get("netDevicesMoved"):
            from pyoci.linux import network

            # as the failed create would have: back before the init and its namespace die
            network.move_back(self._state.data["netDevicesMoved"], log)
        if status != "stopped" or (abandoned and force):
            from pyoci.reaping import kill_all, wait_all

            try:
                pids = self.pids()
            except PyociError:
                pids = [self.pid]  # its cgroup unreadable: the init, at least
            kill_all(pids, send=self._quiet_signal_one)
            faults.point("delete:kill")
            if status == "paused":
                self.cgroup().freeze(False)  # frozen tasks only die once thawed
            if self.pid in wait_all([self.pid]):
                raise PyociError(
                    f'container "{self.id}": process {self.pid} did not exit after SIGKILL'
                )
        faults.point("delete:cgroup")
        self._remove_cgroup(force, log)
        if abandoned and not self._state.data.get("cgroup"):
            for directory in self._state.data.get("cgroupPlanned") or []:
                try:  # killed between the mkdir and its record: empty, or not ours
                    posix.rmdir(directory)
                except OSError:
                    pass
        faults.point("delete:mounts")
        if self._state.data.get("hostMounts"):
            from pyoci.linux import hostmounts

            hostmounts.detach(self._state.data["hostMounts"])
        elif abandoned and self._state.data.get("hostMountsBefore") is not None:
            from pyoci.linux import hostmounts

            before = set(self._state.data["hostMountsBefore"])
            hostmounts.detach(hostmounts.new_since(self._state.data["rootfs"], before))
        if self._state.data.get("network"):
            from pyoci.linux import network

            faults.point("delete:network")
            # A failed release keeps the state dir, so the next `delete` can finish it (F19);
            # the failure is recorded, and a `delete --force` after one lets it go with a
            # warning: a problem that stays (an unreadable store) must not make the container
            # undeletable, as F5's corrupt state.json did.
            gave_up = force and self._state.data.get("networkReleaseFailed", False)
            try:
                network.release(
                    self._state.root, self.id, self._state.data["network"], log, gave_up
                )
            except PyociError:
                self._state.data["networkReleaseFailed"] = True
                self._state.save()
                raise
        faults.point("delete:state")
        _remove_state_dir(self._state.dir)
        faults.point("delete:poststop")
        self._run_hooks("poststop")


def delete(root: str, container_id: str, force: bool = False, log=None) -> None:
    """`delete`; with force an id already gone is not an error (containerd relies on it),
    and a state.json that is no state (not pyoci's doing) does not keep the container."""
    try:
        Container.load(root, container_id).delete(force, log)
    except statelib.CorruptState as err:
        if not force:
            raise
        _delete_corrupt(root, container_id, err, log)
    except PyociError as err:
        if force and "does not exist" in err.msg:
            return  # (or deleted by another delete while we waited for its lock: gone is gone)
        raise


def _delete_corrupt(root: str, container_id: str, err: PyociError, log=None) -> None:
    """delete --force of a container whose state.json does not parse: what can be known
    without it goes (the processes of, and the directories in every hierarchy of, the
    default cgroup placement `/pyoci/<id>`, which no other container uses), then the state
    dir, with a warning naming what could not be known."""
    lock = statelib.lock_existing(root, container_id)
    try:
        if log is not None:
            log.warning(
                f"{err.msg}: removing the state dir and the cgroup /pyoci/{container_id} "
                "(a cgroupsPath, host mounts or a network it had are not known)"
            )
        if posix.geteuid() == 0:
            from pyoci.linux.cgroups import Manager
            from pyoci.reaping import kill_and_wait

            cgroup = Manager.for_container(None, container_id, False)
            cgroup.made = cgroup.all_dirs()  # its own directories only, not /pyoci
            # pinned, then still in the cgroup: never a pid reused meanwhile
            kill_and_wait(cgroup.pids(), send=lambda pid, sig: _signal_if(pid, sig, cgroup.holds))
            try:
                cgroup.destroy()
            except PyociError as problem:
                if log is not None:
                    log.warning(f'container "{container_id}": its cgroup is left: {problem.msg}')
        _remove_state_dir(f"{root}/{container_id}")
    finally:
        lock.release()


def list_containers(root: str) -> list[dict]:
    """Every container's state, with `owner` filled in as runc's list does: the name of the
    state directory's owner (`state` leaves it empty, as runc's does, and so `create` need
    not ask the user database)."""
    out = []
    names: dict[int, str] = {}
    for container_id in statelib.list_ids(root):
        try:
            state = Container.load(root, container_id).state()
            uid = posix.stat(f"{root}/{container_id}").st_uid
        except (PyociError, FileNotFoundError):
            continue
        if uid not in names:
            names[uid] = _owner_name(uid)
        state["owner"] = names[uid]
        out.append(state)
    return out


def run(
    root: str,
    container_id: str,
    options: "CreateOptions | None" = None,
    detach: bool = False,
    keep: bool = False,
    log=None,
    **fields,
) -> int:
    """create + start; in the foreground also wait, forward signals, delete, and return the
    container's exit code (128+N when killed by signal N, as a shell reports it). `options`
    (its console_fd is run's own), or its fields as keywords; `keep`: no delete after."""
    from pyoci import spec as speclib
    from pyoci.options import CreateOptions

    options = _options(CreateOptions, options, fields)
    statelib.check_id(container_id)
    spec = speclib.load(options.bundle)  # once: create takes it as it is
    if not detach:
        import _prctl  # python-prctl's C module: no ctypes in this process (syscalls.py)

        # The init is re-parented to us when stage 1 exits, so we can wait for it.
        _prctl.prctl(_prctl.PR_SET_CHILD_SUBREAPER, 1)
    relay = None
    console_fd = -1
    terminal = spec.process is not None and spec.process.terminal
    if terminal and not detach and not options.console_socket:
        # A terminal with nobody to take the pty: pyoci relays it itself, as runc does.
        import _socket

        relay, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
        console_fd = theirs.detach()
    try:
        if console_fd >= 0:
            options = options.replace(console_fd=console_fd)
        container = Container._create(root, container_id, options, log, spec)
    finally:
        if console_fd >= 0:
            posix.close(console_fd)
    if relay is not None:
        from pyoci.linux.console import recv_fd

        master = recv_fd(relay)
        relay.close()
    try:
        container.start()
    except BaseException:
        _force_delete_quietly(container)
        raise
    if detach:
        return 0
    if relay is not None:
        from pyoci.terminal import relay_and_wait

        code = relay_and_wait(master, container.pid)
    else:
        code = wait_forwarding_signals(container.pid)
    if not keep:
        _force_delete_quietly(container)
    return code


def wait_forwarding_signals(child: int) -> int:
    """Wait for our child `child`, passing it the signals we get (as runc does in the
    foreground); return its exit code, 128+N for signal N."""
    import _signal as signal
    import gc

    gc.enable()  # this process lives as long as the container (pyoci.__main__ turned it off)

    def forward(signum: int, _frame: object) -> None:
        try:
            posix.kill(child, signum)
        except ProcessLookupError:
            pass

    for sig in (
        signal.SIGINT,
        signal.SIGTERM,
        signal.SIGHUP,
        signal.SIGQUIT,
        signal.SIGUSR1,
        signal.SIGUSR2,
        signal.SIGWINCH,
    ):
        signal.signal(sig, forward)
    from pyoci.reaping import wait_for

    return wait_for(child)


def _force_delete_quietly(container: Container) -> None:
    try:
        container.delete(force=True)
    except PyociError:
        pass


__all__ = [
    "Container",
    "delete",
    "list_containers",
    "run",
    "parse_signal",
    "does_not_exist",
]
